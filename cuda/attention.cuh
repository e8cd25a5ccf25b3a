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
// in global memory). One CTA of FUSED_WARPS warps per (query tile of FUSED_QT rows, head, sequence); K and V of the
// whole sequence, the query tile and its probabilities live in shared memory (fused_attention_smem bytes). FP32.
//   scores: warp w owns query rows FUSED_RW*w .. +FUSED_RW-1 of the tile, lane l the keys l, l+32, ...; each K value
//           read serves FUSED_RW rows; the rows' q values are read 4 d at a time (float4) where hd % 4 == 0.
//   softmax: per row, as masked_softmax_kernel (the same lane-strided partial sums, so the same probabilities
//            given the same scores): masked keys get probability exactly 0.
//   context: lane l owns output columns l, l+32, ... of the warp's rows; probabilities read 4 keys at a time.
// Sums over d and over keys run in index order. K rows are padded to hd+1 floats (the 32 lanes, 32 keys, hit 32
// banks); P rows and V to a multiple of 4 keys, the padding zero.
// Limits (qd_attention_fused_supported): seq <= 32 * FUSED_MAXC, hd <= 32 * FUSED_MAXD, and the shared memory.
constexpr int FUSED_QT = 32, FUSED_WARPS = 4, FUSED_RW = FUSED_QT / FUSED_WARPS, FUSED_MAXC = 8, FUSED_MAXD = 4;

__host__ __device__ inline int fused_attention_pst(int seq) { return (seq + 3) & ~3; }
__host__ __device__ inline size_t fused_attention_smem(int seq, int hd) {
    const size_t pst = fused_attention_pst(seq);
    return ((size_t)FUSED_QT * hd + FUSED_QT * pst + pst * hd + (size_t)seq * (hd + 1)) * sizeof(float) + (size_t)seq * sizeof(int);
}

__global__ void __launch_bounds__(FUSED_WARPS * 32) fused_attention_kernel(const float *q, const float *k, const float *v,
                                                                           const int *mask, int seq, int heads, int hd,
                                                                           float scale, float *ctx) {
    extern __shared__ __align__(16) float smem[];
    const int pst = fused_attention_pst(seq);
    float *qs = smem, *ps = qs + FUSED_QT * hd, *vs = ps + FUSED_QT * pst, *ks = vs + pst * hd;  // qs, ps 16-byte aligned
    int *ms = reinterpret_cast<int *>(ks + seq * (hd + 1));
    const int q0 = blockIdx.x * FUSED_QT, h = blockIdx.y, b = blockIdx.z, width = heads * hd;
    const size_t base = (size_t)b * seq * width + (size_t)h * hd;  // row 0 of this sequence, this head's columns
    for (int i = threadIdx.x; i < pst * hd; i += blockDim.x) {
        const int j = i / hd, d = i - j * hd;
        const size_t g = base + (size_t)j * width + d;
        vs[i] = j < seq ? v[g] : 0.f;
        if (j < seq) ks[j * (hd + 1) + d] = k[g];
    }
    for (int i = threadIdx.x; i < FUSED_QT * hd; i += blockDim.x) {
        const int r = i / hd, d = i - r * hd;
        qs[i] = q0 + r < seq ? q[base + (size_t)(q0 + r) * width + d] * scale : 0.f;
    }
    for (int j = threadIdx.x; j < seq; j += blockDim.x) ms[j] = mask[(size_t)b * seq + j];
    __syncthreads();

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, i0 = warp * FUSED_RW;
    const int keys = (seq + 31) / 32, cols = (hd + 31) / 32;
    float s[FUSED_RW][FUSED_MAXC];
#pragma unroll
    for (int r = 0; r < FUSED_RW; r++)
#pragma unroll
        for (int c = 0; c < FUSED_MAXC; c++) s[r][c] = 0.f;
    auto score_step = [&](const float (&qv)[FUSED_RW], int d) {
#pragma unroll
        for (int c = 0; c < FUSED_MAXC; c++) {
            const int j = lane + 32 * c;
            if (c < keys && j < seq) {
                const float kv = ks[j * (hd + 1) + d];
#pragma unroll
                for (int r = 0; r < FUSED_RW; r++) s[r][c] = fmaf(qv[r], kv, s[r][c]);
            }
        }
    };
    if ((hd & 3) == 0) {
        for (int d = 0; d < hd; d += 4) {
            float4 q4[FUSED_RW];
#pragma unroll
            for (int r = 0; r < FUSED_RW; r++) q4[r] = *reinterpret_cast<const float4 *>(qs + (i0 + r) * hd + d);
            float qv[FUSED_RW];
#pragma unroll
            for (int r = 0; r < FUSED_RW; r++) qv[r] = q4[r].x;
            score_step(qv, d);
#pragma unroll
            for (int r = 0; r < FUSED_RW; r++) qv[r] = q4[r].y;
            score_step(qv, d + 1);
#pragma unroll
            for (int r = 0; r < FUSED_RW; r++) qv[r] = q4[r].z;
            score_step(qv, d + 2);
#pragma unroll
            for (int r = 0; r < FUSED_RW; r++) qv[r] = q4[r].w;
            score_step(qv, d + 3);
        }
    } else {
        for (int d = 0; d < hd; d++) {
            float qv[FUSED_RW];
#pragma unroll
            for (int r = 0; r < FUSED_RW; r++) qv[r] = qs[(i0 + r) * hd + d];
            score_step(qv, d);
        }
    }
#pragma unroll
    for (int r = 0; r < FUSED_RW; r++) {
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
            if (c < keys && j < pst) ps[(i0 + r) * pst + j] = j < seq ? s[r][c] * inv : 0.f;
        }
    }
    __syncwarp();  // the warp reads back only its own rows of ps

    float o[FUSED_RW][FUSED_MAXD];
#pragma unroll
    for (int r = 0; r < FUSED_RW; r++)
#pragma unroll
        for (int e = 0; e < FUSED_MAXD; e++) o[r][e] = 0.f;
    for (int j = 0; j < pst; j += 4) {
        float4 p4[FUSED_RW];
#pragma unroll
        for (int r = 0; r < FUSED_RW; r++) p4[r] = *reinterpret_cast<const float4 *>(ps + (i0 + r) * pst + j);
#pragma unroll
        for (int e = 0; e < FUSED_MAXD; e++) {
            const int d = lane + 32 * e;
            if (e < cols && d < hd) {
                const float v0 = vs[j * hd + d], v1 = vs[(j + 1) * hd + d], v2 = vs[(j + 2) * hd + d], v3 = vs[(j + 3) * hd + d];
#pragma unroll
                for (int r = 0; r < FUSED_RW; r++)
                    o[r][e] = fmaf(p4[r].w, v3, fmaf(p4[r].z, v2, fmaf(p4[r].y, v1, fmaf(p4[r].x, v0, o[r][e]))));
            }
        }
    }
#pragma unroll
    for (int r = 0; r < FUSED_RW; r++) {
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
