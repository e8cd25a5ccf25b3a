package dev.qdrift.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.ActivationObserver;
import dev.qdrift.model.BertConfig;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.RandomWeights;
import dev.qdrift.model.Site;
import dev.qdrift.model.tokenizer.TokenBatch;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole encoder on the GPU against the CPU backend, layer by layer, on MiniLM- and BERT-base-shaped
 * models with seeded random weights and padded batches of random token ids. Norm: per layer, the
 * hidden state's ‖gpu − cpu‖₂ / ‖cpu‖₂ over real (unpadded) tokens; tolerance 1e-5 (FP32 on both
 * sides, no TF32; errors grow slowly through the layers).
 */
class CudaEncoderTest {
    /** Per test, so that each is reported skipped with the reason on a machine without a GPU. */
    @BeforeEach
    void gpu() {
        GpuTest.assumeGpu();
    }

    /** Downloads each layer's output hidden state (and the embeddings). */
    static final class HiddenStates implements ActivationObserver {
        final List<float[]> states = new ArrayList<>();
        final Backend backend;

        HiddenStates(Backend backend) {
            this.backend = backend;
        }

        public boolean wants(Site s) {
            return s == Site.EMBEDDINGS || s == Site.OUTPUT_NORM;
        }

        public void observe(int layer, Site site, Backend.FloatBuf value, int rows, int cols) {
            states.add(GpuTest.download(backend, value));
        }
    }

    static TokenBatch randomBatch(Random r, int batch, int seq, int vocab) {
        int[] ids = new int[batch * seq], types = new int[batch * seq], mask = new int[batch * seq];
        for (int b = 0; b < batch; b++) {
            int len = b == 0 ? seq : 2 + r.nextInt(seq - 1);
            for (int t = 0; t < len; t++) {
                ids[b * seq + t] = t == 0 ? 101 : t == len - 1 ? 102 : 1000 + r.nextInt(vocab - 1000);
                mask[b * seq + t] = 1;
            }
        }
        return new TokenBatch(batch, seq, ids, types, mask, null);
    }

    @ParameterizedTest
    @ValueSource(strings = {"minilm", "bert-base"})
    void gpuEncoderMatchesCpuLayerByLayer(String shape) {
        BertConfig c = RandomWeights.shape(shape);
        BertWeights w = RandomWeights.generate(c, 7, true);
        TokenBatch in = randomBatch(GpuTest.freshRandom(), 8, 96, c.vocabSize());
        try (CudaBackend gpu = CudaBackend.open(0)) {
            HiddenStates hc = new HiddenStates(new CpuBackend()), hg = new HiddenStates(gpu);
            Encoder.Output oc = new Encoder(w, hc.backend).forward(in, Pooling.POOLER, hc);
            Encoder.Output og = new Encoder(w, gpu).forward(in, Pooling.POOLER, hg);
            assertEquals(c.layers() + 1, hg.states.size());
            double worst = 0;
            for (int l = 0; l < hc.states.size(); l++) {
                double e = realTokenError(hg.states.get(l), hc.states.get(l), in, c.hidden());
                System.out.printf("  %s layer %2d: rel err %.2e%n", shape, l - 1, e);
                worst = Math.max(worst, e);
            }
            assertTrue(worst <= 1e-5, shape + ": worst per-layer relative error " + worst);
            GpuTest.assertClose(og.pooled(), oc.pooled(), 1e-5, shape + " pooler output");
        }
    }

    /** Downloads every site the encoder reports (what `qdrift outliers` observes), by layer and site. */
    static final class AllSites implements ActivationObserver {
        final Map<String, float[]> values = new java.util.LinkedHashMap<>();
        final Map<String, Integer> cols = new java.util.HashMap<>();
        final Backend backend;

        AllSites(Backend backend) {
            this.backend = backend;
        }

        public boolean wants(Site s) {
            return true;
        }

