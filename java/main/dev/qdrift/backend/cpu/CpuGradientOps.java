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
import java.util.Arrays;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link GradientOps} on float32 buffers, the reference the CUDA backward kernels are checked against. Every sum
 * accumulates in double (the input gradient's products and attention's on the Vector API, LayerNorm's means in plain
 * loops) and is rounded once to float, so this side's rounding is the smaller one.
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

    /**
     * W^T packed as the forward packs W (CpuGemm.pack): panels of {@link CpuGemm#NR} input channels, each stored
     * output-major ([out][NR]), so {@link #linearInputGrad} streams a panel contiguously as the forward's tile does.
     * One more float copy of the layer's weights.
     */
    record InputGradWeights(CpuGemm.Packed transposed) implements LinearWeights {
        @Override
        public int out() {
            return transposed.in();
        }

        @Override
        public int in() {
            return transposed.out();
        }
    }

    @Override
    public LinearWeights prepareInputGrad(BertWeights.Linear l, LinearWeights forward) {
        return new InputGradWeights(CpuGemm.pack(l.transposedWeight(), new float[l.in()], l.in(), l.out()));
    }

    /**
     * dx = dy W (+ dx), each output one double FMA chain over the layer's outputs in order, rounded once to float (the
     * reference the CUDA backward is checked against). The forward's loop structure in double: a register tile of
     * {@link #GRAD_ROWS} rows x NR input channels (twelve double accumulators), one dy value broadcast per row and one
     * panel row of W^T converted to double per output; parallel tasks are (panel, block of rows), panel-major, so the
     * tasks that share a panel run together while it is in cache.
     */
    @Override
    public void linearInputGrad(FloatBuf dyBuf, int rows, LinearWeights w, FloatBuf dxBuf, boolean accumulate) {
        if (!(w instanceof InputGradWeights t))
            throw new IllegalArgumentException("linearInputGrad needs weights from prepareInputGrad, not " + w.getClass().getSimpleName());
        CpuGemm.Packed p = t.transposed();
        float[] dy = f(dyBuf), dx = f(dxBuf);
        int in = p.out(), out = p.in(), panels = (in + CpuGemm.NR - 1) / CpuGemm.NR, blocks = (rows + CpuGemm.MC - 1) / CpuGemm.MC;
        parallelFor(panels * blocks, task -> {
            int panel = task / blocks, r0 = task % blocks * CpuGemm.MC, r1 = Math.min(rows, r0 + CpuGemm.MC);
            int c0 = panel * CpuGemm.NR, cols = Math.min(CpuGemm.NR, in - c0);
            double[] tile = new double[GRAD_ROWS * CpuGemm.NR];
            for (int r = r0; r < r1; r += GRAD_ROWS) {
                int n = Math.min(GRAD_ROWS, r1 - r);
                gradTile(dy, r, n, out, p.panels(), panel, tile);
                for (int i = 0; i < n; i++)
                    for (int c = 0, at = (r + i) * in + c0; c < cols; c++, at++) {
                        double v = tile[i * CpuGemm.NR + c];
                        dx[at] = (float) (accumulate ? dx[at] + v : v);
                    }
            }
        });
    }

    /** Doubles in CpuGemm's vector shape: half its float lanes, so a float vector converts to parts 0 and 1. */
    private static final VectorSpecies<Double> D = VectorSpecies.of(double.class, CpuGemm.S.vectorShape());
    /** Rows per register tile of {@link #linearInputGrad}: 3 rows x 4 double vectors = 12 accumulators, 4 weights, 1 broadcast. */
    private static final int GRAD_ROWS = 3;

    /**
     * tile[i NR + c] = Σ_o dy[r + i, o] W[o, panel NR + c] for i < n (rows past n repeat row r + n - 1 and are not read).
     * NR floats of a panel row are four double vectors, in channel order.
     */
    private static void gradTile(float[] dy, int r, int n, int out, float[] panels, int panel, double[] tile) {
        int nr = CpuGemm.NR, l = CpuGemm.L, dl = D.length();
        int ya = r * out, yb = (r + Math.min(1, n - 1)) * out, yc = (r + Math.min(2, n - 1)) * out;
        DoubleVector a0 = DoubleVector.zero(D), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0, c0 = a0, c1 = a0, c2 = a0,
                c3 = a0;
        for (int o = 0, at = panel * out * nr; o < out; o++, at += nr) {
            FloatVector lo = FloatVector.fromArray(CpuGemm.S, panels, at), hi = FloatVector.fromArray(CpuGemm.S, panels, at + l);
            DoubleVector w0 = (DoubleVector) lo.convertShape(VectorOperators.F2D, D, 0),
                    w1 = (DoubleVector) lo.convertShape(VectorOperators.F2D, D, 1),
                    w2 = (DoubleVector) hi.convertShape(VectorOperators.F2D, D, 0),
                    w3 = (DoubleVector) hi.convertShape(VectorOperators.F2D, D, 1);
            DoubleVector x = DoubleVector.broadcast(D, dy[ya + o]);
            a0 = w0.fma(x, a0);
            a1 = w1.fma(x, a1);
            a2 = w2.fma(x, a2);
            a3 = w3.fma(x, a3);
            x = DoubleVector.broadcast(D, dy[yb + o]);
            b0 = w0.fma(x, b0);
            b1 = w1.fma(x, b1);
            b2 = w2.fma(x, b2);
            b3 = w3.fma(x, b3);
            x = DoubleVector.broadcast(D, dy[yc + o]);
            c0 = w0.fma(x, c0);
            c1 = w1.fma(x, c1);
            c2 = w2.fma(x, c2);
            c3 = w3.fma(x, c3);
        }
        a0.intoArray(tile, 0);
        a1.intoArray(tile, dl);
        a2.intoArray(tile, 2 * dl);
        a3.intoArray(tile, 3 * dl);
        b0.intoArray(tile, nr);
        b1.intoArray(tile, nr + dl);
        b2.intoArray(tile, nr + 2 * dl);
        b3.intoArray(tile, nr + 3 * dl);
        c0.intoArray(tile, 2 * nr);
        c1.intoArray(tile, 2 * nr + dl);
        c2.intoArray(tile, 2 * nr + 2 * dl);
        c3.intoArray(tile, 2 * nr + 3 * dl);
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
            // The head's rows in double, once: q, k and dC by token ([seq][headDim]), k and v by dimension ([headDim][seq]).
            // Every sum below is then an axpy along one contiguous row, adding in the definition's order (over d, or over
            // j, ascending): vectorized across the sums, none of them reordered.
            double[] qd = rows(qkv, q, stride, seq, headDim), kd = rows(qkv, k, stride, seq, headDim), cd = rows(dc, c, width, seq, headDim);
            double[] kt = columns(qkv, k, stride, seq, headDim), vt = columns(qkv, v, stride, seq, headDim);
            double[] p = new double[seq * seq], dS = new double[seq * seq];
            for (int t = 0; t < seq; t++) {
                // Probabilities of query t (masked keys exactly 0), then dP = dC V^T and dS = P (dP - rowsum(dP P)).
                int row = t * seq;
                for (int d = 0; d < headDim; d++) {
                    axpy(qd[t * headDim + d], kt, d * seq, p, row, seq);
                    axpy(cd[t * headDim + d], vt, d * seq, dS, row, seq);
                }
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < seq; j++) {
                    p[row + j] *= scale;
                    if (mask[b * seq + j] != 0) max = Math.max(max, p[row + j]);
                }
                double total = 0;
                for (int j = 0; j < seq; j++) {
                    p[row + j] = mask[b * seq + j] == 0 ? 0 : Math.exp(p[row + j] - max);
                    total += p[row + j];
                }
                double dot = 0;
                for (int j = 0; j < seq; j++) {
                    p[row + j] /= total;
                    dot += dS[row + j] * p[row + j];
                }
                for (int j = 0; j < seq; j++) dS[row + j] = p[row + j] * (dS[row + j] - dot);
            }
            double[] sq = new double[headDim], sk = new double[headDim], sv = new double[headDim];
            for (int t = 0; t < seq; t++) {
                Arrays.fill(sq, 0);
                Arrays.fill(sk, 0);
                Arrays.fill(sv, 0);
                for (int j = 0; j < seq; j++) {
                    axpy(dS[t * seq + j], kd, j * headDim, sq, 0, headDim);
                    axpy(dS[j * seq + t], qd, j * headDim, sk, 0, headDim);
                    axpy(p[j * seq + t], cd, j * headDim, sv, 0, headDim);
                }
                for (int d = 0; d < headDim; d++) {
                    dqkv[q + t * stride + d] = (float) (sq[d] * scale);
                    dqkv[k + t * stride + d] = (float) (sk[d] * scale);
                    dqkv[v + t * stride + d] = (float) sv[d];
                }
            }
        });
    }

    /** y[yo + i] += a x[xo + i], i < n: a multiply and an add per element (no FMA), as the scalar loop rounds. */
    private static void axpy(double a, double[] x, int xo, double[] y, int yo, int n) {
        int i = 0;
        for (int end = D.loopBound(n); i < end; i += D.length()) {
            DoubleVector.fromArray(D, y, yo + i).add(DoubleVector.fromArray(D, x, xo + i).mul(a)).intoArray(y, yo + i);
        }
        for (; i < n; i++) y[yo + i] += a * x[xo + i];
    }

    /** x's seq rows of n values at `at`, `stride` apart, widened: [seq][n]. */
    private static double[] rows(float[] x, int at, int stride, int seq, int n) {
        double[] out = new double[seq * n];
        for (int t = 0; t < seq; t++)
            for (int d = 0; d < n; d++) out[t * n + d] = x[at + t * stride + d];
        return out;
    }

    /** The same values by column: [n][seq]. */
    private static double[] columns(float[] x, int at, int stride, int seq, int n) {
        double[] out = new double[n * seq];
        for (int t = 0; t < seq; t++)
            for (int d = 0; d < n; d++) out[d * seq + t] = x[at + t * stride + d];
        return out;
    }

    @Override
    public void poolGrad(FloatBuf dPooledBuf, IntBuf maskBuf, int batch, int seq, int dim, Backend.Pooling mode, FloatBuf dHiddenBuf) {
        float[] dp = f(dPooledBuf), dh = f(dHiddenBuf);
        int[] mask = i(maskBuf);
        Arrays.fill(dh, 0, batch * seq * dim, 0f);
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
