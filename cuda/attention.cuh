// Attention pieces around cuBLAS's batched GEMMs: head split / merge and the masked softmax.
// CPU counterpart: CpuAttention (which does the same math in one pass per head).
#pragma once
#include "common.cuh"

namespace qd {

// [batch*seq, heads*hd] -> [batch, heads, seq, hd] (times scale), one thread per element.
__global__ void split_heads_kernel(const float *in, int seq, int heads, int hd, float scale, size_t n, float *out) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int d = i % hd;
        size_t r = i / hd;
        int t = r % seq;
        size_t bh = r / seq;
        int h = bh % heads;
        size_t b = bh / heads;
        out[i] = in[(b * seq + t) * (size_t)(heads * hd) + h * hd + d] * scale;
    }
}

__global__ void merge_heads_kernel(const float *in, int seq, int heads, int hd, size_t n, float *out) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int d = i % hd;
        size_t r = i / hd;
        int t = r % seq;
        size_t bh = r / seq;
        int h = bh % heads;
        size_t b = bh / heads;
        out[(b * seq + t) * (size_t)(heads * hd) + h * hd + d] = in[i];
    }
}

// The same two copies for head_dim % 4 == 0 and 16-byte aligned buffers (the launchers check): one block per
// token row, float4 columns. The row is read contiguously and each head's slice (head_dim floats) written
// contiguously, so both sides are coalesced 16-byte accesses, and the index arithmetic is per float4 in 32 bits
// (the scalar kernels above spend half their time in 64-bit divisions).
__global__ void split_heads4_kernel(const float4 *in, int seq, int heads, int hd4, float scale, float4 *out) {
    const int r = blockIdx.x, b = r / seq, t = r - b * seq, cols = heads * hd4;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const int h = c / hd4, d = c - h * hd4;
        float4 v = in[(size_t)r * cols + c];
        v.x *= scale, v.y *= scale, v.z *= scale, v.w *= scale;
        out[(((size_t)b * heads + h) * seq + t) * hd4 + d] = v;
    }
}

__global__ void merge_heads4_kernel(const float4 *in, int seq, int heads, int hd4, float4 *out) {
    const int r = blockIdx.x, b = r / seq, t = r - b * seq, cols = heads * hd4;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const int h = c / hd4, d = c - h * hd4;
        out[(size_t)r * cols + c] = in[(((size_t)b * heads + h) * seq + t) * hd4 + d];
    }
}

