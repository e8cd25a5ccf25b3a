package dev.qdrift.backend.cuda;

/** Which attention shapes the tests expect to run fused under TF32 (cuda/fused_attention.cuh). */
final class FusedAttention {
    /**
     * At most 128 tokens and head dim 32 or 64. This holds on the GPU hosts the tests run on (H100 / H200: 227 KiB of
     * shared memory per block, which the backward's 202 KiB at head dim 64 needs); a smaller device falls back for some.
     */
    static boolean expected(int seq, int headDim) {
        return seq <= 128 && (headDim == 32 || headDim == 64);
    }

    private FusedAttention() {}
}
