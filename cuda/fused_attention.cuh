// Attention with the scores kept on chip, forward and backward: one block per (sequence, head) holds the whole head
// in shared memory (at most 128 tokens, head dim 32 or 64) and multiplies on TF32 tensor cores (mma.sync m16n8k8,
// FP32 accumulation), the precision cuBLAS's TF32 batched products give the unfused path (attention.cuh around
// cuBLAS), which stays for true FP32, longer sequences and other head dims.
// CPU counterpart: CpuAttention and CpuGradientOps.attentionGrad; checked against them in CudaKernelsTest and
// CudaGradientsTest.
//
// Each of the 8 warps owns 16 query rows. It multiplies q k^T into registers (16 rows x up to 16 tiles of 8 keys),
// takes the masked softmax there and multiplies the probabilities by v straight from the registers. That last step
// relies on a sum over keys visiting them in any order: an accumulator tile holds keys 2t and 2t+1 where the next
// product's A operand wants keys t and t+4, so A's key t is read as key 2t, t+4 as 2t+1, and v's rows in that order.
// The backward's products over queries (dK, dV) read both operands in the same reordered way from shared memory.
// The heads arrive by cp.async, all in flight at once, and are then rounded to TF32 in place.
//
// Under FP16 products the backward has a kernel of its own (fused_attention_grad_half_kernel): heads, probabilities and
// dS in FP16 (TF32's 10-bit mantissa from 2^-14 up; probabilities below that lose relative precision, not more than
// 3e-8 absolute), mma.sync m16n8k16, FP32 accumulation. Half the shared memory lets two
// blocks share an SM, and the FP16 product is twice TF32's per instruction. Its accumulator tiles are the next
// product's A fragments as they stand (two 8-key tiles make one 16-key fragment), and the operands it reads across
// their rows come through ldmatrix.trans, so no column is reordered.
#pragma once
#include <cuda_fp16.h>
#include <stdint.h>
#include "common.cuh"

namespace qd {

constexpr int kFusedAttentionTokens = 128;  // the most tokens per sequence the fused kernels take
constexpr int kFusedAttentionThreads = 256; // 8 warps x 16 rows = 128 rows

// Shared-memory row strides in floats, both 4 mod 32, so that the fragment loads meet no bank conflict: a column pair
// of 8 rows (8-byte loads, 4 rows x 4 pairs per half-warp) and one column of 4 row pairs x 8 columns. Head rows stay
// 16-byte aligned for the copies. (store_scores's 8-byte stores do conflict two ways; they are few.)
template <int HD>
__host__ __device__ constexpr int head_ld() { return HD + 4; }
constexpr int kScoreLd = kFusedAttentionTokens + 4;

__host__ __device__ constexpr int fused_rows(int seq) { return (seq + 15) & ~15; }  // rows in whole 16-row warp tiles

// Dynamic shared memory of each kernel, in bytes (the launcher checks it against the device's limit).
template <int HD>
__host__ __device__ constexpr size_t fused_attention_smem(int seq) { return 3 * (size_t)fused_rows(seq) * head_ld<HD>() * 4; }
// The backward kernels' shared memory, in elements (floats or halves) with head rows head_ld and score rows score_ld
// apart: q, dO, then k and v (whose space takes the probabilities once they are read: grad_probs_elements, k and v's
// or more where a [rows, score_ld] buffer needs it), then dS.
__host__ __device__ constexpr size_t grad_probs_elements(int seq, int head_ld, int score_ld) {
    return 2 * head_ld > score_ld ? (size_t)2 * fused_rows(seq) * head_ld : (size_t)fused_rows(seq) * score_ld;
}
__host__ __device__ constexpr size_t grad_smem_elements(int seq, int head_ld, int score_ld) {
    return (size_t)2 * fused_rows(seq) * head_ld + grad_probs_elements(seq, head_ld, score_ld) + (size_t)fused_rows(seq) * score_ld;
}

template <int HD>
__host__ __device__ constexpr size_t fused_attention_grad_smem(int seq) { return grad_smem_elements(seq, head_ld<HD>(), kScoreLd) * 4; }
static_assert(fused_attention_grad_smem<64>(128) == 206848, "202 KiB: one block per SM on Hopper");
__device__ __forceinline__ float to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return __uint_as_float(r);
}

