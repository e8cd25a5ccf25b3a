package dev.qdrift.metrics;

import java.util.Arrays;

/**
 * How often given outlier channels of one site fire, and on which tokens: a channel fires on a
 * token when |x| > threshold (the site's 6σ, known from a first pass with {@link ChannelStats}).
 * Counts per channel: tokens it fires on, inputs (sentences or sentence pairs) in which it fires at
 * least once, and hits per {@link OutlierTokenCategory}.
 */
public final class OutlierTriggers {
    private static final int CATEGORIES = OutlierTokenCategory.values().length;

    private final int[] channels;
    private final double threshold;
    private final long[] tokenHits, inputHits;
    private final long[][] categoryHits;
    private long tokenCount, inputCount;

    /** @param channels the outlier channel indices to follow; threshold in the units of the activations */
    public OutlierTriggers(int[] channels, double threshold) {
        this.channels = channels.clone();
        this.threshold = threshold;
        tokenHits = new long[channels.length];
        inputHits = new long[channels.length];
        categoryHits = new long[channels.length][CATEGORIES];
    }

    /**
     * Adds one padded batch of activations, row-major [batch * seqLen, cols].
     *
     * @param mask   [batch * seqLen], 0 = padding (skipped)
     * @param tokens tokens[i][t] = token string of input i at position t (real tokens only)
     */
    public void add(float[] data, int cols, int batch, int seqLen, int[] mask, String[][] tokens) {
        boolean[] fired = new boolean[channels.length];
        for (int i = 0; i < batch; i++) {
            Arrays.fill(fired, false);
            for (int t = 0; t < seqLen; t++) {
                int row = i * seqLen + t;
                if (mask[row] == 0) continue;
                tokenCount++;
                int category = OutlierTokenCategory.of(tokens[i][t]).ordinal();
                int off = row * cols;
                for (int c = 0; c < channels.length; c++) {
                    if (Math.abs(data[off + channels[c]]) > threshold) {
                        tokenHits[c]++;
                        categoryHits[c][category]++;
                        fired[c] = true;
                    }
                }
            }
            inputCount++;
            for (int c = 0; c < channels.length; c++) if (fired[c]) inputHits[c]++;
        }
    }

    public int[] channels() {
        return channels.clone();
    }

    public double threshold() {
        return threshold;
    }

    /** Real tokens seen. */
    public long tokens() {
        return tokenCount;
    }

    /** Inputs seen. */
    public long inputs() {
        return inputCount;
    }

    /** Tokens on which the i-th followed channel fired. */
    public long tokenHits(int i) {
        return tokenHits[i];
    }

    /** Fraction of tokens on which the i-th followed channel fired. */
    public double tokenRate(int i) {
        return tokenCount == 0 ? 0 : (double) tokenHits[i] / tokenCount;
    }

    /** Inputs in which the i-th followed channel fired at least once. */
    public long inputHits(int i) {
        return inputHits[i];
    }

    public double inputRate(int i) {
        return inputCount == 0 ? 0 : (double) inputHits[i] / inputCount;
    }

    /** Hits of the i-th followed channel on tokens of a category. */
    public long categoryHits(int i, OutlierTokenCategory category) {
        return categoryHits[i][category.ordinal()];
    }
}
