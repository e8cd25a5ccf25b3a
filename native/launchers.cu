// qdrift.h kernel half: host launchers for the kernels in cuda/. Each checks its arguments, picks a
// launch shape and returns the launch status.
#include "qdrift.h"
#include <cfloat>
#include <initializer_list>
#include <type_traits>
#include "activation.cuh"
#include "attention.cuh"
#include "backward.cuh"
#include "embedding.cuh"
#include "fake_quant.cuh"
#include "fused_attention.cuh"
#include "layernorm.cuh"
#include "site_quantize.cuh"
#include "transfer.cuh"

#define S(stream) ((cudaStream_t)(stream))

static int grid_for(size_t n, int threads) {
    size_t blocks = (n + threads - 1) / threads;
    return (int)(blocks < 65535 * 16 ? blocks : 65535 * 16);
}

// Calls f with std::integral_constant<int, 32 or 64>: the fused attention kernels' head dims (checked before).
template <typename F>
static auto by_head_dim(int head_dim, F f) {
    return head_dim == 32 ? f(std::integral_constant<int, 32>()) : f(std::integral_constant<int, 64>());
}

// The warp-per-row LayerNorm kernels hold a row of dim % 4 == 0 columns in kVecs float4s per lane, dim <= 128 kVecs:
// calls f with std::integral_constant<int, kVecs> (1, 2, 3, 4, 6 or 8: the smallest that holds the row) and returns
// true, or returns false for rows wider than 1024 columns.
template <typename F>
static bool by_row_vecs(int dim, F f) {
    switch ((dim / 4 + 31) / 32) {
        case 1: f(std::integral_constant<int, 1>()); return true;
        case 2: f(std::integral_constant<int, 2>()); return true;
        case 3: f(std::integral_constant<int, 3>()); return true;
        case 4: f(std::integral_constant<int, 4>()); return true;
        case 5: case 6: f(std::integral_constant<int, 6>()); return true;
        case 7: case 8: f(std::integral_constant<int, 8>()); return true;
        default: return false;
    }
}

// Whether the LayerNorm kernels, forward and backward, take rows of dim columns one warp per row (dim % 4 == 0, at most
// 1024): decided by dim alone, so that a forward and its backward always pair (they sum in different orders from the
// block kernels). Their pointers must then be 16-byte aligned (the pool's always are).
static bool warp_rows(int dim) { return dim % 4 == 0 && dim <= 1024; }
constexpr int kRowWarps = 4;  // rows (warps) per block of those kernels

// Every pointer 16-byte aligned (NULL counts as aligned): the float4 accesses of the row kernels.
static bool aligned16(std::initializer_list<const void *> pointers) {
    for (const void *p : pointers)
        if ((uintptr_t)p % 16 != 0) return false;
    return true;
}

// Whether a grid of scale s, zero point 0 and range [qmin, qmax] is the s8 quantization at scale s itself
// (quantize_on_grid's conditions: the range within [-127, 127], s a normal float whose multiples up to 127 are finite).
static bool on_s8_grid(float s, int qmin, int qmax) {
    return qmin < qmax && qmin >= -127 && qmax <= 127 && s >= FLT_MIN && s <= FLT_MAX / 128;
}

// The fused kernels' dynamic shared memory for (seq, head_dim), 0 where they do not take that shape; pass 0 the
// forward, 1 the TF32 backward, 2 the FP16 backward.
static size_t fused_attention_bytes(int seq, int head_dim, int pass) {
    if (seq <= 0 || seq > qd::kFusedAttentionTokens || (head_dim != 32 && head_dim != 64) || pass < 0 || pass > 2) return 0;
    return by_head_dim(head_dim, [&](auto hd) {
        constexpr int HD = decltype(hd)::value;
        return pass == 2 ? qd::fused_attention_grad_half_smem<HD>(seq)
               : pass == 1 ? qd::fused_attention_grad_smem<HD>(seq) : qd::fused_attention_smem<HD>(seq);
    });
}

