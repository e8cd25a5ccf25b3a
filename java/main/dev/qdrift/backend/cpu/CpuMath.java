package dev.qdrift.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Elementwise functions the Java standard library lacks, scalar and vectorized alike.
 *
 * <p>erf uses Abramowitz &amp; Stegun 7.1.26 (|error| &le; 1.5e-7 for all x), evaluated in FP32:
 * below FP32's resolution of erf's range, so GELU(x) = x/2 (1 + erf(x/sqrt 2)) — the exact-erf GELU
 * of BERT, not the tanh approximation — agrees with libm's erff to a few ulp.
 */
public final class CpuMath {
    private static final float P = 0.3275911f;
    private static final float A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f,
            A5 = 1.061405429f;
    private static final float INV_SQRT2 = (float) (1 / Math.sqrt(2));

    public static double erf(double x) {
        double ax = Math.abs(x);
        double t = 1 / (1 + P * ax);
        double poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
        return Math.copySign(1 - poly * Math.exp(-ax * ax), x);
    }

    public static float gelu(float x) {
        return (float) (0.5 * x * (1 + erf(x * INV_SQRT2)));
    }

    static FloatVector gelu(FloatVector x) {
        FloatVector z = x.mul(INV_SQRT2);
        FloatVector az = z.abs();
        FloatVector t = FloatVector.broadcast(x.species(), 1f).div(az.mul(P).add(1f));
        FloatVector poly = t.mul(A5).add(A4).mul(t).add(A3).mul(t).add(A2).mul(t).add(A1).mul(t);
        FloatVector e = exp(az.mul(az).neg());
        FloatVector erfAbs = poly.mul(e).neg().add(1f);
        FloatVector erf = erfAbs.blend(erfAbs.neg(), z.lt(0f));
        return x.mul(0.5f).mul(erf.add(1f));
    }

    private static final float ROUNDER = 12582912f;
    private static final float LOG2E = 1.44269504f, LN2_HI = 0.693145752f, LN2_LO = 1.42860677e-6f;

    /**
     * e^x for a vector, by range reduction x = k ln2 + r (|r| <= ln2/2, ln2 split in two parts so r is
     * exact) and a degree-6 Taylor polynomial for e^r (truncation error < 2e-8 relative), scaled by 2^k
     * through the exponent bits. Inputs below -87.3 give 0 (as e^-inf must, for masked attention
     * scores); the encoder never needs e^x above 88.
     */
    static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(-87.3f).min(88f);
        // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer in FP32 arithmetic itself.
        FloatVector k = xc.mul(LOG2E).add(ROUNDER).sub(ROUNDER);
        FloatVector r = xc.sub(k.mul(LN2_HI)).sub(k.mul(LN2_LO));
        FloatVector poly = r.mul(1f / 720).add(1f / 120).mul(r).add(1f / 24).mul(r).add(1f / 6).mul(r).add(0.5f).mul(r).add(1f).mul(r).add(1f);
        FloatVector scale = k.convert(VectorOperators.F2I, 0).reinterpretAsInts()
                .add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return poly.mul(scale).blend(0f, x.lt(-87.3f));
    }

    /**
     * The lanes' sum, added left to right. FloatVector.reduceLanes(ADD) adds in an order that differs
     * between the interpreter and C2-compiled code, so the same input could give results a few ulp
     * apart from one call to the next; a fixed order keeps every forward pass bit-reproducible.
     */
    static float sumLanes(FloatVector v) {
        float[] lanes = v.toArray();
        float s = 0;
        for (float x : lanes) s += x;
        return s;
    }

    private CpuMath() {}
}
