// Residual add fused with LayerNorm (and, for a quantized residual sum, its fake-quant). CPU counterpart:
// CpuBackend.addLayerNorm (Backend.addLayerNormQuantized's composition for the quantized sites).
#pragma once
#include "common.cuh"
#include "fake_quant.cuh"

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

}  // namespace qd