        public void observe(int layer, Site site, Backend.FloatBuf value, int rows, int c) {
            values.put(site.key(layer), GpuTest.download(backend, value));
            cols.put(site.key(layer), c);
        }
    }

    /**
     * `qdrift outliers --device cuda`: its statistics are host code shared by both backends, so what has to agree is
     * what the observer is handed — every site, residual sums included (materialized only when observed), on a
     * padded batch. Same tolerance as the layer-by-layer check.
     */
    @Test
    void everyObservedSiteMatchesCpu() {
        BertConfig c = RandomWeights.shape("minilm");
        BertWeights w = RandomWeights.generate(c, 8, false);
        TokenBatch in = randomBatch(GpuTest.freshRandom(), 4, 64, c.vocabSize());
        try (CudaBackend gpu = CudaBackend.open(0)) {
            AllSites sc = new AllSites(new CpuBackend()), sg = new AllSites(gpu);
            new Encoder(w, sc.backend).forward(in, Pooling.MEAN, sc);
            new Encoder(w, gpu).forward(in, Pooling.MEAN, sg);
            assertEquals(sc.values.keySet(), sg.values.keySet(), "the same sites observed");
            assertEquals(1 + c.layers() * 7, sg.values.size(), "embeddings + 7 sites a layer");
            for (String key : sc.values.keySet()) {
                double e = realTokenError(sg.values.get(key), sc.values.get(key), in, sc.cols.get(key));
                assertTrue(e <= 1e-5, key + ": relative error " + e);
            }
        }
    }

    static double realTokenError(float[] got, float[] want, TokenBatch in, int h) {
        double d = 0, n = 0;
        for (int r = 0; r < in.batch() * in.seqLen(); r++) {
            if (in.mask()[r] == 0) continue;
            for (int k = 0; k < h; k++) {
                double e = (double) got[r * h + k] - want[r * h + k];
                if (Double.isNaN(e)) return Double.NaN;
                d += e * e;
                n += (double) want[r * h + k] * want[r * h + k];
            }
        }
        return Math.sqrt(d / n);
    }

    /**
     * The same quantized encoder (calibrated once on the CPU) on both backends. Fake-quant turns the
     * ~1e-7 FP32 differences of the GEMMs into a whole quantization step wherever a value sits on a
     * rounding boundary, so the tolerance is looser than FP32's: relative error of the pooled output
     * <= 3e-2 (measured on the H100 over fresh random inputs: 4.7e-3 to 1.1e-2).
     */
    @ParameterizedTest
    @ValueSource(strings = {"w8a8", "peg4", "w8a8-pt", "w4a8"})
    void quantizedEncoderOnGpuAgreesWithCpu(String schemeName) {
        BertConfig c = RandomWeights.shape("minilm");
        BertWeights w = RandomWeights.generate(c, 21, false);
        Random r = new Random(99);
        List<TokenBatch> calib = List.of(randomBatch(r, 8, 48, c.vocabSize()), randomBatch(r, 8, 64, c.vocabSize()));
        CpuBackend cpu = new CpuBackend();
        dev.qdrift.quant.CalibrationStats stats = new dev.qdrift.quant.CalibrationStats();
        dev.qdrift.quant.QuantizedEncoders.calibrate(new Encoder(w, cpu), calib, stats);
        dev.qdrift.quant.Scheme scheme = dev.qdrift.quant.Scheme.parse(schemeName);
        TokenBatch in = randomBatch(GpuTest.freshRandom(), 16, 64, c.vocabSize());
        try (CudaBackend gpu = CudaBackend.open(0)) {
            float[] want = dev.qdrift.quant.QuantizedEncoders.build(w, cpu, scheme, stats, java.util.Set.of()).forward(in, Pooling.MEAN).pooled();
            float[] got = dev.qdrift.quant.QuantizedEncoders.build(w, gpu, scheme, stats, java.util.Set.of()).forward(in, Pooling.MEAN).pooled();
            GpuTest.assertClose(got, want, 3e-2, "quantized encoder " + schemeName + " pooled");
        }
    }

