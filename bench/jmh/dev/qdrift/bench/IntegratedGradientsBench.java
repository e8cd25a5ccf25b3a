package dev.qdrift.bench;

import dev.qdrift.attribution.Attributions;
import dev.qdrift.attribution.BackendGradients;
import dev.qdrift.attribution.Baseline;
import dev.qdrift.attribution.Gradients;
import dev.qdrift.attribution.Quadrature;
import dev.qdrift.attribution.Sequence;
import dev.qdrift.attribution.StraightThrough;
import dev.qdrift.attribution.Target;
import dev.qdrift.model.ActivationTransform;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.Model;
import dev.qdrift.model.ModelLoader;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.head.LinearHead;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One Integrated Gradients attribution on the CPU, what `qdrift drift` computes per example and scheme: MiniLM-L6, the
 * SST-2 probe head of bench/heads, a 27-token SST-2 dev sentence, IG-50 Gauss–Legendre from the [PAD] baseline, the
 * predicted class's logit. The float32 path on the CPU backend (`drift --float32`: BackendGradients, the GPU path's
 * code) against the float64 reference path (`Gradients`, the default on the CPU) in the same run. The setup checks
 * that both give the same token scores (within 1e-4 of the largest), so the two time the same attribution. Run
 * through {@link CpuBenchReport}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 5)
@Measurement(iterations = 5, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx6g"})
public class IntegratedGradientsBench {
    public static final int STEPS = 50;
    public static final String SENTENCE = "it 's a charming and often affecting journey , and the performances are strong "
            + "enough to carry the film over its rough patches .";

    private CpuBackend cpu;
    private Attributions float32, float64;
    private Sequence sequence;
    private Baseline baseline;

    @Setup
    public void setup() {
        Model m = ModelLoader.load("builtin:minilm", 128);
        LinearHead head = LinearHead.load(Path.of("bench/heads/2026-11-23/minilm-sst2.safetensors"));
        Pooling pooling = Pooling.parse(head.pooling());
        cpu = new CpuBackend();
        float32 = new Attributions(new BackendGradients(m.weights(), head, pooling, cpu, ActivationTransform.NONE, null, StraightThrough.STE,
                null, BackendGradients.DEFAULT_MAX_ROWS));
        float64 = new Attributions(Gradients.fp32(m.weights(), head, pooling));
        sequence = Sequence.of(m.tokenizer().encode(SENTENCE, null));
        baseline = Baseline.pad(m.tokenizer());
        double[] a = float32CpuBackend().scores().values(), b = float64Reference().scores().values();
        double worst = 0, largest = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
            largest = Math.max(largest, Math.abs(b[i]));
        }
        if (!(worst <= 1e-4 * largest))
            throw new IllegalStateException("the float32 and float64 IGs differ by " + worst + " (largest |score| " + largest + ")");
    }

    @TearDown
    public void tearDown() {
        cpu.close();
    }

    @Benchmark
    public Attributions.IgResult float32CpuBackend() {
        return float32.integratedGradients(sequence, Target.predictedLogit(), baseline, Quadrature.Rule.GAUSS_LEGENDRE, STEPS);
    }

    @Benchmark
    public Attributions.IgResult float64Reference() {
        return float64.integratedGradients(sequence, Target.predictedLogit(), baseline, Quadrature.Rule.GAUSS_LEGENDRE, STEPS);
    }
}
