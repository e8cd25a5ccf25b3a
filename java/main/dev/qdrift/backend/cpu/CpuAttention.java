package dev.qdrift.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Masked multi-head self-attention on the CPU, one (sequence, head) pair per task.
 *
 * <p>Per head, Q (pre-scaled by 1/sqrt(d)), K^T and V are copied into contiguous, zero-padded scratch
 * arrays (keys padded to whole tiles, head dim padded to whole tiles, query rows to whole tiles).
 * Scores S = Q K^T and context P V are then register-tiled like the GEMM: an {@link #MR} x {@link #NR}
 * tile of accumulators, broadcasting one scalar of Q (or of P) per row against two vectors of keys (or
 * of head dims), so nothing reduces across lanes and each element is one FMA chain in a fixed order.
 * Masked and padded keys get -inf before the softmax, hence probability exactly 0; the softmax's
 * division is applied to the context outputs (MR x headDim per tile) instead of to every probability.
 *
 * <p>The scratch arrays belong to the thread and are reused from task to task: allocating them per
 * task cost about a fifth of the task's arithmetic.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Query rows per register tile (the tile's M): 8 x 2 accumulators + 2 loaded vectors + a broadcast. */
    private static final int MR = 8;
    /** Keys per score tile and head dims per context tile (the tile's N): two vectors. */
    private static final int NR = 2 * L;

    /** One thread's working arrays, grown on demand; every element a task reads it first writes. */
    private static final class Scratch {
        float[] qh = new float[0], kt = new float[0], vh = new float[0], bias = new float[0], p = new float[0],
                inv = new float[MR], tile = new float[MR * NR];

        Scratch fit(int tq, int tp, int headDim, int dp) {
            if (qh.length < tq * headDim) qh = new float[tq * headDim];
            if (kt.length < headDim * tp) kt = new float[headDim * tp];
            if (vh.length < tp * dp) vh = new float[tp * dp];
            if (bias.length < tp) bias = new float[tp];
            if (p.length < MR * tp) p = new float[MR * tp];
            return this;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** qkv [batch*seq, 3*heads*headDim], each token's q | k | v; out [batch*seq, heads*headDim]. */
    static void run(float[] qkv, int[] mask, int batch, int seq, int heads, int headDim, float[] out) {
        int tp = roundUp(seq, NR), dp = roundUp(headDim, NR), tq = roundUp(seq, MR);
        float scale = (float) (1 / Math.sqrt(headDim));
        CpuBackend.parallelFor(batch * heads, bh -> head(qkv, mask, bh / heads, bh % heads, seq, heads, headDim,
                scale, tq, tp, dp, SCRATCH.get().fit(tq, tp, headDim, dp), out));
    }

    private static void head(float[] qkv, int[] mask, int b, int h, int seq, int heads, int headDim,
                             float scale, int tq, int tp, int dp, Scratch s, float[] out) {
        // [b, t=0, h, d=0] in out (rows of width) and in q of qkv (rows of 3 width; k and v width and 2 width further).
        int width = heads * headDim, stride = 3 * width, base = b * seq * width + h * headDim, in = b * seq * stride + h * headDim;
        float[] qh = s.qh, kt = s.kt, vh = s.vh, bias = s.bias, p = s.p, inv = s.inv;
        for (int t = 0; t < tp; t++) bias[t] = t < seq && mask[b * seq + t] != 0 ? 0f : Float.NEGATIVE_INFINITY;
        // Gather the head. Padding is zero, so padded lanes hold finite numbers: padded keys' scores
        // are -inf by the bias, padded values and head dims add exactly 0 to real outputs.
        int qBound = S.loopBound(headDim);
        for (int t = 0, src = in; t < seq; t++, src += stride) {
            int d = 0;
            for (; d < qBound; d += L) FloatVector.fromArray(S, qkv, src + d).mul(scale).intoArray(qh, t * headDim + d);
            for (; d < headDim; d++) qh[t * headDim + d] = qkv[src + d] * scale;
        }
        java.util.Arrays.fill(qh, seq * headDim, tq * headDim, 0f);
        // K^T one head dim at a time: contiguous stores; the strided loads touch the same 2 cache lines
        // per key for every d.
        for (int d = 0; d < headDim; d++) {
            for (int t = 0, src = in + width + d; t < seq; t++, src += stride) kt[d * tp + t] = qkv[src];
            java.util.Arrays.fill(kt, d * tp + seq, (d + 1) * tp, 0f);
        }
        for (int t = 0, src = in + 2 * width; t < seq; t++, src += stride) {
            System.arraycopy(qkv, src, vh, t * dp, headDim);
            java.util.Arrays.fill(vh, t * dp + headDim, (t + 1) * dp, 0f);
        }
        for (int i0 = 0; i0 < seq; i0 += MR) {
            scores(qh, i0, kt, headDim, tp, bias, p);
            for (int r = 0; r < MR; r++) inv[r] = 1 / softmaxNumerators(p, r * tp, tp);
            context(p, tp, vh, dp, seq, headDim, inv, s.tile, out, base + i0 * width, width, Math.min(MR, seq - i0));
        }
    }

    /** p[r][j] = bias[j] + sum_d qh[i0+r][d] kt[d][j] for MR rows, NR keys at a time. */
    private static void scores(float[] qh, int i0, float[] kt, int headDim, int tp, float[] bias, float[] p) {
        int q0 = i0 * headDim, q1 = q0 + headDim, q2 = q1 + headDim, q3 = q2 + headDim, q4 = q3 + headDim,
                q5 = q4 + headDim, q6 = q5 + headDim, q7 = q6 + headDim;
        for (int j = 0; j < tp; j += NR) {
            FloatVector c00 = FloatVector.fromArray(S, bias, j), c01 = FloatVector.fromArray(S, bias, j + L);
            FloatVector c10 = c00, c11 = c01, c20 = c00, c21 = c01, c30 = c00, c31 = c01, c40 = c00, c41 = c01,
                    c50 = c00, c51 = c01, c60 = c00, c61 = c01, c70 = c00, c71 = c01;
            for (int d = 0, ko = j; d < headDim; d++, ko += tp) {
                FloatVector k0 = FloatVector.fromArray(S, kt, ko), k1 = FloatVector.fromArray(S, kt, ko + L);
                FloatVector a = FloatVector.broadcast(S, qh[q0 + d]);
                c00 = k0.fma(a, c00);
                c01 = k1.fma(a, c01);
                a = FloatVector.broadcast(S, qh[q1 + d]);
                c10 = k0.fma(a, c10);
                c11 = k1.fma(a, c11);
                a = FloatVector.broadcast(S, qh[q2 + d]);
                c20 = k0.fma(a, c20);
                c21 = k1.fma(a, c21);
                a = FloatVector.broadcast(S, qh[q3 + d]);
                c30 = k0.fma(a, c30);
                c31 = k1.fma(a, c31);
                a = FloatVector.broadcast(S, qh[q4 + d]);
                c40 = k0.fma(a, c40);
                c41 = k1.fma(a, c41);
                a = FloatVector.broadcast(S, qh[q5 + d]);
                c50 = k0.fma(a, c50);
                c51 = k1.fma(a, c51);
                a = FloatVector.broadcast(S, qh[q6 + d]);
                c60 = k0.fma(a, c60);
                c61 = k1.fma(a, c61);
                a = FloatVector.broadcast(S, qh[q7 + d]);
                c70 = k0.fma(a, c70);
                c71 = k1.fma(a, c71);
            }
            c00.intoArray(p, j);
            c01.intoArray(p, j + L);
            c10.intoArray(p, tp + j);
            c11.intoArray(p, tp + j + L);
            c20.intoArray(p, 2 * tp + j);
            c21.intoArray(p, 2 * tp + j + L);
            c30.intoArray(p, 3 * tp + j);
            c31.intoArray(p, 3 * tp + j + L);
            c40.intoArray(p, 4 * tp + j);
            c41.intoArray(p, 4 * tp + j + L);
            c50.intoArray(p, 5 * tp + j);
            c51.intoArray(p, 5 * tp + j + L);
            c60.intoArray(p, 6 * tp + j);
            c61.intoArray(p, 6 * tp + j + L);
            c70.intoArray(p, 7 * tp + j);
            c71.intoArray(p, 7 * tp + j + L);
        }
    }

    /**
     * Replaces the row's scores by exp(score - max) and returns their sum: the softmax without its
     * division, which {@link #context} applies to its MR x head-dim outputs instead of to every score.
     */
    private static float softmaxNumerators(float[] p, int off, int n) {
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int j = 0; j < n; j += L) m = m.max(FloatVector.fromArray(S, p, off + j));
        float max = m.reduceLanes(VectorOperators.MAX); // exact in any order, unlike ADD
        FloatVector sum = FloatVector.zero(S);
        for (int j = 0; j < n; j += L) {
            FloatVector e = CpuMath.exp(FloatVector.fromArray(S, p, off + j).sub(max));
            e.intoArray(p, off + j);
            sum = sum.add(e);
        }
        return CpuMath.sumLanes(sum);
    }

    /**
     * out[o + r*width][:] = inv[r] sum_j p[r][j] vh[j][:] for MR query rows (the first {@code rows} of
     * them stored), NR head dims at a time, over the real keys only (padded keys have probability 0).
     */
    private static void context(float[] p, int tp, float[] vh, int dp, int seq, int headDim,
                                float[] inv, float[] tile, float[] out, int o, int width, int rows) {
        for (int c = 0; c < headDim; c += NR) {
            FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
                    c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
            for (int j = 0, vo = c; j < seq; j++, vo += dp) {
                FloatVector v0 = FloatVector.fromArray(S, vh, vo), v1 = FloatVector.fromArray(S, vh, vo + L);
                FloatVector a = FloatVector.broadcast(S, p[j]);
                c00 = v0.fma(a, c00);
                c01 = v1.fma(a, c01);
                a = FloatVector.broadcast(S, p[tp + j]);
                c10 = v0.fma(a, c10);
                c11 = v1.fma(a, c11);
                a = FloatVector.broadcast(S, p[2 * tp + j]);
                c20 = v0.fma(a, c20);
                c21 = v1.fma(a, c21);
                a = FloatVector.broadcast(S, p[3 * tp + j]);
                c30 = v0.fma(a, c30);
                c31 = v1.fma(a, c31);
                a = FloatVector.broadcast(S, p[4 * tp + j]);
                c40 = v0.fma(a, c40);
                c41 = v1.fma(a, c41);
                a = FloatVector.broadcast(S, p[5 * tp + j]);
                c50 = v0.fma(a, c50);
                c51 = v1.fma(a, c51);
                a = FloatVector.broadcast(S, p[6 * tp + j]);
                c60 = v0.fma(a, c60);
                c61 = v1.fma(a, c61);
                a = FloatVector.broadcast(S, p[7 * tp + j]);
                c70 = v0.fma(a, c70);
                c71 = v1.fma(a, c71);
            }
            // Through a small L1 tile, then row by row: passing the accumulators to a store helper made
            // C2 box them and the loop run twice as slow.
            c00.mul(inv[0]).intoArray(tile, 0);
            c01.mul(inv[0]).intoArray(tile, L);
            c10.mul(inv[1]).intoArray(tile, NR);
            c11.mul(inv[1]).intoArray(tile, NR + L);
            c20.mul(inv[2]).intoArray(tile, 2 * NR);
            c21.mul(inv[2]).intoArray(tile, 2 * NR + L);
            c30.mul(inv[3]).intoArray(tile, 3 * NR);
            c31.mul(inv[3]).intoArray(tile, 3 * NR + L);
            c40.mul(inv[4]).intoArray(tile, 4 * NR);
            c41.mul(inv[4]).intoArray(tile, 4 * NR + L);
            c50.mul(inv[5]).intoArray(tile, 5 * NR);
            c51.mul(inv[5]).intoArray(tile, 5 * NR + L);
            c60.mul(inv[6]).intoArray(tile, 6 * NR);
            c61.mul(inv[6]).intoArray(tile, 6 * NR + L);
            c70.mul(inv[7]).intoArray(tile, 7 * NR);
            c71.mul(inv[7]).intoArray(tile, 7 * NR + L);
            for (int r = 0; r < rows; r++) System.arraycopy(tile, r * NR, out, o + r * width + c, Math.min(NR, headDim - c));
        }
    }

    private static int roundUp(int n, int m) {
        return (n + m - 1) / m * m;
    }

    private CpuAttention() {}
}
