package dev.qdrift.attribution;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.model.tokenizer.TokenBatch;
import dev.qdrift.model.tokenizer.Tokenizer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/**
 * {@link Gradients} on a small random BERT: the forward agrees with {@link Encoder} on the CPU backend,
 * and the backward with central finite differences of the float64 forward.
 */
class GradientsTest {
    private static final BertWeights W = TestModels.small(7);

    private static Gradients model(Pooling pooling) {
        return Gradients.fp32(W, TestModels.head(3, 16, 11, pooling.id()), pooling);
    }

    @ParameterizedTest
    @EnumSource(Pooling.class)
    void forwardAgreesWithEncoder(Pooling pooling) {
        Encoder enc = new Encoder(W, new CpuBackend());
        Gradients g = model(pooling);
        for (int len : new int[] {1, 5, 13}) {
            Sequence s = TestModels.sequence(len, len);
            Encoder.Output ref = TestModels.encoderOutput(enc, s, pooling);
            AttributionModel.Output out = g.forward(s);
            assertTrue(TestModels.relMaxError(out.lastHidden(), ref.lastHidden()) < 1e-5, "last hidden, length " + len);
            assertTrue(TestModels.relMaxError(out.pooled(), ref.pooled()) < 1e-5, "pooled, length " + len);
            float[] logits = g.head().logits(ref.pooled());
            assertTrue(TestModels.relMaxError(out.logits(), logits) < 1e-5, "logits, length " + len);
        }
    }

    /** Padding: the encoder's real tokens in a padded batch compute what the unpadded sequence computes. */
    @Test
    void forwardAgreesWithEncoderOnAPaddedBatch() {
        Sequence a = TestModels.sequence(9, 1), b = TestModels.sequence(4, 2);
        TokenBatch batch = TokenBatch.pad(new Tokenizer.Encoded[] {
            new Tokenizer.Encoded(a.ids(), a.typeIds(), a.wordIds(), new String[9], false),
            new Tokenizer.Encoded(b.ids(), b.typeIds(), b.wordIds(), new String[4], false)});
        Encoder.Output ref = new Encoder(W, new CpuBackend()).forward(batch, Pooling.MEAN);
        AttributionModel.Output out = model(Pooling.MEAN).forward(b);
        float[] refB = java.util.Arrays.copyOfRange(ref.lastHidden(), 9 * 16, 9 * 16 + 4 * 16);
        assertTrue(TestModels.relMaxError(out.lastHidden(), refB) < 1e-5);
        assertTrue(TestModels.relMaxError(out.pooled(), java.util.Arrays.copyOfRange(ref.pooled(), 16, 32)) < 1e-5);
    }

    /** Every coordinate of d target / d word vectors against central differences of the float64 forward (step 1e-5). */
    @ParameterizedTest
    @EnumSource(Pooling.class)
    void gradientMatchesFiniteDifferencesInFloat64(Pooling pooling) {
        Gradients g = model(pooling).withPrecision(Precision.FLOAT64);
        Sequence s = TestModels.sequence(6, 3);
        double[] words = g.wordVectors(s);
        for (Target target : new Target[] {Target.predictedLogProb(), Target.logit(1)}) {
            AttributionModel.Result r = g.gradient(s, words, target);
            double[] fd = new double[words.length];
            for (int i = 0; i < words.length; i++) fd[i] = TestModels.finiteDifference(g, s, words, r.target(), i, 1e-5);
            double err = TestModels.relMaxError(r.gradient(), fd);
            System.out.printf("random model, %s pooling, %s: gradient vs float64 FD, relative max error %.2e%n", pooling.id(), r.target(), err);
            assertTrue(err < 1e-4, pooling + " " + target + ": relative error " + err);
        }
    }

    /** The float32-stored forward's gradient is the float64 one up to float32 rounding of the activations. */
    @Test
    void float32GradientIsCloseToFloat64() {
        Gradients g = model(Pooling.CLS);
        Sequence s = TestModels.sequence(8, 4);
        double[] g32 = g.gradient(s, Target.logit(0)).gradient();
        double[] g64 = g.withPrecision(Precision.FLOAT64).gradient(s, Target.logit(0)).gradient();
        assertTrue(TestModels.relMaxError(g32, g64) < 1e-4);
    }

    @Test
    void batchedGradientsEqualSingleOnes() {
        Gradients g = model(Pooling.MEAN);
        Sequence s = TestModels.sequence(5, 5);
        double[] w = g.wordVectors(s), half = w.clone();
        for (int i = 0; i < half.length; i++) half[i] *= 0.5;
        var batch = g.gradients(s, java.util.List.of(w, half), Target.logProb(2));
        assertArrayEquals(g.gradient(s, w, Target.logProb(2)).gradient(), batch.get(0).gradient());
        assertArrayEquals(g.gradient(s, half, Target.logProb(2)).gradient(), batch.get(1).gradient());
    }

    @Test
    void predictedTargetResolvesToTheArgmax() {
        Gradients g = model(Pooling.CLS);
        Sequence s = TestModels.sequence(5, 6);
        AttributionModel.Result r = g.gradient(s, Target.predictedLogit());
        assertEquals(LinearHead.argmax(toFloat(r.logits())), r.target().classIndex());
        assertEquals(r.logits()[r.target().classIndex()], r.value());
    }

    private static float[] toFloat(double[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) f[i] = (float) a[i];
        return f;
    }
}
