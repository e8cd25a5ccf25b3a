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
    /** -Dqdrift.profile=true: after the timed runs, one more IG of each scheme inside a profiler range. */
    static final boolean PROFILE = Boolean.getBoolean("qdrift.profile");

    /**
     * @param msPerIg median milliseconds per IG (one sequence); sequencesPerS = 1000 / msPerIg
     * @param gflop floating-point work of one IG; tflops achieved = gflop / msPerIg
     * @param poolPeakBytes the device pool's high-water mark over the timed runs; graphPeakBytes that of the memory CUDA
     *     holds for replayed graphs ({@link dev.qdrift.backend.Backend#record}), outside the pool
     * @param tf32Error for a TF32 or FP16-backward row: the relative 2-norm difference of its IG (the path integral of
     *     the gradient) from the same scheme's in true FP32, from the same call; else null
     */
    public record Row(String scheme, int steps, int seq, double msPerIg, double p90Ms, double sequencesPerS, double gflop,
                      double tflops, Long poolPeakBytes, Long graphPeakBytes, Double tf32Error) {}

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
        if (!schemes.stream().allMatch(spec -> Spec.parse(spec).scheme.isFp32())) // an FP32-only run needs no calibration
            QuantizedEncoders.calibrate(new Encoder(weights, backend), List.of(LatencyBench.randomIds(8, seq, 1),
                    LatencyBench.randomIds(8, seq, 2)), stats);
        List<Row> rows = new java.util.ArrayList<>();
        for (String spec : schemes) {
            Spec sp = Spec.parse(spec);
            String why = sp.int8 ? QuantizedEncoders.integerIneligibility(sp.scheme) : null;
            if (why != null) throw new dev.qdrift.QdriftException(spec + ": scheme " + sp.scheme.name() + " cannot run on the s8 kernels: " + why);
            if ((sp.tf32 || sp.fp16) && cuda == null)
                throw new dev.qdrift.QdriftException(spec + ": +tf32 and +fp16 need the GPU (--device cuda)");
            boolean wasHalf = cuda != null && cuda.halfProducts(), half = sp.fp16 || wasHalf;
            boolean wasTf32 = cuda != null && cuda.tf32(), tf32 = sp.tf32 || wasTf32;
            try {
                if (cuda != null) cuda.useHalfProducts(half); // before the model is prepared: its FP16 weights
                BackendGradients m = QuantizedGradients.onBackend(weights, head, Pooling.CLS, sp.scheme, stats, Set.of(), StraightThrough.STE,
                        backend, sp.int8);
                double[] x = m.wordVectors(s), x0 = new double[x.length];
                java.util.function.Supplier<double[]> ig = () -> m.pathIntegral(s, x0, x, nodes.alphas(), nodes.weights(), Target.logit(1));
                if (m.stepsPerBatch(s) < steps)
                    throw new IllegalStateException("IG steps would not fit one batch: " + m.stepsPerBatch(s) + " < " + steps);
                double[] strict = tf32 || half ? backend.inFp32(ig) : null; // the same IG in true FP32, to state what TF32 / FP16 cost
                if (cuda != null) cuda.useTf32(tf32);
                Double error = strict == null ? null : relativeError(ig.get(), strict);
                for (int i = 0; i < warmup; i++) ig.get();
                if (cuda != null) cuda.resetHighWater();
                double[] ms = new double[runs];
                for (int i = 0; i < runs; i++) {
                    if (cuda != null) {
                        ms[i] = cuda.timeMs(ig::get);
                    } else {
                        long t0 = System.nanoTime();
                        ig.get();
                        ms[i] = (System.nanoTime() - t0) / 1e6;
                    }
                }
                if (cuda != null && PROFILE) cuda.profiled(ig::get); // one more IG, for `ncu --profile-from-start off`
                if (m.halfOverflows() > 0)
                    System.err.println("qdrift bench: " + spec + ": " + m.halfOverflows() + " IG passes overflowed FP16 and ran again with FP32 "
                            + "operands; the timings include them");
                Arrays.sort(ms);
                double median = ms[runs / 2], gflop = flops(config, seq, steps) / 1e9;
                CudaBackend.MemoryStats memory = cuda == null ? null : cuda.memoryStats();
                String label = sp.scheme.name() + (sp.int8 ? " (s8 forward)" : sp.scheme.isFp32() ? "" : " (simulated)") + (tf32 ? " TF32" : "")
                        + (half ? " FP16 bwd" : "");
                rows.add(new Row(label, steps, seq, median, ms[Math.min(runs - 1, runs * 9 / 10)], 1000 / median, gflop, gflop / median,
                        memory == null ? null : memory.highWater(), memory == null ? null : memory.graphHighWater(), error));
            } finally {
                if (cuda != null) {
                    cuda.useTf32(wasTf32);
                    cuda.useHalfProducts(wasHalf);
                }
            }
        }
        return new Result(modelName, backend.name(), cuda != null ? "CUDA events, median" : "System.nanoTime, median", rows);
    }

    /** Whether any of these --ig-schemes entries runs the forward's linear layers on the s8 kernels (+int8). */
    public static boolean anyOnS8Kernels(List<String> schemes) {
        return schemes.stream().anyMatch(spec -> Spec.parse(spec).int8);
    }

    /**
     * A --ig-schemes entry: a scheme, then optional +int8 (s8 forward), +tf32 (TF32 products) and +fp16 (the backward's
     * input-gradient products with FP16 operands), in any order.
     */
    private record Spec(Scheme scheme, boolean int8, boolean tf32, boolean fp16) {
        static Spec parse(String spec) {
            String[] parts = spec.trim().split("\\+", -1);
            boolean int8 = false, tf32 = false, fp16 = false;
            for (int i = 1; i < parts.length; i++) {
                switch (parts[i]) {
                    case "int8" -> int8 = true;
                    case "tf32" -> tf32 = true;
                    case "fp16" -> fp16 = true;
                    default -> throw new dev.qdrift.QdriftException("--ig-schemes '" + spec + "': unknown option +" + parts[i]
                            + " (use +int8, +tf32, +fp16)");
                }
            }
            return new Spec(Scheme.parse(parts[0]), int8, tf32, fp16);
        }
    }

    static double relativeError(double[] got, double[] want) {
        double num = 0, den = 0;
        for (int i = 0; i < want.length; i++) {
            num += (got[i] - want[i]) * (got[i] - want[i]);
            den += want[i] * want[i];
        }
        return Math.sqrt(num / den);
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
