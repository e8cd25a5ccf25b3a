package dev.qdrift.model.head;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.QdriftException;
import dev.qdrift.model.weights.Safetensors;
import dev.qdrift.model.weights.Tensor;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LinearHeadTest {
    @TempDir Path dir;

    static LinearHead sample() {
        float[][] w = {{0.5f, -1.25f, 2f}, {-0.125f, 3.5f, 1e-7f}};
        float[] b = {0.25f, -7.75f};
        return new LinearHead(w, b, List.of("negative", "positive \"quoted\""), "pooler",
                Map.of("model", "bge-small-en-v1.5", "data", "sst2/train", "seed", "17", "accuracy", "0.91"));
    }

    @Test
    void roundTrip() {
        LinearHead h = sample();
        Path f = dir.resolve("head.safetensors");
        h.save(f);
        LinearHead r = LinearHead.load(f);
        assertEquals(2, r.numClasses());
        assertEquals(3, r.dim());
        for (int c = 0; c < 2; c++) assertArrayEquals(h.weight()[c], r.weight()[c]);
        assertArrayEquals(h.bias(), r.bias());
        assertEquals(h.labelNames(), r.labelNames());
        assertEquals("pooler", r.pooling());
        assertEquals(h.metadata(), r.metadata());

        // The file uses Hugging Face's names and layout.
        Map<String, Tensor> t = Safetensors.read(f);
        assertArrayEquals(new int[] {2, 3}, t.get(LinearHead.WEIGHT).shape());
        assertArrayEquals(new float[] {0.5f, -1.25f, 2f, -0.125f, 3.5f, 1e-7f}, t.get(LinearHead.WEIGHT).data());
        assertArrayEquals(new int[] {2}, t.get(LinearHead.BIAS).shape());
        assertEquals("[\"negative\",\"positive \\\"quoted\\\"\"]", Safetensors.readMetadata(f).get("label_names"));
    }

    @Test
    void logitsAndPredict() {
        LinearHead h = sample();
        float[] e = {1f, 2f, 3f};
        // 0.5 - 2.5 + 6 + 0.25 = 4.25; -0.125 + 7 + 3e-7 - 7.75 = -0.875
        assertArrayEquals(new float[] {4.25f, -0.875f}, h.logits(e), 1e-6f);
        assertEquals(0, h.predict(e));
        assertEquals(1, h.predict(new float[] {0f, 10f, 0f}));
        assertThrows(IllegalArgumentException.class, () -> h.logits(new float[2]));
    }

    @Test
    void missingBiasFailsNamingFile() {
        Path f = dir.resolve("nobias.safetensors");
        Safetensors.write(f, List.of(new Tensor("classifier.weight", new int[] {2, 3}, new float[6])),
                Map.of("label_names", "[\"a\",\"b\"]", "pooling", "cls"));
        QdriftException e = assertThrows(QdriftException.class, () -> LinearHead.load(f));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("classifier.bias"), e.getMessage());
    }

    @Test
    void labelCountMismatchFailsNamingFile() {
        Path f = dir.resolve("labels.safetensors");
        writeHead(f, 2, 3, 2, Map.of("label_names", "[\"a\",\"b\",\"c\"]", "pooling", "cls"));
        QdriftException e = assertThrows(QdriftException.class, () -> LinearHead.load(f));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("3 label names"), e.getMessage());
    }

    @Test
    void otherBadFilesFailNamingFile() {
        Map<String, String> good = Map.of("label_names", "[\"a\",\"b\"]", "pooling", "cls");
        assertLoadFails("biasShape.safetensors", 2, 3, 3, good, "classifier.bias");
        Map<String, String> noLabels = new HashMap<>(good);
        noLabels.remove("label_names");
        assertLoadFails("noLabels.safetensors", 2, 3, 2, noLabels, "label_names");
        assertLoadFails("badJson.safetensors", 2, 3, 2, Map.of("label_names", "{not json", "pooling", "cls"), "label_names");
        assertLoadFails("pooling.safetensors", 2, 3, 2, Map.of("label_names", "[\"a\",\"b\"]", "pooling", "max"), "pooling");
        Map<String, String> noPooling = new HashMap<>(good);
        noPooling.remove("pooling");
        assertLoadFails("noPooling.safetensors", 2, 3, 2, noPooling, "pooling");
    }

    private void assertLoadFails(String name, int c, int d, int biasLen, Map<String, String> meta, String mentions) {
        Path f = dir.resolve(name);
        writeHead(f, c, d, biasLen, meta);
        QdriftException e = assertThrows(QdriftException.class, () -> LinearHead.load(f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains(mentions), e.getMessage());
    }

    private static void writeHead(Path f, int c, int d, int biasLen, Map<String, String> meta) {
        Safetensors.write(f, List.of(new Tensor("classifier.weight", new int[] {c, d}, new float[c * d]),
                new Tensor("classifier.bias", new int[] {biasLen}, new float[biasLen])), meta);
    }

    @Test
    void softmaxIsStable() {
        float[] p = LinearHead.softmax(new float[] {1000f, 1000f, 999f});
        double e = Math.exp(-1);
        assertEquals(1 / (2 + e), p[0], 1e-6);
        assertEquals(1 / (2 + e), p[1], 1e-6);
        assertEquals(e / (2 + e), p[2], 1e-6);

        float[] q = LinearHead.softmax(new float[] {-1000f, 0f, 1000f});
        assertArrayEquals(new float[] {0f, 0f, 1f}, q, 1e-7f);
        float sum = 0;
        for (float v : LinearHead.softmax(new float[] {3f, -2f, 0.5f, 7f})) sum += v;
        assertEquals(1f, sum, 1e-6f);
    }

    @Test
    void checkDim() {
        LinearHead h = sample();
        h.checkDim(3, "tiny");
        QdriftException e = assertThrows(QdriftException.class, () -> h.checkDim(384, "all-minilm-l6-v2"));
        assertEquals("head expects 3-dim embeddings, model all-minilm-l6-v2 gives 384", e.getMessage());
    }

    @Test
    void reservedMetadataKeysRejected() {
        LinearHead h = sample();
        assertThrows(IllegalArgumentException.class, () -> h.withMetadata(Map.of("pooling", "cls")));
        assertEquals("x", h.withMetadata(Map.of("seed", "x")).metadata().get("seed"));
    }
}
