// Backward kernels for gradients with respect to the input (attributions). CPU counterpart:
// CpuGradientOps (same formulas; it accumulates its reductions in double).
#pragma once
#include "activation.cuh"
#include "common.cuh"
#include "fake_quant.cuh"

namespace qd {

// g = GELU(u) over [rows, cols]; q_scale not NULL: then fake-quantized per column, as fake_quant_columns_kernel on g
// would (the quantized FFN intermediate of the attribution forward: one pass instead of two). Rows over
// blockIdx.y, columns over x, so no 64-bit division finds the column.
__global__ void gelu_forward_kernel(const float *u, float *g, int rows, int cols, const float *q_scale, const float *q_zp,
                                    float qmin, float qmax) {
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const size_t base = (size_t)r * cols;
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x) {
            float v = gelu(u[base + c]);
            g[base + c] = q_scale ? fake_quant(v, q_scale[c], q_zp[c], qmin, qmax) : v;
        }
    }
}

// GELU'(u) = Phi(u) + u phi(u).
__device__ __forceinline__ float gelu_derivative(float x) {
    return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * 0.39894228040143268f * expf(-0.5f * x * x);
}

// dg *= GELU'(u).
__global__ void gelu_grad_kernel(float *dg, const float *u, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dg[i] *= gelu_derivative(u[i]);
}

// The FP16 input-gradient products (CudaGradientOps) read their dy operand in FP16, rounded to nearest even: values of
// 65520 and beyond become inf, which the caller finds in its result. Four values per thread (16-byte loads, 8-byte
// stores: the pointers come 256-byte aligned from the device pool), the n % 4 tail by the first threads.
// y = FP16(x).
__global__ void to_half_kernel(const float *x, size_t n, __half *y) {
    const size_t stride = (size_t)gridDim.x * blockDim.x, first = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (size_t q = first; q < n / 4; q += stride) store_half4(y, 4 * q, reinterpret_cast<const float4 *>(x)[q]);
    if (first < n % 4) y[n - n % 4 + first] = __float2half_rn(x[n - n % 4 + first]);
}

// dg16 = FP16(dg GELU'(u)): GELU's backward writing the FFN's FP16 product operand directly, the FP32 result never stored.
__global__ void gelu_grad_half_kernel(const float *dg, const float *u, size_t n, __half *dg16) {
    const size_t stride = (size_t)gridDim.x * blockDim.x, first = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (size_t q = first; q < n / 4; q += stride) {
        float4 d = reinterpret_cast<const float4 *>(dg)[q], x = reinterpret_cast<const float4 *>(u)[q];
        store_half4(dg16, 4 * q, make_float4(d.x * gelu_derivative(x.x), d.y * gelu_derivative(x.y), d.z * gelu_derivative(x.z),
                                             d.w * gelu_derivative(x.w)));
    }
    if (first < n % 4) {
        size_t i = n - n % 4 + first;
        dg16[i] = __float2half_rn(dg[i] * gelu_derivative(u[i]));
    }
}

// One block per row; x (the forward's input) and gamma * dy staged in shared memory [2 * dim]. The
// statistics are recomputed two-pass, as add_layernorm_kernel computes them, so x_hat is the forward's. dx16 not NULL:
// dx also in FP16, the next input-gradient product's operand under FP16 products.
__global__ void layernorm_grad_kernel(const float *dy, const float *x, const float *gamma, float eps, int dim, float *dx, __half *dx16) {
    extern __shared__ float smem[];
    float *xr = smem, *gr = smem + dim;
    __shared__ float scratch[32];
    size_t base = (size_t)blockIdx.x * dim;
    float s = 0.f;
    for (int d0 = threadIdx.x; d0 < dim; d0 += kRowLoads * blockDim.x) {  // loads issued together, as add_layernorm_kernel's
        float xv[kRowLoads], gv[kRowLoads];
#pragma unroll
        for (int i = 0; i < kRowLoads; i++) {
            const int d = d0 + i * blockDim.x;
            xv[i] = d < dim ? x[base + d] : 0.f, gv[i] = d < dim ? gamma[d] * dy[base + d] : 0.f;
        }
#pragma unroll
        for (int i = 0; i < kRowLoads; i++) {
            const int d = d0 + i * blockDim.x;
            if (d >= dim) break;
            xr[d] = xv[i], gr[d] = gv[i];
            s += xv[i];
        }
    }
    float mean = block_sum(s, scratch) / dim;
    float c2 = 0.f;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float c = xr[d] - mean;
        c2 += c * c;
    }
    float rstd = rsqrtf(block_sum(c2, scratch) / dim + eps);
    float sg = 0.f, sgx = 0.f;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        sg += gr[d];
        sgx += gr[d] * (xr[d] - mean) * rstd;
    }
    float mg = block_sum(sg, scratch) / dim, mgx = block_sum(sgx, scratch) / dim;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float v = rstd * (gr[d] - mg - (xr[d] - mean) * rstd * mgx);
        dx[base + d] = v;
        if (dx16) dx16[base + d] = __float2half_rn(v);
    }
}

