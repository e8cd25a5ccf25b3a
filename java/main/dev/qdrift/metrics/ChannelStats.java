package dev.qdrift.metrics;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.apache.commons.math3.distribution.BetaDistribution;
import org.apache.commons.math3.random.Well19937c;

/**
 * Streaming statistics of one activation site, a [tokens, channels] matrix seen a batch at a time:
 * per channel (column) and over the whole tensor (all elements), in one pass over the data (each
 * batch is read twice while it is at hand, nothing is kept).
 *
 * <p><b>How.</b> Everything accumulates in double. Within a batch each channel's central moments
 * are computed in two passes (batch mean first, then sums of (x - mean)^2, ^3, ^4), so no raw power
 * sums of large values are ever subtracted from each other. Batches, and partial results from other
 * instances ({@link #merge}), are combined with the pairwise formulas of Chan, Golub and LeVeque
 * (1979), extended to third and fourth moments by Pébay (2008); a single value is the special case
 * handled by {@link Moments#add} (Terriberry's update of Welford's method). The whole-tensor moments
 * are the per-channel batch moments merged the same way, so they equal a two-pass computation over
 * all elements up to rounding.
 *
 * <p><b>Definitions.</b> Moments are population moments (divide by n, not n - 1). Kurtosis is
 * Fisher's excess kurtosis {@code m4 / m2^2 - 3} with {@code m_k = M_k / n} (0 for a normal
 * distribution; scipy.stats.kurtosis with its defaults gives the same number). Energy of a channel is
 * its sum of squares {@code sum x^2} (raw, not centered). The median of |x| is estimated from a
 * fixed-size seeded uniform sample of all |x| values of the site (exact while the site has at most
 * {@code reservoirSize} elements); with 100,000 samples the estimate's rank is within about
 * ±0.3 percentile points of the true median (95%).
 *
 * <p>Not thread-safe: one instance per site, fed by one thread.
 */
public final class ChannelStats {
    /** Default size of the |x| sample that estimates the median. */
    public static final int DEFAULT_RESERVOIR = 100_000;

    private final int channels;
    private long count;
    private final double[] mean, m2, m3, m4, min, max, sumSq;
    private final Moments total = new Moments();
    private final Reservoir absSample;

    // Per-batch scratch, reused across batches.
    private final double[] bSum, bMean, b2, b3, b4;

    public ChannelStats(int channels, int reservoirSize, long seed) {
        if (channels < 1) throw new IllegalArgumentException("channels must be positive, got " + channels);
        this.channels = channels;
        mean = new double[channels];
        m2 = new double[channels];
        m3 = new double[channels];
        m4 = new double[channels];
        min = new double[channels];
        max = new double[channels];
        sumSq = new double[channels];
        Arrays.fill(min, Double.POSITIVE_INFINITY);
        Arrays.fill(max, Double.NEGATIVE_INFINITY);
        bSum = new double[channels];
        bMean = new double[channels];
        b2 = new double[channels];
        b3 = new double[channels];
        b4 = new double[channels];
        absSample = new Reservoir(reservoirSize, seed);
    }

    public ChannelStats(int channels, long seed) {
        this(channels, DEFAULT_RESERVOIR, seed);
    }

