package dev.qdrift.backend;

import dev.qdrift.model.BertWeights;

/**
 * The small set of operations a BERT encoder needs, on buffers that live where the backend computes
 * (Java heap for the CPU backend, device memory for CUDA). The encoder is written once against this
 * interface; CPU and CUDA differ only below it. All matrices are row-major.
 */
public interface Backend extends AutoCloseable {

    /** A buffer of floats owned by a backend. */
    interface FloatBuf {
        int size();
    }

    /** A buffer of ints (token ids, attention mask) owned by a backend. */
    interface IntBuf {
        int size();
    }

    /** A linear layer's weight and bias in whatever layout the backend computes fastest with. */
    interface LinearWeights {
        int out();

        int in();
    }

    /** What a linear layer applies to its output before storing it. */
    enum Epilogue { NONE, GELU, TANH }

    enum Pooling { CLS, MEAN }

    String name();

    /**
     * Buffers allocated while the returned scope is open are released when it closes (a forward
     * pass's temporaries); buffers allocated outside any scope (weights) live until the backend closes.
     */
    Scope openScope();

    interface Scope extends AutoCloseable {
        @Override
        void close();
    }

    /** A buffer of n floats; its contents are undefined until written. */
    FloatBuf allocate(int n);

    FloatBuf upload(float[] data);

    IntBuf uploadInts(int[] data);

    /** Copies src into dst, which must be exactly src.size() long. */
    void download(FloatBuf src, float[] dst);

    /** Copies data into dst, which must be exactly data.length long. */
    void write(FloatBuf dst, float[] data);

    /** Copies data into dst rounded to float32, as (float) rounds each value; dst must be exactly data.length long. */
    void write(FloatBuf dst, double[] data);

    /** Copies src into dst widened to float64 (exact); dst must be exactly src.size() long. */
    void download(FloatBuf src, double[] dst);

    void write(IntBuf dst, int[] data);

    /**
     * A buffer outside every scope, kept until {@link #release}: what a {@link #record recorded} replay reads and writes
     * from one call to the next, which no scope closed meanwhile may free.
     */
    FloatBuf allocateKept(int n);

    IntBuf allocateKeptInts(int n);

    /** Frees a buffer from {@link #allocateKept} / {@link #allocateKeptInts}. */
    void release(FloatBuf kept);

    void release(IntBuf kept);

    /**
     * The work `queue` puts on this backend, recorded without running it, to run as often as wanted — on the GPU a CUDA
     * graph: one launch for all its kernels. queue must transfer nothing to or from the host and keep nothing it
     * allocates (its scopes close inside it): it reads and writes {@link #allocateKept kept} buffers, which the caller
     * fills and reads around each run. Run the same work once before, unrecorded, so that libraries have made their
     * per-shape choices. A replay runs only in the mode it was recorded in ({@link #name}: the products' precision).
     * Null where this backend does not record (the CPU): run the work itself.
     */
    default Replay record(Runnable queue) {
        return null;
    }

    /** Recorded work ({@link #record}). */
    interface Replay extends AutoCloseable {
        void run();

        @Override
        void close();
    }

    LinearWeights prepareLinear(BertWeights.Linear linear);

    /**
     * A linear layer executed in integers, when this backend has integer kernels (else null): the
     * weight quantized symmetrically per output channel to s8 (scale = max|w_row| / 127), the input
     * quantized to s8 as it arrives, with a static per-tensor scale (inputScale > 0) or per token
     * (inputScale NaN), then an s8 x s8 -> s32 GEMM whose epilogue dequantizes and adds the bias (and
     * GELU). {@link #linear} runs it like any other layer.
     */
    default LinearWeights prepareInt8Linear(BertWeights.Linear linear, float inputScale) {
        return null;
    }

    /** out[b,t,:] = word[ids[b,t]] + position[t] + type[typeIds[b,t]]. */
    void embed(IntBuf ids, IntBuf typeIds, FloatBuf word, FloatBuf position, FloatBuf type,
               int batch, int seq, int hidden, FloatBuf out);

    /** y[rows, out] = epilogue(x[rows, in] W^T + b). */
    void linear(FloatBuf x, int rows, LinearWeights w, Epilogue epilogue, FloatBuf y);

    /**
     * out = LayerNorm(x + residual) with gamma, beta over the last dim. residual may be null; out may
     * be x or residual; when sum is not null the pre-norm sum x + residual is stored there too (the
     * residual-sum activation that outlier statistics and quantization look at).
     */
    void addLayerNorm(FloatBuf x, FloatBuf residual, FloatBuf gamma, FloatBuf beta, float eps,
                      int rows, int dim, FloatBuf out, FloatBuf sum);

    /**
     * Multi-head self-attention context: for each sequence b and head h,
     * out = softmax(q k^T / sqrt(headDim) with padded keys masked out) v. qkv is [batch*seq, 3*heads*headDim], each
     * token's q | k | v one after the other (the output of {@link BertWeights.Layer#queryKeyValue}); out is
     * [batch*seq, heads*headDim]; mask is [batch, seq] with 1 for real tokens. out must be a buffer of its own
     * (the GPU writes each head's context in place while it still reads v).
     */
    void attention(FloatBuf qkv, IntBuf mask, int batch, int seq, int heads, int headDim, FloatBuf out);