// d += a b for one 16x8x8 tile, with g = lane / 4, t = lane % 4: a[r] is A at row g + 8 (r & 1), column t + 4 (r >> 1);
// b[r] is B at row t + 4r, column g; d[r] is D at row g + 8 (r >> 1), column 2t + (r & 1).
__device__ __forceinline__ void mma_tf32(float d[4], const float a[4], const float b[2]) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])), "r"(__float_as_uint(a[3])),
                   "r"(__float_as_uint(b[0])), "r"(__float_as_uint(b[1])));
}

// Heads in shared memory: each row's columns reordered within groups of 8 as 0 4 1 5 2 6 3 7, so that the two
// columns t and t+4 an A or B fragment takes from one row lie side by side (one 8-byte load).
__device__ __forceinline__ int stored_column(int c) { return (c & ~7) | ((c & 3) << 1) | ((c >> 2) & 1); }

// Starts copying one head [seq, HD] (rows ld floats apart) into shared memory rows head_ld apart, zero rows up to
// fused_rows(seq), asynchronously (cp.async: all heads' copies in flight at once); head_layout finishes it.
template <int HD>
__device__ __forceinline__ void start_head_copy(const float *src, size_t ld, int seq, float *dst) {
    constexpr int kVectors = HD / 4;
    const int n = fused_rows(seq) * kVectors;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const int r = i / kVectors, c = (i - r * kVectors) * 4;
        const unsigned to = (unsigned)__cvta_generic_to_shared(dst + r * head_ld<HD>() + c);
        const float *from = r < seq ? src + r * ld + c : src;  // rows past seq: 0 bytes read, 16 zero bytes written
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to), "l"(from), "r"(r < seq ? 16 : 0));
    }
}

// After the copies into `heads` consecutive [fused_rows(seq), head_ld] heads: waits for them, then rounds every value to
// TF32 and reorders each row's columns (stored_column), in place.
template <int HD>
__device__ __forceinline__ void head_layout(float *first, int heads, int seq) {
    asm volatile("cp.async.wait_all;\n" ::);
    __syncthreads();
    constexpr int kGroups = HD / 8;
    const int n = heads * fused_rows(seq) * kGroups;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const int r = i / kGroups;
        float4 *group = reinterpret_cast<float4 *>(first + r * head_ld<HD>() + (i - r * kGroups) * 8);
        const float4 lo = group[0], hi = group[1];
        group[0] = make_float4(to_tf32(lo.x), to_tf32(hi.x), to_tf32(lo.y), to_tf32(hi.y));
        group[1] = make_float4(to_tf32(lo.z), to_tf32(hi.z), to_tf32(lo.w), to_tf32(hi.w));
    }
    __syncthreads();
}

// s = a[m0 .. m0+16) b[0 .. 8 tiles)^T over HD columns: rows of a and b in shared memory, head_ld apart.
template <int HD>
__device__ __forceinline__ void rows_times_rows(const float *a, const float *b, int m0, int tiles, float s[16][4]) {
    constexpr int LD = head_ld<HD>();
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int j = 0; j < 16; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HD; kk += 8) {
        const float2 top = *reinterpret_cast<const float2 *>(a + (m0 + g) * LD + kk + 2 * t);  // columns t, t+4
        const float2 bottom = *reinterpret_cast<const float2 *>(a + (m0 + g + 8) * LD + kk + 2 * t);
        const float af[4] = {top.x, bottom.x, top.y, bottom.y};
#pragma unroll
        for (int j = 0; j < 16; j++)
            if (j < tiles) {
                const float2 col = *reinterpret_cast<const float2 *>(b + (8 * j + g) * LD + kk + 2 * t);
                const float bf[2] = {col.x, col.y};
                mma_tf32(s[j], af, bf);
            }
    }
}

