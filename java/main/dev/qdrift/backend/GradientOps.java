package dev.qdrift.backend;

import dev.qdrift.backend.Backend.FloatBuf;
import dev.qdrift.backend.Backend.IntBuf;
import dev.qdrift.backend.Backend.LinearWeights;
import dev.qdrift.model.BertWeights;

/**
 * The backward passes of the encoder's operations on a backend's buffers, for gradients with respect
 * to the input (attributions): input gradients only, no weight gradients. All matrices row-major; each
 * method's formula is the derivative of the forward op of the same name on {@link Backend}.
 * Implementations: CPU (float32 loops, the reference the GPU is checked against) and CUDA.
 */
public interface GradientOps {

    /**
     * g = GELU(u) (exact erf) over [rows, cols]: the forward of {@link #geluGrad}, keeping u. With a grid (else null),
     * g is then fake-quantized on it, as {@link Backend#fakeQuantColumns} would (a quantized FFN intermediate), in the
     * same pass where the backend can.
     */
    void gelu(FloatBuf u, FloatBuf g, int rows, int cols, Backend.ColumnGrid grid);

    /** dg *= GELU'(u) in place: GELU'(u) = Φ(u) + u φ(u). */
    void geluGrad(FloatBuf dg, FloatBuf u, int n);

    /**
     * A linear layer's FP32 weight laid out for {@link #linearInputGrad}: the backend's best layout for dy W, which
     * need not be {@link Backend#prepareLinear}'s (the GPU keeps W^T, so the backward product has the forward's form).
     *
     * @param forward the layer's {@link Backend#prepareLinear} weights where the caller holds them (a backend whose
     *     backward reads the same layout returns them, holding no second copy), else null
     */
    LinearWeights prepareInputGrad(BertWeights.Linear layer, LinearWeights forward);

    /** dx[rows, in] = dy[rows, out] W (+ dx when accumulate), W the layer's [out, in] weight from {@link #prepareInputGrad}. */
    void linearInputGrad(FloatBuf dy, int rows, LinearWeights w, FloatBuf dx, boolean accumulate);

    /**
     * {@link #geluGrad} on dg [rows, cols] (cols: w's output width) then {@link #linearInputGrad} of the result through w, in one call, so that a
     * backend whose products read FP16 operands writes GELU's backward in FP16 and never stores it in FP32; dg's content
     * afterwards is unspecified.
     */
    default void geluGradInputGrad(FloatBuf dg, FloatBuf u, int rows, int cols, LinearWeights w, FloatBuf dx, boolean accumulate) {
        geluGrad(dg, u, rows * cols);
        linearInputGrad(dg, rows, w, dx, accumulate);
    }

    /**
     * {@link #layerNormGrad} of dy into dx (kept: the residual's share of the gradient), then product = dx W through the
     * layer that fed the LayerNorm, in one call, so that a backend whose products read FP16 operands writes dx in FP16
     * too as it computes it.
     */
    default void layerNormGradInputGrad(FloatBuf dy, FloatBuf x, FloatBuf gamma, float eps, int rows, int dim, FloatBuf dx,
                                        LinearWeights w, FloatBuf product) {
        layerNormGrad(dy, x, gamma, eps, rows, dim, dx);
        linearInputGrad(dx, rows, w, product, false);
    }

    /**
     * {@link #attentionGrad} into dqkv, then dx += dqkv W through the packed query-key-value layer, in one call, so that
     * a backend whose products read FP16 operands writes dqkv in FP16 (elsewhere) and never stores it in FP32: dqkv's
     * content afterwards is unspecified.
     */
    default void attentionGradInputGrad(FloatBuf dctx, FloatBuf qkv, IntBuf mask, int batch, int seq, int heads, int headDim,
                                        FloatBuf dqkv, LinearWeights queryKeyValue, FloatBuf dx) {
        attentionGrad(dctx, qkv, mask, batch, seq, heads, headDim, dqkv);
        linearInputGrad(dqkv, batch * seq, queryKeyValue, dx, true);
    }

