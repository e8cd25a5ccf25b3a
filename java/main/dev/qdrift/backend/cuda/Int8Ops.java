package dev.qdrift.backend.cuda;

import java.lang.foreign.MemorySegment;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The INT8 kernels of native/int8.cu over raw device pointers: FP32 → s8 quantization (per tensor, per
 * token, per column group) and the s8 × s8 GEMM on the tensor cores with its epilogues (raw int32; FP32,
 * FP16 or re-quantized s8 output of act(acc · scales + bias) + residual; and the per-embedding-group
 * variant of each). Work is queued on the stream given at construction; pointers are device memory the
 * caller owns.
 *
 * <p>Conventions (qdrift.h states them in full): quantization is symmetric, q = clamp(rint(x / s), −127,
 * 127) with round-half-to-even; the GEMM computes C[m,n] = Σ_k a[m,k]·b[n,k] for activations a [m × k]
 * and weights b [n × k], both row-major s8, exactly in int32. The kernels read a and b in 16-byte chunks,
 * so they need k % 16 == 0 and 16-byte aligned a, b: calls that break that are not refused but take a
 * fallback, logged once per reason (see {@link #s8Unsupported}): both operands are repacked into
 * zero-padded, aligned scratch rows first (zero columns add nothing to the sums, so the result is the
 * same), which costs a copy, a cudaMalloc and a synchronizing cudaFree per call. Other bad arguments fail
 * with an IllegalArgumentException that says what is wrong rather than a bare CUDA status.
 */
public final class Int8Ops {
    private static final Logger log = LoggerFactory.getLogger(Int8Ops.class);
    private static final Set<String> LOGGED = ConcurrentHashMap.newKeySet();

    /** Let the launcher pick the tile shape. */
    public static final int AUTO_TILE = -1;
    /**
     * The Hopper kernel (wgmma, TMA, warp-specialized; cuda/int8_gemm_wgmma.cuh) for int32 and FP32 outputs: what
     * {@link #AUTO_TILE} runs where qd_i8_gemm_wgmma_supported says it can (sm_90). Its int32 output (through
     * shared memory and TMA stores) measured 1.10–1.21x cuBLASLt INT8 at the BERT shapes and 1.15–1.68x our
     * mma.sync kernel (bench/results/2026-11-23-h100-tma-store); its FP32 + GELU epilogue 0.94–1.75x mma.sync's
     * (same folder, final/). Elsewhere, for other outputs, or for outputs not aligned for its paired stores, the
     * mma.sync kernel runs, with the reason logged once.
     */
    public static final int WGMMA = -2;
    /**
     * cuBLASLt's s8 TN GEMM (int32 output only, {@link #gemmS32}), for comparison with our kernels: needs
     * {@link #openCublasLt} first. A shape cuBLASLt has no algorithm for, or operands it cannot read directly, run our
     * kernels instead (AUTO_TILE), the reason logged once. Float outputs: gemmS32 then {@link #dequantizeF32}.
     */
    public static final int CUBLASLT = -3;
    /** The range of the s8 epilogue's output scale (the kernel's division-free requantization needs it). */
    public static final float MIN_OUT_SCALE = 0x1p-64f, MAX_OUT_SCALE = 0x1p64f;

    /**
     * Scales and extras of the float epilogues: y = act(acc · xScale[m or 0] · wScale[n or 0] + bias[n]) +
     * residual[m,n] (FP32 bias and residual). bias and residual may be {@link MemorySegment#NULL}.
     */
    public record Epilogue(MemorySegment xScale, boolean xPerRow, MemorySegment wScale, boolean wPerCol,
                           MemorySegment bias, MemorySegment residual, boolean gelu) {
        public Epilogue {
            if (bias == null) bias = MemorySegment.NULL;
            if (residual == null) residual = MemorySegment.NULL;
        }
    }

    /** The output of a float epilogue: FP32, FP16 (binary16, round to nearest even) or s8 re-quantized with outScale. */
    public enum Output {
        F32(4), F16(2), S8(1);

        /** Bytes per element. */
        public final int bytes;

        Output(int bytes) {
            this.bytes = bytes;
        }
    }

    private final QdriftCuda cuda;
    private final MemorySegment stream;

    private final boolean hopper;

    private CublasLtPlans cublasLt; // opened by openCublasLt
    private long cublasLtRuns;

    Int8Ops(QdriftCuda cuda, MemorySegment stream) {
        this.cuda = cuda;
        this.stream = stream;
        boolean h;
        try {
            h = (int) cuda.i8GemmWgmmaSupported.invokeExact() == 0;
        } catch (Throwable t) {
            h = false;
        }
        hopper = h;
        if (!hopper) logOnce("int8 GEMM: the wgmma kernel needs an sm_90 device (and the driver's tensor-map entry point); "
                + "the mma.sync kernel runs");
    }

    /**
     * Whether this call runs the wgmma kernel: tile AUTO_TILE or WGMMA on a Hopper device, and outputs (and the
     * residual) aligned for its column-pair stores (8 bytes when n is even). Otherwise the mma.sync kernel runs
     * (AUTO_TILE, the reason logged once) or the call is refused (WGMMA).
     */
    private boolean wgmmaRuns(int tile, int n, MemorySegment... outputs) {
        if (!wgmma(tile)) return false;
        long pair = n % 2 == 0 ? 8 : 4;
        for (MemorySegment p : outputs) {
            if (isNull(p) || p.address() % pair == 0) continue;
            if (tile == WGMMA) throw new IllegalArgumentException("the wgmma kernel needs " + pair + "-byte aligned outputs and residual");
            logOnce("int8 GEMM: an output or residual not " + pair + "-byte aligned for the wgmma kernel's paired stores; "
                    + "the mma.sync kernel runs");
            return false;
        }
        return true;
    }

    /** Whether tile (AUTO_TILE or WGMMA) runs the wgmma kernel here. */
    private boolean wgmma(int tile) {
        if (tile == WGMMA && !hopper)
            throw new IllegalArgumentException("the wgmma kernel needs an sm_90 (Hopper) device; use AUTO_TILE or an mma.sync tile");
        return hopper && (tile == WGMMA || tile == AUTO_TILE);
    }

    private void launch(String what, QdriftCuda.NativeCall call) {
        cuda.launch(what, call);
    }

    private static void require(boolean ok, String what, String why) {
        if (!ok) throw new IllegalArgumentException(what + ": " + why);
    }

    private static boolean isNull(MemorySegment p) {
        return p == null || p.equals(MemorySegment.NULL);
    }

    private static void requireDevice(MemorySegment p, String what, String name) {
        require(!isNull(p), what, name + " is NULL");
    }

    private static void requireSizes(String what, int m, int n, int k, MemorySegment a, MemorySegment b) {
        require(m > 0 && n > 0 && k > 0, what, "sizes must be positive");
        requireDevice(a, what, "a");
        requireDevice(b, what, "b");
    }

    // ---- what the s8 kernels can read directly ----

    /** k rounded up to the next multiple of 16 (the s8 GEMM's k granule). */
    public static int paddedK(int k) {
        if (k <= 0 || k > Integer.MAX_VALUE - 15) throw new IllegalArgumentException("k = " + k);
        return (k + 15) & ~15;
    }

    /**
     * Why the s8 GEMM kernels cannot read a [m × k] and b [n × k] (row-major s8 at these addresses, split
     * into `groups` column groups, 0 or 1 for a plain GEMM) directly, or null when they can: k (or the
     * group size) not a multiple of 16, or an operand not 16-byte aligned.
     */
    public static String s8Unsupported(int k, int groups, long aAddress, long bAddress) {
        int gs = groups > 1 ? k / groups : k;
        if (gs % 16 != 0)
            return groups > 1 ? "group size " + k + "/" + groups + " = " + gs + " is not a multiple of 16"
                    : "K = " + k + " is not a multiple of 16";
        if (aAddress % 16 != 0 || bAddress % 16 != 0)
            return "operand " + (aAddress % 16 != 0 ? "a" : "b") + " is not 16-byte aligned";
        return null;
    }

    /** Logs `message` once per JVM (one line, INFO): the fallbacks are correct but slower, worth knowing once. */
    static void logOnce(String message) {
        if (LOGGED.add(message)) log.info(message);
    }

    // ---- quantization ----

    /** q = clamp(rint(x / scale), −127, 127) over rows × cols floats; scale &gt; 0. */
    public void quantizePerTensor(MemorySegment x, int rows, int cols, float scale, MemorySegment q) {
        quantizePerTensor(x, rows, cols, scale, q, cols);
    }

    /** The same into rows of ldq ≥ cols bytes, columns cols .. ldq−1 set to 0 (for a K padded to {@link #paddedK}). */
    public void quantizePerTensor(MemorySegment x, int rows, int cols, float scale, MemorySegment q, int ldq) {
        String what = "qd_quantize_s8_tensor " + rows + "x" + cols + (ldq != cols ? " into rows of " + ldq : "");
        require(rows > 0 && cols > 0, what, "sizes must be positive");
        require(ldq >= cols, what, "ldq " + ldq + " < cols");
        require(scale > 0 && Float.isFinite(scale), what, "scale " + scale + " must be positive and finite");
        launch(what, () -> (int) cuda.quantizeS8TensorLd.invokeExact(x, rows, cols, scale, q, ldq, stream));
    }

    /** Per row: scales[r] = max|x[r,:]| / 127 (1 for an all-zero row), q[r,:] quantized with it. */
    public void quantizePerToken(MemorySegment x, int rows, int cols, MemorySegment q, MemorySegment scales) {
        quantizePerToken(x, rows, cols, q, cols, scales);
    }

    /** The same into rows of ldq ≥ cols bytes, columns cols .. ldq−1 set to 0. */
    public void quantizePerToken(MemorySegment x, int rows, int cols, MemorySegment q, int ldq, MemorySegment scales) {
        String what = "qd_quantize_s8_token " + rows + "x" + cols + (ldq != cols ? " into rows of " + ldq : "");
        require(rows > 0 && cols > 0, what, "sizes must be positive");
        require(ldq >= cols, what, "ldq " + ldq + " < cols");
        launch(what, () -> (int) cuda.quantizeS8TokenLd.invokeExact(x, rows, cols, q, ldq, scales, stream));
    }

    /** Per column group: group g = columns [g·cols/groups, (g+1)·cols/groups), scale scales[g]; cols % groups == 0. */
    public void quantizePerGroup(MemorySegment x, int rows, int cols, int groups, MemorySegment scales, MemorySegment q) {
        String what = "qd_quantize_s8_group " + rows + "x" + cols + " in " + groups + " groups";
        require(rows > 0 && cols > 0 && groups > 0, what, "sizes must be positive");
        require(cols % groups == 0, what, cols + " columns do not split into " + groups + " equal groups");
        launch(what, () -> (int) cuda.quantizeS8Group.invokeExact(x, rows, cols, groups, scales, q, stream));
    }

    /**
     * s8 src [rows × cols] (any alignment) → dst [rows × dstCols]: each of the `groups` equal column groups
     * is placed at the start of a group of dstCols/groups columns, the rest set to 0.
     */
    public void repack(MemorySegment src, int rows, int cols, int groups, MemorySegment dst, int dstCols) {
        String what = "qd_i8_repack " + rows + "x" + cols + " -> " + rows + "x" + dstCols + " in " + groups + " groups";
        require(rows > 0 && cols > 0 && groups > 0, what, "sizes must be positive");
        require(cols % groups == 0 && dstCols % groups == 0 && dstCols / groups >= cols / groups, what, "groups do not fit");
        requireDevice(src, what, "src");
        requireDevice(dst, what, "dst");
        launch(what, () -> (int) cuda.i8Repack.invokeExact(src, rows, cols, groups, dst, dstCols, stream));
    }

    // ---- GEMM ----

    /** One GEMM launch on operands the kernels can read (a, b aligned, k % 16 == 0). */
    @FunctionalInterface
    private interface Gemm {
        int run(MemorySegment a, MemorySegment b, int k) throws Throwable;
    }

    /**
     * Runs `gemm` on a and b directly, or, where {@link #s8Unsupported} says the kernels cannot read them,
     * on zero-padded, 16-byte aligned copies (each group padded to a multiple of 16 columns), after logging
     * the reason once.
     */
    private void gemm(String what, MemorySegment a, MemorySegment b, int m, int n, int k, int groups, Gemm gemm) {
        String why = s8Unsupported(k, groups, a.address(), b.address());
        if (why == null) {
            launch(what, () -> gemm.run(a, b, k));
            return;
        }
        int g = Math.max(groups, 1), kp = g * paddedK(k / g);
        logOnce("int8 GEMM " + what + ": " + why + "; the operands are repacked into zero-padded, aligned rows of " + kp
                + " bytes first (same result, slower)");
        try {
            MemorySegment ap = cuda.malloc((long) m * kp), bp = MemorySegment.NULL;
            try {
                bp = cuda.malloc((long) n * kp);
                repack(a, m, k, g, ap, kp);
                repack(b, n, k, g, bp, kp);
                MemorySegment fa = ap, fb = bp;
                launch(what + " (repacked to K = " + kp + ")", () -> gemm.run(fa, fb, kp));
                cuda.synchronize(stream);
            } finally {
                cuda.free(ap);
                if (!isNull(bp)) cuda.free(bp);
            }
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(what + ": " + t, t);
        }
    }

    /**
     * Opens cuBLASLt for the {@link #CUBLASLT} tile: its library, a handle and a workspace (allocated now, not during
     * a graph capture). Idempotent; {@link #close} releases them.
     */
    public void openCublasLt() {
        if (cublasLt == null) cublasLt = CublasLtPlans.open(cuda);
    }

    /** Releases what {@link #openCublasLt} opened (the plans, the workspace, the handle). */
    public void close() {
        CublasLtPlans lt = cublasLt;
        cublasLt = null;
        if (lt != null) lt.close();
    }

    /** How many GEMMs ran on cuBLASLt (the CUBLASLT tile not falling back), for tests. */
    long cublasLtRuns() {
        return cublasLtRuns;
    }

    /** cuBLASLt's plan for m × n × k, or null (the reason logged once) where it has no algorithm for the shape. */
    private CublasLt.Plan cublasLtPlan(int m, int n, int k) {
        if (cublasLt == null) throw new IllegalStateException("the CUBLASLT tile needs openCublasLt() first");
        return cublasLt.plan("int8 GEMM " + m + "x" + n + "x" + k + " on cuBLASLt", (lt, workspace, bytes) -> lt.planS8(m, n, k, workspace, bytes));
    }

    /**
     * c[m,n] = Σ_k a[m,k]·b[n,k] in int32. tile: {@link #AUTO_TILE}, {@link #WGMMA}, {@link #CUBLASLT} or
     * 0 .. {@link #tiles()}−1.
     */
    public void gemmS32(MemorySegment a, MemorySegment b, int m, int n, int k, MemorySegment c, int tile) {
        String what = "qd_i8_gemm_s32 " + m + "x" + n + "x" + k;
        requireSizes(what, m, n, k, a, b);
        requireDevice(c, what, "c");
        require(c.address() % 4 == 0, what, "c must be 4-byte aligned");
        if (tile == CUBLASLT) {
            // cuBLASLt takes k % 16 == 0 (what our kernels read directly) and 256-byte aligned operands; else our kernels.
            String why = s8Unsupported(k, 0, a.address(), b.address());
            if (why == null && (a.address() | b.address() | c.address()) % CublasLtPlans.ALIGNMENT != 0)
                why = "an operand or the output is not " + CublasLtPlans.ALIGNMENT + "-byte aligned";
            CublasLt.Plan plan = why == null ? cublasLtPlan(m, n, k) : null;
            if (plan != null) {
                try {
                    plan.run(a, b, c, stream);
                } catch (RuntimeException e) {
                    throw e;
                } catch (Throwable t) {
                    throw new IllegalStateException(what + " (cuBLASLt): " + t, t);
                }
                cublasLtRuns++;
                return;
            }
            if (why != null) logOnce("int8 GEMM " + what + " on cuBLASLt: " + why + "; our kernel runs instead");
        }
        int ours = tile == CUBLASLT ? AUTO_TILE : tile;
        if (wgmmaRuns(ours, n, c)) gemm(what + " (wgmma)", a, b, m, n, k, 0, (pa, pb, kk) -> (int) cuda.i8GemmWgmmaS32.invokeExact(pa, pb, m, n, kk,
                c, stream));
        else gemm(what, a, b, m, n, k, 0, (pa, pb, kk) -> (int) cuda.i8GemmS32.invokeExact(pa, pb, m, n, kk, c, ours, stream));
    }

    /**
     * The FP32 epilogue as a pass of its own over int32 sums acc[m,n] (from {@link #CUBLASLT}): y = act(acc · x scale ·
     * w scale + bias) + residual, the fused kernels' arithmetic in their order; y may be the residual itself.
     */
    public void dequantizeF32(MemorySegment acc, int m, int n, Epilogue e, MemorySegment y) {
        String what = "qd_i8_dequantize_f32 " + m + "x" + n;
        require(m > 0 && n > 0, what, "sizes must be positive");
        requireDevice(acc, what, "acc");
        require(acc.address() % 4 == 0, what, "acc must be 4-byte aligned");
        if (!isNull(y)) {
            long a0 = acc.address(), a1 = a0 + 4L * m * n, y0 = y.address(), y1 = y0 + 4L * m * n;
            require(a0 == y0 || a1 <= y0 || y1 <= a0, what, "y overlaps acc (it may only be acc itself)");
        }
        requireDevice(e.xScale(), what, "x scale");
        checkEpilogue(what, m, n, e, Output.F32, 1f, y);
        int xr = e.xPerRow() ? 1 : 0, wc = e.wPerCol() ? 1 : 0, act = e.gelu() ? 1 : 0;
        launch(what, () -> (int) cuda.i8DequantizeF32.invokeExact(acc, m, n, e.xScale(), xr, e.wScale(), wc, e.bias(), e.residual(), act,
                y, stream));
    }

    /** y (FP32) = act(acc · x scale · w scale + bias) + residual (see {@link Epilogue}); y may be the residual itself. */
    public void gemmF32(MemorySegment a, MemorySegment b, int m, int n, int k, Epilogue e, MemorySegment y, int tile) {
        gemmFloat(a, b, m, n, k, e, Output.F32, 1f, y, tile);
    }

    /** The FP16 output of {@link #gemmF32}'s value (IEEE binary16, round to nearest even, ±inf past 65504). */
    public void gemmF16(MemorySegment a, MemorySegment b, int m, int n, int k, Epilogue e, MemorySegment y, int tile) {
        gemmFloat(a, b, m, n, k, e, Output.F16, 1f, y, tile);
    }

    /**
     * {@link #gemmF32}'s value re-quantized to s8 for the next layer with a static per-tensor scale:
     * q = clamp(rint(y / outScale), −127, 127), y / outScale the correctly rounded FP32 quotient (as the
     * quantize kernels). outScale in [{@link #MIN_OUT_SCALE}, {@link #MAX_OUT_SCALE}].
     */
    public void gemmS8(MemorySegment a, MemorySegment b, int m, int n, int k, Epilogue e, float outScale, MemorySegment q, int tile) {
        gemmFloat(a, b, m, n, k, e, Output.S8, outScale, q, tile);
    }

    /** {@link #gemmF32}, {@link #gemmF16} or {@link #gemmS8} by `out`. */
    public void gemmFloat(MemorySegment a, MemorySegment b, int m, int n, int k, Epilogue e, Output out, float outScale,
                          MemorySegment y, int tile) {
        String what = "qd_i8_gemm_" + out.name().toLowerCase() + " " + m + "x" + n + "x" + k;
        requireSizes(what, m, n, k, a, b);
        requireDevice(e.xScale(), what, "x scale");
        checkEpilogue(what, m, n, e, out, outScale, y);
        int xr = e.xPerRow() ? 1 : 0, wc = e.wPerCol() ? 1 : 0, act = e.gelu() ? 1 : 0;
        if (out != Output.F32 && tile == WGMMA) throw new IllegalArgumentException(what + ": the wgmma kernel writes FP32 or int32 only");
        if (tile == CUBLASLT) throw new IllegalArgumentException(what + ": cuBLASLt computes int32 sums only (gemmS32, then dequantizeF32)");
        if (out == Output.F32 && wgmmaRuns(tile, n, y, e.residual())) {
            gemm(what + " (wgmma)", a, b, m, n, k, 0, (pa, pb, kk) -> (int) cuda.i8GemmWgmmaF32.invokeExact(pa, pb, m, n, kk, e.xScale(), xr,
                    e.wScale(), wc, e.bias(), e.residual(), act, y, stream));
            return;
        }
        gemm(what, a, b, m, n, k, 0, switch (out) {
            case F32 -> (pa, pb, kk) -> (int) cuda.i8GemmF32.invokeExact(pa, pb, m, n, kk, e.xScale(), xr, e.wScale(), wc, e.bias(),
                    e.residual(), act, y, tile, stream);
            case F16 -> (pa, pb, kk) -> (int) cuda.i8GemmF16.invokeExact(pa, pb, m, n, kk, e.xScale(), xr, e.wScale(), wc, e.bias(),
                    e.residual(), act, y, tile, stream);
            case S8 -> (pa, pb, kk) -> (int) cuda.i8GemmS8.invokeExact(pa, pb, m, n, kk, e.xScale(), xr, e.wScale(), wc, e.bias(),
                    e.residual(), act, outScale, y, tile, stream);
        });
    }

    /**
     * Per-embedding-group activation scales: the k channels form `groups` contiguous groups of k/groups
     * channels, a's group g quantized with groupScales[g];
     * y = act(wScale[n or 0] · Σ_g groupScales[g] · acc_g + bias) + residual, each group's int32 sum folded
     * into an FP32 sum at the group's end. The epilogue's xScale / xPerRow are ignored. A group size that is
     * not a multiple of 16 takes the repacking fallback (each group padded on its own).
     */
    public void gemmPegF32(MemorySegment a, MemorySegment b, int m, int n, int k, int groups, MemorySegment groupScales,
                           Epilogue e, MemorySegment y, int tile) {
        gemmPeg(a, b, m, n, k, groups, groupScales, e, Output.F32, 1f, y, tile);
    }

    /** {@link #gemmPegF32} with FP16 output. */
    public void gemmPegF16(MemorySegment a, MemorySegment b, int m, int n, int k, int groups, MemorySegment groupScales,
                           Epilogue e, MemorySegment y, int tile) {
        gemmPeg(a, b, m, n, k, groups, groupScales, e, Output.F16, 1f, y, tile);
    }

    /** {@link #gemmPegF32} with the output re-quantized to s8 (see {@link #gemmS8}). */
    public void gemmPegS8(MemorySegment a, MemorySegment b, int m, int n, int k, int groups, MemorySegment groupScales,
                          Epilogue e, float outScale, MemorySegment q, int tile) {
        gemmPeg(a, b, m, n, k, groups, groupScales, e, Output.S8, outScale, q, tile);
    }

    /** The PEG GEMM with any output. */
    public void gemmPeg(MemorySegment a, MemorySegment b, int m, int n, int k, int groups, MemorySegment groupScales,
                        Epilogue e, Output out, float outScale, MemorySegment y, int tile) {
        String what = "qd_i8_gemm_peg_" + out.name().toLowerCase() + " " + m + "x" + n + "x" + k + " in " + groups + " groups";
        requireSizes(what, m, n, k, a, b);
        require(groups > 0 && k % groups == 0, what, "K does not split into " + groups + " equal groups");
        requireDevice(groupScales, what, "group scales");
        require(tile != CUBLASLT, what, "cuBLASLt has no per-group activation scales");
        checkEpilogue(what, m, n, e, out, outScale, y);
        int wc = e.wPerCol() ? 1 : 0, act = e.gelu() ? 1 : 0;
        gemm(what, a, b, m, n, k, groups, switch (out) {
            case F32 -> (pa, pb, kk) -> (int) cuda.i8GemmPegF32.invokeExact(pa, pb, m, n, kk, groups, groupScales, e.wScale(), wc,
                    e.bias(), e.residual(), act, y, tile, stream);
            case F16 -> (pa, pb, kk) -> (int) cuda.i8GemmPegF16.invokeExact(pa, pb, m, n, kk, groups, groupScales, e.wScale(), wc,
                    e.bias(), e.residual(), act, y, tile, stream);
            case S8 -> (pa, pb, kk) -> (int) cuda.i8GemmPegS8.invokeExact(pa, pb, m, n, kk, groups, groupScales, e.wScale(), wc,
                    e.bias(), e.residual(), act, outScale, y, tile, stream);
        });
    }

    private static void checkEpilogue(String what, int m, int n, Epilogue e, Output out, float outScale, MemorySegment y) {
        requireDevice(e.wScale(), what, "w scale");
        requireDevice(y, what, "y");
        require(y.address() % out.bytes == 0, what, "y must be " + out.bytes + "-byte aligned");
        if (!isNull(e.residual())) {
            require(e.residual().address() % 4 == 0, what, "the residual must be 4-byte aligned");
            long r0 = e.residual().address(), r1 = r0 + 4L * m * n, y0 = y.address(), y1 = y0 + (long) out.bytes * m * n;
            boolean inPlace = out == Output.F32 && r0 == y0;
            require(inPlace || r1 <= y0 || y1 <= r0, what, "y overlaps the residual (only an FP32 y may be the residual itself)");
        }
        if (out == Output.S8)
            require(outScale >= MIN_OUT_SCALE && outScale <= MAX_OUT_SCALE, what,
                    "output scale " + outScale + " outside [2^-64, 2^64]");
    }

    // ---- tile shapes ----

    /** The number of tile shapes compiled in. */
    public int tiles() {
        int t = 0;
        while (tileInfo(t) != null) t++;
        return t;
    }

    /** Tile `tile` as {rows, columns, k bytes, warps, stages, peg (1 if the PEG GEMMs have it)}, or null past the last. */
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

    /** The tile the launchers pick for an m × n × k problem on the current device (groups 0: plain GEMM, else PEG). */
    public int pickTile(int m, int n, int k, int groups) {
        try {
            return cuda.i8GemmPickTile(m, n, k, groups);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
