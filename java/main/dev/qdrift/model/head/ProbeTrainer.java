package dev.qdrift.model.head;

import dev.qdrift.QdriftException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Trains a {@link LinearHead} on fixed embeddings: multinomial logistic regression (softmax +
 * cross-entropy, L2 penalty on the weights but not the bias), full batch, double precision, L-BFGS.
 *
 * <p>Features are standardized per dimension on the training set before fitting, because raw
 * encoder dimensions differ in scale by orders of magnitude (a few "outlier" dimensions dominate),
 * which makes the problem badly conditioned and the L2 penalty uneven across dimensions. The
 * standardization is then folded into the weights and bias, so the saved head applies to raw
 * embeddings and needs no extra state.
 *
 * <p>Deterministic: one thread, fixed loop order, zero start, no randomness; the same inputs give a
 * bit-identical head.
 */
public final class ProbeTrainer {
    private static final Logger log = LoggerFactory.getLogger(ProbeTrainer.class);

    /**
     * @param l2 weight of {@code (l2/2)·‖W‖²} added to the <em>mean</em> cross-entropy, on
     *     standardized features. Default {@value #DEFAULT_L2}: because features are standardized and
     *     the loss is a mean, the value means the same for every encoder and data-set size. It is weak
     *     (about scikit-learn's default C=1 at 1000 examples) so it costs little accuracy, but it keeps
     *     the weights finite when the classes are linearly separable — common with 384–768 dims and a
     *     few thousand examples — and makes the loss strictly convex, so the optimum is unique.
     * @param maxIterations L-BFGS iterations at most (default 500)
     * @param tolerance stop once the Euclidean norm of the gradient of the mean loss is at most this
     *     (default 1e-5)
     */
    public record Options(double l2, int maxIterations, double tolerance) {
        public static final double DEFAULT_L2 = 1e-3;
        public static final int DEFAULT_MAX_ITERATIONS = 500;
        public static final double DEFAULT_TOLERANCE = 1e-5;

        public Options {
            if (!(l2 >= 0) || Double.isInfinite(l2)) throw new IllegalArgumentException("l2 must be finite and >= 0, got " + l2);
            if (maxIterations < 1) throw new IllegalArgumentException("maxIterations must be >= 1, got " + maxIterations);
            if (!(tolerance > 0)) throw new IllegalArgumentException("tolerance must be > 0, got " + tolerance);
        }

        public static Options defaults() {
            return new Options(DEFAULT_L2, DEFAULT_MAX_ITERATIONS, DEFAULT_TOLERANCE);
        }
    }

    private ProbeTrainer() {}

    /**
     * @param x training embeddings [n][dim], raw (not standardized)
     * @param y class index per row, each in [0, numClasses), every class present at least once
     * @return a head whose metadata records the training settings and outcome; callers add the
     *     model id, data set and seed with {@link LinearHead#withMetadata}
     */
    public static LinearHead train(float[][] x, int[] y, int numClasses, List<String> labelNames, String pooling, Options o) {
        validate(x, y, numClasses, labelNames, pooling);
        int n = x.length, dim = x[0].length;
        Standardization st = Standardization.fit(x);
        double[][] xs = st.apply(x);
        log.debug("training probe: {} examples, {} dims, {} classes, l2={}, maxIterations={}, tolerance={}",
                n, dim, numClasses, o.l2(), o.maxIterations(), o.tolerance());

        Lbfgs.Result r = fit(xs, y, numClasses, o);
        if (r.converged()) {
            log.debug("probe converged after {} iterations: loss={} |g|={}", r.iterations(), r.value(), r.gradientNorm());
        } else {
            log.warn("probe stopped after {} iterations without reaching gradient norm {} (|g|={}, loss={})",
                    r.iterations(), o.tolerance(), r.gradientNorm(), r.value());
        }

        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("trainer", "qdrift ProbeTrainer: softmax regression, L-BFGS, standardized features");
        meta.put("train_examples", Integer.toString(n));
        meta.put("l2", Double.toString(o.l2()));
        meta.put("iterations", Integer.toString(r.iterations()));
        meta.put("converged", Boolean.toString(r.converged()));
        meta.put("final_loss", Double.toString(r.value()));
        LinearHead head = fold(r.x(), st, numClasses, labelNames, pooling, meta);

        int correct = 0;
        for (int i = 0; i < n; i++) if (head.predict(x[i]) == y[i]) correct++;
        double trainAccuracy = (double) correct / n;
        log.debug("probe training accuracy {}", trainAccuracy);
        return head.withMetadata(Map.of("train_accuracy", Double.toString(trainAccuracy)));
    }

    /** Per-dimension mean and (population) standard deviation of the training set. */
    record Standardization(double[] mean, double[] std) {
        static Standardization fit(float[][] x) {
            int n = x.length, d = x[0].length;
            double[] mean = new double[d], std = new double[d];
            for (float[] row : x) for (int j = 0; j < d; j++) mean[j] += row[j];
            for (int j = 0; j < d; j++) mean[j] /= n;
            // Two passes (mean first, then squared deviations) to avoid the cancellation of E[x²]-E[x]².
            for (float[] row : x) {
                for (int j = 0; j < d; j++) {
                    double dev = row[j] - mean[j];
                    std[j] += dev * dev;
                }
            }
            for (int j = 0; j < d; j++) {
                std[j] = Math.sqrt(std[j] / n);
                // A constant dimension carries no information; its standardized value is 0 whatever
                // the divisor, and 1 avoids 0/0. (Identical floats sum and divide exactly in double,
                // so a constant column really gets std 0 here, not rounding noise.)
                if (std[j] == 0) std[j] = 1;
            }
            return new Standardization(mean, std);
        }

