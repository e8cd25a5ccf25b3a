package dev.qdrift.model.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.qdrift.QdriftException;
import dev.qdrift.model.BertConfig;
import dev.qdrift.model.BertWeights;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * ONNX parsing ({@link OnnxModel}) and Hugging Face name recovery ({@link OnnxBertTensors}): on the real
 * all-MiniLM-L6-v2 export, and on hostile inputs (empty, truncated, garbage, hand-built bad graphs),
 * which must all end in a {@link QdriftException} naming the source.
 */
class OnnxModelTest {
    private static final String SOURCE = "test.onnx";
    private static final Pattern AT_BYTE = Pattern.compile("at byte \\d+");

    private static byte[] miniLmBytes;
    private static OnnxModel miniLm;

    @BeforeAll
    static void parseMiniLm() throws IOException {
        try (InputStream in = OnnxModelTest.class.getClassLoader().getResourceAsStream("all-minilm-l6-v2.onnx")) {
            assertNotNull(in, "all-minilm-l6-v2.onnx is not on the test classpath");
            miniLmBytes = in.readAllBytes();
        }
        miniLm = OnnxModel.parse(miniLmBytes, "builtin:minilm");
    }

    // ================================================================ the real MiniLM export

    @Test
    void miniLmGraphHasTheExpectedInitializersNodesAndIo() {
        // 5 embedding tensors + 6 layers x (6 biases + 4 LayerNorm tensors) named, 6 x 6 anonymous MatMul weights.
        assertEquals(101, miniLm.initializers().size());
        assertEquals(36, miniLm.initializers().keySet().stream().filter(n -> n.startsWith("onnx::MatMul_")).count());
        assertEquals(48, miniLm.nodes().stream().filter(n -> n.opType().equals("MatMul")).count(),
                "36 weight MatMuls + 12 attention MatMuls (QK^T and PV per layer)");
        assertEquals(List.of("input_ids", "attention_mask", "token_type_ids"), miniLm.inputs());
        assertEquals(List.of("last_hidden_state"), miniLm.outputs());
        Tensor word = miniLm.initializers().get("embeddings.word_embeddings.weight");
        assertArrayEquals(new int[] {30522, 384}, word.shape());
    }

    @Test
    void namedTensorsGiveEveryHuggingFaceNameAndNoAnonymousOnes() {
        Map<String, Tensor> named = OnnxBertTensors.namedTensors(miniLm);

        Map<String, int[]> expected = new java.util.LinkedHashMap<>();
        expected.put("embeddings.word_embeddings.weight", new int[] {30522, 384});
        expected.put("embeddings.position_embeddings.weight", new int[] {512, 384});
        expected.put("embeddings.token_type_embeddings.weight", new int[] {2, 384});
        expected.put("embeddings.LayerNorm.weight", new int[] {384});
        expected.put("embeddings.LayerNorm.bias", new int[] {384});
        for (int l = 0; l < 6; l++) {
            String p = "encoder.layer." + l + ".";
            for (String lin : List.of("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")) {
                expected.put(p + lin + ".weight", new int[] {384, 384});
                expected.put(p + lin + ".bias", new int[] {384});
            }
            expected.put(p + "intermediate.dense.weight", new int[] {1536, 384});
            expected.put(p + "intermediate.dense.bias", new int[] {1536});
            expected.put(p + "output.dense.weight", new int[] {384, 1536});
            expected.put(p + "output.dense.bias", new int[] {384});
            for (String norm : List.of("attention.output.LayerNorm", "output.LayerNorm")) {
                expected.put(p + norm + ".weight", new int[] {384});
                expected.put(p + norm + ".bias", new int[] {384});
            }
        }
        assertEquals(101, expected.size());
        assertEquals(new TreeSet<>(expected.keySet()), new TreeSet<>(named.keySet()));
        for (Map.Entry<String, int[]> e : expected.entrySet()) {
            Tensor t = named.get(e.getKey());
            assertArrayEquals(e.getValue(), t.shape(), e.getKey());
            assertEquals(e.getKey(), t.name(), "a tensor keeps the name it is stored under");
        }
        assertTrue(named.keySet().stream().noneMatch(n -> n.startsWith("onnx::")));
    }

