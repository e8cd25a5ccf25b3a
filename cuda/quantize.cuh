// FP32 -> s8 quantization for the INT8 GEMM (cuda/int8_gemm.cuh).
//
// Symmetric, round half to even, clamped to [-127, 127] (-128 is never produced, so -q is always
// representable and the grid is symmetric):
//
//     q = clamp(rint(x / s), -127, 127)
//
// x / s is the IEEE-754 correctly rounded FP32 division (nvcc's default -prec-div=true; this file must not
// be built with --use_fast_math) and rint is __float2int_rn (round to nearest, ties to even), so the result
// is bit-identical to Java's (int) Math.rint(x / s) in float arithmetic. NaN quantizes to 0. The
// dequantized value is q * s.
//
// Three granularities:
//   per tensor: one given scale s for every element;
//   per token:  one scale per row, computed in the same kernel: s[r] = max_c |x[r,c]| / 127 (FP32 division),
//               or 1 when the row is all zeros (then every q is 0); the scales are written to `scales`;
//   per group:  G given scales along the columns, group g = columns [g*cols/G, (g+1)*cols/G) (cols % G == 0).
// The per-tensor and per-token kernels can also write rows of ldq >= cols bytes with the columns past cols
// set to 0: the s8 GEMM needs K % 16 == 0, and zero columns add nothing to its sums (K padding).
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>
#include "common.cuh"
#include "s8.cuh"

namespace qd {

// Elementwise, one scale. vec4: n % 4 == 0 and x 16-byte aligned, q 4-byte aligned.
__global__ void quantize_tensor_kernel(const float *__restrict__ x, float s, size_t n, int8_t *__restrict__ q, int vec4) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    if (vec4) {
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
        uint32_t *q4 = reinterpret_cast<uint32_t *>(q);
        for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n / 4; i += stride) q4[i] = quantize_four(x4[i], s);
    } else {
        for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) q[i] = quantize_one(x[i], s);
    }
}

// Elementwise, one scale, into rows of ldq bytes (columns cols .. ldq-1 zeroed). Element-wise, no vectors.
__global__ void quantize_tensor_ld_kernel(const float *__restrict__ x, float s, int rows, int cols, int ldq,
                                          int8_t *__restrict__ q) {
    size_t stride = (size_t)gridDim.x * blockDim.x, n = (size_t)rows * ldq;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t r = i / ldq;
        int c = (int)(i - r * ldq);
        q[i] = c < cols ? quantize_one(x[r * cols + c], s) : (int8_t)0;
    }
}

// s8 rows of `cols` bytes (any alignment) into rows of dst_cols bytes: each of the `groups` equal column groups
// (gs = cols / groups) starts a group of dgs = dst_cols / groups >= gs columns, the rest of which is zeroed. The
// fallback of the s8 GEMM for operands it cannot read directly (K % 16 != 0, misaligned rows): zero columns add
// nothing to the sums, and per-group padding keeps PEG's groups whole.
__global__ void repack_s8_kernel(const int8_t *__restrict__ src, int rows, int cols, int groups, int8_t *__restrict__ dst,
                                 int dst_cols) {
    const int gs = cols / groups, dgs = dst_cols / groups;
    size_t stride = (size_t)gridDim.x * blockDim.x, n = (size_t)rows * dst_cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t r = i / dst_cols;
        int c = (int)(i - r * dst_cols), g = c / dgs, cg = c - g * dgs;
        dst[i] = cg < gs ? src[r * cols + (size_t)g * gs + cg] : (int8_t)0;
    }
}

// One warp per row: pass 1 takes the row's absmax (the row stays in L1/L2 for pass 2), pass 2 quantizes.
// q rows are ldq >= cols bytes apart, columns cols .. ldq-1 zeroed. vec4: cols % 4 == 0, ldq % 4 == 0, x
// 16-byte aligned, q 4-byte aligned.
__global__ void quantize_token_kernel(const float *__restrict__ x, int rows, int cols, int ldq, int8_t *__restrict__ q,
                                      float *__restrict__ scales, int vec4) {
    int lane = threadIdx.x & 31;
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    const float *xr = x + (size_t)row * cols;
    int8_t *qr = q + (size_t)row * ldq;
    for (int c = cols + lane; c < ldq; c += 32) qr[c] = 0;
    float m = 0.f;
    if (vec4) {
        const float4 *x4 = reinterpret_cast<const float4 *>(xr);
        for (int c = lane; c < cols / 4; c += 32) {
            float4 v = x4[c];
            m = fmaxf(m, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
        }
    } else {
        for (int c = lane; c < cols; c += 32) m = fmaxf(m, fabsf(xr[c]));
    }
    m = warp_max(m);
    float s = m > 0.f ? m / 127.f : 1.f;
    if (lane == 0) scales[row] = s;
    if (vec4) {
        const float4 *x4 = reinterpret_cast<const float4 *>(xr);
        uint32_t *q4 = reinterpret_cast<uint32_t *>(qr);
        for (int c = lane; c < cols / 4; c += 32) q4[c] = quantize_four(x4[c], s);
    } else {
        for (int c = lane; c < cols; c += 32) qr[c] = quantize_one(xr[c], s);
    }
}

// Per group of columns. vec4: group_size % 4 == 0 (so 4 neighbours share a group), x / q aligned.
__global__ void quantize_group_kernel(const float *__restrict__ x, const float *__restrict__ scales, int cols,
                                      int group_size, size_t n, int8_t *__restrict__ q, int vec4) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    if (vec4) {
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
        uint32_t *q4 = reinterpret_cast<uint32_t *>(q);
        for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n / 4; i += stride) {
            int c = (int)((i * 4) % cols);
            q4[i] = quantize_four(x4[i], __ldg(scales + c / group_size));
        }
    } else {
        for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride)
            q[i] = quantize_one(x[i], __ldg(scales + (int)(i % cols) / group_size));
    }
}

}  // namespace qd
