package dev.qdrift.experiment;

import dev.qdrift.attribution.BackendGradients;
import dev.qdrift.attribution.Quadrature;
import dev.qdrift.attribution.QuantizedGradients;
import dev.qdrift.attribution.Sequence;
import dev.qdrift.attribution.StraightThrough;
import dev.qdrift.attribution.Target;
import dev.qdrift.backend.Backend;
import dev.qdrift.backend.cuda.CudaBackend;
import dev.qdrift.model.BertConfig;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.QuantizedEncoders;
import dev.qdrift.quant.Scheme;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Integrated Gradients throughput: one IG of n steps (Gauss–Legendre, zero baseline, a random 2-class
 * head on CLS) per full-length random sequence, all steps in one device batch, as
 * {@link BackendGradients#pathIntegral} runs it (word vectors up, interpolation, forward with tape,
 * backward, weighted sum on the device, the integral down). Timed with CUDA events on the GPU (the
 * host's logits step inside included), median of the timed runs after warm-up.
 *
 * <p>The arithmetic bound: the floating-point operations one IG needs (below, {@link #flops}) at the
 * device's FP32 peak, the figure an FP32 implementation cannot beat.
 */
public final class IgBench {
    /**
     * @param msPerIg median milliseconds per IG (one sequence); sequencesPerS = 1000 / msPerIg
     * @param gflop floating-point work of one IG; tflops achieved = gflop / msPerIg
     */
    public record Row(String scheme, int steps, int seq, double msPerIg, double p90Ms, double sequencesPerS, double gflop,
                      double tflops, Long poolPeakBytes) {}

    public record Result(String model, String device, String timing, List<Row> rows) {}

    /**
     * Multiply-adds x 2 of one IG on the encoder (the head and elementwise work are negligible): per
     * step, token and layer the forward's six linear layers 2(4h^2 + 2hf) and attention 4Th; the
     * backward's input gradients of the same layers 2(4h^2 + 2hf) and attention's 5Th products
     * (recomputed scores, dP, dQ, dK, dV) x 2.
     */
    public static double flops(BertConfig c, int seq, int steps) {
        double h = c.hidden(), f = c.intermediate(), linear = 2 * (4 * h * h + 2 * h * f);
        double perTokenLayer = 2 * linear + 4 * seq * h + 10 * seq * h;
        return perTokenLayer * c.layers() * seq * steps;
    }

    public static Result run(String modelName, BertWeights weights, Backend backend, List<String> schemes, int steps, int seq, int warmup,
                             int runs) {
        CudaBackend cuda = backend instanceof CudaBackend c ? c : null;
        BertConfig config = weights.config();
        LinearHead head = randomHead(config.hidden());
        Sequence s = randomSequence(seq, config.vocabSize());
        Quadrature.Nodes nodes = Quadrature.nodes(Quadrature.Rule.GAUSS_LEGENDRE, steps);
        CalibrationStats stats = new CalibrationStats();
        if (!schemes.stream().allMatch(spec -> spec.equals("fp32"))) // an FP32-only run needs no calibration
            QuantizedEncoders.calibrate(new Encoder(weights, backend), List.of(LatencyBench.randomIds(8, seq, 1),
                    LatencyBench.randomIds(8, seq, 2)), stats);
        List<Row> rows = new java.util.ArrayList<>();
        for (String spec : schemes) {
            boolean integer = spec.endsWith("+int8");
            Scheme scheme = Scheme.parse(integer ? spec.substring(0, spec.length() - 5) : spec);
            String why = integer ? QuantizedEncoders.integerIneligibility(scheme) : null;
            if (why != null) throw new dev.qdrift.QdriftException(spec + ": scheme " + scheme.name() + " cannot run on the s8 kernels: " + why);
            BackendGradients m = QuantizedGradients.onBackend(weights, head, Pooling.CLS, scheme, stats, Set.of(), StraightThrough.STE,
                    backend, integer);
            double[] x = m.wordVectors(s), x0 = new double[x.length];
            Runnable ig = () -> m.pathIntegral(s, x0, x, nodes.alphas(), nodes.weights(), Target.logit(1));
            if (m.stepsPerBatch(s) < steps)
                throw new IllegalStateException("IG steps would not fit one batch: " + m.stepsPerBatch(s) + " < " + steps);
            for (int i = 0; i < warmup; i++) ig.run();
            if (cuda != null) cuda.resetHighWater();
            double[] ms = new double[runs];
            for (int i = 0; i < runs; i++) {
                if (cuda != null) {
                    ms[i] = cuda.timeMs(ig);
                } else {
                    long t0 = System.nanoTime();
                    ig.run();
                    ms[i] = (System.nanoTime() - t0) / 1e6;
                }
            }
            Arrays.sort(ms);
            double median = ms[runs / 2], gflop = flops(config, seq, steps) / 1e9;
            rows.add(new Row(scheme.name() + (integer ? " (s8 forward)" : scheme.isFp32() ? "" : " (simulated)"), steps, seq, median,
                    ms[Math.min(runs - 1, runs * 9 / 10)], 1000 / median, gflop, gflop / median, cuda == null ? null : cuda.memoryStats().highWater()));
        }
        return new Result(modelName, backend.name(), cuda != null ? "CUDA events, median" : "System.nanoTime, median", rows);
    }

    private static LinearHead randomHead(int dim) {
        Random r = new Random(11);
        float[][] w = new float[2][dim];
        for (float[] row : w) for (int j = 0; j < dim; j++) row[j] = (float) (0.05 * r.nextGaussian());
        return new LinearHead(w, new float[2], List.of("a", "b"), "cls", Map.of());
    }

    /** [CLS] random word pieces [SEP], segment 0 (never zeros). */
    private static Sequence randomSequence(int seq, int vocab) {
        Random r = new Random(12);
        int[] ids = new int[seq], types = new int[seq], words = new int[seq];
        for (int t = 0; t < seq; t++) {
            ids[t] = t == 0 ? 101 : t == seq - 1 ? 102 : 1996 + r.nextInt(Math.min(27000, vocab - 1996));
            words[t] = t == 0 || t == seq - 1 ? -1 : t - 1;
        }
        return new Sequence(ids, types, words, null);
    }

    private IgBench() {}
}
