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

    /**
     * The same formula as {@link #gelu(float)}, in FP32 lanes, in as few instructions as it takes (the
     * up-projection's epilogue runs it once per output): polynomials as Horner steps of fused
     * multiply-adds (one rounding per step instead of two, so no less accurate than multiply-then-add),
     * the polynomial's coefficients negated so that 1 - poly e^(-z^2) is one more FMA, erf's sign copied
     * from x by bits instead of a compare and blend, and x/2 (1 + erf) as x/2 + x/2 erf in one FMA.
     * e^(-z^2) needs only the lower clamp: there it is below 2^-126, and 1 - poly e^(-z^2) rounds to
     * exactly 1 either way.
     */
    static FloatVector gelu(FloatVector x) {
        FloatVector az = x.abs().mul(INV_SQRT2);
        FloatVector t = FloatVector.broadcast(x.species(), 1f).div(fma(az, P, 1f));
        FloatVector negPoly = fma(fma(fma(fma(t, -A5, -A4), t, -A3), t, -A2), t, -A1).mul(t);
        FloatVector erfAbs = negPoly.fma(expReduced(az.mul(az).neg().max(EXP_MIN)), FloatVector.broadcast(x.species(), 1f));
        FloatVector erf = erfAbs.reinterpretAsInts().or(x.reinterpretAsInts().and(0x80000000)).reinterpretAsFloats();
        FloatVector half = x.mul(0.5f);
        return half.fma(erf, half);
    }

    /**
     * a b + c in one rounding, c broadcast. (Spelled with an explicit broadcast: FloatVector's
     * lanewise(FMA, Vector, float) form compiled to code twice as slow in GELU.)
     */
    private static FloatVector fma(FloatVector a, FloatVector b, float c) {
        return a.fma(b, FloatVector.broadcast(a.species(), c));
    }

    private static FloatVector fma(FloatVector a, float b, float c) {
        return a.fma(FloatVector.broadcast(a.species(), b), FloatVector.broadcast(a.species(), c));
    }

    private static final float ROUNDER = 12582912f;
    private static final float LOG2E = 1.44269504f, LN2_HI = 0.693145752f, LN2_LO = 1.42860677e-6f;
    /**
     * Clamps for e^x. Below about -87.68, k reaches -127, the 2^k scale built from exponent bits is
     * exactly 0, and so is the result: e^-inf is exactly 0 (masked attention scores need that) without
     * a compare and blend, at the price of flushing results below 2^-126 (denormals) to 0 from there
     * down. The encoder never needs e^x above 88.
     */
    private static final float EXP_MIN = -88f, EXP_MAX = 88f;

    /**
     * e^x for a vector, by range reduction x = k ln2 + r (|r| <= ln2/2, ln2 split in two parts so r is
     * exact) and a degree-6 Taylor polynomial for e^r (truncation error below 2e-7 relative), scaled by
     * 2^k through the exponent bits. e^-inf, and e^x below about -87.68, is exactly 0.
     */
    static FloatVector exp(FloatVector x) {
        return expReduced(x.max(EXP_MIN).min(EXP_MAX));
    }

    /** e^x for x already within [EXP_MIN, EXP_MAX]. */
    private static FloatVector expReduced(FloatVector x) {
        // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer in FP32 arithmetic itself.
        FloatVector k = fma(x, LOG2E, ROUNDER).sub(ROUNDER);
        // k ln2_hi is exact (ln2_hi has 15 significant bits, |k| < 2^7), so fusing it changes nothing;
        // fusing the ln2_lo step saves a rounding.
        FloatVector r = k.fma(FloatVector.broadcast(x.species(), -LN2_HI), x);
        r = k.fma(FloatVector.broadcast(x.species(), -LN2_LO), r);
        FloatVector poly = fma(fma(fma(fma(fma(fma(r, 1f / 720, 1f / 120), r, 1f / 24), r, 1f / 6), r, 0.5f), r, 1f), r, 1f);
        FloatVector scale = k.convert(VectorOperators.F2I, 0).reinterpretAsInts()
                .add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return poly.mul(scale);
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
