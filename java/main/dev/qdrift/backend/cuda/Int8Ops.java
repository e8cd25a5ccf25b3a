package dev.qdrift.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * The INT8 kernels of native/int8.cu over raw device pointers: FP32 → s8 quantization (per tensor, per
 * token, per column group) and the s8 × s8 GEMM on the tensor cores with its epilogues (raw int32, FP32
 * with scales / bias / GELU / residual, and the per-embedding-group variant). Work is queued on the
 * stream given at construction; pointers are device memory the caller owns.
 *
 * <p>Conventions (qdrift.h states them in full): quantization is symmetric, q = clamp(rint(x / s), −127,
 * 127) with round-half-to-even; the GEMM computes C[m,n] = Σ_k a[m,k]·b[n,k] for activations a [m × k]
 * and weights b [n × k], both row-major s8, exactly in int32; k must be a multiple of 16 and a, b
 * 16-byte aligned. Arguments are checked here first, so a bad call fails with an
 * IllegalArgumentException that says what is wrong rather than a bare CUDA status.
 */
public final class Int8Ops {
    /** Let the launcher pick the tile shape. */
    public static final int AUTO_TILE = -1;

    /**
     * Scales and extras of the FP32 epilogue: y = act(acc · xScale[m or 0] · wScale[n or 0] + bias[n]) +
     * residual[m,n]. bias and residual may be {@link MemorySegment#NULL}.
     */
    public record Epilogue(MemorySegment xScale, boolean xPerRow, MemorySegment wScale, boolean wPerCol,
                           MemorySegment bias, MemorySegment residual, boolean gelu) {
        public Epilogue {
            if (bias == null) bias = MemorySegment.NULL;
            if (residual == null) residual = MemorySegment.NULL;
        }
    }

    private final QdriftCuda cuda;
    private final MemorySegment stream;

    Int8Ops(QdriftCuda cuda, MemorySegment stream) {
        this.cuda = cuda;
        this.stream = stream;
    }

    private void launch(String what, QdriftCuda.NativeCall call) {
        cuda.launch(what, call);
    }

    private static void require(boolean ok, String what, String why) {
        if (!ok) throw new IllegalArgumentException(what + ": " + why);
    }

    private static void requireDevice(MemorySegment p, String what, String name) {
        require(p != null && !p.equals(MemorySegment.NULL), what, name + " is NULL");
    }

    private static void requireShape(String what, int m, int n, int k, MemorySegment a, MemorySegment b) {
        require(m > 0 && n > 0 && k > 0, what, "sizes must be positive");
        require(k % 16 == 0, what, "K = " + k + " is not a multiple of 16");
        requireDevice(a, what, "a");
        requireDevice(b, what, "b");
        require(a.address() % 16 == 0 && b.address() % 16 == 0, what, "a and b must be 16-byte aligned");
    }

    // ---- quantization ----

    /** q = clamp(rint(x / scale), −127, 127) over rows × cols floats; scale &gt; 0. */
    public void quantizePerTensor(MemorySegment x, int rows, int cols, float scale, MemorySegment q) {
        String what = "qd_quantize_s8_tensor " + rows + "x" + cols;
        require(rows > 0 && cols > 0, what, "sizes must be positive");
        require(scale > 0 && Float.isFinite(scale), what, "scale " + scale + " must be positive and finite");
        launch(what, () -> (int) cuda.quantizeS8Tensor.invokeExact(x, rows, cols, scale, q, stream));
    }

    /** Per row: scales[r] = max|x[r,:]| / 127 (1 for an all-zero row), q[r,:] quantized with it. */
    public void quantizePerToken(MemorySegment x, int rows, int cols, MemorySegment q, MemorySegment scales) {
        String what = "qd_quantize_s8_token " + rows + "x" + cols;
        require(rows > 0 && cols > 0, what, "sizes must be positive");
        launch(what, () -> (int) cuda.quantizeS8Token.invokeExact(x, rows, cols, q, scales, stream));
    }

