package dev.qdrift.quant;

import dev.qdrift.quant.CalibrationStats.SiteStats;

/**
 * The calibrators: from a site's statistics to the [lo, hi] range each column is quantized with.
 */
public final class Ranges {
    private Ranges() {}

    /** Per-tensor range by the spec's calibrator. */
    public static float[] tensorRange(SiteStats s, QuantSpec spec) {
        return switch (spec.calibrator()) {
            case MINMAX -> new float[] {s.min(), s.max()};
            case RUNNING_MINMAX -> new float[] {s.runningMin, s.runningMax};
            case PERCENTILE -> new float[] {quantile(s, (100 - spec.percentile()) / 100), quantile(s, spec.percentile() / 100)};
            case MSE -> mseRange(s, spec);
        };
    }

    /** The value below which a fraction q of the calibration values lie (linear inside a histogram bin). */
    static float quantile(SiteStats s, double q) {
        double target = q * s.count, seen = 0, width = (s.histHi - s.histLo) / (double) s.histogram.length;
        for (int b = 0; b < s.histogram.length; b++) {
            if (seen + s.histogram[b] >= target && s.histogram[b] > 0)
                return (float) (s.histLo + width * (b + (target - seen) / s.histogram[b]));
            seen += s.histogram[b];
        }
        return s.histHi;
    }

    /**
     * The range [c lo, c hi], c in {0.01, 0.02, ..., 1}, that minimizes the expected squared error over
     * the histogram: values inside the range cost step^2 / 12 (uniform rounding error), values outside
     * cost their distance to the clipped end.
     */
    static float[] mseRange(SiteStats s, QuantSpec spec) {
        float lo = Math.min(s.min(), 0f), hi = Math.max(s.max(), 0f);
        double width = (s.histHi - s.histLo) / (double) s.histogram.length;
        double best = Double.POSITIVE_INFINITY;
        float[] range = {lo, hi};
        int levels = spec.grid().qmax() - spec.grid().qmin();
        for (int i = 1; i <= 100; i++) {
            double c = i / 100.0, l = lo * c, h = hi * c, step = (h - l) / levels, err = 0;
            if (spec.symmetric()) {
                double m = Math.max(-l, h);
                l = -m;
                h = m;
                step = 2 * m / levels;
            }
            for (int b = 0; b < s.histogram.length; b++) {
                if (s.histogram[b] == 0) continue;
                double v = s.histLo + width * (b + 0.5);
                double e = v < l ? l - v : v > h ? v - h : 0;
                err += s.histogram[b] * (e > 0 ? e * e : step * step / 12);
            }
            if (err < best) {
                best = err;
                range = new float[] {(float) l, (float) h};
            }
        }
        return range;
    }
}
