package dev.qdrift.experiment;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/**
 * One line of a drift run's {@code examples.jsonl}: one example under one scheme, next to the FP32
 * model on the same example. Attributions are word-level (wordpieces summed, special tokens left out)
 * and explain the FP32 model's predicted class's logit, the same class for every scheme. Metrics that
 * are undefined (a correlation of a constant or one-word vector, a method's fields another method
 * does not have) are null.
 *
 * @param example the example's index in the evaluation set
 * @param rank its position in the run's order (a run with --limit N takes ranks 0..N-1)
 * @param words word count (length buckets: {@link #lengthBucket})
 * @param targetClass the class whose logit is explained: the FP32 model's prediction
 * @param logits this scheme's logits on the example
 * @param targetLogit this scheme's logit of targetClass; fp32TargetLogit the FP32 model's
 * @param scores word-level attributions of this scheme, parallel to wordTexts
 * @param spearman .. cosine: {@code AttributionDrift.compare(fp32 scores, scores)}
 * @param targetAtInput IG: F(x), F(x'), the completeness delta Σ attribution - (F(x) - F(x')) of this scheme and of FP32
 * @param logitShift occlusion: per word, the target logit's fall when the word's wordpieces are deleted one at a time (summed)
 * @param logitShiftCorrelation occlusion: Pearson correlation of the FP32 and this scheme's logit shifts
 * @param igSteps IG: the steps of this attribution (with --ig-tolerance, the adaptive mode's last round)
 * @param converged IG with --ig-tolerance: whether |delta| reached the tolerance within --max-steps; else absent
 * @param seconds time spent on this line's attribution
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record DriftRecord(int example, int rank, String scheme, String text, String textPair, int gold, String goldLabel, int tokens,
                          int words, boolean truncated, String target, int targetClass, String targetLabel, int fp32Predicted,
                          int predicted, boolean agree, double[] logits, double targetLogit, double fp32TargetLogit, List<String> wordTexts,
                          double[] scores, Double spearman, Double kendall, Double top1, Double top3, Double top5, Double sign, Double cosine,
                          Double targetAtInput, Double targetAtBaseline, Double delta, Double fp32Delta, double[] logitShift,
                          Double logitShiftCorrelation, Integer igSteps, Boolean converged, double seconds) {

    public static final List<String> LENGTH_BUCKETS = List.of("<=10", "11-20", ">20");

    /** "<=10", "11-20" or ">20" words. */
    public static String lengthBucket(int words) {
        return words <= 10 ? LENGTH_BUCKETS.get(0) : words <= 20 ? LENGTH_BUCKETS.get(1) : LENGTH_BUCKETS.get(2);
    }

    public boolean fp32Correct() {
        return fp32Predicted == gold;
    }

    public boolean flipped() {
        return !agree;
    }

    /** Null for NaN (JSON has no NaN). */
    static Double orNull(double v) {
        return Double.isNaN(v) ? null : v;
    }

    /** NaN for null. */
    static double value(Double v) {
        return v == null ? Double.NaN : v;
    }
}
