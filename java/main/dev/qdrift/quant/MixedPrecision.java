package dev.qdrift.quant;

import dev.qdrift.backend.Backend;
import dev.qdrift.data.Dataset;
import dev.qdrift.experiment.Evaluation;
import dev.qdrift.metrics.Drift;
import dev.qdrift.model.Model;
import dev.qdrift.model.Site;
import dev.qdrift.model.head.LinearHead;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Automatic mixed precision: rank activation sites by sensitivity — mean KL(FP32 ‖ quantized) of the
 * head's output on the calibration sample when only that site's activations are quantized (weights
 * quantized as the scheme says) — then keep the most sensitive sites in FP32, one at a time, until the
 * accuracy on the calibration sample is within the budget of FP32's. The sites kept are a finding.
 */
public final class MixedPrecision {
    private static final Logger log = LoggerFactory.getLogger(MixedPrecision.class);

    public record Sensitivity(String site, double meanKl) {}

    public record Result(Set<String> fp32Sites, List<Sensitivity> ranking, double fp32Accuracy, double quantizedAccuracy,
                         double mixedAccuracy) {}

    /** In true FP32 also under --tf32 ({@link Backend#inFp32}): the sites it keeps define the model, whatever runs it later. */
    public static Result search(Model model, Backend backend, Scheme scheme, CalibrationStats stats, LinearHead head, Dataset sample,
                                int batchSize, double budgetPoints) {
        return backend.inFp32(() -> searchInFp32(model, backend, scheme, stats, head, sample, batchSize, budgetPoints));
    }

    private static Result searchInFp32(Model model, Backend backend, Scheme scheme, CalibrationStats stats, LinearHead head, Dataset sample,
                                       int batchSize, double budgetPoints) {
        List<String> sites = new ArrayList<>();
        sites.add(Site.EMBEDDINGS.key(-1));
        for (int l = 0; l < model.config().layers(); l++)
            for (Site s : Scheme.ACTIVATION_SITES) if (s != Site.EMBEDDINGS) sites.add(s.key(l));
        Evaluation.Result fp32 = run(model, backend, Scheme.parse("fp32"), stats, Set.of(), head, sample, batchSize);
        Evaluation.Result all = run(model, backend, scheme, stats, Set.of(), head, sample, batchSize);
        double target = fp32.report().accuracy() - budgetPoints / 100;
        List<Sensitivity> ranking = new ArrayList<>();
        for (String site : sites) {
            Set<String> others = new LinkedHashSet<>(sites);
            others.remove(site);
            Evaluation.Result only = run(model, backend, scheme, stats, others, head, sample, batchSize);
            ranking.add(new Sensitivity(site, Drift.meanKl(fp32.logits(), only.logits())));
        }
        ranking.sort(Comparator.comparingDouble(Sensitivity::meanKl).reversed());
        Set<String> kept = new LinkedHashSet<>();
        double acc = all.report().accuracy();
        for (Sensitivity s : ranking) {
            if (acc >= target) break;
            kept.add(s.site());
            acc = run(model, backend, scheme, stats, kept, head, sample, batchSize).report().accuracy();
            log.info("mixed precision: {} sites kept in FP32, calibration accuracy {}", kept.size(), String.format("%.4f", acc));
        }
        return new Result(kept, ranking, fp32.report().accuracy(), all.report().accuracy(), acc);
    }

    private static Evaluation.Result run(Model model, Backend backend, Scheme scheme, CalibrationStats stats, Set<String> fp32Sites,
                                         LinearHead head, Dataset sample, int batchSize) {
        try (Backend.Scope s = backend.openScope()) {
            return Evaluation.evaluate(QuantizedEncoders.build(model, backend, scheme, stats, fp32Sites), model, head, sample, batchSize);
        }
    }

    private MixedPrecision() {}
}
