package dev.qdrift.quant;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.qdrift.QdriftException;
import dev.qdrift.backend.Backend;
import dev.qdrift.model.ActivationObserver;
import dev.qdrift.model.Site;
import dev.qdrift.model.tokenizer.TokenBatch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What calibration learns about each quantized activation site of the FP32 model on a calibration
 * sample (padding tokens excluded), in two passes: per-channel min / max and a running (EMA) per-tensor
 * min / max in the first; a histogram of all values over the first pass's range in the second. Every
 * calibrator reads from these, so one calibration run serves every scheme, and the file it is saved
 * to makes a scheme reproducible.
 */
public final class CalibrationStats {
    public static final int BINS = 4096;
    /** Weight of the newest batch in the running min / max (PyTorch's MovingAverageMinMaxObserver default 0.01 is for many batches; we see few). */
    public static final float RUNNING_MOMENTUM = 0.1f;
    /** How the statistics are gathered, in words, for the provenance of results that use them. */
    public static final String METHOD = "two FP32 passes over the sample, padding excluded: per-channel min/max and a running "
            + "(EMA, momentum " + RUNNING_MOMENTUM + ") per-tensor min/max, then a " + BINS + "-bin histogram per activation site";

    /** One site's statistics. Arrays are per channel (column). */
    public static final class SiteStats {
        public float[] channelMin, channelMax;
        public float runningMin = Float.NaN, runningMax = Float.NaN;
        public float histLo, histHi;
        public long[] histogram;
        public long count;

        public float min() {
            float m = Float.POSITIVE_INFINITY;
            for (float v : channelMin) m = Math.min(m, v);
            return m;
        }

        public float max() {
            float m = Float.NEGATIVE_INFINITY;
            for (float v : channelMax) m = Math.max(m, v);
            return m;
        }
    }

    /** Provenance: model id, data file, number of examples. */
    public Map<String, String> provenance = new LinkedHashMap<>();
    public Map<String, SiteStats> sites = new LinkedHashMap<>();

    /**
     * The file these statistics were loaded from or last saved to, null while they live only in memory;
     * results name it. Not part of the statistics: neither saved nor hashed (a drift run compares the
     * hash of its statistics when it resumes).
     */
    @JsonIgnore
    public Path file;

    /** An observer for one calibration batch; pass 1 collects ranges, pass 2 histograms. */
    public ActivationObserver observer(Backend backend, TokenBatch batch, int pass) {
        return new ActivationObserver() {
            public boolean wants(Site site) {
                return Scheme.ACTIVATION_SITES.contains(site);
            }

            public void observe(int layer, Site site, Backend.FloatBuf value, int rows, int cols) {
                float[] v = new float[rows * cols];
                backend.download(value, v);
                SiteStats s = sites.computeIfAbsent(site.key(layer), k -> new SiteStats());
                if (pass == 1) collectRanges(s, v, batch.mask(), cols);
                else collectHistogram(s, v, batch.mask(), cols);
            }
        };
    }

    private static void collectRanges(SiteStats s, float[] v, int[] mask, int cols) {
        if (s.channelMin == null) {
            s.channelMin = new float[cols];
            s.channelMax = new float[cols];
            java.util.Arrays.fill(s.channelMin, Float.POSITIVE_INFINITY);
            java.util.Arrays.fill(s.channelMax, Float.NEGATIVE_INFINITY);
        }
        float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
        for (int r = 0; r < mask.length; r++) {
            if (mask[r] == 0) continue;
            for (int c = 0, o = r * cols; c < cols; c++, o++) {
                float x = v[o];
                if (x < s.channelMin[c]) s.channelMin[c] = x;
                if (x > s.channelMax[c]) s.channelMax[c] = x;
                lo = Math.min(lo, x);
                hi = Math.max(hi, x);
            }
        }
        if (Float.isNaN(s.runningMin)) {
            s.runningMin = lo;
            s.runningMax = hi;
        } else {
            s.runningMin += RUNNING_MOMENTUM * (lo - s.runningMin);
            s.runningMax += RUNNING_MOMENTUM * (hi - s.runningMax);
        }
    }

    private static void collectHistogram(SiteStats s, float[] v, int[] mask, int cols) {
        if (s.histogram == null) {
            s.histogram = new long[BINS];
            s.histLo = s.min();
            s.histHi = s.max();
        }
        double width = (s.histHi - s.histLo) / (double) BINS;
        for (int r = 0; r < mask.length; r++) {
            if (mask[r] == 0) continue;
            for (int c = 0, o = r * cols; c < cols; c++, o++) {
                int bin = width > 0 ? (int) ((v[o] - s.histLo) / width) : 0;
                s.histogram[Math.max(0, Math.min(BINS - 1, bin))]++;
                s.count++;
            }
        }
    }

    public SiteStats site(String key) {
        SiteStats s = sites.get(key);
        if (s == null) throw new QdriftException("calibration has no statistics for site '" + key + "'");
        return s;
    }

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public void save(Path file) {
        try {
            Path abs = file.toAbsolutePath();
            Files.createDirectories(abs.getParent());
            Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
            JSON.writeValue(tmp.toFile(), this);
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            this.file = file;
        } catch (IOException e) {
            throw new QdriftException(file + ": cannot write calibration: " + e.getMessage(), e);
        }
    }

    public static CalibrationStats load(Path file) {
        if (!Files.isRegularFile(file)) throw new QdriftException(file + ": calibration file not found");
        try {
            CalibrationStats c = JSON.readValue(file.toFile(), CalibrationStats.class);
            for (Map.Entry<String, SiteStats> e : c.sites.entrySet()) {
                SiteStats s = e.getValue();
                if (s.channelMin == null || s.channelMax == null || s.histogram == null || s.channelMin.length != s.channelMax.length)
                    throw new QdriftException(file + ": site '" + e.getKey() + "' is incomplete");
            }
            c.file = file;
            return c;
        } catch (IOException e) {
            throw new QdriftException(file + ": not a qdrift calibration file: " + e.getMessage(), e);
        }
    }
}
