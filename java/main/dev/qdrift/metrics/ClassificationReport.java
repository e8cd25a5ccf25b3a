package dev.qdrift.metrics;

/**
 * Summary of a classifier on a labelled set. Arrays are exposed as-is (treat them as read-only);
 * as with any record holding arrays, {@code equals} compares them by reference.
 *
 * @param n number of examples
 * @param accuracy fraction of examples with predicted == gold
 * @param ciLow lower end of the bootstrap confidence interval of the accuracy
 * @param ciHigh upper end of that interval
 * @param perClassAccuracy recall per gold class; NaN for a class with no gold examples
 * @param confusion counts indexed [gold][predicted]
 * @param meanLogits mean logit per class over the set, or null when not computed
 */
public record ClassificationReport(
        int n, double accuracy, double ciLow, double ciHigh, double[] perClassAccuracy, int[][] confusion, double[] meanLogits) {}
