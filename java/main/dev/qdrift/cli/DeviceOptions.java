package dev.qdrift.cli;

import dev.qdrift.QdriftException;
import dev.qdrift.backend.Backend;
import dev.qdrift.backend.cpu.CpuBackend;
import dev.qdrift.backend.cuda.CudaBackend;
import dev.qdrift.backend.cuda.Int8Gemm;
import picocli.CommandLine.Option;

/** --device cpu|cuda|auto: which backend runs the encoder. */
public final class DeviceOptions {
    @Option(names = "--device", defaultValue = "cpu",
            description = "cpu, cuda, or auto (cuda when a usable GPU is here, else cpu) (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--tf32", description = "on the GPU, run the FP32 matrix products (cuBLAS, and attention as one fused kernel) on TF32 "
            + "tensor cores: inputs rounded to a 10-bit mantissa, FP32 sums; faster, not FP32-exact (default: true FP32)")
    boolean tf32;

    @Option(names = "--fp16-backward", description = "on the GPU, run the backward's input-gradient products with FP16 operands (FP32 "
            + "sums): the same 10-bit mantissa as TF32, about twice its rate; the gradients' seed is scaled by a power of two into FP16's "
            + "range, and a pass that overflows it reruns with FP32 operands (default: FP32 operands, or TF32 with --tf32)")
    boolean fp16Backward;

    @Option(names = "--int8-gemm", defaultValue = "ours", description = "where the s8 linear layers (--int8) multiply on the GPU: ours "
            + "(our kernels, dequantization fused) or cublaslt (cuBLASLt's s8 GEMM, then a dequantize pass; for comparison, "
            + "bit-identical results; refused where no s8 layer runs) (default: ${DEFAULT-VALUE})")
    String int8Gemm;

    /**
     * --int8-gemm changes only the s8 linear layers: refuses --int8-gemm cublaslt, before any work, where `command` runs
     * none (`s8Layers` false), saying what would add them (`howToAdd`, or null where nothing can).
     */
    void requireS8Layers(boolean s8Layers, String command, String howToAdd) {
        if (!s8Layers && Int8Gemm.parse(int8Gemm) == Int8Gemm.CUBLASLT)
            throw new QdriftException("--int8-gemm cublaslt changes only the s8 linear layers, and " + command + " here runs none"
                    + (howToAdd == null ? "" : " (" + howToAdd + ")"));
    }

    /** For commands whose output cannot record the mode (a head file): refuses --tf32 with the reason. */
    void refuseTf32(String why) {
        if (tf32) throw new QdriftException("--tf32 is not available here: " + why);
    }

    /** --fp16-backward changes only gradients: refuses it, before any work, where `command` computes none. */
    void refuseFp16Backward(String command) {
        if (fp16Backward)
            throw new QdriftException("--fp16-backward changes only the backward's products, and " + command + " computes no gradients");
    }

    Backend open() {
        boolean cublasLt = Int8Gemm.parse(int8Gemm) == Int8Gemm.CUBLASLT;
        Backend b = openDevice();
        try {
            if (tf32) gpu(b, "--tf32 needs the GPU (--device cuda): the CPU backend computes in FP32 only").useTf32(true);
            if (fp16Backward) gpu(b, "--fp16-backward needs the GPU (--device cuda): the CPU backend computes in FP32 only").useHalfProducts(true);
            if (cublasLt) gpu(b, "--int8-gemm cublaslt needs the GPU (--device cuda)").useCublasLtInt8(true);
        } catch (RuntimeException e) {
            b.close();
            throw e;
        }
        return b;
    }

    private static CudaBackend gpu(Backend b, String otherwise) {
        if (b instanceof CudaBackend c) return c;
        throw new QdriftException(otherwise);
    }

    private Backend openDevice() {
        return switch (device) {
            case "cpu" -> new CpuBackend();
            case "cuda" -> CudaBackend.open(0);
            case "auto" -> {
                CudaBackend.Availability a = CudaBackend.availability();
                if (a.available()) yield CudaBackend.open(0);
                System.err.println("qdrift: " + a.reason() + "; running on the CPU (--device auto)");
                yield new CpuBackend();
            }
            default -> throw new QdriftException("unknown --device '" + device + "': use cpu, cuda or auto");
        };
    }
}
