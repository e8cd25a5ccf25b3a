package dev.qdrift.experiment;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.cuda.CudaBackend;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.tokenizer.TokenBatch;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.QuantizedEncoders;
import dev.qdrift.quant.Scheme;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Encoder forward latency per batch size at a fixed sequence length: full-length random token ids
 * (never zeros), warm-up forwards, then the median of timed forwards. On CUDA each forward is timed with
 * CUDA events on the backend's stream (input upload, all kernels and the download of the pooled
 * embeddings included; the last hidden state stays on the device, as in a classification run); on the CPU with System.nanoTime. Peak memory: the device pool's
 * high-water mark during the timed forwards, and the drop in cudaMemGetInfo's free bytes from before
 * the weights were loaded to after the last forward (weights + pool + cuBLAS workspace).
 */
public final class LatencyBench {
    /**
     * medianMs: a whole forward as a user runs it (ids up, pooled embeddings down). On CUDA also
     * computeMs (the forward on inputs already on the device, nothing copied: what PyTorch's timing
     * covers) and graphMs (the same captured once as a CUDA graph and replayed: no launch overhead).
     */
    public record Row(int batch, int seq, int timedRuns, double medianMs, double p10Ms, double p90Ms, double sentencesPerS,
                      Double computeMs, Double graphMs, Long poolPeakBytes, Long deviceUsedBytes) {}

    public record Result(String model, String scheme, String device, String timing, List<Row> rows) {}

    /**
     * @param scheme null for FP32; else the quantized model of that scheme, calibrated on two batches of
     *               random ids, simulated or (integer = true) on the s8 kernels
     */
    public static Result run(String modelName, BertWeights weights, Backend backend, int[] batches, int seq, int warmup, int runs,
                             Scheme scheme, boolean integer) {
        CudaBackend cuda = backend instanceof CudaBackend c ? c : null;
        long freeBefore = cuda == null ? 0 : cuda.memoryStats().deviceFree();
        Encoder encoder = new Encoder(weights, backend);
        if (scheme != null && !scheme.isFp32()) {
            CalibrationStats stats = new CalibrationStats();
            QuantizedEncoders.calibrate(encoder, List.of(randomIds(8, seq, 1), randomIds(8, seq, 2)), stats);
            encoder = QuantizedEncoders.build(weights, backend, scheme, stats, java.util.Set.of(), integer);
        }
        Encoder timed = encoder;
        List<Row> rows = new ArrayList<>();
        for (int batch : batches) {
            TokenBatch in = randomIds(batch, seq, 1234 + batch);
            for (int i = 0; i < warmup; i++) timed.embed(in, Pooling.CLS);
            if (cuda != null) cuda.resetHighWater();
            double[] ms = new double[runs];
            for (int i = 0; i < runs; i++) {
                if (cuda != null) {
                    ms[i] = cuda.timeMs(() -> timed.embed(in, Pooling.CLS));
                } else {
                    long t0 = System.nanoTime();
                    timed.embed(in, Pooling.CLS);
                    ms[i] = (System.nanoTime() - t0) / 1e6;
                }
            }
            Arrays.sort(ms);
            double median = ms[runs / 2];
            Double computeMs = null, graphMs = null;
            if (cuda != null) {
                try (Backend.Scope inputs = cuda.openScope()) {
                    Backend.IntBuf dIds = cuda.uploadInts(in.ids()), dTypes = cuda.uploadInts(in.typeIds()), dMask = cuda.uploadInts(in.mask());
                    Runnable compute = () -> {
                        try (Backend.Scope s = cuda.openScope()) {
                            timed.run(dIds, dTypes, dMask, batch, seq, Pooling.CLS, null);
                        }
                    };
                    computeMs = median(runs, () -> cuda.timeMs(compute));
                    try (Backend.Replay graph = cuda.record(compute)) {
                        graph.run();
                        graphMs = median(runs, () -> cuda.timeMs(graph::run));
                    }
                }
            }
            var memory = cuda == null ? null : cuda.memoryStats(); // read once: three native queries
            Long peak = memory == null ? null : memory.highWater();
            Long used = memory == null ? null : freeBefore - memory.deviceFree();
            rows.add(new Row(batch, seq, runs, median, ms[runs / 10], ms[runs * 9 / 10], batch * 1000.0 / median, computeMs, graphMs,
                    peak, used));
        }
        return new Result(modelName, scheme == null ? "fp32" : scheme.name() + (integer ? " (s8 kernels)" : " (simulated)"), backend.name(), cuda != null ? "CUDA events, median" : "System.nanoTime, median", rows);
    }

    /** Full-length rows of random word-piece ids between [CLS] and [SEP] (never zeros). */
    static TokenBatch randomIds(int batch, int seq, long seed) {
        Random r = new Random(seed);
        int[] ids = new int[batch * seq];
        for (int i = 0; i < ids.length; i++) ids[i] = i % seq == 0 ? 101 : i % seq == seq - 1 ? 102 : 1996 + r.nextInt(27000);
        return TokenBatch.ofIds(batch, seq, ids);
    }

    private static double median(int runs, java.util.function.DoubleSupplier timed) {
        double[] ms = new double[runs];
        for (int i = 0; i < runs; i++) ms[i] = timed.getAsDouble();
        Arrays.sort(ms);
        return ms[runs / 2];
    }

    private LatencyBench() {}
}
