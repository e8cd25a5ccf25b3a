package dev.qdrift.backend.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.Backend.FloatBuf;
import dev.qdrift.backend.Backend.IntBuf;
import dev.qdrift.backend.Backend.LinearWeights;
import dev.qdrift.backend.GradientOps;
import dev.qdrift.backend.cuda.CudaBackend.Heads;
import dev.qdrift.model.BertWeights;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.List;

/**
 * {@link GradientOps} on the GPU: the backward kernels of cuda/backward.cuh (bindings of their
 * qdrift.h section here) and cuBLAS FP32 for the products — a layer's input gradient dY W, and the four
 * batched products of attention's backward around a recomputed softmax (under TF32, where the shape allows, one fused
 * kernel instead: {@link CudaBackend#fusesAttention}). Queued on the backend's stream.
 */
final class CudaGradientOps implements GradientOps {
    private final CudaBackend backend;
    private final QdriftCuda cuda;
    private final Cublas cublas;
    private final MemorySegment stream;

    // int qd_copy(float *dst, const float *src, size_t n, void *stream);
    private final MethodHandle copy;
    // int qd_gelu_forward(const float *u, float *g, int rows, int cols, const float *q_scale, const float *q_zero_point,
    //                     int qmin, int qmax, void *stream);
    private final MethodHandle geluForward;
    // int qd_gelu_grad(float *dg, const float *u, size_t n, void *stream);
    private final MethodHandle geluGrad;
    // int qd_gelu_grad_half(const float *dg, const float *u, size_t n, void *dg16, void *stream);
    private final MethodHandle geluGradHalf;
    // int qd_to_half(const float *x, size_t n, void *y, void *stream);
    private final MethodHandle toHalf;
    // int qd_layernorm_grad(const float *dy, const float *x, const float *gamma, float eps, int rows, int dim, float *dx, void *dx16,
    //                       void *stream);
    private final MethodHandle layerNormGrad;
    // int qd_softmax_grad(const float *probs, float *dp, int rows, int seq, void *stream);
    private final MethodHandle softmaxGrad;
    // int qd_fused_attention_grad(const float *dctx, const float *qkv, const int *mask, int batch, int seq, int heads, int head_dim,
    //                             float scale, void *dqkv, int half_out, void *stream);
    private final MethodHandle fusedAttentionGrad;
    // int qd_pool_grad(const float *dpooled, const int *mask, int batch, int seq, int dim, int mode, float *dhidden, void *stream);
    private final MethodHandle poolGrad;
    // int qd_interpolate(const float *from, const float *diff, const float *alphas, int batch, size_t n, float *out, void *stream);
    private final MethodHandle interpolate;
    // int qd_weighted_row_sum(const float *rows, const float *weights, int batch, size_t n, float *out, int accumulate, void *stream);
    private final MethodHandle weightedRowSum;
    // int qd_clip_mask(const float *pre, const float *post, const float *half_steps, int rows, int cols, float *mask, void *stream);
    private final MethodHandle clipMask;
    // int qd_multiply(float *x, const float *mask, size_t n, void *stream);
    private final MethodHandle multiply;

