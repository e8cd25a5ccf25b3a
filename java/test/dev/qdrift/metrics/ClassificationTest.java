package dev.qdrift.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class ClassificationTest {
    //                  0  1  2  3  4  5  6  7  8  9
    static final int[] GOLD = {0, 0, 0, 1, 1, 1, 1, 2, 2, 2};
    static final int[] PRED = {0, 0, 1, 1, 1, 2, 1, 2, 0, 2};

    @Test
    void handComputedExample() {
        // Correct at 0,1,3,4,6,7,9 -> 7/10.
        assertEquals(0.7, Classification.accuracy(GOLD, PRED), 1e-15);
        int[][] expected = {
            {2, 1, 0}, // gold 0: two right, one predicted 1
            {0, 3, 1}, // gold 1: three right, one predicted 2
            {1, 0, 2}, // gold 2: one predicted 0, two right
        };
        assertArrayEquals(expected, Classification.confusion(GOLD, PRED, 3));
        assertArrayEquals(new double[] {2.0 / 3, 3.0 / 4, 2.0 / 3}, Classification.perClassAccuracy(GOLD, PRED, 3), 1e-15);
        assertEquals(0.7, Classification.agreement(GOLD, PRED), 1e-15);
        assertEquals(1.0, Classification.agreement(PRED, PRED.clone()));
    }

    @Test
    void classWithoutGoldExamplesIsNaN() {
        double[] r = Classification.perClassAccuracy(new int[] {0, 0}, new int[] {0, 2}, 3);
        assertEquals(0.5, r[0]);
        assertTrue(Double.isNaN(r[1]));
        assertTrue(Double.isNaN(r[2]));
    }

    @Test
    void report() {
        float[][] logits = new float[GOLD.length][];
        for (int i = 0; i < GOLD.length; i++) logits[i] = new float[] {i, 0, -i};
        ClassificationReport r = Classification.report(GOLD, PRED, 3, 500, 0.9, 1, logits);
        assertEquals(10, r.n());
        assertEquals(0.7, r.accuracy(), 1e-15);
        assertTrue(r.ciLow() <= 0.7 && 0.7 <= r.ciHigh());
        assertArrayEquals(new double[] {4.5, 0, -4.5}, r.meanLogits(), 1e-12);
        assertArrayEquals(Classification.confusion(GOLD, PRED, 3), r.confusion());
        assertNull(Classification.report(GOLD, PRED, 3, 100, 0.9, 1).meanLogits());
    }

    /** n predictions that are right with probability p, from a fixed seed. */
    static int[][] noisy(int n, double p, long seed) {
        Random rng = new Random(seed);
        int[] gold = new int[n], pred = new int[n];
        for (int i = 0; i < n; i++) {
            gold[i] = rng.nextInt(4);
            pred[i] = rng.nextDouble() < p ? gold[i] : (gold[i] + 1 + rng.nextInt(3)) % 4;
        }
        return new int[][] {gold, pred};
    }

    @Test
    void bootstrapContainsAccuracyAndNarrowsWithN() {
        double previousWidth = Double.POSITIVE_INFINITY;
        for (int n : new int[] {100, 1000, 10000}) {
            int[][] d = noisy(n, 0.8, n);
            double acc = Classification.accuracy(d[0], d[1]);
            double[] ci = Classification.bootstrapAccuracyCi(d[0], d[1], 1000, 0.95, 3);
            assertTrue(ci[0] < acc && acc < ci[1], "n=" + n + " acc " + acc + " ci " + ci[0] + ".." + ci[1]);
            double width = ci[1] - ci[0];
            // Binomial standard error sqrt(p(1-p)/n); a 95% interval is about 3.9 of them wide.
            double expected = 3.92 * Math.sqrt(acc * (1 - acc) / n);
            assertEquals(expected, width, 0.25 * expected, "n=" + n + " width");
            assertTrue(width < previousWidth / 2, "n=" + n + " width " + width + " vs " + previousWidth);
            previousWidth = width;
        }
    }

    @Test
    void bootstrapDeterministicPerSeed() {
        int[][] d = noisy(500, 0.7, 9);
        double[] a = Classification.bootstrapAccuracyCi(d[0], d[1], 400, 0.95, 123);
        double[] b = Classification.bootstrapAccuracyCi(d[0], d[1], 400, 0.95, 123);
        double[] c = Classification.bootstrapAccuracyCi(d[0], d[1], 400, 0.95, 124);
        assertArrayEquals(a, b, 0.0);
        assertNotEquals(a[0] + "," + a[1], c[0] + "," + c[1]);
    }

    @Test
    void perfectPredictionsGiveDegenerateInterval() {
        int[] g = {0, 1, 2, 1, 0};
        assertArrayEquals(new double[] {1, 1}, Classification.bootstrapAccuracyCi(g, g.clone(), 200, 0.95, 1), 0.0);
    }

    @Test
    void badInputsRejected() {
        assertThrows(IllegalArgumentException.class, () -> Classification.accuracy(new int[2], new int[3]));
        assertThrows(IllegalArgumentException.class, () -> Classification.accuracy(new int[0], new int[0]));
        assertThrows(IllegalArgumentException.class, () -> Classification.confusion(new int[] {0, 3}, new int[] {0, 1}, 3));
        assertThrows(IllegalArgumentException.class, () -> Classification.bootstrapAccuracyCi(GOLD, PRED, 100, 1.0, 1));
        assertThrows(IllegalArgumentException.class, () -> Classification.bootstrapAccuracyCi(GOLD, PRED, 0, 0.95, 1));
    }
}
