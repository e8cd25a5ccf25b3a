package dev.qdrift.backend.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.Backend;
import dev.qdrift.backend.GradientOps;
import dev.qdrift.backend.QuantGrid;
import dev.qdrift.model.BertWeights;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.util.List;

/**
 * The encoder's ops on an NVIDIA GPU: our kernels (native/qdrift.h, cuda/) for embeddings, residual +
 * LayerNorm, bias + activation, attention's head pointers, masked softmax and pooling; cuBLAS for the linear
 * layers and the two batched products of attention, in true FP32 unless {@link #useTf32} is on (then attention runs as
 * one fused kernel where the shape allows, {@link #fusesAttention}). All work is queued on one stream;
 * downloads synchronize it. Device memory comes from a {@link DevicePool}. One thread per backend.
 */
public final class CudaBackend implements Backend {
    /** Whether a GPU backend can be opened here, and if not, why (one line). */
    public record Availability(boolean available, String reason) {}

    private static Availability availability;

    private final QdriftCuda cuda;
    private final Cublas cublas;
    private final MemorySegment stream;
    private final DevicePool pool;
    private final HostStaging staging;
    private final Int8Ops int8;
    /** The FP32 linear layers' products with the bias in cuBLASLt's epilogue; null where cuBLASLt could not open. */
    private final CublasLtPlans fp32Lt;
    private long fp32LtRuns, fusedAttentionRuns;
    private final CudaGradientOps gradientOps;
    private final String deviceName;
    private boolean tf32, halfProducts, cublasLtInt8;
    private boolean closed, recording;
    /** The graphs {@link #record} made that are still alive: destroyed when the backend closes. */
    private final java.util.Set<CudaReplay> replays = new java.util.HashSet<>();

    record DeviceFloats(MemorySegment ptr, int size) implements FloatBuf {}

    record DeviceInts(MemorySegment ptr, int size) implements IntBuf {}

    record DeviceLinear(DeviceFloats weight, DeviceFloats bias, int out, int in) implements LinearWeights {}

    /**
     * s8 weights [out, ldk], FP32 per-channel weight scales and bias; the static input scale on the host
     * (the quantize launcher takes it by value) and on the device (the GEMM epilogue reads it), or NaN
     * and null for per-token input scales. ldk = in rounded up to a multiple of 16 (the s8 GEMM's k
     * granule): columns in .. ldk-1 of the weights and of the quantized input are zero.
     */
    record DeviceInt8Linear(MemorySegment weight, DeviceFloats weightScale, DeviceFloats bias, float inputScale,
                            DeviceFloats inputScaleOnDevice, int out, int in, int ldk) implements LinearWeights {}

    /** Loads the libraries and looks for a device once; never throws. */
    public static synchronized Availability availability() {
        if (availability == null) {
            try {
                QdriftCuda cuda = new QdriftCuda(NativeLibraries.qdrift());
                int n = cuda.deviceCount();
                if (n == 0) throw new IllegalStateException("no CUDA device found");
                NativeLibraries.system("libcublas.so.13");
                availability = new Availability(true, "CUDA device 0: " + cuda.deviceDescription(0));
            } catch (CudaException e) {
                availability = new Availability(false, "no usable GPU: " + e.getMessage());
            } catch (Throwable t) {
                availability = new Availability(false, "CUDA backend unavailable: " + t.getMessage());
            }
        }
        return availability;
    }

    public static boolean available() {
        return availability().available();
    }

    public static CudaBackend open(int device) {
        Availability a = availability();
        if (!a.available()) throw new QdriftException(a.reason());
        return new CudaBackend(device);
    }

    private CudaBackend(int device) {
        try {
            SymbolLookup lib = NativeLibraries.qdrift();
            cuda = new QdriftCuda(lib);
            cuda.setDevice(device);
            deviceName = cuda.deviceDescription(device);
            stream = cuda.streamCreate();
            cublas = new Cublas(NativeLibraries.system("libcublas.so.13"), cuda, stream);
            pool = new DevicePool(cuda);
            staging = new HostStaging(cuda);
            int8 = new Int8Ops(cuda, stream);
            fp32Lt = openFp32Lt(cuda);
            gradientOps = new CudaGradientOps(this, lib, cuda, cublas, stream);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new QdriftException("cannot open CUDA device " + device + ": " + t.getMessage(), t);
        }
    }

    private void launch(String what, QdriftCuda.NativeCall call) {
        cuda.launch(what, call);
    }

    @FunctionalInterface
    interface Step<T> {
        T run() throws Throwable;
    }

