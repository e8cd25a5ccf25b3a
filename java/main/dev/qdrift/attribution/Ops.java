package dev.qdrift.attribution;

import dev.qdrift.model.BertWeights;
import org.apache.commons.math3.special.Erf;

/**
 * The encoder's operations and their backward passes on one sequence, in plain loops over row-major
 * double arrays. Written for clarity: each function is the textbook formula, with the inner loops
 * arranged as axpy (y += a x over contiguous rows), which the JIT vectorizes.
 */
final class Ops {
    private Ops() {}

    private static final double SQRT1_2 = Math.sqrt(0.5), INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

    /**
     * A linear layer (y = x W^T + b, W [out, in]) kept twice: its transpose [in, out] for the forward,
     * and W itself for the backward's dX = dY W, so both run along contiguous rows. float32, as loaded.
     */
    record Dense(float[] w, float[] wt, float[] bias, int out, int in) {
        static Dense of(BertWeights.Linear l) {
            return new Dense(l.weight(), l.transposedWeight(), l.bias(), l.out(), l.in());
        }
    }

    /** y[yo : yo + n] += a * x[xo : xo + n]. */
    private static void axpy(double a, float[] x, int xo, double[] y, int yo, int n) {
        for (int j = 0; j < n; j++) y[yo + j] += a * x[xo + j];
    }

    private static void axpy(double a, double[] x, int xo, double[] y, int yo, int n) {
        for (int j = 0; j < n; j++) y[yo + j] += a * x[xo + j];
    }

    private static double dot(double[] a, int ao, double[] b, int bo, int n) {
        double s = 0;
        for (int j = 0; j < n; j++) s += a[ao + j] * b[bo + j];
        return s;
    }

    // ---- linear ---------------------------------------------------------------------------------

    /** y [rows, out] = x [rows, in] W^T + b. */
    static double[] linear(double[] x, int rows, Dense d, Precision p) {
        int in = d.in(), out = d.out();
        double[] y = new double[rows * out];
        for (int r = 0; r < rows; r++) {
            int yo = r * out;
            for (int o = 0; o < out; o++) y[yo + o] = d.bias()[o];
            for (int k = 0; k < in; k++) {
                double a = x[r * in + k];
                if (a != 0) axpy(a, d.wt(), k * out, y, yo, out);
            }
        }
        p.round(y);
        return y;
    }