// The dynamic shared memory a block of the fused kernels may take on this device: its opt-in limit less their
// static key mask, asked once per device (every attention call, forward and backward, asks this twice); 0 if the
// device cannot be asked (not remembered).
static size_t fused_attention_limit() {
    static size_t limit[64];
    int device, optin;
    if (cudaGetDevice(&device) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    if (device >= 0 && device < 64 && limit[device] > 0) return limit[device];
    if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    const size_t fixed = qd::kFusedAttentionTokens * sizeof(int);
    const size_t bytes = (size_t)optin > fixed ? optin - fixed : 0;
    if (device >= 0 && device < 64) limit[device] = bytes;
    return bytes;
}

// Lets `kernel` take up to `most` bytes of dynamic shared memory, or the device's limit where that is lower (the
// launchers refuse shapes beyond it), once per device: done[device] records it, a failure is not recorded. The first
// launch does it, so a graph capture, which replays work already run, never does.
template <typename Kernel>
static cudaError_t allow_smem(Kernel kernel, size_t most, bool done[64]) {
    int device;
    cudaError_t e = cudaGetDevice(&device);
    if (e != cudaSuccess) return e;
    if (device >= 0 && device < 64 && done[device]) return cudaSuccess;
    const size_t limit = fused_attention_limit();
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)(most < limit ? most : limit));
    if (e != cudaSuccess) {
        cudaGetLastError();  // reported here, not by the next launcher
        return e;
    }
    if (device >= 0 && device < 64) done[device] = true;
    return cudaSuccess;
}


extern "C" {

int qd_embed(const int *ids, const int *type_ids, const float *word, const float *position, const float *type,
             int batch, int seq, int hidden, float *out, void *stream) {
    if (batch <= 0 || seq <= 0 || hidden <= 0) return cudaErrorInvalidValue;
    qd::embed_kernel<<<batch * seq, 128, 0, S(stream)>>>(ids, type_ids, word, position, type, seq, hidden, out);
    return cudaGetLastError();
}

int qd_add_layernorm(const float *x, const float *residual, const float *gamma, const float *beta, float eps, int rows, int dim,
                     float *out, float *sum, const float *sum_scale, const float *sum_zero_point, int sum_qmin, int sum_qmax,
                     const float *out_scale, const float *out_zero_point, int out_qmin, int out_qmax, int8_t *q, float q_s,
                     int q_on_grid, int ldq, void *stream) {
    if (rows <= 0 || dim <= 0 || dim > 12288) return cudaErrorInvalidValue;
    if (sum_scale && (!sum_zero_point || !sum || sum_qmin >= sum_qmax)) return cudaErrorInvalidValue;
    if (out_scale && (!out_zero_point || out_qmin >= out_qmax)) return cudaErrorInvalidValue;
    const bool by_warps = warp_rows(dim);
    if (by_warps && !aligned16({x, residual, gamma, beta, out, sum, sum_scale, sum_zero_point, out_scale, out_zero_point}))
        return cudaErrorMisalignedAddress;
    if (q && (!by_warps || ldq < dim || ldq % 4 != 0 || (uintptr_t)q % 4 != 0 || !(q_s > 0.f && q_s < INFINITY)))
        return cudaErrorInvalidValue;  // the s8 operand only from the warp kernel
    if (q_on_grid && (!q || !out_scale || !on_s8_grid(q_s, out_qmin, out_qmax))) return cudaErrorInvalidValue;
    const qd::ColumnGrid sum_q{sum_scale, sum_zero_point, (float)sum_qmin, (float)sum_qmax},
        out_q{out_scale, out_zero_point, (float)out_qmin, (float)out_qmax};
    if (by_warps && by_row_vecs(dim, [&](auto vecs) {
            qd::add_layernorm_warp_kernel<decltype(vecs)::value><<<(rows + kRowWarps - 1) / kRowWarps, 32 * kRowWarps, 0, S(stream)>>>(
                x, residual, gamma, beta, eps, rows, dim, out, sum, sum_q, out_q, q, q_s, q_on_grid, ldq);
        }))
        return cudaGetLastError();
    int threads = dim >= 1024 ? 512 : 128;
    qd::add_layernorm_kernel<<<rows, threads, dim * sizeof(float), S(stream)>>>(x, residual, gamma, beta, eps, dim, out, sum,
                                                                                sum_q, out_q);
    return cudaGetLastError();
}

int qd_bias_act(float *y, const float *bias, int rows, int cols, int act, void *stream) {
    if (rows <= 0 || cols <= 0 || act < 0 || act > 2) return cudaErrorInvalidValue;
    dim3 grid(rows, (cols + 255) / 256);
    qd::bias_act_kernel<<<grid, 256, 0, S(stream)>>>(y, bias, cols, act);
    return cudaGetLastError();
}

int qd_head_pointers(const float *const *bases, const int *row_strides, int count, int batch, int seq, int heads, int head_dim,
                     const float **out, void *stream) {
    if (count <= 0 || count > qd::kHeadOperandsMax || batch <= 0 || seq <= 0 || heads <= 0 || head_dim <= 0 || !bases ||
        !row_strides || !out)
        return cudaErrorInvalidValue;
    qd::HeadOperands ops{};
    for (int j = 0; j < count; j++) {
        if (!bases[j] || row_strides[j] < 0 || (row_strides[j] > 0 && row_strides[j] < heads * head_dim)) return cudaErrorInvalidValue;
        ops.base[j] = bases[j], ops.row_stride[j] = row_strides[j];
    }
    ops.count = count;
    const int bh = batch * heads;
    qd::head_pointers_kernel<<<grid_for((size_t)count * bh, 256), 256, 0, S(stream)>>>(ops, heads, seq, head_dim, bh, out);
    return cudaGetLastError();
}

int qd_masked_softmax(float *scores, const int *mask, int batch, int heads, int seq, void *stream) {
    if (batch <= 0 || heads <= 0 || seq <= 0) return cudaErrorInvalidValue;
    size_t rows = (size_t)batch * heads * seq;
    int warps_per_block = 8;
    size_t blocks = (rows + warps_per_block - 1) / warps_per_block;
    qd::masked_softmax_kernel<<<(unsigned)blocks, warps_per_block * 32, 0, S(stream)>>>(scores, mask, heads, seq, rows);
    return cudaGetLastError();
}

int qd_fused_attention_fits(int seq, int head_dim, int pass) {
    const size_t bytes = fused_attention_bytes(seq, head_dim, pass);
    return bytes && bytes <= fused_attention_limit();
}

int qd_fused_attention(const float *qkv, const int *mask, int batch, int seq, int heads, int head_dim, float scale, float *ctx,
                       void *stream) {
    if (batch <= 0 || heads <= 0 || !qd_fused_attention_fits(seq, head_dim, 0) || !mask || !aligned16({qkv, ctx}))
        return cudaErrorInvalidValue;
    return by_head_dim(head_dim, [&](auto hd) -> int {
        constexpr int HD = decltype(hd)::value;
        static bool done[64];
        const cudaError_t e = allow_smem(qd::fused_attention_kernel<HD>, qd::fused_attention_smem<HD>(qd::kFusedAttentionTokens), done);
        if (e != cudaSuccess) return e;
        qd::fused_attention_kernel<HD><<<batch * heads, qd::kFusedAttentionThreads, qd::fused_attention_smem<HD>(seq), S(stream)>>>(
            qkv, mask, seq, heads, scale, ctx);
        return cudaGetLastError();
    });
}

}  // extern "C"

