package dev.qdrift.experiment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.data.Dataset;
import dev.qdrift.data.DatasetLoader;
import dev.qdrift.data.Task;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Model;
import dev.qdrift.model.ModelLoader;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The FP32 encoder reproduces ONNX Runtime on the same ONNX file: 100 real SST-2 dev sentences and 50
 * real QNLI dev pairs, both built-in models. Norm: per input, max |ours - ort| / max |ort| over real
 * tokens (see {@link Verification}); tolerance 1e-4 — both sides compute in FP32, and the summation
 * orders of GEMMs, softmax and LayerNorm differ, so ~1e-6 is expected, 1e-4 leaves room for other
 * CPUs' vector widths while still catching any real mistake (a wrong mask or a swapped weight is > 1e-1).
 */
class EncoderVsOnnxRuntimeTest {
    static final Dataset SST2 = DatasetLoader.load("java/test-resources/fixtures/sst2-dev-first100.tsv", Task.SST2);
    static final Dataset QNLI = DatasetLoader.load("java/test-resources/fixtures/qnli-dev-first50.tsv", Task.QNLI);

    static Stream<Arguments> cases() {
        return Stream.of("builtin:minilm", "builtin:bge-small").map(Arguments::of);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void matchesOnnxRuntimeOnRealSentencesAndPairs(String id) {
        Model m = ModelLoader.load(id);
        assertEquals(100, SST2.size());
        assertEquals(50, QNLI.size());
        Verification.Result sst = Verification.run(m, SST2, 16, 1e-4);
        Verification.Result qnli = Verification.run(m, QNLI, 16, 1e-4);
        System.out.printf("%s: SST-2 max rel %.2e, QNLI max rel %.2e%n", id, sst.maxRelative(), qnli.maxRelative());
        assertTrue(sst.passed(), id + " SST-2 max relative error " + sst.maxRelative());
        assertTrue(qnli.passed(), id + " QNLI max relative error " + qnli.maxRelative());
        assertEquals(100, sst.n());
        assertEquals(50, qnli.n());
    }

    /** The check can fail: one perturbed LayerNorm weight in the last layer is caught. */
    @ParameterizedTest
    @MethodSource("cases")
    void detectsAPerturbedWeight(String id) {
        Model m = ModelLoader.load(id);
        BertWeights.Layer last = m.weights().layers().getLast();
        last.outputNorm().gamma()[7] *= 1.01f;
        Verification.Result r = Verification.run(m, SST2.limit(8), 8, 1e-4);
        assertFalse(r.passed(), "a 1% change of one LayerNorm weight went unnoticed: " + r.maxRelative());
    }
}
