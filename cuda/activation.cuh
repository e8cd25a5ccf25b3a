// Bias + activation epilogue after a cuBLAS GEMM. CPU counterpart: CpuGemm's epilogue.
#pragma once
#include "common.cuh"

namespace qd {

enum Act { ACT_NONE = 0, ACT_GELU = 1, ACT_TANH = 2 };

// Exact-erf GELU, as BERT defines it (not the tanh approximation).
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }

// One block row per matrix row (blockIdx.x) and one thread per column, so the bias index needs no 64-bit modulo.
__global__ void bias_act_kernel(float *y, const float *bias, int cols, int act) {
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    size_t i = (size_t)blockIdx.x * cols + c;
    float v = y[i] + bias[c];
    y[i] = act == ACT_GELU ? gelu(v) : act == ACT_TANH ? tanhf(v) : v;
}

}  // namespace qd