    /**
     * Real INT8 execution (s8 GEMMs) against the simulation of the same quantized model on the same GPU.
     * Differences come only from FP32 summation order in the simulated GEMMs (the integer sums are exact)
     * and from values that sit on a rounding boundary at a later site; each layer of such flips adds
     * ~1e-3 (H100: 6 MiniLM layers 7e-3 to 1.1e-2 over fresh random inputs, 12 BERT-base layers 2.5e-2),
     * so the BERT-base case keeps 4 layers of that size: pooled relative error <= 3e-2. On real data the
     * check is prediction agreement (bench/results/2026-11-23-h100-int8-encoder: 99.2-100%).
     */
    @ParameterizedTest
    @ValueSource(strings = {"minilm/w8a8-sym", "minilm/w8a8-pt", "bert-base/w8a8-sym"})
    void integerEncoderAgreesWithItsSimulation(String shapeAndScheme) {
        String[] p = shapeAndScheme.split("/");
        BertConfig full = RandomWeights.shape(p[0]);
        BertConfig c = new BertConfig(full.vocabSize(), full.hidden(), Math.min(full.layers(), 6), full.heads(), full.intermediate(),
                full.maxPositions(), full.typeVocabSize(), full.layerNormEps());
        if (p[0].equals("bert-base")) c = new BertConfig(c.vocabSize(), c.hidden(), 4, c.heads(), c.intermediate(), c.maxPositions(),
                c.typeVocabSize(), c.layerNormEps());
        BertWeights w = RandomWeights.generate(c, 31, false);
        Random r = new Random(5);
        List<TokenBatch> calib = List.of(randomBatch(r, 8, 48, c.vocabSize()), randomBatch(r, 8, 64, c.vocabSize()));
        dev.qdrift.quant.CalibrationStats stats = new dev.qdrift.quant.CalibrationStats();
        dev.qdrift.quant.QuantizedEncoders.calibrate(new Encoder(w, new CpuBackend()), calib, stats);
        dev.qdrift.quant.Scheme scheme = dev.qdrift.quant.Scheme.parse(p[1]);
        TokenBatch in = randomBatch(GpuTest.freshRandom(), 16, 64, c.vocabSize());
        try (CudaBackend gpu = CudaBackend.open(0)) {
            float[] simulated = dev.qdrift.quant.QuantizedEncoders.build(w, gpu, scheme, stats, java.util.Set.of(), false)
                    .forward(in, Pooling.MEAN).pooled();
            float[] integer = dev.qdrift.quant.QuantizedEncoders.build(w, gpu, scheme, stats, java.util.Set.of(), true)
                    .forward(in, Pooling.MEAN).pooled();
            GpuTest.assertClose(integer, simulated, 3e-2, "s8 GEMM encoder vs fake-quant " + shapeAndScheme);
        }
    }

