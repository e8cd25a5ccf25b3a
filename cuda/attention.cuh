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