    CudaGradientOps(CudaBackend backend, SymbolLookup lib, QdriftCuda cuda, Cublas cublas, MemorySegment stream) {
        this.backend = backend;
        this.cuda = cuda;
        this.cublas = cublas;
        this.stream = stream;
        copy = QdriftCuda.bind(lib, "qd_copy", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        geluForward = QdriftCuda.bind(lib, "qd_gelu_forward", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
        geluGrad = QdriftCuda.bind(lib, "qd_gelu_grad", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        geluGradHalf = QdriftCuda.bind(lib, "qd_gelu_grad_half", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS,
                ADDRESS));
        toHalf = QdriftCuda.bind(lib, "qd_to_half", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS));
        layerNormGrad = QdriftCuda.bind(lib, "qd_layernorm_grad", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT,
                JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        softmaxGrad = QdriftCuda.bind(lib, "qd_softmax_grad", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
        fusedAttentionGrad = QdriftCuda.bind(lib, "qd_fused_attention_grad", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS));
        poolGrad = QdriftCuda.bind(lib, "qd_pool_grad", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS));
        interpolate = QdriftCuda.bind(lib, "qd_interpolate", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG,
                ADDRESS, ADDRESS));
        weightedRowSum = QdriftCuda.bind(lib, "qd_weighted_row_sum", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG,
                ADDRESS, JAVA_INT, ADDRESS));
        clipMask = QdriftCuda.bind(lib, "qd_clip_mask", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS,
                ADDRESS));
        multiply = QdriftCuda.bind(lib, "qd_multiply", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
    }

    private static MemorySegment p(FloatBuf b) {
        return ((CudaBackend.DeviceFloats) b).ptr();
    }

    private static MemorySegment p(IntBuf b) {
        return ((CudaBackend.DeviceInts) b).ptr();
    }

    private static void require(boolean ok, String what) {
        if (!ok) throw new IllegalArgumentException(what);
    }

    @Override
    public void gelu(FloatBuf u, FloatBuf g, int rows, int cols, Backend.ColumnGrid grid) {
        long n = (long) rows * cols;
        require(u.size() >= n && g.size() >= n, "gelu: buffers shorter than " + rows + " x " + cols);
        CudaBackend.DeviceGrid q = CudaBackend.DeviceGrid.of(grid);
        cuda.launch("qd_gelu_forward " + rows + "x" + cols, () -> (int) geluForward.invokeExact(p(u), p(g), rows, cols, q.scale(),
                q.zeroPoint(), q.qmin(), q.qmax(), stream));
    }

    @Override
    public void geluGrad(FloatBuf dg, FloatBuf u, int n) {
        require(u.size() >= n && dg.size() >= n, "geluGrad: buffers shorter than " + n);
        cuda.launch("qd_gelu_grad " + n, () -> (int) geluGrad.invokeExact(p(dg), p(u), (long) n, stream));
    }

    /**
     * A layer's weight transposed, W^T [in, out]: the backward's operand, no bias; in FP32, and in FP16 (weightT16,
     * 2 values per float slot) where the backend was in {@link CudaBackend#useHalfProducts} mode when it was prepared.
     */
    record TransposedLinear(CudaBackend.DeviceFloats weightT, CudaBackend.DeviceFloats weightT16, int out, int in)
            implements LinearWeights {}

    /**
     * W^T on the device, so that dy W runs as cuBLAS's "TN" product, the forward's: with TF32 on Hopper, whose tensor
     * cores read FP32 operands only K-major, the "NN" product of dy and W itself ran 1.4x slower (Nsight Compute,
     * bench/results/2026-12-05-h100-profile). Transposed once on the host, when the model is prepared; its FP16 copy
     * rounded on the device.
     */
    @Override
    public LinearWeights prepareInputGrad(BertWeights.Linear l, LinearWeights forward) {
        CudaBackend.DeviceFloats weightT = (CudaBackend.DeviceFloats) backend.upload(l.transposedWeight()), half = null;
        if (backend.halfProducts()) {
            half = (CudaBackend.DeviceFloats) backend.allocate(halfSlots(weightT.size()));
            toHalf(weightT, weightT.size(), half);
        }
        return new TransposedLinear(weightT, half, l.out(), l.in());
    }

    @Override
    public boolean halfProducts() {
        return backend.halfProducts();
    }

    @Override
    public <T> T withoutHalfProducts(java.util.function.Supplier<T> work) {
        boolean was = backend.halfProducts();
        backend.useHalfProducts(false);
        try {
            return work.get();
        } finally {
            backend.useHalfProducts(was);
        }
    }

    /** Float slots that hold n FP16 values. */
    private static int halfSlots(long n) {
        return (int) ((n + 1) / 2);
    }

    /** half = FP16(x[0, n)), two values per float slot (value 2i in the low 16 bits of slot i). */
    void toHalf(FloatBuf x, long n, FloatBuf half) {
        require(x.size() >= n && 2L * half.size() >= n, "toHalf: buffers too small for " + n);
        cuda.launch("qd_to_half " + n, () -> (int) toHalf.invokeExact(p(x), n, p(half), stream));
    }

    private static TransposedLinear transposed(LinearWeights w) {
        if (!(w instanceof TransposedLinear l))
            throw new IllegalArgumentException("linearInputGrad needs weights from prepareInputGrad, not " + w.getClass().getSimpleName());
        return l;
    }

    @Override
    public void linearInputGrad(FloatBuf dy, int rows, LinearWeights w, FloatBuf dx, boolean accumulate) {
        TransposedLinear l = transposed(w);
        require(dy.size() >= rows * l.out() && dx.size() >= rows * l.in(), "linearInputGrad: buffers too small for " + rows + " rows");
        if (backend.halfProducts()) {
            halfProduct(rows, l, dx, accumulate, dy16 -> toHalf(dy, (long) rows * l.out(), dy16));
            return;
        }
        // dx[rows, in] = dy[rows, out] (W^T)^T: the forward's product with W^T as the weight.
        CudaBackend.call(() -> {
            cublas.gemmRowMajorNT(p(dy), l.weightT().ptr(), p(dx), rows, l.in(), l.out(), accumulate);
            return null;
        });
    }

    /** GELU's backward writes the product's FP16 operand itself under FP16 products; else the two steps. */
    @Override
    public void geluGradInputGrad(FloatBuf dg, FloatBuf u, int rows, int cols, LinearWeights w, FloatBuf dx, boolean accumulate) {
        if (!backend.halfProducts()) {
            GradientOps.super.geluGradInputGrad(dg, u, rows, cols, w, dx, accumulate);
            return;
        }
        TransposedLinear l = transposed(w);
        long n = (long) rows * cols;
        require(cols == l.out() && dg.size() >= n && u.size() >= n && dx.size() >= rows * l.in(),
                "geluGradInputGrad: buffers or weights do not fit " + rows + "x" + cols);
        halfProduct(rows, l, dx, accumulate,
                dg16 -> cuda.launch("qd_gelu_grad_half " + n, () -> (int) geluGradHalf.invokeExact(p(dg), p(u), n, p(dg16), stream)));
    }

    /**
     * dx = dy16 W (+ dx) with dy16 and W in FP16: dy16 [rows, l.out] is a scratch buffer that `writeOperand` fills (it is
     * released to the pool when the product is queued; all work is on one stream).
     */
    private void halfProduct(int rows, TransposedLinear l, FloatBuf dx, boolean accumulate, java.util.function.Consumer<FloatBuf> writeOperand) {
        if (l.weightT16() == null)
            throw new IllegalStateException("FP16 backward products need weights prepared while they were on (CudaBackend.useHalfProducts "
                    + "before the model is prepared)");
        try (Backend.Scope scope = backend.openScope()) {
            FloatBuf dy16 = backend.allocate(halfSlots((long) rows * l.out()));
            writeOperand.accept(dy16);
            CudaBackend.call(() -> {
                cublas.gemmRowMajorNTHalfInputs(p(dy16), l.weightT16().ptr(), p(dx), rows, l.in(), l.out(), accumulate);
                return null;
            });
        }
    }

    @Override
    public void layerNormGrad(FloatBuf dy, FloatBuf x, FloatBuf gamma, float eps, int rows, int dim, FloatBuf dx) {
        layerNormGrad(dy, x, gamma, eps, rows, dim, dx, MemorySegment.NULL);
    }

    private void layerNormGrad(FloatBuf dy, FloatBuf x, FloatBuf gamma, float eps, int rows, int dim, FloatBuf dx, MemorySegment dx16) {
        long n = (long) rows * dim;
        require(dy.size() >= n && x.size() >= n && dx.size() >= n && gamma.size() >= dim, "layerNormGrad: buffers too small for "
                + rows + "x" + dim);
        cuda.launch("qd_layernorm_grad " + rows + "x" + dim, () -> (int) layerNormGrad.invokeExact(p(dy), p(x), p(gamma), eps, rows, dim,
                p(dx), dx16, stream));
    }

    /** Under FP16 products the LayerNorm backward writes the product's FP16 operand beside dx; else the two steps. */
    @Override
    public void layerNormGradInputGrad(FloatBuf dy, FloatBuf x, FloatBuf gamma, float eps, int rows, int dim, FloatBuf dx,
                                       LinearWeights w, FloatBuf product) {
        if (!backend.halfProducts()) {
            GradientOps.super.layerNormGradInputGrad(dy, x, gamma, eps, rows, dim, dx, w, product);
            return;
        }
        TransposedLinear l = transposed(w);
        require(l.out() == dim && product.size() >= rows * l.in(), "layerNormGradInputGrad: weights or product do not fit " + rows + "x" + dim);
        halfProduct(rows, l, product, false, dx16 -> layerNormGrad(dy, x, gamma, eps, rows, dim, dx, p(dx16)));
    }

    @Override
    public void attentionGrad(FloatBuf dctx, FloatBuf qkv, IntBuf mask, int batch, int seq, int heads, int headDim, FloatBuf dqkv) {
        GradientOps.checkAttentionGrad(dctx, qkv, mask, batch, seq, heads, headDim, dqkv);
        if (backend.fusesAttention(seq, headDim, CudaBackend.AttentionPass.BACKWARD, dctx, qkv, dqkv)) {
            fusedAttentionGrad(dctx, qkv, mask, batch, seq, heads, headDim, dqkv, false);
            return;
        }
        int width = heads * headDim, packed = 3 * width;
        float scale = CudaBackend.attentionScale(headDim);
        CudaBackend.call(() -> {
            try (Backend.Scope scope = backend.openScope()) {
                int bh = batch * heads;
                FloatBuf probs = backend.allocate(bh * seq * seq), ds = backend.allocate(bh * seq * seq);
                MemorySegment[] at = backend.headPointers(batch, seq, heads, headDim, List.of(Heads.query(qkv, width), Heads.key(qkv, width),
                        Heads.value(qkv, width), Heads.of(dctx, width), Heads.query(dqkv, width), Heads.key(dqkv, width),
                        Heads.value(dqkv, width)), List.of(probs, ds));
                MemorySegment Q = at[0], K = at[1], V = at[2], dC = at[3], dQ = at[4], dK = at[5], dV = at[6], P = at[7], dS = at[8];
                backend.softmaxProbabilities(Q, K, packed, P, probs, mask, batch, seq, heads, headDim); // P = softmax(Q K^T / sqrt(d) + mask)
                cublas.batchedScores(dC, width, V, packed, dS, seq, headDim, 1f, bh);                   // dP = dC V^T
                cuda.launch("qd_softmax_grad", () -> (int) softmaxGrad.invokeExact(p(probs), p(ds), bh * seq, seq, stream)); // dS
                cublas.batchedContext(dS, K, packed, dQ, packed, seq, headDim, scale, bh);             // dQ = dS K / sqrt(d)
                cublas.batchedTransposedContext(dS, Q, packed, dK, packed, seq, headDim, scale, bh);   // dK = dS^T Q / sqrt(d)
                cublas.batchedTransposedContext(P, dC, width, dV, packed, seq, headDim, 1f, bh);       // dV = P^T dC
            }
            return null;
        });
    }

    /** The fused backward into dqkv: FP32, or FP16 pairs (two per float slot) where `half` (package-private: tests read them). */
    void fusedAttentionGrad(FloatBuf dctx, FloatBuf qkv, IntBuf mask, int batch, int seq, int heads, int headDim, FloatBuf dqkv,
                            boolean half) {
        float scale = CudaBackend.attentionScale(headDim);
        int halfOut = half ? 1 : 0;
        cuda.launch("qd_fused_attention_grad " + batch + "x" + seq + "x" + heads + "x" + headDim, () -> (int) fusedAttentionGrad.invokeExact(
                p(dctx), p(qkv), p(mask), batch, seq, heads, headDim, scale, p(dqkv), halfOut, stream));
    }

    /**
     * Under FP16 products, where attention's backward runs fused, the kernel writes dqkv in FP16 for the product (dqkv
     * itself is not written); else the two steps.
     */
    @Override
    public void attentionGradInputGrad(FloatBuf dctx, FloatBuf qkv, IntBuf mask, int batch, int seq, int heads, int headDim,
                                       FloatBuf dqkv, LinearWeights queryKeyValue, FloatBuf dx) {
        GradientOps.checkAttentionGrad(dctx, qkv, mask, batch, seq, heads, headDim, dqkv);
        // (The scratch dqkv16 comes 256-byte aligned from the pool: the fused kernel's 16 bytes hold.)
        if (!backend.halfProducts() || !backend.fusesAttention(seq, headDim, CudaBackend.AttentionPass.BACKWARD_HALF, dctx, qkv)) {
            GradientOps.super.attentionGradInputGrad(dctx, qkv, mask, batch, seq, heads, headDim, dqkv, queryKeyValue, dx);
            return;
        }
        halfProduct(batch * seq, transposed(queryKeyValue), dx, true,
                dqkv16 -> fusedAttentionGrad(dctx, qkv, mask, batch, seq, heads, headDim, dqkv16, true));
    }

    @Override
    public void poolGrad(FloatBuf dPooled, IntBuf mask, int batch, int seq, int dim, Backend.Pooling mode, FloatBuf dHidden) {
        int m = mode == Backend.Pooling.CLS ? 0 : 1;
        require(dPooled.size() >= batch * dim && mask.size() >= batch * seq && dHidden.size() >= batch * seq * dim,
                "poolGrad: buffers too small for " + batch + "x" + seq + "x" + dim);
        cuda.launch("qd_pool_grad " + batch + "x" + seq + "x" + dim, () -> (int) poolGrad.invokeExact(p(dPooled), p(mask), batch, seq, dim, m,
                p(dHidden), stream));
    }

    @Override
    public void copy(FloatBuf src, FloatBuf dst) {
        require(src.size() == dst.size(), "copy: " + src.size() + " floats into " + dst.size());
        cuda.launch("qd_copy " + src.size(), () -> (int) copy.invokeExact(p(dst), p(src), (long) src.size(), stream));
    }

    @Override
    public void interpolate(FloatBuf from, FloatBuf diff, FloatBuf alphas, int n, FloatBuf out) {
        int batch = alphas.size();
        require(from.size() >= n && diff.size() >= n && out.size() >= batch * n, "interpolate: buffers too small");
        cuda.launch("qd_interpolate " + batch + "x" + n, () -> (int) interpolate.invokeExact(p(from), p(diff), p(alphas), batch, (long) n,
                p(out), stream));
    }

    @Override
    public void weightedRowSum(FloatBuf rows, FloatBuf weights, int n, FloatBuf out, boolean accumulate) {
        int batch = weights.size(), acc = accumulate ? 1 : 0;
        require(rows.size() >= batch * n && out.size() >= n, "weightedRowSum: buffers too small");
        cuda.launch("qd_weighted_row_sum " + batch + "x" + n, () -> (int) weightedRowSum.invokeExact(p(rows), p(weights), batch, (long) n,
                p(out), acc, stream));
    }

    @Override
    public void clipMask(FloatBuf pre, FloatBuf post, FloatBuf halfSteps, int rows, int cols, FloatBuf mask) {
        long n = (long) rows * cols;
        require(pre.size() >= n && post.size() >= n && mask.size() >= n && halfSteps.size() >= cols, "clipMask: buffers too small for "
                + rows + "x" + cols);
        cuda.launch("qd_clip_mask " + rows + "x" + cols, () -> (int) clipMask.invokeExact(p(pre), p(post), p(halfSteps), rows, cols, p(mask),
                stream));
    }

    @Override
    public void multiply(FloatBuf x, FloatBuf mask, int n) {
        require(x.size() >= n && mask.size() >= n, "multiply: buffers shorter than " + n);
        cuda.launch("qd_multiply " + n, () -> (int) multiply.invokeExact(p(x), p(mask), (long) n, stream));
    }
}
