package dev.qdrift.attribution;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Token attributions of one model ({@link AttributionModel}: FP32 or quantized, CPU or GPU) for one sequence: saliency,
 * gradient × input, Integrated Gradients, occlusion by deletion and logit shift. A predicted target is
 * resolved once, on the actual input, and that class is explained throughout (every IG step, every
 * deletion). To compare two models on the same class, resolve the target on one and pass it to both.
 */
public final class Attributions {
    private final AttributionModel model;

    public Attributions(AttributionModel model) {
        this.model = model;
    }

    public AttributionModel model() {
        return model;
    }

    /** The target with a predicted class fixed on the sequence's actual input. */
    public Target resolve(Sequence s, Target target) {
        return target.isPredicted() ? target.resolve(model.forward(s).logits()) : target;
    }

    // ---- saliency, gradient × input -------------------------------------------------------------------

    /** Per token: the gradient's L2 norm over the hidden dimension, and its signed sum. */
    public record Saliency(Target target, TokenScores l2, TokenScores signedSum) {}

    public Saliency saliency(Sequence s, Target target) {
        AttributionModel.Result r = model.gradient(s, target);
        int h = model.config().hidden();
        double[] l2 = new double[s.length()], sum = new double[s.length()];
        for (int t = 0; t < s.length(); t++) {
            for (int d = 0; d < h; d++) {
                double v = r.gradient()[t * h + d];
                l2[t] += v * v;
                sum[t] += v;
            }
            l2[t] = Math.sqrt(l2[t]);
        }
        return new Saliency(r.target(), new TokenScores(s, l2), new TokenScores(s, sum));
    }

    /** Gradient × input, summed over the hidden dimension: Σ_d v_td ∂F/∂v_td (input = the word vectors). */
    public record GradientTimesInput(Target target, TokenScores scores) {}

    public GradientTimesInput gradientTimesInput(Sequence s, Target target) {
        double[] words = model.wordVectors(s);
        AttributionModel.Result r = model.gradient(s, words, target);
        return new GradientTimesInput(r.target(), new TokenScores(s, perToken(multiply(r.gradient(), words))));
    }

    // ---- Integrated Gradients ----------------------------------------------------------------------

    /**
     * @param attribution (x - x') ⊙ Σ_k w_k ∇F(x' + α_k (x - x')) [seq, hidden]; scores: its sum per token
     * @param steps the rule's n; evaluations: gradients computed (n, or n + 1 for the trapezoid; summed over adaptive rounds)
     * @param delta completeness error Σ attribution - (F(x) - F(x')): tends to 0 with the steps for a smooth (FP32)
     *     model. For a quantized model F(x) and F(x') are the quantized forward's values while the gradients are STE
     *     surrogates, so delta stays away from 0: it measures how far the STE attribution is from explaining F.
     * @param converged adaptive mode: whether |delta| reached the tolerance (always true otherwise)
     */
    public record IgResult(Target target, Baseline baseline, Quadrature.Rule rule, int steps, int evaluations, TokenScores scores,
                           double[] attribution, double targetAtInput, double targetAtBaseline, double delta, boolean converged) {
        /** |delta| / |F(x) - F(x')|. */
        public double relativeDelta() {
            return Math.abs(delta) / Math.abs(targetAtInput - targetAtBaseline);
        }
    }

    public IgResult integratedGradients(Sequence s, Target target, Baseline baseline, Quadrature.Rule rule, int steps) {
        return integratedGradients(s, resolve(s, target), baseline, rule, steps, 0);
    }