// o += p m: p [16, 8 tiles] in accumulator registers, m's rows (one per key, head_ld apart) in shared memory.
template <int HD>
__device__ __forceinline__ void regs_times_rows(const float p[16][4], const float *m, int tiles, float o[HD / 8][4]) {
    constexpr int LD = head_ld<HD>();
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, column = stored_column(g);
#pragma unroll
    for (int j = 0; j < 16; j++)
        if (j < tiles) {
            const float af[4] = {to_tf32(p[j][0]), to_tf32(p[j][2]), to_tf32(p[j][1]), to_tf32(p[j][3])};  // keys 2t, 2t+1
            const float *m0 = m + (8 * j + 2 * t) * LD + column, *m1 = m0 + LD;
#pragma unroll
            for (int n = 0; n < HD / 8; n++) {
                const float bf[2] = {m0[8 * n], m1[8 * n]};
                mma_tf32(o[n], af, bf);
            }
        }
}

// o += x[:, n0 .. n0+16)^T m over `rows` rows: x [rows, 128] kScoreLd apart and m [rows, HD] head_ld apart, both in
// shared memory; the sum over rows visits them in the reordered way (A's row t is row 2t, t+4 is 2t+1).
template <int HD>
__device__ __forceinline__ void columns_times_rows(const float *x, int n0, const float *m, int rows, float o[HD / 8][4]) {
    constexpr int LD = head_ld<HD>();
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, column = stored_column(g);
    for (int r = 0; r < rows; r += 8) {
        const float *x0 = x + (r + 2 * t) * kScoreLd + n0 + g, *x1 = x0 + kScoreLd;
        const float af[4] = {x0[0], x0[8], x1[0], x1[8]};
        const float *m0 = m + (r + 2 * t) * LD + column, *m1 = m0 + LD;
#pragma unroll
        for (int n = 0; n < HD / 8; n++) {
            const float bf[2] = {m0[8 * n], m1[8 * n]};
            mma_tf32(o[n], af, bf);
        }
    }
}

// v[0] and v[1] (rows g and g+8 of an mma tile) each summed over the four lanes that hold parts of that row.
__device__ __forceinline__ void row_quad_sum(float v[2]) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
        v[h] += __shfl_xor_sync(0xffffffffu, v[h], 1);
        v[h] += __shfl_xor_sync(0xffffffffu, v[h], 2);
    }
}

// In place, rows g and g+8 of the warp's 16: p = softmax(scale s) over the keys with key_ok; the others get exactly 0
// (a row with no such key gets NaN, as the CPU reference and masked_softmax_kernel do).
__device__ __forceinline__ void softmax_rows(float s[16][4], const int *key_ok, int tiles, float scale) {
    const int t = threadIdx.x & 3;
    float mx[2] = {-INFINITY, -INFINITY}, sum[2] = {0.f, 0.f};
#pragma unroll
    for (int j = 0; j < 16; j++)
        if (j < tiles)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                s[j][r] *= scale;
                if (key_ok[8 * j + 2 * t + (r & 1)]) mx[r >> 1] = fmaxf(mx[r >> 1], s[j][r]);
            }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
    }
#pragma unroll
    for (int j = 0; j < 16; j++)
        if (j < tiles)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                s[j][r] = key_ok[8 * j + 2 * t + (r & 1)] ? expf(s[j][r] - mx[r >> 1]) : 0.f;
                sum[r >> 1] += s[j][r];
            }
    row_quad_sum(sum);
    sum[0] = 1.f / sum[0], sum[1] = 1.f / sum[1];
#pragma unroll
    for (int j = 0; j < 16; j++)
#pragma unroll
        for (int r = 0; r < 4; r++) s[j][r] *= sum[r >> 1];
}