// The backward kernel for one head dim: TF32 with FP32 dqkv, or FP16 throughout (under FP16 products).
template <int HD>
static int launch_fused_attention_grad(const float *dctx, const float *qkv, const int *mask, int batch, int seq, int heads,
                                       float scale, void *dqkv, bool half, cudaStream_t stream) {
    static bool done[64], done_half[64];
    const cudaError_t e = half ? allow_smem(qd::fused_attention_grad_half_kernel<HD>,
                                            qd::fused_attention_grad_half_smem<HD>(qd::kFusedAttentionTokens), done_half)
                               : allow_smem(qd::fused_attention_grad_kernel<HD>, qd::fused_attention_grad_smem<HD>(qd::kFusedAttentionTokens),
                                            done);
    if (e != cudaSuccess) return e;
    if (half)
        qd::fused_attention_grad_half_kernel<HD><<<batch * heads, qd::kFusedAttentionThreads, qd::fused_attention_grad_half_smem<HD>(seq),
                                                   stream>>>(dctx, qkv, mask, seq, heads, scale, (__half *)dqkv);
    else
        qd::fused_attention_grad_kernel<HD><<<batch * heads, qd::kFusedAttentionThreads, qd::fused_attention_grad_smem<HD>(seq), stream>>>(
            dctx, qkv, mask, seq, heads, scale, (float *)dqkv);
    return cudaGetLastError();
}

