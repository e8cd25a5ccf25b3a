package dev.qdrift.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qdrift.QdriftException;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.tokenizer.TokenBatch;
import dev.qdrift.model.tokenizer.Tokenizer;
import dev.qdrift.model.weights.Safetensors;
import dev.qdrift.model.weights.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ModelLoader}: a Hugging Face directory written from the built-in MiniLM's own weights must
 * reproduce it bit for bit; every broken directory must fail with a {@link QdriftException} naming the
 * file at fault; and the tokenizer's pairs, truncation and word ids.
 */
class ModelLoaderTest {
    private static final List<String> SENTENCES = List.of(
            "The quick brown fox jumps over the lazy dog.",
            "Quantization error grows with activation outliers.",
            "Hello!");

    private static final ObjectMapper JSON = new ObjectMapper();

    private static Model builtin;
    private static TokenBatch batch;
    private static Encoder.Output reference;

    @TempDir
    Path dir;

    @BeforeAll
    static void loadBuiltin() throws IOException {
        builtin = ModelLoader.load("builtin:minilm");
        batch = builtin.tokenizer().encodeBatch(SENTENCES, null);
        reference = new Encoder(builtin.weights(), new CpuBackend()).forward(batch, Pooling.CLS);
    }

    @AfterAll
    static void close() {
        builtin.tokenizer().close();
    }

    // ================================================================ built-ins

    @Test
    void builtinMiniLmHasItsConfigAndPooling() {
        assertEquals("builtin:minilm", builtin.id());
        assertEquals(BertConfig.MINILM_L6, builtin.config());
        assertEquals(Pooling.MEAN, builtin.defaultPooling());
        assertNull(builtin.weights().pooler(), "the MiniLM ONNX export has no pooler");
        assertTrue(builtin.classifier().isEmpty());
        assertNotNull(builtin.onnxBytes());
        assertEquals(6, builtin.weights().layers().size());
        assertEquals(128, builtin.tokenizer().maxLength());
    }

    @Test
    void unknownBuiltinAndMissingPathsAreRefused() {
        QdriftException e = assertThrows(QdriftException.class, () -> ModelLoader.load("builtin:bert-huge"));
        assertTrue(e.getMessage().contains("unknown built-in model 'bert-huge'"), e.getMessage());
        Path nowhere = dir.resolve("no/such/model");
        e = assertThrows(QdriftException.class, () -> ModelLoader.load(nowhere.toString()));
        assertTrue(e.getMessage().contains("'" + nowhere + "' not found"), e.getMessage());
    }

    // ================================================================ Hugging Face round trip

