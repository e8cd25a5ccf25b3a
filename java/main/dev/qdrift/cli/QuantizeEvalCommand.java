package dev.qdrift.cli;

import dev.qdrift.backend.Backend;
import dev.qdrift.data.Dataset;
import dev.qdrift.experiment.DataSelection;
import dev.qdrift.experiment.RunInputs;
import dev.qdrift.experiment.QuantizeEval;
import dev.qdrift.model.Model;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.Scheme;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "quantize-eval", mixinStandardHelpOptions = true,
        description = "Accuracy of quantization schemes next to FP32: accuracy (95%% bootstrap CI), agreement with FP32, flips, "
                + "mean KL(FP32 || quantized). Calibrates on a seeded sample of the head's training data.")
final class QuantizeEvalCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Mixin DataOptions data;
    @Mixin DeviceOptions device;
    @Mixin ReportOption report;

    @Option(names = "--head", required = true, description = "head file written by train-head")
    Path headFile;

    @Option(names = "--schemes", defaultValue = "fp32,w8a8,w8a8-pct99.99,w8a8-mse,w8a8-pc,peg3,peg4,peg6,mixed,w4a8",
            description = "comma-separated presets (" + "fp32, w8a8, w8a8-pctP, w8a8-mse, w8a8-running, w8a8-pc, w8a8-pt, pegK, mixed, w4a8"
                    + ") or .json scheme files (default: ${DEFAULT-VALUE})")
    String schemes;

    @Option(names = "--calib-size", defaultValue = "256", description = "calibration examples (default: ${DEFAULT-VALUE})")
    int calibSize;

    @Option(names = "--calibration", description = "calibration statistics file: loaded if it exists, else written after calibrating")
    Path calibrationFile;

    @Option(names = "--mixed-budget", defaultValue = "1.0", description = "accuracy points below FP32 that 'mixed' may lose on the calibration sample (default: ${DEFAULT-VALUE})")
    double mixedBudget;

    @Option(names = "--int8", description = "also run each scheme the s8 kernels can execute on them (CUDA), checked against its simulation")
    boolean int8;

    @Option(names = "--json", description = "write the table as JSON here")
    Path json;

    @Override
    public Integer call() {
        device.requireS8Layers(int8, "quantize-eval", "add --int8");
        device.refuseFp16Backward("quantize-eval");
        report.requireOutput(json, "--json FILE");
        List<Scheme> list = Scheme.parseList(schemes);
        LinearHead head = LinearHead.load(headFile);
        DataSelection selection = data.selection();
        Dataset eval = RunInputs.evaluationSelection(head, selection).evaluationSet();
        Dataset calib = RunInputs.calibrationSample(head, selection, calibSize);
        Model m = model.load();
        try (Backend backend = device.open()) {
            CalibrationStats stats = RunInputs.loadOrCalibrate(m, backend, calib, model.batchSize, calibrationFile, System.out);
            QuantizeEval.Result r = QuantizeEval.run(m, head, headFile.toString(), eval, calib, stats, list, backend, model.batchSize,
                    mixedBudget, int8);
            System.out.printf("model %s, data %s (%d examples), on %s; calibration: %d examples of %s%n", m.id(), eval.source(), eval.size(),
                    r.backend(), calib.size(), calib.source());
            System.out.printf("%-16s %8s %17s %9s %6s %10s %9s%s%n", "scheme", "acc", "95% CI", "agree", "flips", "KL", "ex/s",
                    backend instanceof dev.qdrift.backend.cuda.CudaBackend ? "  pool MiB" : "");
            for (QuantizeEval.Row row : r.rows())
                System.out.printf("%-16s %8.4f %8.4f-%-8.4f %9.4f %6d %10.2e %9.1f%s%n", row.scheme(), row.accuracy(), row.ciLow(), row.ciHigh(),
                        row.agreement(), row.flips(), row.meanKl(), row.examplesPerS(),
                        row.poolPeakBytes() == null ? "" : String.format("  %8.1f", row.poolPeakBytes() / 1048576.0));
            for (QuantizeEval.Row row : r.rows())
                if (row.integer() != null)
                    System.out.printf("%s: s8 kernels vs simulation: %d of %d predictions differ (agreement %.4f), max |logit difference| %.2e%n",
                            row.scheme(), row.integer().predictionsDiffering(), row.n(), row.integer().agreementWithSimulated(),
                            row.integer().maxAbsLogitDifference());
            for (QuantizeEval.Row row : r.rows())
                if (row.mixed() != null)
                    System.out.printf("mixed: kept %d activation sites in FP32: %s (calibration acc FP32 %.4f, all quantized %.4f, mixed %.4f)%n",
                            row.fp32Sites().size(), row.fp32Sites(), row.mixed().fp32Accuracy(), row.mixed().quantizedAccuracy(),
                            row.mixed().mixedAccuracy());
            System.out.println("embeddings, pooler and classifier head stay FP32 in every scheme; quantization is simulated (fake-quant)");
            if (json != null) Json.write(json, r);
        }
        report.writeOver(json);
        return 0;
    }
}
