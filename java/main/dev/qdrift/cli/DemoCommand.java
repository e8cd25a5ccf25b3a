package dev.qdrift.cli;

import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.data.Dataset;
import dev.qdrift.data.Task;
import dev.qdrift.experiment.DataSelection;
import dev.qdrift.experiment.HeadTraining;
import dev.qdrift.experiment.Outliers;
import dev.qdrift.experiment.QuantizeEval;
import dev.qdrift.experiment.RunInputs;
import dev.qdrift.experiment.Verification;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.Scheme;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "The main job on built-in model and data: check the encoder against ONNX Runtime, train a probe, "
                + "quantize it four ways, measure activation outliers, and write the HTML report.")
final class DemoCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    /** Calibration examples, as quantize-eval's default: the demo's training side (224 sentences) is smaller, so all of it. */
    private static final int CALIBRATION_SIZE = 256;

    @Option(names = "--out", defaultValue = "out/demo", description = "output directory (default: ${DEFAULT-VALUE})")
    Path out;

    @Override
    public Integer call() {
        Model m = model.load();
        DataSelection data = new DataSelection("builtin:demo", Task.SST2, null, 0.7, 13);
        Dataset heldOut = data.split().test();
        try (CpuBackend cpu = new CpuBackend()) {
            System.out.println("== 1. FP32 encoder vs ONNX Runtime on the held-out sentences");
            Verification.Result v = Verification.run(m, heldOut, model.batchSize, 1e-4);
            System.out.printf("max relative error %.3e over %d sentences: %s%n", v.maxRelative(), v.n(), v.passed() ? "PASS" : "FAIL");
            Json.write(out.resolve("verify.json"), v);

            System.out.println("== 2. Linear probe on " + m.defaultPooling().id() + "-pooled embeddings, 70/30 split");
            Encoder fp32 = new Encoder(m.weights(), cpu);
            HeadTraining.Result h = HeadTraining.train(m, fp32, data, m.defaultPooling(), model.batchSize);
            Path head = out.resolve("head.safetensors");
            h.head().save(head);
            Print.classification(h.heldOut(), h.head().labelNames());

            System.out.println("== 3. Quantized: the same head on simulated INT8 encoders (calibrated on the training side)");
            Dataset calib = RunInputs.calibrationSample(h.head(), data, CALIBRATION_SIZE);
            CalibrationStats stats = RunInputs.loadOrCalibrate(m, cpu, calib, model.batchSize, null, System.out);
            QuantizeEval.Result q = QuantizeEval.run(m, h.head(), head.toString(), heldOut, calib, stats,
                    Scheme.parseList("fp32,w8a8,w8a8-pt,peg4"), cpu, model.batchSize, 1.0, false);
            for (QuantizeEval.Row row : q.rows())
                System.out.printf("%-10s accuracy %.4f, agreement with FP32 %.4f, mean KL %.2e%n", row.scheme(), row.accuracy(),
                        row.agreement(), row.meanKl());
            Json.write(out.resolve("quantize-eval.json"), q);

            System.out.println("== 4. Activation outliers on the held-out sentences");
            Outliers.Result o = Outliers.run(m, fp32, heldOut, model.batchSize);
            Json.write(out.resolve("outliers.json"), o);

            Map<String, Object> summary = new LinkedHashMap<>();
            summary.put("model", m.id());
            summary.put("data", data.describe());
            summary.put("verify", v);
            summary.put("held_out_accuracy", h.heldOut().accuracy());
            summary.put("held_out_n", h.heldOut().n());
            summary.put("head", head.toString());
            Json.write(out.resolve("demo.json"), summary);

            System.out.println("== 5. The HTML report");
            ReportCommand.write(out, null);
            return v.passed() ? 0 : Main.EXIT_CHECK_FAILED;
        }
    }
}
