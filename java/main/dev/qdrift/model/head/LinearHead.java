package dev.qdrift.model.head;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qdrift.QdriftException;
import dev.qdrift.model.weights.Safetensors;
import dev.qdrift.model.weights.Tensor;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A linear classifier on pooled encoder embeddings: {@code logits = weight · embedding + bias}.
 *
 * <p>Stored as safetensors with the tensor names Hugging Face's {@code BertForSequenceClassification}
 * uses ({@code classifier.weight} [C, D], {@code classifier.bias} [C]), so a head can be moved
 * between the two worlds by copying two tensors. The safetensors header metadata carries what the
 * tensors cannot: {@code label_names} (a JSON array), {@code pooling}, and free-form provenance
 * (model id, data set, seed, accuracy ...), kept verbatim in {@link #metadata()}.
 *
 * <p>The arrays are exposed as-is for speed; treat them as read-only. As with any record holding
 * arrays, {@code equals} compares them by reference.
 *
 * @param weight [numClasses][dim]
 * @param bias [numClasses]
 * @param labelNames one name per class, in class-index order
 * @param pooling how token states become the embedding: "cls", "mean" or "pooler"
 * @param metadata provenance, string to string; must not use the reserved keys
 */
public record LinearHead(
        float[][] weight, float[] bias, List<String> labelNames, String pooling, Map<String, String> metadata) {

    public static final String WEIGHT = "classifier.weight";
    public static final String BIAS = "classifier.bias";
    public static final String LABEL_NAMES_KEY = "label_names";
    public static final String POOLING_KEY = "pooling";
    public static final List<String> POOLINGS = List.of("cls", "mean", "pooler");

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Rejects inconsistent heads; these are programming errors, {@link #load} reports bad files itself. */
    public LinearHead {
        if (weight.length < 2) {
            throw new IllegalArgumentException("a classifier needs at least 2 classes, got " + weight.length);
        }
        int dim = weight[0].length;
        if (dim == 0) throw new IllegalArgumentException("embedding dimension is 0");
        for (int c = 0; c < weight.length; c++) {
            if (weight[c].length != dim) {
                throw new IllegalArgumentException("weight row " + c + " has " + weight[c].length + " values, row 0 has " + dim);
            }
        }
        if (bias.length != weight.length) {
            throw new IllegalArgumentException("bias has " + bias.length + " values for " + weight.length + " classes");
        }
        if (labelNames.size() != weight.length) {
            throw new IllegalArgumentException(labelNames.size() + " label names for " + weight.length + " classes");
        }
        if (!isPooling(pooling)) {
            throw new IllegalArgumentException("pooling must be one of " + POOLINGS + ", got '" + pooling + "'");
        }
        if (metadata.containsKey(LABEL_NAMES_KEY) || metadata.containsKey(POOLING_KEY)) {
            throw new IllegalArgumentException("provenance must not use the reserved keys " + LABEL_NAMES_KEY + ", " + POOLING_KEY);
        }
        labelNames = List.copyOf(labelNames);
        // Sorted so that saved files (and their headers) do not depend on the caller's map order.
        metadata = Collections.unmodifiableMap(new TreeMap<>(metadata));
    }

    /** Null-safe membership in {@link #POOLINGS} (List.of(...).contains(null) throws). */
    public static boolean isPooling(String pooling) {
        return pooling != null && POOLINGS.contains(pooling);
    }

    public int numClasses() {
        return weight.length;
    }

    public int dim() {
        return weight[0].length;
    }

    /** The same head with {@code extra} provenance added (overriding equal keys). */
    public LinearHead withMetadata(Map<String, String> extra) {
        Map<String, String> merged = new TreeMap<>(metadata);
        merged.putAll(extra);
        return new LinearHead(weight, bias, labelNames, pooling, merged);
    }

    /** Raw class scores. Accumulates in double so that the result does not depend on summation noise. */
    public float[] logits(float[] embedding) {
        if (embedding.length != dim()) {
            throw new IllegalArgumentException("embedding has " + embedding.length + " values, head expects " + dim());
        }
        float[] out = new float[weight.length];
        for (int c = 0; c < weight.length; c++) {
            float[] w = weight[c];
            double s = bias[c];
            for (int j = 0; j < w.length; j++) s += (double) w[j] * embedding[j];
            out[c] = (float) s;
        }
        return out;
    }

    /** Index of the largest logit; ties go to the lowest index so predictions are reproducible. */
    public int predict(float[] embedding) {
        return argmax(logits(embedding));
    }

    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /**
     * Softmax that does not overflow: subtracting the maximum first leaves exp's argument ≤ 0, so
     * logits like 1000 give probabilities instead of inf/inf = NaN.
     */
    public static float[] softmax(float[] logits) {
        float max = Float.NEGATIVE_INFINITY;
        for (float z : logits) max = Math.max(max, z);
        double[] e = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            e[i] = Math.exp((double) logits[i] - max);
            sum += e[i];
        }
        float[] p = new float[logits.length];
        for (int i = 0; i < logits.length; i++) p[i] = (float) (e[i] / sum);
        return p;
    }

    /**
     * Fails with a user-facing message when this head was trained on embeddings of another width,
     * e.g. a 768-dim head used with a 384-dim MiniLM.
     */
    public void checkDim(int encoderDim, String modelName) {
        if (encoderDim != dim()) {
            throw new QdriftException("head expects " + dim() + "-dim embeddings, model " + modelName + " gives " + encoderDim);
        }
    }

    public void save(Path file) {
        int c = numClasses(), d = dim();
        float[] w = new float[c * d];
        for (int i = 0; i < c; i++) System.arraycopy(weight[i], 0, w, i * d, d);
        Map<String, String> meta = new LinkedHashMap<>();
        try {
            meta.put(LABEL_NAMES_KEY, JSON.writeValueAsString(labelNames));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode label names", e); // a List<String> always encodes
        }
        meta.put(POOLING_KEY, pooling);
        meta.putAll(metadata);
        Safetensors.write(file, List.of(new Tensor(WEIGHT, new int[] {c, d}, w), new Tensor(BIAS, new int[] {c}, bias.clone())), meta);
    }

    /**
     * Reads a head written by {@link #save}, checking everything {@link #logits} relies on, so a
     * bad file fails here with its name rather than later with an index error.
     */
    public static LinearHead load(Path file) {
        Map<String, Tensor> tensors = Safetensors.read(file);
        Map<String, String> meta = Safetensors.readMetadata(file);
        Tensor w = require(tensors, WEIGHT, 2, file);
        Tensor b = require(tensors, BIAS, 1, file);
        int c = w.dim(0), d = w.dim(1);
        if (c < 2 || d < 1) {
            throw new QdriftException(file + ": " + WEIGHT + " has shape " + w.shapeString()
                    + "; a classifier head needs at least 2 classes and 1 input dimension");
        }
        if (b.dim(0) != c) {
            throw new QdriftException(file + ": " + BIAS + " has shape " + b.shapeString() + " but "
                    + WEIGHT + " has shape " + w.shapeString() + " (" + c + " classes)");
        }
        requireFinite(w, file);
        requireFinite(b, file);

        String labelsJson = meta.get(LABEL_NAMES_KEY);
        if (labelsJson == null) {
            throw new QdriftException(file + ": metadata has no '" + LABEL_NAMES_KEY + "' (a JSON array of class names)");
        }
        List<String> labels;
        try {
            labels = JSON.readValue(labelsJson, new TypeReference<List<String>>() {});
        } catch (JsonProcessingException e) {
            throw new QdriftException(file + ": metadata '" + LABEL_NAMES_KEY + "' is not a JSON array of strings: " + labelsJson, e);
        }
        if (labels == null || labels.contains(null)) {
            throw new QdriftException(file + ": metadata '" + LABEL_NAMES_KEY + "' is not a JSON array of strings: " + labelsJson);
        }
        if (labels.size() != c) {
            throw new QdriftException(file + ": " + labels.size() + " label names but " + WEIGHT + " has " + c + " classes");
        }
        String pooling = meta.get(POOLING_KEY);
        if (!isPooling(pooling)) {
            throw new QdriftException(file + ": metadata '" + POOLING_KEY + "' is " + (pooling == null ? "missing" : "'" + pooling + "'")
                    + "; expected one of " + POOLINGS);
        }

        float[][] weight = new float[c][d];
        for (int i = 0; i < c; i++) System.arraycopy(w.data(), i * d, weight[i], 0, d);
        Map<String, String> provenance = new TreeMap<>(meta);
        provenance.remove(LABEL_NAMES_KEY);
        provenance.remove(POOLING_KEY);
        return new LinearHead(weight, b.data().clone(), labels, pooling, provenance);
    }

    private static Tensor require(Map<String, Tensor> tensors, String name, int rank, Path file) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new QdriftException(file + ": missing tensor " + name + " (a linear head needs "
                    + WEIGHT + " [C, D] and " + BIAS + " [C]; the file holds " + tensors.size() + " other tensors)");
        }
        if (t.rank() != rank) {
            throw new QdriftException(file + ": " + name + " has shape " + t.shapeString() + ", expected rank " + rank);
        }
        return t;
    }

    private static void requireFinite(Tensor t, Path file) {
        float[] v = t.data();
        for (int i = 0; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                throw new QdriftException(file + ": " + t.name() + " holds a non-finite value (" + v[i] + ") at flat index " + i);
            }
        }
    }

    @Override
    public String toString() {
        return "LinearHead[" + numClasses() + " classes " + labelNames + ", dim " + dim() + ", pooling " + pooling
                + ", metadata " + metadata + ", bias " + Arrays.toString(bias) + "]";
    }
}
