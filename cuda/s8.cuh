// The FP32 -> s8 rounding rule of every kernel that writes an s8 GEMM operand (quantize.cuh,
// site_quantize.cuh): q = clamp(rint(x / s), -127, 127), see quantize.cuh. Device functions only, so any
// translation unit may include it.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace qd {

__device__ __forceinline__ int8_t quantize_one(float x, float s) {
    int q = __float2int_rn(x / s);
    return (int8_t)max(-127, min(127, q));
}

__device__ __forceinline__ uint32_t quantize_four(float4 v, float s) {
    return (uint32_t)(uint8_t)quantize_one(v.x, s) | (uint32_t)(uint8_t)quantize_one(v.y, s) << 8 |
           (uint32_t)(uint8_t)quantize_one(v.z, s) << 16 | (uint32_t)(uint8_t)quantize_one(v.w, s) << 24;
}

}  // namespace qd
