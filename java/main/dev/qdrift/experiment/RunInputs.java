package dev.qdrift.experiment;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qdrift.QdriftException;
import dev.qdrift.backend.Backend;
import dev.qdrift.data.Dataset;
import dev.qdrift.data.Example;
import dev.qdrift.data.Task;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Model;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.QuantizedEncoders;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What a run over a head needs besides the model, chosen the way {@code qdrift quantize-eval} chooses
 * it: the examples to evaluate (the held-out side of the split the head recorded, when it was trained
 * on a split of the same file), the calibration sample (a seeded sample of the head's own training
 * data) and the calibration statistics (loaded from a file when it exists, else computed and saved);
 * and content hashes of model, head, data and calibration, so a run can tell whether it is resuming
 * the same experiment.
 */
public final class RunInputs {
    /** Seed of the calibration sample (quantize-eval's). */
    public static final long CALIBRATION_SEED = 20261123L;
    /** How {@link #calibrationSample} and {@link #loadOrCalibrate} calibrate, in words. */
    public static final String CALIBRATION_METHOD = "a seeded class-stratified sample of the head's training examples (all of them "
            + "when fewer); " + CalibrationStats.METHOD;

    private RunInputs() {}

    /**
     * The selection to evaluate on: the split the head recorded for this data file and task when
     * {@code given} names no split of its own, else {@code given}.
     */
    public static DataSelection evaluationSelection(LinearHead head, DataSelection given) {
        if (given.trainFraction() != null) return given;
        DataSelection recorded = DataSelection.fromHead(head.metadata(), given.location(), given.task());
        return recorded != null ? recorded : given;
    }

    /** A seeded sample of calibSize of the head's training examples (its recorded data and split), else of fallback. */
    public static Dataset calibrationSample(LinearHead head, DataSelection fallback, int calibSize) {
        if (calibSize < 1) throw new QdriftException("--calib-size must be at least 1, got " + calibSize);
        Map<String, String> meta = head.metadata();
        DataSelection train = fallback;
        if (meta.get("data") != null && meta.get("task") != null) {
            train = new DataSelection(meta.get("data"), Task.parse(meta.get("task")),
                    meta.get("limit") == null ? null : Integer.valueOf(meta.get("limit")),
                    meta.get("split") == null ? null : Double.valueOf(meta.get("split")), Long.parseLong(meta.getOrDefault("seed", "13")));
        }
        Dataset d = train.split() != null ? train.split().train() : train.all();
        return d.size() <= calibSize ? d : d.sample(calibSize, CALIBRATION_SEED);
    }

    /** Calibration statistics: loaded from file if it exists, else computed on the FP32 model and saved there (when file is not null). */
    public static CalibrationStats loadOrCalibrate(Model model, Backend backend, Dataset sample, int batchSize, Path file, PrintStream log) {
        if (file != null && Files.exists(file)) {
            CalibrationStats stats = CalibrationStats.load(file);
            log.println("calibration loaded from " + file + " " + stats.provenance);
            return stats;
        }
        CalibrationStats stats = QuantizedEncoders.calibrate(model, backend, sample, batchSize);
        if (file != null) stats.save(file);
        return stats;
    }

    /**
     * Where calibration statistics came from, for a result to record: the file they were loaded from or
     * saved to (when there is one), the number of examples, the seed of the sample and the method, then
     * the model and data they were computed on.
     */
    public static Map<String, String> calibrationProvenance(CalibrationStats stats) {
        Map<String, String> m = new LinkedHashMap<>();
        if (stats.file != null) m.put("file", stats.file.toString());
        m.put("examples", stats.provenance.get("examples"));
        m.put("seed", Long.toString(CALIBRATION_SEED));
        m.put("method", CALIBRATION_METHOD);
        m.put("data", stats.provenance.get("data"));
        m.put("model", stats.provenance.get("model"));
        m.values().removeIf(Objects::isNull);
        return m;
    }

    // ---- content hashes ----------------------------------------------------------------------------

    /** SHA-256 of the configuration and every weight tensor, in a fixed order. */
    public static String hash(BertWeights w) {
        MessageDigest md = sha256();
        md.update(w.config().toString().getBytes(StandardCharsets.UTF_8));
        update(md, w.wordEmbeddings());
        update(md, w.positionEmbeddings());
        update(md, w.typeEmbeddings());
        update(md, w.embeddingNorm());
        for (BertWeights.Layer l : w.layers()) {
            for (BertWeights.Linear lin : l.linears()) {
                update(md, lin.weight());
                update(md, lin.bias());
            }
            update(md, l.attentionNorm());
            update(md, l.outputNorm());
        }
        if (w.pooler() != null) {
            update(md, w.pooler().weight());
            update(md, w.pooler().bias());
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** SHA-256 of a file's bytes, streamed (data files can be large). */
    public static String hash(Path file) {
        MessageDigest md = sha256();
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            for (int r; (r = in.read(buf)) > 0; ) md.update(buf, 0, r);
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** SHA-256 of a data set's label names and examples (text, pair, label) in order. */
    public static String hash(Dataset d) {
        MessageDigest md = sha256();
        md.update(String.join("\u0001", d.labelNames()).getBytes(StandardCharsets.UTF_8));
        for (Example e : d.examples())
            md.update(("\n" + e.text() + "\u0000" + (e.textPair() == null ? "" : e.textPair()) + "\u0000" + e.label())
                    .getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(md.digest());
    }

    /** SHA-256 of the statistics' JSON form (what {@link CalibrationStats#save} writes, without indentation). */
    public static String hash(CalibrationStats stats) {
        try {
            return HexFormat.of().formatHex(sha256().digest(new ObjectMapper().writeValueAsBytes(stats)));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void update(MessageDigest md, BertWeights.Norm n) {
        update(md, n.gamma());
        update(md, n.beta());
    }

    private static void update(MessageDigest md, float[] a) {
        if (a == null) {
            md.update((byte) 0);
            return;
        }
        ByteBuffer b = ByteBuffer.allocate(Math.min(a.length, 1 << 16) * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < a.length; ) {
            b.clear();
            int n = Math.min(a.length - i, b.capacity() / 4);
            b.asFloatBuffer().put(a, i, n);
            b.limit(n * 4);
            md.update(b);
            i += n;
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
