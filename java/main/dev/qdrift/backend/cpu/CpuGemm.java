package dev.qdrift.backend.cpu;

import dev.qdrift.backend.Backend.Epilogue;
import java.util.stream.IntStream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * y[M,N] = epilogue(x[M,K] W^T + b) in FP32 with the Vector API.
 *
 * <p>W is packed once into column panels of {@link #NR} output channels, each panel stored k-major
 * ([K][NR]), so the inner loop streams one panel contiguously while broadcasting one x value per row:
 * an MR x NR register tile of accumulators (4 rows x 2 vectors), no horizontal reductions. Row blocks
 * run in parallel; each block walks all panels so a panel is reused by every row of the block while
 * it sits in L2.
 */
final class CpuGemm {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /** Output channels per panel: two vectors. */
    static final int NR = 2 * L;
    /** Rows per register tile. */
    private static final int MR = 4;
    /** Rows per parallel task. */
    private static final int ROW_BLOCK = 64;

    /** A linear layer packed for {@link #multiply}: panels of W^T and the bias padded to whole panels. */
    record Packed(int out, int in, float[] panels, float[] bias) implements dev.qdrift.backend.Backend.LinearWeights {}

    static Packed pack(float[] w, float[] bias, int out, int in) {
        int panels = (out + NR - 1) / NR;
        float[] p = new float[panels * in * NR];
        for (int n = 0; n < out; n++) {
            int panel = n / NR, j = n % NR;
            int base = panel * in * NR + j;
            for (int k = 0; k < in; k++) p[base + k * NR] = w[n * in + k];
        }
        float[] b = new float[panels * NR];
        System.arraycopy(bias, 0, b, 0, out);
        return new Packed(out, in, p, b);
    }

    static void multiply(float[] x, int rows, Packed w, Epilogue epilogue, float[] y) {
        int blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
        IntStream.range(0, blocks).parallel().forEach(blk -> {
            int r0 = blk * ROW_BLOCK, r1 = Math.min(rows, r0 + ROW_BLOCK);
            for (int panel = 0; panel * NR < w.out(); panel++) {
                int r = r0;
                for (; r + MR <= r1; r += MR) tile4(x, r, w, panel, epilogue, y);
                for (; r < r1; r++) tile1(x, r, w, panel, epilogue, y);
            }
        });
    }

    private static void tile4(float[] x, int r, Packed w, int panel, Epilogue e, float[] y) {
        int k = w.in();
        float[] p = w.panels();
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        int xa = r * k, xb = xa + k, xc = xb + k, xd = xc + k;
        int wp = panel * k * NR;
        for (int kk = 0; kk < k; kk++, wp += NR) {
            FloatVector w0 = FloatVector.fromArray(S, p, wp), w1 = FloatVector.fromArray(S, p, wp + L);
            FloatVector a = FloatVector.broadcast(S, x[xa + kk]);
            c00 = w0.fma(a, c00);
            c01 = w1.fma(a, c01);
            a = FloatVector.broadcast(S, x[xb + kk]);
            c10 = w0.fma(a, c10);
            c11 = w1.fma(a, c11);
            a = FloatVector.broadcast(S, x[xc + kk]);
            c20 = w0.fma(a, c20);
            c21 = w1.fma(a, c21);
            a = FloatVector.broadcast(S, x[xd + kk]);
            c30 = w0.fma(a, c30);
            c31 = w1.fma(a, c31);
        }
        store(c00, c01, r, w, panel, e, y);
        store(c10, c11, r + 1, w, panel, e, y);
        store(c20, c21, r + 2, w, panel, e, y);
        store(c30, c31, r + 3, w, panel, e, y);
    }

    private static void tile1(float[] x, int r, Packed w, int panel, Epilogue e, float[] y) {
        int k = w.in();
        float[] p = w.panels();
        FloatVector c0 = FloatVector.zero(S), c1 = c0;
        int xa = r * k, wp = panel * k * NR;
        for (int kk = 0; kk < k; kk++, wp += NR) {
            FloatVector a = FloatVector.broadcast(S, x[xa + kk]);
            c0 = FloatVector.fromArray(S, p, wp).fma(a, c0);
            c1 = FloatVector.fromArray(S, p, wp + L).fma(a, c1);
        }
        store(c0, c1, r, w, panel, e, y);
    }

    private static void store(FloatVector c0, FloatVector c1, int r, Packed w, int panel, Epilogue e, float[] y) {
        int n0 = panel * NR, out = w.out();
        c0 = apply(e, c0.add(FloatVector.fromArray(S, w.bias(), n0)));
        c1 = apply(e, c1.add(FloatVector.fromArray(S, w.bias(), n0 + L)));
        int off = r * out + n0;
        if (n0 + NR <= out) {
            c0.intoArray(y, off);
            c1.intoArray(y, off + L);
        } else {
            c0.intoArray(y, off, S.indexInRange(n0, out));
            VectorMask<Float> m1 = S.indexInRange(n0 + L, out);
            if (m1.anyTrue()) c1.intoArray(y, off + L, m1);
        }
    }

    private static FloatVector apply(Epilogue e, FloatVector v) {
        return switch (e) {
            case NONE -> v;
            case GELU -> CpuMath.gelu(v);
            case TANH -> v.lanewise(jdk.incubator.vector.VectorOperators.TANH);
        };
    }

    private CpuGemm() {}
}