    /**
     * Integrated Gradients, doubling the steps from startSteps until |delta| <= tolerance or the next
     * doubling would pass maxSteps; returns the last round (converged says which). Each round is
     * computed afresh (Gauss–Legendre nodes do not nest).
     */
    public IgResult integratedGradientsAdaptive(Sequence s, Target target, Baseline baseline, Quadrature.Rule rule, int startSteps,
                                                double tolerance, int maxSteps) {
        Target t = resolve(s, target);
        int evaluations = 0;
        for (int n = startSteps; ; n *= 2) {
            IgResult r = integratedGradients(s, t, baseline, rule, n, evaluations);
            evaluations = r.evaluations();
            boolean ok = Math.abs(r.delta()) <= tolerance;
            if (ok || 2L * n > maxSteps)
                return new IgResult(r.target(), baseline, rule, n, evaluations, r.scores(), r.attribution(), r.targetAtInput(),
                        r.targetAtBaseline(), r.delta(), ok);
        }
    }

    private IgResult integratedGradients(Sequence s, Target t, Baseline baseline, Quadrature.Rule rule, int steps, int priorEvaluations) {
        double[] x = model.wordVectors(s), x0 = baseline.wordVectors(model, s), diff = new double[x.length];
        for (int i = 0; i < x.length; i++) diff[i] = x[i] - x0[i];
        Quadrature.Nodes nodes = Quadrature.nodes(rule, steps);
        double[] integral = model.pathIntegral(s, x0, diff, nodes.alphas(), nodes.weights(), t);
        double[] attribution = multiply(diff, integral);
        double fx = t.value(model.forward(s, x).logits()), f0 = t.value(model.forward(s, x0).logits());
        double total = 0;
        for (double a : attribution) total += a;
        return new IgResult(t, baseline, rule, steps, priorEvaluations + nodes.size(), new TokenScores(s, perToken(attribution)),
                attribution, fx, f0, total - (fx - f0), true);
    }

    // ---- occlusion, logit shift ---------------------------------------------------------------------

    /**
     * Deleting each token in turn (later tokens move up a position; nothing is re-tokenized).
     *
     * @param drop F(x) - F(x without t): the target's fall when t is removed (occlusion attribution)
     * @param logitShift z_c(x) - z_c(x without t): the fall of the target class's logit, whatever the target's kind
     */
    public record Occlusion(Target target, double targetAtInput, TokenScores drop, TokenScores logitShift) {}

    /** Special tokens are not deleted (NaN) unless includeSpecial; a one-token sequence gives NaN. */
    public Occlusion occlusion(Sequence s, Target target, boolean includeSpecial) {
        double[] full = model.forward(s).logits();
        Target t = target.resolve(full);
        List<Integer> deleted = new ArrayList<>();
        List<Sequence> shorter = new ArrayList<>();
        for (int i = 0; i < s.length() && s.length() > 1; i++) {
            if (s.isSpecial(i) && !includeSpecial) continue;
            deleted.add(i);
            shorter.add(s.without(i));
        }
        List<AttributionModel.Output> outs = model.forwards(shorter);
        double[] drop = new double[s.length()], shift = new double[s.length()];
        Arrays.fill(drop, Double.NaN);
        Arrays.fill(shift, Double.NaN);
        double fx = t.value(full);
        for (int j = 0; j < deleted.size(); j++) {
            double[] z = outs.get(j).logits();
            drop[deleted.get(j)] = fx - t.value(z);
            shift[deleted.get(j)] = full[t.classIndex()] - z[t.classIndex()];
        }
        return new Occlusion(t, fx, new TokenScores(s, drop), new TokenScores(s, shift));
    }

    // ---- helpers ----------------------------------------------------------------------------------

    private static double[] multiply(double[] a, double[] b) {
        double[] r = new double[a.length];
        for (int i = 0; i < a.length; i++) r[i] = a[i] * b[i];
        return r;
    }

    /** Sum over the hidden dimension of a [seq, hidden] array. */
    private double[] perToken(double[] a) {
        int h = model.config().hidden(), seq = a.length / h;
        double[] r = new double[seq];
        for (int t = 0; t < seq; t++) for (int d = 0; d < h; d++) r[t] += a[t * h + d];
        return r;
    }
}
