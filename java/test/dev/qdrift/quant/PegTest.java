package dev.qdrift.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.BertConfig;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.RandomWeights;
import dev.qdrift.model.tokenizer.TokenBatch;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PegTest {
    /** Calibration statistics of one hidden-size site with given per-channel ranges. */
    static CalibrationStats stats(float[] lo, float[] hi) {
        CalibrationStats c = new CalibrationStats();
        CalibrationStats.SiteStats s = new CalibrationStats.SiteStats();
        s.channelMin = lo;
        s.channelMax = hi;
        s.histogram = new long[CalibrationStats.BINS];
        c.sites.put("layer.0.output_norm", s);
        return c;
    }

    @Test
    void outlierChannelsShareTheFirstGroup() {
        int h = 12;
        float[] lo = new float[h], hi = new float[h];
        for (int c = 0; c < h; c++) {
            lo[c] = -1;
            hi[c] = 1 + c * 0.01f;
        }
        hi[7] = 50;
        lo[3] = -40;
        int[] perm = Peg.rangePermutation(stats(lo, hi), h);
        assertEquals(7, perm[0]);
        assertEquals(3, perm[1]);
        int[] group = Peg.groupOf(perm, 4);
        assertEquals(0, group[7]);
        assertEquals(0, group[3]);
        assertThrows(QdriftException.class, () -> Peg.groupOf(perm, 5), "5 groups do not divide 12");
    }

    @Test
    void oneGroupIsPerTensorAndHiddenSizeGroupsArePerChannel() {
        Random r = new Random(3);
        int h = 8, rows = 5;
        float[] lo = new float[h], hi = new float[h];
        for (int c = 0; c < h; c++) {
            lo[c] = -r.nextFloat() * 5;
            hi[c] = r.nextFloat() * 5;
        }
        CalibrationStats st = stats(lo, hi);
        int[] perm = Peg.rangePermutation(st, h);
        float[] x = new float[rows * h];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * 3;
        float[] peg1 = quantize(st, x, rows, h, new QuantSpec(8, false, QuantSpec.Granularity.PER_GROUP, 1, QuantSpec.Calibrator.MINMAX, 0),
                Peg.groupOf(perm, 1));
        float[] tensor = quantize(st, x, rows, h, QuantSpec.activations(8, QuantSpec.Calibrator.MINMAX, 0), null);
        assertArrayEquals(tensor, peg1);
        float[] pegH = quantize(st, x, rows, h, new QuantSpec(8, false, QuantSpec.Granularity.PER_GROUP, h, QuantSpec.Calibrator.MINMAX, 0),
                Peg.groupOf(perm, h));
        float[] channel = quantize(st, x, rows, h, new QuantSpec(8, false, QuantSpec.Granularity.PER_CHANNEL, 0, QuantSpec.Calibrator.MINMAX, 0), null);
        assertArrayEquals(channel, pegH);
    }

    static float[] quantize(CalibrationStats st, float[] x, int rows, int h, QuantSpec spec, int[] groups) {
        CpuBackend cpu = new CpuBackend();
        ActivationQuantizer q = new ActivationQuantizer(cpu, spec, st, java.util.Set.of(), groups);
        var buf = cpu.upload(x);
        q.apply(0, dev.qdrift.model.Site.OUTPUT_NORM, buf, rows, h);
        float[] out = new float[x.length];
        cpu.download(buf, out);
        return out;
    }

    static double relative(float[] got, float[] want) {
        double d = 0, n = 0;
        for (int i = 0; i < want.length; i++) {
            d += ((double) got[i] - want[i]) * ((double) got[i] - want[i]);
            n += (double) want[i] * want[i];
        }
        return Math.sqrt(d / n);
    }

    /** Folding the permutation into the weights changes nothing in FP32 but the order of hidden channels. */
    @Test
    void foldedPermutationGivesTheSameOutputs() {
        BertConfig c = new BertConfig(500, 48, 2, 4, 96, 64, 2, 1e-12f);
        BertWeights w = RandomWeights.generate(c, 11, true);
        Random r = new Random(System.nanoTime());
        int[] perm = new int[c.hidden()];
        for (int i = 0; i < perm.length; i++) perm[i] = i;
        for (int i = perm.length - 1; i > 0; i--) {
            int j = r.nextInt(i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        int b = 3, t = 10;
        int[] ids = new int[b * t];
        for (int i = 0; i < ids.length; i++) ids[i] = 1 + r.nextInt(499);
        TokenBatch in = TokenBatch.ofIds(b, t, ids);
        CpuBackend cpu = new CpuBackend();
        for (Pooling p : new Pooling[] {Pooling.MEAN, Pooling.CLS}) {
            Encoder.Output plain = new Encoder(w, cpu).forward(in, p);
            Encoder.Output folded = new Encoder(Peg.fold(w, perm), cpu).forward(in, p);
            // Norm: ||folded - permuted plain||_2 / ||permuted plain||_2. Folding reorders the sums of the
            // GEMMs (over K) and of LayerNorm, so FP32 rounding differs: ~1e-7, tolerance 1e-5.
            float[] want = Peg.permuteColumns(plain.lastHidden(), c.hidden(), perm);
            double e = relative(folded.lastHidden(), want);
            assertTrue(e <= 1e-5, "folded model's last hidden state differs by " + e);
            double ep = relative(folded.pooled(), Peg.permuteColumns(plain.pooled(), c.hidden(), perm));
            assertTrue(ep <= 1e-5, "folded model's pooled output differs by " + ep);
        }
    }
}