// One warp per score row; keys with mask 0 get probability exactly 0 (as exp(-inf) would).
__global__ void masked_softmax_kernel(float *scores, const int *mask, int heads, int seq, size_t rows) {
    size_t row = blockIdx.x * (size_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    int lane = threadIdx.x & 31;
    size_t b = row / ((size_t)heads * seq);
    const int *m = mask + b * seq;
    float *s = scores + row * seq;
    float mx = -INFINITY;
    for (int j = lane; j < seq; j += 32)
        if (m[j]) mx = fmaxf(mx, s[j]);
    mx = warp_max(mx);
    float total = 0.f;
    for (int j = lane; j < seq; j += 32) {
        float e = m[j] ? expf(s[j] - mx) : 0.f;
        s[j] = e;
        total += e;
    }
    float inv = 1.f / warp_sum(total);
    for (int j = lane; j < seq; j += 32) s[j] *= inv;
}

// The whole attention of short sequences in one kernel: ctx = softmax(q k^T * scale + mask) v per (sequence, head),
// reading q, k, v in their [batch*seq, heads*hd] layout and writing ctx in it (no head split / merge, no score tensor
// in global memory). One CTA of 8 warps per (query tile of FUSED_QT rows, head, sequence); K and V of the whole
// sequence, the query tile and its probabilities live in shared memory (fused_attention_smem bytes). FP32 throughout.
//   scores: warp w owns query rows 4w .. 4w+3 of the tile, lane l the keys l, l+32, ...; sums over d in order.
//   softmax: per row, as masked_softmax_kernel (the same lane-strided partial sums, so the same probabilities
//            given the same scores): masked keys get probability exactly 0.
//   context: lane l owns output columns l, l+32, ... of the warp's 4 rows; sums over keys in order.
// K rows are padded to hd+1 floats so that the 32 lanes (32 keys) read 32 different banks.
// Limits (fused_attention_fits): seq <= 32 * FUSED_MAXC, hd <= 32 * FUSED_MAXD, and the shared memory.
constexpr int FUSED_QT = 32, FUSED_MAXC = 8, FUSED_MAXD = 4;

__host__ __device__ inline size_t fused_attention_smem(int seq, int hd) {
    return ((size_t)seq * (hd + 1) + (size_t)seq * hd + (size_t)FUSED_QT * hd + (size_t)FUSED_QT * seq) * sizeof(float) +
           (size_t)seq * sizeof(int);
}

__global__ void __launch_bounds__(256) fused_attention_kernel(const float *q, const float *k, const float *v, const int *mask,
                                                              int seq, int heads, int hd, float scale, float *ctx) {
    extern __shared__ float smem[];
    float *ks = smem, *vs = ks + (size_t)seq * (hd + 1), *qs = vs + (size_t)seq * hd, *ps = qs + FUSED_QT * hd;
    int *ms = reinterpret_cast<int *>(ps + FUSED_QT * seq);
    const int q0 = blockIdx.x * FUSED_QT, h = blockIdx.y, b = blockIdx.z, width = heads * hd;
    const size_t base = (size_t)b * seq * width + (size_t)h * hd;  // row 0 of this sequence, this head's columns
    for (int i = threadIdx.x; i < seq * hd; i += blockDim.x) {
        const int j = i / hd, d = i - j * hd;
        const size_t g = base + (size_t)j * width + d;
        ks[j * (hd + 1) + d] = k[g];
        vs[i] = v[g];
    }
    for (int i = threadIdx.x; i < FUSED_QT * hd; i += blockDim.x) {
        const int r = i / hd, d = i - r * hd;
        qs[i] = q0 + r < seq ? q[base + (size_t)(q0 + r) * width + d] * scale : 0.f;
    }
    for (int j = threadIdx.x; j < seq; j += blockDim.x) ms[j] = mask[(size_t)b * seq + j];
    __syncthreads();

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, i0 = warp * 4;
    const int keys = (seq + 31) / 32, cols = (hd + 31) / 32;
    float s[4][FUSED_MAXC];
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int c = 0; c < FUSED_MAXC; c++) s[r][c] = 0.f;
    for (int d = 0; d < hd; d++) {
        float qv[4];
#pragma unroll
        for (int r = 0; r < 4; r++) qv[r] = qs[(i0 + r) * hd + d];
#pragma unroll
        for (int c = 0; c < FUSED_MAXC; c++) {
            const int j = lane + 32 * c;
            if (c < keys && j < seq) {
                const float kv = ks[j * (hd + 1) + d];
#pragma unroll
                for (int r = 0; r < 4; r++) s[r][c] = fmaf(qv[r], kv, s[r][c]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        float mx = -INFINITY;
#pragma unroll
        for (int c = 0; c < FUSED_MAXC; c++) {
            const int j = lane + 32 * c;
            if (c < keys && j < seq && ms[j]) mx = fmaxf(mx, s[r][c]);
        }
        mx = warp_max(mx);
        float total = 0.f;
#pragma unroll
        for (int c = 0; c < FUSED_MAXC; c++) {
            const int j = lane + 32 * c;
            if (c < keys && j < seq) {
                const float e = ms[j] ? expf(s[r][c] - mx) : 0.f;
                s[r][c] = e;
                total += e;
            }
        }
        const float inv = 1.f / warp_sum(total);
#pragma unroll
        for (int c = 0; c < FUSED_MAXC; c++) {
            const int j = lane + 32 * c;
            if (c < keys && j < seq) ps[(i0 + r) * seq + j] = s[r][c] * inv;
        }
    }
    __syncwarp();  // the warp reads back only its own rows of ps

    float o[4][FUSED_MAXD];
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int e = 0; e < FUSED_MAXD; e++) o[r][e] = 0.f;
    for (int j = 0; j < seq; j++) {
        float pv[4];
#pragma unroll
        for (int r = 0; r < 4; r++) pv[r] = ps[(i0 + r) * seq + j];
#pragma unroll
        for (int e = 0; e < FUSED_MAXD; e++) {
            const int d = lane + 32 * e;
            if (e < cols && d < hd) {
                const float vv = vs[j * hd + d];
#pragma unroll
                for (int r = 0; r < 4; r++) o[r][e] = fmaf(pv[r], vv, o[r][e]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int row = q0 + i0 + r;
        if (row >= seq) continue;
#pragma unroll
        for (int e = 0; e < FUSED_MAXD; e++) {
            const int d = lane + 32 * e;
            if (e < cols && d < hd) ctx[base + (size_t)row * width + d] = o[r][e];
        }
    }
}

// One block per sequence, threads over the hidden dim.
__global__ void pool_kernel(const float *hidden, const int *mask, int seq, int dim, int mode, float *out) {
    int b = blockIdx.x;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        if (mode == 0) {
            out[(size_t)b * dim + d] = hidden[(size_t)b * seq * dim + d];
            continue;
        }
        float s = 0.f;
        int n = 0;
        for (int t = 0; t < seq; t++)
            if (mask[(size_t)b * seq + t]) {
                s += hidden[((size_t)b * seq + t) * dim + d];
                n++;
            }
        out[(size_t)b * dim + d] = s / n;
    }
}

}  // namespace qd
