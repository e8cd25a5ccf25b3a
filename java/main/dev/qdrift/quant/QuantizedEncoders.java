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
        for (int pass = 1; pass <= 2; pass++)
            for (TokenBatch batch : batches) fp32.forward(batch, Pooling.CLS, stats.observer(fp32.backend(), batch, pass));
    }

    public static Encoder build(Model model, Backend backend, Scheme scheme, CalibrationStats stats, Set<String> fp32Sites) {
        return build(model.weights(), backend, scheme, stats, fp32Sites);
    }

    /** The encoder of a scheme: fake-quantized weights, activation quantizers at the scheme's sites. */
    public static Encoder build(BertWeights fp32Weights, Backend backend, Scheme scheme, CalibrationStats stats, Set<String> fp32Sites) {
        if (scheme.isFp32()) return new Encoder(fp32Weights, backend);
        var weights = scheme.weights() == null ? fp32Weights : WeightQuantizer.apply(fp32Weights, scheme.weights());
        if (scheme.activations() == null) return new Encoder(weights, backend);
        int[] groups = null;
        if (scheme.activations().granularity() == QuantSpec.Granularity.PER_GROUP) {
            int[] perm = Peg.rangePermutation(stats, fp32Weights.config().hidden());
            groups = Peg.groupOf(perm, scheme.activations().groups());
        }
        return new Encoder(weights, backend, new ActivationQuantizer(backend, scheme.activations(), stats, fp32Sites, groups));
    }
}
