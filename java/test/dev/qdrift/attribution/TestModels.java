package dev.qdrift.attribution;

import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.BertConfig;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.RandomWeights;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.model.tokenizer.TokenBatch;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Small random models and heads, and the checks several tests share. */
final class TestModels {
    private TestModels() {}

    /** hidden 16, 2 layers, 2 heads, FFN 32, vocabulary 50, 32 positions, 2 segment types. */
    static final BertConfig SMALL = new BertConfig(50, 16, 2, 2, 32, 32, 2, 1e-12f);

    static BertWeights small(long seed) {
        return RandomWeights.generate(SMALL, seed, true);
    }

    /** A head with N(0, 1) weights, so that logits move visibly with the input. */
    static LinearHead head(int classes, int dim, long seed, String pooling) {
        return head(classes, dim, seed, pooling, 1);
    }

    /** A head with N(0, std^2) weights. */
    static LinearHead head(int classes, int dim, long seed, String pooling, double std) {
        Random r = new Random(seed);
        float[][] w = new float[classes][dim];
        float[] b = new float[classes];
        for (float[] row : w) for (int j = 0; j < dim; j++) row[j] = (float) (std * r.nextGaussian());
        for (int c = 0; c < classes; c++) b[c] = (float) (0.1 * r.nextGaussian());
        List<String> labels = new ArrayList<>();
        for (int c = 0; c < classes; c++) labels.add("c" + c);
        return new LinearHead(w, b, labels, pooling, Map.of());
    }

    /** Random ids in [1, vocab) ([PAD]-like 0 left out), segment 0 then 1 for the second half. */
    static Sequence sequence(int length, long seed) {
        Random r = new Random(seed);
        int[] ids = new int[length], types = new int[length], words = new int[length];
        for (int t = 0; t < length; t++) {
            ids[t] = 1 + r.nextInt(SMALL.vocabSize() - 1);
            types[t] = t < length / 2 ? 0 : 1;
            words[t] = t;
        }
        return new Sequence(ids, types, words, null);
    }

    static TokenBatch batchOf(Sequence s) {
        int[] mask = new int[s.length()];
        java.util.Arrays.fill(mask, 1);
        return new TokenBatch(1, s.length(), s.ids(), s.typeIds(), mask, null);
    }

    /** The encoder's output for one sequence on the CPU backend. */
    static Encoder.Output encoderOutput(Encoder enc, Sequence s, Pooling pooling) {
        return enc.forward(batchOf(s), pooling);
    }

    /** max |a - b| / max |b|. */
    static double relMaxError(double[] a, float[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            num = Math.max(num, Math.abs(a[i] - b[i]));
            den = Math.max(den, Math.abs(b[i]));
        }
        return num / den;
    }

    static double relMaxError(double[] a, double[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            num = Math.max(num, Math.abs(a[i] - b[i]));
            den = Math.max(den, Math.abs(b[i]));
        }
        return num / den;
    }

    /** Central finite difference of the target along coordinate i of the word vectors. */
    static double finiteDifference(Gradients g, Sequence s, double[] words, Target target, int i, double step) {
        double[] w = words.clone();
        w[i] = words[i] + step;
        double plus = target.value(g.forward(s, w).logits());
        w[i] = words[i] - step;
        double minus = target.value(g.forward(s, w).logits());
        return (plus - minus) / (2 * step);
    }

    static CpuBackend cpu() {
        return new CpuBackend();
    }
}
