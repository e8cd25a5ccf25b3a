package dev.qdrift.backend.cpu;

import dev.qdrift.backend.Backend.Epilogue;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * y[M,N] = epilogue(x[M,K] W^T + b) in FP32 with the Vector API.
 *
 * <p>W is packed once into column panels of {@link #NR} output channels, each panel stored k-major
 * ([K][NR]), so the inner loop streams one panel contiguously while broadcasting one x value per row:
 * an {@link #MR} x {@link #NR} register tile of accumulators, no horizontal reductions. The loops
 * around it: parallel tasks are blocks of {@link #MC} rows, handed out one at a time by
 * {@link CpuBackend#parallelFor}; a block walks all panels, each panel (K x NR floats, 48 KiB at
 * K = 384, 192 KiB at 1536) staying in L2 while every row tile of the block streams it. (Cutting K into
 * L1-sized slices, with partial sums through y, measured no faster on this shape of problem.)
 *
 * <p>The activation (GELU or tanh) runs on a block's panel once its tiles are done, while that panel of
 * y is still in L1, in a separate small loop. Inlined into the tile kernel's stores, as it once was,
 * the GELU code bloated the kernel's compiled code for every caller: the up-projection's GEMM alone
 * ran about a quarter slower.
 *
 * <p>Bit-reproducibility: every output is one FMA chain over k = 0 .. K-1 in order, starting from 0,
 * plus the bias, and the edge kernel ({@link #tileRow}) does the same chain. So an output's value
 * depends on neither its position in a tile nor the row blocking nor which thread computes it.
 */
final class CpuGemm {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /** Output channels per panel (the tile's N): two vectors. */
    static final int NR = 2 * L;
    /**
     * Rows per register tile (the tile's M): 6 x 2 accumulators, 2 panel vectors and a broadcast use
     * 15 of the 32 AVX-512 registers, 12 independent FMA chains cover the FMA latency twice over, and
     * each panel vector loaded feeds 6 FMAs (4 x 2 fed 4; 8 x 2 was no faster).
     */
    static final int MR = 6;
    /** Rows per parallel task: a multiple of MR, small enough that two threads finish within ~1%. */
    static final int MC = 8 * MR;

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
        CpuBackend.parallelFor((rows + MC - 1) / MC, blk -> block(x, blk * MC, Math.min(rows, blk * MC + MC), w, epilogue, y));
    }

    /** Rows r0 .. r1-1 of y, all panels. */
    private static void block(float[] x, int r0, int r1, Packed w, Epilogue e, float[] y) {
        int out = w.out(), tileEnd = r0 + (r1 - r0) / MR * MR;
        for (int panel = 0; panel * NR < out; panel++) {
            if ((panel + 1) * NR <= out)
                for (int r = r0; r < tileEnd; r += MR) tile(x, r, w, panel, y);
            else // a last panel cut short by out: the row kernel, with masked stores
                for (int r = r0; r < tileEnd; r++) tileRow(x, r, w, panel, y);
            for (int r = tileEnd; r < r1; r++) tileRow(x, r, w, panel, y);
            epilogue(e, y, r0, r1, out, panel * NR);
        }
    }

    /** The MR x NR register tile at rows r .. r+MR-1 of one panel, over the whole K, plus the bias. */
    private static void tile(float[] x, int r, Packed w, int panel, float[] y) {
        int k = w.in(), out = w.out(), n0 = panel * NR;
        float[] p = w.panels();
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
                c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        int xa = r * k, xb = xa + k, xc = xb + k, xd = xc + k, xe = xd + k, xf = xe + k;
        for (int kk = 0, wp = panel * k * NR; kk < k; kk++, wp += NR) {
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
            a = FloatVector.broadcast(S, x[xe + kk]);
            c40 = w0.fma(a, c40);
            c41 = w1.fma(a, c41);
            a = FloatVector.broadcast(S, x[xf + kk]);
            c50 = w0.fma(a, c50);
            c51 = w1.fma(a, c51);
        }
        FloatVector b0 = FloatVector.fromArray(S, w.bias(), n0), b1 = FloatVector.fromArray(S, w.bias(), n0 + L);
        int y0 = r * out + n0, y1 = y0 + out, y2 = y1 + out, y3 = y2 + out, y4 = y3 + out, y5 = y4 + out;
        c00.add(b0).intoArray(y, y0);
        c01.add(b1).intoArray(y, y0 + L);
        c10.add(b0).intoArray(y, y1);
        c11.add(b1).intoArray(y, y1 + L);
        c20.add(b0).intoArray(y, y2);
        c21.add(b1).intoArray(y, y2 + L);
        c30.add(b0).intoArray(y, y3);
        c31.add(b1).intoArray(y, y3 + L);
        c40.add(b0).intoArray(y, y4);
        c41.add(b1).intoArray(y, y4 + L);
        c50.add(b0).intoArray(y, y5);
        c51.add(b1).intoArray(y, y5 + L);
    }

    /**
     * One row of one panel over the whole K, plus the bias: the rows left over after whole tiles, and
     * the last panel when out is not a multiple of NR (stores masked to the real channels). The same
     * FMA chain per output as {@link #tile}.
     */
    private static void tileRow(float[] x, int r, Packed w, int panel, float[] y) {
        int k = w.in(), out = w.out(), n0 = panel * NR;
        float[] p = w.panels();
        FloatVector c0 = FloatVector.zero(S), c1 = c0;
        int xa = r * k, wp = panel * k * NR;
        for (int kk = 0; kk < k; kk++, wp += NR) {
            FloatVector a = FloatVector.broadcast(S, x[xa + kk]);
            c0 = FloatVector.fromArray(S, p, wp).fma(a, c0);
            c1 = FloatVector.fromArray(S, p, wp + L).fma(a, c1);
        }
        c0 = c0.add(FloatVector.fromArray(S, w.bias(), n0));
        c1 = c1.add(FloatVector.fromArray(S, w.bias(), n0 + L));
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

    /** Applies the activation in place to rows r0 .. r1-1, channels n0 .. n0+NR-1 (clipped to out). */
    private static void epilogue(Epilogue e, float[] y, int r0, int r1, int out, int n0) {
        if (e == Epilogue.NONE) return;
        for (int c = n0; c < n0 + NR && c < out; c += L) {
            if (c + L <= out) {
                for (int r = r0, o = r0 * out + c; r < r1; r++, o += out)
                    apply(e, FloatVector.fromArray(S, y, o)).intoArray(y, o);
            } else {
                VectorMask<Float> m = S.indexInRange(c, out);
                for (int r = r0, o = r0 * out + c; r < r1; r++, o += out)
                    apply(e, FloatVector.fromArray(S, y, o, m)).intoArray(y, o, m);
            }
        }
    }

    private static FloatVector apply(Epilogue e, FloatVector v) {
        return switch (e) {
            case NONE -> v;
            case GELU -> CpuMath.gelu(v);
            case TANH -> v.lanewise(VectorOperators.TANH);
        };
    }

    private CpuGemm() {}
}
