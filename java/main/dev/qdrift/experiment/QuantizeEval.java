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
import java.util.Map;
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
                      MixedPrecision.Result mixed, IntegerCheck integer) {}

    /**
     * A scheme executed on the s8 GEMM kernels against its own simulation on the same examples:
     * prediction agreement, how many predictions differ, and the largest logit difference.
     */
    public record IntegerCheck(double agreementWithSimulated, int predictionsDiffering, double maxAbsLogitDifference) {}

    /**
     * @param head        the head file as given
     * @param calibration where the calibration statistics came from ({@link RunInputs#calibrationProvenance})
     */
    public record Result(String model, String head, String data, Map<String, String> calibration, String backend, List<Row> rows) {}

    /**
     * @param headFile the file head was loaded from, recorded in the result
     * @param integer  also run every scheme the s8 kernels can execute (8-bit weights, 8-bit symmetric
     *                 per-tensor or per-token activations) on them, as an extra row "scheme/s8" with an
     *                 {@link IntegerCheck} against the simulation
     */
    public static Result run(Model model, LinearHead head, String headFile, Dataset data, Dataset calibrationSample, CalibrationStats stats,
                             List<Scheme> schemes, Backend backend, int batchSize, double mixedBudgetPoints, boolean integer) {
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
                rows.add(row(scheme.name(), scheme.describe(), r, fp32, perS, peak, fp32Sites, mixed, null));
            }
            if (integer && runsOnS8(scheme)) {
                try (Backend.Scope s = backend.openScope()) {
                    Evaluation.Result simulated = Evaluation.evaluate(QuantizedEncoders.build(model.weights(), backend, scheme, stats, fp32Sites,
                            false), model, head, data, batchSize);
                    long t0 = System.nanoTime();
                    Evaluation.Result q = Evaluation.evaluate(QuantizedEncoders.build(model.weights(), backend, scheme, stats, fp32Sites, true),
                            model, head, data, batchSize);
                    double perS = data.size() / ((System.nanoTime() - t0) / 1e9);
                    double maxDiff = 0;
                    for (int i = 0; i < q.logits().length; i++)
                        for (int k = 0; k < q.logits()[i].length; k++)
                            maxDiff = Math.max(maxDiff, Math.abs(q.logits()[i][k] - simulated.logits()[i][k]));
                    IntegerCheck check = new IntegerCheck(Classification.agreement(simulated.predicted(), q.predicted()),
                            Drift.flips(simulated.predicted(), q.predicted()), maxDiff);
                    rows.add(row(scheme.name() + "/s8", scheme.describe() + "; linear layers on the s8 GEMM kernels", q, fp32, perS,
                            backend instanceof CudaBackend c ? c.memoryStats().highWater() : null, fp32Sites, mixed, check));
                }
            }
        }
        return new Result(model.id(), headFile, data.source(), RunInputs.calibrationProvenance(stats), backend.name(), rows);
    }

    private static boolean runsOnS8(Scheme s) {
        return s.weights() != null && s.weights().bits() == 8 && s.activations() != null && s.activations().bits() == 8
                && s.activations().symmetric() && (s.activations().granularity() == dev.qdrift.quant.QuantSpec.Granularity.PER_TENSOR
                || s.activations().granularity() == dev.qdrift.quant.QuantSpec.Granularity.PER_TOKEN);
    }

    private static Row row(String name, String description, Evaluation.Result r, Evaluation.Result fp32, double perS, Long peak,
                           Set<String> fp32Sites, MixedPrecision.Result mixed, IntegerCheck check) {
        ClassificationReport c = r.report();
        return new Row(name, description, c.n(), c.accuracy(), c.ciLow(), c.ciHigh(), Classification.agreement(fp32.predicted(), r.predicted()),
                Drift.flips(fp32.predicted(), r.predicted()), Drift.meanKl(fp32.logits(), r.logits()), perS, peak, fp32Sites, mixed, check);
    }

    private static Evaluation.Result fp32Reference(Model model, Backend backend, LinearHead head, Dataset data, int batchSize) {
        try (Backend.Scope s = backend.openScope()) {
            return Evaluation.evaluate(new Encoder(model.weights(), backend), model, head, data, batchSize);
        }
    }

    private QuantizeEval() {}
}
