package dev.qdrift.model;

import dev.qdrift.QdriftException;
import dev.qdrift.model.weights.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * FP32 weights of a BERT encoder, named and shaped as in Hugging Face's BertModel. Linear weights
 * are [out, in] row-major, so y = x W^T + b reads both operands along contiguous rows.
 */
public record BertWeights(BertConfig config, float[] wordEmbeddings, float[] positionEmbeddings,
                          float[] typeEmbeddings, Norm embeddingNorm, List<Layer> layers, Linear pooler) {

    public record Linear(String name, float[] weight, float[] bias, int out, int in) {
        /** W^T, [in, out] row-major: the layout for products that run along W's columns. */
        public float[] transposedWeight() {
            return new Tensor(name, new int[] {out, in}, weight).transposed().data();
        }
    }

    public record Norm(float[] gamma, float[] beta) {}

    public record Layer(Linear query, Linear key, Linear value, Linear attentionOutput, Norm attentionNorm,
                        Linear intermediate, Linear output, Norm outputNorm) {
        /** The six linear layers in forward order. */
        public List<Linear> linears() {
            return List.of(query, key, value, attentionOutput, intermediate, output);
        }

        /**
         * Query, key and value as one linear layer [3 hidden, hidden]: their weights' rows and their biases one after
         * the other, so that one product gives each token's q | k | v (the packed layout {@code Backend#attention}
         * reads) from the input read once.
         */
        public Linear queryKeyValue() {
            int out = query.out() + key.out() + value.out(), in = query.in();
            if (key.in() != in || value.in() != in)
                throw new IllegalStateException("query, key and value take inputs of " + in + ", " + key.in() + " and " + value.in());
            float[] w = new float[out * in], b = new float[out];
            int row = 0;
            for (Linear l : List.of(query, key, value)) {
                System.arraycopy(l.weight(), 0, w, row * in, l.out() * in);
                System.arraycopy(l.bias(), 0, b, row, l.out());
                row += l.out();
            }
            return new Linear(query.name().replaceFirst("query$", "query_key_value"), w, b, out, in);
        }
    }

    /**
     * Builds the weights from tensors with Hugging Face names (no "bert." prefix; linear weights
     * [out, in]), checking that every expected tensor is there with its expected shape and that
     * nothing unknown is left over. {@code ignored} names (e.g. a classifier head) are allowed.
     */
    public static BertWeights fromNamedTensors(Map<String, Tensor> tensors, BertConfig c, String source, Set<String> ignored) {
        Set<String> used = new HashSet<>();
        Reader r = new Reader(tensors, source, used);
        int h = c.hidden(), f = c.intermediate();
        float[] word = r.get("embeddings.word_embeddings.weight", c.vocabSize(), h);
        float[] pos = r.get("embeddings.position_embeddings.weight", c.maxPositions(), h);
        float[] type = r.get("embeddings.token_type_embeddings.weight", c.typeVocabSize(), h);
        Norm embNorm = r.norm("embeddings.LayerNorm", h);
        List<Layer> layers = new ArrayList<>();
        for (int l = 0; l < c.layers(); l++) {
            String p = "encoder.layer." + l + ".";
            layers.add(new Layer(
                    r.linear(p + "attention.self.query", h, h),
                    r.linear(p + "attention.self.key", h, h),
                    r.linear(p + "attention.self.value", h, h),
                    r.linear(p + "attention.output.dense", h, h),
                    r.norm(p + "attention.output.LayerNorm", h),
                    r.linear(p + "intermediate.dense", f, h),
                    r.linear(p + "output.dense", h, f),
                    r.norm(p + "output.LayerNorm", h)));
        }
        Linear pooler = tensors.containsKey("pooler.dense.weight") ? r.linear("pooler.dense", h, h) : null;
        Set<String> extra = new TreeSet<>(tensors.keySet());
        extra.removeAll(used);
        extra.removeAll(ignored);
        if (!extra.isEmpty())
            throw new QdriftException(source + ": unexpected tensors for a " + c.layers() + "-layer BERT: "
                    + abbreviate(extra) + " (does config.json match the weights?)");
        return new BertWeights(c, word, pos, type, embNorm, List.copyOf(layers), pooler);
    }

    private record Reader(Map<String, Tensor> tensors, String source, Set<String> used) {
        float[] get(String name, int... shape) {
            Tensor t = tensors.get(name);
            if (t == null) throw new QdriftException(source + ": missing tensor '" + name + "' (expected shape "
                    + Arrays.toString(shape) + ")");
            if (!Arrays.equals(t.shape(), shape))
                throw new QdriftException(source + ": tensor '" + name + "' has shape " + t.shapeString()
                        + " but the config needs " + Arrays.toString(shape));
            used.add(name);
            return t.data();
        }

        Linear linear(String name, int out, int in) {
            return new Linear(name, get(name + ".weight", out, in), get(name + ".bias", out), out, in);
        }

        Norm norm(String name, int dim) {
            return new Norm(get(name + ".weight", dim), get(name + ".bias", dim));
        }
    }

    private static String abbreviate(Set<String> names) {
        List<String> l = new ArrayList<>(names);
        return l.size() <= 5 ? l.toString() : l.subList(0, 5) + " and " + (l.size() - 5) + " more";
    }
}
