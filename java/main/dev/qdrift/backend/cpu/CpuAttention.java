package dev.qdrift.backend.cpu;

import java.util.stream.IntStream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Masked multi-head self-attention on the CPU, one (sequence, head) pair per task.
 *
 * <p>Per head, Q (pre-scaled by 1/sqrt(d)), K^T and V are copied into contiguous, zero-padded scratch
 * arrays (keys padded to whole vectors, head dim padded to whole vectors, query rows to whole tiles).
 * Scores S = Q K^T and context P V are then register-tiled like the GEMM: {@link #ROWS} query rows at a
 * time, broadcasting one scalar against a vector of keys (or of head dims), so nothing reduces across
 * lanes. Masked and padded keys get -inf before the softmax, hence probability exactly 0.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final int ROWS = 4;

    static void run(float[] q, float[] k, float[] v, int[] mask, int batch, int seq, int heads, int headDim, float[] out) {
        int width = heads * headDim;
        int tp = roundUp(seq, L), dp = roundUp(headDim, L), tq = roundUp(seq, ROWS);
        float scale = (float) (1 / Math.sqrt(headDim));
        IntStream.range(0, batch * heads).parallel().forEach(bh -> {
            int b = bh / heads, h = bh % heads;
            float[] qh = new float[tq * headDim], kt = new float[headDim * tp], vh = new float[tp * dp];
            float[] bias = new float[tp], p = new float[ROWS * tp], ctx = new float[ROWS * dp];
            for (int t = 0; t < tp; t++) bias[t] = t < seq && mask[b * seq + t] != 0 ? 0f : Float.NEGATIVE_INFINITY;
            for (int t = 0; t < seq; t++) {
                int src = (b * seq + t) * width + h * headDim;
                for (int d = 0; d < headDim; d++) {
                    qh[t * headDim + d] = q[src + d] * scale;
                    kt[d * tp + t] = k[src + d];
                }
                System.arraycopy(v, src, vh, t * dp, headDim);
            }
            for (int i0 = 0; i0 < seq; i0 += ROWS) {
                scores(qh, i0, kt, headDim, tp, bias, p);
                for (int r = 0; r < ROWS; r++) softmax(p, r * tp, tp);
                context(p, vh, tp, dp, ctx);
                for (int r = 0; r < ROWS && i0 + r < seq; r++)
                    System.arraycopy(ctx, r * dp, out, (b * seq + i0 + r) * width + h * headDim, headDim);
            }
        });
    }

    /** p[r][j] = sum_d qh[i0+r][d] kt[d][j] + bias[j] for ROWS rows, one vector of keys at a time. */
    private static void scores(float[] qh, int i0, float[] kt, int headDim, int tp, float[] bias, float[] p) {
        int q0 = i0 * headDim, q1 = q0 + headDim, q2 = q1 + headDim, q3 = q2 + headDim;
        for (int j = 0; j < tp; j += L) {
            FloatVector a0 = FloatVector.fromArray(S, bias, j), a1 = a0, a2 = a0, a3 = a0;
            for (int d = 0, ko = j; d < headDim; d++, ko += tp) {
                FloatVector kv = FloatVector.fromArray(S, kt, ko);
                a0 = kv.fma(FloatVector.broadcast(S, qh[q0 + d]), a0);
                a1 = kv.fma(FloatVector.broadcast(S, qh[q1 + d]), a1);
                a2 = kv.fma(FloatVector.broadcast(S, qh[q2 + d]), a2);
                a3 = kv.fma(FloatVector.broadcast(S, qh[q3 + d]), a3);
            }
            a0.intoArray(p, j);
            a1.intoArray(p, tp + j);
            a2.intoArray(p, 2 * tp + j);
            a3.intoArray(p, 3 * tp + j);
        }
    }

    private static void softmax(float[] p, int off, int n) {
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int j = 0; j < n; j += L) m = m.max(FloatVector.fromArray(S, p, off + j));
        float max = m.reduceLanes(VectorOperators.MAX);
        FloatVector sum = FloatVector.zero(S);
        for (int j = 0; j < n; j += L) {
            FloatVector e = CpuMath.exp(FloatVector.fromArray(S, p, off + j).sub(max));
            e.intoArray(p, off + j);
            sum = sum.add(e);
        }
        float inv = 1 / CpuMath.sumLanes(sum);
        for (int j = 0; j < n; j += L) FloatVector.fromArray(S, p, off + j).mul(inv).intoArray(p, off + j);
    }

    /** ctx[r][:] = sum_j p[r][j] vh[j][:] for ROWS rows, one vector of head dims at a time. */
    private static void context(float[] p, float[] vh, int tp, int dp, float[] ctx) {
        for (int c = 0; c < dp; c += L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0, vo = c; j < tp; j++, vo += dp) {
                FloatVector vv = FloatVector.fromArray(S, vh, vo);
                a0 = vv.fma(FloatVector.broadcast(S, p[j]), a0);
                a1 = vv.fma(FloatVector.broadcast(S, p[tp + j]), a1);
                a2 = vv.fma(FloatVector.broadcast(S, p[2 * tp + j]), a2);
                a3 = vv.fma(FloatVector.broadcast(S, p[3 * tp + j]), a3);
            }
            a0.intoArray(ctx, c);
            a1.intoArray(ctx, dp + c);
            a2.intoArray(ctx, 2 * dp + c);
            a3.intoArray(ctx, 3 * dp + c);
        }
    }

    private static int roundUp(int n, int m) {
        return (n + m - 1) / m * m;
    }

    private CpuAttention() {}
}
