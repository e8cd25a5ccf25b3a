package dev.qdrift.quant;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.QuantGrid;
import dev.qdrift.model.ActivationTransform;
import dev.qdrift.model.Site;
import dev.qdrift.quant.CalibrationStats.SiteStats;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * Simulated activation quantization at the scheme's sites, on the encoder's backend. Static schemes
 * (per-tensor, per-column, PEG) turn calibrated ranges into a scale and zero point per column, placed
 * on the backend once; per-token schemes take each token's range at run time.
 */
public final class ActivationQuantizer implements ActivationTransform {
    private final Backend backend;
    private final QuantSpec spec;
    private final Set<String> fp32Sites;
    private final Map<String, Backend.ColumnGrid> grids = new HashMap<>();
    /** Per-tensor scale of each site (static per-tensor schemes), for integer linear layers. */
    private final Map<String, Float> tensorScales = new HashMap<>();

    /** @param pegGroups group of each hidden channel (PER_GROUP), else null */
    public ActivationQuantizer(Backend backend, QuantSpec spec, CalibrationStats stats, Set<String> fp32Sites, int[] pegGroups) {
        this.backend = backend;
        this.spec = spec;
        this.fp32Sites = fp32Sites;
        if (spec.granularity() == QuantSpec.Granularity.PER_TOKEN) return;
        QuantGrid grid = spec.grid();
        for (Map.Entry<String, SiteStats> e : stats.sites.entrySet()) {
            SiteStats s = e.getValue();
            int cols = s.channelMin.length;
            float[] scale = new float[cols], zp = new float[cols];
            float[][] colRange = columnRanges(s, pegGroups);
            for (int c = 0; c < cols; c++) {
                QuantGrid.Params p = grid.params(colRange[0][c], colRange[1][c]);
                scale[c] = p.scale();
                zp[c] = p.zeroPoint();
            }
            grids.put(e.getKey(), new Backend.ColumnGrid(backend.upload(scale), backend.upload(zp), grid.qmin(), grid.qmax(),
                    uniformScale(scale, zp)));
            tensorScales.put(e.getKey(), scale[0]);
        }
    }

    /** The scale every column shares where every zero point is 0, else NaN ({@link Backend.ColumnGrid#uniformScale}). */
    private static float uniformScale(float[] scale, float[] zp) {
        for (int c = 0; c < scale.length; c++)
            if (scale[c] != scale[0] || zp[c] != 0f) return Float.NaN;
        return scale[0];
    }

    /** {lo[], hi[]} per column by granularity: one tensor range, each channel's, or its PEG group's. */
    private float[][] columnRanges(SiteStats s, int[] pegGroups) {
        int cols = s.channelMin.length;
        float[] lo = new float[cols], hi = new float[cols];
        switch (spec.granularity()) {
            case PER_CHANNEL -> {
                System.arraycopy(s.channelMin, 0, lo, 0, cols);
                System.arraycopy(s.channelMax, 0, hi, 0, cols);
            }
            case PER_GROUP -> {
                if (pegGroups == null || pegGroups.length != cols) {
                    // Not a hidden-size site (the FFN intermediate): PEG leaves it per-tensor.
                    float[] r = Ranges.tensorRange(s, spec);
                    java.util.Arrays.fill(lo, r[0]);
                    java.util.Arrays.fill(hi, r[1]);
                } else {
                    int groups = 0;
                    for (int g : pegGroups) groups = Math.max(groups, g + 1);
                    float[] glo = new float[groups], ghi = new float[groups];
                    java.util.Arrays.fill(glo, Float.POSITIVE_INFINITY);
                    java.util.Arrays.fill(ghi, Float.NEGATIVE_INFINITY);
                    for (int c = 0; c < cols; c++) {
                        glo[pegGroups[c]] = Math.min(glo[pegGroups[c]], s.channelMin[c]);
                        ghi[pegGroups[c]] = Math.max(ghi[pegGroups[c]], s.channelMax[c]);
                    }
                    for (int c = 0; c < cols; c++) {
                        lo[c] = glo[pegGroups[c]];
                        hi[c] = ghi[pegGroups[c]];
                    }
                }
            }
            default -> {
                float[] r = Ranges.tensorRange(s, spec);
                java.util.Arrays.fill(lo, r[0]);
                java.util.Arrays.fill(hi, r[1]);
            }
        }
        return new float[][] {lo, hi};
    }

    /**
     * The input scale an integer linear layer fed by this site uses: the site's static scale when the
     * scheme is 8-bit symmetric per-tensor, NaN (per token) when it is 8-bit symmetric per-token. Then
     * the site's fake-quant has already put the values on that grid, so the integer layer quantizes them
     * exactly. Other activation specs cannot run on the s8 kernels.
     */
    public float integerInputScale(String siteKey) {
        if (spec.bits() != 8 || !spec.symmetric())
            throw new dev.qdrift.QdriftException("integer execution needs 8-bit symmetric activations; the scheme has " + spec.describe());
        return switch (spec.granularity()) {
            case PER_TOKEN -> Float.NaN;
            case PER_TENSOR -> {
                Float s = tensorScales.get(siteKey);
                if (s == null) throw new dev.qdrift.QdriftException("no calibration for site " + siteKey);
                yield s;
            }
            default -> throw new dev.qdrift.QdriftException("integer execution needs per-tensor or per-token activations; the scheme has "
                    + spec.describe());
        };
    }

    @Override
    public boolean at(int layer, Site site) {
        return Scheme.ACTIVATION_SITES.contains(site) && !fp32Sites.contains(site.key(layer));
    }

    @Override
    public void apply(int layer, Site site, Backend.FloatBuf value, int rows, int cols) {
        if (spec.granularity() == QuantSpec.Granularity.PER_TOKEN) {
            backend.fakeQuantRows(value, rows, cols, spec.bits(), spec.symmetric());
            return;
        }
        Backend.ColumnGrid g = staticGrid(layer, site);
        backend.fakeQuantColumns(value, rows, cols, g.scale(), g.zeroPoint(), g.qmin(), g.qmax());
    }

    @Override
    public Backend.ColumnGrid columnGrid(int layer, Site site) {
        return spec.granularity() == QuantSpec.Granularity.PER_TOKEN || !at(layer, site) ? null : staticGrid(layer, site);
    }

    private Backend.ColumnGrid staticGrid(int layer, Site site) {
        Backend.ColumnGrid g = grids.get(site.key(layer));
        if (g == null) throw new dev.qdrift.QdriftException("no calibration for site " + site.key(layer));
        return g;
    }
}
