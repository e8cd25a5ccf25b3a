package dev.qdrift.attribution;

import dev.qdrift.model.BertConfig;
import dev.qdrift.model.head.LinearHead;
import java.util.ArrayList;
import java.util.List;

/**
 * A classifier (encoder, pooling, head; FP32 or quantized) that attributions can differentiate: forward
 * passes and gradients of a target with respect to the input word-embedding vectors of one sequence.
 * Implementations: {@link Gradients} (CPU, float64 backward, the reference) and {@link BackendGradients}
 * (float32 on a backend's buffers: the GPU path, with IG's steps batched on the device).
 */
public interface AttributionModel {
    /** IG steps evaluated per call of {@link #gradients} in the default {@link #pathIntegral}. */
    int STEP_BATCH = 16;

    BertConfig config();

    LinearHead head();

    /** The embedding row of one token id [hidden]. */
    double[] wordVector(int id);

    /** The word-embedding rows of a sequence's ids [seq, hidden]: the input attributions explain. */
    default double[] wordVectors(Sequence s) {
        int h = config().hidden();
        double[] v = new double[s.length() * h];
        for (int t = 0; t < s.length(); t++) System.arraycopy(wordVector(s.ids()[t]), 0, v, t * h, h);
        return v;
    }

    /** logits [classes], pooled [hidden] and the last hidden state [seq, hidden] of one forward pass. */
    record Output(double[] logits, double[] pooled, double[] lastHidden) {}

    /**
     * @param target the target, resolved (a predicted class fixed against this input's logits)
     * @param value the target's value
     * @param gradient d value / d word vectors [seq, hidden]
     */
    record Result(Target target, double value, double[] logits, double[] gradient) {}

    /** The forward with the word vectors replaced by words [seq, hidden]. */
    Output forward(Sequence s, double[] words);

    default Output forward(Sequence s) {
        return forward(s, wordVectors(s));
    }

    /** Forward passes of several sequences (e.g. occlusion's deletions). */
    List<Output> forwards(List<Sequence> seqs);

    /** One forward and backward pass at word vectors words [seq, hidden]; a predicted target resolves at these words. */
    Result gradient(Sequence s, double[] words, Target target);

    default Result gradient(Sequence s, Target target) {
        return gradient(s, wordVectors(s), target);
    }

    /** Gradients at several word-vector matrices of the same sequence (IG's steps); resolve a predicted target first. */
    List<Result> gradients(Sequence s, List<double[]> words, Target target);

    /**
     * A quadrature of the gradient along a straight path: sum_k weights[k] * grad F(from + alphas[k] diff)
     * [seq, hidden], for a resolved target. Integrated Gradients multiplies it by diff.
     */
    default double[] pathIntegral(Sequence s, double[] from, double[] diff, double[] alphas, double[] weights, Target target) {
        double[] integral = new double[from.length];
        for (int k0 = 0; k0 < alphas.length; k0 += STEP_BATCH) {
            List<double[]> inputs = new ArrayList<>();
            for (int k = k0; k < Math.min(alphas.length, k0 + STEP_BATCH); k++) {
                double[] w = new double[from.length];
                for (int i = 0; i < w.length; i++) w[i] = from[i] + alphas[k] * diff[i];
                inputs.add(w);
            }
            List<Result> grads = gradients(s, inputs, target);
            for (int j = 0; j < grads.size(); j++) {
                double wk = weights[k0 + j];
                double[] gk = grads.get(j).gradient();
                for (int i = 0; i < integral.length; i++) integral[i] += wk * gk[i];
            }
        }
        return integral;
    }
}
