// Bias + activation epilogue after a cuBLAS GEMM. CPU counterpart: CpuGemm's epilogue.
#pragma once
#include "common.cuh"

namespace qd {

enum Act { ACT_NONE = 0, ACT_GELU = 1, ACT_TANH = 2 };

// Exact-erf GELU, as BERT defines it (not the tanh approximation).
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }

__global__ void bias_act_kernel(float *y, const float *bias, int cols, size_t n, int act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = y[i] + bias[i % cols];
        y[i] = act == ACT_GELU ? gelu(v) : act == ACT_TANH ? tanhf(v) : v;
    }
}

}  // namespace qd
