package dev.qdrift.attribution;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.QuantGrid;
import dev.qdrift.model.ActivationTransform;
import dev.qdrift.model.Site;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The activation sites a quantized model fake-quantizes, computed by the model's own
 * {@link ActivationTransform} (normally {@code quant.ActivationQuantizer}) on the backend it was built
 * for: values are rounded to float32, uploaded, transformed and downloaded — so the attribution forward
 * quantizes exactly as the encoder does.
 *
 * <p>For the clipping-aware STE it also tells which values the clamp changed. The transform does not
 * expose its ranges, so they are probed once per site: fake-quantizing +1e30 and -1e30 lands every
 * column on its grid's ends hi and lo, and the step is (hi - lo) / (qmax - qmin) of the grid. A value
 * x was clipped iff |x - fq(x)| > step / 2 (inside the grid, rounding moves a value by at most half a
 * step). Dynamic per-token grids probe to ends of ±1e30, so nothing counts as clipped there: each
 * token's range is its own.
 *
 * <p>Not final: a subclass in this package can change what a site does (tests freeze the quantization
 * noise there to check the STE gradient against finite differences).
 */
public class QuantSites {
    /** An FP32 model: no site is quantized. */
    public static final QuantSites NONE = new QuantSites(ActivationTransform.NONE, null, null);

    private static final float PROBE = 1e30f;
    /**
     * Slack on the half-step test: x / scale is itself rounded in float32, so an in-range value can sit
     * a few 1e-5 steps past the midpoint it rounds away from.
     */
    private static final double SLACK = 1.001;

    private final ActivationTransform transform;
    private final Backend backend;
    private final QuantGrid grid;
    private final Map<String, double[]> halfSteps = new ConcurrentHashMap<>();

    /**
     * @param backend the backend the transform was built on (its buffers are the only ones it accepts)
     * @param grid the activation grid (bits, symmetric) of the transform; needed only for {@link StraightThrough#CLIP_AWARE}
     */
    public QuantSites(ActivationTransform transform, Backend backend, QuantGrid grid) {
        this.transform = transform;
        this.backend = backend;
        this.grid = grid;
    }

    public boolean at(int layer, Site site) {
        return transform.at(layer, site);
    }

    /**
     * Fake-quantizes x [rows, cols] in place. With wantInRange, returns per element whether the clamp
     * left it alone (the clipping-aware STE's gradient mask); else null.
     */
    boolean[] apply(int layer, Site site, double[] x, int rows, int cols, boolean wantInRange) {
        float[] in = new float[x.length];
        for (int i = 0; i < x.length; i++) in[i] = (float) x[i];
        float[] q = run(layer, site, in, rows, cols);
        boolean[] inRange = null;
        if (wantInRange) {
            double[] half = halfSteps.computeIfAbsent(site.key(layer) + "/" + cols, key -> halfSteps(transform, backend, grid, layer, site, cols));
            inRange = new boolean[x.length];
            for (int i = 0; i < x.length; i++) inRange[i] = !(Math.abs((double) in[i] - q[i]) > half[i % cols]);
        }
        for (int i = 0; i < x.length; i++) x[i] = q[i];
        return inRange;
    }

    private float[] run(int layer, Site site, float[] values, int rows, int cols) {
        return run(transform, backend, layer, site, values, rows, cols);
    }

    private static float[] run(ActivationTransform transform, Backend backend, int layer, Site site, float[] values, int rows, int cols) {
        try (Backend.Scope scope = backend.openScope()) {
            Backend.FloatBuf buf = backend.upload(values);
            transform.apply(layer, site, buf, rows, cols);
            float[] out = new float[values.length];
            backend.download(buf, out);
            return out;
        }
    }

    /**
     * Half a quantization step per column (with the slack), from where ±1e30 land (the grid's ends): what the
     * clipping-aware STE compares |x - fq(x)| with — here and in {@link BackendGradients}.
     */
    static double[] halfSteps(ActivationTransform transform, Backend backend, QuantGrid grid, int layer, Site site, int cols) {
        if (grid == null) throw new IllegalStateException("the clipping-aware STE needs the activation grid (bits, symmetric) of the transform");
        float[] p = new float[2 * cols];
        java.util.Arrays.fill(p, 0, cols, PROBE);
        java.util.Arrays.fill(p, cols, 2 * cols, -PROBE);
        float[] ends = run(transform, backend, layer, site, p, 2, cols);
        double[] half = new double[cols];
        for (int c = 0; c < cols; c++) half[c] = ((double) ends[c] - ends[cols + c]) / (grid.qmax() - grid.qmin()) / 2 * SLACK;
        return half;
    }
}
