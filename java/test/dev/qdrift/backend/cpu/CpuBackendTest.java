package dev.qdrift.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.Backend.Epilogue;
import dev.qdrift.backend.PackedQkv;
import dev.qdrift.model.BertWeights;
import java.util.Random;
import org.apache.commons.math3.special.Erf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Each CPU op against a float64 reference on fresh seeded random inputs (never zeros), shapes chosen
 * to be ragged against the vector width, the 6-row / 2-vector GEMM tile and its 48-row parallel
 * blocks, and the 8-row attention tile. Outputs are poisoned with NaN before each op so an element the
 * op forgets to write fails the comparison.
 *
 * <p>Tolerance: FP32 accumulation of K products has error ~ K * 2^-24 * sum|x_k w_k|; we allow
 * 1e-6 * (sum|x_k w_k| + |b|) + 1e-6, well above that bound for K <= 3072 only by a small factor.
 */
class CpuBackendTest {
    private final CpuBackend cpu = new CpuBackend();

    static float[] random(Random r, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * scale);
        return a;
    }

    static float[] poisoned(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, Float.NaN);
        return a;
    }

    @ParameterizedTest
    @CsvSource({"1,1,1", "3,5,7", "5,33,17", "50,64,200", "67,100,384", "130,1536,384", "17,384,1536", "64,31,3072"})
    void linearMatchesFloat64Reference(int m, int n, int k) {
        Random r = new Random(1000L * m + 31L * n + k);
        float[] x = random(r, m * k, 1f), w = random(r, n * k, 0.05f), b = random(r, n, 0.5f);
        Backend.LinearWeights packed = cpu.prepareLinear(new BertWeights.Linear("t", w, b, n, k));
        for (Epilogue e : Epilogue.values()) {
            Backend.FloatBuf y = new CpuBackend.Floats(poisoned(m * n));
            cpu.linear(cpu.upload(x), m, packed, e, y);
            float[] got = CpuBackend.f(y);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double acc = b[j], mag = Math.abs(b[j]);
                    for (int kk = 0; kk < k; kk++) {
                        acc += (double) x[i * k + kk] * w[j * k + kk];
                        mag += Math.abs((double) x[i * k + kk] * w[j * k + kk]);
                    }
                    double ref = switch (e) {
                        case NONE -> acc;
                        case GELU -> 0.5 * acc * (1 + Erf.erf(acc / Math.sqrt(2)));
                        case TANH -> Math.tanh(acc);
                    };
                    double tol = 1e-6 * mag + 1e-6;
                    assertEquals(ref, got[i * n + j], tol, e + " at (" + i + "," + j + ") of " + m + "x" + n + "x" + k);
                }
        }
    }

    /**
     * dx = dy W (+ dx): each output is a double sum rounded once to float, so it must equal the float64
     * reference rounded to float, give or take that rounding (half an ulp) plus the double sum's own
     * reordering (relative 1e-15 of sum |dy w|). Shapes ragged against the 4-row tasks and the panels
     * (out % NR != 0); the forward's weights refused.
     */
    @ParameterizedTest
    @CsvSource({"1,1,1", "3,5,7", "5,33,17", "7,100,384", "130,1536,384", "17,384,1536", "6,3072,31"})
    void linearInputGradMatchesFloat64Reference(int rows, int out, int in) {
        Random r = new Random(7919L * rows + 31L * out + in);
        float[] dy = random(r, rows * out, 1f), w = random(r, out * in, 0.05f), prior = random(r, rows * in, 1f);
        BertWeights.Linear linear = new BertWeights.Linear("t", w, new float[out], out, in);
        Backend.LinearWeights forward = cpu.prepareLinear(linear), packed = cpu.gradientOps().prepareInputGrad(linear, forward);
        // The forward's weights are not the backward's layout: refused by name, not multiplied in the wrong order.
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> cpu.gradientOps().linearInputGrad(cpu.upload(dy), rows, forward, cpu.allocate(rows * in), false));
        assertTrue(e.getMessage().contains("prepareInputGrad"), e.getMessage());
        for (boolean accumulate : new boolean[] {false, true}) {
            Backend.FloatBuf dx = new CpuBackend.Floats(accumulate ? prior.clone() : poisoned(rows * in));
            cpu.gradientOps().linearInputGrad(cpu.upload(dy), rows, packed, dx, accumulate);
            float[] got = CpuBackend.f(dx);
            for (int i = 0; i < rows; i++)
                for (int k = 0; k < in; k++) {
                    double acc = accumulate ? prior[i * in + k] : 0, mag = Math.abs(acc);
                    for (int o = 0; o < out; o++) {
                        acc += (double) dy[i * out + o] * w[o * in + k];
                        mag += Math.abs((double) dy[i * out + o] * w[o * in + k]);
                    }
                    double tol = Math.ulp((float) acc) / 2 + 1e-15 * mag;
                    assertEquals(acc, got[i * in + k], tol, "accumulate " + accumulate + " at (" + i + "," + k + ") of " + rows + "x" + out + "x" + in);
                }
        }
    }

    /**
     * Bit-reproducibility: a row's output must not depend on how many rows share the call, so on
     * neither its place in a register tile (or in the leftover rows) nor the row blocks that threads
     * take; n = 100 ends in a partial panel.
     */
    @Test
    void linearRowIsBitIdenticalWhateverTheBatch() {
        Random r = new Random(7);
        int m = 101, n = 100, k = 300;
        float[] x = random(r, m * k, 1f), w = random(r, n * k, 0.05f), b = random(r, n, 0.5f);
        Backend.LinearWeights packed = cpu.prepareLinear(new BertWeights.Linear("t", w, b, n, k));
        for (Epilogue e : Epilogue.values()) {
            Backend.FloatBuf all = cpu.allocate(m * n);
            cpu.linear(cpu.upload(x), m, packed, e, all);
            for (int i = 0; i < m; i += 7) {
                Backend.FloatBuf one = cpu.allocate(n);
                cpu.linear(cpu.upload(java.util.Arrays.copyOfRange(x, i * k, (i + 1) * k)), 1, packed, e, one);
                for (int j = 0; j < n; j++)
                    assertEquals(Float.floatToRawIntBits(CpuBackend.f(all)[i * n + j]), Float.floatToRawIntBits(CpuBackend.f(one)[j]),
                            e + " row " + i + " col " + j);
            }
        }
    }

    /** Likewise a sequence's attention output must not depend on the other sequences of the batch. */
    @Test
    void attentionSequenceIsBitIdenticalWhateverTheBatch() {
        Random r = new Random(8);
        int batch = 3, seq = 21, heads = 4, headDim = 32, width = heads * headDim, rows = batch * seq;
        float[] q = random(r, rows * width, 1f), k = random(r, rows * width, 1f), v = random(r, rows * width, 1f);
        int[] mask = new int[rows];
        for (int t = 0; t < rows; t++) mask[t] = t % seq < 15 + t / seq ? 1 : 0;
        Backend.FloatBuf all = cpu.allocate(rows * width);
        float[] qkv = PackedQkv.pack(q, k, v, rows, width);
        cpu.attention(cpu.upload(qkv), cpu.uploadInts(mask), batch, seq, heads, headDim, all);
        for (int b = 0; b < batch; b++) {
            int from = b * seq * width, to = from + seq * width;
            Backend.FloatBuf one = cpu.allocate(seq * width);
            cpu.attention(cpu.upload(java.util.Arrays.copyOfRange(qkv, 3 * from, 3 * to)),
                    cpu.uploadInts(java.util.Arrays.copyOfRange(mask, b * seq, (b + 1) * seq)), 1, seq, heads, headDim, one);
            for (int i = 0; i < seq * width; i++)
                assertEquals(Float.floatToRawIntBits(CpuBackend.f(all)[from + i]), Float.floatToRawIntBits(CpuBackend.f(one)[i]),
                        "sequence " + b + " element " + i);
        }
    }

    @Test
    void geluIsTheExactErfFormToFloatPrecision() {
        double worst = 0;
        for (double x = -10; x <= 10; x += 1e-3) {
            double ref = 0.5 * x * (1 + Erf.erf(x / Math.sqrt(2)));
            worst = Math.max(worst, Math.abs(CpuMath.gelu((float) x) - ref) / Math.max(1, Math.abs(ref)));
        }
        // A&S 7.1.26 bounds |erf error| by 1.5e-7; the tanh approximation would be off by ~1e-3 near |x| = 2.
        assertTrue(worst < 3e-7, "worst GELU error " + worst);
    }

    @Test
    void vectorExpMatchesMathExpToAFewUlp() {
        var species = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;
        float[] x = new float[species.length()], y = new float[species.length()];
        double worst = 0;
        for (float start = -87f; start + 0.0137f * species.length() < 88f; start += 0.0137f * species.length()) {
            for (int i = 0; i < x.length; i++) x[i] = start + 0.0137f * i;
            CpuMath.exp(jdk.incubator.vector.FloatVector.fromArray(species, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(y[i] - Math.exp(x[i])) / Math.exp(x[i]));
        }
        assertTrue(worst < 5e-7, "worst relative exp error " + worst);
        x[0] = Float.NEGATIVE_INFINITY;
        x[1] = -100f;
        CpuMath.exp(jdk.incubator.vector.FloatVector.fromArray(species, x, 0)).intoArray(y, 0);
        assertEquals(0f, y[0]);
        assertEquals(0f, y[1]);
    }

    @ParameterizedTest
    @CsvSource({"1,384", "7,384", "33,768", "5,1000"})
    void addLayerNormMatchesFloat64Reference(int rows, int dim) {
        Random r = new Random(rows * 7919L + dim);
        float[] x = random(r, rows * dim, 3f), res = random(r, rows * dim, 1f), g = random(r, dim, 1f), b = random(r, dim, 1f);
        for (int i = 0; i < x.length; i += 97) x[i] += 40; // outlier channels, as BERT has
        Backend.FloatBuf out = new CpuBackend.Floats(poisoned(rows * dim)), sum = new CpuBackend.Floats(poisoned(rows * dim));
        cpu.addLayerNorm(cpu.upload(x), cpu.upload(res), cpu.upload(g), cpu.upload(b), 1e-12f, rows, dim, out, sum);
        for (int i = 0; i < rows; i++) {
            double mean = 0, var = 0;
            for (int d = 0; d < dim; d++) mean += (double) x[i * dim + d] + res[i * dim + d];
            mean /= dim;
            for (int d = 0; d < dim; d++) {
                double c = (double) x[i * dim + d] + res[i * dim + d] - mean;
                var += c * c;
            }
            var /= dim;
            for (int d = 0; d < dim; d++) {
                int o = i * dim + d;
                double v = (double) x[o] + res[o];
                double ref = (v - mean) / Math.sqrt(var + 1e-12) * g[d] + b[d];
                assertEquals(ref, CpuBackend.f(out)[o], 1e-5 * (Math.abs(g[d]) + Math.abs(b[d]) + 1), "row " + i + " dim " + d);
                assertEquals((float) v, CpuBackend.f(sum)[o], 1e-6 * Math.abs(v) + 1e-6);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"1,1,1,8", "2,5,2,32", "3,17,12,32", "2,40,6,64"})
    void maskedAttentionMatchesFloat64Reference(int batch, int seq, int heads, int headDim) {
        Random r = new Random(batch * 131L + seq * 17L + heads);
        int width = heads * headDim, rows = batch * seq;
        float[] q = random(r, rows * width, 1f), k = random(r, rows * width, 1f), v = random(r, rows * width, 1f);
        int[] mask = new int[rows];
        int[] lengths = new int[batch];
        for (int b = 0; b < batch; b++) {
            lengths[b] = b == 0 ? seq : 1 + r.nextInt(seq); // one full row, others padded
            for (int t = 0; t < lengths[b]; t++) mask[b * seq + t] = 1;
        }
        Backend.FloatBuf out = new CpuBackend.Floats(poisoned(rows * width));
        cpu.attention(cpu.upload(PackedQkv.pack(q, k, v, rows, width)), cpu.uploadInts(mask), batch, seq, heads, headDim, out);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < seq; i++) {
                    double[] s = new double[lengths[b]];
                    double max = Double.NEGATIVE_INFINITY, total = 0;
                    for (int j = 0; j < lengths[b]; j++) {
                        for (int d = 0; d < headDim; d++)
                            s[j] += (double) q[(b * seq + i) * width + h * headDim + d] * k[(b * seq + j) * width + h * headDim + d];
                        s[j] /= Math.sqrt(headDim);
                        max = Math.max(max, s[j]);
                    }
                    for (int j = 0; j < s.length; j++) total += s[j] = Math.exp(s[j] - max);
                    for (int d = 0; d < headDim; d++) {
                        double ref = 0;
                        for (int j = 0; j < s.length; j++) ref += s[j] / total * v[(b * seq + j) * width + h * headDim + d];
                        assertEquals(ref, CpuBackend.f(out)[(b * seq + i) * width + h * headDim + d], 2e-6,
                                "b" + b + " h" + h + " i" + i + " d" + d);
                    }
                }
    }

    @Test
    void meanPoolingSkipsPaddingAndClsTakesTheFirstToken() {
        Random r = new Random(5);
        int batch = 3, seq = 6, dim = 20;
        float[] h = random(r, batch * seq * dim, 1f);
        int[] mask = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0};
        Backend.FloatBuf mean = new CpuBackend.Floats(poisoned(batch * dim)), cls = new CpuBackend.Floats(poisoned(batch * dim));
        cpu.pool(cpu.upload(h), cpu.uploadInts(mask), batch, seq, dim, Backend.Pooling.MEAN, mean);
        cpu.pool(cpu.upload(h), cpu.uploadInts(mask), batch, seq, dim, Backend.Pooling.CLS, cls);
        for (int b = 0; b < batch; b++)
            for (int d = 0; d < dim; d++) {
                double s = 0;
                int n = 0;
                for (int t = 0; t < seq; t++)
                    if (mask[b * seq + t] == 1) {
                        s += h[(b * seq + t) * dim + d];
                        n++;
                    }
                assertEquals(s / n, CpuBackend.f(mean)[b * dim + d], 1e-5);
                assertEquals(h[b * seq * dim + d], CpuBackend.f(cls)[b * dim + d]);
            }
    }
}
