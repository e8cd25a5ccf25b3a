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
//   * Accumulators are s32 in registers (C fragment: c0,c1 = C[g][2t,2t+1], c2,c3 = C[g+8][2t,2t+1]). The
//     int32 output is written straight from registers (int2 stores when N is even); the float epilogues stage
//     the FP32 tile in the (then free) pipeline shared memory and walk it row by row with 16-byte accesses.
//
// Requirements (checked by the host launchers in native/int8.cu): K % 16 == 0 (a 16-byte cp.async chunk is
// either wholly inside K or wholly outside) and A, B 16-byte aligned; M, N, K > 0. M, N and K need not be
// multiples of the tile. The s32 sums wrap (no .satfinite) but cannot overflow for K < 131,072.
//
// Epilogues (runtime switch, uniform per launch):
//   OUT_S32: C[m,n] = acc (int32)
//   OUT_F32 / OUT_F16 / OUT_S8: y[m,n] = act(acc * sx[m or 0] * sw[n or 0] + bias[n]) + residual[m,n]
//            (act: none or exact-erf GELU; bias / residual (FP32) optional), computed in FP32, then stored
//            as FP32 (y may be the residual buffer itself), as FP16 (__float2half_rn: round to nearest even,
//            overflow to inf), or re-quantized to s8 with a static per-tensor output scale:
//            q = clamp(rint(y / out_scale), -127, 127), y / out_scale the correctly rounded FP32 quotient and rint
//            ties-to-even, as in quantize.cuh (so the s8 output is what quantizing the FP32 output would give).
//
// PEG (per-embedding-group activation scales; template argument, two variants): the K channels form G
// contiguous groups of gs = K / G channels (gs % 16 == 0), group g's activations quantized with sx[g]:
//   y = act(sw[n] * sum_g sx[g] * acc_g + bias[n]) + residual,   acc_g = the s32 sum over group g.
// Each group's s32 sum is folded into an FP32 accumulator at the group's end, f = fma(sx[g], (float)acc_g, f),
// and the s32 accumulator restarts from 0. The FP32 accumulators double the register footprint, so the PEG
// tiles have 64 x 32 (or smaller) warp tiles.
//   PEG_SLICE, PEG_SLICE_WIDE (gs % BK == 0, the common case: 768/4 = 192, 768/6 = 128, 3072/4 = 768 ...):
//            every k-slice lies in one group, so the main loop is exactly the plain kernel's and the fold is one
//            uniform branch after a slice's last mma, taken when a slice countdown hits 0. The next group's scale
//            is loaded one fold ahead. For gs <= 256 (PEG_SLICE) the s32 -> FP32 conversion uses the exponent
//            trick (bits(acc + 0x4B400000) - 1.5 * 2^23, exact for |acc| <= 2^22 = 256 * 128 * 128) on the
//            integer and FP32 pipes instead of I2F, which has a fraction of their throughput; larger groups
//            (PEG_SLICE_WIDE) use I2F. Two instantiations rather than a runtime branch: with both conversions in
//            one kernel the 4-warp PEG tiles spill (ptxas -v: 255 registers + 4-24 bytes).
//   PEG_STEP (any gs % 16 == 0): the fold is checked at every k-step (32 k); a group boundary that falls in the
//            middle of an m16n8k32 step (gs % 32 == 16) is handled by issuing that step as two half-K mmas (the
//            other half's B register zeroed) with the fold in between. Slower; for awkward group sizes.
// Both give the same FP32 result: one conversion (exact for |acc_g| <= 2^24) and one fma per group.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace qd {
namespace i8 {

enum Out { OUT_S32 = 0, OUT_F32 = 1, OUT_F16 = 2, OUT_S8 = 3 };
enum Act { ACT_NONE = 0, ACT_GELU = 1 };
enum Peg { PEG_NONE = 0, PEG_SLICE = 1, PEG_SLICE_WIDE = 2, PEG_STEP = 3 };

// Exact-erf GELU, the same formula as activation.cuh's (which cannot be included here: it defines a kernel).
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }

