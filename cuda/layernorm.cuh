// Residual add fused with LayerNorm (and, for a quantized residual sum, its fake-quant). CPU counterpart:
// CpuBackend.addLayerNorm (Backend.addLayerNormQuantized's composition for the quantized sites).
#pragma once
#include "common.cuh"
#include "fake_quant.cuh"
#include "s8.cuh"

namespace qd {

// One block per row. The row (x + residual) is staged in shared memory, so `out` may alias x or
// residual: every read of the row happens before the first write. Two-pass mean / variance, as the
// CPU reference does, so there is no E[x^2] - E[x]^2 cancellation on rows with outlier channels.
// The quantized sites around it (a grid: per-column scale and zero point and the range, as fake_quant_columns_kernel
// takes them; scale NULL = none): sum_q fake-quantizes the sum before it is stored and normalized — the same values
// as this kernel, fake_quant_columns_kernel on `sum`, then this kernel on `sum` again (x + 0 is x; the statistics
// are then reduced in the same order); out_q fake-quantizes the output, as fake_quant_columns_kernel on `out` after
// it. One pass instead of up to four.
struct ColumnGrid {
    const float *scale, *zp;
    float qmin, qmax;
};

// The loads of kRowLoads columns per thread are issued before any of them is used: the compiler cannot prove that the
// stores (to the row in shared memory, to out and sum) do not alias the loads, so it would otherwise keep each load
// behind the previous column's store. Each thread still visits its columns (and sums them) in the same order.
__global__ void add_layernorm_kernel(const float *x, const float *residual, const float *gamma, const float *beta,
                                     float eps, int dim, float *out, float *sum, ColumnGrid sum_q, ColumnGrid out_q) {
    extern __shared__ float row[];
    __shared__ float scratch[32];
    size_t base = (size_t)blockIdx.x * dim;
    float s = 0.f;
    for (int d0 = threadIdx.x; d0 < dim; d0 += kRowLoads * blockDim.x) {
        float v[kRowLoads];
#pragma unroll
        for (int i = 0; i < kRowLoads; i++) {
            const int d = d0 + i * blockDim.x;
            v[i] = d < dim ? x[base + d] + (residual ? residual[base + d] : 0.f) : 0.f;
        }
#pragma unroll
        for (int i = 0; i < kRowLoads; i++) {
            const int d = d0 + i * blockDim.x;
            if (d >= dim) break;
            if (sum_q.scale) v[i] = fake_quant(v[i], sum_q.scale[d], sum_q.zp[d], sum_q.qmin, sum_q.qmax);
            row[d] = v[i];
            s += v[i];
        }
    }
    float mean = block_sum(s, scratch) / dim;
    float c2 = 0.f;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float c = row[d] - mean;
        c2 += c * c;
    }
    float inv = rsqrtf(block_sum(c2, scratch) / dim + eps);
    for (int d0 = threadIdx.x; d0 < dim; d0 += kRowLoads * blockDim.x) {
        float g[kRowLoads], b[kRowLoads];
#pragma unroll
        for (int i = 0; i < kRowLoads; i++) {
            const int d = d0 + i * blockDim.x;
            g[i] = d < dim ? gamma[d] : 0.f, b[i] = d < dim ? beta[d] : 0.f;
        }
#pragma unroll
        for (int i = 0; i < kRowLoads; i++) {
            const int d = d0 + i * blockDim.x;
            if (d >= dim) break;
            float v = row[d];
            if (sum) sum[base + d] = v;
            const float y = (v - mean) * inv * g[i] + b[i];
            out[base + d] = out_q.scale ? fake_quant(y, out_q.scale[d], out_q.zp[d], out_q.qmin, out_q.qmax) : y;
        }
    }
}

// fake_quant on the grid's columns 4c .. 4c+3, their scales and zero points read as one float4 each (16-byte aligned).
__device__ __forceinline__ void fake_quant_four(float (&v)[4], const ColumnGrid &grid, int c) {
    const float4 sc = __ldg(reinterpret_cast<const float4 *>(grid.scale) + c), zp = __ldg(reinterpret_cast<const float4 *>(grid.zp) + c);
    v[0] = fake_quant(v[0], sc.x, zp.x, grid.qmin, grid.qmax), v[1] = fake_quant(v[1], sc.y, zp.y, grid.qmin, grid.qmax);
    v[2] = fake_quant(v[2], sc.z, zp.z, grid.qmin, grid.qmax), v[3] = fake_quant(v[3], sc.w, zp.w, grid.qmin, grid.qmax);
}

