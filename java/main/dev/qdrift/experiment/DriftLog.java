package dev.qdrift.experiment;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qdrift.QdriftException;
import java.io.Closeable;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The append-only JSON-lines file of a drift run: one {@link DriftRecord} a line, each written with a
 * single write and flushed, so a killed run leaves every finished line whole and at most one partial
 * line at the end. {@link #open} reads what is there, drops a partial last line (truncating the file
 * to the last newline, so its (example, scheme) is redone), and appends after it.
 */
public final class DriftLog implements Closeable {
    static final ObjectMapper MAPPER = new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    /**
     * @param records the finished lines by key ({@link #key}), in file order; a duplicate key keeps its first line
     * @param droppedBytes the partial last line's length that was cut off (0 if none)
     * @param duplicates lines whose (example, scheme) was already in the file (ignored)
     */
    public record Contents(Map<String, DriftRecord> records, long droppedBytes, int duplicates) {}

    private final Path file;
    private final FileOutputStream out;
    private final Contents contents;

    private DriftLog(Path file, FileOutputStream out, Contents contents) {
        this.file = file;
        this.out = out;
        this.contents = contents;
    }

    public static String key(int example, String scheme) {
        return example + "/" + scheme;
    }

    /** Reads the file (if any), cuts a partial last line off it, and opens it for appending. */
    public static DriftLog open(Path file) {
        try {
            Contents c = read(file, true);
            return new DriftLog(file, new FileOutputStream(file.toFile(), true), c);
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot open: " + e.getMessage(), e);
        }
    }

    public Contents contents() {
        return contents;
    }

    /** Reads the finished lines; a partial last line is ignored (and cut off the file when repair). */
    public static Contents read(Path file, boolean repair) {
        Map<String, DriftRecord> records = new LinkedHashMap<>();
        if (!Files.exists(file)) return new Contents(records, 0, 0);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot read: " + e.getMessage(), e);
        }
        int end = bytes.length;
        while (end > 0 && bytes[end - 1] != '\n') end--;   // [end, length) is a partial line, the write a kill cut short
        int duplicates = 0, lineNo = 0;
        for (int start = 0; start < end; ) {
            int nl = start;
            while (bytes[nl] != '\n') nl++;
            lineNo++;
            String line = new String(bytes, start, nl - start, StandardCharsets.UTF_8);
            start = nl + 1;
            if (line.isBlank()) continue;
            DriftRecord r;
            try {
                r = MAPPER.readValue(line, DriftRecord.class);
            } catch (JsonProcessingException e) {
                throw new QdriftException(file + ": line " + lineNo + " is not a drift record (" + e.getOriginalMessage()
                        + "); the file is damaged: move it away to start over");
            }
            if (r.scheme() == null) throw new QdriftException(file + ": line " + lineNo + " has no scheme; the file is damaged: move it away to start over");
            if (records.putIfAbsent(key(r.example(), r.scheme()), r) != null) duplicates++;
        }
        long dropped = bytes.length - end;
        if (dropped > 0 && repair) {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.truncate(end);
            } catch (IOException e) {
                throw new QdriftException(file + ": cannot cut off the partial last line: " + e.getMessage(), e);
            }
        }
        return new Contents(records, dropped, duplicates);
    }

    /** The finished lines of a file, in file order (the first line of each (example, scheme)); the file is not changed. */
    public static List<DriftRecord> readAll(Path file) {
        return new ArrayList<>(read(file, false).records().values());
    }

    /** Appends one line (a single write) and flushes it to the operating system. */
    public synchronized void append(DriftRecord r) {
        try {
            byte[] line = (MAPPER.writeValueAsString(r) + "\n").getBytes(StandardCharsets.UTF_8);
            out.write(line);
            out.flush();
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot append: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot close: " + e.getMessage(), e);
        }
    }
}
