package dev.qdrift.attribution;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.apache.commons.math3.analysis.integration.gauss.GaussIntegrator;
import org.apache.commons.math3.analysis.integration.gauss.GaussIntegratorFactory;
import org.junit.jupiter.api.Test;

class QuadratureTest {

    @Test
    void gaussLegendreMatchesCommonsMath() {
        GaussIntegratorFactory f = new GaussIntegratorFactory();
        for (int n = 1; n <= 24; n++) {
            GaussIntegrator ref = f.legendreHighPrecision(n, 0, 1);
            Quadrature.Nodes q = Quadrature.nodes(Quadrature.Rule.GAUSS_LEGENDRE, n);
            for (int k = 0; k < n; k++) {
                assertEquals(ref.getPoint(k), q.alphas()[k], 1e-14, "n " + n + " node " + k);
                assertEquals(ref.getWeight(k), q.weights()[k], 1e-14, "n " + n + " weight " + k);
            }
        }
    }

    /** n nodes integrate x^d exactly on [0, 1] for d <= 2n - 1. */
    @Test
    void gaussLegendreIsExactForPolynomials() {
        for (int n : new int[] {1, 2, 5, 16, 64, 200}) {
            Quadrature.Nodes q = Quadrature.nodes(Quadrature.Rule.GAUSS_LEGENDRE, n);
            for (int d = 0; d <= Math.min(2 * n - 1, 60); d++) {
                double s = 0;
                for (int k = 0; k < n; k++) s += q.weights()[k] * Math.pow(q.alphas()[k], d);
                assertEquals(1.0 / (d + 1), s, 1e-13, "n " + n + " degree " + d);
            }
        }
    }

    @Test
    void riemannRules() {
        for (Quadrature.Rule r : Quadrature.Rule.values()) {
            Quadrature.Nodes q = Quadrature.nodes(r, 4);
            double w = 0;
            for (double x : q.weights()) w += x;
            assertEquals(1, w, 1e-15, r + ": weights sum to the interval's length");
        }
        assertEquals(0.0, Quadrature.nodes(Quadrature.Rule.LEFT, 4).alphas()[0]);
        assertEquals(1.0, Quadrature.nodes(Quadrature.Rule.RIGHT, 4).alphas()[3]);
        assertEquals(0.125, Quadrature.nodes(Quadrature.Rule.MIDDLE, 4).alphas()[0]);
        Quadrature.Nodes t = Quadrature.nodes(Quadrature.Rule.TRAPEZOID, 4);
        assertEquals(5, t.size());
        assertEquals(0.125, t.weights()[0]);
        assertEquals(0.25, t.weights()[2]);
        // Trapezoid and midpoint are exact for linear functions.
        for (Quadrature.Rule r : new Quadrature.Rule[] {Quadrature.Rule.MIDDLE, Quadrature.Rule.TRAPEZOID}) {
            Quadrature.Nodes q = Quadrature.nodes(r, 3);
            double s = 0;
            for (int k = 0; k < q.size(); k++) s += q.weights()[k] * (2 * q.alphas()[k] + 1);
            assertEquals(2, s, 1e-14, r.toString());
        }
    }
}