    /**
     * Whether {@link #linearInputGrad} rounds dy to FP16 (5 exponent bits: full precision from 6.1e-5, inf beyond 65504).
     * The backward is linear in its seed, so a caller then scales the seed by a power of two that puts the gradients in
     * that range, divides the result by it (both exact), and treats a non-finite result as an overflow.
     */
    default boolean halfProducts() {
        return false;
    }

    /** Runs work with {@link #halfProducts} off (FP32 operands), everything else as it is; for a pass that overflowed FP16. */
    default <T> T withoutHalfProducts(java.util.function.Supplier<T> work) {
        return work.get();
    }

    /**
     * The backward of y = LayerNorm(x) with gamma over the last dim (beta has no input gradient):
     * dx = rstd (ĝ - mean(ĝ) - x̂ mean(ĝ x̂)) with ĝ = gamma dy, x̂ = (x - mean) rstd, recomputed
     * from the forward's input x (two-pass statistics, as the forward computes them).
     */
    void layerNormGrad(FloatBuf dy, FloatBuf x, FloatBuf gamma, float eps, int rows, int dim, FloatBuf dx);

    /**
     * The backward of {@link Backend#attention}: given d ctx, the d q, d k, d v of
     * ctx = softmax(q k^T / sqrt(d) + mask) v per sequence and head; probabilities are recomputed from
     * q and k. With P the probabilities: dV = P^T dC, dP = dC V^T, dS = P (dP - rowsum(dP P)),
     * dQ = dS K / sqrt(d), dK = dS^T Q / sqrt(d). Masked keys have P = 0 and get no gradient. qkv and dqkv are
     * packed as {@link Backend#attention}'s input, [batch*seq, 3*heads*headDim] with each token's q | k | v, so that
     * dqkv feeds one input-gradient product through {@link dev.qdrift.model.BertWeights.Layer#queryKeyValue}. dqkv
     * must be a buffer of its own (not dctx or qkv).
     */
    void attentionGrad(FloatBuf dctx, FloatBuf qkv, IntBuf mask, int batch, int seq, int heads, int headDim, FloatBuf dqkv);

    /** {@link #attentionGrad}'s argument checks, for its implementations. */
    static void checkAttentionGrad(FloatBuf dctx, FloatBuf qkv, IntBuf mask, int batch, int seq, int heads, int headDim, FloatBuf dqkv) {
        int n = batch * seq * heads * headDim;
        if (dctx.size() < n || qkv.size() < 3 * n || dqkv.size() < 3 * n || mask.size() < batch * seq)
            throw new IllegalArgumentException("attentionGrad: buffers too small for " + batch + "x" + seq + "x" + heads + "x" + headDim);
        if (dqkv == dctx || dqkv == qkv) throw new IllegalArgumentException("attentionGrad: dqkv must not be dctx or qkv");
    }

    /** The backward of {@link Backend#pool}: dHidden [batch, seq, dim] from dPooled [batch, dim] (0 where nothing flows). */
    void poolGrad(FloatBuf dPooled, IntBuf mask, int batch, int seq, int dim, Backend.Pooling mode, FloatBuf dHidden);

    /** dst = src (same size). */
    void copy(FloatBuf src, FloatBuf dst);

    /** out[b, i] = from[i] + alphas[b] diff[i] for b < alphas.size(), i < n: a batch of points on a straight path. */
    void interpolate(FloatBuf from, FloatBuf diff, FloatBuf alphas, int n, FloatBuf out);

    /** out[i] = (out[i] when accumulate) + sum_b weights[b] rows[b, i]: a quadrature's weighted sum of gradients. */
    void weightedRowSum(FloatBuf rows, FloatBuf weights, int n, FloatBuf out, boolean accumulate);

    /**
     * The clipping-aware straight-through estimator's mask of a fake-quantized site: mask[r, c] = 0 where the
     * clamp acted, |pre - post| > halfSteps[c] (inside the grid rounding moves a value by at most half a step),
     * else 1. pre and post [rows, cols]: the site before and after fake-quantization.
     */
    void clipMask(FloatBuf pre, FloatBuf post, FloatBuf halfSteps, int rows, int cols, FloatBuf mask);

    /** x[i] *= mask[i] for i < n, in place: a gradient through a clipping-aware site. */
    void multiply(FloatBuf x, FloatBuf mask, int n);
}
