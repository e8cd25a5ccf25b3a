package dev.qdrift.backend.cpu;

import static dev.qdrift.backend.cpu.CpuBackend.f;
import static dev.qdrift.backend.cpu.CpuBackend.i;
import static dev.qdrift.backend.cpu.CpuBackend.parallelFor;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.Backend.FloatBuf;
import dev.qdrift.backend.Backend.IntBuf;
import dev.qdrift.backend.Backend.LinearWeights;
import dev.qdrift.backend.GradientOps;
import dev.qdrift.backend.QuantGrid;
import dev.qdrift.model.BertWeights;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link GradientOps} in plain float32 loops, one row (or one sequence and head) per parallel task: the
 * reference the CUDA backward kernels are checked against. Reductions (LayerNorm's two means, the
 * softmax backward's row dot) accumulate in double, so this side's rounding is the smaller one.
 */
final class CpuGradientOps implements GradientOps {
    private static final double INV_SQRT2 = Math.sqrt(0.5), INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

    @Override
    public void gelu(FloatBuf uBuf, FloatBuf gBuf, int rows, int cols, Backend.ColumnGrid grid) {
        float[] u = f(uBuf), g = f(gBuf);
        for (int j = 0, n = rows * cols; j < n; j++) g[j] = CpuMath.gelu(u[j]);
        if (grid == null) return;
        float[] scale = f(grid.scale()), zp = f(grid.zeroPoint());
        for (int r = 0, o = 0; r < rows; r++)
            for (int c = 0; c < cols; c++, o++) g[o] = QuantGrid.fakeQuant(g[o], scale[c], zp[c], grid.qmin(), grid.qmax());
    }

    @Override
    public void geluGrad(FloatBuf dgBuf, FloatBuf uBuf, int n) {
        float[] dg = f(dgBuf), u = f(uBuf);
        for (int j = 0; j < n; j++) {
            double x = u[j];
            double d = 0.5 * (1 + CpuMath.erf(x * INV_SQRT2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
            dg[j] = (float) (dg[j] * d);
        }
    }

    /** The forward's packed panels (packed here if the caller has none): {@link #linearInputGrad} reads them in place. */
    @Override
    public LinearWeights prepareInputGrad(BertWeights.Linear l, LinearWeights forward) {
        return forward instanceof CpuGemm.Packed p ? p : CpuGemm.pack(l.weight(), l.bias(), l.out(), l.in());
    }

    /**
     * dx = dy W (+ dx), each output a double sum over the layer's outputs. The packed panels hold
     * W[panel NR + j, k] at panels[(panel in + k) NR + j]: for one k, a panel's NR weights are contiguous
     * and meet NR contiguous values of a dy row. So a task takes {@link #GRAD_ROWS} rows, widens them to
     * double once, and for each k converts each panel's weights to double once for all its rows. (The
     * scalar loop before, with a division per weight, took 97% of a CPU IG's time.)
     */
    @Override
    public void linearInputGrad(FloatBuf dyBuf, int rows, LinearWeights w, FloatBuf dxBuf, boolean accumulate) {
        CpuGemm.Packed p = (CpuGemm.Packed) w;
        float[] dy = f(dyBuf), dx = f(dxBuf);
        int in = p.in(), out = p.out(), width = (out + CpuGemm.NR - 1) / CpuGemm.NR * CpuGemm.NR;
        parallelFor((rows + GRAD_ROWS - 1) / GRAD_ROWS, task -> {
            int r0 = task * GRAD_ROWS, n = Math.min(GRAD_ROWS, rows - r0);
            // Rows past the end stay zero; the panels' padding past out is zero, and so is the rows' past out.
            double[] d = new double[GRAD_ROWS * width], sums = new double[GRAD_ROWS];
            for (int i = 0; i < n; i++)
                for (int o = 0; o < out; o++) d[i * width + o] = dy[(r0 + i) * out + o];
            for (int k = 0; k < in; k++) {
                dotColumn(p, k, d, width, sums);
                for (int i = 0; i < n; i++) {
                    int at = (r0 + i) * in + k;
                    dx[at] = (float) (accumulate ? dx[at] + sums[i] : sums[i]);
                }
            }
        });
    }

    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    /** Rows per task of {@link #linearInputGrad}: four rows, two accumulators each, keep eight FMA chains going. */
    private static final int GRAD_ROWS = 4;

    /** sums[i] = Σ_o W[o, k] d_i[o] for the GRAD_ROWS rows d_i (width apart in d), in double. */
    private static void dotColumn(CpuGemm.Packed p, int k, double[] d, int width, double[] sums) {
        float[] panels = p.panels();
        int in = p.in(), nr = CpuGemm.NR, l = CpuGemm.L, dl = D.length();
        DoubleVector a0 = DoubleVector.zero(D), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        for (int panel = 0, o = 0; o < width; panel++, o += nr) {
            int at = (panel * in + k) * nr;
            FloatVector lo = FloatVector.fromArray(CpuGemm.S, panels, at), hi = FloatVector.fromArray(CpuGemm.S, panels, at + l);
            // NR floats = four double vectors, in the order of the dy values they meet
            DoubleVector w0 = (DoubleVector) lo.convertShape(VectorOperators.F2D, D, 0),
                    w1 = (DoubleVector) lo.convertShape(VectorOperators.F2D, D, 1),
                    w2 = (DoubleVector) hi.convertShape(VectorOperators.F2D, D, 0),
                    w3 = (DoubleVector) hi.convertShape(VectorOperators.F2D, D, 1);
            int r = o;
            a0 = w2.fma(DoubleVector.fromArray(D, d, r + 2 * dl), w0.fma(DoubleVector.fromArray(D, d, r), a0));
            b0 = w3.fma(DoubleVector.fromArray(D, d, r + 3 * dl), w1.fma(DoubleVector.fromArray(D, d, r + dl), b0));
            r += width;
            a1 = w2.fma(DoubleVector.fromArray(D, d, r + 2 * dl), w0.fma(DoubleVector.fromArray(D, d, r), a1));
            b1 = w3.fma(DoubleVector.fromArray(D, d, r + 3 * dl), w1.fma(DoubleVector.fromArray(D, d, r + dl), b1));
            r += width;
            a2 = w2.fma(DoubleVector.fromArray(D, d, r + 2 * dl), w0.fma(DoubleVector.fromArray(D, d, r), a2));
            b2 = w3.fma(DoubleVector.fromArray(D, d, r + 3 * dl), w1.fma(DoubleVector.fromArray(D, d, r + dl), b2));
            r += width;
            a3 = w2.fma(DoubleVector.fromArray(D, d, r + 2 * dl), w0.fma(DoubleVector.fromArray(D, d, r), a3));
            b3 = w3.fma(DoubleVector.fromArray(D, d, r + 3 * dl), w1.fma(DoubleVector.fromArray(D, d, r + dl), b3));
        }
        sums[0] = a0.add(b0).reduceLanes(VectorOperators.ADD);
        sums[1] = a1.add(b1).reduceLanes(VectorOperators.ADD);
        sums[2] = a2.add(b2).reduceLanes(VectorOperators.ADD);
        sums[3] = a3.add(b3).reduceLanes(VectorOperators.ADD);
    }

    @Override
    public void layerNormGrad(FloatBuf dyBuf, FloatBuf xBuf, FloatBuf gammaBuf, float eps, int rows, int dim, FloatBuf dxBuf) {
        float[] dy = f(dyBuf), x = f(xBuf), gamma = f(gammaBuf), dx = f(dxBuf);
        parallelFor(rows, r -> {
            int o = r * dim;
            double mean = 0, var = 0;
            for (int d = 0; d < dim; d++) mean += x[o + d];
            mean /= dim;
            for (int d = 0; d < dim; d++) var += (x[o + d] - mean) * (x[o + d] - mean);
            double rstd = 1 / Math.sqrt((float) (var / dim) + eps), mg = 0, mgx = 0;
            for (int d = 0; d < dim; d++) {
                double g = (double) gamma[d] * dy[o + d], xh = (x[o + d] - mean) * rstd;
                mg += g;
                mgx += g * xh;
            }
            mg /= dim;
            mgx /= dim;
            for (int d = 0; d < dim; d++) {
                double g = (double) gamma[d] * dy[o + d], xh = (x[o + d] - mean) * rstd;
                dx[o + d] = (float) (rstd * (g - mg - xh * mgx));
            }
        });
    }

    @Override
    public void attentionGrad(FloatBuf dctxBuf, FloatBuf qkvBuf, IntBuf maskBuf, int batch, int seq, int heads, int headDim,
                              FloatBuf dqkvBuf) {
        GradientOps.checkAttentionGrad(dctxBuf, qkvBuf, maskBuf, batch, seq, heads, headDim, dqkvBuf);
        int width = heads * headDim, stride = 3 * width;
        float[] dc = f(dctxBuf), qkv = f(qkvBuf), dqkv = f(dqkvBuf);
        int[] mask = i(maskBuf);
        double scale = 1 / Math.sqrt(headDim);
        parallelFor(batch * heads, bh -> {
            // [b, t=0, h, d=0]: in dctx (rows of width), and in q / dq of the packed buffers (rows of stride; k and v at
            // +width and +2 width).
            int b = bh / heads, c = b * seq * width + (bh % heads) * headDim, q = b * seq * stride + (bh % heads) * headDim,
                    k = q + width, v = q + 2 * width;
            double[] p = new double[seq * seq], dS = new double[seq * seq];
            for (int t = 0; t < seq; t++) {
                // Probabilities of query t (masked keys exactly 0), then dP = dC V^T and dS = P (dP - rowsum(dP P)).
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < seq; j++) {
                    if (mask[b * seq + j] == 0) continue;
                    double s = 0;
                    for (int d = 0; d < headDim; d++) s += (double) qkv[q + t * stride + d] * qkv[k + j * stride + d];
                    p[t * seq + j] = s * scale;
                    max = Math.max(max, s * scale);
                }
                double total = 0;
                for (int j = 0; j < seq; j++) {
                    p[t * seq + j] = mask[b * seq + j] == 0 ? 0 : Math.exp(p[t * seq + j] - max);
                    total += p[t * seq + j];
                }
                double dot = 0;
                for (int j = 0; j < seq; j++) {
                    p[t * seq + j] /= total;
                    double dp = 0;
                    for (int d = 0; d < headDim; d++) dp += (double) dc[c + t * width + d] * qkv[v + j * stride + d];
                    dS[t * seq + j] = dp;
                    dot += dp * p[t * seq + j];
                }
                for (int j = 0; j < seq; j++) dS[t * seq + j] = p[t * seq + j] * (dS[t * seq + j] - dot);
            }
            for (int t = 0; t < seq; t++)
                for (int d = 0; d < headDim; d++) {
                    double sq = 0, sk = 0, sv = 0;
                    for (int j = 0; j < seq; j++) {
                        sq += dS[t * seq + j] * qkv[k + j * stride + d];
                        sk += dS[j * seq + t] * qkv[q + j * stride + d];
                        sv += p[j * seq + t] * dc[c + j * width + d];
                    }
                    dqkv[q + t * stride + d] = (float) (sq * scale);
                    dqkv[k + t * stride + d] = (float) (sk * scale);
                    dqkv[v + t * stride + d] = (float) sv;
                }
        });
    }

    @Override
    public void poolGrad(FloatBuf dPooledBuf, IntBuf maskBuf, int batch, int seq, int dim, Backend.Pooling mode, FloatBuf dHiddenBuf) {
        float[] dp = f(dPooledBuf), dh = f(dHiddenBuf);
        int[] mask = i(maskBuf);
        java.util.Arrays.fill(dh, 0, batch * seq * dim, 0f);
        for (int b = 0; b < batch; b++) {
            if (mode == Backend.Pooling.CLS) {
                System.arraycopy(dp, b * dim, dh, b * seq * dim, dim);
                continue;
            }
            int n = 0;
            for (int t = 0; t < seq; t++) n += mask[b * seq + t] != 0 ? 1 : 0;
            for (int t = 0; t < seq; t++) {
                if (mask[b * seq + t] == 0) continue;
                for (int d = 0; d < dim; d++) dh[(b * seq + t) * dim + d] = dp[b * dim + d] / n;
            }
        }
    }

    @Override
    public void copy(FloatBuf src, FloatBuf dst) {
        if (src.size() != dst.size()) throw new IllegalArgumentException("copy: " + src.size() + " floats into " + dst.size());
        System.arraycopy(f(src), 0, f(dst), 0, src.size());
    }

    @Override
    public void interpolate(FloatBuf fromBuf, FloatBuf diffBuf, FloatBuf alphasBuf, int n, FloatBuf outBuf) {
        float[] from = f(fromBuf), diff = f(diffBuf), alphas = f(alphasBuf), out = f(outBuf);
        parallelFor(alphas.length, b -> {
            for (int j = 0; j < n; j++) out[b * n + j] = from[j] + alphas[b] * diff[j];
        });
    }

    @Override
    public void weightedRowSum(FloatBuf rowsBuf, FloatBuf weightsBuf, int n, FloatBuf outBuf, boolean accumulate) {
        float[] rows = f(rowsBuf), w = f(weightsBuf), out = f(outBuf);
        for (int j = 0; j < n; j++) {
            double s = accumulate ? out[j] : 0;
            for (int b = 0; b < w.length; b++) s += (double) w[b] * rows[b * n + j];
            out[j] = (float) s;
        }
    }

    @Override
    public void clipMask(FloatBuf preBuf, FloatBuf postBuf, FloatBuf halfBuf, int rows, int cols, FloatBuf maskBuf) {
        float[] pre = f(preBuf), post = f(postBuf), half = f(halfBuf), mask = f(maskBuf);
        if (pre.length < rows * cols || post.length < rows * cols || mask.length < rows * cols || half.length < cols)
            throw new IllegalArgumentException("clipMask: buffers too small for " + rows + "x" + cols);
        for (int i = 0; i < rows * cols; i++) mask[i] = Math.abs(pre[i] - post[i]) > half[i % cols] ? 0f : 1f;
    }

    @Override
    public void multiply(FloatBuf xBuf, FloatBuf maskBuf, int n) {
        float[] x = f(xBuf), mask = f(maskBuf);
        if (x.length < n || mask.length < n) throw new IllegalArgumentException("multiply: buffers shorter than " + n);
        for (int i = 0; i < n; i++) x[i] *= mask[i];
    }
}
