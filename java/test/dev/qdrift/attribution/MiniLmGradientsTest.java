package dev.qdrift.attribution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.ModelLoader;
import dev.qdrift.model.Pooling;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link Gradients} on builtin:minilm (all-MiniLM-L6-v2) with a real sentence and a random 2-class head
 * (weights N(0, 0.05^2), logits of order 0.1) on its mean-pooled embedding: forward against the encoder, gradient against finite differences at a
 * few coordinates (the largest gradient component of several tokens).
 */
class MiniLmGradientsTest {
    private static final String SENTENCE = "The film was surprisingly good, but the ending felt rushed.";
    private static Model model;
    private static Sequence seq;
    private static Gradients g32;

    @BeforeAll
    static void load() {
        model = ModelLoader.load("builtin:minilm");
        seq = Sequence.of(model.tokenizer().encode(SENTENCE, null));
        g32 = Gradients.fp32(model.weights(), TestModels.head(2, 384, 3, "mean", 0.05), Pooling.MEAN);
    }

    @Test
    void forwardAgreesWithEncoder() {
        Encoder.Output ref = TestModels.encoderOutput(new Encoder(model.weights(), new CpuBackend()), seq, Pooling.MEAN);
        AttributionModel.Output out = g32.forward(seq);
        double hidden = TestModels.relMaxError(out.lastHidden(), ref.lastHidden()), pooled = TestModels.relMaxError(out.pooled(), ref.pooled());
        System.out.printf("minilm forward vs Encoder: last hidden %.2e, pooled %.2e (relative max error)%n", hidden, pooled);
        assertTrue(hidden < 1e-5 && pooled < 1e-5);
    }

    /**
     * float64 forward, step 1e-4: relative error <= 1e-4 per coordinate. float32 forward (activations
     * rounded to float32 between ops, as deployed), step 1e-2: its differences carry float32 rounding
     * noise (~1e-7 / 1e-2) and curvature (~step^2) errors, so 1e-3 relative (measured: ~1e-8 and ~1e-4).
     */
    @Test
    void gradientMatchesFiniteDifferences() {
        Gradients g64 = g32.withPrecision(Precision.FLOAT64);
        double[] x = g64.wordVectors(seq);
        AttributionModel.Result r64 = g64.gradient(seq, x, Target.predictedLogProb());
        AttributionModel.Result r32 = g32.gradient(seq, x, r64.target());
        int h = 384;
        double worst64 = 0, worst32 = 0;
        for (int t : new int[] {1, 3, seq.length() / 2, seq.length() - 2}) {
            int best = t * h;
            for (int i = t * h; i < (t + 1) * h; i++) if (Math.abs(r64.gradient()[i]) > Math.abs(r64.gradient()[best])) best = i;
            double fd64 = TestModels.finiteDifference(g64, seq, x, r64.target(), best, 1e-4);
            double fd32 = TestModels.finiteDifference(g32, seq, x, r64.target(), best, 1e-2);
            worst64 = Math.max(worst64, Math.abs(r64.gradient()[best] - fd64) / Math.abs(fd64));
            worst32 = Math.max(worst32, Math.abs(r32.gradient()[best] - fd32) / Math.abs(fd32));
        }
        double vs64 = TestModels.relMaxError(r32.gradient(), r64.gradient());
        System.out.printf("minilm gradient vs FD: float64 %.2e, float32 %.2e; float32 vs float64 gradient %.2e%n", worst64, worst32, vs64);
        assertTrue(worst64 < 1e-4, "float64: " + worst64);
        assertTrue(worst32 < 1e-3, "float32: " + worst32);
        assertTrue(vs64 < 1e-3, "float32 vs float64 gradient: " + vs64);
    }

    @Test
    void baselineTokenIds() {
        assertEquals(0, Baseline.specialTokenId(model.tokenizer(), "[PAD]"));
        assertEquals(103, Baseline.specialTokenId(model.tokenizer(), "[MASK]"));
    }

    /** [PAD] baseline, 16 Gauss–Legendre steps: completeness within 1e-2 relative (measured ~1e-3; 32 steps give ~2e-4). */
    @Test
    void integratedGradientsOnARealSentence() {
        Attributions a = new Attributions(g32);
        long t0 = System.nanoTime();
        Attributions.IgResult r = a.integratedGradients(seq, Target.predictedLogProb(), Baseline.pad(model.tokenizer()),
                Quadrature.Rule.GAUSS_LEGENDRE, 16);
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("minilm IG-16 (%d tokens): %.1f s, delta %.2e (relative %.2e), words %s%n", seq.length(), s, r.delta(),
                r.relativeDelta(), r.scores().wordTexts(false));
        assertTrue(r.relativeDelta() < 1e-2, "relative delta " + r.relativeDelta());
    }
}
