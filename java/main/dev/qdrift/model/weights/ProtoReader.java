package dev.qdrift.model.weights;

import dev.qdrift.QdriftException;
import java.nio.charset.StandardCharsets;

/**
 * A bounds-checked cursor over protobuf wire format (varints, fixed 32/64, length-delimited), just
 * enough to read ONNX files without generated classes. Every read checks the remaining bytes, so a
 * truncated or garbage file ends in a {@link QdriftException} naming the source and byte offset,
 * never an index error or a huge allocation.
 */
final class ProtoReader {
    static final int VARINT = 0, FIXED64 = 1, LENGTH_DELIMITED = 2, FIXED32 = 5;

    private final byte[] buf;
    private final String source;
    private int pos;
    private final int end;

    ProtoReader(byte[] buf, String source) {
        this(buf, source, 0, buf.length);
    }

    private ProtoReader(byte[] buf, String source, int start, int end) {
        this.buf = buf;
        this.source = source;
        this.pos = start;
        this.end = end;
    }

    boolean hasMore() {
        return pos < end;
    }

    int position() {
        return pos;
    }

    /** Reads a field key; returns field number << 3 | wire type. */
    int readTag() {
        int at = pos;
        long tag = readVarint();
        if (tag <= 0 || tag > Integer.MAX_VALUE) throw error(at, "invalid field tag " + tag);
        int wireType = (int) (tag & 7);
        if (wireType != VARINT && wireType != FIXED64 && wireType != LENGTH_DELIMITED && wireType != FIXED32)
            throw error(at, "unsupported wire type " + wireType + " (field " + (tag >>> 3) + ")");
        return (int) tag;
    }

    long readVarint() {
        int at = pos;
        long result = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= end) throw error(at, "truncated varint");
            byte b = buf[pos++];
            result |= (long) (b & 0x7F) << shift;
            if (b >= 0) return result;
        }
        throw error(at, "varint longer than 10 bytes");
    }

    int readFixed32() {
        need(4);
        int v = (buf[pos] & 0xFF) | (buf[pos + 1] & 0xFF) << 8 | (buf[pos + 2] & 0xFF) << 16 | (buf[pos + 3] & 0xFF) << 24;
        pos += 4;
        return v;
    }

    long readFixed64() {
        long lo = readFixed32() & 0xFFFFFFFFL;
        long hi = readFixed32() & 0xFFFFFFFFL;
        return lo | hi << 32;
    }

    /** A sub-reader over the next length-delimited field; this cursor moves past it. */
    ProtoReader readMessage() {
        int len = readLength();
        ProtoReader sub = new ProtoReader(buf, source, pos, pos + len);
        pos += len;
        return sub;
    }

    String readString() {
        int len = readLength();
        String s = new String(buf, pos, len, StandardCharsets.UTF_8);
        pos += len;
        return s;
    }

    /** Offset and length of the next length-delimited field (for raw tensor data, read in place). */
    long[] readBytesRange() {
        int len = readLength();
        long[] range = {pos, len};
        pos += len;
        return range;
    }

    byte[] buffer() {
        return buf;
    }

    void skip(int tag) {
        switch (tag & 7) {
            case VARINT -> readVarint();
            case FIXED64 -> { need(8); pos += 8; }
            case FIXED32 -> { need(4); pos += 4; }
            case LENGTH_DELIMITED -> { int len = readLength(); pos += len; }
            default -> throw error(pos, "unsupported wire type " + (tag & 7));
        }
    }

    private int readLength() {
        int at = pos;
        long len = readVarint();
        if (len < 0 || len > end - pos)
            throw error(at, "declared length " + len + " exceeds the " + (end - pos) + " bytes left");
        return (int) len;
    }

    private void need(int n) {
        if (end - pos < n) throw error(pos, "truncated: need " + n + " bytes, " + (end - pos) + " left");
    }

    QdriftException error(int at, String what) {
        return new QdriftException(source + ": malformed protobuf at byte " + at + ": " + what);
    }
}