    /** dX [rows, in] = dY [rows, out] W. */
    static double[] linearBackward(double[] dy, int rows, Dense d) {
        int in = d.in(), out = d.out();
        double[] dx = new double[rows * in];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < out; o++) {
                double a = dy[r * out + o];
                if (a != 0) axpy(a, d.w(), o * in, dx, r * in, in);
            }
        // Weight gradients (the fine-tuning seam, not computed here): dW = dY^T X (X: the layer's input,
        // kept by the caller's tape), db = column sums of dY.
        return dx;
    }

    // ---- LayerNorm ------------------------------------------------------------------------------

    /** LayerNorm output and what its backward needs: the normalized input x̂ and 1/σ per row (float64, unrounded). */
    record Normed(double[] out, double[] xhat, double[] rstd) {}

    /** y = gamma (x - mean) / sqrt(var + eps) + beta per row, var the biased (population) variance, as BERT. */
    static Normed layerNorm(double[] x, int rows, int dim, BertWeights.Norm n, double eps, Precision p) {
        double[] out = new double[rows * dim], xhat = new double[rows * dim], rstd = new double[rows];
        float[] g = n.gamma(), b = n.beta();
        for (int r = 0, o = 0; r < rows; r++, o += dim) {
            double mean = 0, var = 0;
            for (int d = 0; d < dim; d++) mean += x[o + d];
            mean /= dim;
            for (int d = 0; d < dim; d++) var += (x[o + d] - mean) * (x[o + d] - mean);
            rstd[r] = 1 / Math.sqrt(var / dim + eps);
            for (int d = 0; d < dim; d++) {
                xhat[o + d] = (x[o + d] - mean) * rstd[r];
                out[o + d] = p.round(xhat[o + d] * g[d] + b[d]);
            }
        }
        return new Normed(out, xhat, rstd);
    }

    /** dx = (1/σ) (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)) with dx̂ = dy gamma. Weight gradients would be dgamma = Σ dy x̂, dbeta = Σ dy. */
    static double[] layerNormBackward(double[] dy, Normed c, BertWeights.Norm n, int rows, int dim) {
        double[] dx = new double[rows * dim], dxhat = new double[dim];
        float[] g = n.gamma();
        for (int r = 0, o = 0; r < rows; r++, o += dim) {
            double m1 = 0, m2 = 0;
            for (int d = 0; d < dim; d++) {
                dxhat[d] = dy[o + d] * g[d];
                m1 += dxhat[d];
                m2 += dxhat[d] * c.xhat()[o + d];
            }
            m1 /= dim;
            m2 /= dim;
            for (int d = 0; d < dim; d++) dx[o + d] = c.rstd()[r] * (dxhat[d] - m1 - c.xhat()[o + d] * m2);
        }
        return dx;
    }

    // ---- GELU -----------------------------------------------------------------------------------

    /** Φ(u), the standard normal CDF, through erfc so that the lower tail keeps its relative accuracy. */
    private static double normalCdf(double u) {
        return 0.5 * Erf.erfc(-u * SQRT1_2);
    }

    /** Exact-erf GELU, u Φ(u), elementwise. */
    static double[] gelu(double[] u, Precision p) {
        double[] g = new double[u.length];
        for (int i = 0; i < u.length; i++) g[i] = p.round(u[i] * normalCdf(u[i]));
        return g;
    }

    /** du = dg (Φ(u) + u φ(u)). */
    static double[] geluBackward(double[] dg, double[] u) {
        double[] du = new double[u.length];
        for (int i = 0; i < u.length; i++) {
            double x = u[i];
            du[i] = dg[i] == 0 ? 0 : dg[i] * (normalCdf(x) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI);
        }
        return du;
    }

    // ---- attention ------------------------------------------------------------------------------

    /**
     * Multi-head self-attention over one unpadded sequence: per head h (columns h*hd .. h*hd+hd-1 of
     * q, k, v [seq, heads*hd]), P = softmax(q k^T / sqrt(hd)) row-wise, context = P v. The probabilities
     * [heads, seq, seq] go to probs for the backward.
     */
    static double[] attention(double[] q, double[] k, double[] v, int seq, int heads, int hd, double[] probs, Precision p) {
        int width = heads * hd;
        double scale = 1 / Math.sqrt(hd);
        double[] ctx = new double[seq * width];
        for (int h = 0; h < heads; h++) {
            int col = h * hd;
            for (int i = 0; i < seq; i++) {
                int po = (h * seq + i) * seq;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < seq; j++) {
                    probs[po + j] = scale * dot(q, i * width + col, k, j * width + col, hd);
                    max = Math.max(max, probs[po + j]);
                }
                double sum = 0;
                for (int j = 0; j < seq; j++) sum += probs[po + j] = Math.exp(probs[po + j] - max);
                for (int j = 0; j < seq; j++) {
                    probs[po + j] /= sum;
                    axpy(probs[po + j], v, j * width + col, ctx, i * width + col, hd);
                }
            }
        }
        p.round(ctx);
        return ctx;
    }

    /**
     * Backward of {@link #attention}: dP = dC v^T, dv = P^T dC, dS = P ⊙ (dP - rowsum(P ⊙ dP)) (softmax),
     * dq = dS k / sqrt(hd), dk = dS^T q / sqrt(hd). Writes dq, dk, dv [seq, heads*hd].
     */
    static void attentionBackward(double[] dctx, double[] q, double[] k, double[] v, double[] probs, int seq, int heads, int hd,
                                  double[] dq, double[] dk, double[] dv) {
        int width = heads * hd;
        double scale = 1 / Math.sqrt(hd);
        double[] dp = new double[seq];
        for (int h = 0; h < heads; h++) {
            int col = h * hd;
            for (int i = 0; i < seq; i++) {
                int po = (h * seq + i) * seq, ci = i * width + col;
                double rowDot = 0;
                for (int j = 0; j < seq; j++) {
                    double pij = probs[po + j];
                    dp[j] = dot(dctx, ci, v, j * width + col, hd);
                    rowDot += pij * dp[j];
                    axpy(pij, dctx, ci, dv, j * width + col, hd);
                }
                for (int j = 0; j < seq; j++) {
                    double ds = probs[po + j] * (dp[j] - rowDot) * scale;
                    axpy(ds, k, j * width + col, dq, ci, hd);
                    axpy(ds, q, ci, dk, j * width + col, hd);
                }
            }
        }
    }

    static double[] add(double[] a, double[] b, Precision p) {
        double[] s = new double[a.length];
        for (int i = 0; i < a.length; i++) s[i] = p.round(a[i] + b[i]);
        return s;
    }

    static void addInto(double[] acc, double[] b) {
        for (int i = 0; i < acc.length; i++) acc[i] += b[i];
    }
}