__device__ __forceinline__ void store_pair(float *d, float a, float b) { *reinterpret_cast<float2 *>(d) = make_float2(a, b); }
__device__ __forceinline__ void store_pair(__half *d, float a, float b) { *reinterpret_cast<__half2 *>(d) = __floats2half2_rn(a, b); }

// Stores rows g and g+8 of a [16, HD] accumulator, times `scale`, at rows m0.. (those < seq) of a token-major operand,
// in FP32 or rounded to FP16.
template <int HD, typename Out>
__device__ __forceinline__ void store_rows(const float o[HD / 8][4], float scale, Out *dst, size_t ld, int m0, int seq) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int row = m0 + g + 8 * h;
        if (row >= seq) continue;
        Out *d = dst + row * ld + 2 * t;
#pragma unroll
        for (int n = 0; n < HD / 8; n++) store_pair(d + 8 * n, scale * o[n][2 * h], scale * o[n][2 * h + 1]);
    }
}

// Stores rows g and g+8 of a [16, 8 tiles] accumulator as TF32 values at rows m0.. of a [rows, kScoreLd] score buffer.
__device__ __forceinline__ void store_scores(const float s[16][4], int tiles, float *dst, int m0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int j = 0; j < 16; j++)
        if (j < tiles)
#pragma unroll
            for (int h = 0; h < 2; h++)
                *reinterpret_cast<float2 *>(dst + (m0 + g + 8 * h) * kScoreLd + 8 * j + 2 * t) =
                    make_float2(to_tf32(s[j][2 * h]), to_tf32(s[j][2 * h + 1]));
}

// key_ok[k] for k < fused_rows(seq): whether k is a real key of the sequence whose mask row this is (k < seq, mask != 0).
__device__ __forceinline__ void load_key_mask(const int *mask, int seq, int *key_ok) {
    for (int k = threadIdx.x; k < fused_rows(seq); k += blockDim.x) key_ok[k] = k < seq && mask[k] != 0;
}

// ctx = softmax(q k^T scale + mask) v for head h of sequence b (block b * heads + h); qkv rows 3 * heads * HD floats
// apart (q | k | v), ctx rows heads * HD apart.
template <int HD>
__global__ void __launch_bounds__(kFusedAttentionThreads, 2) fused_attention_kernel(const float *qkv, const int *mask, int seq, int heads,
                                                                                 float scale, float *ctx) {
    extern __shared__ float4 smem_vectors[];
    __shared__ int key_ok[kFusedAttentionTokens];
    constexpr int LD = head_ld<HD>();
    const int rows = fused_rows(seq), tiles = rows / 8, b = blockIdx.x / heads, h = blockIdx.x - b * heads, width = heads * HD;
    float *q = reinterpret_cast<float *>(smem_vectors), *k = q + rows * LD, *v = k + rows * LD;
    const float *head = qkv + (size_t)b * seq * 3 * width + h * HD;
    start_head_copy<HD>(head, 3 * width, seq, q);
    start_head_copy<HD>(head + width, 3 * width, seq, k);
    start_head_copy<HD>(head + 2 * width, 3 * width, seq, v);
    load_key_mask(mask + (size_t)b * seq, seq, key_ok);
    head_layout<HD>(q, 3, seq);  // q, k, v

    const int m0 = (threadIdx.x >> 5) * 16;
    if (m0 >= rows) return;
    float p[16][4], o[HD / 8][4] = {};
    rows_times_rows<HD>(q, k, m0, tiles, p);
    softmax_rows(p, key_ok, tiles, scale);
    regs_times_rows<HD>(p, v, tiles, o);
    store_rows<HD, float>(o, 1.f, ctx + (size_t)b * seq * width + h * HD, width, m0, seq);
}

