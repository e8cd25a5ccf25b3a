package dev.qdrift.experiment;

import dev.qdrift.QdriftException;
import dev.qdrift.data.Dataset;
import dev.qdrift.metrics.Classification;
import dev.qdrift.metrics.ClassificationReport;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.head.LinearHead;

/** A head on an encoder, scored on a labeled set: accuracy with a bootstrap CI, per class, confusion, logits. */
public final class Evaluation {
    public static final int BOOTSTRAP_RESAMPLES = 1000;
    public static final long BOOTSTRAP_SEED = 20261123L;

    public record Result(ClassificationReport report, int[] predicted, float[][] logits) {}

    public static Result evaluate(Encoder encoder, Model model, LinearHead head, Dataset data, int batchSize) {
        head.checkDim(model.config().hidden(), model.id());
        if (head.numClasses() != data.numClasses())
            throw new QdriftException("head has " + head.numClasses() + " classes " + head.labelNames() + " but "
                    + data.source() + " has " + data.numClasses() + " " + data.labelNames());
        float[][] x = new Embedder(encoder, model.tokenizer(), batchSize).embed(data, Pooling.parse(head.pooling()));
        float[][] logits = new float[x.length][];
        int[] predicted = new int[x.length];
        for (int i = 0; i < x.length; i++) {
            logits[i] = head.logits(x[i]);
            predicted[i] = LinearHead.argmax(logits[i]);
        }
        ClassificationReport r = Classification.report(Embedder.labels(data), predicted, data.numClasses(),
                BOOTSTRAP_RESAMPLES, 0.95, BOOTSTRAP_SEED, logits);
        return new Result(r, predicted, logits);
    }

    private Evaluation() {}
}
