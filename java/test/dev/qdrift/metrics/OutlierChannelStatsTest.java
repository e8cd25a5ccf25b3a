package dev.qdrift.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link ChannelStats}: hand-computed cases, streaming == two-pass, numerical stability, padding. */
class OutlierChannelStatsTest {

    @Test
    void kurtosisOfOneToFourAndHundredByHand() {
        // mean 22, deviations -21 -20 -19 -18 78: M2 = 7610, M4 = 37,604,834 (sums, not means)
        // excess kurtosis = n M4 / M2^2 - 3 = 5 * 37604834 / 7610^2 - 3 = 0.2467164893...
        // (scipy.stats.kurtosis([1,2,3,4,100]) = 0.24671648930016365)
        double expected = 5.0 * 37604834 / (7610.0 * 7610) - 3;
        assertEquals(0.24671648930016365, expected, 1e-15);
        ChannelStats s = new ChannelStats(1, 16, 1);
        s.add(new float[] {1, 2, 3, 4, 100}, 5, null);
        assertEquals(expected, s.excessKurtosis(0), 1e-13);
        assertEquals(expected, s.excessKurtosis(), 1e-13);
        assertEquals(22, s.mean(0), 1e-13);
        assertEquals(1522, s.variance(0), 1e-10);
        assertEquals(1.4975367033335198, s.skewness(0), 1e-13);
        assertEquals(100, s.maxAbs());
        assertEquals(3, s.medianAbs());
        assertEquals(100 / 3.0, s.maxOverMedian(), 1e-13);
        assertEquals(1 + 4 + 9 + 16 + 10000, s.energy(0));

        // Terriberry's one-value-at-a-time update agrees, in any order.
        ChannelStats.Moments m = new ChannelStats.Moments();
        for (double x : new double[] {100, 3, 1, 4, 2}) m.add(x);
        assertEquals(expected, m.excessKurtosis(), 1e-13);
        assertEquals(1522, m.variance(), 1e-10);
        assertEquals(1.4975367033335198, m.skewness(), 1e-13);
    }

    @Test
    void plantedOutlierChannelHoldsTheEnergyAndIsFound() {
        // 10 tokens x 100 channels of +-1, except channel 7 which is 50 on token 4 (and +-1 elsewhere).
        int rows = 10, cols = 100;
        float[] x = new float[rows * cols];
        for (int r = 0; r < rows; r++) for (int j = 0; j < cols; j++) x[r * cols + j] = (r + j) % 2 == 0 ? 1 : -1;
        x[4 * cols + 7] = 50;
        ChannelStats s = new ChannelStats(cols, 10_000, 1);
        s.add(x, rows, null);
        // Energy: 999 elements of 1 and one 2500; channel 7 has 9 + 2500.
        assertEquals(2509.0 / 3499, s.energyShareTop(1), 1e-15);
        assertEquals(1, s.topCount(0.01));
        assertEquals(2509.0 / 3499, s.energyShareTopFraction(0.01), 1e-15);
        assertEquals((2509.0 + 10) / 3499, s.energyShareTop(2), 1e-15);
        assertEquals((2509.0 + 70) / 3499, s.energyShareTop(8), 1e-15);
        // sigma over all 1000 elements (population): every column sums to 0 except channel 7 (51), so
        // mean = 0.051, E[x^2] = 3.499, sigma = 1.870; 6 sigma = 11.2 < 50.
        double sum = 0, sq = 0;
        for (float v : x) {
            sum += v;
            sq += v * v;
        }
        double sigma = Math.sqrt(sq / 1000 - (sum / 1000) * (sum / 1000));
        assertEquals(sigma, s.std(), 1e-12);
        assertTrue(50 > 6 * sigma && 1 < 6 * sigma, "test setup: only the planted value is beyond 6 sigma");
        assertArrayEquals(new int[] {7}, s.outlierChannels6Sigma());
        assertEquals(1, s.medianAbs());
        assertArrayEquals(new int[] {7}, s.outlierChannelsOverMedian(20));
        assertEquals(51, s.range(7));
        assertEquals(50, s.maxOverMedian());
    }

