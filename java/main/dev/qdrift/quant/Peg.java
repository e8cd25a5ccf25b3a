package dev.qdrift.quant;

import dev.qdrift.QdriftException;
import dev.qdrift.model.BertWeights;
import dev.qdrift.quant.CalibrationStats.SiteStats;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Per-embedding-group quantization (Bondarenko et al., EMNLP 2021): the hidden dimension is split into
 * K groups, each with its own quantization range. With range-based permutation the hidden channels are
 * first sorted by calibrated range, so the few outlier channels share a group instead of stretching
 * every group's range. One permutation serves the whole residual stream (BERT's outlier channels recur
 * across layers); because LayerNorm, residual adds and the per-token attention are indifferent to the
 * order of hidden channels, it folds into the weights ({@link #fold}) and costs nothing at run time.
 */
public final class Peg {
    private Peg() {}

    /**
     * Hidden channels sorted by calibrated range, widest first: each channel's range (max - min) at every
     * hidden-size site, divided by that site's median channel range, summed over sites.
     */
    public static int[] rangePermutation(CalibrationStats stats, int hidden) {
        double[] score = new double[hidden];
        for (SiteStats s : stats.sites.values()) {
            if (s.channelMin.length != hidden) continue;
            double[] range = new double[hidden];
            for (int c = 0; c < hidden; c++) range[c] = s.channelMax[c] - s.channelMin[c];
            double[] sorted = range.clone();
            Arrays.sort(sorted);
            double median = Math.max(sorted[hidden / 2], 1e-12);
            for (int c = 0; c < hidden; c++) score[c] += range[c] / median;
        }
        return IntStream.range(0, hidden).boxed().sorted(Comparator.comparingDouble((Integer c) -> -score[c]).thenComparing(c -> c))
                .mapToInt(Integer::intValue).toArray();
    }

    /** group[c] for each channel: contiguous blocks of hidden / K channels in permuted order. */
    public static int[] groupOf(int[] permutation, int groups) {
        int hidden = permutation.length;
        if (groups < 1 || hidden % groups != 0)
            throw new QdriftException("PEG: " + groups + " groups do not divide the hidden size " + hidden);
        int size = hidden / groups;
        int[] group = new int[hidden];
        for (int i = 0; i < hidden; i++) group[permutation[i]] = i / size;
        return group;
    }

    /**
     * The same encoder with its hidden channels reordered: new channel i is old channel perm[i]. Every
     * tensor that reads or writes the residual stream is permuted (embedding columns, LayerNorm
     * parameters, input columns of query / key / value / intermediate / pooler, output rows and biases
     * of the attention-output and FFN-output projections); the hidden states come out permuted the same
     * way, so a head reads them through {@link #permuteColumns}.
     */
    public static BertWeights fold(BertWeights w, int[] perm) {
        int h = w.config().hidden();
        if (perm.length != h) throw new QdriftException("PEG permutation has " + perm.length + " entries for hidden size " + h);
        List<BertWeights.Layer> layers = new ArrayList<>();
        for (BertWeights.Layer l : w.layers()) {
            layers.add(new BertWeights.Layer(inColumns(l.query(), perm), inColumns(l.key(), perm), inColumns(l.value(), perm),
                    outRows(l.attentionOutput(), perm), norm(l.attentionNorm(), perm), inColumns(l.intermediate(), perm),
                    outRows(l.output(), perm), norm(l.outputNorm(), perm)));
        }
        BertWeights.Linear pooler = w.pooler() == null ? null : outRows(inColumns(w.pooler(), perm), perm);
        return new BertWeights(w.config(), permuteColumns(w.wordEmbeddings(), h, perm), permuteColumns(w.positionEmbeddings(), h, perm),
                permuteColumns(w.typeEmbeddings(), h, perm), norm(w.embeddingNorm(), perm), List.copyOf(layers), pooler);
    }

    /** Each row of a row-major [n, cols] matrix with its columns reordered: out[r][i] = in[r][perm[i]]. */
    public static float[] permuteColumns(float[] m, int cols, int[] perm) {
        float[] out = new float[m.length];
        for (int r = 0; r < m.length / cols; r++)
            for (int i = 0; i < cols; i++) out[r * cols + i] = m[r * cols + perm[i]];
        return out;
    }

    private static BertWeights.Linear inColumns(BertWeights.Linear l, int[] perm) {
        return new BertWeights.Linear(l.name(), permuteColumns(l.weight(), l.in(), perm), l.bias(), l.out(), l.in());
    }

    private static BertWeights.Linear outRows(BertWeights.Linear l, int[] perm) {
        float[] w = new float[l.weight().length], b = new float[l.out()];
        for (int i = 0; i < l.out(); i++) {
            System.arraycopy(l.weight(), perm[i] * l.in(), w, i * l.in(), l.in());
            b[i] = l.bias()[perm[i]];
        }
        return new BertWeights.Linear(l.name(), w, b, l.out(), l.in());
    }

    private static BertWeights.Norm norm(BertWeights.Norm n, int[] perm) {
        return new BertWeights.Norm(permuteColumns(n.gamma(), n.gamma().length, perm), permuteColumns(n.beta(), n.beta().length, perm));
    }
}