// The same backward with one warp per row and the row in registers (layout and conditions as
// add_layernorm_warp_kernel's: dim <= 128 kVecs, dim % 4 == 0, pointers 16-byte aligned, dx16 8-byte aligned); the
// statistics summed in its order, so x_hat is the warp forward's. qd_layernorm_grad runs it where it applies.
template <int kVecs>
__global__ void layernorm_grad_warp_kernel(const float *dy, const float *x, const float *gamma, float eps, int rows, int dim, float *dx,
                                           __half *dx16) {
    const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31, d4 = dim >> 2;
    if (row >= rows) return;
    const size_t base = (size_t)row * d4;
    float xv[kVecs][4], gv[kVecs][4];
#pragma unroll
    for (int i = 0; i < kVecs; i++) {  // all of the row's loads issued before any use
        const int c = lane + 32 * i;
        const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
        const float4 a = c < d4 ? reinterpret_cast<const float4 *>(x)[base + c] : zero,
                     d = c < d4 ? reinterpret_cast<const float4 *>(dy)[base + c] : zero,
                     g = c < d4 ? reinterpret_cast<const float4 *>(gamma)[c] : zero;
        xv[i][0] = a.x, xv[i][1] = a.y, xv[i][2] = a.z, xv[i][3] = a.w;
        gv[i][0] = g.x * d.x, gv[i][1] = g.y * d.y, gv[i][2] = g.z * d.z, gv[i][3] = g.w * d.w;
    }
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < kVecs; i++)
        for (int j = 0; j < 4; j++) s += xv[i][j];  // the padding is zeros
    const float mean = warp_sum(s) / dim;
    float c2 = 0.f;
#pragma unroll
    for (int i = 0; i < kVecs; i++) {
        if (lane + 32 * i >= d4) break;
        for (int j = 0; j < 4; j++) c2 += (xv[i][j] - mean) * (xv[i][j] - mean);
    }
    const float rstd = rsqrtf(warp_sum(c2) / dim + eps);
    float sg = 0.f, sgx = 0.f;
#pragma unroll
    for (int i = 0; i < kVecs; i++)
        for (int j = 0; j < 4; j++) sg += gv[i][j], sgx += gv[i][j] * (xv[i][j] - mean) * rstd;  // gv is 0 in the padding
    const float mg = warp_sum(sg) / dim, mgx = warp_sum(sgx) / dim;
#pragma unroll
    for (int i = 0; i < kVecs; i++) {
        const int c = lane + 32 * i;
        if (c >= d4) break;
        float v[4];
        for (int j = 0; j < 4; j++) v[j] = rstd * (gv[i][j] - mg - (xv[i][j] - mean) * rstd * mgx);
        const float4 v4 = make_float4(v[0], v[1], v[2], v[3]);
        reinterpret_cast<float4 *>(dx)[base + c] = v4;
        if (dx16) store_half4(dx16, 4 * (base + c), v4);
    }
}

// Softmax backward in place, one warp per row: dS = P (dP - sum_j dP_j P_j). Masked keys have P = 0.
__global__ void softmax_grad_kernel(const float *probs, float *dp, int seq, size_t rows) {
    size_t row = blockIdx.x * (size_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    int lane = threadIdx.x & 31;
    const float *p = probs + row * seq;
    float *g = dp + row * seq;
    float dot = 0.f;
    for (int j = lane; j < seq; j += 32) dot += p[j] * g[j];
    dot = warp_sum(dot);
    for (int j = lane; j < seq; j += 32) g[j] = p[j] * (g[j] - dot);
}

// One block per token row (b, t): CLS pooling routes d pooled to t = 0; mean pooling spreads it over the
// real tokens (d pooled / n, the division the CPU does).
__global__ void pool_grad_kernel(const float *dpooled, const int *mask, int seq, int dim, int mode, float *dhidden) {
    int b = blockIdx.x / seq, t = blockIdx.x % seq;
    bool flows = mode == 0 ? t == 0 : mask[(size_t)b * seq + t] != 0;
    int n = 1;
    if (mode == 1) {
        n = 0;
        for (int j = 0; j < seq; j++) n += mask[(size_t)b * seq + j] != 0;
    }
    for (int d = threadIdx.x; d < dim; d += blockDim.x)
        dhidden[(size_t)blockIdx.x * dim + d] = flows ? dpooled[(size_t)b * dim + d] / (float)n : 0.f;
}

// out[b, i] = from[i] + alphas[b] diff[i]: a batch of points on a straight path, total = batch * n.
__global__ void interpolate_kernel(const float *from, const float *diff, const float *alphas, size_t n, size_t total, float *out) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t j = i % n;
        out[i] = from[j] + alphas[i / n] * diff[j];
    }
}

// out[i] = (accumulate ? out[i] : 0) + sum_b w[b] rows[b, i]; consecutive threads read consecutive i.
__global__ void weighted_row_sum_kernel(const float *rows, const float *w, int batch, size_t n, float *out, int accumulate) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float s = accumulate ? out[i] : 0.f;
        for (int b = 0; b < batch; b++) s += w[b] * rows[(size_t)b * n + i];
        out[i] = s;
    }
}

// The clipping-aware STE's mask of a fake-quantized site (see GradientOps.clipMask): 0 where the clamp acted.
// |pre - post| is exact in float32 for values within a factor 2 of each other and otherwise far above half a step.
__global__ void clip_mask_kernel(const float *pre, const float *post, const float *half_steps, int cols, size_t n, float *mask) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        mask[i] = fabsf(pre[i] - post[i]) > half_steps[i % cols] ? 0.f : 1.f;
}

__global__ void multiply_kernel(float *x, const float *mask, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) x[i] *= mask[i];
}

}  // namespace qd
