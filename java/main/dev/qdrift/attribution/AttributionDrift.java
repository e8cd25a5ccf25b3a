package dev.qdrift.attribution;

import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.IntStream;
import org.apache.commons.math3.stat.correlation.KendallsCorrelation;
import org.apache.commons.math3.stat.correlation.SpearmansCorrelation;

/**
 * How far one example's attributions moved between two models (FP32 vs a quantized one), over the
 * same tokens or words in the same order. Correlations are NaN when either vector is constant (no
 * ranking to compare), cosine when either is zero.
 */
public final class AttributionDrift {
    private AttributionDrift() {}

    /**
     * @param top1 Jaccard overlap of the top-1 sets by |attribution| ({@link #topKJaccard}); top3, top5 likewise (k capped at n)
     */
    public record Metrics(int n, double spearman, double kendallTauB, double top1, double top3, double top5, double signAgreement,
                          double cosine) {}

    public static Metrics compare(double[] a, double[] b) {
        check(a, b);
        return new Metrics(a.length, spearman(a, b), kendallTauB(a, b), topKJaccard(a, b, 1), topKJaccard(a, b, 3), topKJaccard(a, b, 5),
                signAgreement(a, b), cosine(a, b));
    }

    /** Spearman's ρ: Pearson correlation of the ranks, tied values sharing their average rank (commons-math3's default). */
    public static double spearman(double[] a, double[] b) {
        check(a, b);
        if (a.length < 2) return Double.NaN;
        return new SpearmansCorrelation().correlation(a, b);
    }

    /**
     * Kendall's τ-b = (concordant - discordant) / sqrt((n0 - ties in a) (n0 - ties in b)), n0 = n(n-1)/2:
     * ties in either vector count as neither concordant nor discordant, and the denominator discounts
     * them (commons-math3's KendallsCorrelation computes τ-b).
     */
    public static double kendallTauB(double[] a, double[] b) {
        check(a, b);
        if (a.length < 2) return Double.NaN;
        return new KendallsCorrelation().correlation(a, b);
    }

    /**
     * |A ∩ B| / |A ∪ B| of the k positions with the largest |value| in each vector (k capped at n).
     * Equal magnitudes are ranked by position, the earlier first, so the sets are deterministic.
     */
    public static double topKJaccard(double[] a, double[] b, int k) {
        check(a, b);
        if (k < 1) throw new IllegalArgumentException("k must be >= 1, got " + k);
        if (a.length == 0) return Double.NaN;
        Set<Integer> ta = topK(a, k), tb = topK(b, k), union = new HashSet<>(ta);
        union.addAll(tb);
        ta.retainAll(tb);
        return (double) ta.size() / union.size();
    }

    static Set<Integer> topK(double[] v, int k) {
        Set<Integer> s = new HashSet<>();
        IntStream.range(0, v.length).boxed()
                .sorted(Comparator.comparingDouble((Integer i) -> -Math.abs(v[i])).thenComparingInt(i -> i))
                .limit(Math.min(k, v.length)).forEach(s::add);
        return s;
    }

    /** Fraction of positions whose signs agree (signum: zero is a sign of its own). */
    public static double signAgreement(double[] a, double[] b) {
        check(a, b);
        if (a.length == 0) return Double.NaN;
        int same = 0;
        for (int i = 0; i < a.length; i++) if (Math.signum(a[i]) == Math.signum(b[i])) same++;
        return (double) same / a.length;
    }

    public static double cosine(double[] a, double[] b) {
        check(a, b);
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += a[i] * b[i];
            aa += a[i] * a[i];
            bb += b[i] * b[i];
        }
        return aa == 0 || bb == 0 ? Double.NaN : ab / Math.sqrt(aa * bb);
    }

    /** Elementwise a - b (e.g. the FP32 logit shifts minus the quantized model's). */
    public static double[] difference(double[] a, double[] b) {
        check(a, b);
        double[] d = new double[a.length];
        Arrays.setAll(d, i -> a[i] - b[i]);
        return d;
    }

    private static void check(double[] a, double[] b) {
        if (a.length != b.length) throw new IllegalArgumentException("attribution vectors of different lengths: " + a.length + " vs " + b.length);
        for (int i = 0; i < a.length; i++)
            if (Double.isNaN(a[i]) || Double.isNaN(b[i]))
                throw new IllegalArgumentException("NaN attribution at position " + i + " (occlusion leaves special tokens NaN: compare tokens(false) or words())");
    }
}