    /** Per column group: group g = columns [g·cols/groups, (g+1)·cols/groups), scale scales[g]; cols % groups == 0. */
    public void quantizePerGroup(MemorySegment x, int rows, int cols, int groups, MemorySegment scales, MemorySegment q) {
        String what = "qd_quantize_s8_group " + rows + "x" + cols + " in " + groups + " groups";
        require(rows > 0 && cols > 0 && groups > 0, what, "sizes must be positive");
        require(cols % groups == 0, what, cols + " columns do not split into " + groups + " equal groups");
        launch(what, () -> (int) cuda.quantizeS8Group.invokeExact(x, rows, cols, groups, scales, q, stream));
    }

    // ---- GEMM ----

    /** c[m,n] = Σ_k a[m,k]·b[n,k] in int32. tile: {@link #AUTO_TILE} or 0 .. {@link #tiles()}−1. */
    public void gemmS32(MemorySegment a, MemorySegment b, int m, int n, int k, MemorySegment c, int tile) {
        String what = "qd_i8_gemm_s32 " + m + "x" + n + "x" + k;
        requireShape(what, m, n, k, a, b);
        requireDevice(c, what, "c");
        launch(what, () -> (int) cuda.i8GemmS32.invokeExact(a, b, m, n, k, c, tile, stream));
    }

    /** y = act(acc · x scale · w scale + bias) + residual (see {@link Epilogue}). */
    public void gemmF32(MemorySegment a, MemorySegment b, int m, int n, int k, Epilogue e, MemorySegment y, int tile) {
        String what = "qd_i8_gemm_f32 " + m + "x" + n + "x" + k;
        requireShape(what, m, n, k, a, b);
        requireDevice(e.xScale(), what, "x scale");
        requireDevice(e.wScale(), what, "w scale");
        requireDevice(y, what, "y");
        int xr = e.xPerRow() ? 1 : 0, wc = e.wPerCol() ? 1 : 0, act = e.gelu() ? 1 : 0;
        launch(what, () -> (int) cuda.i8GemmF32.invokeExact(a, b, m, n, k, e.xScale(), xr, e.wScale(), wc, e.bias(), e.residual(),
                act, y, tile, stream));
    }

    /**
     * Per-embedding-group activation scales: the k channels form `groups` contiguous groups of k/groups
     * channels ((k/groups) % 16 == 0), a's group g quantized with groupScales[g];
     * y = act(wScale[n or 0] · Σ_g groupScales[g] · acc_g + bias) + residual, each group's int32 sum folded
     * into an FP32 sum at the group's end. The epilogue's xScale / xPerRow are ignored.
     */
    public void gemmPegF32(MemorySegment a, MemorySegment b, int m, int n, int k, int groups, MemorySegment groupScales,
                           Epilogue e, MemorySegment y, int tile) {
        String what = "qd_i8_gemm_peg_f32 " + m + "x" + n + "x" + k + " in " + groups + " groups";
        requireShape(what, m, n, k, a, b);
        require(groups > 0 && k % groups == 0 && (k / groups) % 16 == 0, what,
                "K must split into groups of a multiple of 16 channels");
        requireDevice(groupScales, what, "group scales");
        requireDevice(e.wScale(), what, "w scale");
        requireDevice(y, what, "y");
        int wc = e.wPerCol() ? 1 : 0, act = e.gelu() ? 1 : 0;
        launch(what, () -> (int) cuda.i8GemmPegF32.invokeExact(a, b, m, n, k, groups, groupScales, e.wScale(), wc, e.bias(),
                e.residual(), act, y, tile, stream));
    }

    // ---- tile shapes ----

    /** The number of tile shapes compiled in. */
    public int tiles() {
        int t = 0;
        while (tileInfo(t) != null) t++;
        return t;
    }

    /** Tile `tile` as {rows, columns, k bytes, warps, stages, peg (1 if gemmPegF32 has it)}, or null past the last. */
    public int[] tileInfo(int tile) {
        try {
            return cuda.i8GemmTileInfo(tile);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** "128x128x64 8w 4st" for tile `tile`. */
    public String tileName(int tile) {
        int[] i = tileInfo(tile);
        return i == null ? "tile " + tile : i[0] + "x" + i[1] + "x" + i[2] + " " + i[3] + "w " + i[4] + "st";
    }

    /** The tile the launchers pick for an m × n × k problem on the current device. */
    public int pickTile(int m, int n, int k, boolean peg) {
        try {
            return cuda.i8GemmPickTile(m, n, k, peg);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