// One output of the float epilogues from its FP32 sum v: act(v * sx * sw + bias) + residual, in this order, with the
// roundings spelled out (one fma for * sw + bias; __fmul_rn / __fmaf_rn / __fadd_rn are never re-contracted), so that
// every kernel using it — the fused epilogues of the mma.sync and wgmma GEMMs and the dequantize pass after cuBLASLt —
// gives the same bits. (Separate multiply and add, measured: the wgmma FP32 + GELU epilogue 11-12% slower at N 3072.)
__device__ __forceinline__ float epilogue_value(float v, float sx, float sw, float bias, float residual, int act) {
    const float a = __fmaf_rn(__fmul_rn(v, sx), sw, bias);
    return __fadd_rn(act == ACT_GELU ? gelu(a) : a, residual);
}

struct Epilogue {
    int out;                 // Out
    void *dst;               // int32 / float / __half / int8 [M x N], by `out`
    const float *sx;         // activation scale: sx[m] (sx_per_row) or sx[0]; PEG: group scales sx[g]
    const float *sw;         // weight scale: sw[n] (sw_per_col) or sw[0]
    const float *bias;       // [N] or NULL
    const float *residual;   // [M x N] FP32 or NULL
    float out_scale;         // OUT_S8: the output's quantization scale (> 0)
    int sx_per_row, sw_per_col, act;
    int pairs;               // OUT_S32: N is even and dst 8-byte aligned (int2 stores); wgmma PEG: 2-element accesses
    int vec4;                // float outputs: N % 4 == 0 and dst / residual / sw / bias aligned for 4-element vectors
    int groups, group_size;  // PEG only
    int slices_per_group;    // PEG_SLICE: group_size / BK
    int fold_magic;          // PEG: group_size <= 256, the exponent-trick conversion is exact
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

// (float)v for |v| <= 2^22 without I2F: 0x4B400000 is 1.5 * 2^23, whose ulp is 1, so adding v to its bit
// pattern gives the float 1.5 * 2^23 + v exactly (the sum stays in [2^23, 2^24]); subtracting 1.5 * 2^23 is
// exact too. One integer add and one FP32 add, both full-rate pipes.
__device__ __forceinline__ float small_int_to_float(int v) { return __int_as_float(v + 0x4B400000) - 12582912.f; }

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
    // The float epilogues stage the FP32 tile (rows padded by 8 floats) in the pipeline's shared memory, in
    // one pass or, where it does not fit, two passes of half the rows (no tile needs more shared memory for it).
    static constexpr int EPI_PASSES = BM * (BN + 8) * 4 <= SMEM ? 1 : 2, EPI_ROWS = BM / EPI_PASSES;
    static_assert(EPI_ROWS % WM == 0 && EPI_ROWS * (BN + 8) * 4 <= SMEM, "the staged epilogue tile fits");
    static_assert(BK == 64 || BK == 128, "BK: 64 or 128 bytes");
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile: multiples of 16");
    static_assert(BM % RSTEP == 0 && BN % RSTEP == 0, "whole cp.async passes");
    static_assert(STAGES >= 2, "at least double buffering");
};

// The s8 re-quantization of an output, clamp(rint(v / s), -127, 127), with v / s the correctly rounded FP32
// quotient (as quantize.cuh's division) but without a division instruction sequence per element: rcp = RN(1 / s)
// once, q = RN(v * rcp), then two Markstein corrections q = RN(q + RN(v - s q) * rcp) with the remainder exact
// by fma (the fast path of CUDA's own div.rn; the second step makes q the correctly rounded quotient). v is
// first clamped to [-128 s, 128 s], which changes no result and keeps every intermediate finite; NaN passes the
// comparisons and quantizes to 0 as in quantize.cuh. s in [2^-64, 2^64] (checked by the launcher) keeps the
// remainders that matter (|v / s| >= 1/2) far from underflow.
__device__ __forceinline__ int8_t requantize(float v, float s, float rcp) {
    const float lim = 128.f * s;
    v = v < -lim ? -lim : v > lim ? lim : v;
    float q = v * rcp;
    q = fmaf(fmaf(-s, q, v), rcp, q);
    q = fmaf(fmaf(-s, q, v), rcp, q);
    return (int8_t)max(-127, min(127, __float2int_rn(q)));
}

