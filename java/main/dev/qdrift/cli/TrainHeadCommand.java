package dev.qdrift.cli;

import dev.qdrift.backend.Backend;
import dev.qdrift.experiment.HeadTraining;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.Pooling;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "train-head", mixinStandardHelpOptions = true,
        description = "Train a linear (multinomial logistic regression) probe on pooled embeddings; deterministic per seed.")
final class TrainHeadCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Mixin DataOptions data;
    @Mixin DeviceOptions device;

    @Option(names = "--pooling", description = "cls, mean or pooler (default: the model's own: mean for MiniLM, cls for bge-small)")
    String pooling;

    @Option(names = "--out", required = true, description = "where to write the head (.safetensors)")
    Path out;

    @Override
    public Integer call() {
        device.refuseTf32("a head is trained on FP32 features and its file would not say otherwise");
        device.refuseFp16Backward("train-head");
        device.requireS8Layers(false, "train-head", null);
        Model m = model.load();
        Pooling p = pooling == null ? m.defaultPooling() : Pooling.parse(pooling);
        HeadTraining.Result r;
        try (Backend backend = device.open()) {
            r = HeadTraining.train(m, new Encoder(m.weights(), backend), data.selection(), p, model.batchSize);
        }
        r.head().save(out);
        System.out.printf("head       %s (%d classes, %s pooling, trained on %d examples)%n", out, r.head().numClasses(), p.id(), r.trainSize());
        if (r.heldOut() != null) {
            System.out.println("held-out:");
            Print.classification(r.heldOut(), r.head().labelNames());
        }
        return 0;
    }
}
