package dev.qdrift.model.head;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.QdriftException;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ProbeTrainerTest {
    static final int CLASSES = 3, DIM = 16, PER_CLASS = 200;
    static final List<String> LABELS = List.of("a", "b", "c");

    /** Three Gaussian blobs with non-zero, unevenly scaled means, so standardization matters. */
    record Data(float[][] x, int[] y) {}

    static Data blobs(long seed, int perClass) {
        Random meansRng = new Random(42); // same class means for train and test sets
        double[][] mu = new double[CLASSES][DIM];
        for (int c = 0; c < CLASSES; c++)
            for (int j = 0; j < DIM; j++) mu[c][j] = 5 + meansRng.nextGaussian() * 1.0;
        Random rng = new Random(seed);
        int n = CLASSES * perClass;
        float[][] x = new float[n][DIM];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            int c = i % CLASSES;
            y[i] = c;
            // Dimension j scaled by (j+1) so raw scales differ 16x across dimensions.
            for (int j = 0; j < DIM; j++) x[i][j] = (float) ((mu[c][j] + rng.nextGaussian() * 1.5) * (j + 1));
        }
        return new Data(x, y);
    }

    static double accuracy(LinearHead h, Data d) {
        int ok = 0;
        for (int i = 0; i < d.x().length; i++) if (h.predict(d.x()[i]) == d.y()[i]) ok++;
        return (double) ok / d.x().length;
    }

    @Test
    void learnsSeparableBlobs() {
        Data train = blobs(1, PER_CLASS), test = blobs(2, PER_CLASS);
        LinearHead h = ProbeTrainer.train(train.x(), train.y(), CLASSES, LABELS, "mean", ProbeTrainer.Options.defaults());
        double acc = accuracy(h, test);
        assertTrue(acc > 0.9, "held-out accuracy " + acc);
        assertEquals(DIM, h.dim());
        assertEquals("true", h.metadata().get("converged"), h.metadata().toString());
        assertEquals("mean", h.pooling());
        assertEquals(LABELS, h.labelNames());
    }

    @Test
    void gradientMatchesCentralDifferences() {
        Data d = blobs(3, 10);
        ProbeTrainer.Standardization st = ProbeTrainer.Standardization.fit(d.x());
        double[][] xs = st.apply(d.x());
        Random rng = new Random(7);
        double[] theta = new double[CLASSES * DIM + CLASSES];
        for (int k = 0; k < theta.length; k++) theta[k] = rng.nextGaussian() * 0.5;
        double l2 = 0.1; // large enough that a missing or misplaced penalty term shows up
        double[] grad = new double[theta.length];
        ProbeTrainer.lossAndGradient(xs, d.y(), CLASSES, l2, theta, grad);
        double[] scratch = new double[theta.length];
        double h = 1e-6;
        for (int k = 0; k < theta.length; k++) {
            double keep = theta[k];
            theta[k] = keep + h;
            double up = ProbeTrainer.lossAndGradient(xs, d.y(), CLASSES, l2, theta, scratch);
            theta[k] = keep - h;
            double down = ProbeTrainer.lossAndGradient(xs, d.y(), CLASSES, l2, theta, scratch);
            theta[k] = keep;
            double numeric = (up - down) / (2 * h);
            assertEquals(numeric, grad[k], 1e-7 + 1e-6 * Math.abs(numeric), "d/dtheta[" + k + "]");
        }
    }

    @Test
    void lossAtZeroIsLogNumClasses() {
        // Independent check of the loss value itself: all-zero parameters give uniform softmax.
        Data d = blobs(3, 10);
        double[][] xs = ProbeTrainer.Standardization.fit(d.x()).apply(d.x());
        double[] theta = new double[CLASSES * DIM + CLASSES];
        double loss = ProbeTrainer.lossAndGradient(xs, d.y(), CLASSES, 1.0, theta, new double[theta.length]);
        assertEquals(Math.log(CLASSES), loss, 1e-12);
    }

    @Test
    void deterministic() {
        Data d = blobs(4, 50);
        ProbeTrainer.Options o = ProbeTrainer.Options.defaults();
        LinearHead a = ProbeTrainer.train(d.x(), d.y(), CLASSES, LABELS, "cls", o);
        LinearHead b = ProbeTrainer.train(d.x(), d.y(), CLASSES, LABELS, "cls", o);
        for (int c = 0; c < CLASSES; c++) {
            for (int j = 0; j < DIM; j++) {
                assertEquals(Float.floatToRawIntBits(a.weight()[c][j]), Float.floatToRawIntBits(b.weight()[c][j]));
            }
            assertEquals(Float.floatToRawIntBits(a.bias()[c]), Float.floatToRawIntBits(b.bias()[c]));
        }
        assertEquals(a.metadata(), b.metadata());
    }

    @Test
    void foldedHeadOnRawInputsMatchesStandardizedModel() {
        Data d = blobs(5, 100);
        ProbeTrainer.Standardization st = ProbeTrainer.Standardization.fit(d.x());
        double[][] xs = st.apply(d.x());
        double[] theta = ProbeTrainer.fit(xs, d.y(), CLASSES, ProbeTrainer.Options.defaults()).x();
        LinearHead folded = ProbeTrainer.fold(theta, st, CLASSES, LABELS, "cls", java.util.Map.of());
        double[] z = new double[CLASSES];
        double worst = 0;
        for (int i = 0; i < d.x().length; i++) {
            ProbeTrainer.logits(theta, xs[i], CLASSES, z);
            float[] raw = folded.logits(d.x()[i]);
            double scale = 0;
            for (double v : z) scale = Math.max(scale, Math.abs(v));
            for (int c = 0; c < CLASSES; c++) {
                double rel = Math.abs(raw[c] - z[c]) / scale;
                worst = Math.max(worst, rel);
            }
        }
        // Relative to the largest logit of the example: float storage of weights and bias is the
        // only error source, about 1e-7 each.
        assertTrue(worst < 1e-5, "worst relative logit error " + worst);
    }

    @Test
    void constantDimensionIsHarmless() {
        Data d = blobs(6, 50);
        for (float[] row : d.x()) row[3] = 2.5f;
        LinearHead h = ProbeTrainer.train(d.x(), d.y(), CLASSES, LABELS, "cls", ProbeTrainer.Options.defaults());
        for (float[] w : h.weight()) assertEquals(0f, w[3]);
        for (float b : h.bias()) assertTrue(Float.isFinite(b));
    }

    @Test
    void badLabelsRejected() {
        Data d = blobs(7, 20);
        ProbeTrainer.Options o = ProbeTrainer.Options.defaults();
        int[] outOfRange = d.y().clone();
        outOfRange[5] = 3;
        QdriftException e = assertThrows(QdriftException.class, () -> ProbeTrainer.train(d.x(), outOfRange, CLASSES, LABELS, "cls", o));
        assertTrue(e.getMessage().contains("label 3 of example 5"), e.getMessage());

        int[] negative = d.y().clone();
        negative[0] = -1;
        assertThrows(QdriftException.class, () -> ProbeTrainer.train(d.x(), negative, CLASSES, LABELS, "cls", o));

        int[] missingClass = d.y().clone();
        for (int i = 0; i < missingClass.length; i++) if (missingClass[i] == 2) missingClass[i] = 0;
        e = assertThrows(QdriftException.class, () -> ProbeTrainer.train(d.x(), missingClass, CLASSES, LABELS, "cls", o));
        assertTrue(e.getMessage().contains("class 2 (c)"), e.getMessage());

        assertThrows(QdriftException.class, () -> ProbeTrainer.train(d.x(), new int[3], CLASSES, LABELS, "cls", o));
        assertThrows(QdriftException.class, () -> ProbeTrainer.train(d.x(), d.y(), CLASSES, List.of("a", "b"), "cls", o));
        assertThrows(QdriftException.class, () -> ProbeTrainer.train(d.x(), d.y(), CLASSES, LABELS, "max", o));
    }

    @Test
    void optionsValidated() {
        assertThrows(IllegalArgumentException.class, () -> new ProbeTrainer.Options(-1, 10, 1e-5));
        assertThrows(IllegalArgumentException.class, () -> new ProbeTrainer.Options(1e-3, 0, 1e-5));
        assertThrows(IllegalArgumentException.class, () -> new ProbeTrainer.Options(1e-3, 10, 0));
        assertArrayEquals(new double[] {1e-3, 500, 1e-5},
                new double[] {ProbeTrainer.Options.defaults().l2(), ProbeTrainer.Options.defaults().maxIterations(),
                        ProbeTrainer.Options.defaults().tolerance()});
    }
}