    @Test
    void sequenceClassificationCheckpointWithBertPrefixReproducesTheBuiltin() throws IOException {
        Random rnd = new Random(42);
        List<Tensor> tensors = new ArrayList<>(hfTensors(builtin.weights(), "bert."));
        Tensor poolerW = TinyModelDir.randomTensor("bert.pooler.dense.weight", rnd, 384, 384);
        Tensor poolerB = TinyModelDir.randomTensor("bert.pooler.dense.bias", rnd, 384);
        Tensor clsW = TinyModelDir.randomTensor("classifier.weight", rnd, 2, 384);
        Tensor clsB = TinyModelDir.randomTensor("classifier.bias", rnd, 2);
        tensors.addAll(List.of(poolerW, poolerB, clsW, clsB));
        Collections.shuffle(tensors, rnd); // the loader must go by name, not by order
        TinyModelDir.writeHfDir(dir, tensors, c -> {});

        Model m = ModelLoader.load(dir.toString());
        assertEquals(BertConfig.MINILM_L6, m.config());
        assertEquals(Pooling.POOLER, m.defaultPooling(), "a checkpoint with a pooler defaults to it");

        // The classifier head is handed through untouched.
        assertEquals(List.of("classifier.bias", "classifier.weight"), m.classifier().keySet().stream().sorted().toList());
        assertArrayEquals(new int[] {2, 384}, m.classifier().get("classifier.weight").shape());
        assertArrayEquals(clsW.data(), m.classifier().get("classifier.weight").data());
        assertArrayEquals(clsB.data(), m.classifier().get("classifier.bias").data());

        assertSameEncoderWeights(builtin.weights(), m.weights());
        assertArrayEquals(poolerW.data(), m.weights().pooler().weight());
        assertArrayEquals(poolerB.data(), m.weights().pooler().bias());

        Encoder enc = new Encoder(m.weights(), new CpuBackend());
        assertTrue(enc.hasPooler());
        TokenBatch b = m.tokenizer().encodeBatch(SENTENCES, null);
        assertArrayEquals(batch.ids(), b.ids(), "the copied tokenizer.json tokenizes the same");
        Encoder.Output out = enc.forward(b, Pooling.POOLER);
        assertSameHiddenState(reference.lastHidden(), out.lastHidden());

        // POOLER = tanh(W h_CLS + b), computed here in double from the weights we wrote.
        int h = 384;
        for (int row = 0; row < SENTENCES.size(); row++) {
            int cls = row * out.seq() * h;
            for (int j = 0; j < h; j++) {
                double z = poolerB.data()[j];
                for (int i = 0; i < h; i++) z += (double) poolerW.data()[j * h + i] * out.lastHidden()[cls + i];
                assertEquals(Math.tanh(z), out.pooled()[row * h + j], 1e-5, "pooled[" + row + "][" + j + "]");
            }
        }
        m.tokenizer().close();
    }

    @Test
    void bertModelCheckpointWithoutPrefixReproducesTheBuiltin() throws IOException {
        TinyModelDir.writeHfDir(dir, hfTensors(builtin.weights(), ""), c -> {});
        Model m = ModelLoader.load(dir.toString());
        assertEquals(BertConfig.MINILM_L6, m.config());
        assertEquals(Pooling.CLS, m.defaultPooling());
        assertTrue(m.classifier().isEmpty());
        assertNull(m.weights().pooler());
        assertNull(m.onnxBytes(), "no model.onnx in the directory");

        assertSameEncoderWeights(builtin.weights(), m.weights());

        Encoder enc = new Encoder(m.weights(), new CpuBackend());
        Encoder.Output out = enc.forward(m.tokenizer().encodeBatch(SENTENCES, null), Pooling.CLS);
        assertSameHiddenState(reference.lastHidden(), out.lastHidden());
        assertSameHiddenState(reference.pooled(), out.pooled());
        QdriftException e = assertThrows(QdriftException.class, () -> enc.forward(batch, Pooling.POOLER));
        assertTrue(e.getMessage().contains("needs pooler weights"), e.getMessage());
        m.tokenizer().close();
    }

    /** Every weight of the encoder, bit for bit (assertArrayEquals on float[] compares the bits). */
    private static void assertSameEncoderWeights(BertWeights expected, BertWeights actual) {
        assertEquals(expected.config(), actual.config());
        assertArrayEquals(expected.wordEmbeddings(), actual.wordEmbeddings(), "word embeddings");
        assertArrayEquals(expected.positionEmbeddings(), actual.positionEmbeddings(), "position embeddings");
        assertArrayEquals(expected.typeEmbeddings(), actual.typeEmbeddings(), "type embeddings");
        assertArrayEquals(expected.embeddingNorm().gamma(), actual.embeddingNorm().gamma());
        assertArrayEquals(expected.embeddingNorm().beta(), actual.embeddingNorm().beta());
        assertEquals(expected.layers().size(), actual.layers().size());
        for (int l = 0; l < expected.layers().size(); l++) {
            BertWeights.Layer e = expected.layers().get(l), a = actual.layers().get(l);
            for (int i = 0; i < 6; i++) {
                BertWeights.Linear el = e.linears().get(i), al = a.linears().get(i);
                assertEquals(el.name(), al.name());
                assertEquals(el.out(), al.out(), el.name());
                assertEquals(el.in(), al.in(), el.name());
                assertArrayEquals(el.weight(), al.weight(), el.name() + ".weight");
                assertArrayEquals(el.bias(), al.bias(), el.name() + ".bias");
            }
            for (BertWeights.Norm[] n : new BertWeights.Norm[][] {{e.attentionNorm(), a.attentionNorm()}, {e.outputNorm(), a.outputNorm()}}) {
                assertArrayEquals(n[0].gamma(), n[1].gamma(), "layer " + l + " LayerNorm gamma");
                assertArrayEquals(n[0].beta(), n[1].beta(), "layer " + l + " LayerNorm beta");
            }
        }
    }