    @Test
    void mappedWeightsAreTheGraphsMatMulInitializersTransposed() {
        Map<String, Tensor> named = OnnxBertTensors.namedTensors(miniLm);
        for (String linear : List.of("encoder.layer.3.attention.self.query", "encoder.layer.3.intermediate.dense",
                "encoder.layer.3.output.dense")) {
            Tensor raw = rawMatMulWeightFeeding(miniLm, linear + ".bias"); // [in, out]
            Tensor w = named.get(linear + ".weight"); // [out, in]
            int in = raw.dim(0), out = raw.dim(1);
            assertArrayEquals(new int[] {out, in}, w.shape(), linear);
            for (int o = 0; o < out; o++)
                for (int i = 0; i < in; i++)
                    if (w.data()[o * in + i] != raw.data()[i * out + o])
                        fail(linear + ": W[" + o + "][" + i + "] = " + w.data()[o * in + i] + " but raw[" + i + "][" + o
                                + "] = " + raw.data()[i * out + o]);
        }
        // The square query matrix is not symmetric, so the check above could not pass untransposed.
        Tensor rawQ = rawMatMulWeightFeeding(miniLm, "encoder.layer.3.attention.self.query.bias");
        assertFalse(Arrays.equals(rawQ.data(), named.get("encoder.layer.3.attention.self.query.weight").data()));
        // Named initializers pass through unchanged.
        assertArrayEquals(miniLm.initializers().get("encoder.layer.3.output.dense.bias").data(),
                named.get("encoder.layer.3.output.dense.bias").data());
    }

    /** Walks the graph by hand: the Add reading {@code bias} has the MatMul output as its other input. */
    private static Tensor rawMatMulWeightFeeding(OnnxModel m, String bias) {
        OnnxModel.Node add = m.nodes().stream()
                .filter(n -> n.opType().equals("Add") && n.inputs().contains(bias)).findFirst().orElseThrow();
        String other = add.inputs().get(add.inputs().get(0).equals(bias) ? 1 : 0);
        OnnxModel.Node matmul = m.producer(other);
        assertEquals("MatMul", matmul.opType(), bias);
        Tensor raw = m.initializers().get(matmul.inputs().get(1));
        assertTrue(raw.name().startsWith("onnx::MatMul_"), raw.name());
        return raw;
    }

    // ================================================================ a tiny hand-built graph (control)

    @Test
    void tinyHandBuiltGraphMapsAndTransposes() {
        // y = x W + b with W stored [in=3, out=2]: the mapped weight is [2, 3].
        float[] w = {1, 2, 3, 4, 5, 6}; // rows of [3, 2]: (1,2) (3,4) (5,6)
        OnnxModel m = OnnxModel.parse(linearModel(new int[] {3, 2}, w, new int[] {2}, "MatMul", "Add"), SOURCE);
        assertEquals(2, m.initializers().size());
        assertEquals(List.of("x"), m.inputs());
        assertEquals(List.of("y"), m.outputs());
        Map<String, Tensor> named = OnnxBertTensors.namedTensors(m);
        assertEquals(Set.of("l0.dense.weight", "l0.dense.bias"), named.keySet());
        assertArrayEquals(new int[] {2, 3}, named.get("l0.dense.weight").shape());
        assertArrayEquals(new float[] {1, 3, 5, 2, 4, 6}, named.get("l0.dense.weight").data());
        assertArrayEquals(new float[] {0.5f, -0.5f}, named.get("l0.dense.bias").data());
    }