    /**
     * Adds a row-major [rows, channels] batch.
     *
     * @param rowMask per row, 0 = skip (padding), anything else = use; null uses every row. A
     *                TokenBatch's attention mask is exactly this for the encoder's [batch * seq, cols]
     *                activations.
     */
    public void add(float[] data, int rows, int[] rowMask) {
        int c = channels;
        if (data.length < (long) rows * c)
            throw new IllegalArgumentException("data holds " + data.length + " values, fewer than " + rows + " x " + c);
        if (rowMask != null && rowMask.length < rows)
            throw new IllegalArgumentException("mask has " + rowMask.length + " entries for " + rows + " rows");
        // Pass 1: batch mean per channel.
        Arrays.fill(bSum, 0);
        long n = 0;
        for (int r = 0; r < rows; r++) {
            if (rowMask != null && rowMask[r] == 0) continue;
            n++;
            int off = r * c;
            for (int j = 0; j < c; j++) bSum[j] += data[off + j];
        }
        if (n == 0) return;
        for (int j = 0; j < c; j++) bMean[j] = bSum[j] / n;
        // Pass 2: central power sums, extremes, energy, and the |x| sample.
        Arrays.fill(b2, 0);
        Arrays.fill(b3, 0);
        Arrays.fill(b4, 0);
        for (int r = 0; r < rows; r++) {
            if (rowMask != null && rowMask[r] == 0) continue;
            int off = r * c;
            for (int j = 0; j < c; j++) {
                double x = data[off + j];
                double d = x - bMean[j], d2 = d * d;
                b2[j] += d2;
                b3[j] += d2 * d;
                b4[j] += d2 * d2;
                sumSq[j] += x * x;
                min[j] = Math.min(min[j], x);
                max[j] = Math.max(max[j], x);
            }
            absSample.offerAbs(data, off, c);
        }
        for (int j = 0; j < c; j++) {
            double[] merged = Moments.combine(count, mean[j], m2[j], m3[j], m4[j], n, bMean[j], b2[j], b3[j], b4[j]);
            mean[j] = merged[0];
            m2[j] = merged[1];
            m3[j] = merged[2];
            m4[j] = merged[3];
            // The whole tensor is the union of the channels: merging each channel's batch moments
            // gives the all-element moments without a third pass.
            total.merge(n, bMean[j], b2[j], b3[j], b4[j]);
        }
        count += n;
    }

    /** Adds another instance's data (same channel count), as if its batches had been added here. */
    public void merge(ChannelStats o) {
        if (o.channels != channels) throw new IllegalArgumentException("channel counts differ: " + channels + " vs " + o.channels);
        if (o.count == 0) return;
        for (int j = 0; j < channels; j++) {
            double[] m = Moments.combine(count, mean[j], m2[j], m3[j], m4[j], o.count, o.mean[j], o.m2[j], o.m3[j], o.m4[j]);
            mean[j] = m[0];
            m2[j] = m[1];
            m3[j] = m[2];
            m4[j] = m[3];
            min[j] = Math.min(min[j], o.min[j]);
            max[j] = Math.max(max[j], o.max[j]);
            sumSq[j] += o.sumSq[j];
        }
        total.merge(o.total.n, o.total.mean, o.total.m2, o.total.m3, o.total.m4);
        absSample.merge(o.absSample);
        count += o.count;
    }

    // ---- per channel ----

    public int channels() {
        return channels;
    }

    /** Rows (tokens) seen; every channel has this many values. */
    public long count() {
        return count;
    }

    public double mean(int j) {
        return mean[j];
    }

    /** Population variance M2 / n. */
    public double variance(int j) {
        return m2[j] / count;
    }

    public double std(int j) {
        return Math.sqrt(variance(j));
    }

    /** Fisher's excess kurtosis of channel j (population moments); NaN for a constant channel. */
    public double excessKurtosis(int j) {
        return Moments.excessKurtosis(count, m2[j], m4[j]);
    }

    public double skewness(int j) {
        return Moments.skewness(count, m2[j], m3[j]);
    }

    public double min(int j) {
        return min[j];
    }

    public double max(int j) {
        return max[j];
    }

    public double maxAbs(int j) {
        return Math.max(Math.abs(min[j]), Math.abs(max[j]));
    }

    /** max - min: what PEG's range-based permutation sorts by. */
    public double range(int j) {
        return max[j] - min[j];
    }

    /** Sum of squares of channel j. */
    public double energy(int j) {
        return sumSq[j];
    }

    // ---- whole tensor ----

    /** Moments over all elements (a copy). */
    public Moments total() {
        return total.copy();
    }

    /** Fisher's excess kurtosis over all elements of the site. */
    public double excessKurtosis() {
        return total.excessKurtosis();
    }

    /** Population standard deviation over all elements. */
    public double std() {
        return total.std();
    }

