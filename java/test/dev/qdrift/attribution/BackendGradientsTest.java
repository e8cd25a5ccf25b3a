package dev.qdrift.attribution;

import org.junit.jupiter.params.provider.CsvSource;
import dev.qdrift.model.Site;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.ActivationTransform;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.model.tokenizer.TokenBatch;
import dev.qdrift.model.tokenizer.Tokenizer;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.QuantizedEncoders;
import dev.qdrift.quant.Scheme;
import java.util.ArrayList;
import java.util.List;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * The float32 backend gradient path (here on the CPU backend; CudaGradientsTest runs it on the GPU)
 * against the float64 reference {@link Gradients}, which is itself checked against finite differences.
 *
 * <p>Tolerance 2e-4 of the largest gradient entry: both paths see the same float32 forward values up to a
 * few ulp (the same ops on a backend vs the reference's float32 rounding after each op); the backend
 * path then rounds every backward op to float32 as well, over 2 layers of a random model whose
 * gradients span about three orders of magnitude, which leaves relative errors near 1e-5 to 1e-4.
 */
class BackendGradientsTest {
    private static final double TOLERANCE = 2e-4;
    private static final BertWeights W = TestModels.small(41);
    private static final Sequence S = TestModels.sequence(9, 90);

    private static BackendGradients onCpu(LinearHead head, Pooling pooling, int maxRows) {
        return new BackendGradients(W, head, pooling, new CpuBackend(), ActivationTransform.NONE, null, StraightThrough.STE, null, maxRows);
    }

    @ParameterizedTest
    @ValueSource(strings = {"cls", "mean", "pooler"})
    void fp32GradientMatchesTheFloat64Reference(String pooling) {
        LinearHead head = TestModels.head(3, 16, 5, pooling);
        Pooling p = Pooling.parse(pooling);
        Gradients ref = new Gradients(W, head, p, QuantSites.NONE, StraightThrough.STE, Precision.FLOAT64);
        BackendGradients g = onCpu(head, p, BackendGradients.DEFAULT_MAX_ROWS);
        double[] words = perturbed(ref.wordVectors(S), 3);
        for (Target t : List.of(Target.logit(1), Target.logProb(2))) {
            AttributionModel.Result want = ref.gradient(S, words, t), got = g.gradient(S, words, t);
            assertTrue(TestModels.relMaxError(got.gradient(), want.gradient()) < TOLERANCE,
                    pooling + " " + t + ": " + TestModels.relMaxError(got.gradient(), want.gradient()));
            assertEquals(want.value(), got.value(), 1e-5 * Math.max(1, Math.abs(want.value())));
        }
        assertTrue(TestModels.relMaxError(g.forward(S).lastHidden(), ref.forward(S).lastHidden()) < 1e-5);
    }

    /** Batched steps (several device batches of a few rows) give each step's own gradient. */
    @Test
    void batchedStepsEqualSingleSteps() {
        LinearHead head = TestModels.head(2, 16, 6, "mean");
        BackendGradients g = onCpu(head, Pooling.MEAN, 2 * S.length()); // 2 steps per batch, 5 steps: 3 batches
        List<double[]> words = new ArrayList<>();
        for (int k = 0; k < 5; k++) words.add(perturbed(g.wordVectors(S), 10 + k));
        List<AttributionModel.Result> batched = g.gradients(S, words, Target.logit(0));
        assertEquals(5, batched.size());
        for (int k = 0; k < 5; k++)
            assertArrayEquals(g.gradient(S, words.get(k), Target.logit(0)).gradient(), batched.get(k).gradient(), 1e-6,
                    "step " + k);
    }

    /** Batched forwards of mixed lengths and segments (occlusion's deletions) give each sequence's own forward. */
    @Test
    void batchedForwardsEqualSingleForwards() {
        BackendGradients g = onCpu(TestModels.head(3, 16, 6, "mean"), Pooling.MEAN, 3 * S.length());
        List<Sequence> seqs = new ArrayList<>();
        for (int t = 0; t < S.length(); t++) seqs.add(S.without(t)); // one length, segment ids shifting
        seqs.add(TestModels.sequence(5, 93));
        seqs.add(S);
        List<AttributionModel.Output> batched = g.forwards(seqs);
        assertEquals(seqs.size(), batched.size());
        for (int i = 0; i < seqs.size(); i++) {
            AttributionModel.Output one = g.forward(seqs.get(i));
            assertArrayEquals(one.logits(), batched.get(i).logits(), 1e-6, "sequence " + i);
            assertArrayEquals(one.lastHidden(), batched.get(i).lastHidden(), 1e-6, "sequence " + i);
        }
    }

    /**
     * The device-side path integral equals the host-side quadrature over the same model's gradients: with the seed known
     * up front (a logit through CLS or mean pooling) and taken from the forward's logits (a log-probability; the pooler).
     */
    @ParameterizedTest
    @CsvSource({"cls,logit", "mean,logit", "mean,log-prob", "pooler,logit"})
    void pathIntegralMatchesHostQuadrature(String pooling, String target) {
        LinearHead head = TestModels.head(2, 16, 7, pooling);
        BackendGradients g = onCpu(head, Pooling.parse(pooling), 3 * S.length());
        Target t = target.equals("logit") ? Target.logit(1) : Target.logProb(1);
        double[] x = g.wordVectors(S), x0 = new double[x.length], diff = x.clone();
        Quadrature.Nodes nodes = Quadrature.nodes(Quadrature.Rule.GAUSS_LEGENDRE, 8);
        double[] device = g.pathIntegral(S, x0, diff, nodes.alphas(), nodes.weights(), t);
        AttributionModel host = new AttributionModel() { // the interface's default (host) quadrature over g's gradients
            public dev.qdrift.model.BertConfig config() { return g.config(); }
            public LinearHead head() { return g.head(); }
            public double[] wordVector(int id) { return g.wordVector(id); }
            public Output forward(Sequence s, double[] w) { return g.forward(s, w); }
            public List<Output> forwards(List<Sequence> s) { return g.forwards(s); }
            public Result gradient(Sequence s, double[] w, Target t) { return g.gradient(s, w, t); }
            public List<Result> gradients(Sequence s, List<double[]> w, Target t) { return g.gradients(s, w, t); }
        };
        double[] reference = host.pathIntegral(S, x0, diff, nodes.alphas(), nodes.weights(), t);
        assertTrue(TestModels.relMaxError(device, reference) < 1e-5, "" + TestModels.relMaxError(device, reference));
    }

    /**
     * A one-batch path integral runs on its shape's kept step batch (on the GPU, recorded and replayed from the second
     * call): each call equals the same call on a fresh model, bit for bit, whatever ran on the batch before — another
     * sequence of the length (other words, other segment ids), another target, other steps, another baseline.
     */
    @Test
    void reusedStepBatchesGiveFreshResults() {
        LinearHead head = TestModels.head(3, 16, 9, "cls");
        Sequence other = new Sequence(TestModels.sequence(S.length(), 95).ids(), new int[S.length()], S.wordIds(), null); // all segment 0
        // The trapezoid over 5 intervals has 6 nodes: the same batch shape as the Gauss-Legendre 6, other steps and weights.
        Quadrature.Nodes gauss = Quadrature.nodes(Quadrature.Rule.GAUSS_LEGENDRE, 6), trapezoid = Quadrature.nodes(Quadrature.Rule.TRAPEZOID, 5);
        BackendGradients reused = onCpu(head, Pooling.CLS, BackendGradients.DEFAULT_MAX_ROWS);
        record Call(Sequence s, boolean zeroBaseline, Quadrature.Nodes nodes, Target target) {}
        List<Call> calls = List.of(new Call(S, true, gauss, Target.logit(1)), new Call(S, true, gauss, Target.logit(1)),
                new Call(other, true, gauss, Target.logit(1)), new Call(other, false, gauss, Target.logit(2)),
                new Call(S, true, trapezoid, Target.logit(0)), new Call(S, true, gauss, Target.logit(1)));
        for (int i = 0; i < calls.size(); i++) {
            Call c = calls.get(i);
            BackendGradients fresh = onCpu(head, Pooling.CLS, BackendGradients.DEFAULT_MAX_ROWS);
            double[] x = reused.wordVectors(c.s), x0 = c.zeroBaseline ? new double[x.length] : perturbed(x, 40 + i), diff = x.clone();
            for (int j = 0; j < x.length; j++) diff[j] -= x0[j];
            assertArrayEquals(fresh.pathIntegral(c.s, x0, diff, c.nodes.alphas(), c.nodes.weights(), c.target),
                    reused.pathIntegral(c.s, x0, diff, c.nodes.alphas(), c.nodes.weights(), c.target), 0, "call " + i + ": " + c);
        }
        assertEquals(calls.size(), reused.stepBatchRuns(), "every call ran as one step batch (the path this test is about)");
    }

    /** Integrated Gradients on the backend path: completeness holds to the quadrature's accuracy. */
    @Test
    void integratedGradientsCompleteness() {
        LinearHead head = TestModels.head(2, 16, 8, "cls", 0.3);
        Attributions a = new Attributions(onCpu(head, Pooling.CLS, BackendGradients.DEFAULT_MAX_ROWS));
        Attributions.IgResult r = a.integratedGradients(S, Target.logit(0), Baseline.zero(), Quadrature.Rule.GAUSS_LEGENDRE, 32);
        double gap = Math.abs(r.targetAtInput() - r.targetAtBaseline());
        assertTrue(gap > 1e-3, "the test needs a target that moves: " + gap);
        assertTrue(Math.abs(r.delta()) < 1e-3 * Math.max(1, gap), "completeness delta " + r.delta() + " for a change of " + gap);
    }

    /** A quantized model (w8a8, straight-through): same forward as the quantized encoder, gradient as the reference's. */
    @ParameterizedTest
    @ValueSource(strings = {"w8a8", "w8a8-pt", "peg4"})
    void quantizedGradientMatchesReference(String schemeName) {
        LinearHead head = TestModels.head(2, 16, 9, "cls");
        CalibrationStats stats = calibrate();
        Scheme scheme = Scheme.parse(schemeName);
        Gradients ref = QuantizedGradients.build(W, head, Pooling.CLS, scheme, stats, Set.of(), StraightThrough.STE);
        BackendGradients g = QuantizedGradients.onBackend(W, head, Pooling.CLS, scheme, stats, Set.of(), StraightThrough.STE,
                new CpuBackend(), false);
        AttributionModel.Result want = ref.gradient(S, Target.logit(1)), got = g.gradient(S, Target.logit(1));
        assertArrayEquals(want.logits(), got.logits(), 1e-5);
        assertTrue(TestModels.relMaxError(got.gradient(), want.gradient()) < TOLERANCE, "" + TestModels.relMaxError(got.gradient(), want.gradient()));
    }

    /**
     * The clipping-aware STE on a backend against the float64 reference's, calibrated on a sequence other than the
     * one differentiated (short: narrow ranges) so that its activations leave the static ranges: the masks must act
     * (the gradient differs from the plain STE's by far more than from the reference) and match the reference's.
     * Mean pooling, so that every token's rows of the last layer carry gradient (with CLS only row 0 does, and the
     * residual sites' masks barely show); "residuals" keeps every other site FP32, so only the residual-sum masks
     * act. Dynamic per-token ranges never clip. Also IG's batched steps.
     */
    @ParameterizedTest
    @CsvSource({"w8a8,mean,all", "w8a8,cls,all", "peg4,mean,all", "w8a8,mean,residuals", "w8a8-pt,mean,all"})
    void clippingAwareMatchesReference(String schemeName, String pooling, String sites) {
        LinearHead head = TestModels.head(2, 16, 9, pooling);
        Pooling p = Pooling.parse(pooling);
        CalibrationStats stats = calibrate(List.of(TestModels.sequence(5, 91)));
        Scheme scheme = Scheme.parse(schemeName);
        Set<String> fp32 = new HashSet<>();
        if (sites.equals("residuals")) {
            fp32.add(Site.EMBEDDINGS.key(-1));
            for (int l = 0; l < W.config().layers(); l++)
                for (Site site : List.of(Site.ATTENTION_CONTEXT, Site.ATTENTION_NORM, Site.INTERMEDIATE, Site.OUTPUT_NORM)) fp32.add(site.key(l));
        }
        Gradients ref = QuantizedGradients.build(W, head, p, scheme, stats, fp32, StraightThrough.CLIP_AWARE);
        BackendGradients clip = QuantizedGradients.onBackend(W, head, p, scheme, stats, fp32, StraightThrough.CLIP_AWARE, new CpuBackend(), false);
        BackendGradients ste = QuantizedGradients.onBackend(W, head, p, scheme, stats, fp32, StraightThrough.STE, new CpuBackend(), false);
        double[] want = ref.gradient(S, Target.logit(1)).gradient(), got = clip.gradient(S, Target.logit(1)).gradient(),
                plain = ste.gradient(S, Target.logit(1)).gradient();
        double vsRef = TestModels.relMaxError(got, want), vsSte = TestModels.relMaxError(got, plain);
        String what = schemeName + ", " + pooling + ", " + sites + " sites";
        System.out.printf("  %s clipping-aware: vs float64 reference %.2e, vs plain STE %.2e%n", what, vsRef, vsSte);
        assertTrue(vsRef < TOLERANCE, what + ": clipping-aware vs the float64 reference " + vsRef);
        if (schemeName.endsWith("-pt")) assertEquals(0.0, vsSte, what + ": per-token ranges never clip");
        else assertTrue(vsSte > 100 * vsRef, what + ": the masks must act, and as the reference's do (vs STE " + vsSte + ")");

        Quadrature.Nodes nodes = Quadrature.nodes(Quadrature.Rule.GAUSS_LEGENDRE, 6);
        double[] x = clip.wordVectors(S), x0 = new double[x.length];
        double[] device = clip.pathIntegral(S, x0, x, nodes.alphas(), nodes.weights(), Target.logit(1)),
                host = ref.pathIntegral(S, x0, x, nodes.alphas(), nodes.weights(), Target.logit(1));
        assertTrue(TestModels.relMaxError(device, host) < TOLERANCE, what + ": IG-6 path integral " + TestModels.relMaxError(device, host));
    }

    @Test
    void badInputsAreRefused() {
        BackendGradients g = onCpu(TestModels.head(2, 16, 9, "cls"), Pooling.CLS, 64);
        assertThrows(IllegalArgumentException.class, () -> g.gradient(S, new double[5], Target.logit(0)));
        assertThrows(QdriftException.class, () -> g.gradient(Sequence.ofIds(1, 2, 999), Target.logit(0)));
        assertThrows(IllegalArgumentException.class, () -> g.gradient(S, Target.logit(7)));
    }

    private static CalibrationStats calibrate() {
        return calibrate(List.of(S, TestModels.sequence(7, 91), TestModels.sequence(11, 92)));
    }

    private static CalibrationStats calibrate(List<Sequence> sample) {
        CalibrationStats stats = new CalibrationStats();
        Tokenizer.Encoded[] enc = sample.stream()
                .map(s -> new Tokenizer.Encoded(s.ids(), s.typeIds(), s.wordIds(), new String[s.length()], false))
                .toArray(Tokenizer.Encoded[]::new);
        QuantizedEncoders.calibrate(new Encoder(W, new CpuBackend()), List.of(TokenBatch.pad(enc)), stats);
        return stats;
    }

    private static double[] perturbed(double[] words, long seed) {
        Random r = new Random(seed);
        double[] w = words.clone();
        for (int i = 0; i < w.length; i++) w[i] += 0.3 * r.nextGaussian();
        return w;
    }

    /** The FP16 products' seed scale: a power of two that puts the seed's largest |value| in [2^e, 2^(e+1)); 1 for a zero seed. */
    @Test
    void seedScaleBringsTheLargestValueToTheExponent() {
        assertEquals(128.0, seedScale(new float[] {0.05f, -0.2f, 0f})); // 0.2 = 1.6 x 2^-3: 2^(4+3)
        assertEquals(0.25, seedScale(new float[] {-64f, 3f}));
        assertEquals(1.0, seedScale(new float[] {0f, -0f}));
        assertEquals(0x1p64, seedScale(new float[] {1e-35f}), "clamped to 2^64");
        float[] seed = new float[100];
        Random r = new Random(4);
        for (int i = 0; i < seed.length; i++) seed[i] = (float) (r.nextGaussian() * Math.scalb(1.0, r.nextInt(40) - 20));
        double scale = seedScale(seed), max = 0;
        for (float x : seed) max = Math.max(max, Math.abs(x * scale));
        assertTrue(max >= 16 && max < 32, "scaled max " + max);
        assertEquals(0, Math.getExponent(scale) - Math.log(scale) / Math.log(2), 1e-12, "a power of two");
    }

    /**
     * The FP16 products' seed scaling, its bookkeeping checked on the CPU: a CPU backend whose gradient ops claim FP16
     * products (everything else as it is) scales each row's seed by a power of two and must divide it out again, in
     * gradient(), gradients() (rows with different scales: log-probabilities along a path) and a path integral over
     * several batches. Scaling by powers of two is exact in float32, so the results equal the unscaled ones.
     */
    @ParameterizedTest
    @CsvSource({"cls,logit", "mean,log-prob", "pooler,logit", "pooler,log-prob"})
    void seedScalingIsDividedOutExactly(String pooling, String target) {
        LinearHead head = TestModels.head(2, 16, 7, pooling);
        Pooling p = Pooling.parse(pooling);
        int maxRows = 3 * S.length();
        BackendGradients plain = onCpu(head, p, maxRows), scaled = new BackendGradients(W, head, p, claimingHalfProducts(new CpuBackend()),
                ActivationTransform.NONE, null, StraightThrough.STE, null, maxRows);
        Target t = target.equals("logit") ? Target.logit(1) : Target.logProb(0);
        double[] x = plain.wordVectors(S), x0 = new double[x.length];
        assertArrayEquals(plain.gradient(S, x, t).gradient(), scaled.gradient(S, x, t).gradient(), 0, "gradient");
        List<double[]> steps = new ArrayList<>();
        for (double a : new double[] {0.01, 0.3, 1, 0.7}) {
            double[] w = x.clone();
            for (int i = 0; i < w.length; i++) w[i] *= a;
            steps.add(w);
        }
        List<AttributionModel.Result> want = plain.gradients(S, steps, t), got = scaled.gradients(S, steps, t);
        for (int k = 0; k < steps.size(); k++) assertArrayEquals(want.get(k).gradient(), got.get(k).gradient(), 0, "gradients, step " + k);
        Quadrature.Nodes nodes = Quadrature.nodes(Quadrature.Rule.GAUSS_LEGENDRE, 8); // 3 steps per batch: 3 batches
        assertArrayEquals(plain.pathIntegral(S, x0, x, nodes.alphas(), nodes.weights(), t),
                scaled.pathIntegral(S, x0, x, nodes.alphas(), nodes.weights(), t), 0, "path integral");
        assertEquals(0, scaled.halfOverflows());
    }

    /** A CPU backend whose gradient ops say they round products to FP16 (they do not): BackendGradients then scales seeds. */
    private static dev.qdrift.backend.Backend claimingHalfProducts(CpuBackend cpu) {
        dev.qdrift.backend.GradientOps ops = cpu.gradientOps();
        dev.qdrift.backend.GradientOps claiming = (dev.qdrift.backend.GradientOps) java.lang.reflect.Proxy.newProxyInstance(
                BackendGradientsTest.class.getClassLoader(), new Class<?>[] {dev.qdrift.backend.GradientOps.class},
                (proxy, m, args) -> m.getName().equals("halfProducts") ? Boolean.TRUE : invoke(m, ops, args));
        return (dev.qdrift.backend.Backend) java.lang.reflect.Proxy.newProxyInstance(BackendGradientsTest.class.getClassLoader(),
                new Class<?>[] {dev.qdrift.backend.Backend.class},
                (proxy, m, args) -> m.getName().equals("gradientOps") ? claiming : invoke(m, cpu, args));
    }

    private static Object invoke(java.lang.reflect.Method m, Object target, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** BackendGradients.seedScale over the whole array, e = 4. */
    private static double seedScale(float[] seed) {
        return BackendGradients.seedScale(seed, 0, seed.length, 4);
    }
}
