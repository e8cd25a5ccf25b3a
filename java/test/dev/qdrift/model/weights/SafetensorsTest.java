package dev.qdrift.model.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.qdrift.QdriftException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
    @TempDir
    Path dir;

    // ---------------------------------------------------------------- helpers

    /** A safetensors file from raw parts: 8-byte LE header length, header bytes, data bytes. */
    private static byte[] rawFile(long headerLength, byte[] header, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        return b.putLong(headerLength).put(header).put(data).array();
    }

    private static byte[] rawFile(String headerJson, byte[] data) {
        byte[] h = headerJson.getBytes(StandardCharsets.UTF_8);
        return rawFile(h.length, h, data);
    }

    private Path put(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private static byte[] le16(int... halves) {
        ByteBuffer b = ByteBuffer.allocate(2 * halves.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int h : halves) b.putShort((short) h);
        return b.array();
    }

    private static byte[] le32(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) b.putFloat(f);
        return b.array();
    }

    private static byte[] le64(double... v) {
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (double d : v) b.putDouble(d);
        return b.array();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }

    /**
     * Both entry points must refuse the file with a QdriftException naming the file and containing
     * each telling word; returns read()'s exception for further checks.
     */
    private static QdriftException assertBad(Path p, String... words) {
        QdriftException e = assertThrows(QdriftException.class, () -> Safetensors.read(p));
        QdriftException m = assertThrows(QdriftException.class, () -> Safetensors.readMetadata(p));
        for (QdriftException x : List.of(e, m)) {
            String msg = x.getMessage();
            assertTrue(msg.contains(p.getFileName().toString()), "message lacks the file name: " + msg);
            for (String w : words) assertTrue(msg.contains(w), "message lacks '" + w + "': " + msg);
        }
        return e;
    }

    private static float[] randomValues(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            // Non-zero and of both signs, so a reader that returns zeros or drops the sign fails.
            float x = 0.01f + r.nextFloat() * 10f;
            v[i] = r.nextBoolean() ? x : -x;
        }
        return v;
    }

    private List<Tensor> sampleTensors(long seed) {
        Random r = new Random(seed);
        List<Tensor> ts = new ArrayList<>();
        ts.add(new Tensor("encoder.layer.0.attention.self.query.weight", new int[] {3, 4}, randomValues(r, 12)));
        ts.add(new Tensor("bias", new int[] {7}, randomValues(r, 7)));
        ts.add(new Tensor("cube", new int[] {2, 3, 5}, randomValues(r, 30)));
        ts.add(new Tensor("scalar", new int[] {}, randomValues(r, 1)));
        ts.add(new Tensor("empty", new int[] {0, 3}, new float[0]));
        ts.add(new Tensor("a_last_name_sorts_first", new int[] {1, 2}, randomValues(r, 2)));
        return ts;
    }

    // ---------------------------------------------------------------- round trip

    @Test
    void roundTripKeepsValuesShapesOrderAndMetadata() throws IOException {
        Path p = dir.resolve("model.safetensors");
        List<Tensor> ts = sampleTensors(1234);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("source", "qdrift test \u00e9\u4e2d"); // non-ASCII survives the UTF-8 header

        Safetensors.write(p, ts, meta);
        Map<String, Tensor> back = Safetensors.read(p);

        assertEquals(ts.stream().map(Tensor::name).toList(), List.copyOf(back.keySet()), "header order");
        for (Tensor t : ts) {
            Tensor b = back.get(t.name());
            assertArrayEquals(t.shape(), b.shape(), t.name());
            assertArrayEquals(t.data(), b.data(), 0f, t.name()); // F32 must be bit-exact
        }
        assertEquals(meta, Safetensors.readMetadata(p));

        // The data section starts 8-byte aligned and the header length field matches the file.
        byte[] bytes = Files.readAllBytes(p);
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + n) % 8);
        long floats = ts.stream().mapToLong(t -> t.data().length).sum();
        assertEquals(8 + n + 4 * floats, bytes.length);
    }

    @Test
    void writeReplacesExistingFileAndLeavesNoTempFiles() throws IOException {
        Path p = dir.resolve("replace.safetensors");
        Safetensors.write(p, sampleTensors(1), Map.of("v", "1"));
        Tensor only = new Tensor("w", new int[] {2}, new float[] {3.5f, -1.25f});
        Safetensors.write(p, List.of(only), Map.of("v", "2"));

        Map<String, Tensor> back = Safetensors.read(p);
        assertEquals(List.of("w"), List.copyOf(back.keySet()));
        assertArrayEquals(new float[] {3.5f, -1.25f}, back.get("w").data());
        assertEquals(Map.of("v", "2"), Safetensors.readMetadata(p));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(p.getFileName()), files.map(Path::getFileName).toList());
        }
    }

    @Test
    void noTensorsAndNoMetadata() {
        Path p = dir.resolve("nothing.safetensors");
        Safetensors.write(p, List.of(), null);
        assertTrue(Safetensors.read(p).isEmpty());
        assertTrue(Safetensors.readMetadata(p).isEmpty());
    }

    @Test
    void writeRefusesDuplicateOrReservedNames() {
        Path p = dir.resolve("dups.safetensors");
        Tensor a = new Tensor("a", new int[] {1}, new float[] {1f});
        QdriftException e = assertThrows(QdriftException.class, () -> Safetensors.write(p, List.of(a, a), null));
        assertTrue(e.getMessage().contains("dups.safetensors") && e.getMessage().contains("duplicate"), e.getMessage());
        Tensor m = new Tensor("__metadata__", new int[] {1}, new float[] {1f});
        assertThrows(QdriftException.class, () -> Safetensors.write(p, List.of(m), null));
        assertTrue(Files.notExists(p));
    }

    // ---------------------------------------------------------------- other dtypes, built by hand

    @Test
    void readsF16() throws IOException {
        // 1.5, -2.0, 0.333 (rounds to 0x3554), 65504 (max), smallest subnormal, -0.0, +inf
        byte[] data = le16(0x3E00, 0xC000, 0x3554, 0x7BFF, 0x0001, 0x8000, 0x7C00);
        Path p = put("half.safetensors", rawFile(
                "{\"h\":{\"dtype\":\"F16\",\"shape\":[7],\"data_offsets\":[0,14]}}", data));
        float[] v = Safetensors.read(p).get("h").data();
        assertArrayEquals(new float[] {1.5f, -2.0f, 0.3330078125f, 65504f, 5.9604645e-8f, -0.0f,
                Float.POSITIVE_INFINITY}, v, 0f);
        assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(v[5]), "sign of -0");
    }

    @Test
    void readsBf16() throws IOException {
        // BF16 is the top half of an FP32: 0x3FC0 = 1.5, 0xC000 = -2.0, 0x3EAA = 0.333 truncated, 0x4049 = 3.140625
        byte[] data = le16(0x3FC0, 0xC000, 0x3EAA, 0x4049);
        Path p = put("brain.safetensors", rawFile(
                "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", data));
        Tensor t = Safetensors.read(p).get("b");
        assertArrayEquals(new int[] {2, 2}, t.shape());
        assertArrayEquals(new float[] {1.5f, -2.0f, 0.33203125f, 3.140625f}, t.data(), 0f);
    }

    @Test
    void readsMixedDtypesAtUnalignedOffsets() throws IOException {
        // F16 [3] takes 6 bytes, so the F32 after it starts at an odd-ish, non-4-aligned offset.
        byte[] data = concat(le16(0x3E00, 0xC000, 0x3554), le32(0.1f, -7.25f), le16(0x3FC0, 0xC000), le64(0.1, -1e10));
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                + "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[6,14]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[14,18]},"
                + "\"d\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[18,34]}}";
        Path p = put("mixed.safetensors", rawFile(header, data));

        Map<String, Tensor> m = Safetensors.read(p);
        assertEquals(List.of("h", "f", "b", "d"), List.copyOf(m.keySet()));
        assertArrayEquals(new float[] {1.5f, -2.0f, 0.3330078125f}, m.get("h").data(), 0f);
        assertArrayEquals(new float[] {0.1f, -7.25f}, m.get("f").data(), 0f);
        assertArrayEquals(new float[] {1.5f, -2.0f}, m.get("b").data(), 0f);
        assertArrayEquals(new float[] {(float) 0.1, (float) -1e10}, m.get("d").data(), 0f);
        assertEquals(Map.of("format", "pt"), Safetensors.readMetadata(p));
    }

    // ---------------------------------------------------------------- bad inputs

    @Test
    void emptyFile() throws IOException {
        assertBad(put("empty.safetensors", new byte[0]), "too short", "0 bytes");
    }

    @Test
    void truncatedAtSeveralPoints() throws IOException {
        Path good = dir.resolve("good.safetensors");
        Safetensors.write(good, sampleTensors(7), Map.of("k", "v"));
        byte[] bytes = Files.readAllBytes(good);
        int headerEnd = 8 + (int) ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();

        int[] cuts = {1, 4, 7, 8, 9, headerEnd / 2, headerEnd - 1, headerEnd, headerEnd + 3, bytes.length - 1};
        for (int cut : cuts) {
            Path p = put("cut" + cut + ".safetensors", Arrays.copyOf(bytes, cut));
            String word = cut < 8 ? "too short" : cut < headerEnd ? "past the end" : "out of range";
            assertBad(p, word);
        }
    }

    @Test
    void headerLengthLargerThanFile() throws IOException {
        byte[] header = "{}".getBytes(StandardCharsets.UTF_8);
        assertBad(put("long.safetensors", rawFile(1000, header, new byte[20])), "past the end", "1000");
    }

    @Test
    void absurdHeaderLengthIsRefusedWithoutAllocating() throws IOException {
        assertBad(put("huge.safetensors", rawFile(1L << 62, new byte[16], new byte[0])), "limit", "4611686018427387904");
        // All ones is 2^64-1 as the u64 the format declares, not -1.
        assertBad(put("ones.safetensors", rawFile(-1L, new byte[16], new byte[0])), "limit", "18446744073709551615");
        // Just over the 100 MB cap in an otherwise small file.
        assertBad(put("cap.safetensors", rawFile(Safetensors.MAX_HEADER_BYTES + 1, new byte[16], new byte[0])), "limit");
    }

    @Test
    void headerNotJson() throws IOException {
        assertBad(put("prose.safetensors", rawFile("this is not json", new byte[0])), "not valid JSON");
        assertBad(put("cutjson.safetensors", rawFile("{\"a\":{\"dtype\"", new byte[0])), "not valid JSON");
        assertBad(put("trailing.safetensors", rawFile("{} {}", new byte[0])), "not valid JSON");
    }

    @Test
    void headerNotAnObject() throws IOException {
        assertBad(put("array.safetensors", rawFile("[1,2,3]", new byte[0])), "not a JSON object");
        assertBad(put("zero.safetensors", rawFile("", new byte[0])), "not a JSON object");
        assertBad(put("entry.safetensors", rawFile("{\"w\": 5}", new byte[0])), "'w'", "not a JSON object");
    }

    @Test
    void headerNotUtf8() throws IOException {
        // 0xC3 opens a two-byte sequence; 0x28 '(' cannot continue it. 0xC3 sits at header index 3 = file byte 11.
        byte[] header = {'{', '"', 'a', (byte) 0xC3, 0x28, '"', ':', '1', '}'};
        assertBad(put("latin.safetensors", rawFile(header.length, header, new byte[0])), "UTF-8", "byte 11");
    }

    @Test
    void garbageBytesNeverEscapeAsInternalErrors() throws IOException {
        Random r = new Random(99);
        for (int i = 0; i < 300; i++) {
            byte[] junk = new byte[r.nextInt(200)];
            r.nextBytes(junk);
            if (i % 2 == 1 && junk.length >= 8) {
                // Half the time, a plausible header length so the junk reaches the UTF-8 / JSON checks.
                ByteBuffer.wrap(junk).order(ByteOrder.LITTLE_ENDIAN).putLong(r.nextInt(junk.length - 7));
            }
            Path p = put("junk" + i + ".bin", junk);
            QdriftException e = assertThrows(QdriftException.class, () -> Safetensors.read(p), "junk " + i);
            assertTrue(e.getMessage().contains("junk" + i + ".bin"), e.getMessage());
        }
    }

    @Test
    void mutatedHeadersEitherReadOrFailCleanly() throws IOException {
        Path good = dir.resolve("base.safetensors");
        Safetensors.write(good, sampleTensors(3), Map.of("k", "v"));
        byte[] base = Files.readAllBytes(good);
        int headerEnd = 8 + (int) ByteBuffer.wrap(base, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        Random r = new Random(5);
        String jsonish = "0123456789-[]{}\",:.eE ";
        int rejected = 0;
        for (int i = 0; i < 1500; i++) {
            byte[] b = base.clone();
            for (int k = 1 + r.nextInt(3); k > 0; k--) {
                // Mostly printable JSON-ish characters, so mutations land on digits, quotes and brackets.
                byte v = r.nextBoolean() ? (byte) jsonish.charAt(r.nextInt(jsonish.length())) : (byte) r.nextInt(256);
                b[r.nextInt(headerEnd)] = v;
            }
            Path p = put("mut.safetensors", b);
            try {
                Safetensors.read(p);
            } catch (QdriftException e) {
                rejected++;
                assertTrue(e.getMessage().contains("mut.safetensors"), e.getMessage());
            } catch (RuntimeException | Error e) {
                fail("mutation " + i + " escaped as " + e, e);
            }
        }
        assertTrue(rejected > 500, "most mutations should be caught, only " + rejected + " were");
    }

    @Test
    void missingFields() throws IOException {
        byte[] data = new byte[8];
        assertBad(put("nodtype.safetensors", rawFile("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", data)),
                "'w'", "missing", "dtype");
        assertBad(put("noshape.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", data)),
                "'w'", "missing", "shape");
        assertBad(put("nooffsets.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", data)),
                "'w'", "missing", "data_offsets");
    }

    @Test
    void unsupportedDtype() throws IOException {
        assertBad(put("q4.safetensors", rawFile("{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                new byte[1])), "'w'", "unsupported dtype 'Q4_K'");
        assertBad(put("numdtype.safetensors", rawFile("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}",
                new byte[4])), "'w'", "dtype", "not a string");
    }

    /** Integer buffers (transformers saves BERT's position_ids as I64) are validated, then left out. */
    @Test
    void integerBuffersAreValidatedButNotReturned() throws IOException {
        Path ok = put("int64.safetensors", rawFile("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}", new byte[20]));
        assertEquals(java.util.Set.of("w"), Safetensors.read(ok).keySet());
        assertBad(put("int64short.safetensors", rawFile("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                new byte[8])), "'ids'", "mismatch");
    }

    @Test
    void badShapes() throws IOException {
        assertBad(put("negdim.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}",
                new byte[16])), "'w'", "negative dimension -1");
        assertBad(put("float.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}",
                new byte[8])), "'w'", "shape[0]", "not an integer");
        assertBad(put("strdim.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
                new byte[8])), "'w'", "not an integer");
        assertBad(put("bigdim.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,0]}}",
                new byte[0])), "'w'", "overflows int");
    }

    @Test
    void elementCountOverflowingInt() throws IOException {
        // Each dimension fits an int; their product (2^32) does not.
        assertBad(put("overflow.safetensors", rawFile(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[65536,65536],\"data_offsets\":[0,0]}}", new byte[0])),
                "'w'", "overflows int");
    }

    @Test
    void offsetsOutOfRange() throws IOException {
        // Claims 16 bytes; only 8 follow the header. The data section starts at 8 + header length.
        String header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
        QdriftException e = assertBad(put("short.safetensors", rawFile(header, new byte[8])), "'w'", "out of range");
        int dataStart = 8 + header.length();
        assertTrue(e.getMessage().contains("file byte " + (dataStart + 8)), e.getMessage());

        assertBad(put("negoff.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-4,0]}}",
                new byte[8])), "'w'", "negative data_offsets");
        assertBad(put("bigoff.safetensors", rawFile(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999999]}}",
                new byte[4])), "'w'", "data_offsets[1]", "not an integer");
        assertBad(put("oneoff.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
                new byte[4])), "'w'", "[begin, end]");
    }

    @Test
    void beginAfterEnd() throws IOException {
        assertBad(put("backwards.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
                new byte[8])), "'w'", "begin 8 > end 0");
    }

    @Test
    void dtypeShapeMismatch() throws IOException {
        // F32 [2,2] needs 16 bytes; the offsets give 12.
        assertBad(put("mismatch.safetensors", rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}",
                new byte[16])), "'w'", "mismatch", "needs 16 bytes", "span 12");
        // The same bytes declared BF16 need only 8: still a mismatch, the other way.
        assertBad(put("mismatch16.safetensors", rawFile("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
                new byte[16])), "'w'", "mismatch", "needs 8 bytes");
    }

    @Test
    void overlappingTensors() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}";
        assertBad(put("overlap.safetensors", rawFile(header, new byte[24])), "'a'", "'b'", "overlap");
        // Listed in reverse order: the check must not rely on header order.
        String reversed = "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertBad(put("overlap2.safetensors", rawFile(reversed, new byte[12])), "'a'", "'b'", "overlap");
    }

    @Test
    void duplicateTensorNames() throws IOException {
        String header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        assertBad(put("twice.safetensors", rawFile(header, new byte[8])), "not valid JSON", "Duplicate");
    }

    @Test
    void badMetadata() throws IOException {
        assertBad(put("metanum.safetensors", rawFile("{\"__metadata__\":{\"epochs\":3}}", new byte[0])),
                "__metadata__", "'epochs'", "not a string");
        assertBad(put("metalist.safetensors", rawFile("{\"__metadata__\":[1]}", new byte[0])),
                "__metadata__", "not a JSON object");
    }

    @Test
    void notARegularFileOrMissing() throws IOException {
        Path sub = Files.createDirectory(dir.resolve("adir.safetensors"));
        assertBad(sub, "not a regular file");
        assertBad(dir.resolve("absent.safetensors"), "no such file");
    }
}
