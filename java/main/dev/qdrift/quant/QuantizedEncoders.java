package dev.qdrift.quant;

import dev.qdrift.backend.Backend;
import dev.qdrift.data.Dataset;
import dev.qdrift.experiment.Embedder;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.tokenizer.TokenBatch;
import java.util.ArrayList;
import java.util.List;
import dev.qdrift.model.Model;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.Site;
import java.util.Set;

/** Calibrates a model and builds the (simulated) quantized encoder of a scheme. */
public final class QuantizedEncoders {
    private QuantizedEncoders() {}

    /** Two passes of the FP32 encoder over the calibration sample (ranges, then histograms). */
    public static CalibrationStats calibrate(Model model, Backend backend, Dataset sample, int batchSize) {
        CalibrationStats stats = new CalibrationStats();
        Encoder fp32 = new Encoder(model.weights(), backend);
        List<TokenBatch> batches = new ArrayList<>();
        new Embedder(fp32, model.tokenizer(), batchSize).forEachBatch(sample, (rows, batch) -> batches.add(batch));
        calibrate(fp32, batches, stats);
        stats.provenance.put("model", model.id());
        stats.provenance.put("data", sample.source());
        stats.provenance.put("examples", Integer.toString(sample.size()));
        return stats;
    }

    /** Both passes over already tokenized batches with an FP32 encoder. */
    public static void calibrate(Encoder fp32, List<TokenBatch> batches, CalibrationStats stats) {
        fp32.backend().inFp32(() -> {   // statistics files do not record a --tf32 mode: they must not depend on it
            for (int pass = 1; pass <= 2; pass++)
                for (TokenBatch batch : batches) fp32.forward(batch, Pooling.CLS, stats.observer(fp32.backend(), batch, pass));
            return null;
        });
    }

    public static Encoder build(Model model, Backend backend, Scheme scheme, CalibrationStats stats, Set<String> fp32Sites) {
        return build(model.weights(), backend, scheme, stats, fp32Sites, false);
    }

    public static Encoder build(BertWeights fp32Weights, Backend backend, Scheme scheme, CalibrationStats stats, Set<String> fp32Sites) {
        return build(fp32Weights, backend, scheme, stats, fp32Sites, false);
    }

    /** The site whose (quantized) tensor is the input of linear j of layer l (j indexes BertWeights.Layer.linears()). */
    static String inputSite(int l, int j) {
        return switch (j) {
            case 0, 1, 2 -> l == 0 ? Site.EMBEDDINGS.key(-1) : Site.OUTPUT_NORM.key(l - 1);
            case 3 -> Site.ATTENTION_CONTEXT.key(l);
            case 4 -> Site.ATTENTION_NORM.key(l);
            default -> Site.INTERMEDIATE.key(l);
        };
    }

    /** A scheme's quantized model: fake-quantized weights, and the activation quantizer (null when activations stay FP32). */
    public record QuantizedModel(BertWeights weights, ActivationQuantizer activations) {}

    /**
     * The one construction of a scheme's quantized model, shared by the encoder and the attribution
     * forward: weights through {@link WeightQuantizer}, activations through an {@link ActivationQuantizer}
     * on `backend` with the calibration, the FP32 sites and (PEG) the range-permutation groups.
     */
    public static QuantizedModel quantize(BertWeights fp32Weights, Backend backend, Scheme scheme, CalibrationStats stats,
                                          Set<String> fp32Sites) {
        BertWeights weights = scheme.weights() == null ? fp32Weights : WeightQuantizer.apply(fp32Weights, scheme.weights());
        QuantSpec a = scheme.activations();
        if (a == null) return new QuantizedModel(weights, null);
        int[] groups = null;
        if (a.granularity() == QuantSpec.Granularity.PER_GROUP)
            groups = Peg.groupOf(Peg.rangePermutation(stats, fp32Weights.config().hidden()), a.groups());
        return new QuantizedModel(weights, new ActivationQuantizer(backend, a, stats, fp32Sites, groups));
    }

    /**
     * The encoder of a scheme: fake-quantized weights, activation quantizers at the scheme's sites. With
     * integer = true, every linear layer whose input site is quantized runs as an s8 GEMM on the
     * backend's integer kernels (8-bit symmetric per-tensor or per-token activations, 8-bit weights);
     * it computes the same quantized model as the simulation, up to FP32 summation order.
     */
    public static Encoder build(BertWeights fp32Weights, Backend backend, Scheme scheme, CalibrationStats stats, Set<String> fp32Sites,
                                boolean integer) {
        String why = integer ? integerIneligibility(scheme) : null;
        if (why != null) throw new dev.qdrift.QdriftException("scheme " + scheme.name() + " cannot run on the s8 kernels: " + why);
        QuantizedModel q = quantize(fp32Weights, backend, scheme, stats, fp32Sites);
        if (q.activations() == null) return new Encoder(q.weights(), backend);
        if (!integer) return new Encoder(q.weights(), backend, q.activations());
        return new Encoder(q.weights(), backend, q.activations(), integerLinears(q, fp32Sites));
    }

    /**
     * Why a scheme cannot execute on the s8 kernels, or null when it can: they take 8-bit weights and
     * 8-bit symmetric per-tensor or per-token activations.
     */
    public static String integerIneligibility(Scheme scheme) {
        if (scheme.weights() == null || scheme.weights().bits() != 8) return "it needs 8-bit weights";
        QuantSpec a = scheme.activations();
        if (a == null) return "its activations stay FP32";
        if (a.bits() != 8 || !a.symmetric()) return "it needs 8-bit symmetric activations, the scheme has " + a.describe();
        if (a.granularity() != QuantSpec.Granularity.PER_TENSOR && a.granularity() != QuantSpec.Granularity.PER_TOKEN)
            return "it needs per-tensor or per-token activations, the scheme has " + a.describe();
        return null;
    }

    /**
     * The integer execution of a quantized model: every linear layer whose input site is quantized runs
     * as an s8 GEMM, its input quantized with that site's scale (per tensor, or per token).
     */
    public static Encoder.IntegerLinears integerLinears(QuantizedModel q, Set<String> fp32Sites) {
        ActivationQuantizer quantizer = q.activations();
        return (l, j) -> {
            String site = inputSite(l, j);
            return fp32Sites.contains(site) ? null : quantizer.integerInputScale(site);
        };
    }
}