// The backward of fused_attention_kernel for head h of sequence b, recomputing the probabilities P:
// dP = dctx v^T, dS = P (dP - rowsum(P dP)), dq = dS k scale, dk = dS^T q scale, dv = P^T dctx, written into the
// packed dqkv (rows 3 * heads * HD floats apart, as qkv). Warps own query rows for the first three, key rows for the
// last two, which sum over all queries: dS and P pass through shared memory between the two phases.
template <int HD>
__global__ void __launch_bounds__(kFusedAttentionThreads, 1) fused_attention_grad_kernel(const float *dctx, const float *qkv,
                                                                                       const int *mask, int seq, int heads, float scale,
                                                                                       float *dqkv) {
    extern __shared__ float4 smem_vectors[];
    __shared__ int key_ok[kFusedAttentionTokens];
    constexpr int LD = head_ld<HD>();
    const int rows = fused_rows(seq), tiles = rows / 8, b = blockIdx.x / heads, h = blockIdx.x - b * heads, width = heads * HD;
    float *q = reinterpret_cast<float *>(smem_vectors), *dout = q + rows * LD, *k = dout + rows * LD, *v = k + rows * LD;
    float *probs = k, *ds = k + grad_probs_elements(seq, LD, kScoreLd);
    const float *head = qkv + (size_t)b * seq * 3 * width + h * HD;
    start_head_copy<HD>(head, 3 * width, seq, q);
    start_head_copy<HD>(dctx + (size_t)b * seq * width + h * HD, width, seq, dout);
    start_head_copy<HD>(head + width, 3 * width, seq, k);
    start_head_copy<HD>(head + 2 * width, 3 * width, seq, v);
    load_key_mask(mask + (size_t)b * seq, seq, key_ok);
    head_layout<HD>(q, 4, seq);  // q, dO, k, v

    const int m0 = (threadIdx.x >> 5) * 16;
    const bool owns_rows = m0 < rows;  // warp-uniform
    float *dhead = dqkv + (size_t)b * seq * 3 * width + h * HD;
    float p[16][4];
    if (owns_rows) {
        float dp[16][4], dq[HD / 8][4] = {};
        rows_times_rows<HD>(q, k, m0, tiles, p);
        softmax_rows(p, key_ok, tiles, scale);
        rows_times_rows<HD>(dout, v, m0, tiles, dp);
        float dot[2] = {0.f, 0.f};  // rowsum(P dP), rows g and g+8
#pragma unroll
        for (int j = 0; j < 16; j++)
            if (j < tiles)
#pragma unroll
                for (int r = 0; r < 4; r++) dot[r >> 1] += p[j][r] * dp[j][r];
        row_quad_sum(dot);
#pragma unroll
        for (int j = 0; j < 16; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) dp[j][r] = p[j][r] * (dp[j][r] - dot[r >> 1]);  // now dS
        regs_times_rows<HD>(dp, k, tiles, dq);
        store_rows<HD, float>(dq, scale, dhead, 3 * width, m0, seq);
        store_scores(dp, tiles, ds, m0);
    }
    __syncthreads();  // k and v are read: their space takes P
    if (owns_rows) store_scores(p, tiles, probs, m0);
    __syncthreads();

    if (!owns_rows) return;  // now key rows n0 = m0 ..
    float dk[HD / 8][4] = {}, dv[HD / 8][4] = {};
    columns_times_rows<HD>(ds, m0, q, rows, dk);
    columns_times_rows<HD>(probs, m0, dout, rows, dv);
    store_rows<HD, float>(dk, scale, dhead + width, 3 * width, m0, seq);
    store_rows<HD, float>(dv, 1.f, dhead + 2 * width, 3 * width, m0, seq);
}

// ---- The backward in FP16 (under FP16 products) ----

// Shared-memory row strides in halves, each an odd multiple of 4 words (36 and 20 words for the heads at head dim 64
// and 32, 68 for the scores): the 32-bit fragment loads (rows g, words t) and ldmatrix's 8 rows of 16 bytes meet no
// bank conflict; rows stay 16-byte aligned.
template <int HD>
__host__ __device__ constexpr int half_head_ld() { return HD + 8; }
constexpr int kHalfScoreLd = kFusedAttentionTokens + 8;

