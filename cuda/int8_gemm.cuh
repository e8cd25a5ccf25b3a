// s8 x s8 -> s32 GEMM on the tensor cores (mma.sync m16n8k32, sm_80+), with fused epilogues.
//
//   C[m,n] = sum_k A[m,k] * B[n,k]      A: activations [M x K] int8 row-major
//                                       B: weights     [N x K] int8 row-major (each output channel's K
//                                          values contiguous: a "TN" product, B is the column-major K x N)
//
// Structure (one CTA computes a BM x BN tile of C):
//   * K is walked in BK = 64-byte slices. Each slice of A (BM x 64) and B (BN x 64) is copied global ->
//     shared with 16-byte cp.async.cg into a STAGES-deep ring (multistage pipeline: STAGES-1 slices in
//     flight while the warps multiply the current one). Rows past M / N and 16-byte chunks past K are
//     zero-filled by cp.async's src-size operand (src-size 0), so ragged tiles need no special path and
//     the zeros add nothing to the sums.
//   * Shared rows are 64 bytes; the four 16-byte chunks of row r are stored XOR-swizzled
//     (chunk ^ ((r >> 1) & 3)) so that both the cp.async stores and the ldmatrix reads of 8 rows at one
//     logical chunk hit 8 distinct 16-byte bank groups (no bank conflicts).
//   * Fragments come from ldmatrix.x4 (8x8 b16 matrices = 8 rows x 16 bytes): for A (16 rows x 32 k) the
//     four matrices are {rows 0-7, rows 8-15} x {k 0-15, k 16-31}, which is exactly the m16n8k32 .s8 A
//     fragment a0..a3 (a0 = A[g][4t..4t+3], a1 = A[g+8][4t..], a2 = A[g][16+4t..], a3 = A[g+8][16+4t..],
//     g = lane/4, t = lane%4); for B one ldmatrix.x4 covers two n8 tiles (b0 = B[n=g][k 4t..],
//     b1 = B[n=g][k 16+4t..]).
//   * Accumulators are s32 in registers (C fragment: c0,c1 = C[g][2t,2t+1], c2,c3 = C[g+8][2t,2t+1]); the
//     epilogue converts and writes them straight from registers (8-byte stores when N is even).
//
// Requirements (checked by the host launchers in native/int8.cu): K % 16 == 0 (a 16-byte cp.async chunk is
// either wholly inside K or wholly outside) and A, B 16-byte aligned; M, N, K > 0. M, N and K need not be
// multiples of the tile. The s32 sums wrap (no .satfinite) but cannot overflow for K < 133,000.
//
// Epilogues (runtime switch, uniform per launch):
//   OUT_S32: C[m,n] = acc (int32)
//   OUT_F32: y[m,n] = act(acc * sx[m or 0] * sw[n or 0] + bias[n]) + residual[m,n]
//            (act: none or exact-erf GELU; bias / residual optional)
//   PEG (template flag): activation scales per group of K channels (groups contiguous, size gs = K / G,
//            gs % 16 == 0). Each group's products are summed in s32 and folded into an FP32 accumulator at
//            the group's end: f += sx[g] * (float)acc_g. A group boundary that falls in the middle of an
//            m16n8k32 step (gs % 32 == 16) is handled by issuing that step as two half-K mmas (the other
//            half's B register zeroed) with the fold in between. Then y = act(f * sw[n] + bias[n]) + residual.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>
#include "activation.cuh"

