package dev.qdrift.attribution;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.ActivationTransform;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.Site;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.model.tokenizer.TokenBatch;
import dev.qdrift.model.tokenizer.Tokenizer;
import dev.qdrift.quant.ActivationQuantizer;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.QuantSpec;
import dev.qdrift.quant.QuantizedEncoders;
import dev.qdrift.quant.Scheme;
import dev.qdrift.quant.WeightQuantizer;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Gradients through quantized models. The central check: the STE gradient is the exact gradient of the
 * model whose quantization noise is frozen at the input (each fq(x) replaced by x + (fq(x0) - x0)), and
 * the clipping-aware gradient that of the model whose clipped values are frozen outright — both against
 * float64 finite differences of those surrogates.
 */
class QuantizedGradientsTest {
    private static final BertWeights W = TestModels.small(31);
    private static final LinearHead HEAD = TestModels.head(2, 16, 8, "cls");
    private static final Sequence S = TestModels.sequence(7, 70);
    private static final CalibrationStats STATS = new CalibrationStats();

    @BeforeAll
    static void calibrate() {
        // Calibration sees S itself: with min-max ranges nothing in S is clipped.
        List<Sequence> sample = List.of(S, TestModels.sequence(9, 71), TestModels.sequence(5, 72), TestModels.sequence(12, 73));
        Tokenizer.Encoded[] enc = sample.stream()
                .map(s -> new Tokenizer.Encoded(s.ids(), s.typeIds(), s.wordIds(), new String[s.length()], false))
                .toArray(Tokenizer.Encoded[]::new);
        QuantizedEncoders.calibrate(new Encoder(W, new CpuBackend()), List.of(TokenBatch.pad(enc)), STATS);
    }

    private static Gradients quantized(String scheme, StraightThrough mode) {
        return QuantizedGradients.build(W, HEAD, Pooling.CLS, Scheme.parse(scheme), STATS, Set.of(), mode);
    }

    /** The attribution forward of a quantized model against the quantized encoder on the CPU backend. */
    @ParameterizedTest
    @ValueSource(strings = {"w8a8", "w8a8-pct99", "w8a8-pt", "peg4", "w4a8"})
    void quantizedForwardAgreesWithQuantizedEncoder(String scheme) {
        Encoder enc = QuantizedEncoders.build(W, new CpuBackend(), Scheme.parse(scheme), STATS, Set.of());
        Encoder.Output ref = TestModels.encoderOutput(enc, S, Pooling.CLS);
        AttributionModel.Output out = quantized(scheme, StraightThrough.STE).forward(S);
        // Fake-quant sees float32 values equal to the encoder's to ~1e-7; a value that close to a rounding
        // boundary may land one step away, so the comparison allows a few steps' worth of difference.
        double err = TestModels.relMaxError(out.lastHidden(), ref.lastHidden());
        System.out.printf("%s forward vs quantized Encoder: relative max error %.2e%n", scheme, err);
        assertTrue(err < 2e-2, scheme + ": relative max error " + err);
        assertTrue(TestModels.relMaxError(out.logits(), HEAD.logits(ref.pooled())) < 2e-2, scheme + ": logits");
    }

    /** A scheme whose every activation site is kept FP32 and whose weights are FP32 is the FP32 model, gradient for gradient. */
    @Test
    void allSitesFp32GivesTheFp32GradientExactly() {
        Set<String> all = new HashSet<>();
        all.add(Site.EMBEDDINGS.key(-1));
        for (int l = 0; l < W.layers().size(); l++) for (Site s : Scheme.ACTIVATION_SITES) if (s != Site.EMBEDDINGS) all.add(s.key(l));
        Scheme onlyActivations = new Scheme("a8-all-fp32", null, QuantSpec.activations(8, QuantSpec.Calibrator.MINMAX, 0), all, false);
        double[] fp32 = Gradients.fp32(W, HEAD, Pooling.CLS).gradient(S, Target.logProb(1)).gradient();
        for (StraightThrough mode : StraightThrough.values()) {
            Gradients q = QuantizedGradients.build(W, HEAD, Pooling.CLS, onlyActivations, STATS, all, mode);
            assertArrayEquals(fp32, q.gradient(S, Target.logProb(1)).gradient(), mode.toString());
        }
    }

    /**
     * Nothing clips: per-token ranges (each token's own), and min-max ranges widened threefold (the
     * quantized model's activations drift past the FP32 calibration ranges a little, so the plain
     * calibration clips a few values). Then both STEs give the same gradient.
     */
    @ParameterizedTest
    @ValueSource(strings = {"w8a8", "w8a8-pt"})
    void clipAwareEqualsSteWhenNothingClips(String name) {
        Scheme scheme = Scheme.parse(name);
        CalibrationStats wide = widened(STATS, 3);
        BertWeights qw = WeightQuantizer.apply(W, scheme.weights());
        CpuBackend cpu = new CpuBackend();
        QuantSites real = new QuantSites(new ActivationQuantizer(cpu, scheme.activations(), wide, Set.of(), null), cpu,
                scheme.activations().grid());
        Recording rec = new Recording(real);
        double[] clip = new Gradients(qw, HEAD, Pooling.CLS, rec, StraightThrough.CLIP_AWARE, Precision.FLOAT32)
                .gradient(S, Target.logit(0)).gradient();
        assertEquals(0, rec.clipped());
        double[] ste = new Gradients(qw, HEAD, Pooling.CLS, real, StraightThrough.STE, Precision.FLOAT32).gradient(S, Target.logit(0)).gradient();
        assertArrayEquals(ste, clip);
        assertArrayEquals(ste, QuantizedGradients.build(W, HEAD, Pooling.CLS, scheme, wide, Set.of(), StraightThrough.STE)
                .gradient(S, Target.logit(0)).gradient(), "the factory builds the same model");
    }