template <int HD>
__host__ __device__ constexpr size_t fused_attention_grad_half_smem(int seq) {
    return grad_smem_elements(seq, half_head_ld<HD>(), kHalfScoreLd) * sizeof(__half);
}
static_assert(fused_attention_grad_half_smem<64>(128) == 108544, "106 KiB: two blocks per SM on Hopper");

// d += a b for one 16x8x16 tile, with g = lane / 4, t = lane % 4: a[r] holds A at row g + 8 (r & 1), columns
// 2t + 8 (r >> 1) and the next; b[r] holds B at rows 2t + 8r and the next, column g; d as in mma_tf32.
__device__ __forceinline__ void mma_f16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Four 8x8 FP16 matrices transposed: lanes 8i .. 8i+7 give the 16-byte rows of matrix i, r[i] its fragment.
__device__ __forceinline__ void load_matrices_transposed(uint32_t r[4], const __half *row) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

__device__ __forceinline__ uint32_t half_pair(const __half *p) { return *reinterpret_cast<const uint32_t *>(p); }
__device__ __forceinline__ float half_at(uint32_t pair, int upper) {
    const __half2 h = *reinterpret_cast<const __half2 *>(&pair);
    return upper ? __high2float(h) : __low2float(h);
}

// One head [seq, HD] (rows ld floats apart) into shared memory in FP16, rows half_head_ld apart, zero rows up to
// fused_rows(seq).
// Loads kBatch vectors per thread before storing any, so that they are in flight together.
template <int HD>
__device__ __forceinline__ void load_head_half(const float *__restrict__ src, size_t ld, int seq, __half *__restrict__ dst) {
    constexpr int kVectors = HD / 4, kBatch = 8;
    const int n = fused_rows(seq) * kVectors;
    for (int first = threadIdx.x; first < n; first += kBatch * blockDim.x) {
        float4 v[kBatch];
#pragma unroll
        for (int b = 0; b < kBatch; b++) {
            const int i = first + b * blockDim.x, r = i / kVectors, c = (i - r * kVectors) * 4;
            v[b] = i < n && r < seq ? __ldg(reinterpret_cast<const float4 *>(src + r * ld + c)) : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int b = 0; b < kBatch; b++) {
            const int i = first + b * blockDim.x, r = i / kVectors, c = (i - r * kVectors) * 4;
            if (i < n) store_half4(dst, r * half_head_ld<HD>() + c, v[b]);
        }
    }
}

// s = a[m0 .. m0+16) b[0 .. 8 tiles)^T over HD columns: FP16 rows of a and b in shared memory, half_head_ld apart.
template <int HD>
__device__ __forceinline__ void half_rows_times_rows(const __half *a, const __half *b, int m0, int tiles, float s[16][4]) {
    constexpr int LD = half_head_ld<HD>();
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int j = 0; j < 16; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HD; kk += 16) {
        const __half *top = a + (m0 + g) * LD + kk + 2 * t, *bottom = top + 8 * LD;
        const uint32_t af[4] = {half_pair(top), half_pair(bottom), half_pair(top + 8), half_pair(bottom + 8)};
#pragma unroll
        for (int j = 0; j < 16; j++)
            if (j < tiles) {
                const __half *col = b + (8 * j + g) * LD + kk + 2 * t;
                const uint32_t bf[2] = {half_pair(col), half_pair(col + 8)};
                mma_f16(s[j], af, bf);
            }
    }
}

// A [16, 8 tiles] accumulator as the A fragments of 16-key chunks, in FP16: chunk c is tiles 2c and 2c + 1.
__device__ __forceinline__ void accumulator_as_a(const float s[16][4], uint32_t a[8][4]) {
#pragma unroll
    for (int c = 0; c < 8; c++) {
        a[c][0] = half_pair(s[2 * c][0], s[2 * c][1]);
        a[c][1] = half_pair(s[2 * c][2], s[2 * c][3]);
        a[c][2] = half_pair(s[2 * c + 1][0], s[2 * c + 1][1]);
        a[c][3] = half_pair(s[2 * c + 1][2], s[2 * c + 1][3]);
    }
}