extern "C" {

int qd_fused_attention_grad(const float *dctx, const float *qkv, const int *mask, int batch, int seq, int heads, int head_dim,
                            float scale, void *dqkv, int half_out, void *stream) {
    if (batch <= 0 || heads <= 0 || !qd_fused_attention_fits(seq, head_dim, half_out ? 2 : 1) || !mask ||
        !aligned16({dctx, qkv, dqkv}))
        return cudaErrorInvalidValue;
    return by_head_dim(head_dim, [&](auto hd) -> int {
        return launch_fused_attention_grad<decltype(hd)::value>(dctx, qkv, mask, batch, seq, heads, scale, dqkv, half_out != 0, S(stream));
    });
}

int qd_pool(const float *hidden, const int *mask, int batch, int seq, int dim, int mode, float *out, void *stream) {
    if (batch <= 0 || seq <= 0 || dim <= 0 || mode < 0 || mode > 1) return cudaErrorInvalidValue;
    qd::pool_kernel<<<batch, 128, 0, S(stream)>>>(hidden, mask, seq, dim, mode, out);
    return cudaGetLastError();
}

int qd_fake_quant_columns(float *x, int rows, int cols, const float *scale, const float *zero_point, int qmin, int qmax,
                          void *stream) {
    if (rows <= 0 || cols <= 0 || qmin >= qmax) return cudaErrorInvalidValue;
    size_t n = (size_t)rows * cols;
    qd::fake_quant_columns_kernel<<<grid_for(n, 256), 256, 0, S(stream)>>>(x, cols, n, scale, zero_point, (float)qmin, (float)qmax);
    return cudaGetLastError();
}

int qd_fake_quant_rows(float *x, int rows, int cols, int bits, int symmetric, void *stream) {
    if (rows <= 0 || cols <= 0 || bits < 2 || bits > 8) return cudaErrorInvalidValue;
    qd::fake_quant_rows_kernel<<<rows, 128, 0, S(stream)>>>(x, cols, bits, symmetric);
    return cudaGetLastError();
}

// ---- backward (attributions) ----

int qd_copy(float *dst, const float *src, size_t n, void *stream) {
    return cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, S(stream));
}

int qd_gelu_forward(const float *u, float *g, int rows, int cols, const float *q_scale, const float *q_zero_point, int qmin,
                    int qmax, void *stream) {
    if (rows <= 0 || cols <= 0) return cudaErrorInvalidValue;
    if (q_scale && (!q_zero_point || qmin >= qmax)) return cudaErrorInvalidValue;
    const int threads = 256, across = (cols + threads - 1) / threads;
    const dim3 grid(across, rows < 65535 ? rows : 65535);
    qd::gelu_forward_kernel<<<grid, threads, 0, S(stream)>>>(u, g, rows, cols, q_scale, q_zero_point, (float)qmin, (float)qmax);
    return cudaGetLastError();
}

int qd_gelu_grad(float *dg, const float *u, size_t n, void *stream) {
    if (n == 0) return cudaErrorInvalidValue;
    qd::gelu_grad_kernel<<<grid_for(n, 256), 256, 0, S(stream)>>>(dg, u, n);
    return cudaGetLastError();
}

int qd_round_to_float(const double *x, size_t n, float *y, void *stream) {
    if (n == 0) return cudaErrorInvalidValue;
    qd::round_to_float_kernel<<<grid_for(n, 256), 256, 0, S(stream)>>>(x, n, y);
    return cudaGetLastError();
}

int qd_widen_to_double(const float *x, size_t n, double *y, void *stream) {
    if (n == 0) return cudaErrorInvalidValue;
    qd::widen_to_double_kernel<<<grid_for(n, 256), 256, 0, S(stream)>>>(x, n, y);
    return cudaGetLastError();
}

int qd_to_half(const float *x, size_t n, void *y, void *stream) {
    if (n == 0 || !aligned16({x, y})) return cudaErrorInvalidValue;
    qd::to_half_kernel<<<grid_for(n / 4 + 1, 256), 256, 0, S(stream)>>>(x, n, (__half *)y);
    return cudaGetLastError();
}

int qd_gelu_grad_half(const float *dg, const float *u, size_t n, void *dg16, void *stream) {
    if (n == 0 || !aligned16({dg, u, dg16})) return cudaErrorInvalidValue;
    qd::gelu_grad_half_kernel<<<grid_for(n / 4 + 1, 256), 256, 0, S(stream)>>>(dg, u, n, (__half *)dg16);
    return cudaGetLastError();
}

int qd_layernorm_grad(const float *dy, const float *x, const float *gamma, float eps, int rows, int dim, float *dx, void *dx16,
                      void *stream) {
    // 2 * dim floats of dynamic shared memory + 128 bytes static within the default 48 KiB.
    if (rows <= 0 || dim <= 0 || 2 * (size_t)dim * sizeof(float) + 128 > 48 * 1024) return cudaErrorInvalidValue;
    const bool by_warps = warp_rows(dim);  // as qd_add_layernorm decides: x_hat is then the forward's to the last bit
    if (by_warps && (!aligned16({dy, x, gamma, dx}) || (uintptr_t)dx16 % 8 != 0)) return cudaErrorMisalignedAddress;
    if (by_warps && by_row_vecs(dim, [&](auto vecs) {
            qd::layernorm_grad_warp_kernel<decltype(vecs)::value><<<(rows + kRowWarps - 1) / kRowWarps, 32 * kRowWarps, 0, S(stream)>>>(
                dy, x, gamma, eps, rows, dim, dx, (__half *)dx16);
        }))
        return cudaGetLastError();
    int threads = dim >= 1024 ? 512 : 128;
    qd::layernorm_grad_kernel<<<rows, threads, 2 * dim * sizeof(float), S(stream)>>>(dy, x, gamma, eps, dim, dx, (__half *)dx16);
    return cudaGetLastError();
}

