package dev.qdrift.data;

import dev.qdrift.QdriftException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** Strict UTF-8 decoding that says where a bad byte is, instead of silently inserting U+FFFD. */
final class Utf8 {
    private Utf8() {}

    /**
     * Decodes {@code bytes} as UTF-8, dropping a leading byte-order mark (Excel writes one).
     *
     * @throws QdriftException naming {@code source}, line and column of the first invalid byte
     */
    static String decode(byte[] bytes, String source) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        // UTF-8 never yields more UTF-16 chars than it has bytes, so one buffer always suffices.
        CharBuffer out = CharBuffer.allocate(bytes.length + 1);
        // The one-shot decoder.decode(ByteBuffer) would throw without saying where; the low-level
        // call leaves the input positioned at the offending byte, which gives us line and column.
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) result = decoder.flush(out);
        if (result.isError()) {
            int at = in.position();
            int line = 1;
            for (int i = 0; i < at; i++) if (bytes[i] == '\n') line++;
            int column = 1;
            for (int i = out.position() - 1; i >= 0 && out.get(i) != '\n'; i--) column++;
            throw new QdriftException(String.format(
                    "%s:%d:%d: not valid UTF-8 (byte 0x%02X at byte offset %d); save the file as UTF-8",
                    source, line, column, bytes[at] & 0xFF, at));
        }
        if (result.isOverflow()) throw new IllegalStateException("UTF-8 output buffer too small");
        out.flip();
        String text = out.toString();
        return text.startsWith("\uFEFF") ? text.substring(1) : text;
    }
}