    public double maxAbs() {
        double m = 0;
        for (int j = 0; j < channels; j++) m = Math.max(m, maxAbs(j));
        return m;
    }

    /** Median of |x| over all elements, from the seeded sample (exact for small sites). */
    public double medianAbs() {
        return absSample.median();
    }

    /** How many |x| values the median estimate rests on. */
    public int medianSampleSize() {
        return absSample.size();
    }

    /** max |x| / median |x|: how far the largest value sits above a typical one. */
    public double maxOverMedian() {
        return maxAbs() / medianAbs();
    }

    /** Largest per-channel excess kurtosis. */
    public double maxChannelKurtosis() {
        double m = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < channels; j++) {
            double k = excessKurtosis(j);
            if (k > m) m = k;
        }
        return m;
    }

    // ---- energy concentration ----

    /** Channels ordered by energy, largest first. */
    public int[] channelsByEnergy() {
        return sortedDescending(j -> sumSq[j]);
    }

    /** Share of the total sum of squares held by the k channels with the most energy. */
    public double energyShareTop(int k) {
        if (k < 1 || k > channels) throw new IllegalArgumentException("k must be in 1.." + channels + ", got " + k);
        double[] e = sumSq.clone();
        Arrays.sort(e);
        double all = 0, top = 0;
        for (int j = 0; j < channels; j++) {
            all += e[j];
            if (j >= channels - k) top += e[j];
        }
        return all == 0 ? 0 : top / all;
    }

    /** Number of channels in the top {@code fraction}: ceil(fraction * channels), at least 1 (1% of 384 is 4, of 768 is 8). */
    public int topCount(double fraction) {
        return Math.max(1, Math.min(channels, (int) Math.ceil(fraction * channels - 1e-9)));
    }

    /** Share of energy in the top {@code fraction} of channels, e.g. 0.01 for the top 1%. */
    public double energyShareTopFraction(double fraction) {
        return energyShareTop(topCount(fraction));
    }

    // ---- outlier channels ----

    /** Channels whose max |x| exceeds {@code threshold}, largest max |x| first. */
    public int[] channelsAbove(double threshold) {
        return Arrays.stream(sortedDescending(this::maxAbs)).filter(j -> maxAbs(j) > threshold).toArray();
    }

    /** The 6σ threshold: 6 × the standard deviation of all elements of the site. */
    public double sigmaThreshold(double sigmas) {
        return sigmas * std();
    }

    /** Outlier channels by the main criterion: max |x| > 6σ of the whole tensor. */
    public int[] outlierChannels6Sigma() {
        return channelsAbove(sigmaThreshold(6));
    }

    /** Outlier channels by the second criterion: max |x| > factor × median |x| (factor 20 in reports). */
    public int[] outlierChannelsOverMedian(double factor) {
        return channelsAbove(factor * medianAbs());
    }

    // ---- PEG ----

    /**
     * Per-embedding-group partition as PEG's range-based permutation makes it (Bondarenko et al.
     * 2021): channels sorted by range (max - min) descending, cut into k contiguous groups of equal
     * size (the first {@code channels % k} groups take one extra), so the widest channels, the
     * outliers, share the first group and get their own scale.
     *
     * @return groups[g] = channel indices of group g, widest range first
     */
    public int[][] pegGroups(int k) {
        if (k < 1 || k > channels) throw new IllegalArgumentException("groups must be in 1.." + channels + ", got " + k);
        int[] order = sortedDescending(this::range);
        int[][] groups = new int[k][];
        int base = channels / k, extra = channels % k, at = 0;
        for (int g = 0; g < k; g++) {
            int size = base + (g < extra ? 1 : 0);
            groups[g] = Arrays.copyOfRange(order, at, at + size);
            at += size;
        }
        return groups;
    }

    private int[] sortedDescending(java.util.function.IntToDoubleFunction key) {
        // Ties broken by channel index so results are deterministic.
        return IntStream.range(0, channels).boxed()
                .sorted(Comparator.comparingDouble((Integer j) -> -key.applyAsDouble(j)).thenComparingInt(j -> j))
                .mapToInt(Integer::intValue).toArray();
    }

    /**
     * Count, mean and central moment sums M2, M3, M4 (M_k = sum (x - mean)^k) of one variable, in
     * double, updated one value at a time or merged with another set.
     */
    public static final class Moments {
        long n;
        double mean, m2, m3, m4;

        /** Terriberry's single-value update (Welford's method extended to M3 and M4). */
        public void add(double x) {
            long n1 = n;
            n++;
            double delta = x - mean, deltaN = delta / n, deltaN2 = deltaN * deltaN, term1 = delta * deltaN * n1;
            mean += deltaN;
            m4 += term1 * deltaN2 * ((double) n * n - 3.0 * n + 3) + 6 * deltaN2 * m2 - 4 * deltaN * m3;
            m3 += term1 * deltaN * (n - 2) - 3 * deltaN * m2;
            m2 += term1;
        }

        /** Merges a set of nb values with mean meanB and central sums m2B..m4B into this one. */
        public void merge(long nb, double meanB, double m2B, double m3B, double m4B) {
            double[] r = combine(n, mean, m2, m3, m4, nb, meanB, m2B, m3B, m4B);
            n += nb;
            mean = r[0];
            m2 = r[1];
            m3 = r[2];
            m4 = r[3];
        }

        public void merge(Moments o) {
            merge(o.n, o.mean, o.m2, o.m3, o.m4);
        }

        /**
         * Pairwise combination (Chan et al. 1979 for M2, Pébay 2008 for M3, M4): {mean, M2, M3, M4}
         * of the union of two sets. Counts enter as doubles: n^3 overflows a long for large sites.
         */
        static double[] combine(long na, double meanA, double m2A, double m3A, double m4A,
                                long nbL, double meanB, double m2B, double m3B, double m4B) {
            if (nbL == 0) return new double[] {meanA, m2A, m3A, m4A};
            if (na == 0) return new double[] {meanB, m2B, m3B, m4B};
            double a = na, b = nbL, n = a + b, d = meanB - meanA, d2 = d * d;
            double mean = meanA + d * b / n;
            double m2 = m2A + m2B + d2 * a * b / n;
            double m3 = m3A + m3B + d2 * d * a * b * (a - b) / (n * n) + 3 * d * (a * m2B - b * m2A) / n;
            double m4 = m4A + m4B + d2 * d2 * a * b * (a * a - a * b + b * b) / (n * n * n)
                    + 6 * d2 * (a * a * m2B + b * b * m2A) / (n * n) + 4 * d * (a * m3B - b * m3A) / n;
            return new double[] {mean, m2, m3, m4};
        }

        public long count() {
            return n;
        }

        public double mean() {
            return mean;
        }

        /** Population variance M2 / n. */
        public double variance() {
            return m2 / n;
        }

        public double std() {
            return Math.sqrt(variance());
        }

        /** Fisher's excess kurtosis n M4 / M2^2 - 3 (population moments). */
        public double excessKurtosis() {
            return excessKurtosis(n, m2, m4);
        }

        public double skewness() {
            return skewness(n, m2, m3);
        }

        public double m2() {
            return m2;
        }

        public double m3() {
            return m3;
        }

        public double m4() {
            return m4;
        }

        Moments copy() {
            Moments c = new Moments();
            c.merge(this);
            return c;
        }

        static double excessKurtosis(long n, double m2, double m4) {
            return m2 == 0 ? Double.NaN : n * m4 / (m2 * m2) - 3;
        }

        static double skewness(long n, double m2, double m3) {
            return m2 == 0 ? Double.NaN : Math.sqrt(n) * m3 / Math.pow(m2, 1.5);
        }
    }

    /**
     * A uniform random sample of fixed size from a stream: Li's Algorithm L (1994), which draws the
     * gap to the next value that enters the sample (geometric), so a full sample costs nothing for
     * the values it skips — and an entrant just overwrites a random slot. Conceptually every value
     * has a uniform key and the sample holds the k smallest; {@code w} is the largest kept key.
     */
    static final class Reservoir {
        private final int capacity;
        private final SplittableRandom random;
        private final long seed;
        private final float[] values;
        private int size;
        private long seen, nextEntrant;
        private double w;

        Reservoir(int capacity, long seed) {
            if (capacity < 1) throw new IllegalArgumentException("reservoir size must be positive, got " + capacity);
            this.capacity = capacity;
            this.seed = seed;
            this.random = new SplittableRandom(seed);
            values = new float[capacity];
        }

        /** Offers |data[off]| .. |data[off + n - 1]|. */
        void offerAbs(float[] data, int off, int n) {
            int i = 0;
            while (i < n && size < capacity) {
                values[size++] = Math.abs(data[off + i++]);
                seen++;
                if (size == capacity) startSkipping();
            }
            if (i == n) return;
            // Full: jump straight to the entrants that fall inside this run of values.
            long end = seen + (n - i);
            while (nextEntrant < end) {
                values[random.nextInt(capacity)] = Math.abs(data[off + i + (int) (nextEntrant - seen)]);
                w *= Math.exp(Math.log(uniform()) / capacity);
                nextEntrant += 1 + gap();
            }
            seen = end;
        }

        private void startSkipping() {
            w = Math.exp(Math.log(uniform()) / capacity);   // max of k uniform keys
            nextEntrant = seen + gap();
        }

        /** Values to skip before the next one whose key falls below w: geometric with success probability w. */
        private long gap() {
            if (w >= 1) return 0;
            double g = Math.floor(Math.log(uniform()) / Math.log1p(-w));
            return g >= Long.MAX_VALUE / 4 ? Long.MAX_VALUE / 4 : (long) g;
        }

        private double uniform() {
            return 1.0 - random.nextDouble(); // in (0, 1]: log() stays finite
        }

        /**
         * Merges another sample so this one is a uniform sample of both streams: the number taken
         * from each side is hypergeometric (drawn one slot at a time), the values taken from a side
         * are a uniform subset of its sample (itself uniform), and the largest kept key of n values
         * is Beta(k, n - k + 1), which is all Algorithm L needs to go on.
         */
        void merge(Reservoir o) {
            long n = seen + o.seen;
            float[] mine = Arrays.copyOf(values, size), theirs = Arrays.copyOf(o.values, o.size);
            if (n <= capacity) {
                System.arraycopy(theirs, 0, values, size, theirs.length);
                size += theirs.length;
            } else {
                long remMine = seen, remTheirs = o.seen;
                int fromMine = 0;
                for (int i = 0; i < capacity; i++) {
                    if (random.nextDouble() * (remMine + remTheirs) < remMine) {
                        fromMine++;
                        remMine--;
                    } else {
                        remTheirs--;
                    }
                }
                shuffleFirst(mine, fromMine);
                shuffleFirst(theirs, capacity - fromMine);
                System.arraycopy(mine, 0, values, 0, fromMine);
                System.arraycopy(theirs, 0, values, fromMine, capacity - fromMine);
                size = capacity;
            }
            seen = n;
            if (size == capacity) {
                w = n == capacity ? Math.exp(Math.log(uniform()) / capacity)
                        : new BetaDistribution(new Well19937c(random.nextLong() ^ seed), capacity, n - capacity + 1).sample();
                nextEntrant = seen + gap();
            }
        }

        /** Partial Fisher-Yates: the first m entries become a uniform random m-subset. */
        private void shuffleFirst(float[] a, int m) {
            for (int i = 0; i < m; i++) {
                int j = i + random.nextInt(a.length - i);
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
            }
        }

        int size() {
            return size;
        }

        double median() {
            if (size == 0) return Double.NaN;
            float[] s = Arrays.copyOf(values, size);
            Arrays.sort(s);
            return size % 2 == 1 ? s[size / 2] : (s[size / 2 - 1] + (double) s[size / 2]) / 2;
        }
    }
}
