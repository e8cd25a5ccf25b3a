// Residual add fused with LayerNorm. CPU counterpart: CpuBackend.addLayerNorm.
#pragma once
#include "common.cuh"

namespace qd {

// One block per row. The row (x + residual) is staged in shared memory, so `out` may alias x or
// residual: every read of the row happens before the first write. Two-pass mean / variance, as the
// CPU reference does, so there is no E[x^2] - E[x]^2 cancellation on rows with outlier channels.
__global__ void add_layernorm_kernel(const float *x, const float *residual, const float *gamma, const float *beta,
                                     float eps, int dim, float *out, float *sum) {
    extern __shared__ float row[];
    __shared__ float scratch[32];
    size_t base = (size_t)blockIdx.x * dim;
    float s = 0.f;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float v = x[base + d] + (residual ? residual[base + d] : 0.f);
        row[d] = v;
        s += v;
    }
    float mean = block_sum(s, scratch) / dim;
    float c2 = 0.f;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float c = row[d] - mean;
        c2 += c * c;
    }
    float inv = rsqrtf(block_sum(c2, scratch) / dim + eps);
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float v = row[d];
        if (sum) sum[base + d] = v;
        out[base + d] = (v - mean) * inv * gamma[d] + beta[d];
    }
}

}  // namespace qd