int qd_softmax_grad(const float *probs, float *dp, int rows, int seq, void *stream) {
    if (rows <= 0 || seq <= 0) return cudaErrorInvalidValue;
    int warps_per_block = 8;
    size_t blocks = ((size_t)rows + warps_per_block - 1) / warps_per_block;
    qd::softmax_grad_kernel<<<(unsigned)blocks, warps_per_block * 32, 0, S(stream)>>>(probs, dp, seq, (size_t)rows);
    return cudaGetLastError();
}

int qd_pool_grad(const float *dpooled, const int *mask, int batch, int seq, int dim, int mode, float *dhidden, void *stream) {
    if (batch <= 0 || seq <= 0 || dim <= 0 || mode < 0 || mode > 1) return cudaErrorInvalidValue;
    qd::pool_grad_kernel<<<batch * seq, 128, 0, S(stream)>>>(dpooled, mask, seq, dim, mode, dhidden);
    return cudaGetLastError();
}

int qd_interpolate(const float *from, const float *diff, const float *alphas, int batch, size_t n, float *out, void *stream) {
    if (batch <= 0 || n == 0) return cudaErrorInvalidValue;
    size_t total = (size_t)batch * n;
    qd::interpolate_kernel<<<grid_for(total, 256), 256, 0, S(stream)>>>(from, diff, alphas, n, total, out);
    return cudaGetLastError();
}

int qd_weighted_row_sum(const float *rows, const float *weights, int batch, size_t n, float *out, int accumulate, void *stream) {
    if (batch <= 0 || n == 0) return cudaErrorInvalidValue;
    qd::weighted_row_sum_kernel<<<grid_for(n, 256), 256, 0, S(stream)>>>(rows, weights, batch, n, out, accumulate);
    return cudaGetLastError();
}

int qd_clip_mask(const float *pre, const float *post, const float *half_steps, int rows, int cols, float *mask, void *stream) {
    if (rows <= 0 || cols <= 0) return cudaErrorInvalidValue;
    size_t n = (size_t)rows * cols;
    qd::clip_mask_kernel<<<grid_for(n, 256), 256, 0, S(stream)>>>(pre, post, half_steps, cols, n, mask);
    return cudaGetLastError();
}

int qd_multiply(float *x, const float *mask, size_t n, void *stream) {
    if (n == 0) return cudaErrorInvalidValue;
    qd::multiply_kernel<<<grid_for(n, 256), 256, 0, S(stream)>>>(x, mask, n);
    return cudaGetLastError();
}

int qd_site_quantize(const float *x, int rows, int cols, int act, const float *q_scale, const float *q_zero_point, int qmin, int qmax,
                     int on_grid, float s, int8_t *q, int ldq, void *stream) {
    if (rows <= 0 || cols <= 0 || cols % 4 != 0 || ldq < cols || ldq % 4 != 0 || !(s > 0.f && s < INFINITY) || !x || !q)
        return cudaErrorInvalidValue;
    if ((act != qd::ACT_NONE && act != qd::ACT_GELU) || (q_scale && !on_grid && (!q_zero_point || qmin >= qmax))) return cudaErrorInvalidValue;
    if (on_grid && !on_s8_grid(s, qmin, qmax)) return cudaErrorInvalidValue;
    if ((uintptr_t)x % 16 != 0 || (uintptr_t)q % 4 != 0) return cudaErrorMisalignedAddress;
    const int threads = 256, across = (ldq / 4 + threads - 1) / threads;
    const int row_blocks = (rows + qd::kSiteRows - 1) / qd::kSiteRows;  // each block takes about kSiteRows rows
    const dim3 grid(across, row_blocks < 65535 ? row_blocks : 65535);
    qd::site_quantize_kernel<<<grid, threads, 0, S(stream)>>>(x, rows, cols, act, q_scale, q_zero_point, (float)qmin, (float)qmax, on_grid, s, q,
                                                               ldq);
    return cudaGetLastError();
}

}  // extern "C"