// o += a m: a [16, chunks of 16 keys] as A fragments, m's rows (one per key, half_head_ld apart) in shared memory.
template <int HD>
__device__ __forceinline__ void fragments_times_rows(const uint32_t a[8][4], const __half *m, int tiles, float o[HD / 8][4]) {
    constexpr int LD = half_head_ld<HD>();
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int c = 0; c < 8; c++)
        if (2 * c < tiles) {
#pragma unroll
            for (int n = 0; n < HD / 8; n += 2) {
                uint32_t bf[4];  // B for column tiles n and n + 1: keys 16c + (lane & 15), columns 8n + 8 (lane >> 4)
                load_matrices_transposed(bf, m + (16 * c + (lane & 15)) * LD + 8 * n + 8 * (lane >> 4));
                mma_f16(o[n], a[c], bf);
                mma_f16(o[n + 1], a[c], bf + 2);
            }
        }
}

// o += x[:, n0 .. n0+16)^T m over `rows` rows: x [rows, 128] kHalfScoreLd apart and m [rows, HD] half_head_ld apart,
// both FP16 in shared memory.
template <int HD>
__device__ __forceinline__ void half_columns_times_rows(const __half *x, int n0, const __half *m, int rows, float o[HD / 8][4]) {
    constexpr int LD = half_head_ld<HD>();
    const int lane = threadIdx.x & 31;
    for (int r = 0; r < rows; r += 16) {
        uint32_t af[4];  // A = x^T: matrix i from rows r + 8 (i >> 1), columns n0 + 8 (i & 1)
        load_matrices_transposed(af, x + (r + (lane & 7) + 8 * (lane >> 4)) * kHalfScoreLd + n0 + 8 * ((lane >> 3) & 1));
#pragma unroll
        for (int n = 0; n < HD / 8; n += 2) {
            uint32_t bf[4];
            load_matrices_transposed(bf, m + (r + (lane & 15)) * LD + 8 * n + 8 * (lane >> 4));
            mma_f16(o[n], af, bf);
            mma_f16(o[n + 1], af, bf + 2);
        }
    }
}

// Stores a warp's A fragments (rows g and g+8 of its 16, chunks < tiles / 2) at rows m0.. of a [rows, kHalfScoreLd] buffer.
__device__ __forceinline__ void store_fragments(const uint32_t a[8][4], int tiles, __half *dst, int m0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int c = 0; c < 8; c++)
        if (2 * c < tiles)
#pragma unroll
            for (int r = 0; r < 4; r++)
                *reinterpret_cast<uint32_t *>(dst + (m0 + g + 8 * (r & 1)) * kHalfScoreLd + 16 * c + 8 * (r >> 1) + 2 * t) = a[c][r];
}

