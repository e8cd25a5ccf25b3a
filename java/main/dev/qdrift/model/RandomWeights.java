package dev.qdrift.model;

import dev.qdrift.QdriftException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;

/**
 * Seeded random BERT weights of a given shape, initialised as BERT's pretraining does (normal with
 * std 0.02 for matrices and embeddings, LayerNorm gamma near 1): for kernel tests and speed
 * benchmarks of shapes no built-in model has (BERT-base), where weight values do not matter but must
 * not be zeros.
 */
public final class RandomWeights {
    private RandomWeights() {}

    /** "shape:bert-base", "shape:minilm", "shape:bge-small". */
    public static BertConfig shape(String name) {
        return switch (name) {
            case "bert-base" -> BertConfig.BERT_BASE;
            case "minilm" -> BertConfig.MINILM_L6;
            case "bge-small" -> BertConfig.BGE_SMALL;
            default -> throw new QdriftException("unknown model shape '" + name + "': use shape:bert-base, shape:minilm or shape:bge-small");
        };
    }

    public static BertWeights generate(BertConfig c, long seed, boolean withPooler) {
        SplittableRandom root = new SplittableRandom(seed);
        int h = c.hidden(), f = c.intermediate();
        float[] word = normal(root, c.vocabSize() * h, 0.02f), pos = normal(root, c.maxPositions() * h, 0.02f),
                type = normal(root, c.typeVocabSize() * h, 0.02f);
        List<BertWeights.Layer> layers = new ArrayList<>();
        for (int l = 0; l < c.layers(); l++) {
            String p = "encoder.layer." + l + ".";
            layers.add(new BertWeights.Layer(linear(root, p + "attention.self.query", h, h), linear(root, p + "attention.self.key", h, h),
                    linear(root, p + "attention.self.value", h, h), linear(root, p + "attention.output.dense", h, h), norm(root, h),
                    linear(root, p + "intermediate.dense", f, h), linear(root, p + "output.dense", h, f), norm(root, h)));
        }
        return new BertWeights(c, word, pos, type, norm(root, h), List.copyOf(layers),
                withPooler ? linear(root, "pooler.dense", h, h) : null);
    }

    private static BertWeights.Linear linear(SplittableRandom root, String name, int out, int in) {
        return new BertWeights.Linear(name, normal(root, out * in, 0.02f), normal(root, out, 0.02f), out, in);
    }

    private static BertWeights.Norm norm(SplittableRandom root, int dim) {
        float[] g = normal(root, dim, 0.1f), b = normal(root, dim, 0.05f);
        for (int i = 0; i < dim; i++) g[i] += 1f;
        return new BertWeights.Norm(g, b);
    }

    private static float[] normal(SplittableRandom root, int n, float std) {
        Random r = new Random(root.nextLong());
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * std);
        return a;
    }
}
