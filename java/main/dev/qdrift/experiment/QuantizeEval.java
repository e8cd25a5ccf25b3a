package dev.qdrift.experiment;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.cuda.CudaBackend;
import dev.qdrift.data.Dataset;
import dev.qdrift.metrics.Classification;
import dev.qdrift.metrics.ClassificationReport;
import dev.qdrift.metrics.Drift;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.Model;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.MixedPrecision;
import dev.qdrift.quant.QuantizedEncoders;
import dev.qdrift.quant.Scheme;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The accuracy table of quantization schemes: each scheme's (simulated) quantized encoder with the
 * same FP32 head on the same examples, next to the FP32 model — accuracy with a bootstrap CI,
 * agreement with FP32's predictions, flips, mean KL(FP32 ‖ quantized) of the output distribution, and
 * the evaluation pass's throughput (and, on CUDA, the device pool's peak).
 */
public final class QuantizeEval {
    public record Row(String scheme, String description, int n, double accuracy, double ciLow, double ciHigh, double agreement,
                      int flips, double meanKl, double examplesPerS, Long poolPeakBytes, Set<String> fp32Sites,
                      MixedPrecision.Result mixed) {}

    public record Result(String model, String head, String data, String calibration, String backend, List<Row> rows) {}

    public static Result run(Model model, LinearHead head, Dataset data, Dataset calibrationSample, CalibrationStats stats,
                             List<Scheme> schemes, Backend backend, int batchSize, double mixedBudgetPoints) {
        int[] gold = Embedder.labels(data);
        Evaluation.Result fp32 = null;
        List<Row> rows = new ArrayList<>();
        for (Scheme scheme : schemes) {
            Set<String> fp32Sites = scheme.fp32Sites();
            MixedPrecision.Result mixed = null;
            if (scheme.searchMixed()) {
                mixed = MixedPrecision.search(model, backend, scheme, stats, head, calibrationSample, batchSize, mixedBudgetPoints);
                fp32Sites = mixed.fp32Sites();
            }
            try (Backend.Scope s = backend.openScope()) {
                Encoder encoder = QuantizedEncoders.build(model, backend, scheme, stats, fp32Sites);
                if (backend instanceof CudaBackend c) c.resetHighWater();
                long t0 = System.nanoTime();
                Evaluation.Result r = Evaluation.evaluate(encoder, model, head, data, batchSize);
                double perS = data.size() / ((System.nanoTime() - t0) / 1e9);
                Long peak = backend instanceof CudaBackend c ? c.memoryStats().highWater() : null;
                if (fp32 == null) fp32 = scheme.isFp32() ? r : fp32Reference(model, backend, head, data, batchSize);
                ClassificationReport c = r.report();
                rows.add(new Row(scheme.name(), scheme.describe(), c.n(), c.accuracy(), c.ciLow(), c.ciHigh(),
                        Classification.agreement(fp32.predicted(), r.predicted()), Drift.flips(fp32.predicted(), r.predicted()),
                        Drift.meanKl(fp32.logits(), r.logits()), perS, peak, fp32Sites, mixed));
            }
        }
        return new Result(model.id(), head.metadata().getOrDefault("model", "?") + " head", data.source(),
                stats.provenance.toString(), backend.name(), rows);
    }

    private static Evaluation.Result fp32Reference(Model model, Backend backend, LinearHead head, Dataset data, int batchSize) {
        try (Backend.Scope s = backend.openScope()) {
            return Evaluation.evaluate(new Encoder(model.weights(), backend), model, head, data, batchSize);
        }
    }

    private QuantizeEval() {}
}
