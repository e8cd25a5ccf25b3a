package dev.qdrift.metrics;

import org.apache.commons.math3.random.MersenneTwister;
import org.apache.commons.math3.stat.descriptive.rank.Percentile;

/**
 * Accuracy-style metrics for integer class predictions. Nothing here assumes the first array is
 * human-labelled gold: passing FP32 predictions as "gold" and INT8 predictions as "predicted" gives
 * the agreement between the two models, its bootstrap interval and the flip matrix.
 */
public final class Classification {
    private Classification() {}

    /** Fraction of positions where predicted equals gold. */
    public static double accuracy(int[] gold, int[] predicted) {
        checkPaired(gold, predicted);
        int hits = 0;
        for (int i = 0; i < gold.length; i++) if (gold[i] == predicted[i]) hits++;
        return (double) hits / gold.length;
    }

    /** Fraction of positions where two prediction sequences agree; symmetric, same as {@link #accuracy}. */
    public static double agreement(int[] a, int[] b) {
        return accuracy(a, b);
    }

    /** Counts indexed [gold][predicted]. */
    public static int[][] confusion(int[] gold, int[] predicted, int numClasses) {
        checkPaired(gold, predicted);
        if (numClasses < 1) throw new IllegalArgumentException("numClasses must be >= 1, got " + numClasses);
        int[][] m = new int[numClasses][numClasses];
        for (int i = 0; i < gold.length; i++) {
            checkLabel(gold[i], numClasses, "gold", i);
            checkLabel(predicted[i], numClasses, "predicted", i);
            m[gold[i]][predicted[i]]++;
        }
        return m;
    }

    /**
     * Recall of each gold class: correct / examples of that class. NaN where a class has no gold
     * examples, because 0 or 1 there would be an invented number.
     */
    public static double[] perClassAccuracy(int[] gold, int[] predicted, int numClasses) {
        return perClassAccuracy(confusion(gold, predicted, numClasses));
    }

    private static double[] perClassAccuracy(int[][] confusion) {
        double[] r = new double[confusion.length];
        for (int c = 0; c < confusion.length; c++) {
            long total = 0;
            for (int v : confusion[c]) total += v;
            r[c] = total == 0 ? Double.NaN : (double) confusion[c][c] / total;
        }
        return r;
    }

    /**
     * Percentile-bootstrap confidence interval of the accuracy: resample the n (gold, predicted)
     * pairs with replacement {@code resamples} times and take the (1-level)/2 and (1+level)/2
     * percentiles of the resampled accuracies.
     *
     * @param level e.g. 0.95
     * @param seed fixes the resampling, so the same inputs and seed give the same interval
     * @return {low, high}
     */
    public static double[] bootstrapAccuracyCi(int[] gold, int[] predicted, int resamples, double level, long seed) {
        checkPaired(gold, predicted);
        boolean[] hit = new boolean[gold.length];
        for (int i = 0; i < gold.length; i++) hit[i] = gold[i] == predicted[i];
        return bootstrapProportionCi(hit, resamples, level, seed);
    }

    /**
     * Percentile-bootstrap confidence interval of the fraction of true entries (accuracy,
     * agreement, flip rate ...); see {@link #bootstrapAccuracyCi}.
     */
    public static double[] bootstrapProportionCi(boolean[] success, int resamples, double level, long seed) {
        if (success.length == 0) throw new IllegalArgumentException("no examples");
        if (resamples < 1) throw new IllegalArgumentException("resamples must be >= 1, got " + resamples);
        if (!(level > 0 && level < 1)) throw new IllegalArgumentException("level must be in (0, 1), got " + level);
        int n = success.length;
        // Mersenne Twister from commons-math3: a fixed, documented generator, so intervals stay
        // reproducible across JDK versions.
        MersenneTwister rng = new MersenneTwister(seed);
        double[] stats = new double[resamples];
        for (int r = 0; r < resamples; r++) {
            int hits = 0;
            for (int i = 0; i < n; i++) if (success[rng.nextInt(n)]) hits++;
            stats[r] = (double) hits / n;
        }
        Percentile p = new Percentile();
        p.setData(stats);
        double tail = (1 - level) / 2 * 100;
        return new double[] {p.evaluate(tail), p.evaluate(100 - tail)};
    }

    /** Accuracy with its bootstrap interval, per-class recall and confusion; no mean logits. */
    public static ClassificationReport report(int[] gold, int[] predicted, int numClasses, int resamples, double level, long seed) {
        return report(gold, predicted, numClasses, resamples, level, seed, null);
    }

    /**
     * As {@link #report(int[], int[], int, int, double, long)}, also averaging the per-example
     * logits [n][numClasses] when given (null to skip).
     */
    public static ClassificationReport report(int[] gold, int[] predicted, int numClasses, int resamples, double level, long seed,
                                              float[][] logits) {
        int[][] confusion = confusion(gold, predicted, numClasses);
        double[] ci = bootstrapAccuracyCi(gold, predicted, resamples, level, seed);
        double[] meanLogits = null;
        if (logits != null) {
            if (logits.length != gold.length) {
                throw new IllegalArgumentException(logits.length + " logit rows for " + gold.length + " examples");
            }
            meanLogits = new double[numClasses];
            for (int i = 0; i < logits.length; i++) {
                if (logits[i].length != numClasses) {
                    throw new IllegalArgumentException("logit row " + i + " has " + logits[i].length + " values for " + numClasses + " classes");
                }
                for (int c = 0; c < numClasses; c++) meanLogits[c] += logits[i][c];
            }
            for (int c = 0; c < numClasses; c++) meanLogits[c] /= logits.length;
        }
        return new ClassificationReport(gold.length, accuracy(gold, predicted), ci[0], ci[1],
                perClassAccuracy(confusion), confusion, meanLogits);
    }

    private static void checkPaired(int[] a, int[] b) {
        if (a.length != b.length) throw new IllegalArgumentException("length mismatch: " + a.length + " vs " + b.length);
        if (a.length == 0) throw new IllegalArgumentException("no examples");
    }

    private static void checkLabel(int label, int numClasses, String which, int i) {
        if (label < 0 || label >= numClasses) {
            throw new IllegalArgumentException(which + " label " + label + " at " + i + " is outside [0, " + numClasses + ")");
        }
    }
}