    /** {@link #attention}'s argument checks, for its implementations. */
    static void checkAttention(FloatBuf qkv, IntBuf mask, int batch, int seq, int heads, int headDim, FloatBuf out) {
        int n = batch * seq * heads * headDim;
        if (qkv.size() < 3 * n || out.size() < n || mask.size() < batch * seq)
            throw new IllegalArgumentException("attention: buffers too small for " + batch + "x" + seq + "x" + heads + "x" + headDim);
        if (out == qkv) throw new IllegalArgumentException("attention: out must not be qkv");
    }

    /** out[b,:] = hidden[b,0,:] (CLS) or the mean of hidden[b,t,:] over real tokens (MEAN). */
    void pool(FloatBuf hidden, IntBuf mask, int batch, int seq, int dim, Pooling mode, FloatBuf out);

    /**
     * Simulated quantization in place, per column: q = clamp(rint(x / scale[c]) + zeroPoint[c], qmin, qmax),
     * x = (q - zeroPoint[c]) * scale[c], rint rounding half to even. Per-tensor quantization passes the
     * same scale for every column; per-embedding-group shares one within each group.
     */
    void fakeQuantColumns(FloatBuf x, int rows, int cols, FloatBuf scale, FloatBuf zeroPoint, int qmin, int qmax);

    /**
     * Simulated dynamic per-row (per-token) quantization in place: each row's range is its own
     * (widened to include 0); symmetric: scale = max|x| / (2^(bits-1) - 1), q in [-qmax, qmax];
     * asymmetric: scale = (max - min) / (2^bits - 1), zero point rint(-min / scale), q in [0, 2^bits - 1].
     */
    void fakeQuantRows(FloatBuf x, int rows, int cols, int bits, boolean symmetric);

    /**
     * A static quantization grid per column on this backend: {@link #fakeQuantColumns}' scale, zero point and range;
     * uniformScale: the one scale of every column where all zero points are 0 (a symmetric per-tensor grid), else NaN —
     * a backend may then merge the grid into an s8 quantization on that same scale.
     */
    record ColumnGrid(FloatBuf scale, FloatBuf zeroPoint, int qmin, int qmax, float uniformScale) {
        /** A grid whose columns may differ. */
        public ColumnGrid(FloatBuf scale, FloatBuf zeroPoint, int qmin, int qmax) {
            this(scale, zeroPoint, qmin, qmax, Float.NaN);
        }
    }

    /**
     * {@link #addLayerNorm} with the quantized sites around it: with sumGrid (else null) the sum x + residual is
     * fake-quantized on it before it is stored in sum (then not null) and normalized; with outGrid (else null) the
     * output is fake-quantized on it. Here the ops one after another; a backend may fuse them into one pass with the
     * same result.
     */
    default void addLayerNormQuantized(FloatBuf x, FloatBuf residual, ColumnGrid sumGrid, ColumnGrid outGrid, FloatBuf gamma,
                                       FloatBuf beta, float eps, int rows, int dim, FloatBuf out, FloatBuf sum) {
        addLayerNorm(x, residual, gamma, beta, eps, rows, dim, out, sum);
        if (sumGrid != null) {
            fakeQuantColumns(sum, rows, dim, sumGrid.scale(), sumGrid.zeroPoint(), sumGrid.qmin(), sumGrid.qmax());
            addLayerNorm(sum, null, gamma, beta, eps, rows, dim, out, null);
        }
        if (outGrid != null) fakeQuantColumns(out, rows, dim, outGrid.scale(), outGrid.zeroPoint(), outGrid.qmin(), outGrid.qmax());
    }

    /**
     * {@link #addLayerNormQuantized}, then y = epilogue(next(out)) — a LayerNorm and the linear layer it feeds — where this
     * backend can fuse them: the GPU, when next is an s8 layer with a static input scale and the rows are at most 1024
     * columns, a multiple of 4, writes next's s8 operand from the normalized rows as it stores out (out is still stored:
     * the next residual reads it). out and y are then exactly what the ops one after another give. Returns false, having
     * done nothing, where it cannot; the caller then runs them one after another.
     */
    default boolean addLayerNormIntoLinear(FloatBuf x, FloatBuf residual, ColumnGrid sumGrid, ColumnGrid outGrid, FloatBuf gamma,
                                           FloatBuf beta, float eps, int rows, int dim, FloatBuf out, FloatBuf sum, LinearWeights next,
                                           Epilogue epilogue, FloatBuf y) {
        return false;
    }

    /**
     * y[rows, next.out] = next(site), site = act(x) (act GELU, or x itself), fake-quantized on grid (null: not
     * quantized) — an activation, its quantized site and the linear layer it feeds — in one pass over x where this
     * backend can fuse them: the GPU, when next is an s8 layer with a static input scale, writes next's s8 operand
     * straight from x and never stores the site. y is then exactly what the ops one after another give. Returns false,
     * having done nothing, where it cannot; the caller then runs them one after another.
     */
    default boolean siteIntoLinear(FloatBuf x, int rows, int cols, boolean gelu, ColumnGrid grid, LinearWeights next, FloatBuf y) {
        return false;
    }

    /** The backward passes of these ops, on this backend's buffers (attributions). */
    GradientOps gradientOps();

    /**
     * Runs work with every floating-point product in true FP32: a backend with a faster, reduced-precision mode
     * (the GPU's --tf32) leaves it meanwhile. What builds a quantized model (calibration, the mixed-precision search)
     * runs this way, so that its statistics do not depend on the mode of the run that made them.
     */
    default <T> T inFp32(java.util.function.Supplier<T> work) {
        return work.get();
    }

    @Override
    void close();
}