    /**
     * The s8 encoder with its GEMMs on cuBLASLt (+ the dequantize pass) against the same encoder on our fused kernels:
     * exact int32 sums on both and the same epilogue arithmetic, so bit-identical outputs; every s8 GEMM ran on cuBLASLt.
     */
    @Test
    void cublasLtGemmsGiveTheSameEncoder() {
        BertConfig full = RandomWeights.shape("minilm");
        BertConfig c = new BertConfig(full.vocabSize(), full.hidden(), 6, full.heads(), full.intermediate(), full.maxPositions(),
                full.typeVocabSize(), full.layerNormEps());
        BertWeights w = RandomWeights.generate(c, 31, false);
        Random r = new Random(5);
        dev.qdrift.quant.CalibrationStats stats = new dev.qdrift.quant.CalibrationStats();
        dev.qdrift.quant.QuantizedEncoders.calibrate(new Encoder(w, new CpuBackend()), List.of(randomBatch(r, 8, 48, c.vocabSize())), stats);
        TokenBatch in = randomBatch(GpuTest.freshRandom(), 16, 64, c.vocabSize());
        try (CudaBackend gpu = CudaBackend.open(0)) {
            Encoder e = dev.qdrift.quant.QuantizedEncoders.build(w, gpu, dev.qdrift.quant.Scheme.parse("w8a8-sym"), stats, java.util.Set.of(), true);
            float[] ours = e.forward(in, Pooling.MEAN).pooled();
            try {
                gpu.useCublasLtInt8(true);
            } catch (dev.qdrift.QdriftException missing) {
                org.junit.jupiter.api.Assumptions.abort(missing.getMessage());
            }
            assertTrue(gpu.name().contains("cuBLASLt"), gpu.name());
            long before = gpu.cublasLtRuns();
            float[] lt = e.forward(in, Pooling.MEAN).pooled();
            assertEquals(6 * 4, gpu.cublasLtRuns() - before,
                    "s8 GEMMs on cuBLASLt: 6 layers x 4 products (query-key-value packed, attention output, intermediate, output)");
            int identical = 0;
            for (int i = 0; i < ours.length; i++) if (Float.floatToRawIntBits(ours[i]) == Float.floatToRawIntBits(lt[i])) identical++;
            System.out.printf("  cuBLASLt s8 GEMMs vs ours, 6-layer MiniLM shape: %d of %d pooled values bit-identical, rel err %.2e%n",
                    identical, ours.length, GpuTest.relativeError(lt, ours));
            assertEquals(ours.length, identical, "cuBLASLt s8 GEMMs vs our kernels: pooled outputs not bit-identical");
        }
    }

    @Test
    void hundredForwardsReturnMemoryToWhereItStarted() {
        BertConfig c = RandomWeights.shape("minilm");
        try (CudaBackend gpu = CudaBackend.open(0)) {
            Encoder enc = new Encoder(RandomWeights.generate(c, 3, false), gpu);
            Random r = new Random(11);
            TokenBatch in = randomBatch(r, 16, 64, c.vocabSize());
            long weights = gpu.memoryStats().inUse();
            enc.forward(in, Pooling.CLS);
            long deviceFreeAfterFirst = gpu.memoryStats().deviceFree();
            for (int i = 0; i < 100; i++) {
                enc.forward(in, Pooling.MEAN);
                assertEquals(weights, gpu.memoryStats().inUse(), "pool bytes in use after forward " + i);
            }
            assertEquals(deviceFreeAfterFirst, gpu.memoryStats().deviceFree(), "cudaMemGetInfo free bytes drifted over 100 forwards");
        }
    }

    @Test
    void aCapturedGraphReplaysTheSameForward() {
        BertConfig c = RandomWeights.shape("minilm");
        try (CudaBackend gpu = CudaBackend.open(0)) {
            Encoder enc = new Encoder(RandomWeights.generate(c, 9, false), gpu);
            TokenBatch in = randomBatch(GpuTest.freshRandom(), 6, 40, c.vocabSize());
            float[] want = enc.forward(in, Pooling.MEAN).pooled();
            try (Backend.Scope inputs = gpu.openScope()) {
                Backend.IntBuf ids = gpu.uploadInts(in.ids()), types = gpu.uploadInts(in.typeIds()), mask = gpu.uploadInts(in.mask());
                try (Backend.Scope warm = gpu.openScope()) {
                    enc.run(ids, types, mask, in.batch(), in.seqLen(), Pooling.MEAN, null);
                }
                // The graph's buffers are its own: the pooled vectors are copied into a kept buffer, read after each replay.
                Backend.FloatBuf pooled = gpu.allocateKept(want.length);
                try (Backend.Replay g = gpu.record(() -> {
                    try (Backend.Scope s = gpu.openScope()) {
                        gpu.gradientOps().copy(enc.run(ids, types, mask, in.batch(), in.seqLen(), Pooling.MEAN, null).pooled(), pooled);
                    }
                })) {
                    for (int replay = 0; replay < 3; replay++) {
                        gpu.poison(pooled);
                        g.run();
                        org.junit.jupiter.api.Assertions.assertArrayEquals(want, GpuTest.download(gpu, pooled), "graph replay " + replay);
                    }
                }
                gpu.release(pooled);
            }
        }
    }

