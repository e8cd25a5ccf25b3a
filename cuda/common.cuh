// Shared device helpers: warp and block reductions, FP16 packing.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace qd {

// Two floats rounded to FP16 (nearest even) as one 32-bit word, lo in the low half.
__device__ __forceinline__ uint32_t half_pair(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&h);
}

// y[i .. i+4) = FP16(v), one 8-byte store (y + i 8-byte aligned).
__device__ __forceinline__ void store_half4(__half *y, size_t i, float4 v) {
    *reinterpret_cast<uint2 *>(y + i) = make_uint2(half_pair(v.x, v.y), half_pair(v.z, v.w));
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Columns per thread whose loads a row kernel issues together (the LayerNorm kernels, forward and backward).
constexpr int kRowLoads = 8;

// Sum over the block; every thread gets the result. `scratch` holds 32 floats; blockDim.x is a multiple of 32.
__device__ __forceinline__ float block_sum(float v, float *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.f;
    return warp_sum(v);
}

}  // namespace qd
