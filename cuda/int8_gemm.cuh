// s8 x s8 -> s32 GEMM on the tensor cores (mma.sync m16n8k32, sm_80+), with fused epilogues.
//
//   C[m,n] = sum_k A[m,k] * B[n,k]      A: activations [M x K] int8 row-major
//                                       B: weights     [N x K] int8 row-major (each output channel's K
//                                          values contiguous: a "TN" product, B is the column-major K x N)
//
// Structure (one CTA computes a BM x BN tile of C; the tile shapes compiled in are listed in native/int8.cu):
//   * K is walked in BK-byte slices (BK = 64 or 128). Each slice of A (BM x BK) and B (BN x BK) is copied
//     global -> shared with 16-byte cp.async.cg into a STAGES-deep ring (multistage pipeline: STAGES-1
//     slices in flight while the warps multiply the current one). Rows past M / N and 16-byte chunks past K
//     are zero-filled by cp.async's src-size operand (src-size 0), so ragged tiles need no special path and
//     the zeros add nothing to the sums.
//   * The 16-byte chunks of shared row r are stored XOR-swizzled (BK 64: chunk ^ ((r >> 1) & 3); BK 128:
//     chunk ^ (r & 7)) so that both the cp.async stores and the ldmatrix reads of 8 rows at one logical
//     chunk hit 8 distinct 16-byte bank groups (no bank conflicts).
//   * Fragments come from ldmatrix.x4 (8x8 b16 matrices = 8 rows x 16 bytes): for A (16 rows x 32 k) the
//     four matrices are {rows 0-7, rows 8-15} x {k 0-15, k 16-31}, which is exactly the m16n8k32 .s8 A
//     fragment a0..a3 (a0 = A[g][4t..4t+3], a1 = A[g+8][4t..], a2 = A[g][16+4t..], a3 = A[g+8][16+4t..],
//     g = lane/4, t = lane%4); for B one ldmatrix.x4 covers two n8 tiles (b0 = B[n=g][k 4t..],
//     b1 = B[n=g][k 16+4t..]). With DBUF the fragments are double-buffered in registers: the next k-step's
//     (also across the k-slice boundary) are read while the current one multiplies (CUTLASS's multistage
//     schedule, one __syncthreads per slice).
//   * Accumulators are s32 in registers (C fragment: c0,c1 = C[g][2t,2t+1], c2,c3 = C[g+8][2t,2t+1]); the
//     epilogue converts and writes them straight from registers (8-byte stores when N is even), with every
//     scale / bias loaded before the first store.
//
// Requirements (checked by the host launchers in native/int8.cu): K % 16 == 0 (a 16-byte cp.async chunk is
// either wholly inside K or wholly outside) and A, B 16-byte aligned; M, N, K > 0. M, N and K need not be
// multiples of the tile. The s32 sums wrap (no .satfinite) but cannot overflow for K < 133,000.
//
// Epilogues (runtime switch, uniform per launch):
//   OUT_S32: C[m,n] = acc (int32)
//   OUT_F32: y[m,n] = act(acc * sx[m or 0] * sw[n or 0] + bias[n]) + residual[m,n]
//            (act: none or exact-erf GELU; bias / residual optional; y may be the residual buffer itself)
//   PEG (template flag): activation scales per group of K channels (groups contiguous, size gs = K / G,
//            gs % 16 == 0). Each group's products are summed in s32 and folded into an FP32 accumulator at
//            the group's end: f += sx[g] * (float)acc_g. A group boundary that falls in the middle of an
//            m16n8k32 step (gs % 32 == 16) is handled by issuing that step as two half-K mmas (the other
//            half's B register zeroed) with the fold in between. Then y = act(f * sw[n] + bias[n]) + residual.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace qd {
namespace i8 {

enum Out { OUT_S32 = 0, OUT_F32 = 1 };
enum Act { ACT_NONE = 0, ACT_GELU = 1 };

// Exact-erf GELU, the same formula as activation.cuh's (which cannot be included here: it defines a kernel).
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }

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

