package dev.qdrift.cli;

import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.data.Task;
import dev.qdrift.experiment.DataSelection;
import dev.qdrift.experiment.HeadTraining;
import dev.qdrift.experiment.Verification;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "The main job on built-in model and data: check the encoder against ONNX Runtime, train a probe, score it.")
final class DemoCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    @Option(names = "--out", defaultValue = "out/demo", description = "output directory (default: ${DEFAULT-VALUE})")
    Path out;

    @Override
    public Integer call() {
        Model m = model.load();
        DataSelection data = new DataSelection("builtin:demo", Task.SST2, null, 0.7, 13);
        System.out.println("== 1. FP32 encoder vs ONNX Runtime on the held-out sentences");
        Verification.Result v = Verification.run(m, data.evaluationSet(), model.batchSize, 1e-4);
        System.out.printf("max relative error %.3e over %d sentences: %s%n", v.maxRelative(), v.n(), v.passed() ? "PASS" : "FAIL");
        System.out.println("== 2. Linear probe on " + m.defaultPooling().id() + "-pooled embeddings, 70/30 split");
        HeadTraining.Result h = HeadTraining.train(m, new Encoder(m.weights(), new CpuBackend()), data, m.defaultPooling(), model.batchSize);
        Path head = out.resolve("head.safetensors");
        h.head().save(head);
        Print.classification(h.heldOut(), h.head().labelNames());
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("model", m.id());
        summary.put("data", data.describe());
        summary.put("verify", v);
        summary.put("held_out_accuracy", h.heldOut().accuracy());
        summary.put("held_out_n", h.heldOut().n());
        summary.put("head", head.toString());
        Json.write(out.resolve("demo.json"), summary);
        System.out.println("wrote " + head + " and " + out.resolve("demo.json"));
        return v.passed() ? 0 : Main.EXIT_CHECK_FAILED;
    }
}
