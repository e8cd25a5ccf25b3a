package dev.qdrift.attribution;

/**
 * The arithmetic of the attribution forward pass. Both modes compute in float64; they differ in what
 * is stored between operations.
 */
public enum Precision {
    /**
     * Every tensor the encoder stores (embedding sum, LayerNorm outputs, linear outputs, GELU outputs,
     * attention context, residual sums, pooled vector) is rounded to float32, as {@code Encoder} stores
     * it; sums inside an operation accumulate in float64. Agrees with the encoder on the CPU backend to
     * about 1e-6 relative, and feeds fake-quantization the float32 values it sees in the encoder.
     */
    FLOAT32,
    /** No rounding at all: the smooth float64 function that finite-difference checks differentiate. */
    FLOAT64;

    double round(double v) {
        return this == FLOAT32 ? (float) v : v;
    }

    void round(double[] a) {
        if (this == FLOAT32) for (int i = 0; i < a.length; i++) a[i] = (float) a[i];
    }
}