// Byte offset of 16-byte chunk c of row r in a swizzled [rows x BK] tile: the chunk index is XORed with
// bits of the row so that the 8 rows one ldmatrix phase reads (same logical chunk) and the rows one
// cp.async phase writes land in 8 distinct 16-byte bank groups.
template <int BK>
__device__ __forceinline__ int swz(int r, int c) {
    if constexpr (BK == 64) return r * 64 + ((c ^ ((r >> 1) & 3)) << 4);  // 2 rows per 128-byte line
    else return r * 128 + ((c ^ (r & 7)) << 4);                           // 1 row per 128-byte line
}

// A CTA tile: BM x BN outputs, BK k-bytes per pipeline stage, WARPS_M x WARPS_N warps, STAGES shared
// stages, MIN_BLOCKS CTAs per SM for __launch_bounds__, DBUF: double-buffered fragments (more registers).
template <int BM_, int BN_, int BK_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_, bool DBUF_>
struct Tile {
    static constexpr int BM = BM_, BN = BN_, BK = BK_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_, STAGES = STAGES_;
    static constexpr int MIN_BLOCKS = MIN_BLOCKS_;
    static constexpr bool DBUF = DBUF_;
    static constexpr int THREADS = WARPS_M * WARPS_N * 32;
    static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;  // warp tile
    static constexpr int MT = WM / 16, NT = WN / 8;             // mma tiles per warp
    static constexpr int KS = BK / 32;                          // mma k-steps per k-tile
    static constexpr int CPR = BK / 16;                         // 16-byte chunks per shared row
    static constexpr int RSTEP = THREADS / CPR;                 // rows one pass of cp.async covers
    static constexpr int A_BYTES = BM * BK, B_BYTES = BN * BK;  // per stage
    static constexpr int SMEM = STAGES * (A_BYTES + B_BYTES);
    static_assert(BK == 64 || BK == 128, "BK: 64 or 128 bytes");
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile: multiples of 16");
    static_assert(BM % RSTEP == 0 && BN % RSTEP == 0, "whole cp.async passes");
    static_assert(STAGES >= 2, "at least double buffering");
};

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

    // cp.async: this thread copies chunk lc of rows lr, lr + RSTEP, ... of each operand tile.
    const int lc = tid % T::CPR, lr = tid / T::CPR;
    const int8_t *a_src = A + (size_t)(m0 + lr) * K + lc * 16;  // only dereferenced for rows < M
    const int8_t *b_src = B + (size_t)(n0 + lr) * K + lc * 16;
    const size_t a_step = (size_t)T::RSTEP * K;
    auto load_tile = [&](int stage, int kt) {
        const int k0 = kt * T::BK;
        const bool kin = k0 + lc * 16 < K;
        const uint32_t sa = stageA(stage), sb = stageB(stage);
#pragma unroll
        for (int i = 0; i < T::BM / T::RSTEP; i++) {
            bool ok = kin && m0 + lr + i * T::RSTEP < M;
            cp_async16(sa + swz<T::BK>(lr + i * T::RSTEP, lc), ok ? a_src + i * a_step + k0 : A, ok ? 16 : 0);
        }
#pragma unroll
        for (int i = 0; i < T::BN / T::RSTEP; i++) {
            bool ok = kin && n0 + lr + i * T::RSTEP < N;
            cp_async16(sb + swz<T::BK>(lr + i * T::RSTEP, lc), ok ? b_src + i * a_step + k0 : B, ok ? 16 : 0);
        }
    };

    int acc[T::MT][T::NT][4];
#pragma unroll
    for (int i = 0; i < T::MT; i++)