// The same LayerNorm with one warp per row and the row in registers: lane i holds the float4s i, i + 32, ... of the row
// (kVecs of them: dim <= 128 kVecs, dim % 4 == 0, every pointer 16-byte aligned, the grids' too). No shared memory and no block
// barrier: the statistics are warp shuffles, still two-pass. qd_add_layernorm runs it where it applies (BERT widths),
// add_layernorm_kernel elsewhere; the two sum in different orders, so their outputs differ in the last bits.
// q (not NULL): the next s8 layer's operand, each output element quantized as quantize_tensor_ld_kernel quantizes the
// stored output (quantize_one with the static scale q_s: the same bytes), rows of ldq >= dim bytes (ldq % 4 == 0, q
// 4-byte aligned), columns dim .. ldq-1 zeroed. q_on_grid: out_q is q_s itself (every column's scale q_s, zero point 0,
// range within [-127, 127]): out and q both from quantize_on_grid, the same values with one division.
template <int kVecs>
__global__ void add_layernorm_warp_kernel(const float *x, const float *residual, const float *gamma, const float *beta, float eps,
                                          int rows, int dim, float *out, float *sum, ColumnGrid sum_q, ColumnGrid out_q, int8_t *q,
                                          float q_s, int q_on_grid, int ldq) {
    const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31, d4 = dim >> 2;
    if (row >= rows) return;
    const size_t base = (size_t)row * d4;
    const float4 *x4 = reinterpret_cast<const float4 *>(x) + base,
                 *r4 = residual ? reinterpret_cast<const float4 *>(residual) + base : nullptr;
    float v[kVecs][4];
#pragma unroll
    for (int i = 0; i < kVecs; i++) {  // all of the row's loads issued before any use
        const int c = lane + 32 * i;
        const float4 a = c < d4 ? x4[c] : make_float4(0.f, 0.f, 0.f, 0.f);
        const float4 b = c < d4 && r4 ? r4[c] : make_float4(0.f, 0.f, 0.f, 0.f);
        v[i][0] = a.x + b.x, v[i][1] = a.y + b.y, v[i][2] = a.z + b.z, v[i][3] = a.w + b.w;
    }
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < kVecs; i++) {
        const int c = lane + 32 * i;
        if (c >= d4) break;
        if (sum_q.scale) fake_quant_four(v[i], sum_q, c);
        for (int j = 0; j < 4; j++) s += v[i][j];
    }
    const float mean = warp_sum(s) / dim;
    float c2 = 0.f;
#pragma unroll
    for (int i = 0; i < kVecs; i++) {
        if (lane + 32 * i >= d4) break;
        for (int j = 0; j < 4; j++) c2 += (v[i][j] - mean) * (v[i][j] - mean);
    }
    const float inv = rsqrtf(warp_sum(c2) / dim + eps);
#pragma unroll
    for (int i = 0; i < kVecs; i++) {
        const int c = lane + 32 * i;
        if (c >= d4) break;
        const float4 g = __ldg(reinterpret_cast<const float4 *>(gamma) + c), b = __ldg(reinterpret_cast<const float4 *>(beta) + c);
        float y[4] = {(v[i][0] - mean) * inv * g.x + b.x, (v[i][1] - mean) * inv * g.y + b.y, (v[i][2] - mean) * inv * g.z + b.z,
                      (v[i][3] - mean) * inv * g.w + b.w};
        uint32_t bytes = 0;
        if (q_on_grid)
            for (int j = 0; j < 4; j++) bytes |= (uint32_t)(uint8_t)quantize_on_grid(y[j], q_s, out_q.qmin, out_q.qmax, &y[j]) << 8 * j;
        else if (out_q.scale)
            fake_quant_four(y, out_q, c);
        if (sum) reinterpret_cast<float4 *>(sum)[base + c] = make_float4(v[i][0], v[i][1], v[i][2], v[i][3]);
        const float4 y4 = make_float4(y[0], y[1], y[2], y[3]);
        reinterpret_cast<float4 *>(out)[base + c] = y4;
        if (q) reinterpret_cast<uint32_t *>(q + (size_t)row * ldq)[c] = q_on_grid ? bytes : quantize_four(y4, q_s);
    }
    if (q)
        for (int c = d4 + lane; c < ldq / 4; c += 32) reinterpret_cast<uint32_t *>(q + (size_t)row * ldq)[c] = 0u;
}

}  // namespace qd
