package dev.qdrift.backend;

import dev.qdrift.QdriftException;

/**
 * An integer grid of a given bit width, and the exact quantize -> dequantize arithmetic every
 * backend uses (the CUDA kernels in cuda/fake_quant.cuh compute the same FP32 operations in the same
 * order, so CPU and GPU agree bit for bit):
 * <pre>q = clamp(rint(x / scale) + zeroPoint, qmin, qmax);   x' = (q - zeroPoint) * scale</pre>
 * rint rounds half to even (2.5 -> 2, 3.5 -> 4). Symmetric grids are narrow ([-(2^(b-1)-1), 2^(b-1)-1],
 * zero point 0: -127..127 for 8 bits, so +a and -a map to mirror codes); asymmetric grids are
 * [0, 2^b - 1] with a zero point, and every range is widened to include 0 so 0 stays exact (padding,
 * ReLU-like zeros).
 */
public record QuantGrid(int bits, boolean symmetric) {
    public QuantGrid {
        if (bits < 2 || bits > 8) throw new QdriftException("bits must be between 2 and 8, got " + bits);
    }

    public int qmin() {
        return symmetric ? -qmaxSymmetric() : 0;
    }

    public int qmax() {
        return symmetric ? qmaxSymmetric() : (1 << bits) - 1;
    }

    private int qmaxSymmetric() {
        return (1 << (bits - 1)) - 1;
    }

    /** Scale and zero point of a grid covering [lo, hi] (widened to include 0). */
    public record Params(float scale, float zeroPoint) {}

    public Params params(float lo, float hi) {
        lo = Math.min(lo, 0f);
        hi = Math.max(hi, 0f);
        float scale, zp;
        if (symmetric) {
            scale = Math.max(hi, -lo) / qmax();
            zp = 0f;
        } else {
            scale = (hi - lo) / qmax();
            zp = scale > 0f ? Math.min(Math.max((float) Math.rint(-lo / scale), qmin()), qmax()) : 0f;
        }
        // An all-zero range: every value quantizes to 0 exactly with any positive scale.
        if (!(scale > 0f)) scale = 1f;
        return new Params(scale, zp);
    }

    public static float fakeQuant(float x, float scale, float zeroPoint, int qmin, int qmax) {
        float q = quantize(x, scale, zeroPoint, qmin, qmax);
        return (q - zeroPoint) * scale;
    }

    /** The integer code of x (as a float): clamp(rint(x / scale) + zeroPoint, qmin, qmax). */
    public static float quantize(float x, float scale, float zeroPoint, int qmin, int qmax) {
        return Math.min(Math.max((float) Math.rint(x / scale) + zeroPoint, qmin), qmax);
    }

    public float fakeQuant(float x, Params p) {
        return fakeQuant(x, p.scale(), p.zeroPoint(), qmin(), qmax());
    }
}
