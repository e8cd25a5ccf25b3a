package dev.qdrift.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qdrift.backend.Backend;
import dev.qdrift.data.Dataset;
import dev.qdrift.experiment.DataSelection;
import dev.qdrift.experiment.Outliers;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "outliers", mixinStandardHelpOptions = true,
        description = "Activation outliers of the FP32 encoder per layer and site: excess kurtosis, top-1%% channel energy share, "
                + "max|x|/median, 6-sigma outlier channels (how often and on which tokens they fire), PEG groups. "
                + "Writes DIR/outliers.json. With --split, measures the held-out side.")
final class OutliersCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Mixin DataOptions data;
    @Mixin DeviceOptions device;
    @Mixin ReportOption report;

    @Option(names = "--out", required = true, description = "directory for outliers.json")
    Path out;

    @Override
    public Integer call() {
        device.requireS8Layers(false, "outliers", null);
        device.refuseFp16Backward("outliers");
        DataSelection selection = data.selection();
        Dataset set = selection.evaluationSet();
        Model m = model.load();
        Outliers.Result r;
        try (Backend backend = device.open()) {
            r = Outliers.run(m, new Encoder(m.weights(), backend), set, model.batchSize);
        }
        System.out.printf("model      %s (%d layers, hidden %d) on %s%ndata       %s (%d inputs, %d tokens, %d truncated to %d)%n",
                r.model(), r.layers(), r.hidden(), r.backend(), set.source(), r.inputs(), r.tokens(), r.truncated(), model.maxLength);
        System.out.printf("%-6s %9s %-21s %8s %9s %6s %5s %5s  %s%n", "layer", "max kurt", "(site)", "top1% E", "max/med",
                "#outl", "#20x", "#ffn", "top dims");
        for (Outliers.LayerRow row : r.summary().layers()) {
            System.out.printf("%-6s %9.1f %-21s %8.3f %9.1f %6d %5d %5d  %s%n", row.layer() < 0 ? "emb" : Integer.toString(row.layer()),
                    row.maxKurtosis(), "(" + row.maxKurtosisSite() + ")", row.maxEnergyShareTop1Percent(), row.maxOverMedian(),
                    row.outlierChannels(), row.outlierChannels20xMedian(), row.intermediateOutlierChannels(), dims(row.topDims()));
        }
        System.out.println("max kurt: Fisher excess kurtosis over all elements of a site, largest site; top1% E: largest share of "
                + "energy (sum x^2) in the top 1% of channels; max/med: largest max|x| / median|x|; #outl: hidden dims with "
                + "max|x| > 6 sigma at some site; #20x: hidden dims with max|x| > 20 x median|x|; #ffn: FFN units over 6 sigma; "
                + "top dims: largest max|x|/sigma first");
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.putPOJO("selection", selection.describe());
        root.setAll((ObjectNode) Json.MAPPER.valueToTree(r));
        Path file = out.resolve("outliers.json");
        Json.write(file, root);
        System.out.println("wrote      " + file);
        report.writeOver(out);
        return 0;
    }

    private static String dims(List<Integer> dims) {
        return dims.isEmpty() ? "-" : dims.stream().map(String::valueOf).collect(Collectors.joining(", "));
    }
}
