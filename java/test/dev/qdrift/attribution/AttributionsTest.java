package dev.qdrift.attribution;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Pooling;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link Attributions} on a small random BERT. */
class AttributionsTest {
    private static final BertWeights W = TestModels.small(21);
    private static final Gradients MODEL = Gradients.fp32(W, TestModels.head(3, 16, 5, "mean"), Pooling.MEAN);
    private static final Attributions ATTR = new Attributions(MODEL);

    /** [CLS] w0 w1(two pieces) w2 [SEP]: ids from the random vocabulary, special tokens marked by word id -1. */
    private static final Sequence S = new Sequence(new int[] {2, 17, 30, 31, 8, 3}, new int[6], new int[] {-1, 0, 1, 1, 2, -1},
            new String[] {"[CLS]", "good", "fil", "##m", "!", "[SEP]"});

    private static final List<Baseline> BASELINES = List.of(Baseline.zero(), Baseline.pad(0), Baseline.mask(4));

    @Test
    void completenessAt64GaussLegendreSteps() {
        for (Baseline b : BASELINES) {
            Attributions.IgResult r = ATTR.integratedGradients(S, Target.predictedLogProb(), b, Quadrature.Rule.GAUSS_LEGENDRE, 64);
            assertEquals(64, r.evaluations());
            System.out.printf("random model, IG-64 Gauss-Legendre, %s baseline: delta %.2e, relative %.2e%n", b.name(), r.delta(), r.relativeDelta());
            assertTrue(r.relativeDelta() < 1e-2, b.name() + ": relative delta " + r.relativeDelta());
            double sum = 0;
            for (double v : r.scores().values()) sum += v;
            assertEquals(r.targetAtInput() - r.targetAtBaseline() + r.delta(), sum, 1e-9, "token scores carry the whole attribution");
            // Special tokens keep their own vectors in the baseline: x - x' = 0 there.
            assertEquals(0.0, r.scores().values()[0]);
            assertEquals(0.0, r.scores().values()[5]);
        }
    }

    /** Completeness error falls as steps grow (float64 model, so float32 rounding does not set a floor). */
    @ParameterizedTest
    @EnumSource(Quadrature.Rule.class)
    void completenessErrorDecreasesWithSteps(Quadrature.Rule rule) {
        Attributions a = new Attributions(MODEL.withPrecision(Precision.FLOAT64));
        Target t = a.resolve(S, Target.predictedLogit());
        double previous = Double.POSITIVE_INFINITY;
        int[] steps = rule == Quadrature.Rule.GAUSS_LEGENDRE ? new int[] {1, 2, 4} : new int[] {2, 4, 8, 16};
        for (int n : steps) {
            double d = Math.abs(a.integratedGradients(S, t, Baseline.zero(), rule, n).delta());
            System.out.printf("random model, float64, %s, %d steps: |delta| %.2e%n", rule, n, d);
            assertTrue(d < previous, rule + ": |delta| " + d + " at " + n + " steps, " + previous + " before");
            previous = d;
        }
    }

    @Test
    void adaptiveDoublesUntilTheTolerance() {
        Attributions a = new Attributions(MODEL.withPrecision(Precision.FLOAT64));
        Attributions.IgResult r = a.integratedGradientsAdaptive(S, Target.logit(1), Baseline.zero(), Quadrature.Rule.TRAPEZOID, 2, 1e-4, 256);
        assertTrue(r.converged());
        assertTrue(Math.abs(r.delta()) <= 1e-4);
        Attributions.IgResult capped = a.integratedGradientsAdaptive(S, Target.logit(1), Baseline.zero(), Quadrature.Rule.LEFT, 2, 1e-30, 8);
        assertFalse(capped.converged());
        assertEquals(8, capped.steps());
        assertEquals(2 + 4 + 8, capped.evaluations());
    }

    @Test
    void saliencyAndGradientTimesInputFromTheGradient() {
        AttributionModel.Result g = MODEL.gradient(S, Target.logProb(2));
        double[] x = MODEL.wordVectors(S);
        Attributions.Saliency sal = ATTR.saliency(S, Target.logProb(2));
        Attributions.GradientTimesInput gxi = ATTR.gradientTimesInput(S, Target.logProb(2));
        for (int t = 0; t < S.length(); t++) {
            double l2 = 0, sum = 0, dot = 0;
            for (int d = 0; d < 16; d++) {
                double v = g.gradient()[t * 16 + d];
                l2 += v * v;
                sum += v;
                dot += v * x[t * 16 + d];
            }
            assertEquals(Math.sqrt(l2), sal.l2().values()[t], 1e-12);
            assertEquals(sum, sal.signedSum().values()[t], 1e-12);
            assertEquals(dot, gxi.scores().values()[t], 1e-12);
        }
    }

    @Test
    void occlusionDeletesEachWordpiece() {
        Attributions.Occlusion o = ATTR.occlusion(S, Target.predictedLogProb(), false);
        double[] full = MODEL.forward(S).logits();
        int c = o.target().classIndex();
        assertTrue(Double.isNaN(o.drop().values()[0]) && Double.isNaN(o.drop().values()[5]), "special tokens are not deleted");
        for (int t = 1; t <= 4; t++) {
            double[] z = MODEL.forward(S.without(t)).logits();
            assertEquals(o.target().value(full) - o.target().value(z), o.drop().values()[t], 1e-12);
            assertEquals(full[c] - z[c], o.logitShift().values()[t], 1e-12);
        }
        assertEquals(4, o.drop().tokens(false).length);
        assertEquals(3, o.drop().words().length);
    }

    @Test
    void wordsSumWordpiecesAndSkipSpecialTokens() {
        TokenScores s = new TokenScores(S, new double[] {10, 1, 2, 3, 4, 20});
        assertArrayEquals(new double[] {1, 5, 4}, s.words());
        assertArrayEquals(new double[] {10, 1, 5, 4, 20}, s.words(true));
        assertArrayEquals(new double[] {1, 2, 3, 4}, s.tokens(false));
        assertEquals(List.of("good", "film", "!"), s.wordTexts(false));
        // Pairs number words per segment: word 0 of segment 1 is not word 0 of segment 0.
        Sequence pair = new Sequence(new int[] {2, 5, 6, 3, 7, 8, 3}, new int[] {0, 0, 0, 0, 1, 1, 1},
                new int[] {-1, 0, 1, -1, 0, 0, -1}, null);
        assertArrayEquals(new double[] {1, 2, 9}, new TokenScores(pair, new double[] {0, 1, 2, 0, 4, 5, 0}).words());
    }
}
