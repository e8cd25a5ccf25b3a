package dev.qdrift.cli;

import dev.qdrift.backend.Backend;
import dev.qdrift.data.Dataset;
import dev.qdrift.experiment.DataSelection;
import dev.qdrift.experiment.Evaluation;
import dev.qdrift.metrics.ClassificationReport;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.head.LinearHead;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Score a head on a labeled set: accuracy with a bootstrap CI, per-class accuracy, confusion matrix, mean logits. "
                + "Without --split, a head trained on a split of the same file is scored on that split's held-out side.")
final class EvalCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Mixin DataOptions data;
    @Mixin DeviceOptions device;
    @Mixin ReportOption report;

    @Option(names = "--head", required = true, description = "head file written by train-head")
    Path headFile;

    @Option(names = "--json", description = "write the results as JSON here")
    Path json;

    @Override
    public Integer call() {
        device.requireS8Layers(false, "eval", null);
        device.refuseFp16Backward("eval");
        report.requireOutput(json, "--json FILE");
        LinearHead head = LinearHead.load(headFile);
        DataSelection selection = data.selection();
        DataSelection recorded = data.split == null ? DataSelection.fromHead(head.metadata(), data.data, selection.task()) : null;
        if (recorded != null) {
            selection = recorded;
            System.out.printf("held-out   the head was trained on a %.2f split of this file (seed %d): scoring its held-out side%n",
                    recorded.trainFraction(), recorded.seed());
        }
        Dataset set = selection.evaluationSet();
        Model m = model.load();
        Evaluation.Result r;
        String backendName;
        try (Backend backend = device.open()) {
            r = Evaluation.evaluate(new Encoder(m.weights(), backend), m, head, set, model.batchSize);
            backendName = backend.name();
        }
        System.out.printf("model      %s, head %s%ndata       %s%n", m.id(), headFile, set.source());
        Print.classification(r.report(), head.labelNames());
        if (json != null) {
            ClassificationReport c = r.report();
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("model", m.id());
            out.put("head", headFile.toString());
            out.put("selection", selection.describe());
            out.put("labels", head.labelNames());
            out.put("n", c.n());
            out.put("accuracy", c.accuracy());
            out.put("accuracy_ci95", new double[] {c.ciLow(), c.ciHigh()});
            out.put("per_class_accuracy", c.perClassAccuracy());
            out.put("confusion", c.confusion());
            out.put("mean_logits", c.meanLogits());
            out.put("backend", backendName);
            Json.write(json, out);
            report.writeOver(json);
        }
        return 0;
    }
}