    /** Per-channel ranges times f (a valid widening: ranges include 0 anyway). */
    private static CalibrationStats widened(CalibrationStats stats, float f) {
        CalibrationStats w = new CalibrationStats();
        stats.sites.forEach((key, s) -> {
            CalibrationStats.SiteStats c = new CalibrationStats.SiteStats();
            c.channelMin = s.channelMin.clone();
            c.channelMax = s.channelMax.clone();
            for (int i = 0; i < c.channelMin.length; i++) {
                c.channelMin[i] *= f;
                c.channelMax[i] *= f;
            }
            w.sites.put(key, c);
        });
        return w;
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void steGradientIsTheGradientWithQuantizationNoiseFrozen(boolean clipAware) {
        Scheme scheme = Scheme.parse("w8a8-pct99"); // percentile ranges: some values clip
        BertWeights qw = WeightQuantizer.apply(W, scheme.weights());
        CpuBackend cpu = new CpuBackend();
        QuantSites real = new QuantSites(new ActivationQuantizer(cpu, scheme.activations(), STATS, Set.of(), null), cpu,
                scheme.activations().grid());
        StraightThrough mode = clipAware ? StraightThrough.CLIP_AWARE : StraightThrough.STE;
        Recording rec = new Recording(real);
        Gradients q = new Gradients(qw, HEAD, Pooling.CLS, rec, mode, Precision.FLOAT64);
        double[] x0 = q.wordVectors(S);
        AttributionModel.Result r = q.gradient(S, x0, Target.logProb(1));
        assertTrue(rec.clipped() > 0, "the percentile scheme clips something");

        Gradients frozen = new Gradients(qw, HEAD, Pooling.CLS, new Frozen(rec, clipAware), StraightThrough.STE, Precision.FLOAT64);
        assertArrayEquals(r.logits(), frozen.forward(S, x0).logits(), 1e-12, "the surrogate reproduces the quantized forward at x0");
        double[] fd = new double[x0.length];
        for (int i = 0; i < x0.length; i++) fd[i] = TestModels.finiteDifference(frozen, S, x0, r.target(), i, 1e-5);
        double err = TestModels.relMaxError(r.gradient(), fd);
        System.out.printf("w8a8-pct99 %s (%d values clipped): gradient vs float64 FD of the frozen-noise surrogate, relative max error %.2e%n",
                mode, rec.clipped(), err);
        assertTrue(err < 1e-4, mode + ": relative error " + err);

        if (clipAware) {
            double[] ste = new Gradients(qw, HEAD, Pooling.CLS, real, StraightThrough.STE, Precision.FLOAT64).gradient(S, x0, r.target()).gradient();
            assertFalse(java.util.Arrays.equals(ste, r.gradient()), "clipping changes the gradient");
        }
    }

    /** Passes sites through to the real quantizer, recording each site's input, output and in-range mask. */
    static final class Recording extends QuantSites {
        final QuantSites inner;
        final Map<String, double[]> before = new HashMap<>(), after = new HashMap<>();
        final Map<String, boolean[]> inRange = new HashMap<>();

        Recording(QuantSites inner) {
            super(ActivationTransform.NONE, null, null);
            this.inner = inner;
        }

        @Override
        public boolean at(int layer, Site site) {
            return inner.at(layer, site);
        }

        @Override
        boolean[] apply(int layer, Site site, double[] x, int rows, int cols, boolean wantInRange) {
            String key = site.key(layer);
            before.put(key, x.clone());
            boolean[] m = inner.apply(layer, site, x, rows, cols, true);
            after.put(key, x.clone());
            inRange.put(key, m);
            return wantInRange ? m : null;
        }

        int clipped() {
            int n = 0;
            for (boolean[] m : inRange.values()) for (boolean b : m) if (!b) n++;
            return n;
        }
    }

    /**
     * The smooth surrogate: y = x + (fq(x0) - x0) at every quantized site, with the values recorded at x0;
     * where clipAware and x0 was clipped, y = fq(x0), a constant.
     */
    static final class Frozen extends QuantSites {
        private final Recording rec;
        private final boolean clipAware;

        Frozen(Recording rec, boolean clipAware) {
            super(ActivationTransform.NONE, null, null);
            this.rec = rec;
            this.clipAware = clipAware;
        }

        @Override
        public boolean at(int layer, Site site) {
            return rec.at(layer, site);
        }

        @Override
        boolean[] apply(int layer, Site site, double[] x, int rows, int cols, boolean wantInRange) {
            String key = site.key(layer);
            double[] b = rec.before.get(key), a = rec.after.get(key);
            boolean[] m = rec.inRange.get(key);
            for (int i = 0; i < x.length; i++) x[i] = clipAware && !m[i] ? a[i] : x[i] + (a[i] - b[i]);
            return null;
        }
    }
}
