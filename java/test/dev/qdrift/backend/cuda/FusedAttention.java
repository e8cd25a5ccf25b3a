package dev.qdrift.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How many fused attention runs (cuda/fused_attention.cuh) the tests expect of one TF32 attention call. */
final class FusedAttention {
    /**
     * The fused kernels take at most 128 tokens with head dim 32 or 64. On Hopper (sm_90: 227 KiB of shared memory per
     * block, which the TF32 backward's 202 KiB at head dim 64 needs; the fit is checked against that size for the FP16
     * backward too) every such shape runs fused, exactly once per call; on a device with less, some of them fall back to
     * cuBLAS, so only "never outside those shapes" is checked there.
     */
    static void assertRuns(CudaBackend gpu, int seq, int headDim, long runs, String what) {
        boolean shape = seq <= 128 && (headDim == 32 || headDim == 64);
        if (hopper(gpu)) assertEquals(shape ? 1 : 0, runs, what);
        else assertTrue(runs == 0 || shape && runs == 1, what + ": " + runs);
    }

    /** Whether `gpu` is a Hopper (sm_90), where every shape the fused kernels take fits. */
    static boolean hopper(CudaBackend gpu) {
        return gpu.name().contains("(sm_90");
    }

    private FusedAttention() {}
}
