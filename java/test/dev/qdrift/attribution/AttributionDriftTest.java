package dev.qdrift.attribution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link AttributionDrift} on hand-made vectors, ties included. */
class AttributionDriftTest {

    /** Ties in b: τ-b = C / sqrt(n0 (n0 - tied pairs in b)) = 4 / sqrt(6 * 4); τ-a would give 4/6. */
    @Test
    void kendallIsTauB() {
        double[] a = {1, 2, 3, 4}, b = {1, 1, 2, 2};
        assertEquals(4 / Math.sqrt(24), AttributionDrift.kendallTauB(a, b), 1e-12);
        assertEquals(1, AttributionDrift.kendallTauB(a, a), 1e-12);
        assertEquals(-1, AttributionDrift.kendallTauB(a, new double[] {4, 3, 2, 1}), 1e-12);
    }

    @Test
    void kendallMatchesBruteForceTauBWithManyTies() {
        Random r = new Random(3);
        for (int trial = 0; trial < 20; trial++) {
            int n = 3 + r.nextInt(15);
            double[] a = new double[n], b = new double[n];
            for (int i = 0; i < n; i++) {
                a[i] = r.nextInt(4);
                b[i] = r.nextInt(3) - 1;
            }
            double expected = bruteForceTauB(a, b);
            double got = AttributionDrift.kendallTauB(a, b);
            if (Double.isNaN(expected)) assertTrue(Double.isNaN(got));
            else assertEquals(expected, got, 1e-12, "trial " + trial);
        }
    }

    private static double bruteForceTauB(double[] a, double[] b) {
        long c = 0, d = 0, tieA = 0, tieB = 0, n0 = 0;
        for (int i = 0; i < a.length; i++)
            for (int j = i + 1; j < a.length; j++) {
                n0++;
                double sa = Math.signum(a[i] - a[j]), sb = Math.signum(b[i] - b[j]);
                if (sa == 0) tieA++;
                if (sb == 0) tieB++;
                if (sa * sb > 0) c++;
                if (sa * sb < 0) d++;
            }
        return (c - d) / Math.sqrt((double) (n0 - tieA) * (n0 - tieB));
    }

    /** Tied values share their average rank: ranks of b are 1.5, 1.5, 3.5, 3.5, and ρ = 4 / (sqrt(5) 2). */
    @Test
    void spearmanAveragesTiedRanks() {
        assertEquals(4 / (2 * Math.sqrt(5)), AttributionDrift.spearman(new double[] {1, 2, 3, 4}, new double[] {1, 1, 2, 2}), 1e-12);
        assertEquals(1, AttributionDrift.spearman(new double[] {0.1, 5, 2}, new double[] {1, 30, 4}), 1e-12);
        assertTrue(Double.isNaN(AttributionDrift.spearman(new double[] {1, 2, 3}, new double[] {7, 7, 7})), "constant vector");
    }

    @Test
    void topKOverlapBreaksMagnitudeTiesByPosition() {
        double[] a = {0.5, -0.9, 0.1, 0.9, 0.0}, b = {0.9, 0.1, -0.5, 0.2, 0.0};
        // |a|: positions 1 and 3 tie at 0.9 -> top-1 of a is {1}; top-1 of b is {0}.
        assertEquals(0, AttributionDrift.topKJaccard(a, b, 1), 0);
        // top-3: a {1, 3, 0}, b {0, 2, 3}: intersection 2, union 4.
        assertEquals(0.5, AttributionDrift.topKJaccard(a, b, 3), 0);
        assertEquals(1, AttributionDrift.topKJaccard(a, b, 5), 0);
        assertEquals(1, AttributionDrift.topKJaccard(a, b, 50), 0, "k capped at n");
        assertEquals(1, AttributionDrift.topKJaccard(a, new double[] {-0.5, 0.9, 0, -0.9, 0.2}, 3), 0, "magnitudes, not signs");
    }

    @Test
    void signAgreementAndCosine() {
        double[] a = {0.5, -0.9, 0.1, 0.9, 0.0}, b = {0.9, 0.1, -0.5, 0.2, 0.0};
        assertEquals(0.6, AttributionDrift.signAgreement(a, b), 1e-12); // positions 0, 3 and 4 (both zero)
        assertEquals(1, AttributionDrift.cosine(new double[] {1, 2}, new double[] {2, 4}), 1e-12);
        assertEquals(0, AttributionDrift.cosine(new double[] {1, 0}, new double[] {0, 3}), 1e-12);
        assertTrue(Double.isNaN(AttributionDrift.cosine(new double[] {0, 0}, new double[] {1, 1})));
    }

    @Test
    void compareCollectsEverything() {
        double[] a = {0.5, -0.9, 0.1, 0.9, 0.0}, b = {0.9, 0.1, -0.5, 0.2, 0.0};
        AttributionDrift.Metrics m = AttributionDrift.compare(a, b);
        assertEquals(5, m.n());
        assertEquals(AttributionDrift.spearman(a, b), m.spearman());
        assertEquals(AttributionDrift.kendallTauB(a, b), m.kendallTauB());
        assertEquals(0, m.top1());
        assertEquals(0.5, m.top3());
        assertEquals(1, m.top5());
        assertEquals(0.6, m.signAgreement(), 1e-12);
        assertArrayEqualsApprox(new double[] {-0.4, -1.0, 0.6, 0.7, 0}, AttributionDrift.difference(a, b));
    }

    @Test
    void rejectsMismatchedOrNaN() {
        assertThrows(IllegalArgumentException.class, () -> AttributionDrift.compare(new double[] {1, 2}, new double[] {1}));
        assertThrows(IllegalArgumentException.class, () -> AttributionDrift.compare(new double[] {1, Double.NaN}, new double[] {1, 2}));
    }

    private static void assertArrayEqualsApprox(double[] e, double[] a) {
        assertEquals(e.length, a.length);
        for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], 1e-12);
    }
}
