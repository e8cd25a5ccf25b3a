package dev.qdrift.model.head;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Limited-memory BFGS with a backtracking Armijo line search, for smooth objectives in double
 * precision (Nocedal &amp; Wright, Numerical Optimization, algorithms 7.4 and 3.1).
 *
 * <p>Written out here instead of taken from commons-math3 because that library has no L-BFGS, and
 * because the probe must be bit-for-bit reproducible: everything below is a fixed sequence of
 * sequential double operations, so the same objective and start give the same result on every run.
 */
final class Lbfgs {
    private static final Logger log = LoggerFactory.getLogger(Lbfgs.class);

    /** A differentiable function: returns f(x) and writes the gradient into {@code grad}. */
    interface Objective {
        double evaluate(double[] x, double[] grad);
    }

    /** Where the optimizer stopped. {@code converged} means the gradient norm reached the tolerance. */
    record Result(double[] x, double value, double gradientNorm, int iterations, boolean converged) {}

    /** Number of (s, y) correction pairs kept; 10 is the usual choice and ample for a convex loss. */
    private static final int MEMORY = 10;
    /** Armijo sufficient-decrease constant: accept a step that achieves 1e-4 of the predicted decrease. */
    private static final double ARMIJO_C1 = 1e-4;
    private static final double BACKTRACK = 0.5;
    private static final int MAX_BACKTRACKS = 60;

    private Lbfgs() {}

    static Result minimize(Objective f, double[] start, int maxIterations, double tolerance) {
        int n = start.length;
        double[] x = start.clone();
        double[] g = new double[n];
        double fx = f.evaluate(x, g);
        // Correction pairs, newest last: s = x_{k+1} - x_k, y = g_{k+1} - g_k, rho = 1 / (y.s).
        Deque<double[][]> pairs = new ArrayDeque<>();
        double[] xNew = new double[n];
        double[] gNew = new double[n];

        int iter = 0;
        double gNorm = norm(g);
        while (gNorm > tolerance && iter < maxIterations) {
            double[] d = direction(g, pairs);
            double slope = dot(g, d);
            if (!(slope < 0)) {
                // Rounding can make the quasi-Newton direction useless; forget the history and
                // fall back to steepest descent rather than stepping uphill.
                pairs.clear();
                d = direction(g, pairs);
                slope = dot(g, d);
            }
            // With no curvature history yet, -g has the gradient's scale, which can be far from a
            // sensible step; start from a unit-length step instead. Later the two-loop recursion
            // scales the direction itself and the natural first trial step is 1.
            double step = pairs.isEmpty() ? Math.min(1.0, 1.0 / gNorm) : 1.0;

            double fNew = Double.NaN;
            boolean accepted = false;
            for (int b = 0; b < MAX_BACKTRACKS; b++) {
                for (int i = 0; i < n; i++) xNew[i] = x[i] + step * d[i];
                fNew = f.evaluate(xNew, gNew);
                // NaN/inf (e.g. overflow on an overly long step) fails this test and just shrinks.
                if (fNew <= fx + ARMIJO_C1 * step * slope) {
                    accepted = true;
                    break;
                }
                step *= BACKTRACK;
            }
            if (!accepted) {
                // No decrease even for a tiny step: we are at the limit of double precision.
                log.debug("L-BFGS: line search failed at iteration {} (f={}, |g|={}); stopping", iter, fx, gNorm);
                break;
            }

            double[] s = new double[n];
            double[] yv = new double[n];
            for (int i = 0; i < n; i++) {
                s[i] = xNew[i] - x[i];
                yv[i] = gNew[i] - g[i];
            }
            double sy = dot(s, yv);
            // Only keep pairs with positive curvature, which keeps the implied inverse Hessian
            // positive definite (always true for a strictly convex objective, barring rounding).
            if (sy > 1e-12 * norm(s) * norm(yv)) {
                if (pairs.size() == MEMORY) pairs.removeFirst();
                pairs.addLast(new double[][] {s, yv, {1.0 / sy}});
            }

            double[] t = x; x = xNew; xNew = t;
            t = g; g = gNew; gNew = t;
            fx = fNew;
            gNorm = norm(g);
            iter++;
            if (iter % 10 == 0 || gNorm <= tolerance) {
                log.debug("L-BFGS iteration {}: f={} |g|={} step={}", iter, fx, gNorm, step);
            }
        }
        return new Result(x, fx, gNorm, iter, gNorm <= tolerance);
    }

    /** Two-loop recursion: returns -H g, where H approximates the inverse Hessian from the pairs. */
    private static double[] direction(double[] g, Deque<double[][]> pairs) {
        int n = g.length;
        double[] q = g.clone();
        double[] alpha = new double[pairs.size()];
        int k = pairs.size() - 1;
        for (Iterator<double[][]> it = pairs.descendingIterator(); it.hasNext(); k--) {
            double[][] p = it.next();
            alpha[k] = p[2][0] * dot(p[0], q);
            axpy(-alpha[k], p[1], q);
        }
        // Initial inverse Hessian H0 = gamma I with gamma = s.y / y.y of the newest pair: this is
        // what makes a unit step the right first guess in the line search.
        if (!pairs.isEmpty()) {
            double[][] last = pairs.peekLast();
            double gamma = dot(last[0], last[1]) / dot(last[1], last[1]);
            for (int i = 0; i < n; i++) q[i] *= gamma;
        }
        k = 0;
        for (double[][] p : pairs) {
            double beta = p[2][0] * dot(p[1], q);
            axpy(alpha[k] - beta, p[0], q);
            k++;
        }
        for (int i = 0; i < n; i++) q[i] = -q[i];
        return q;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    static double norm(double[] a) {
        return Math.sqrt(dot(a, a));
    }

    /** y += a * x */
    private static void axpy(double a, double[] x, double[] y) {
        for (int i = 0; i < x.length; i++) y[i] += a * x[i];
    }
}
