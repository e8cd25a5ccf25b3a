package dev.qdrift.model.weights;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qdrift.QdriftException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reader and writer of the Hugging Face safetensors format: an 8-byte little-endian header length
 * N, N bytes of UTF-8 JSON naming each tensor's dtype, shape and byte range (relative to the end of
 * the header), then the raw little-endian data.
 *
 * <p>Weight files come from the outside world, so the reader treats every field as hostile: each
 * problem becomes a {@link QdriftException} naming the file and the byte or tensor at fault, and
 * nothing is allocated from a declared size before that size is checked against the real file.
 */
public final class Safetensors {
    /** A header larger than this is a corrupt length field, not a real model (real ones are KBs). */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    /** The most elements a Java float[] can hold (the VM reserves a few header words). */
    static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8;

    private static final String METADATA_KEY = "__metadata__";

    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_LE =
            ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    // Duplicate keys would silently drop a tensor; trailing tokens mean the header is not one value.
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION)
            .build();

    private Safetensors() {}

    /**
     * The element types we know. Floating types are converted to FP32; integer tensors are buffers
     * such as BERT's int64 position_ids, which transformers saves beside the weights: their header
     * entries are validated like any other, but {@link #read} does not return them. Anything else in
     * a file is refused by name.
     */
    private enum DType {
        F32(4, true), F16(2, true), BF16(2, true), F64(8, true),
        I64(8, false), I32(4, false), I16(2, false), I8(1, false), U8(1, false), BOOL(1, false);

        final int bytes;
        final boolean floating;

        DType(int bytes, boolean floating) {
            this.bytes = bytes;
            this.floating = floating;
        }
    }

    /** One validated header entry; begin/end are relative to the start of the data section. */
    private record Entry(String name, DType dtype, int[] shape, int numel, long begin, long end) {}

    /** The validated header: where the data section starts, the entries in header order, metadata. */
    private record Header(long dataStart, List<Entry> entries, Map<String, String> metadata) {}

    /**
     * All floating-point tensors (F32, F16, BF16, F64), converted to FP32, in header order; integer
     * buffers are validated and left out. Metadata via readMetadata.
     */
    public static Map<String, Tensor> read(Path file) {
        try (FileChannel ch = open(file)) {
            Header header = readHeader(file, ch);
            Map<String, Tensor> out = new LinkedHashMap<>();
            long dataLength = ch.size() - header.dataStart();
            if (dataLength == 0) {
                // Nothing to map (mapping 0 bytes is pointless); only empty tensors can be here.
                for (Entry e : header.entries())
                    if (e.dtype().floating) out.put(e.name(), new Tensor(e.name(), e.shape(), new float[0]));
                return out;
            }
            // Map rather than read: the data section can be gigabytes and we copy each tensor once.
            // The confined arena unmaps deterministically when we are done.
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment data = ch.map(FileChannel.MapMode.READ_ONLY, header.dataStart(), dataLength, arena);
                for (Entry e : header.entries())
                    if (e.dtype().floating) out.put(e.name(), new Tensor(e.name(), e.shape(), decode(data, e)));
            }
            return out;
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot read safetensors file: " + e, e);
        }
    }

    /** The string-to-string "__metadata__" map of the header; empty if the file has none. */
    public static Map<String, String> readMetadata(Path file) {
        try (FileChannel ch = open(file)) {
            return readHeader(file, ch).metadata();
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot read safetensors file: " + e, e);
        }
    }

    /**
     * Writes the tensors as F32 in the given order, with optional metadata (null means none). The
     * file is written to a temporary sibling and moved into place, so a crash never leaves a
     * half-written weight file under the real name.
     */
    public static void write(Path file, Collection<Tensor> tensors, Map<String, String> metadata) {
        byte[] header = buildHeader(file, tensors, metadata);
        Path target = file.toAbsolutePath();
        Path tmp = null;
        try {
            Files.createDirectories(target.getParent());
            tmp = Files.createTempFile(target.getParent(), target.getFileName().toString() + ".", ".tmp");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).flip();
                writeFully(ch, len);
                writeFully(ch, ByteBuffer.wrap(header));
                // Stream the floats through a fixed buffer instead of building the whole file in memory.
                ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
                for (Tensor t : tensors) {
                    for (float v : t.data()) {
                        if (!buf.hasRemaining()) {
                            writeFully(ch, buf.flip());
                            buf.clear();
                        }
                        buf.putFloat(v);
                    }
                }
                writeFully(ch, buf.flip());
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot write safetensors file: " + e, e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // The write already failed; that error is the one worth reporting.
                }
            }
        }
    }

    // ---------------------------------------------------------------- reading

    private static FileChannel open(Path file) throws IOException {
        // A FIFO or device would make size() meaningless and reads block forever: refuse it up front.
        if (!Files.exists(file)) throw new QdriftException(file + ": no such file");
        if (!Files.isRegularFile(file)) throw new QdriftException(file + ": not a regular file");
        return FileChannel.open(file, StandardOpenOption.READ);
    }

    private static Header readHeader(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw new QdriftException(file + ": file is too short (" + size
                    + " bytes); a safetensors file starts with an 8-byte header length");
        }
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(file, ch, lenBuf, 0);
        long n = lenBuf.flip().getLong(); // u64 read as signed: values >= 2^63 come out negative
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new QdriftException(file + ": header length " + Long.toUnsignedString(n)
                    + " (bytes 0-7) exceeds the " + MAX_HEADER_BYTES + "-byte limit; the file is corrupt or not safetensors");
        }
        if (8 + n > size) {
            throw new QdriftException(file + ": header length " + n + " (bytes 0-7) runs past the end of the file ("
                    + size + " bytes); the file is truncated or not safetensors");
        }
        byte[] bytes = new byte[(int) n];
        readFully(file, ch, ByteBuffer.wrap(bytes), 8);
        checkUtf8(file, bytes);

        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            String where = loc != null && loc.getByteOffset() >= 0 ? " at byte " + (8 + loc.getByteOffset()) : "";
            throw new QdriftException(file + ": header is not valid JSON" + where + ": " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new QdriftException(file + ": header (bytes 8-" + (8 + n) + ") is not a JSON object");
        }

        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> entries = new ArrayList<>();
        long dataLength = size - 8 - n;
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            if (field.getKey().equals(METADATA_KEY)) {
                readMetadataNode(file, field.getValue(), metadata);
            } else {
                entries.add(parseEntry(file, field.getKey(), field.getValue(), dataLength, 8 + n));
            }
        }
        checkNoOverlap(file, entries, 8 + n);
        return new Header(8 + n, entries, metadata);
    }

    /** Strict UTF-8 check so the error can say which byte is bad (Jackson would be vaguer). */
    private static void checkUtf8(Path file, byte[] bytes) {
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(Math.max(16, Math.min(bytes.length, 1 << 16)));
        while (true) {
            CoderResult r = dec.decode(in, out, true);
            if (r.isError()) {
                throw new QdriftException(file + ": header is not valid UTF-8 at byte " + (8 + in.position()));
            }
            if (r.isUnderflow()) break;
            out.clear(); // overflow: we only validate, so drop the decoded chars and go on
        }
    }

    private static void readMetadataNode(Path file, JsonNode node, Map<String, String> metadata) {
        if (!node.isObject()) throw new QdriftException(file + ": header field __metadata__ is not a JSON object");
        for (Map.Entry<String, JsonNode> kv : node.properties()) {
            if (!kv.getValue().isTextual()) {
                throw new QdriftException(file + ": __metadata__ value for key '" + kv.getKey() + "' is not a string");
            }
            metadata.put(kv.getKey(), kv.getValue().textValue());
        }
    }

    private static Entry parseEntry(Path file, String name, JsonNode node, long dataLength, long dataStart) {
        String where = file + ": tensor '" + name + "': ";
        if (!node.isObject()) throw new QdriftException(where + "header entry is not a JSON object");

        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null) throw new QdriftException(where + "header entry is missing field 'dtype'");
        if (!dtypeNode.isTextual()) throw new QdriftException(where + "field 'dtype' is not a string");
        DType dtype = parseDType(dtypeNode.textValue());
        if (dtype == null) {
            throw new QdriftException(where + "unsupported dtype '" + dtypeNode.textValue()
                    + "' (supported: F32, F16, BF16, F64)");
        }

        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null) throw new QdriftException(where + "header entry is missing field 'shape'");
        if (!shapeNode.isArray()) throw new QdriftException(where + "field 'shape' is not an array");
        int[] shape = new int[shapeNode.size()];
        boolean empty = false;
        for (int i = 0; i < shape.length; i++) {
            long d = integer(where, "shape[" + i + "]", shapeNode.get(i));
            if (d < 0) throw new QdriftException(where + "negative dimension " + d + " in shape " + shapeNode);
            if (d > Integer.MAX_VALUE) throw new QdriftException(where + "dimension " + d + " in shape " + shapeNode + " overflows int");
            shape[i] = (int) d;
            empty |= d == 0;
        }
        long numel = 0;
        if (!empty) {
            numel = 1;
            for (int d : shape) {
                // Both factors stay below 2^31, so the long product cannot wrap before we compare it.
                numel *= d;
                if (numel > MAX_ELEMENTS) {
                    throw new QdriftException(where + "shape " + shapeNode + " has more than " + MAX_ELEMENTS
                            + " elements (element count overflows int)");
                }
            }
        }

        JsonNode offNode = node.get("data_offsets");
        if (offNode == null) throw new QdriftException(where + "header entry is missing field 'data_offsets'");
        if (!offNode.isArray() || offNode.size() != 2) {
            throw new QdriftException(where + "field 'data_offsets' must be an array [begin, end], got " + offNode);
        }
        long begin = integer(where, "data_offsets[0]", offNode.get(0));
        long end = integer(where, "data_offsets[1]", offNode.get(1));
        if (begin < 0 || end < 0) throw new QdriftException(where + "negative data_offsets " + offNode);
        if (begin > end) throw new QdriftException(where + "data_offsets begin " + begin + " > end " + end);
        if (end > dataLength) {
            throw new QdriftException(where + "data_offsets " + offNode + " (file bytes " + (dataStart + begin) + "-"
                    + (dataStart + end) + ") are out of range: the data section ends at file byte "
                    + (dataStart + dataLength) + "; the file is truncated or corrupt");
        }
        long expected = numel * dtype.bytes;
        if (end - begin != expected) {
            throw new QdriftException(where + "dtype/shape mismatch: " + dtype + " " + shapeNode + " needs " + expected
                    + " bytes but data_offsets " + offNode + " span " + (end - begin) + " (file byte " + (dataStart + begin) + ")");
        }
        return new Entry(name, dtype, shape, (int) numel, begin, end);
    }

    private static DType parseDType(String s) {
        for (DType d : DType.values()) if (d.name().equals(s)) return d;
        return null;
    }

    /** An integral JSON number that fits a long; floats, strings and huge integers are refused. */
    private static long integer(String where, String what, JsonNode v) {
        if (v == null || !v.isIntegralNumber() || !v.canConvertToLong()) {
            throw new QdriftException(where + what + " is not an integer: " + v);
        }
        return v.longValue();
    }

    /** The format forbids overlapping byte ranges: two tensors sharing bytes means a corrupt header. */
    private static void checkNoOverlap(Path file, List<Entry> entries, long dataStart) {
        List<Entry> sorted = new ArrayList<>();
        for (Entry e : entries) if (e.end() > e.begin()) sorted.add(e); // empty tensors occupy no bytes
        sorted.sort(Comparator.comparingLong(Entry::begin));
        for (int i = 1; i < sorted.size(); i++) {
            Entry prev = sorted.get(i - 1), cur = sorted.get(i);
            if (cur.begin() < prev.end()) {
                throw new QdriftException(file + ": tensors '" + prev.name() + "' and '" + cur.name()
                        + "' overlap at file byte " + (dataStart + cur.begin()) + " (data_offsets ["
                        + prev.begin() + ", " + prev.end() + "] and [" + cur.begin() + ", " + cur.end() + "])");
            }
        }
    }

    private static float[] decode(MemorySegment data, Entry e) {
        float[] out = new float[e.numel()];
        long off = e.begin();
        switch (e.dtype()) {
            case F32 -> MemorySegment.copy(data, F32_LE, off, out, 0, out.length);
            case F16 -> {
                for (int i = 0; i < out.length; i++) out[i] = Float.float16ToFloat(data.get(I16_LE, off + 2L * i));
            }
            case BF16 -> {
                // BF16 is the top half of an FP32: shift the 16 bits back into place.
                for (int i = 0; i < out.length; i++) {
                    out[i] = Float.intBitsToFloat((data.get(I16_LE, off + 2L * i) & 0xFFFF) << 16);
                }
            }
            case F64 -> {
                for (int i = 0; i < out.length; i++) out[i] = (float) data.get(F64_LE, off + 8L * i);
            }
        }
        return out;
    }

    private static void readFully(Path file, FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int r = ch.read(buf, pos);
            // The size was checked, but the file may shrink under us; -1 must not loop forever.
            if (r < 0) throw new QdriftException(file + ": unexpected end of file at byte " + pos);
            pos += r;
        }
    }

    // ---------------------------------------------------------------- writing

    private static byte[] buildHeader(Path file, Collection<Tensor> tensors, Map<String, String> metadata) {
        ObjectNode root = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = root.putObject(METADATA_KEY);
            metadata.forEach(meta::put);
        }
        Set<String> names = new HashSet<>();
        long offset = 0;
        for (Tensor t : tensors) {
            // These would produce a file our own reader (and every other) rejects or misreads.
            if (t.name().equals(METADATA_KEY)) throw new QdriftException(file + ": a tensor cannot be named " + METADATA_KEY);
            if (!names.add(t.name())) throw new QdriftException(file + ": duplicate tensor name '" + t.name() + "'");
            ObjectNode entry = root.putObject(t.name());
            entry.put("dtype", "F32");
            ArrayNode shape = entry.putArray("shape");
            for (int d : t.shape()) shape.add(d);
            long bytes = 4L * t.data().length;
            entry.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new QdriftException(file + ": cannot encode safetensors header: " + e.getOriginalMessage(), e);
        }
        // Pad with spaces (as the reference writer does) so the data section starts 8-byte aligned.
        int padded = (json.length + 7) / 8 * 8;
        byte[] header = new byte[padded];
        System.arraycopy(json, 0, header, 0, json.length);
        for (int i = json.length; i < padded; i++) header[i] = ' ';
        return header;
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) ch.write(buf);
    }
}