namespace qd {
namespace i8 {

enum Out { OUT_S32 = 0, OUT_F32 = 1 };

struct Epilogue {
    int out;                 // Out
    int *c32;                // OUT_S32 destination [M x N]
    float *y;                // OUT_F32 destination [M x N]
    const float *sx;         // activation scale: sx[m] (sx_per_row) or sx[0]; PEG: group scales sx[g]
    const float *sw;         // weight scale: sw[n] (sw_per_col) or sw[0]
    const float *bias;       // [N] or NULL
    const float *residual;   // [M x N] or NULL
    int sx_per_row, sw_per_col, act;
    int groups, group_size;  // PEG only
};

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

// 16-byte global -> shared copy; bytes = 16 copies, bytes = 0 writes 16 zero bytes (src not read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void mma_s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Byte offset of 16-byte chunk c (0..3) of row r in a [rows x 64] swizzled tile.
__device__ __forceinline__ int swz64(int r, int c) { return r * 64 + ((c ^ ((r >> 1) & 3)) << 4); }

template <int BM_, int BN_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_>
struct Tile {
    static constexpr int BM = BM_, BN = BN_, BK = 64, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_, STAGES = STAGES_;
    static constexpr int MIN_BLOCKS = MIN_BLOCKS_;
    static constexpr int THREADS = WARPS_M * WARPS_N * 32;
    static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;  // warp tile
    static constexpr int MT = WM / 16, NT = WN / 8;             // mma tiles per warp
    static constexpr int A_BYTES = BM * BK, B_BYTES = BN * BK;  // per stage
    static constexpr int SMEM = STAGES * (A_BYTES + B_BYTES);
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile: multiples of 16");
    static_assert((BM * 4) % THREADS == 0 && (BN * 4) % THREADS == 0, "chunks per thread");
};

// Copies the K slice [k0, k0 + 64) of rows [r0, r0 + ROWS) of src ([rows x K]) into a swizzled stage.
template <int ROWS, int THREADS>
__device__ __forceinline__ void load_slice(uint32_t stage, const int8_t *src, int r0, int rows, int k0, int K, int tid) {
#pragma unroll
    for (int i = 0; i < ROWS * 4 / THREADS; i++) {
        int id = i * THREADS + tid, r = id >> 2, c = id & 3;
        int gr = r0 + r, gk = k0 + c * 16;
        bool ok = gr < rows && gk < K;
        const int8_t *p = ok ? src + (size_t)gr * K + gk : src;
        cp_async16(stage + swz64(r, c), p, ok ? 16 : 0);
    }
}

template <class T, bool PEG>
__global__ void __launch_bounds__(T::THREADS, T::MIN_BLOCKS)
    gemm_kernel(const int8_t *__restrict__ A, const int8_t *__restrict__ B, int M, int N, int K, Epilogue ep) {
    extern __shared__ __align__(128) uint8_t smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / T::WARPS_N, wn = warp % T::WARPS_N;
    const int m0 = blockIdx.y * T::BM, n0 = blockIdx.x * T::BN;
    const uint32_t sbase = smem_u32(smem);
    auto stageA = [&](int s) { return sbase + s * (T::A_BYTES + T::B_BYTES); };
    auto stageB = [&](int s) { return sbase + s * (T::A_BYTES + T::B_BYTES) + T::A_BYTES; };

    int acc[T::MT][T::NT][4];
#pragma unroll
    for (int i = 0; i < T::MT; i++)
#pragma unroll
        for (int j = 0; j < T::NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0;
    // PEG: the FP32 accumulator the finished groups fold into (unused otherwise; the compiler drops it).
    float facc[PEG ? T::MT : 1][PEG ? T::NT : 1][4];
    int grp = 0, next_b = 0;
    if (PEG) {
#pragma unroll
        for (int i = 0; i < (PEG ? T::MT : 1); i++)
#pragma unroll
            for (int j = 0; j < (PEG ? T::NT : 1); j++)
#pragma unroll
                for (int e = 0; e < 4; e++) facc[i][j][e] = 0.f;
        next_b = ep.group_size;
    }
    auto fold = [&]() {
        if constexpr (PEG) {
            float s = __ldg(ep.sx + grp);
#pragma unroll
            for (int i = 0; i < T::MT; i++)
#pragma unroll
                for (int j = 0; j < T::NT; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        facc[i][j][e] = fmaf(s, (float)acc[i][j][e], facc[i][j][e]);
                        acc[i][j][e] = 0;
                    }
        }
    };

    const int KT = (K + T::BK - 1) / T::BK;
#pragma unroll
    for (int s = 0; s < T::STAGES - 1; s++) {
        if (s < KT) {
            load_slice<T::BM, T::THREADS>(stageA(s), A, m0, M, s * T::BK, K, tid);
            load_slice<T::BN, T::THREADS>(stageB(s), B, n0, N, s * T::BK, K, tid);
        }
        cp_async_commit();
    }

    // ldmatrix row / chunk of this lane: A x4 = {rows 0-7, 8-15} x {chunk 0, 1}; B x4 = {n 0-7: chunk 0, 1},
    // {n 8-15: chunk 0, 1}.
    const int a_row = wm * T::WM + (lane & 15), a_chunk = lane >> 4;
    const int b_row = wn * T::WN + (lane & 7) + ((lane >> 4) << 3), b_chunk = (lane >> 3) & 1;

    for (int kt = 0; kt < KT; kt++) {
        cp_async_wait<T::STAGES - 2>();
        __syncthreads();
        {
            int nk = kt + T::STAGES - 1;
            if (nk < KT) {
                int s = nk % T::STAGES;
                load_slice<T::BM, T::THREADS>(stageA(s), A, m0, M, nk * T::BK, K, tid);
                load_slice<T::BN, T::THREADS>(stageB(s), B, n0, N, nk * T::BK, K, tid);
            }
            cp_async_commit();
        }
        const int s = kt % T::STAGES;
        const uint32_t sa = stageA(s), sb = stageB(s);
#pragma unroll
        for (int ks = 0; ks < 2; ks++) {
            uint32_t af[T::MT][4], bf[T::NT / 2][4];
#pragma unroll
            for (int i = 0; i < T::MT; i++) ldmatrix_x4(af[i], sa + swz64(a_row + i * 16, ks * 2 + a_chunk));
#pragma unroll
            for (int j = 0; j < T::NT / 2; j++) ldmatrix_x4(bf[j], sb + swz64(b_row + j * 16, ks * 2 + b_chunk));
            if constexpr (!PEG) {
#pragma unroll
                for (int i = 0; i < T::MT; i++)
#pragma unroll
                    for (int j = 0; j < T::NT; j++) mma_s8(acc[i][j], af[i], bf[j >> 1][(j & 1) * 2], bf[j >> 1][(j & 1) * 2 + 1]);
            } else {
                const int k0 = kt * T::BK + ks * 32;
                if (k0 < K) {  // uniform; the zero-filled tail past K needs no mma
                    if (k0 == next_b && next_b < K) {  // a group ended just before this step
                        fold();
                        grp++;
                        next_b += ep.group_size;
                    }
                    if (k0 + 16 == next_b && next_b < K) {  // a group ends in the middle of this step
#pragma unroll
                        for (int i = 0; i < T::MT; i++)
#pragma unroll
                            for (int j = 0; j < T::NT; j++) mma_s8(acc[i][j], af[i], bf[j >> 1][(j & 1) * 2], 0u);
                        fold();
                        grp++;
                        next_b += ep.group_size;
#pragma unroll
                        for (int i = 0; i < T::MT; i++)
#pragma unroll
                            for (int j = 0; j < T::NT; j++) mma_s8(acc[i][j], af[i], 0u, bf[j >> 1][(j & 1) * 2 + 1]);
                    } else {
#pragma unroll
                        for (int i = 0; i < T::MT; i++)
#pragma unroll
                            for (int j = 0; j < T::NT; j++)
                                mma_s8(acc[i][j], af[i], bf[j >> 1][(j & 1) * 2], bf[j >> 1][(j & 1) * 2 + 1]);
                    }
                }
            }
        }
    }
    cp_async_wait<0>();
    if (PEG) fold();  // the last group (grp == groups - 1)

    // ---- epilogue, straight from registers: thread (g, t) holds rows g, g+8 and columns 2t, 2t+1 of
    // each 16 x 8 mma tile.
    const int g = lane >> 2, t = lane & 3;
    const bool pairs = (N & 1) == 0;  // 8-byte stores need an even row length
    const int row_base = m0 + wm * T::WM + g, col_base = n0 + wn * T::WN + 2 * t;
    float swv[T::NT][2], bv[T::NT][2];
    if (ep.out == OUT_F32) {
#pragma unroll
        for (int j = 0; j < T::NT; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int col = col_base + j * 8 + e;
                bool in = col < N;
                swv[j][e] = ep.sw_per_col ? (in ? __ldg(ep.sw + col) : 0.f) : __ldg(ep.sw);
                bv[j][e] = ep.bias && in ? __ldg(ep.bias + col) : 0.f;
            }
    }
#pragma unroll
    for (int i = 0; i < T::MT; i++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int row = row_base + i * 16 + h * 8;
            if (row >= M) continue;
            const size_t rbase = (size_t)row * N;
            float sxr = 1.f;
            if (!PEG && ep.out == OUT_F32) sxr = ep.sx_per_row ? __ldg(ep.sx + row) : __ldg(ep.sx);
#pragma unroll
            for (int j = 0; j < T::NT; j++) {
                const int col = col_base + j * 8;
                if (col >= N) continue;
                if (ep.out == OUT_S32) {
                    int v0 = acc[i][j][h * 2], v1 = acc[i][j][h * 2 + 1];
                    if (pairs) {
                        *reinterpret_cast<int2 *>(ep.c32 + rbase + col) = make_int2(v0, v1);
                    } else {
                        ep.c32[rbase + col] = v0;
                        if (col + 1 < N) ep.c32[rbase + col + 1] = v1;
                    }
                } else {
                    float v[2];
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        float a;
                        if constexpr (PEG) a = facc[i][j][h * 2 + e] * swv[j][e];
                        else a = (float)acc[i][j][h * 2 + e] * sxr * swv[j][e];
                        a += bv[j][e];
                        v[e] = ep.act == ACT_GELU ? gelu(a) : a;
                    }
                    if (pairs) {
                        if (ep.residual) {
                            float2 r = *reinterpret_cast<const float2 *>(ep.residual + rbase + col);
                            v[0] += r.x;
                            v[1] += r.y;
                        }
                        *reinterpret_cast<float2 *>(ep.y + rbase + col) = make_float2(v[0], v[1]);
                    } else {
                        ep.y[rbase + col] = v[0] + (ep.residual ? ep.residual[rbase + col] : 0.f);
                        if (col + 1 < N) ep.y[rbase + col + 1] = v[1] + (ep.residual ? ep.residual[rbase + col + 1] : 0.f);
                    }
                }
            }
        }
    }
}

}  // namespace i8
}  // namespace qd
