package dev.qdrift.cli;

import dev.qdrift.backend.Backend;
import dev.qdrift.experiment.Verification;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "verify", mixinStandardHelpOptions = true,
        description = "Compare qdrift's FP32 encoder with ONNX Runtime on the model's ONNX file; exit 1 above tolerance.")
final class VerifyCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Mixin DataOptions data;
    @Mixin DeviceOptions device;

    @Option(names = "--tolerance", defaultValue = "1e-4", description = "max relative error allowed (default: ${DEFAULT-VALUE})")
    double tolerance;

    @Option(names = "--json", description = "write the figures as JSON here")
    Path json;

    @Override
    public Integer call() {
        device.requireS8Layers(false, "verify", null);
        device.refuseFp16Backward("verify");
        Model m = model.load();
        Verification.Result r;
        try (Backend backend = device.open()) {
            r = Verification.run(m, new Encoder(m.weights(), backend), data.selection().all(), model.batchSize, tolerance);
        }
        System.out.printf("model      %s on %s%n", r.model(), r.backend());
        System.out.printf("data       %s (%d inputs, %d truncated to %d tokens)%n", r.data(), r.n(),
                r.truncated(), model.maxLength);
        System.out.printf("error      max relative %.3e (input %d), mean %.3e, worst relative Frobenius %.3e%n",
                r.maxRelative(), r.worstIndex(), r.meanRelative(), r.maxRelativeFrobenius());
        System.out.printf("norm       per input: max |ours - ort| / max |ort| over real tokens and hidden dims%n");
        System.out.printf("verdict    %s (tolerance %.1e)%n", r.passed() ? "PASS" : "FAIL", r.tolerance());
        if (json != null) Json.write(json, r);
        return r.passed() ? 0 : Main.EXIT_CHECK_FAILED;
    }
}
