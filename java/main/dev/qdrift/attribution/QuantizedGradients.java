package dev.qdrift.attribution;

import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.quant.ActivationQuantizer;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.Peg;
import dev.qdrift.quant.QuantSpec;
import dev.qdrift.quant.Scheme;
import dev.qdrift.quant.WeightQuantizer;
import java.util.Set;

/**
 * {@link Gradients} of a scheme's quantized model: the same construction as
 * {@code QuantizedEncoders.build} (fake-quantized weights from {@link WeightQuantizer}; an
 * {@link ActivationQuantizer} with the same calibration, FP32 sites and PEG groups), with the
 * activation quantizer on a CPU backend of its own, where the attribution forward runs.
 */
public final class QuantizedGradients {
    private QuantizedGradients() {}

    /**
     * @param fp32Weights the FP32 model's weights (quantized here)
     * @param fp32Sites site keys kept FP32 (mixed precision), e.g. "layer.3.intermediate"
     */
    public static Gradients build(BertWeights fp32Weights, LinearHead head, Pooling pooling, Scheme scheme, CalibrationStats stats,
                                  Set<String> fp32Sites, StraightThrough mode) {
        if (scheme.isFp32()) return Gradients.fp32(fp32Weights, head, pooling);
        BertWeights weights = scheme.weights() == null ? fp32Weights : WeightQuantizer.apply(fp32Weights, scheme.weights());
        QuantSpec a = scheme.activations();
        if (a == null) return new Gradients(weights, head, pooling, QuantSites.NONE, mode, Precision.FLOAT32);
        int[] groups = null;
        if (a.granularity() == QuantSpec.Granularity.PER_GROUP) {
            int[] perm = Peg.rangePermutation(stats, fp32Weights.config().hidden());
            groups = Peg.groupOf(perm, a.groups());
        }
        CpuBackend cpu = new CpuBackend();
        QuantSites sites = new QuantSites(new ActivationQuantizer(cpu, a, stats, fp32Sites, groups), cpu, a.grid());
        return new Gradients(weights, head, pooling, sites, mode, Precision.FLOAT32);
    }
}
