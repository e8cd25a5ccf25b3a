package dev.qdrift.attribution;

import dev.qdrift.backend.Backend;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.model.ActivationTransform;
import dev.qdrift.model.Encoder;
import dev.qdrift.model.BertWeights;
import dev.qdrift.model.Pooling;
import dev.qdrift.model.head.LinearHead;
import dev.qdrift.quant.CalibrationStats;
import dev.qdrift.quant.QuantizedEncoders;
import dev.qdrift.quant.Scheme;
import java.util.Set;

/**
 * The attribution model of a scheme's quantized model, built by {@link QuantizedEncoders#quantize} (the
 * same construction the encoder uses): {@link Gradients} on the CPU (float64 backward, the activation
 * quantizer on a CPU backend of its own), or {@link BackendGradients} on a given backend (the GPU).
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
        CpuBackend cpu = new CpuBackend();
        QuantizedEncoders.QuantizedModel q = QuantizedEncoders.quantize(fp32Weights, cpu, scheme, stats, fp32Sites);
        if (q.activations() == null) return new Gradients(q.weights(), head, pooling, QuantSites.NONE, mode, Precision.FLOAT32);
        QuantSites sites = new QuantSites(q.activations(), cpu, scheme.activations().grid());
        return new Gradients(q.weights(), head, pooling, sites, mode, Precision.FLOAT32);
    }

    /**
     * On a backend: the forward with the scheme's activation quantizer on that backend and, when
     * integer and the scheme can (see {@link QuantizedEncoders#integerIneligibility}), its linear layers
     * on the s8 kernels; the backward in float32 through the dequantized weights.
     */
    public static BackendGradients onBackend(BertWeights fp32Weights, LinearHead head, Pooling pooling, Scheme scheme, CalibrationStats stats,
                                             Set<String> fp32Sites, StraightThrough mode, Backend backend, boolean integer) {
        QuantizedEncoders.QuantizedModel q = QuantizedEncoders.quantize(fp32Weights, backend, scheme, stats, fp32Sites);
        ActivationTransform transform = q.activations() == null ? ActivationTransform.NONE : q.activations();
        boolean s8 = integer && q.activations() != null && QuantizedEncoders.integerIneligibility(scheme) == null;
        Encoder.IntegerLinears linears = s8 ? QuantizedEncoders.integerLinears(q, fp32Sites) : null;
        return new BackendGradients(q.weights(), head, pooling, backend, transform, q.activations() == null ? null : scheme.activations().grid(),
                mode, linears, BackendGradients.DEFAULT_MAX_ROWS);
    }
}