    /** Runs a native step: its failures are CudaExceptions (unchecked) already; anything else it throws is wrapped. */
    static <T> T call(Step<T> step) {
        try {
            return step.run();
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static MemorySegment p(FloatBuf b) {
        return ((DeviceFloats) b).ptr();
    }

    private static MemorySegment p(IntBuf b) {
        return ((DeviceInts) b).ptr();
    }

    @Override
    public String name() {
        return "cuda " + deviceName + (tf32 ? " (TF32 products)" : "") + (halfProducts ? " (FP16 backward products)" : "")
                + (cublasLtInt8 ? " (s8 GEMMs on cuBLASLt)" : "");
    }

    /**
     * Every later cuBLAS FP32 product (the linear layers, attention's batched products, and the backward's)
     * on TF32 tensor cores: inputs rounded to a 10-bit mantissa, FP32 accumulation, several times the FP32
     * rate; attention and its backward as fused TF32 kernels where {@link #fusesAttention} allows (the backward in FP16
     * under {@link #useHalfProducts}). Off (true FP32) by default; the s8 kernels are unaffected.
     */
    public void useTf32(boolean on) {
        cublas.useTf32(on);
        tf32 = on;
    }

    public boolean tf32() {
        return tf32;
    }

    /**
     * The backward's input-gradient products dY W with FP16 operands (FP32 accumulation and output): dY rounded to FP16
     * as it goes in (GELU's backward writes it so directly), W from an FP16 copy made by
     * {@link GradientOps#prepareInputGrad} while this is on. FP16 keeps TF32's 10-bit mantissa, so the products round as
     * TF32's do, at about twice their rate on Hopper; its range (to 65504, full precision from 6.1e-5) is the caller's to
     * respect: {@link GradientOps#halfProducts} tells it to scale the backward's seed (see BackendGradients). Attention's
     * fused backward then multiplies in FP16 too (heads, probabilities and dS rounded to FP16, FP32 sums) and writes the
     * next product's FP16 operand. Off by default; the forward is unaffected.
     */
    public void useHalfProducts(boolean on) {
        halfProducts = on;
    }

    public boolean halfProducts() {
        return halfProducts;
    }

    /** Whether the s8 linear layers' GEMMs run on cuBLASLt ({@link #useCublasLtInt8}). */
    public boolean cublasLtInt8() {
        return cublasLtInt8;
    }

    /** How many FP32 linear layers ran on cuBLASLt with the bias fused (tests: that they did not fall back). */
    long fp32LtRuns() {
        return fp32LtRuns;
    }

    /** How many attention forwards and backwards ran fused ({@link #fusesAttention}; tests: that they did not fall back). */
    long fusedAttentionRuns() {
        return fusedAttentionRuns;
    }

    /** How many s8 GEMMs ran on cuBLASLt (tests: that --int8-gemm cublaslt did not fall back). */
    long cublasLtRuns() {
        return int8.cublasLtRuns();
    }

    /**
     * The s8 linear layers' GEMMs on cuBLASLt (int32 sums) followed by a dequantize pass (scales, bias, GELU), instead of
     * our kernels with the epilogue fused: the comparison the INT8 benchmark makes per GEMM, for the whole encoder. The
     * int32 sums are exact either way and the pass does the fused epilogue's arithmetic (epilogue_value, each operation
     * rounded on its own), so the outputs are bit-identical. Off by default; only the s8 linear layers (--int8) change.
     */
    public void useCublasLtInt8(boolean on) {
        if (closed) throw new IllegalStateException("the backend is closed");
        // cuBLASLt's workspace is allocated here, which a recording forbids; a graph recorded on the other path refuses to
        // replay (name() changes).
        if (recording) throw new IllegalStateException("--int8-gemm cannot change while a graph is recorded");
        if (on) int8.openCublasLt();
        cublasLtInt8 = on;
    }

    @Override
    public <T> T inFp32(java.util.function.Supplier<T> work) {
        boolean was = tf32, wasHalf = halfProducts;
        useTf32(false);
        halfProducts = false;
        try {
            return work.get();
        } finally {
            useTf32(was);
            halfProducts = wasHalf;
        }
    }

    public String deviceName() {
        return deviceName;
    }

    @Override
    public Scope openScope() {
        int mark = pool.mark();
        return () -> pool.releaseTo(mark);
    }

    @Override
    public FloatBuf allocate(int n) {
        return new DeviceFloats(call(() -> pool.allocate(4L * n)), n);
    }

    @Override
    public FloatBuf upload(float[] data) {
        FloatBuf d = allocate(data.length);
        write(d, data);
        return d;
    }

    @Override
    public IntBuf uploadInts(int[] data) {
        IntBuf d = new DeviceInts(call(() -> pool.allocate(4L * data.length)), data.length);
        write(d, data);
        return d;
    }

    @Override
    public void write(FloatBuf dst, float[] data) {
        if (data.length != dst.size())
            throw new IllegalArgumentException("write: buffer holds " + dst.size() + " floats, source " + data.length);
        toDevice(p(dst), 4L * data.length, (host, at, bytes) -> MemorySegment.copy(data, (int) (at / 4), host, JAVA_FLOAT, 0, (int) (bytes / 4)));
    }

    /** The doubles go up as they are (bulk copies, no host loop) and are rounded on the device. */
    @Override
    public void write(FloatBuf dst, double[] data) {
        if (data.length != dst.size())
            throw new IllegalArgumentException("write: buffer holds " + dst.size() + " floats, source " + data.length);
        requireNotRecording("a copy from the host");
        try (Scope scope = openScope()) {
            FloatBuf wide = allocate(2 * data.length); // the doubles, two float slots each
            toDevice(p(wide), 8L * data.length,
                    (host, at, bytes) -> MemorySegment.copy(data, (int) (at / 8), host, JAVA_DOUBLE, 0, (int) (bytes / 8)));
            long n = data.length;
            launch("qd_round_to_float " + n, () -> (int) cuda.roundToFloat.invokeExact(p(wide), n, p(dst), stream));
        }
    }

    @Override
    public void write(IntBuf dst, int[] data) {
        if (data.length != dst.size())
            throw new IllegalArgumentException("write: buffer holds " + dst.size() + " ints, source " + data.length);
        toDevice(p(dst), 4L * data.length, (host, at, bytes) -> MemorySegment.copy(data, (int) (at / 4), host, JAVA_INT, 0, (int) (bytes / 4)));
    }

    @Override
    public void download(FloatBuf src, float[] dst) {
        if (dst.length != src.size())
            throw new IllegalArgumentException("download: buffer holds " + src.size() + " floats, destination " + dst.length);
        toHost(p(src), 4L * dst.length, (host, at, bytes) -> MemorySegment.copy(host, JAVA_FLOAT, 0, dst, (int) (at / 4), (int) (bytes / 4)));
    }

    /** Widened on the device, then bulk copies into dst (no host loop). */
    @Override
    public void download(FloatBuf src, double[] dst) {
        if (dst.length != src.size())
            throw new IllegalArgumentException("download: buffer holds " + src.size() + " floats, destination " + dst.length);
        requireNotRecording("a copy to the host");
        try (Scope scope = openScope()) {
            FloatBuf wide = allocate(2 * dst.length);
            long n = dst.length;
            launch("qd_widen_to_double " + n, () -> (int) cuda.widenToDouble.invokeExact(p(src), n, p(wide), stream));
            toHost(p(wide), 8L * dst.length,
                    (host, at, bytes) -> MemorySegment.copy(host, JAVA_DOUBLE, 0, dst, (int) (at / 8), (int) (bytes / 8)));
        }
    }

    /** Bytes of page-locked staging memory held (tests). */
    long stagingBytes() {
        return staging.bytes();
    }

    /** bytes to device memory at dst: each chunk filled from the host array, then copied. */
    private void toDevice(MemorySegment dst, long bytes, Transfer fill) {
        requireNotRecording("a copy from the host");
        staged(bytes, (host, at, n) -> {
            fill.run(host, at, n);
            cuda.copyToDevice(offset(dst, at), host, n, stream);
        });
    }

    /** bytes from device memory at src: each chunk copied, then emptied into the host array. */
    private void toHost(MemorySegment src, long bytes, Transfer empty) {
        requireNotRecording("a copy to the host");
        staged(bytes, (host, at, n) -> {
            cuda.copyToHost(host, offset(src, at), n, stream);
            empty.run(host, at, n);
        });
    }

    /** Bytes [at, at + bytes) of a transfer, through `host` (a segment of at least `bytes`). */
    @FunctionalInterface
    private interface Transfer {
        void run(MemorySegment host, long at, long bytes) throws Throwable;
    }

    /**
     * A transfer of `bytes` (a multiple of 4) through the page-locked staging buffer (HostStaging), in chunks of its size
     * (a multiple of 8: whole doubles); where there is none, through one pageable segment of a confined arena.
     */
    private void staged(long bytes, Transfer transfer) {
        call(() -> {
            MemorySegment host = staging.buffer(bytes);
            if (host.byteSize() == 0) {
                try (Arena a = Arena.ofConfined()) {
                    transfer.run(a.allocate(Math.max(bytes, 8), 16), 0, bytes);
                }
                return null;
            }
            long step = host.byteSize() / 8 * 8; // whole doubles: HostStaging.MIN and CAP are multiples of 8
            for (long at = 0; at < bytes; at += step) transfer.run(host, at, Math.min(step, bytes - at));
            return null;
        });
    }

    private static MemorySegment offset(MemorySegment devicePointer, long bytes) {
        return MemorySegment.ofAddress(devicePointer.address() + bytes);
    }

    @Override
    public FloatBuf allocateKept(int n) {
        return new DeviceFloats(call(() -> pool.allocateKept(4L * n)), n);
    }

    @Override
    public IntBuf allocateKeptInts(int n) {
        return new DeviceInts(call(() -> pool.allocateKept(4L * n)), n);
    }

    @Override
    public void release(FloatBuf kept) {
        pool.releaseKept(p(kept));
    }

    @Override
    public void release(IntBuf kept) {
        pool.releaseKept(p(kept));
    }

    /** A copy to or from the host synchronizes the stream, which a recording cannot hold: refused with a clear error. */
    private void requireNotRecording(String what) {
        if (recording) throw new IllegalStateException(what + " cannot be recorded into a graph: do it before or after the replay");
    }

    /** Fills a buffer with NaN bytes (0xFF), so a kernel that skips an element is caught by tests. */
    public void poison(FloatBuf b) {
        call(() -> {
            cuda.memset(p(b), 0xFF, 4L * b.size(), stream);
            return null;
        });
    }

    @Override
    public LinearWeights prepareLinear(BertWeights.Linear l) {
        return new DeviceLinear((DeviceFloats) upload(l.weight()), (DeviceFloats) upload(l.bias()), l.out(), l.in());
    }

    /**
     * Weights [out, in] quantized symmetrically per output channel (scale = max|w_row| / 127, into `scales`)
     * to s8 rows of ldk >= in bytes, columns in .. ldk-1 zero.
     */
    static byte[] quantizeWeightsS8(float[] weight, int out, int in, int ldk, float[] scales) {
        QuantGrid grid = new QuantGrid(8, true);
        byte[] q = new byte[out * ldk];
        for (int r = 0; r < out; r++) {
            float m = 0;
            for (int k = 0; k < in; k++) m = Math.max(m, Math.abs(weight[r * in + k]));
            scales[r] = grid.params(-m, m).scale();
            for (int k = 0; k < in; k++)
                q[r * ldk + k] = (byte) QuantGrid.quantize(weight[r * in + k], scales[r], 0f, grid.qmin(), grid.qmax());
        }
        return q;
    }

    @Override
    public LinearWeights prepareInt8Linear(BertWeights.Linear l, float inputScale) {
        // The s8 GEMM reads k in 16-byte chunks: an odd `in` runs with weights and inputs zero-padded to ldk.
        int ldk = Int8Ops.paddedK(l.in());
        if (ldk != l.in())
            Int8Ops.logOnce("int8 linear " + l.in() + " -> " + l.out() + ": K = " + l.in() + " is not a multiple of 16; weights and "
                    + "quantized inputs are zero-padded to K = " + ldk + " (same result)");
        float[] scales = new float[l.out()];
        byte[] q = quantizeWeightsS8(l.weight(), l.out(), l.in(), ldk, scales);
        MemorySegment w = call(() -> pool.allocate(q.length));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocateFrom(java.lang.foreign.ValueLayout.JAVA_BYTE, q);
            call(() -> {
                cuda.copyToDevice(w, host, q.length, stream);
                return null;
            });
        }
        DeviceFloats in = Float.isNaN(inputScale) ? null : (DeviceFloats) upload(new float[] {inputScale});
        return new DeviceInt8Linear(w, (DeviceFloats) upload(scales), (DeviceFloats) upload(l.bias()), inputScale, in, l.out(), l.in(),
                ldk);
    }

    /** Quantize the input to s8 (static or per-token scale), s8 GEMM, dequantize + bias (+ GELU) in the epilogue. */
    private void linearInt8(FloatBuf x, int rows, DeviceInt8Linear l, Epilogue epilogue, FloatBuf y) {
        if (!Float.isNaN(l.inputScale())) {
            fromStaticS8Operand(l, rows, epilogue, y, xq -> int8.quantizePerTensor(p(x), rows, l.in(), l.inputScale(), xq, l.ldk()));
            return;
        }
        requireS8Epilogue(epilogue);
        try (Scope s = openScope()) {
            MemorySegment xq = allocateBytes((long) rows * l.ldk()), xScale = p(allocate(rows));
            int8.quantizePerToken(p(x), rows, l.in(), xq, l.ldk(), xScale);
            linearFromS8(xq, xScale, true, rows, l, epilogue, y);
        }
    }

    /**
     * y = epilogue(l(x)) for an s8 layer with a static input scale, its s8 operand [rows, ldk] written by writeOperand
     * into scratch: the per-tensor quantization, or a pass that fuses it (a quantized site, a LayerNorm).
     */
    private void fromStaticS8Operand(DeviceInt8Linear l, int rows, Epilogue epilogue, FloatBuf y,
                                     java.util.function.Consumer<MemorySegment> writeOperand) {
        requireS8Epilogue(epilogue);
        try (Scope s = openScope()) {
            MemorySegment xq = allocateBytes((long) rows * l.ldk());
            writeOperand.accept(xq);
            linearFromS8(xq, l.inputScaleOnDevice().ptr(), false, rows, l, epilogue, y);
        }
    }

    private static void requireS8Epilogue(Epilogue epilogue) {
        if (epilogue == Epilogue.TANH) throw new QdriftException("integer linear layers have no tanh epilogue (the pooler stays FP32)");
    }

    /**
     * w as an s8 layer of `in` inputs with a static input scale, whose operand rows take 4-byte stores (ldk % 4 == 0):
     * the layers a fused pass can write the operand of; else null.
     */
    private static DeviceInt8Linear staticS8Layer(LinearWeights w, int in) {
        return w instanceof DeviceInt8Linear l && !Float.isNaN(l.inputScale()) && l.in() == in && l.ldk() % 4 == 0 ? l : null;
    }

    /**
     * An s8 layer on its input already quantized: xq [rows, ldk] bytes, with xScale its per-tensor scale on the device
     * (or, perRow, one per row); the s8 GEMM, dequantize + bias (+ GELU) in the epilogue. epilogue: NONE or GELU.
     */
    private void linearFromS8(MemorySegment xq, MemorySegment xScale, boolean perRow, int rows, DeviceInt8Linear l, Epilogue epilogue,
                      FloatBuf y) {
        Int8Ops.Epilogue e = new Int8Ops.Epilogue(xScale, perRow, l.weightScale().ptr(), true, l.bias().ptr(), MemorySegment.NULL,
                epilogue == Epilogue.GELU);
        if (cublasLtInt8) {
            try (Scope s = openScope()) {
                MemorySegment acc = allocateBytes(4L * rows * l.out());
                int8.gemmS32(xq, l.weight(), rows, l.out(), l.ldk(), acc, Int8Ops.CUBLASLT);
                int8.dequantizeF32(acc, rows, l.out(), e, p(y));
            }
        } else {
            int8.gemmF32(xq, l.weight(), rows, l.out(), l.ldk(), e, p(y), Int8Ops.AUTO_TILE);
        }
    }

    /**
     * Fused where next is an s8 layer with a static input scale: one pass writes its s8 operand (qd_site_quantize: the
     * bytes of GELU, the site's fake-quant and the s8 quantization as separate passes give them), then its s8 GEMM. Saves
     * writing and reading back the site's FP32 values (and, for a quantized site, one more pass) and one or two launches.
     */
    @Override
    public boolean siteIntoLinear(FloatBuf x, int rows, int cols, boolean gelu, ColumnGrid grid, LinearWeights next, FloatBuf y) {
        DeviceInt8Linear l = staticS8Layer(next, cols);
        if (l == null || cols % 4 != 0 || !aligned16(x)) // the kernel's float4 reads
            return false;
        if (x.size() < (long) rows * cols || y.size() < (long) rows * l.out())
            throw new IllegalArgumentException("siteIntoLinear: buffers too small for " + rows + " rows of " + cols + " -> " + l.out());
        DeviceGrid q = DeviceGrid.of(grid);
        int act = gelu ? 1 : 0, onGrid = isS8Grid(grid, l.inputScale()) ? 1 : 0;
        fromStaticS8Operand(l, rows, Epilogue.NONE, y, xq -> launch("qd_site_quantize " + rows + "x" + cols,
                () -> (int) cuda.siteQuantize.invokeExact(p(x), rows, cols, act, q.scale(), q.zeroPoint(), q.qmin(), q.qmax(), onGrid,
                        l.inputScale(), xq, l.ldk(), stream)));
        return true;
    }

    /** Device memory of `bytes` bytes in the current scope (s8 operands, s32 accumulators). */
    private MemorySegment allocateBytes(long bytes) {
        return call(() -> pool.allocate(bytes));
    }

    @Override
    public void embed(IntBuf ids, IntBuf typeIds, FloatBuf word, FloatBuf position, FloatBuf type,
                      int batch, int seq, int hidden, FloatBuf out) {
        launch("qd_embed " + batch + "x" + seq + "x" + hidden, () -> (int) cuda.embed.invokeExact(p(ids), p(typeIds), p(word),
                p(position), p(type), batch, seq, hidden, p(out), stream));
    }

    @Override
    public void linear(FloatBuf x, int rows, LinearWeights w, Epilogue epilogue, FloatBuf y) {
        if (w instanceof DeviceInt8Linear q) {
            linearInt8(x, rows, q, epilogue, y);
            return;
        }
        DeviceLinear l = (DeviceLinear) w;
        CublasLt.Plan withBias = epilogue == Epilogue.NONE ? fp32Plan(x, rows, l, y) : null;
        if (withBias != null) {
            call(() -> {
                withBias.run(p(x), l.weight().ptr(), l.bias().ptr(), p(y), stream);
                return null;
            });
            fp32LtRuns++;
            return;
        }
        call(() -> {
            cublas.gemmRowMajorNT(p(x), l.weight().ptr(), p(y), rows, l.out(), l.in(), false);
            return null;
        });
        int act = switch (epilogue) { case NONE -> 0; case GELU -> 1; case TANH -> 2; };
        launch("qd_bias_act " + rows + "x" + l.out(), () -> (int) cuda.biasAct.invokeExact(p(y), l.bias().ptr(), rows, l.out(), act, stream));
    }

    private static CublasLtPlans openFp32Lt(QdriftCuda cuda) {
        try {
            return CublasLtPlans.open(cuda);
        } catch (RuntimeException e) {
            Int8Ops.logOnce(e.getMessage() + "; FP32 linear layers add their bias in a pass of their own");
            return null;
        }
    }

    /**
     * cuBLASLt's plan for y = x wᵀ + bias in one product (FP32, or TF32 while {@link #useTf32} is on), or null where it
     * cannot run: cuBLASLt not open, operands not aligned as its plans assume, or no algorithm for the shape (logged
     * once). Then cuBLAS's GEMM and the bias pass run: the same products and the bias added to their FP32 result,
     * summed in the order each library's algorithm picks.
     */
    private CublasLt.Plan fp32Plan(FloatBuf x, int rows, DeviceLinear l, FloatBuf y) {
        if (fp32Lt == null) return null;
        long addresses = p(x).address() | l.weight().ptr().address() | l.bias().ptr().address() | p(y).address();
        if (addresses % CublasLtPlans.ALIGNMENT != 0) {
            Int8Ops.logOnce("FP32 linear " + l.in() + " -> " + l.out() + ": an operand is not " + CublasLtPlans.ALIGNMENT
                    + "-byte aligned; cuBLAS and a bias pass run");
            return null;
        }
        boolean t = tf32;
        int out = l.out(), in = l.in();
        MemorySegment bias = l.bias().ptr();
        return fp32Lt.plan((t ? "TF32" : "FP32") + " linear " + rows + "x" + in + " -> " + out + " on cuBLASLt",
                (lt, workspace, bytes) -> lt.planF32Bias(rows, out, in, t, bias, workspace, bytes));
    }

    @Override
    public void addLayerNorm(FloatBuf x, FloatBuf residual, FloatBuf gamma, FloatBuf beta, float eps,
                             int rows, int dim, FloatBuf out, FloatBuf sum) {
        addLayerNormQuantized(x, residual, null, null, gamma, beta, eps, rows, dim, out, sum);
    }

    /** One kernel: the sites fake-quantized in the pass that adds and normalizes. */
    @Override
    public void addLayerNormQuantized(FloatBuf x, FloatBuf residual, ColumnGrid sumGrid, ColumnGrid outGrid, FloatBuf gamma,
                                      FloatBuf beta, float eps, int rows, int dim, FloatBuf out, FloatBuf sum) {
        addLayerNorm(x, residual, sumGrid, outGrid, gamma, beta, eps, rows, dim, out, sum, MemorySegment.NULL, 1f, false, 0);
    }

    /** The same kernel writing next's s8 operand as well, where qd_add_layernorm can (its conditions for q), then next's s8 GEMM. */
    @Override
    public boolean addLayerNormIntoLinear(FloatBuf x, FloatBuf residual, ColumnGrid sumGrid, ColumnGrid outGrid, FloatBuf gamma,
                                          FloatBuf beta, float eps, int rows, int dim, FloatBuf out, FloatBuf sum, LinearWeights next,
                                          Epilogue epilogue, FloatBuf y) {
        // qd_add_layernorm's conditions for q: rows one warp each (the pool's buffers meet its alignment).
        DeviceInt8Linear l = staticS8Layer(next, dim);
        if (l == null || dim % 4 != 0 || dim > 1024) return false;
        if (y.size() < (long) rows * l.out())
            throw new IllegalArgumentException("addLayerNormIntoLinear: y too small for " + rows + " rows of " + l.out());
        boolean onGrid = isS8Grid(outGrid, l.inputScale());
        fromStaticS8Operand(l, rows, epilogue, y, xq -> addLayerNorm(x, residual, sumGrid, outGrid, gamma, beta, eps, rows, dim, out, sum,
                xq, l.inputScale(), onGrid, l.ldk()));
        return true;
    }

    private void addLayerNorm(FloatBuf x, FloatBuf residual, ColumnGrid sumGrid, ColumnGrid outGrid, FloatBuf gamma, FloatBuf beta,
                              float eps, int rows, int dim, FloatBuf out, FloatBuf sum, MemorySegment q, float qScale, boolean qOnGrid,
                              int ldq) {
        if (sumGrid != null && sum == null) throw new IllegalArgumentException("a quantized residual sum needs its buffer");
        MemorySegment r = residual == null ? MemorySegment.NULL : p(residual), s = sum == null ? MemorySegment.NULL : p(sum);
        DeviceGrid sq = DeviceGrid.of(sumGrid), oq = DeviceGrid.of(outGrid);
        launch("qd_add_layernorm " + rows + "x" + dim, () -> (int) cuda.addLayerNorm.invokeExact(p(x), r, p(gamma), p(beta), eps, rows,
                dim, p(out), s, sq.scale(), sq.zeroPoint(), sq.qmin(), sq.qmax(), oq.scale(), oq.zeroPoint(), oq.qmin(), oq.qmax(), q, qScale,
                qOnGrid ? 1 : 0, ldq, stream));
    }

    /**
     * Whether a grid is the s8 quantization at scale s itself — every column's scale s, zero point 0, its range within
     * [-127, 127] (s a normal float, its multiples up to 127 finite): the kernels then take the s8 value from the grid's
     * level with one division instead of two, the same bytes (cuda/fake_quant.cuh, quantize_on_grid).
     */
    static boolean isS8Grid(ColumnGrid grid, float s) {
        return grid != null && grid.uniformScale() == s && grid.qmin() >= -127 && grid.qmax() <= 127 && s >= Float.MIN_NORMAL
                && s <= Float.MAX_VALUE / 128;
    }

    /** Every buffer (null: none) starts on a 16-byte boundary: the float4 accesses of the row kernels. */
    private static boolean aligned16(FloatBuf... buffers) {
        for (FloatBuf b : buffers)
            if (b != null && p(b).address() % 16 != 0) return false;
        return true;
    }

    /** A {@link ColumnGrid} as the kernels take it: device pointers (NULL and a zero range for no grid). */
    record DeviceGrid(MemorySegment scale, MemorySegment zeroPoint, int qmin, int qmax) {
        private static final DeviceGrid NONE = new DeviceGrid(MemorySegment.NULL, MemorySegment.NULL, 0, 0);

        static DeviceGrid of(ColumnGrid g) {
            return g == null ? NONE : new DeviceGrid(p(g.scale()), p(g.zeroPoint()), g.qmin(), g.qmax());
        }
    }

    @Override
    public void attention(FloatBuf qkv, IntBuf mask, int batch, int seq, int heads, int headDim, FloatBuf out) {
        Backend.checkAttention(qkv, mask, batch, seq, heads, headDim, out);
        if (fusesAttention(seq, headDim, AttentionPass.FORWARD, qkv, out)) {
            float scale = attentionScale(headDim);
            launch("qd_fused_attention " + batch + "x" + seq + "x" + heads + "x" + headDim, () -> (int) cuda.fusedAttention.invokeExact(
                    p(qkv), p(mask), batch, seq, heads, headDim, scale, p(out), stream));
            return;
        }
        int width = heads * headDim;
        try (Scope scope = openScope()) {
            int bh = batch * heads;
            FloatBuf probs = allocate(bh * seq * seq);
            MemorySegment[] at = headPointers(batch, seq, heads, headDim, List.of(Heads.query(qkv, width), Heads.key(qkv, width),
                    Heads.value(qkv, width), Heads.of(out, width)), List.of(probs));
            MemorySegment Q = at[0], K = at[1], V = at[2], C = at[3], P = at[4];
            softmaxProbabilities(Q, K, 3 * width, P, probs, mask, batch, seq, heads, headDim);
            call(() -> {
                cublas.batchedContext(P, V, 3 * width, C, width, seq, headDim, 1f, bh);
                return null;
            });
        }
    }

    /**
     * Whether attention's forward (or backward) runs as one fused kernel that keeps the scores on chip
     * (cuda/fused_attention.cuh) instead of cuBLAS's batched products around a softmax pass: while {@link #useTf32} is on
     * (it multiplies on TF32 tensor cores, the precision cuBLAS's TF32 products have, or in FP16 for the backward under
     * FP16 products; true FP32 keeps cuBLAS), for at most 128 tokens, head dim 32 or 64, where this device's shared
     * memory holds that pass's kernel (the FP16 backward needs about half of the TF32 one's), on 16-byte aligned buffers
     * (the pool's always are; the kernels' vector loads need it). Counts the runs it allows: the caller launches each.
     */
    boolean fusesAttention(int seq, int headDim, AttentionPass pass, FloatBuf... buffers) {
        if (!tf32 || !aligned16(buffers)) return false;
        boolean fits = call(() -> (int) cuda.fusedAttentionFits.invokeExact(seq, headDim, pass.ordinal()) == 1);
        if (fits) fusedAttentionRuns++;
        return fits;
    }

    /** The fused attention kernels, in qd_fused_attention_fits' numbering. */
    enum AttentionPass { FORWARD, BACKWARD, BACKWARD_HALF }

    /** The scores' scale 1 / sqrt(headDim), in float as every GPU attention path applies it. */
    static float attentionScale(int headDim) {
        return (float) (1 / Math.sqrt(headDim));
    }

    /** A token-major operand's heads: buf's columns from column on, its rows stride floats apart. */
    record Heads(FloatBuf buf, int column, int stride) {
        /** A [rows, width] buffer's heads. */
        static Heads of(FloatBuf buf, int width) {
            return new Heads(buf, 0, width);
        }

        /** q, k and v inside a packed [rows, 3 width] q | k | v buffer. */
        static Heads query(FloatBuf qkv, int width) {
            return new Heads(qkv, 0, 3 * width);
        }

        static Heads key(FloatBuf qkv, int width) {
            return new Heads(qkv, width, 3 * width);
        }

        static Heads value(FloatBuf qkv, int width) {
            return new Heads(qkv, 2 * width, 3 * width);
        }
    }

    /**
     * Device arrays (in the current scope) of the per-(sequence, head) matrix pointers that cuBLAS's pointer-array batched
     * products take, one launch for all operands, in argument order: for each token-major operand its heads in place,
     * for each [batch*heads, seq, seq] score buffer its matrices. Reading heads in place spares attention the copies
     * into and out of a head-major layout (4 per layer forward, 8 backward).
     */
    MemorySegment[] headPointers(int batch, int seq, int heads, int headDim, List<Heads> tokenMajor, List<FloatBuf> scores) {
        int count = tokenMajor.size() + scores.size(), bh = batch * heads;
        FloatBuf table = allocate(2 * count * bh); // 8-byte pointers in a float buffer: the pool's unit
        try (Arena host = Arena.ofConfined()) {
            MemorySegment bases = host.allocate(ADDRESS, count), strides = host.allocate(JAVA_INT, count);
            for (int j = 0; j < count; j++) {
                boolean token = j < tokenMajor.size();
                MemorySegment base = token ? MemorySegment.ofAddress(p(tokenMajor.get(j).buf()).address() + 4L * tokenMajor.get(j).column())
                        : p(scores.get(j - tokenMajor.size()));
                bases.setAtIndex(ADDRESS, j, base);
                strides.setAtIndex(JAVA_INT, j, token ? tokenMajor.get(j).stride() : 0);
            }
            launch("qd_head_pointers " + batch + "x" + seq + "x" + heads + "x" + headDim, () -> (int) cuda.headPointers.invokeExact(bases,
                    strides, count, batch, seq, heads, headDim, p(table), stream));
        }
        MemorySegment[] arrays = new MemorySegment[count];
        for (int j = 0; j < count; j++) arrays[j] = MemorySegment.ofAddress(p(table).address() + 8L * j * bh);
        return arrays;
    }

    /**
     * probs [batch, heads, seq, seq] = softmax(q k^T / sqrt(headDim) + mask) per head, from the pointer arrays of
     * {@link #headPointers}: q's and k's heads in place (their rows ld floats apart), probs's matrices.
     */
    void softmaxProbabilities(MemorySegment q, MemorySegment k, int ld, MemorySegment probMatrices, FloatBuf probs, IntBuf mask,
                              int batch, int seq, int heads, int headDim) {
        call(() -> {
            cublas.batchedScores(q, ld, k, ld, probMatrices, seq, headDim, attentionScale(headDim), batch * heads);
            return null;
        });
        launch("qd_masked_softmax " + batch + "x" + heads + "x" + seq, () -> (int) cuda.maskedSoftmax.invokeExact(p(probs), p(mask), batch,
                heads, seq, stream));
    }

    @Override
    public void pool(FloatBuf hidden, IntBuf mask, int batch, int seq, int dim, Pooling mode, FloatBuf out) {
        int m = mode == Pooling.CLS ? 0 : 1;
        launch("qd_pool " + batch + "x" + seq + "x" + dim, () -> (int) cuda.pool.invokeExact(p(hidden), p(mask), batch, seq, dim, m,
                p(out), stream));
    }

    @Override
    public void fakeQuantColumns(FloatBuf x, int rows, int cols, FloatBuf scale, FloatBuf zeroPoint, int qmin, int qmax) {
        launch("qd_fake_quant_columns " + rows + "x" + cols, () -> (int) cuda.fakeQuantColumns.invokeExact(p(x), rows, cols, p(scale),
                p(zeroPoint), qmin, qmax, stream));
    }

    @Override
    public void fakeQuantRows(FloatBuf x, int rows, int cols, int bits, boolean symmetric) {
        int sym = symmetric ? 1 : 0;
        launch("qd_fake_quant_rows " + rows + "x" + cols, () -> (int) cuda.fakeQuantRows.invokeExact(p(x), rows, cols, bits, sym, stream));
    }

    @Override
    public GradientOps gradientOps() {
        return gradientOps;
    }

    /**
     * A CUDA graph of the work queue puts on this backend's stream ({@link Backend#record}): its buffers are the graph's own
     * allocations ({@link DevicePool#beginGraph}), so the pool never hands their memory to anything else. A failure while
     * recording ends the capture, leaves the stream usable and is thrown.
     */
    @Override
    public Replay record(Runnable queue) {
        if (closed) throw new IllegalStateException("the backend is closed");
        String mode = name();
        call(() -> {
            cuda.beginCapture(stream);
            return null;
        });
        recording = true;
        pool.beginGraph(stream);
        try {
            queue.run();
            recording = false;
            pool.endGraph(); // throws where a buffer outlived the recording
        } catch (RuntimeException | Error e) { // an Error too: the stream must not stay capturing
            if (recording) {
                recording = false;
                try {
                    pool.endGraph();
                } catch (RuntimeException ignored) {
                    // the capture is broken anyway; report the original error
                }
            }
            try {
                cuda.destroyGraph(cuda.endCapture(stream));
            } catch (Throwable ignored) {
                // likewise
            }
            throw e;
        }
        CudaReplay replay = new CudaReplay(call(() -> cuda.endCapture(stream)), mode);
        replays.add(replay);
        return replay;
    }

    /** An instantiated CUDA graph on this backend's stream, and the mode ({@link #name}) it was recorded in. */
    private final class CudaReplay implements Replay {
        private final MemorySegment exec;
        private final String mode;

        private CudaReplay(MemorySegment exec, String mode) {
            this.exec = exec;
            this.mode = mode;
        }

        @Override
        public void run() {
            if (!replays.contains(this)) throw new IllegalStateException("the replay is closed");
            if (!mode.equals(name())) throw new IllegalStateException("a graph recorded on " + mode + " cannot replay on " + name());
            call(() -> {
                cuda.launchGraph(exec, stream);
                return null;
            });
        }

        @Override
        public void close() {
            if (!replays.remove(this)) return;
            call(() -> {
                cuda.destroyGraph(exec);
                return null;
            });
        }
    }

    /** Waits for all queued work; surfaces asynchronous kernel errors. */
    public void synchronize() {
        call(() -> {
            cuda.synchronize(stream);
            return null;
        });
    }

    /**
     * Pool bytes in use now / cached for reuse / high-water mark; the high-water mark of the memory CUDA holds for
     * recorded graphs' buffers ({@link #record}; shared by all graphs, outside the pool); cudaMemGetInfo {free, total}.
     */
    public record MemoryStats(long inUse, long cached, long highWater, long graphHighWater, long deviceFree, long deviceTotal) {}

    public MemoryStats memoryStats() {
        long[] info = call(cuda::memInfo);
        return new MemoryStats(pool.bytesInUse(), pool.bytesCached(), pool.highWaterBytes(), call(() -> cuda.graphMemoryHigh(false)),
                info[0], info[1]);
    }

    public void resetHighWater() {
        pool.resetHighWater();
        call(() -> cuda.graphMemoryHigh(true));
    }

    /**
     * Runs work inside a profiler range (cudaProfilerStart / Stop, synchronized at both ends): with
     * {@code ncu --profile-from-start off} only these kernels are profiled. Without a profiler attached, just work.
     */
    public void profiled(Runnable work) {
        call(() -> {
            cuda.synchronize(stream);
            cuda.profiler(true);
            try {
                work.run();
                cuda.synchronize(stream);
            } finally {
                cuda.profiler(false);
            }
            return null;
        });
    }

    /** Times work queued on this backend's stream with CUDA events; returns milliseconds. */
    public float timeMs(Runnable work) {
        return call(() -> {
            MemorySegment start = cuda.eventCreate(), end = cuda.eventCreate();
            try {
                cuda.eventRecord(start, stream);
                work.run();
                cuda.eventRecord(end, stream);
                return cuda.elapsedMs(start, end);
            } finally {
                cuda.eventDestroy(start);
                cuda.eventDestroy(end);
            }
        });
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        call(() -> {
            cuda.synchronize(stream);
            try {
                for (CudaReplay r : java.util.List.copyOf(replays)) r.close();
                int8.close();
                if (fp32Lt != null) fp32Lt.close();
            } finally {
                try {
                    pool.close();
                } finally {
                    try {
                        staging.close();
                    } finally {
                        try {
                            cublas.close();
                        } finally {
                            cuda.streamDestroy(stream);
                        }
                    }
                }
            }
            return null;
        });
    }
}
