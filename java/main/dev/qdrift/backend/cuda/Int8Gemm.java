package dev.qdrift.backend.cuda;

import dev.qdrift.QdriftException;
import java.util.Locale;

/**
 * Where the s8 linear layers multiply (--int8-gemm): our kernels with the dequantization fused, or cuBLASLt's s8 GEMM
 * and then a dequantize pass ({@link CudaBackend#useCublasLtInt8}). The outputs are bit-identical either way.
 */
public enum Int8Gemm {
    OURS, CUBLASLT;

    /** The option's value, case and surrounding blanks ignored; null is {@link #OURS}; anything else is named. */
    public static Int8Gemm parse(String value) {
        if (value == null) return OURS;
        return switch (value.trim().toLowerCase(Locale.ROOT)) {
            case "ours" -> OURS;
            case "cublaslt" -> CUBLASLT;
            default -> throw new QdriftException("unknown --int8-gemm '" + value + "': use ours or cublaslt");
        };
    }

    /** As the option spells it. */
    public String flag() {
        return name().toLowerCase(Locale.ROOT);
    }
}