    @Test
    void floatDataFieldAndOtherFloatTypesAreRead() {
        // float_data (4, packed) instead of raw_data; and a float16 / double raw tensor; int64 is skipped.
        Proto packed = new Proto();
        for (float f : new float[] {1.5f, -2f}) packed.fixed32Raw(Float.floatToIntBits(f));
        Proto fd = new Proto().varint(1, 2).varint(2, 1).bytes(4, packed.toBytes()).string(8, "fd");
        Proto half = new Proto().varint(1, 2).varint(2, 10).string(8, "half")
                .bytes(9, le16(Float.floatToFloat16(0.25f), Float.floatToFloat16(-3f)));
        ByteBuffer d = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putDouble(0.125).putDouble(7);
        Proto dbl = new Proto().varint(1, 2).varint(2, 11).string(8, "dbl").bytes(9, d.array());
        Proto ints = new Proto().varint(1, 1).varint(2, 7).string(8, "shape").bytes(9, new byte[8]);
        Proto graph = new Proto().message(5, fd).message(5, half).message(5, dbl).message(5, ints);
        OnnxModel m = OnnxModel.parse(model(graph), SOURCE);
        assertEquals(Set.of("fd", "half", "dbl"), m.initializers().keySet());
        assertArrayEquals(new float[] {1.5f, -2f}, m.initializers().get("fd").data());
        assertArrayEquals(new float[] {0.25f, -3f}, m.initializers().get("half").data());
        assertArrayEquals(new float[] {0.125f, 7f}, m.initializers().get("dbl").data());
    }

    // ================================================================ hostile bytes