template <class T, int PEG>
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
    constexpr bool IS_PEG = PEG != PEG_NONE;
    float facc[IS_PEG ? T::MT : 1][IS_PEG ? T::NT : 1][4];
    if constexpr (IS_PEG) {
#pragma unroll
        for (int i = 0; i < T::MT; i++)
#pragma unroll
            for (int j = 0; j < T::NT; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) facc[i][j][e] = 0.f;
    }
    // facc += s * acc, acc = 0 (PEG only). The conversion: the exponent trick for group sizes <= 256, else I2F
    // (fixed by the template for the per-slice fold, a uniform branch for the per-k-step one).
    auto fold = [&](float s) {
        if constexpr (IS_PEG) {
            if (PEG == PEG_SLICE || (PEG == PEG_STEP && ep.fold_magic)) {
#pragma unroll
                for (int i = 0; i < T::MT; i++)
#pragma unroll
                    for (int j = 0; j < T::NT; j++)
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            facc[i][j][e] = fmaf(s, small_int_to_float(acc[i][j][e]), facc[i][j][e]);
                            acc[i][j][e] = 0;
                        }
            } else {
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
        }
    };
    // PEG_SLICE: slices left in the current group, its scale (the next one is loaded at each fold).
    int slices_left = 0, grp = 0;
    float s_cur = 0.f;
    // PEG_STEP: k of the next group boundary.
    int next_b = 0;
    constexpr bool SLICE = PEG == PEG_SLICE || PEG == PEG_SLICE_WIDE;
    if constexpr (SLICE) {
        slices_left = ep.slices_per_group;
        s_cur = __ldg(ep.sx);
    }
    if constexpr (PEG == PEG_STEP) next_b = ep.group_size;

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

    // The mmas of one k-step from fragment buffer `buf`; PEG_STEP folds finished groups in between.
    auto mma_step = [&](int buf, int k0) {
        if constexpr (PEG != PEG_STEP) {
#pragma unroll
            for (int i = 0; i < T::MT; i++)
#pragma unroll
                for (int j = 0; j < T::NT; j++)
                    mma_s8(acc[i][j], af[buf][i], bf[buf][j >> 1][(j & 1) * 2], bf[buf][j >> 1][(j & 1) * 2 + 1]);
        } else {
            if (k0 >= K) return;  // uniform; the zero-filled tail past K needs no mma
            if (k0 == next_b && next_b < K) {  // a group ended just before this step
                fold(__ldg(ep.sx + grp));
                grp++;
                next_b += ep.group_size;
            }
            if (k0 + 16 == next_b && next_b < K) {  // a group ends in the middle of this step
#pragma unroll
                for (int i = 0; i < T::MT; i++)
#pragma unroll
                    for (int j = 0; j < T::NT; j++) mma_s8(acc[i][j], af[buf][i], bf[buf][j >> 1][(j & 1) * 2], 0u);
                fold(__ldg(ep.sx + grp));
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
    // PEG_SLICE: after a slice's last mma; every slice lies in one group (gs % BK == 0, so K % BK == 0 too).
    auto end_slice = [&]() {
        if constexpr (SLICE) {
            if (--slices_left == 0) {  // uniform
                fold(s_cur);
                slices_left = ep.slices_per_group;
                if (++grp < ep.groups) s_cur = __ldg(ep.sx + grp);
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
            end_slice();
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
            end_slice();
        }
    }
    cp_async_wait<0>();
    if constexpr (PEG == PEG_STEP) fold(__ldg(ep.sx + grp));  // the last group (grp == groups - 1)

    // ---- epilogue. Thread (g, t) holds rows g, g+8 and columns 2t, 2t+1 of each 16 x 8 mma tile.
    const int g = lane >> 2, t = lane & 3;
    if (ep.out == OUT_S32) {  // int32: straight from registers
        if constexpr (!IS_PEG) {
            const int row_base = m0 + wm * T::WM + g, col_base = n0 + wn * T::WN + 2 * t;
#pragma unroll
            for (int i = 0; i < T::MT; i++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int row = row_base + i * 16 + h * 8;
                    if (row >= M) continue;
                    int *crow = static_cast<int *>(ep.dst) + (size_t)row * N;
#pragma unroll
                    for (int j = 0; j < T::NT; j++) {
                        const int col = col_base + j * 8;
                        if (col >= N) continue;
                        int v0 = acc[i][j][h * 2], v1 = acc[i][j][h * 2 + 1];
                        if (ep.pairs) {
                            *reinterpret_cast<int2 *>(crow + col) = make_int2(v0, v1);
                        } else {
                            crow[col] = v0;
                            if (col + 1 < N) crow[col + 1] = v1;
                        }
                    }
                }
        }
        return;
    }
    // FP32 / FP16 / s8: the tile's FP32 sums ((float)acc, or the PEG accumulator) are staged in shared memory
    // (the pipeline stages are free now; rows padded by 8 floats so that the float2 stores of a half-warp, 4
    // rows x 32 bytes, hit distinct banks), then every thread walks the staged rows in order, 4 columns at a
    // time: scales, bias, GELU, residual and the store are coalesced 16-byte accesses and one copy of the code.
    // Tiles whose FP32 tile does not fit the stages' shared memory stage it in two passes of EPI_ROWS rows.
    float *ctile = reinterpret_cast<float *>(smem);
    constexpr int LDC = T::BN + 8;
    // y = act(v * sx[row or 0] * sw[col or 0] + bias[col]) + residual[row, col]  (PEG: v * sw + bias ...)
    auto value = [&](float v, float sxr, float swc, float bc, float rc) {
        return epilogue_value(v, IS_PEG ? 1.f : sxr, swc, bc, rc, ep.act);  // PEG: v * 1 * swc == v * swc exactly
    };
    const float out_scale = ep.out_scale, out_rcp = 1.f / out_scale;  // OUT_S8 (out_scale is 1 otherwise)
    const float sx0 = IS_PEG || ep.sx_per_row ? 1.f : __ldg(ep.sx), sw0 = ep.sw_per_col ? 1.f : __ldg(ep.sw);
#pragma unroll 1
    for (int pass = 0; pass < T::EPI_PASSES; pass++) {
        const int r0 = pass * T::EPI_ROWS;  // the first tile row of this pass
        __syncthreads();  // every warp has read its last fragments (the previous pass's rows)
        if (wm * T::WM / T::EPI_ROWS == pass) {
#pragma unroll
            for (int i = 0; i < T::MT; i++)
#pragma unroll
                for (int h = 0; h < 2; h++)
#pragma unroll
                    for (int j = 0; j < T::NT; j++) {
                        float v0, v1;
                        if constexpr (IS_PEG) v0 = facc[i][j][h * 2], v1 = facc[i][j][h * 2 + 1];
                        else v0 = (float)acc[i][j][h * 2], v1 = (float)acc[i][j][h * 2 + 1];
                        *reinterpret_cast<float2 *>(ctile + (wm * T::WM - r0 + i * 16 + h * 8 + g) * LDC + wn * T::WN + j * 8 + 2 * t) =
                            make_float2(v0, v1);
                    }
        }
        __syncthreads();
        if (ep.vec4) {  // N % 4 == 0 and every pointer aligned for 4-element vectors
            // THREADS is a multiple of BN / 4, so a thread keeps its 4 columns (scales and bias loaded once) and
            // steps through the rows; a warp covers 128 neighbouring columns (or two rows of 64).
            constexpr int C4 = T::BN / 4, RSTEP_E = T::THREADS / C4, ITERS = T::EPI_ROWS / RSTEP_E;
            static_assert(T::THREADS % C4 == 0 && T::EPI_ROWS % RSTEP_E == 0, "whole passes over the tile");
            const int c = (tid % C4) * 4, col = n0 + c;
            if (col < N) {
                const float4 swc =
                    ep.sw_per_col ? __ldg(reinterpret_cast<const float4 *>(ep.sw + col)) : make_float4(sw0, sw0, sw0, sw0);
                const float4 bc = ep.bias ? __ldg(reinterpret_cast<const float4 *>(ep.bias + col)) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
                for (int it = 0; it < ITERS; it++) {
                    const int r = it * RSTEP_E + tid / C4, row = m0 + r0 + r;
                    if (row >= M) break;
                    const float4 v = *reinterpret_cast<const float4 *>(ctile + r * LDC + c);
                    const float sxr = IS_PEG ? 1.f : ep.sx_per_row ? __ldg(ep.sx + row) : sx0;
                    const size_t o = (size_t)row * N + col;
                    const float4 rc =
                        ep.residual ? __ldg(reinterpret_cast<const float4 *>(ep.residual + o)) : make_float4(0.f, 0.f, 0.f, 0.f);
                    const float y0 = value(v.x, sxr, swc.x, bc.x, rc.x), y1 = value(v.y, sxr, swc.y, bc.y, rc.y);
                    const float y2 = value(v.z, sxr, swc.z, bc.z, rc.z), y3 = value(v.w, sxr, swc.w, bc.w, rc.w);
                    if (ep.out == OUT_F32) {
                        *reinterpret_cast<float4 *>(static_cast<float *>(ep.dst) + o) = make_float4(y0, y1, y2, y3);
                    } else if (ep.out == OUT_F16) {
                        __half2 h01 = __floats2half2_rn(y0, y1), h23 = __floats2half2_rn(y2, y3);
                        *reinterpret_cast<uint2 *>(static_cast<__half *>(ep.dst) + o) =
                            make_uint2(*reinterpret_cast<uint32_t *>(&h01), *reinterpret_cast<uint32_t *>(&h23));
                    } else {
                        *reinterpret_cast<char4 *>(static_cast<int8_t *>(ep.dst) + o) =
                            make_char4(requantize(y0, out_scale, out_rcp), requantize(y1, out_scale, out_rcp),
                                       requantize(y2, out_scale, out_rcp), requantize(y3, out_scale, out_rcp));
                    }
                }
            }
        } else {  // element by element: a thread keeps one column, a warp covers 32 neighbouring ones
            constexpr int RSTEP_E = T::THREADS / T::BN, ITERS = T::EPI_ROWS / RSTEP_E;
            static_assert(T::THREADS % T::BN == 0 && T::EPI_ROWS % RSTEP_E == 0, "whole passes over the tile");
            const int c = tid % T::BN, col = n0 + c;
            if (col < N) {
                const float swc = ep.sw_per_col ? __ldg(ep.sw + col) : sw0, bc = ep.bias ? __ldg(ep.bias + col) : 0.f;
#pragma unroll 4
                for (int it = 0; it < ITERS; it++) {
                    const int r = it * RSTEP_E + tid / T::BN, row = m0 + r0 + r;
                    if (row >= M) break;
                    const size_t o = (size_t)row * N + col;
                    const float y = value(ctile[r * LDC + c], IS_PEG ? 1.f : ep.sx_per_row ? __ldg(ep.sx + row) : sx0, swc, bc,
                                          ep.residual ? __ldg(ep.residual + o) : 0.f);
                    if (ep.out == OUT_F32) static_cast<float *>(ep.dst)[o] = y;
                    else if (ep.out == OUT_F16) static_cast<__half *>(ep.dst)[o] = __float2half_rn(y);
                    else static_cast<int8_t *>(ep.dst)[o] = requantize(y, out_scale, out_rcp);
                }
            }
        }
    }
}

}  // namespace i8
}  // namespace qd