    /**
     * What a recording cannot hold is refused with a clear error, and the backend goes on working: a copy from or to the
     * host (it synchronizes the stream), a buffer that outlives the recording (its memory is the graph's); a replay in
     * another mode (TF32) than the one it was recorded in; a closed replay.
     */
    @Test
    void aRecordingRefusesWhatItCannotHold() {
        BertConfig c = RandomWeights.shape("minilm");
        try (CudaBackend gpu = CudaBackend.open(0)) {
            Encoder enc = new Encoder(RandomWeights.generate(c, 9, false), gpu);
            TokenBatch in = randomBatch(GpuTest.freshRandom(), 2, 24, c.vocabSize());
            float[] want = enc.forward(in, Pooling.CLS).pooled();
            Backend.FloatBuf kept = gpu.allocateKept(8);
            IllegalStateException upload = assertThrows(IllegalStateException.class, () -> gpu.record(() -> gpu.upload(new float[8])));
            IllegalStateException download = assertThrows(IllegalStateException.class, () -> gpu.record(() -> GpuTest.download(gpu, kept)));
            IllegalStateException outlives = assertThrows(IllegalStateException.class, () -> gpu.record(() -> gpu.allocate(64)));
            for (IllegalStateException e : List.of(upload, download, outlives)) System.out.println("  refused: " + e.getMessage());
            assertTrue(upload.getMessage().contains("cannot be recorded") && download.getMessage().contains("cannot be recorded"));
            assertTrue(outlives.getMessage().contains("outlives"), outlives.getMessage());
            org.junit.jupiter.api.Assertions.assertArrayEquals(want, enc.forward(in, Pooling.CLS).pooled(), "the backend after the refusals");
            Backend.Replay copy = gpu.record(() -> gpu.gradientOps().copy(kept, kept));
            copy.run();
            gpu.useTf32(true);
            IllegalStateException mode = assertThrows(IllegalStateException.class, copy::run);
            assertTrue(mode.getMessage().contains("cannot replay"), mode.getMessage());
            gpu.useTf32(false);
            copy.close();
            assertThrows(IllegalStateException.class, copy::run);
            gpu.release(kept);
        }
    }

    @Test
    void outOfMemoryIsAJavaExceptionAndTheBackendRecovers() {
        BertConfig c = RandomWeights.shape("minilm");
        try (CudaBackend gpu = CudaBackend.open(0)) {
            Encoder enc = new Encoder(RandomWeights.generate(c, 5, false), gpu);
            TokenBatch small = randomBatch(new Random(1), 4, 32, c.vocabSize());
            float[] before = enc.forward(small, Pooling.CLS).pooled();
            CudaException.OutOfMemory oom = assertThrows(CudaException.OutOfMemory.class, () -> {
                try (Backend.Scope s = gpu.openScope()) {
                    for (int i = 0; i < 1000; i++) gpu.allocate(Integer.MAX_VALUE); // 8 GiB each until the device is full
                }
            });
            System.out.println("  OOM message: " + oom.getMessage());
            assertTrue(oom.getMessage().contains("out of memory") && oom.getMessage().contains("MiB"), oom.getMessage());
            float[] after = enc.forward(small, Pooling.CLS).pooled();
            org.junit.jupiter.api.Assertions.assertArrayEquals(before, after, "forward after OOM differs");
        }
    }
}