    @Test
    void emptyInputIsNotAnOnnxModel() {
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxModel.parse(new byte[0], SOURCE));
        assertTrue(e.getMessage().startsWith(SOURCE + ":"), e.getMessage());
        assertTrue(e.getMessage().contains("0 bytes"), e.getMessage());
    }

    @Test
    void realFileTruncatedAnywhereFailsWithAByteOffset() {
        int n = miniLmBytes.length;
        for (int cut : new int[] {1, 10, 1000, n / 2, n - 1000, n - 3, n - 1}) {
            byte[] part = Arrays.copyOf(miniLmBytes, cut);
            QdriftException e = assertThrows(QdriftException.class, () -> OnnxModel.parse(part, "cut" + cut),
                    "truncated at " + cut);
            assertTrue(e.getMessage().startsWith("cut" + cut + ": "), e.getMessage());
            assertTrue(AT_BYTE.matcher(e.getMessage()).find(), "no byte position in: " + e.getMessage());
        }
    }

    @Test
    void graphBodyTruncatedInsideItFailsWithAByteOffset() {
        // Cutting the whole file is caught by the graph's length prefix; re-wrap a cut graph body with a
        // correct prefix so the parser has to notice the damage inside nodes and tensors.
        int[] range = fieldRange(miniLmBytes, 7); // {start, length} of GraphProto
        for (int cut : new int[] {3, 1000, range[1] / 3, range[1] / 2, range[1] - 5}) {
            byte[] body = Arrays.copyOfRange(miniLmBytes, range[0], range[0] + cut);
            byte[] file = model(new Proto().raw(body));
            Throwable t = catchAll(() -> OnnxModel.parse(file, SOURCE));
            assertTrue(t instanceof QdriftException, "graph cut at " + cut + ": " + t);
            assertTrue(t.getMessage().startsWith(SOURCE + ": "), t.getMessage());
            assertTrue(AT_BYTE.matcher(t.getMessage()).find(), t.getMessage());
        }
    }

    @Test
    void lengthFieldClaimingATerabyteIsRefusedBeforeAllocating() {
        byte[] file = new Proto().tag(7, 2).rawVarint(1L << 40).raw(new byte[16]).toBytes();
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxModel.parse(file, SOURCE));
        assertEquals(SOURCE + ": malformed protobuf at byte 1: declared length 1099511627776 exceeds the 16 bytes left",
                e.getMessage());
    }

    @Test
    void nestedLengthIsBoundedByItsParentNotByTheFile() {
        // A tensor name claiming 100 bytes inside a 5-byte initializer, with plenty of file left after it.
        Proto bad = new Proto().tag(8, 2).rawVarint(100).raw("abc".getBytes(StandardCharsets.UTF_8));
        byte[] file = model(new Proto().message(5, bad).bytes(99, new byte[200]));
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxModel.parse(file, SOURCE));
        assertTrue(e.getMessage().contains("declared length 100 exceeds the 3 bytes left"), e.getMessage());
    }

    @Test
    void malformedVarintsAndWireTypesAreRefused() {
        byte[] tenBytes = new byte[12];
        Arrays.fill(tenBytes, (byte) 0xFF);
        assertMalformed(tenBytes, "varint longer than 10 bytes");
        assertMalformed(new byte[] {(byte) 0x08, (byte) 0x80}, "truncated varint"); // ir_version, cut
        assertMalformed(new byte[] {0x00}, "invalid field tag 0");
        assertMalformed(new byte[] {0x0B}, "unsupported wire type 3"); // field 1, start-group
        assertMalformed(new byte[] {0x0D, 1, 2}, "truncated: need 4 bytes, 2 left"); // fixed32 cut
    }

    private static void assertMalformed(byte[] file, String what) {
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxModel.parse(file, SOURCE), what);
        assertTrue(e.getMessage().startsWith(SOURCE + ": malformed protobuf at byte "), e.getMessage());
        assertTrue(e.getMessage().contains(what), e.getMessage());
    }

    @Test
    void randomGarbageNeverEscapesAsAnotherExceptionOrHangs() {
        Random rnd = new Random(20240611);
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            int parsed = 0;
            for (int trial = 0; trial < 5000; trial++) {
                byte[] junk = new byte[rnd.nextInt(trial < 1000 ? 16 : 2048)];
                rnd.nextBytes(junk);
                if (trial % 3 == 0 && junk.length > 2) { // a plausible start: graph tag and a small length
                    junk[0] = 0x3A;
                    junk[1] = (byte) rnd.nextInt(junk.length - 1);
                }
                parsed += checkHostile(junk, "garbage trial " + trial);
            }
            assertTrue(parsed > 0, "no trial parsed; the empty-parse path was not exercised");
        });
    }

    @Test
    void mutatedSmallModelsNeverEscapeAsAnotherExceptionOrHang() {
        byte[] good = linearModel(new int[] {3, 2}, new float[] {1, 2, 3, 4, 5, 6}, new int[] {2}, "MatMul", "Add");
        Random rnd = new Random(7);
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            for (int trial = 0; trial < 20000; trial++) {
                byte[] m = good.clone();
                for (int k = 1 + rnd.nextInt(3); k > 0; k--) m[rnd.nextInt(m.length)] = (byte) rnd.nextInt(256);
                if (rnd.nextInt(4) == 0) m = Arrays.copyOf(m, rnd.nextInt(m.length));
                checkHostile(m, "mutation trial " + trial);
            }
        });
    }

    /**
     * Parsing must end in a QdriftException, or in a model that building BERT weights then rejects with
     * one. Returns 1 when the bytes parsed.
     */
    private static int checkHostile(byte[] bytes, String what) {
        OnnxModel m;
        try {
            m = OnnxModel.parse(bytes, SOURCE);
        } catch (QdriftException e) {
            assertTrue(e.getMessage().startsWith(SOURCE + ": "), what + ": " + e.getMessage());
            return 0;
        } catch (Throwable t) {
            throw new AssertionError(what + ": " + hex(bytes) + " escaped as " + t, t);
        }
        Throwable t = catchAll(() -> BertWeights.fromNamedTensors(OnnxBertTensors.namedTensors(m),
                BertConfig.MINILM_L6, SOURCE, Set.of()));
        if (!(t instanceof QdriftException))
            throw new AssertionError(what + ": " + hex(bytes) + " parsed, then building weights gave " + t, t);
        return 1;
    }

    @Test
    void emptyGraphParsesButIsRejectedAsBertWeights() {
        OnnxModel m = OnnxModel.parse(new byte[] {0x3A, 0x00}, SOURCE);
        assertTrue(m.initializers().isEmpty() && m.nodes().isEmpty());
        assertTrue(OnnxBertTensors.namedTensors(m).isEmpty());
        QdriftException e = assertThrows(QdriftException.class, () -> BertWeights.fromNamedTensors(
                OnnxBertTensors.namedTensors(m), BertConfig.MINILM_L6, SOURCE, Set.of()));
        assertEquals(SOURCE + ": missing tensor 'embeddings.word_embeddings.weight' (expected shape [30522, 384])",
                e.getMessage());
    }

    // ================================================================ bad tensors

    @Test
    void rawDataLengthNotMatchingDimsIsRefused() {
        Proto t = new Proto().varint(1, 2).varint(1, 3).varint(2, 1).string(8, "w").bytes(9, new byte[20]);
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxModel.parse(model(new Proto().message(5, t)), SOURCE));
        assertTrue(e.getMessage().startsWith(SOURCE + ": malformed protobuf at byte "), e.getMessage());
        assertTrue(e.getMessage().contains("initializer 'w' has 20 bytes of data but shape [2, 3] needs 24"), e.getMessage());
    }

    @Test
    void floatDataCountNotMatchingDimsIsRefused() {
        Proto t = new Proto().varint(1, 4).varint(2, 1).string(8, "w").fixed32(4, 1).fixed32(4, 2);
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxModel.parse(model(new Proto().message(5, t)), SOURCE));
        assertTrue(e.getMessage().contains("initializer 'w' holds 2 values but shape [4] needs 4"), e.getMessage());
    }

    @Test
    void negativeOrOverflowingDimsAreRefused() {
        Proto neg = new Proto().varint(1, -1).varint(2, 1).string(8, "neg");
        QdriftException e1 = assertThrows(QdriftException.class, () -> OnnxModel.parse(model(new Proto().message(5, neg)), SOURCE));
        assertTrue(e1.getMessage().contains("initializer 'neg' has dimension -1"), e1.getMessage());
        Proto big = new Proto().varint(1, 1 << 16).varint(1, 1 << 16).varint(2, 1).string(8, "big");
        QdriftException e2 = assertThrows(QdriftException.class, () -> OnnxModel.parse(model(new Proto().message(5, big)), SOURCE));
        assertTrue(e2.getMessage().contains("initializer 'big' is too large"), e2.getMessage());
    }

    @Test
    void hugeDimsWithoutDataAreRefusedWithoutAllocating() {
        // 2e9 floats (8 GB) declared by a 30-byte file that holds no data at all: the size check must come
        // before the allocation, or a tiny hostile file is an OutOfMemoryError instead of a clear error.
        Proto t = new Proto().varint(1, 1_000_000).varint(1, 2_000).varint(2, 1).string(8, "huge");
        byte[] file = model(new Proto().message(5, t));
        Throwable e = catchAll(() -> OnnxModel.parse(file, SOURCE));
        assertTrue(e instanceof QdriftException, "expected QdriftException, got " + e);
        assertTrue(e.getMessage().contains("huge"), e.getMessage());
    }

    @Test
    void externalDataIsRefusedByName() {
        Proto t = new Proto().varint(1, 2).varint(2, 1).string(8, "encoder.w").varint(14, 1);
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxModel.parse(model(new Proto().message(5, t)), SOURCE));
        assertTrue(e.getMessage().startsWith(SOURCE + ": initializer 'encoder.w' keeps its data in an external file"),
                e.getMessage());
    }

    // ================================================================ bad graphs for name recovery

    @Test
    void matMulWithoutANamedBiasAddIsRefused() {
        // MatMul followed by Relu; and MatMul followed by Add of an anonymous initializer.
        for (String next : List.of("Relu", "AddAnonymous")) {
            Proto graph = new Proto()
                    .message(5, floatTensor("onnx::MatMul_7", new int[] {3, 2}, new float[6]))
                    .message(5, floatTensor("onnx::Add_8", new int[] {2}, new float[2]))
                    .message(1, node("mm", "MatMul", List.of("x", "onnx::MatMul_7"), List.of("m")))
                    .message(1, next.equals("Relu") ? node("r", "Relu", List.of("m"), List.of("y"))
                            : node("a", "Add", List.of("m", "onnx::Add_8"), List.of("y")));
            OnnxModel m = OnnxModel.parse(model(graph), SOURCE);
            QdriftException e = assertThrows(QdriftException.class, () -> OnnxBertTensors.namedTensors(m), next);
            assertTrue(e.getMessage().startsWith(SOURCE + ": MatMul 'mm' (weight onnx::MatMul_7) is not followed by an Add"),
                    e.getMessage());
        }
    }

    @Test
    void weightAndBiasShapeConflictIsRefused() {
        // W [in=3, out=2] but the bias has 3 entries.
        OnnxModel m = OnnxModel.parse(linearModel(new int[] {3, 2}, new float[6], new int[] {3}, "MatMul", "Add"), SOURCE);
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxBertTensors.namedTensors(m));
        assertEquals(SOURCE + ": weight onnx::MatMul_1 [3, 2] of l0.dense.weight does not match its bias l0.dense.bias [3]",
                e.getMessage());
    }

    @Test
    void matMulWeightThatIsNotAMatrixIsRefused() {
        OnnxModel m = OnnxModel.parse(linearModel(new int[] {6}, new float[6], new int[] {2}, "MatMul", "Add"), SOURCE);
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxBertTensors.namedTensors(m));
        assertTrue(e.getMessage().contains("weight onnx::MatMul_1 has shape [6], expected a matrix"), e.getMessage());
    }

    @Test
    void twoMatMulsFeedingTheSameBiasAreRefused() {
        Proto graph = new Proto()
                .message(5, floatTensor("onnx::MatMul_1", new int[] {3, 2}, new float[6]))
                .message(5, floatTensor("onnx::MatMul_2", new int[] {3, 2}, new float[6]))
                .message(5, floatTensor("l0.dense.bias", new int[] {2}, new float[2]))
                .message(1, node("mm1", "MatMul", List.of("x", "onnx::MatMul_1"), List.of("m1")))
                .message(1, node("mm2", "MatMul", List.of("x", "onnx::MatMul_2"), List.of("m2")))
                .message(1, node("a1", "Add", List.of("m1", "l0.dense.bias"), List.of("y1")))
                .message(1, node("a2", "Add", List.of("l0.dense.bias", "m2"), List.of("y2")));
        OnnxModel m = OnnxModel.parse(model(graph), SOURCE);
        QdriftException e = assertThrows(QdriftException.class, () -> OnnxBertTensors.namedTensors(m));
        assertEquals(SOURCE + ": two MatMul weights map to l0.dense.weight", e.getMessage());
    }

    @Test
    void matMulNodeWithoutOutputsIsAQdriftExceptionNotAnIndexError() {
        // A node list is attacker-controlled too: a MatMul that reads a weight but declares no output.
        Proto graph = new Proto()
                .message(5, floatTensor("onnx::MatMul_1", new int[] {3, 2}, new float[6]))
                .message(1, node("mm", "MatMul", List.of("x", "onnx::MatMul_1"), List.of()));
        OnnxModel m = OnnxModel.parse(model(graph), SOURCE);
        Throwable t = catchAll(() -> OnnxBertTensors.namedTensors(m));
        assertTrue(t instanceof QdriftException, "expected QdriftException, got " + t);
        assertTrue(t.getMessage().contains("mm"), t.getMessage());
    }

    // ================================================================ helpers

    /** Graph: MatMul(x, onnx::MatMul_1) -> m; second(m, l0.dense.bias) -> y. */
    private static byte[] linearModel(int[] wShape, float[] w, int[] bShape, String first, String second) {
        float[] bias = new float[(int) Tensor.numel(bShape)];
        if (bias.length == 2) bias = new float[] {0.5f, -0.5f};
        Proto graph = new Proto()
                .message(1, node("mm", first, List.of("x", "onnx::MatMul_1"), List.of("m")))
                .message(1, node("add", second, List.of("m", "l0.dense.bias"), List.of("y")))
                .string(2, "tiny")
                .message(5, floatTensor("onnx::MatMul_1", wShape, w))
                .message(5, floatTensor("l0.dense.bias", bShape, bias))
                .message(11, new Proto().string(1, "x"))
                .message(12, new Proto().string(1, "y"));
        return model(graph);
    }

    /** ModelProto: ir_version (1), producer_name (2), graph (7), opset_import (8). */
    private static byte[] model(Proto graph) {
        return new Proto().varint(1, 8).string(2, "qdrift-test").message(7, graph)
                .message(8, new Proto().string(1, "").varint(2, 17)).toBytes();
    }

    /** TensorProto: dims (1), data_type (2) = FLOAT, name (8), raw_data (9) little-endian. */
    private static Proto floatTensor(String name, int[] dims, float[] values) {
        Proto t = new Proto();
        for (int d : dims) t.varint(1, d);
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return t.varint(2, 1).string(8, name).bytes(9, b.array());
    }

    /** NodeProto: input (1), output (2), name (3), op_type (4). */
    private static Proto node(String name, String op, List<String> inputs, List<String> outputs) {
        Proto n = new Proto();
        for (String i : inputs) n.string(1, i);
        for (String o : outputs) n.string(2, o);
        return n.string(3, name).string(4, op);
    }

    /** {start, length} of the first length-delimited top-level field with the given number. */
    private static int[] fieldRange(byte[] buf, int field) {
        int[] pos = {0};
        while (pos[0] < buf.length) {
            long tag = readVarint(buf, pos);
            int wire = (int) (tag & 7);
            switch (wire) {
                case 0 -> readVarint(buf, pos);
                case 1 -> pos[0] += 8;
                case 5 -> pos[0] += 4;
                case 2 -> {
                    int len = (int) readVarint(buf, pos);
                    if (tag >>> 3 == field) return new int[] {pos[0], len};
                    pos[0] += len;
                }
                default -> throw new IllegalStateException("wire type " + wire);
            }
        }
        throw new IllegalStateException("no field " + field);
    }

    private static long readVarint(byte[] buf, int[] pos) {
        long v = 0;
        for (int shift = 0; ; shift += 7) {
            byte b = buf[pos[0]++];
            v |= (long) (b & 0x7F) << shift;
            if (b >= 0) return v;
        }
    }

    private static byte[] le16(short... halves) {
        ByteBuffer b = ByteBuffer.allocate(2 * halves.length).order(ByteOrder.LITTLE_ENDIAN);
        for (short h : halves) b.putShort(h);
        return b.array();
    }

    private static Throwable catchAll(Runnable r) {
        try {
            r.run();
            return null;
        } catch (Throwable t) {
            return t;
        }
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(b.length, 64); i++) s.append(String.format("%02x", b[i]));
        return s + (b.length > 64 ? "... (" + b.length + " bytes)" : "");
    }

    /** A minimal protobuf writer: tags, varints, fixed32 and length-delimited fields. */
    private static final class Proto {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Proto tag(int field, int wire) {
            return rawVarint((long) field << 3 | wire);
        }

        Proto rawVarint(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) (v & 0x7F) | 0x80);
                v >>>= 7;
            }
            out.write((int) v);
            return this;
        }

        Proto fixed32Raw(int v) {
            for (int i = 0; i < 4; i++) out.write(v >>> (8 * i));
            return this;
        }

        Proto raw(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        Proto varint(int field, long v) {
            return tag(field, 0).rawVarint(v);
        }

        Proto fixed32(int field, float v) {
            return tag(field, 5).fixed32Raw(Float.floatToIntBits(v));
        }

        Proto bytes(int field, byte[] b) {
            return tag(field, 2).rawVarint(b.length).raw(b);
        }

        Proto string(int field, String s) {
            return bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Proto message(int field, Proto m) {
            return bytes(field, m.toBytes());
        }

        byte[] toBytes() {
            return out.toByteArray();
        }
    }
}