    /**
     * Same weights and ids must give the same hidden state. Not compared bit for bit: CpuBackend's
     * FloatVector.reduceLanes(ADD) (LayerNorm mean, softmax sum) sums lanes in a different order once C2
     * compiles it, so two forward passes in one JVM differ by ~1e-5 depending on JIT state. Wrong or
     * transposed weights would differ by O(1).
     */
    private static void assertSameHiddenState(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++)
            assertEquals(expected[i], actual[i], 1e-4f, "hidden[" + i + "]");
    }

    // ================================================================ broken directories (tiny model)

    /** A 2-layer, 8-wide BERT with the real vocabulary size, so the real tokenizer.json fits it. */
    private static final int TINY_H = TinyModelDir.HIDDEN, TINY_F = TinyModelDir.FFN, TINY_LAYERS = TinyModelDir.LAYERS;

    @Test
    void tinyDirectoryLoads() throws IOException {
        TinyModelDir.write(dir, c -> {}, t -> {});
        Model m = ModelLoader.load(dir.toString());
        assertEquals(new BertConfig(30522, TINY_H, TINY_LAYERS, 2, TINY_F, 512, 2, 1e-12f), m.config());
        Encoder.Output out = new Encoder(m.weights(), new CpuBackend()).forward(m.tokenizer().encodeBatch(SENTENCES, null), Pooling.MEAN);
        for (float v : out.pooled()) assertTrue(Float.isFinite(v));
        m.tokenizer().close();
    }

    @Test
    void missingFilesAreNamed() throws IOException {
        for (String missing : List.of("config.json", "model.safetensors", "tokenizer.json")) {
            Path d = dir.resolve("without-" + missing);
            TinyModelDir.write(d, c -> {}, t -> {});
            Files.delete(d.resolve(missing));
            QdriftException e = assertThrows(QdriftException.class, () -> ModelLoader.load(d.toString()), missing);
            assertTrue(e.getMessage().startsWith(d + ": missing " + missing), e.getMessage());
        }
    }

    @Test
    void configThatIsNotJsonIsRefusedNamingTheFile() throws IOException {
        TinyModelDir.write(dir, c -> {}, t -> {});
        Files.writeString(dir.resolve("config.json"), "{\"hidden_size\": 8,");
        assertLoadFails(dir, dir.resolve("config.json") + ": cannot read config.json");
        Files.writeString(dir.resolve("config.json"), "[1, 2]");
        assertLoadFails(dir, dir.resolve("config.json") + ": config.json is not a JSON object");
    }

    @Test
    void configMissingAFieldIsRefusedNamingTheFile() throws IOException {
        TinyModelDir.write(dir, c -> c.remove("num_attention_heads"), t -> {});
        assertLoadFails(dir, dir.resolve("config.json") + ": config.json field 'num_attention_heads' is missing or not an integer");
    }

    @Test
    void hiddenSizeNotDivisibleByHeadsIsRefusedNamingTheFile() throws IOException {
        TinyModelDir.write(dir, c -> c.put("num_attention_heads", 3), t -> {});
        QdriftException e = assertThrows(QdriftException.class, () -> ModelLoader.load(dir.toString()));
        assertTrue(e.getMessage().contains("not divisible by 3 heads"), e.getMessage());
        assertTrue(e.getMessage().contains("config.json"), "the message does not name the file: " + e.getMessage());
    }

    @Test
    void unsupportedActivationIsRefusedNamingTheFile() throws IOException {
        TinyModelDir.write(dir, c -> c.put("hidden_act", "relu"), t -> {});
        assertLoadFails(dir, dir.resolve("config.json") + ": hidden_act 'relu' is not supported");
    }

    @Test
    void configAndWeightsShapeConflictIsRefusedNamingTheFile() throws IOException {
        TinyModelDir.write(dir, c -> c.put("intermediate_size", 12), t -> {});
        assertLoadFails(dir, dir.resolve("model.safetensors") + ": tensor 'encoder.layer.0.intermediate.dense.weight' has shape ["
                + TINY_F + ", " + TINY_H + "] but the config needs [12, " + TINY_H + "]");
    }

    @Test
    void missingTensorIsRefusedByName() throws IOException {
        TinyModelDir.write(dir, c -> {}, t -> t.remove("encoder.layer.1.output.dense.bias"));
        assertLoadFails(dir, dir.resolve("model.safetensors") + ": missing tensor 'encoder.layer.1.output.dense.bias' (expected shape [8])");
    }

    @Test
    void unknownExtraTensorIsRefusedByName() throws IOException {
        TinyModelDir.write(dir, c -> {}, t -> t.put("encoder.layer.0.attention.self.rotary", new Tensor("encoder.layer.0.attention.self.rotary", new int[] {2}, new float[2])));
        assertLoadFails(dir, dir.resolve("model.safetensors") + ": unexpected tensors for a 2-layer BERT: [encoder.layer.0.attention.self.rotary]");
    }

    @Test
    void configWithFewerLayersThanTheWeightsIsRefused() throws IOException {
        TinyModelDir.write(dir, c -> c.put("num_hidden_layers", 1), t -> {});
        QdriftException e = assertThrows(QdriftException.class, () -> ModelLoader.load(dir.toString()));
        assertTrue(e.getMessage().startsWith(dir.resolve("model.safetensors") + ": unexpected tensors for a 1-layer BERT: [encoder.layer.1."),
                e.getMessage());
    }

    @Test
    void corruptSafetensorsIsRefusedNamingTheFile() throws IOException {
        TinyModelDir.write(dir, c -> {}, t -> {});
        Path weights = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(weights);
        Files.write(weights, Arrays.copyOf(all, all.length - 4));
        QdriftException e = assertThrows(QdriftException.class, () -> ModelLoader.load(dir.toString()));
        assertTrue(e.getMessage().startsWith(weights + ": "), e.getMessage());
    }

    @Test
    void float32PositionIdsBufferIsIgnored() throws IOException {
        TinyModelDir.write(dir, c -> {}, t -> t.put("embeddings.position_ids", new Tensor("embeddings.position_ids", new int[] {1, 512}, new float[512])));
        Model m = ModelLoader.load(dir.toString());
        assertEquals(TINY_LAYERS, m.weights().layers().size());
        m.tokenizer().close();
    }

    @Test
    void int64PositionIdsBufferAsTransformersSavesItIsIgnored() throws IOException {
        // Checkpoints saved by transformers < 4.31 (bge-small-en-v1.5, all-MiniLM-L6-v2, ...) carry
        // "embeddings.position_ids" as an I64 [1, 512] buffer. The loader means to ignore it.
        TinyModelDir.write(dir, c -> {}, t -> {});
        Map<String, Tensor> tensors = Safetensors.read(dir.resolve("model.safetensors"));
        ByteBuffer ids = ByteBuffer.allocate(8 * 512).order(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < 512; i++) ids.putLong(i);
        writeSafetensorsWithExtra(dir.resolve("model.safetensors"), tensors.values(), "bert.embeddings.position_ids", "I64",
                new int[] {1, 512}, ids.array());
        Model m = ModelLoader.load(dir.toString());
        assertEquals(TINY_LAYERS, m.weights().layers().size());
        m.tokenizer().close();
    }

    private static void assertLoadFails(Path d, String messageStart) {
        QdriftException e = assertThrows(QdriftException.class, () -> ModelLoader.load(d.toString()));
        assertTrue(e.getMessage().startsWith(messageStart), "expected '" + messageStart + "...' but got: " + e.getMessage());
    }

    // ================================================================ tokenizer

    @Test
    void sentencePairGetsSegmentIdsAndSeparators() {
        Tokenizer tok = builtin.tokenizer();
        Tokenizer.Encoded e = tok.encode("the cat sat", "a dog ran");
        assertArrayEquals(new String[] {"[CLS]", "the", "cat", "sat", "[SEP]", "a", "dog", "ran", "[SEP]"}, e.tokens());
        assertArrayEquals(new int[] {0, 0, 0, 0, 0, 1, 1, 1, 1}, e.typeIds());
        assertEquals(101, e.ids()[0]);
        assertEquals(102, e.ids()[4]);
        assertEquals(102, e.ids()[8]);
        assertArrayEquals(new int[] {-1, 0, 1, 2, -1, 0, 1, 2, -1}, e.wordIds());
        assertFalse(e.truncated());

        TokenBatch b = tok.encodeBatch(List.of("the cat sat", "hi"), List.of("a dog ran", "yo"));
        assertEquals(9, b.seqLen());
        assertArrayEquals(new int[] {1, 1, 1, 1, 1, 0, 0, 0, 0}, Arrays.copyOfRange(b.mask(), 9, 18), "second row padded");
        assertArrayEquals(new int[] {0, 0, 0, 1, 1, 0, 0, 0, 0}, Arrays.copyOfRange(b.typeIds(), 9, 18));
    }

    @Test
    void longInputIsTruncatedToMaxLengthAndCounted() {
        Tokenizer tok = builtin.tokenizer();
        String longText = String.join(" ", Collections.nCopies(600, "word"));
        long before = tok.truncatedCount();
        Tokenizer.Encoded e = tok.encode(longText, null);
        assertEquals(128, e.length());
        assertTrue(e.truncated());
        assertEquals(101, e.ids()[0]);
        assertEquals(102, e.ids()[127], "truncation keeps the closing [SEP]");
        assertEquals(before + 1, tok.truncatedCount());
        tok.encode("short", null);
        assertEquals(before + 1, tok.truncatedCount(), "short inputs are not counted");
        tok.encode(longText, "and a pair");
        assertEquals(before + 2, tok.truncatedCount());
    }

    @Test
    void wordIdsMapWordPiecesToTheirWord() {
        Tokenizer.Encoded e = builtin.tokenizer().encode("Tokenization is unbelievably hard", null);
        String[] t = e.tokens();
        int[] w = e.wordIds();
        assertEquals("[CLS]", t[0]);
        assertEquals(-1, w[0]);
        assertEquals("[SEP]", t[t.length - 1]);
        assertEquals(-1, w[t.length - 1]);
        // Word 0 ("tokenization") and word 2 ("unbelievably") are split into several pieces each.
        for (int word : new int[] {0, 2}) {
            List<Integer> pieces = new ArrayList<>();
            for (int i = 0; i < w.length; i++) if (w[i] == word) pieces.add(i);
            assertTrue(pieces.size() >= 2, "word " + word + " should split: " + Arrays.toString(t));
            for (int k = 1; k < pieces.size(); k++) {
                assertEquals(pieces.get(k - 1) + 1, pieces.get(k), "pieces of a word are contiguous");
                assertTrue(t[pieces.get(k)].startsWith("##"), t[pieces.get(k)]);
            }
        }
        // Words are numbered in order, every real token has one, and there are exactly 4.
        int last = -1;
        for (int i = 1; i < w.length - 1; i++) {
            assertTrue(w[i] == last || w[i] == last + 1, Arrays.toString(w));
            last = w[i];
        }
        assertEquals(3, last);
        assertEquals(1, count(w, 1), "'is' is one piece");
        assertEquals(1, count(w, 3), "'hard' is one piece");
    }

    @Test
    void emptyTextIsRefused() {
        assertThrows(QdriftException.class, () -> builtin.tokenizer().encode("", null));
    }

    // ================================================================ helpers

    private static int count(int[] a, int v) {
        int n = 0;
        for (int x : a) if (x == v) n++;
        return n;
    }

    /** BertWeights back to Hugging Face tensors (linear weights are [out, in] in both). */
    static List<Tensor> hfTensors(BertWeights w, String prefix) {
        BertConfig c = w.config();
        int h = c.hidden();
        List<Tensor> out = new ArrayList<>();
        out.add(new Tensor(prefix + "embeddings.word_embeddings.weight", new int[] {c.vocabSize(), h}, w.wordEmbeddings()));
        out.add(new Tensor(prefix + "embeddings.position_embeddings.weight", new int[] {c.maxPositions(), h}, w.positionEmbeddings()));
        out.add(new Tensor(prefix + "embeddings.token_type_embeddings.weight", new int[] {c.typeVocabSize(), h}, w.typeEmbeddings()));
        addNorm(out, prefix + "embeddings.LayerNorm", w.embeddingNorm());
        for (int l = 0; l < w.layers().size(); l++) {
            BertWeights.Layer layer = w.layers().get(l);
            String p = prefix + "encoder.layer." + l + ".";
            for (BertWeights.Linear lin : layer.linears()) {
                assertTrue(lin.name().startsWith("encoder.layer." + l + "."), lin.name());
                out.add(new Tensor(prefix + lin.name() + ".weight", new int[] {lin.out(), lin.in()}, lin.weight()));
                out.add(new Tensor(prefix + lin.name() + ".bias", new int[] {lin.out()}, lin.bias()));
            }
            addNorm(out, p + "attention.output.LayerNorm", layer.attentionNorm());
            addNorm(out, p + "output.LayerNorm", layer.outputNorm());
        }
        if (w.pooler() != null) {
            out.add(new Tensor(prefix + "pooler.dense.weight", new int[] {h, h}, w.pooler().weight()));
            out.add(new Tensor(prefix + "pooler.dense.bias", new int[] {h}, w.pooler().bias()));
        }
        return out;
    }

    private static void addNorm(List<Tensor> out, String name, BertWeights.Norm n) {
        out.add(new Tensor(name + ".weight", new int[] {n.gamma().length}, n.gamma()));
        out.add(new Tensor(name + ".bias", new int[] {n.beta().length}, n.beta()));
    }

    /** A safetensors file written by hand: F32 tensors plus one tensor of another dtype (e.g. I64). */
    private static void writeSafetensorsWithExtra(Path file, java.util.Collection<Tensor> tensors, String extraName,
                                                  String extraDtype, int[] extraShape, byte[] extraData) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode e = header.putObject(t.name());
            e.put("dtype", "F32");
            e.putPOJO("shape", t.shape());
            e.putArray("data_offsets").add(offset).add(offset + 4L * t.data().length);
            offset += 4L * t.data().length;
        }
        ObjectNode e = header.putObject(extraName);
        e.put("dtype", extraDtype);
        e.putPOJO("shape", extraShape);
        e.putArray("data_offsets").add(offset).add(offset + extraData.length);
        byte[] json = JSON.writeValueAsBytes(header);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + (int) offset + extraData.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json);
        for (Tensor t : tensors) for (float v : t.data()) b.putFloat(v);
        b.put(extraData);
        Files.write(file, b.array());
    }
}