#pragma unroll
        for (int j = 0; j < T::NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0;
    // PEG: the FP32 accumulator the finished groups fold into (a dummy otherwise).
    float facc[PEG ? T::MT : 1][PEG ? T::NT : 1][4];
    int grp = 0, next_b = 0;
    if constexpr (PEG) {
#pragma unroll
        for (int i = 0; i < T::MT; i++)
#pragma unroll
            for (int j = 0; j < T::NT; j++)
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

    // ldmatrix row / chunk of this lane: A x4 = {rows 0-7, 8-15} x {chunk 0, 1}; B x4 = {n 0-7: chunk 0, 1},
    // {n 8-15: chunk 0, 1}. Fragments are double-buffered: step s+1's are read while step s multiplies.
    const int a_row = wm * T::WM + (lane & 15), a_chunk = lane >> 4;
    const int b_row = wn * T::WN + (lane & 7) + ((lane >> 4) << 3), b_chunk = (lane >> 3) & 1;
    uint32_t af[T::DBUF ? 2 : 1][T::MT][4], bf[T::DBUF ? 2 : 1][T::NT / 2][4];
    auto load_frags = [&](int buf, int stage, int ks) {
        const uint32_t sa = stageA(stage), sb = stageB(stage);
#pragma unroll
        for (int i = 0; i < T::MT; i++) ldmatrix_x4(af[buf][i], sa + swz<T::BK>(a_row + i * 16, ks * 2 + a_chunk));
#pragma unroll
        for (int j = 0; j < T::NT / 2; j++) ldmatrix_x4(bf[buf][j], sb + swz<T::BK>(b_row + j * 16, ks * 2 + b_chunk));
    };

    // The mmas of one k-step from fragment buffer `buf`; PEG folds finished groups in between.
    auto mma_step = [&](int buf, int k0) {
        if constexpr (!PEG) {
#pragma unroll
            for (int i = 0; i < T::MT; i++)
#pragma unroll
                for (int j = 0; j < T::NT; j++)
                    mma_s8(acc[i][j], af[buf][i], bf[buf][j >> 1][(j & 1) * 2], bf[buf][j >> 1][(j & 1) * 2 + 1]);
        } else {
            if (k0 >= K) return;  // uniform; the zero-filled tail past K needs no mma
            if (k0 == next_b && next_b < K) {  // a group ended just before this step
                fold();
                grp++;
                next_b += ep.group_size;
            }
            if (k0 + 16 == next_b && next_b < K) {  // a group ends in the middle of this step
#pragma unroll
                for (int i = 0; i < T::MT; i++)
#pragma unroll
                    for (int j = 0; j < T::NT; j++) mma_s8(acc[i][j], af[buf][i], bf[buf][j >> 1][(j & 1) * 2], 0u);
                fold();
                grp++;
                next_b += ep.group_size;
#pragma unroll
                for (int i = 0; i < T::MT; i++)
#pragma unroll
                    for (int j = 0; j < T::NT; j++) mma_s8(acc[i][j], af[buf][i], 0u, bf[buf][j >> 1][(j & 1) * 2 + 1]);
            } else {
#pragma unroll
                for (int i = 0; i < T::MT; i++)
#pragma unroll
                    for (int j = 0; j < T::NT; j++)
                        mma_s8(acc[i][j], af[buf][i], bf[buf][j >> 1][(j & 1) * 2], bf[buf][j >> 1][(j & 1) * 2 + 1]);
            }
        }
    };

    const int KT = (K + T::BK - 1) / T::BK;
#pragma unroll
    for (int s = 0; s < T::STAGES - 1; s++) {
        if (s < KT) load_tile(s, s);
        cp_async_commit();
    }
    if constexpr (T::DBUF) {
        cp_async_wait<T::STAGES - 2>();
        __syncthreads();
        load_frags(0, 0, 0);
        int read_stage = 0, write_stage = T::STAGES - 1;
        // Multistage main loop (the CUTLASS pattern): at the last k-step of a tile, wait for the next
        // tile's copy and sync (which also tells every warp that the stage about to be refilled has been
        // read), then read the next tile's first fragments before this step's mmas; the next global tile
        // is issued at the first k-step into the stage freed by the previous tile.
        for (int kt = 0; kt < KT; kt++) {
#pragma unroll
            for (int ks = 0; ks < T::KS; ks++) {
                if (ks == T::KS - 1) {
                    cp_async_wait<T::STAGES - 2>();
                    __syncthreads();
                    read_stage = read_stage == T::STAGES - 1 ? 0 : read_stage + 1;
                }
                load_frags((ks + 1) & 1, read_stage, (ks + 1) % T::KS);  // past the last tile: read, never used
                if (ks == 0) {
                    int nk = kt + T::STAGES - 1;
                    if (nk < KT) load_tile(write_stage, nk);
                    cp_async_commit();
                    write_stage = write_stage == T::STAGES - 1 ? 0 : write_stage + 1;
                }
                mma_step(ks & 1, kt * T::BK + ks * 32);
            }
        }
    } else {
        // Single-buffered fragments: sync at the top of each k-tile, then refill the stage the previous
        // tile used and multiply this one.
        for (int kt = 0; kt < KT; kt++) {
            cp_async_wait<T::STAGES - 2>();
            __syncthreads();
            int nk = kt + T::STAGES - 1;
            if (nk < KT) load_tile(nk % T::STAGES, nk);
            cp_async_commit();
#pragma unroll
            for (int ks = 0; ks < T::KS; ks++) {
                load_frags(0, kt % T::STAGES, ks);
                mma_step(0, kt * T::BK + ks * 32);
            }
        }
    }
    cp_async_wait<0>();
    if (PEG) fold();  // the last group (grp == groups - 1)

    // ---- epilogue, straight from registers: thread (g, t) holds rows g, g+8 and columns 2t, 2t+1 of
    // each 16 x 8 mma tile. Every scale / bias the thread needs is loaded before its first store (a load
    // queued behind a burst of stores would wait for them).
    const int g = lane >> 2, t = lane & 3;
    const bool pairs = (N & 1) == 0;  // 8-byte stores need an even row length
    const int row_base = m0 + wm * T::WM + g, col_base = n0 + wn * T::WN + 2 * t;
    if (ep.out == OUT_S32) {
#pragma unroll
        for (int i = 0; i < T::MT; i++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int row = row_base + i * 16 + h * 8;
                if (row >= M) continue;
                int *crow = ep.c32 + (size_t)row * N;
#pragma unroll
                for (int j = 0; j < T::NT; j++) {
                    const int col = col_base + j * 8;
                    if (col >= N) continue;
                    int v0 = acc[i][j][h * 2], v1 = acc[i][j][h * 2 + 1];
                    if (pairs) {
                        *reinterpret_cast<int2 *>(crow + col) = make_int2(v0, v1);
                    } else {
                        crow[col] = v0;
                        if (col + 1 < N) crow[col + 1] = v1;
                    }
                }
            }
        return;
    }
    float swv[T::NT][2], bv[T::NT][2], sxv[T::MT][2];
#pragma unroll
    for (int j = 0; j < T::NT; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            int col = col_base + j * 8 + e;
            bool in = col < N;
            swv[j][e] = ep.sw_per_col ? (in ? __ldg(ep.sw + col) : 0.f) : __ldg(ep.sw);
            bv[j][e] = ep.bias && in ? __ldg(ep.bias + col) : 0.f;
        }
#pragma unroll
    for (int i = 0; i < T::MT; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int row = row_base + i * 16 + h * 8;
            sxv[i][h] = PEG ? 1.f : ep.sx_per_row ? (row < M ? __ldg(ep.sx + row) : 0.f) : __ldg(ep.sx);
        }
#pragma unroll
    for (int i = 0; i < T::MT; i++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int row = row_base + i * 16 + h * 8;
            if (row >= M) continue;
            const size_t rbase = (size_t)row * N;
            float res[T::NT][2];  // the row's residual values, all loaded before this row's stores
#pragma unroll
            for (int j = 0; j < T::NT; j++) {
                const int col = col_base + j * 8;
                res[j][0] = res[j][1] = 0.f;
                if (ep.residual && col < N) {
                    if (pairs) {
                        float2 r = __ldg(reinterpret_cast<const float2 *>(ep.residual + rbase + col));
                        res[j][0] = r.x;
                        res[j][1] = r.y;
                    } else {
                        res[j][0] = __ldg(ep.residual + rbase + col);
                        if (col + 1 < N) res[j][1] = __ldg(ep.residual + rbase + col + 1);
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < T::NT; j++) {
                const int col = col_base + j * 8;
                if (col >= N) continue;
                float v[2];
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float a;
                    if constexpr (PEG) a = facc[i][j][h * 2 + e] * swv[j][e];
                    else a = (float)acc[i][j][h * 2 + e] * sxv[i][h] * swv[j][e];
                    a += bv[j][e];
                    v[e] = (ep.act == ACT_GELU ? gelu(a) : a) + res[j][e];
                }
                if (pairs) {
                    *reinterpret_cast<float2 *>(ep.y + rbase + col) = make_float2(v[0], v[1]);
                } else {
                    ep.y[rbase + col] = v[0];
                    if (col + 1 < N) ep.y[rbase + col + 1] = v[1];
                }
            }
        }
    }
}

}  // namespace i8
}  // namespace qd
