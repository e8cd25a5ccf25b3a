package dev.qdrift.experiment;

import dev.qdrift.data.Dataset;
import dev.qdrift.data.Split;
import dev.qdrift.metrics.Classification;
import dev.qdrift.metrics.ClassificationReport;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.model.head.ProbeTrainer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Trains a linear probe on a model's pooled embeddings and scores it on the held-out side of the split.
 * The head records where it came from (model, data, task, split, seed, limit) so `qdrift eval` can find
 * the same held-out examples again.
 */
public final class HeadTraining {
    public record Result(LinearHead head, int trainSize, ClassificationReport heldOut) {}

    public static Result train(Model model, Encoder encoder, DataSelection selection, Pooling pooling, int batchSize) {
        Split split = selection.split();
        Dataset train = split == null ? selection.all() : split.train();
        Embedder embedder = new Embedder(encoder, model.tokenizer(), batchSize);
        float[][] x = embedder.embed(train, pooling);
        Map<String, String> meta = new LinkedHashMap<>(selection.describe());
        meta.put("model", model.id());
        LinearHead head = ProbeTrainer.train(x, Embedder.labels(train), train.numClasses(), train.labelNames(), pooling.id(),
                ProbeTrainer.Options.defaults());
        ClassificationReport report = null;
        if (split != null) {
            report = Evaluation.evaluate(encoder, model, head, split.test(), batchSize).report();
            meta.put("held_out_accuracy", String.format("%.4f", report.accuracy()));
        }
        return new Result(head.withMetadata(meta), train.size(), report);
    }

    private HeadTraining() {}
}
