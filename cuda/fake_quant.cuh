// Simulated quantization (quantize -> dequantize in FP32), for every bit width. CPU counterpart:
// CpuBackend.fakeQuantColumns / fakeQuantRows; both round half to even (rintf / Math.rint).
#pragma once
#include <stdint.h>
#include "common.cuh"

namespace qd {

// The grid's integer level of x (as a float): clamp(rint(x / scale) + zp, qmin, qmax).
__device__ __forceinline__ float fake_quant_level(float x, float scale, float zp, float qmin, float qmax) {
    return fminf(fmaxf(rintf(x / scale) + zp, qmin), qmax);
}

__device__ __forceinline__ float fake_quant(float x, float scale, float zp, float qmin, float qmax) {
    return (fake_quant_level(x, scale, zp, qmin, qmax) - zp) * scale;
}

// The s8 value of x fake-quantized on a grid that is the s8 scale itself (every column's scale s, zero point 0, range
// [qmin, qmax] within [-127, 127]): the grid's own level, for s8.cuh's quantize_one(fake_quant(x), s) equals it — fake_quant's
// q s divided by s rounds back to q (within 127 * 2^-23 of it, s a normal float). One division instead of two. NaN
// goes to qmin, as fake_quant takes it. fq (not NULL) receives fake_quant(x) itself, the same float.
__device__ __forceinline__ int8_t quantize_on_grid(float x, float s, float qmin, float qmax, float *fq = nullptr) {
    const float q = fake_quant_level(x, s, 0.f, qmin, qmax);
    if (fq) *fq = (q - 0.f) * s;
    return (int8_t)q;
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