        double[][] apply(float[][] x) {
            double[][] out = new double[x.length][mean.length];
            for (int i = 0; i < x.length; i++)
                for (int j = 0; j < mean.length; j++) out[i][j] = (x[i][j] - mean[j]) / std[j];
            return out;
        }
    }

    /** Minimizes {@link #lossAndGradient} from zero; the parameter layout is described there. */
    static Lbfgs.Result fit(double[][] xs, int[] y, int numClasses, Options o) {
        int dim = xs[0].length;
        double[] theta0 = new double[numClasses * dim + numClasses];
        return Lbfgs.minimize((theta, grad) -> lossAndGradient(xs, y, numClasses, o.l2(), theta, grad),
                theta0, o.maxIterations(), o.tolerance());
    }

    /**
     * Mean softmax cross-entropy plus {@code (l2/2)·‖W‖²}; writes the gradient into {@code grad}.
     * Parameters are flat: {@code W[c][j]} at {@code c*dim + j}, then the biases at {@code numClasses*dim + c}.
     */
    static double lossAndGradient(double[][] xs, int[] y, int numClasses, double l2, double[] theta, double[] grad) {
        int n = xs.length, dim = xs[0].length, biasAt = numClasses * dim;
        java.util.Arrays.fill(grad, 0);
        double[] z = new double[numClasses];
        double loss = 0;
        for (int i = 0; i < n; i++) {
            double[] row = xs[i];
            logits(theta, row, numClasses, z);
            double max = Double.NEGATIVE_INFINITY;
            for (double v : z) max = Math.max(max, v);
            double sum = 0;
            for (double v : z) sum += Math.exp(v - max);
            double logSumExp = max + Math.log(sum);
            loss += logSumExp - z[y[i]];
            // d(loss_i)/dz_c = softmax_c - [c == y_i]
            for (int c = 0; c < numClasses; c++) {
                double r = Math.exp(z[c] - logSumExp) - (c == y[i] ? 1 : 0);
                grad[biasAt + c] += r;
                int off = c * dim;
                for (int j = 0; j < dim; j++) grad[off + j] += r * row[j];
            }
        }
        loss /= n;
        for (int k = 0; k < grad.length; k++) grad[k] /= n;
        double penalty = 0;
        for (int k = 0; k < biasAt; k++) {
            penalty += theta[k] * theta[k];
            grad[k] += l2 * theta[k];
        }
        return loss + 0.5 * l2 * penalty;
    }

    /** Logits of the model in standardized space: z = W·xs + b. */
    static void logits(double[] theta, double[] xs, int numClasses, double[] z) {
        int dim = xs.length, biasAt = numClasses * dim;
        for (int c = 0; c < numClasses; c++) {
            double s = theta[biasAt + c];
            int off = c * dim;
            for (int j = 0; j < dim; j++) s += theta[off + j] * xs[j];
            z[c] = s;
        }
    }

    /**
     * Turns the standardized-space model into one on raw embeddings:
     * {@code Σ_j W_cj (x_j - μ_j)/σ_j + b_c = Σ_j (W_cj/σ_j) x_j + (b_c - Σ_j W_cj μ_j/σ_j)}.
     * Computed in double, rounded to float once at the end.
     */
    static LinearHead fold(double[] theta, Standardization st, int numClasses, List<String> labelNames, String pooling,
                           Map<String, String> meta) {
        int dim = st.mean().length, biasAt = numClasses * dim;
        float[][] w = new float[numClasses][dim];
        float[] b = new float[numClasses];
        for (int c = 0; c < numClasses; c++) {
            double shift = 0;
            for (int j = 0; j < dim; j++) {
                double wj = theta[c * dim + j] / st.std()[j];
                w[c][j] = (float) wj;
                shift += wj * st.mean()[j];
            }
            b[c] = (float) (theta[biasAt + c] - shift);
        }
        return new LinearHead(w, b, labelNames, pooling, meta);
    }

    private static void validate(float[][] x, int[] y, int numClasses, List<String> labelNames, String pooling) {
        if (numClasses < 2) throw new QdriftException("a probe needs at least 2 classes, got " + numClasses);
        if (labelNames.size() != numClasses) {
            throw new QdriftException(labelNames.size() + " label names given for " + numClasses + " classes");
        }
        if (!LinearHead.isPooling(pooling)) {
            throw new QdriftException("pooling must be one of " + LinearHead.POOLINGS + ", got '" + pooling + "'");
        }
        if (x.length == 0) throw new QdriftException("no training examples");
        if (x.length != y.length) {
            throw new QdriftException(x.length + " training embeddings but " + y.length + " labels");
        }
        int dim = x[0].length;
        if (dim == 0) throw new QdriftException("training embeddings have 0 dimensions");
        int[] count = new int[numClasses];
        for (int i = 0; i < x.length; i++) {
            if (x[i].length != dim) {
                throw new QdriftException("training embedding " + i + " has " + x[i].length + " dims, embedding 0 has " + dim);
            }
            for (float v : x[i]) {
                if (!Float.isFinite(v)) throw new QdriftException("training embedding " + i + " holds a non-finite value (" + v + ")");
            }
            if (y[i] < 0 || y[i] >= numClasses) {
                throw new QdriftException("label " + y[i] + " of example " + i + " is outside [0, " + numClasses + ")");
            }
            count[y[i]]++;
        }
        for (int c = 0; c < numClasses; c++) {
            if (count[c] == 0) {
                throw new QdriftException("class " + c + " (" + labelNames.get(c) + ") has no training examples; every class needs at least one");
            }
        }
    }
}
