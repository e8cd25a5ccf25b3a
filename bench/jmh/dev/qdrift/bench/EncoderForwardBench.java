package dev.qdrift.bench;

import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.experiment.OnnxReference;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.ModelLoader;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.tokenizer.TokenBatch;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One encoder forward, batch 32 x seq 128 (full length, no padding), our CPU backend vs ONNX Runtime
 * (CPU execution provider, all optimizations, one intra-op thread per core) on the same ONNX model and
 * the same token ids. Run through {@link CpuBenchReport}, which prints sentences/s and the ratio.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 4)
@Measurement(iterations = 5, time = 4)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx6g"})
public class EncoderForwardBench {
    public static final int BATCH = 32, SEQ = 128;

    @Param({"builtin:minilm"})
    public String model;

    private Encoder encoder;
    private OnnxReference ort;
    private TokenBatch input;

    @Setup
    public void setup() {
        Model m = ModelLoader.load(model, SEQ);
        encoder = new Encoder(m.weights(), new CpuBackend());
        ort = new OnnxReference(m.onnxBytes().get(), Runtime.getRuntime().availableProcessors());
        Random r = new Random(42);
        int[] ids = new int[BATCH * SEQ];
        for (int i = 0; i < ids.length; i++) ids[i] = i % SEQ == 0 ? 101 : i % SEQ == SEQ - 1 ? 102 : 1996 + r.nextInt(27000);
        input = TokenBatch.ofIds(BATCH, SEQ, ids);
    }

    @TearDown
    public void tearDown() {
        ort.close();
    }

    @Benchmark
    public float[] qdriftCpu() {
        return encoder.forward(input, Pooling.CLS).lastHidden();
    }

    @Benchmark
    public float[] onnxRuntime() {
        return ort.lastHidden(input);
    }
}
