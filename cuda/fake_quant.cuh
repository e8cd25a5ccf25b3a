// Simulated quantization (quantize -> dequantize in FP32), for every bit width. CPU counterpart:
// CpuBackend.fakeQuantColumns / fakeQuantRows; both round half to even (rintf / Math.rint).
#pragma once
#include "common.cuh"

namespace qd {

__device__ __forceinline__ float fake_quant(float x, float scale, float zp, float qmin, float qmax) {
    float q = fminf(fmaxf(rintf(x / scale) + zp, qmin), qmax);
    return (q - zp) * scale;
}

__global__ void fake_quant_columns_kernel(float *x, int cols, size_t n, const float *scale, const float *zp, float qmin,
                                          float qmax) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int c = i % cols;
        x[i] = fake_quant(x[i], scale[c], zp[c], qmin, qmax);
    }
}

// One block per row: the row's range by block reductions, then quantize the row with it.
__global__ void fake_quant_rows_kernel(float *x, int cols, int bits, int symmetric) {
    __shared__ float scratch[32];
    float *row = x + (size_t)blockIdx.x * cols;
    float lo = 0.f, hi = 0.f;  // the range always includes 0
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        lo = fminf(lo, row[c]);
        hi = fmaxf(hi, row[c]);
    }
    // block_sum-style reductions for min and max (negate for min)
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    hi = warp_max(hi);
    lo = -warp_max(-lo);
    if (lane == 0) scratch[warp] = hi;
    __syncthreads();
    hi = warp_max(lane < warps ? scratch[lane] : 0.f);
    __syncthreads();
    if (lane == 0) scratch[warp] = -lo;
    __syncthreads();
    lo = -warp_max(lane < warps ? scratch[lane] : 0.f);
    float qmin, qmax, scale, zp;
    if (symmetric) {
        qmax = (float)((1 << (bits - 1)) - 1);
        qmin = -qmax;
        scale = fmaxf(hi, -lo) / qmax;
        zp = 0.f;
    } else {
        qmin = 0.f;
        qmax = (float)((1 << bits) - 1);
        scale = (hi - lo) / qmax;
        zp = scale > 0.f ? fminf(fmaxf(rintf(-lo / scale), qmin), qmax) : 0.f;
    }
    if (!(scale > 0.f)) scale = 1.f;  // an all-zero row: every value quantizes to 0 exactly
    for (int c = threadIdx.x; c < cols; c += blockDim.x) row[c] = fake_quant(row[c], scale, zp, qmin, qmax);
}

}  // namespace qd