    @Test
    void pegGroupsSortByRangeAndCutIntoEqualContiguousGroups() {
        // 6 channels, one row each of two tokens; ranges: ch0 1, ch1 10, ch2 3, ch3 100, ch4 2, ch5 5.
        float[] x = {0, 0, 0, 0, 0, 0,
                     1, 10, -3, 100, 2, 5};
        ChannelStats s = new ChannelStats(6, 16, 1);
        s.add(x, 2, null);
        // by range descending: 3 (100), 1 (10), 5 (5), 2 (3), 4 (2), 0 (1)
        assertArrayEquals(new int[][] {{3, 1}, {5, 2}, {4, 0}}, s.pegGroups(3));
        assertArrayEquals(new int[][] {{3, 1}, {5, 2}, {4}, {0}}, s.pegGroups(4));
        assertArrayEquals(new int[][] {{3}, {1}, {5}, {2}, {4}, {0}}, s.pegGroups(6));
        assertEquals(-3, s.min(2));
        assertEquals(0, s.max(2));
    }

    /** Data with per-channel offsets and scales, one huge channel and one spiky channel. */
    static float[] plantedData(int rows, int cols, long seed) {
        Random r = new Random(seed);
        float[] x = new float[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                double v = (j % 5 - 2) * 0.3 + (0.5 + j % 3) * r.nextGaussian();
                if (j == 3) v = 40 + 25 * r.nextGaussian();            // a wide, offset channel
                if (j == 11 && r.nextDouble() < 0.02) v += 300;         // rare spikes: heavy tail
                x[i * cols + j] = (float) v;
            }
        }
        return x;
    }

    /** Reference: everything in two passes over all the data in double. */
    record TwoPass(double[] mean, double[] var, double[] skew, double[] kurt, double[] energy, double[] min, double[] max,
                   double totalMean, double totalVar, double totalKurt, double totalSkew) {
        static TwoPass of(float[] x, int rows, int cols) {
            double[] mean = new double[cols], var = new double[cols], skew = new double[cols], kurt = new double[cols],
                    energy = new double[cols], min = new double[cols], max = new double[cols];
            double all = 0;
            for (int j = 0; j < cols; j++) {
                double s = 0, mn = Double.POSITIVE_INFINITY, mx = Double.NEGATIVE_INFINITY, e = 0;
                for (int i = 0; i < rows; i++) {
                    double v = x[i * cols + j];
                    s += v;
                    e += v * v;
                    mn = Math.min(mn, v);
                    mx = Math.max(mx, v);
                }
                all += s;
                mean[j] = s / rows;
                double c2 = 0, c3 = 0, c4 = 0;
                for (int i = 0; i < rows; i++) {
                    double d = x[i * cols + j] - mean[j];
                    c2 += d * d;
                    c3 += d * d * d;
                    c4 += d * d * d * d;
                }
                var[j] = c2 / rows;
                skew[j] = (c3 / rows) / Math.pow(var[j], 1.5);
                kurt[j] = (c4 / rows) / (var[j] * var[j]) - 3;
                energy[j] = e;
                min[j] = mn;
                max[j] = mx;
            }
            double n = (double) rows * cols, m = all / n, c2 = 0, c3 = 0, c4 = 0;
            for (float v : x) {
                double d = v - m;
                c2 += d * d;
                c3 += d * d * d;
                c4 += d * d * d * d;
            }
            double tv = c2 / n;
            return new TwoPass(mean, var, skew, kurt, energy, min, max, m, tv, (c4 / n) / (tv * tv) - 3, (c3 / n) / Math.pow(tv, 1.5));
        }
    }

    static void assertRel(double expected, double actual, double rel, String what) {
        double scale = Math.max(Math.abs(expected), 1e-300);
        assertTrue(Math.abs(expected - actual) <= rel * scale, what + ": expected " + expected + " got " + actual);
    }

    @Test
    void streamingInRandomBatchesAndMergedEqualsTwoPass() {
        int rows = 6000, cols = 37;
        float[] x = plantedData(rows, cols, 42);
        TwoPass ref = TwoPass.of(x, rows, cols);
        assertTrue(ref.kurt()[11] > 10, "setup: channel 11 is heavy-tailed, kurtosis " + ref.kurt()[11]);

        // Three partial results over random-size batches, merged; and one instance over all batches.
        Random r = new Random(7);
        ChannelStats single = new ChannelStats(cols, rows * cols, 1);
        List<ChannelStats> parts = new ArrayList<>();
        for (int p = 0; p < 3; p++) parts.add(new ChannelStats(cols, rows * cols, 100 + p));
        int at = 0;
        while (at < rows) {
            int n = Math.min(rows - at, 1 + r.nextInt(300));
            float[] batch = Arrays.copyOfRange(x, at * cols, (at + n) * cols);
            single.add(batch, n, null);
            parts.get(r.nextInt(3)).add(batch, n, null);
            at += n;
        }
        ChannelStats merged = parts.get(0);
        merged.merge(parts.get(1));
        merged.merge(parts.get(2));

        for (ChannelStats s : List.of(single, merged)) {
            assertEquals(rows, s.count());
            for (int j = 0; j < cols; j++) {
                assertRel(ref.mean()[j], s.mean(j), 1e-9, "mean " + j);
                assertRel(ref.var()[j], s.variance(j), 1e-9, "variance " + j);
                assertRel(ref.skew()[j], s.skewness(j), 1e-9, "skewness " + j);
                assertRel(ref.kurt()[j] + 3, s.excessKurtosis(j) + 3, 1e-9, "kurtosis " + j);
                assertRel(ref.energy()[j], s.energy(j), 1e-9, "energy " + j);
                assertEquals(ref.min()[j], s.min(j));
                assertEquals(ref.max()[j], s.max(j));
            }
            assertRel(ref.totalMean(), s.total().mean(), 1e-9, "total mean");
            assertRel(ref.totalVar(), s.total().variance(), 1e-9, "total variance");
            assertRel(ref.totalKurt(), s.excessKurtosis(), 1e-9, "total kurtosis");
            assertRel(ref.totalSkew(), s.total().skewness(), 1e-9, "total skewness");
            // The sample holds every value here (size >= elements), so the median is exact.
            float[] abs = new float[x.length];
            for (int i = 0; i < x.length; i++) abs[i] = Math.abs(x[i]);
            Arrays.sort(abs);
            assertEquals((abs[x.length / 2 - 1] + (double) abs[x.length / 2]) / 2, s.medianAbs(), 0);
        }
    }

    @Test
    void stableFarFromZero() {
        // 1e6 + N(0,1): in float the values sit on a grid of 1/16, still nearly normal (kurtosis ~ 0).
        // Raw power sums are ~1e24 while the fourth central moment is ~3: naive E[x^4] - ... loses everything.
        int rows = 50_000, cols = 4;
        Random r = new Random(3);
        float[] x = new float[rows * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) (1e6 + r.nextGaussian());
        TwoPass ref = TwoPass.of(x, rows, cols);
        ChannelStats s = new ChannelStats(cols, 1000, 1);
        for (int at = 0; at < rows; at += 977) {
            int n = Math.min(977, rows - at);
            s.add(Arrays.copyOfRange(x, at * cols, (at + n) * cols), n, null);
        }
        for (int j = 0; j < cols; j++) {
            assertRel(ref.var()[j], s.variance(j), 1e-9, "variance " + j);
            assertRel(ref.kurt()[j] + 3, s.excessKurtosis(j) + 3, 1e-9, "kurtosis " + j);
            assertTrue(Math.abs(s.excessKurtosis(j)) < 0.1, "near-normal channel, kurtosis " + s.excessKurtosis(j));
        }
        assertRel(ref.totalKurt() + 3, s.excessKurtosis() + 3, 1e-9, "total kurtosis");
        assertTrue(Math.abs(s.excessKurtosis()) < 0.1);

        // The naive raw-moment formula is garbage here, in float and even in double: this test has teeth.
        float f1 = 0, f2 = 0, f4 = 0;
        double d1 = 0, d2 = 0, d3 = 0, d4 = 0;
        for (int i = 0; i < rows; i++) {
            float v = x[i * cols];
            f1 += v;
            f2 += v * v;
            f4 += v * v * v * v;
            d1 += v;
            d2 += (double) v * v;
            d3 += (double) v * v * v;
            d4 += (double) v * v * v * v;
        }
        double n = rows, mu = d1 / n, var = d2 / n - mu * mu;
        double naiveM4 = d4 / n - 4 * mu * d3 / n + 6 * mu * mu * d2 / n - 3 * Math.pow(mu, 4);
        double naiveDouble = naiveM4 / (var * var) - 3;
        float fmu = f1 / rows, fvar = f2 / rows - fmu * fmu;
        assertTrue(!(Math.abs(naiveDouble) < 1), "naive double kurtosis happened to be right: " + naiveDouble);
        assertTrue(!(Math.abs(fvar - 1) < 0.5) || Float.isInfinite(f4), "naive float variance happened to be right: " + fvar);
    }

    @Test
    void paddingRowsAreSkipped() {
        int rows = 300, cols = 9;
        float[] x = plantedData(rows, cols, 5);
        // The same rows in a padded layout: every third row a padding row full of garbage.
        int padded = rows + rows / 2;
        float[] withPad = new float[padded * cols];
        int[] mask = new int[padded];
        for (int i = 0, src = 0; i < padded; i++) {
            if (i % 3 == 2) {
                Arrays.fill(withPad, i * cols, (i + 1) * cols, 1e30f);
                continue;
            }
            System.arraycopy(x, src * cols, withPad, i * cols, cols);
            mask[i] = 1;
            src++;
        }
        ChannelStats a = new ChannelStats(cols, 100_000, 9), b = new ChannelStats(cols, 100_000, 9);
        a.add(x, rows, null);
        b.add(withPad, padded, mask);
        assertEquals(a.count(), b.count());
        for (int j = 0; j < cols; j++) {
            assertEquals(a.mean(j), b.mean(j), 0);
            assertEquals(a.variance(j), b.variance(j), 0);
            assertEquals(a.excessKurtosis(j), b.excessKurtosis(j), 0);
            assertEquals(a.energy(j), b.energy(j), 0);
            assertEquals(a.max(j), b.max(j), 0);
        }
        assertEquals(a.excessKurtosis(), b.excessKurtosis(), 0);
        assertEquals(a.medianAbs(), b.medianAbs(), 0);
        assertEquals(a.maxAbs(), b.maxAbs(), 0);
    }

    @Test
    void sampledMedianIsCloseAndMergesUniformly() {
        // 1.2M values uniform in [0, 1): the median of |x| is 0.5; a 100k sample's median is within
        // +-0.003 with overwhelming probability (sd of the sample median ~ 0.0016).
        int cols = 3, rowsPerPart = 200_000;
        Random r = new Random(11);
        ChannelStats a = new ChannelStats(cols, 100_000, 1), b = new ChannelStats(cols, 100_000, 2);
        ChannelStats whole = new ChannelStats(cols, 100_000, 3);
        for (ChannelStats part : List.of(a, b)) {
            float[] x = new float[rowsPerPart * cols];
            // Part b holds larger values than a: a merge that ignored the counts would shift the median.
            for (int i = 0; i < x.length; i++) x[i] = (float) (part == a ? r.nextDouble() * 0.5 : 0.5 + r.nextDouble() * 0.5);
            for (int at = 0; at < rowsPerPart; at += 4096) {
                int n = Math.min(4096, rowsPerPart - at);
                float[] batch = Arrays.copyOfRange(x, at * cols, (at + n) * cols);
                part.add(batch, n, null);
                whole.add(batch, n, null);
            }
        }
        assertEquals(100_000, whole.medianSampleSize());
        assertEquals(0.5, whole.medianAbs(), 0.003);
        assertEquals(0.25, a.medianAbs(), 0.002);
        a.merge(b);
        assertEquals(100_000, a.medianSampleSize());
        assertEquals(0.5, a.medianAbs(), 0.003);
        // Unequal parts: 2/3 of the values below 0.5, so the overall median is the 3/4 quantile of [0, 0.5): 0.375.
        ChannelStats c = new ChannelStats(cols, 100_000, 4), d = new ChannelStats(cols, 100_000, 5);
        float[] lo = new float[400_000 * cols], hi = new float[200_000 * cols];
        for (int i = 0; i < lo.length; i++) lo[i] = (float) (r.nextDouble() * 0.5);
        for (int i = 0; i < hi.length; i++) hi[i] = (float) (0.5 + r.nextDouble() * 0.5);
        c.add(lo, 400_000, null);
        d.add(hi, 200_000, null);
        c.merge(d);
        assertEquals(0.375, c.medianAbs(), 0.003);
        // Streaming on after a merge: 1.2M more values in [1, 2) make 3M; the median (rank 1.5M) is
        // then at 0.75. A wrong sampling state after the merge would over- or under-weight them.
        float[] more = new float[400_000 * cols];
        for (int i = 0; i < more.length; i++) more[i] = (float) (1 + r.nextDouble());
        c.add(more, 400_000, null);
        assertEquals(0.75, c.medianAbs(), 0.004);

        // A sample that is not full merged with one that is: 60k values in [0, 1) and 180k in [2, 3);
        // the median (rank 120k) is the 1/3 quantile of [2, 3).
        ChannelStats e = new ChannelStats(cols, 100_000, 6), f = new ChannelStats(cols, 100_000, 7);
        float[] small = new float[20_000 * cols], big = new float[60_000 * cols];
        for (int i = 0; i < small.length; i++) small[i] = (float) r.nextDouble();
        for (int i = 0; i < big.length; i++) big[i] = (float) (2 + r.nextDouble());
        e.add(small, 20_000, null);
        f.add(big, 60_000, null);
        e.merge(f);
        assertEquals(100_000, e.medianSampleSize());
        assertEquals(2 + 1 / 3.0, e.medianAbs(), 0.01);
    }
}
