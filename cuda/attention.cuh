// Attention pieces around cuBLAS's batched GEMMs: the per-head matrix pointers and the masked softmax. This is the
// path for true FP32, more than 128 tokens and head dims other than 32 and 64; under TF32 the rest runs fused
// (fused_attention.cuh).
// CPU counterpart: CpuAttention (which does the same math in one pass per head).
#pragma once
#include "common.cuh"

namespace qd {

// cuBLAS's pointer-array batched GEMMs take one matrix pointer per (sequence b, head h), batch index
// i = b*heads + h, so attention reads and writes each head in place instead of copying it out and back:
// a token-major operand whose rows lie row_stride floats apart (heads*hd for a [batch*seq, heads*hd] buffer,
// 3*heads*hd for q, k or v inside a packed q | k | v buffer, base then pointing at its first column) has head h of
// sequence b at base + b*seq*row_stride + h*hd; a [batch*heads, seq, seq] score buffer (row_stride 0) has matrix i
// at base + i*seq*seq.
constexpr int kHeadOperandsMax = 12;
struct HeadOperands {
    const float *base[kHeadOperandsMax];
    int row_stride[kHeadOperandsMax];
    int count;
};

// out[j*bh + i]: operand j's matrix i; one thread per pointer.
__global__ void head_pointers_kernel(HeadOperands ops, int heads, int seq, int hd, int bh, const float **out) {
    const int n = ops.count * bh;
    for (int x = blockIdx.x * blockDim.x + threadIdx.x; x < n; x += gridDim.x * blockDim.x) {
        const int j = x / bh, i = x - j * bh, b = i / heads, h = i - b * heads;
        const size_t offset = ops.row_stride[j] ? (size_t)b * seq * ops.row_stride[j] + (size_t)h * hd : (size_t)i * seq * seq;
        out[x] = ops.base[j] + offset;
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
