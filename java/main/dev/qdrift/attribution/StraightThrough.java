package dev.qdrift.attribution;

/**
 * What the backward pass does at a fake-quantized activation site, y = fq(x) =
 * (clamp(rint(x / s) + z, qmin, qmax) - z) s. The true derivative is zero almost everywhere, so
 * attribution through a quantized model replaces it.
 */
public enum StraightThrough {
    /** Straight-through estimator: dL/dx = dL/dy everywhere (rounding and clamping both pass the gradient). */
    STE,
    /**
     * Clipping-aware STE: dL/dx = dL/dy where the clamp was not active, 0 where it was — where x lay more
     * than half a quantization step beyond the grid's end, i.e. |x - fq(x)| > s/2. Rounding still passes
     * the gradient. Dynamic per-token quantization never clips (each token's range is its own).
     */
    CLIP_AWARE
}