// fused_attention_grad_kernel's arithmetic with FP16 operands (q, k, v, dctx, P and dS rounded to FP16 as they enter a
// product; P's FP16 values also make rowsum(P dP) and dS, where the TF32 kernel uses P in FP32) and FP16 dqkv, for the
// next product under FP16 products.
template <int HD>
__global__ void __launch_bounds__(kFusedAttentionThreads, 2) fused_attention_grad_half_kernel(const float *dctx, const float *qkv,
                                                                                            const int *mask, int seq, int heads,
                                                                                            float scale, __half *dqkv) {
    extern __shared__ float4 smem_vectors[];
    __shared__ int key_ok[kFusedAttentionTokens];
    constexpr int LD = half_head_ld<HD>();
    const int rows = fused_rows(seq), tiles = rows / 8, b = blockIdx.x / heads, h = blockIdx.x - b * heads, width = heads * HD;
    __half *q = reinterpret_cast<__half *>(smem_vectors), *dout = q + rows * LD, *k = dout + rows * LD, *v = k + rows * LD;
    __half *probs = k, *ds = k + grad_probs_elements(seq, LD, kHalfScoreLd);
    const float *head = qkv + (size_t)b * seq * 3 * width + h * HD;
    load_head_half<HD>(head, 3 * width, seq, q);
    load_head_half<HD>(dctx + (size_t)b * seq * width + h * HD, width, seq, dout);
    load_head_half<HD>(head + width, 3 * width, seq, k);
    load_head_half<HD>(head + 2 * width, 3 * width, seq, v);
    load_key_mask(mask + (size_t)b * seq, seq, key_ok);
    __syncthreads();

    const int m0 = (threadIdx.x >> 5) * 16, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const bool owns_rows = m0 < rows;  // warp-uniform
    __half *dhead = dqkv + (size_t)b * seq * 3 * width + h * HD;
    // P waits in the dS buffer's rows (each warp its own) until k and v's space is free: registers are the limit here.
    uint32_t dsa[8][4];
    if (owns_rows) {
        float s[16][4];
        half_rows_times_rows<HD>(q, k, m0, tiles, s);
        softmax_rows(s, key_ok, tiles, scale);
        {
            uint32_t p[8][4];
            accumulator_as_a(s, p);
            store_fragments(p, tiles, ds, m0);
        }
        half_rows_times_rows<HD>(dout, v, m0, tiles, s);  // now dP
        // P at (tile j, registers 2rh and 2rh + 1): row m0 + g + 8rh, keys 8j + 2t and the next, as stored.
        auto p_pair = [&](int j, int rh) { return half_pair(ds + (m0 + g + 8 * rh) * kHalfScoreLd + 8 * j + 2 * t); };
        float dot[2] = {0.f, 0.f};  // rowsum(P dP), rows g and g+8
#pragma unroll
        for (int j = 0; j < 16; j++)
            if (j < tiles)
#pragma unroll
                for (int rh = 0; rh < 2; rh++) {
                    const uint32_t pp = p_pair(j, rh);
                    dot[rh] += half_at(pp, 0) * s[j][2 * rh] + half_at(pp, 1) * s[j][2 * rh + 1];
                }
        row_quad_sum(dot);
#pragma unroll
        for (int c = 0; c < 8; c++)  // dS, packed as it is made (chunk c from tiles 2c and 2c + 1)
            if (2 * c < tiles)
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int j = 2 * c + (r >> 1), rh = r & 1;  // rh: row g + 8 rh
                    const uint32_t pp = p_pair(j, rh);
                    dsa[c][r] = half_pair(half_at(pp, 0) * (s[j][2 * rh] - dot[rh]), half_at(pp, 1) * (s[j][2 * rh + 1] - dot[rh]));
                }
        float dq[HD / 8][4] = {};
        fragments_times_rows<HD>(dsa, k, tiles, dq);
        store_rows<HD, __half>(dq, scale, dhead, 3 * width, m0, seq);
    }
    __syncthreads();  // k and v are read: their space takes P, and dS takes P's place
    if (owns_rows) {
#pragma unroll
        for (int c = 0; c < 8; c++)
            if (2 * c < tiles)
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int at = (m0 + g + 8 * (r & 1)) * kHalfScoreLd + 16 * c + 8 * (r >> 1) + 2 * t;
                    *reinterpret_cast<uint32_t *>(probs + at) = *reinterpret_cast<const uint32_t *>(ds + at);
                    *reinterpret_cast<uint32_t *>(ds + at) = dsa[c][r];
                }
    }
    __syncthreads();

    if (!owns_rows) return;  // now key rows n0 = m0 ..
    float dk[HD / 8][4] = {}, dv[HD / 8][4] = {};
    half_columns_times_rows<HD>(ds, m0, q, rows, dk);
    half_columns_times_rows<HD>(probs, m0, dout, rows, dv);
    store_rows<HD, __half>(dk, scale, dhead + width, 3 * width, m0, seq);
    store_rows<HD, __half>(dv, 1.f, dhead + 2 * width, 3 * width, m0, seq);
}

}  // namespace qd
