// qdrift.h INT8 section: host launchers for the s8 GEMM (cuda/int8_gemm.cuh) and the quantize kernels
// (cuda/quantize.cuh). Each checks its arguments, picks a launch shape and returns the launch status.
#include "qdrift.h"
#include "int8_gemm.cuh"
#include "quantize.cuh"

#define S(stream) ((cudaStream_t)(stream))

namespace {

using namespace qd::i8;

// The tile shapes compiled in. Index = the `tile` argument of the launchers (-1: pick automatically).
//              BM   BN   BK  warps M x N  stages  min CTAs/SM  double-buffered fragments
using T0 = Tile<128, 128, 64, 2, 4, 4, 2, false>;  // 8 warps of 64 x 32
using T1 = Tile<128, 256, 64, 2, 4, 3, 1, true>;   // 8 warps of 64 x 64
using T2 = Tile<256, 128, 64, 4, 2, 3, 1, true>;   // 8 warps of 64 x 64
using T3 = Tile<128, 128, 64, 2, 2, 4, 2, true>;   // 4 warps of 64 x 64
using T4 = Tile<64, 128, 64, 2, 2, 4, 2, true>;    // 4 warps of 32 x 64
using T5 = Tile<64, 64, 64, 2, 2, 4, 4, true>;     // 4 warps of 32 x 32
using T6 = Tile<128, 128, 128, 2, 2, 3, 2, true>;  // 4 warps of 64 x 64, 128-byte k-tiles
// The PEG GEMM keeps a second (FP32) accumulator set: single-buffered fragments, room for registers.
using T0Peg = Tile<128, 128, 64, 2, 4, 4, 1, false>;
using T4Peg = Tile<64, 128, 64, 2, 2, 4, 2, false>;
using T5Peg = Tile<64, 64, 64, 2, 2, 4, 3, false>;

constexpr int TILES = 7;
struct TileInfo {
    int bm, bn, bk, warps, stages, smem, peg;
    float eff;  // relative throughput per SM when the tile keeps the SM busy (heuristic, see pick_tile)
};
#define INFO_OF(T, peg, eff) {T::BM, T::BN, T::BK, T::THREADS / 32, T::STAGES, T::SMEM, peg, eff}
// eff: median throughput relative to T6 over 4096x768x768, 4096x3072x768, 4096x768x3072 and
// 16384x3072x768 on an H100 (int32 output, 2026-11-23): T6 1, T3 .93, T0 .87, T1/T2 .86, T4 .70, T5 .66.
constexpr TileInfo INFO[TILES] = {
    INFO_OF(T0, 1, 0.87f), INFO_OF(T1, 0, 0.86f), INFO_OF(T2, 0, 0.86f), INFO_OF(T3, 0, 0.93f),
    INFO_OF(T4, 1, 0.70f), INFO_OF(T5, 1, 0.66f), INFO_OF(T6, 0, 1.00f),
};

int device_sms() {
    static int sms[64];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 132;
    if (sms[dev] == 0) {
        int n = 0;
        if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) n = 132;
        sms[dev] = n;
    }
    return sms[dev];
}

// Estimated time ~ (blocks the busiest SM runs) x (tile area) / (tile efficiency): wave quantization
// against the larger tiles' better operand reuse (a small grid goes to a small tile). Ties go to the lower
// index.
int pick_tile(int m, int n, int peg) {
    int sms = device_sms(), best = -1;
    double best_cost = 0;
    for (int i = 0; i < TILES; i++) {
        if (peg && !INFO[i].peg) continue;
        long tiles = (long)((m + INFO[i].bm - 1) / INFO[i].bm) * ((n + INFO[i].bn - 1) / INFO[i].bn);
        long per_sm = (tiles + sms - 1) / sms;
        double cost = (double)per_sm * INFO[i].bm * INFO[i].bn / INFO[i].eff;
        if (best < 0 || cost < best_cost) best = i, best_cost = cost;
    }
    return best;
}

template <class T, bool PEG>
int launch(const int8_t *a, const int8_t *b, int m, int n, int k, const Epilogue &ep, cudaStream_t stream) {
    auto kernel = gemm_kernel<T, PEG>;
    if (T::SMEM > 48 * 1024) {
        // Opt in to more than 48 KB of dynamic shared memory; once per device (racing threads only repeat it).
        static bool done[64];
        int dev = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e != cudaSuccess) return e;
        if (dev < 0 || dev >= 64 || !done[dev]) {
            e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::SMEM);
            if (e != cudaSuccess) return e;
            if (dev >= 0 && dev < 64) done[dev] = true;
        }
    }
    unsigned gy = (unsigned)((m + T::BM - 1) / T::BM), gx = (unsigned)((n + T::BN - 1) / T::BN);
    if (gy > 65535) return cudaErrorInvalidValue;
    kernel<<<dim3(gx, gy), T::THREADS, T::SMEM, stream>>>(a, b, m, n, k, ep);
    return cudaGetLastError();
}

int dispatch(int tile, const int8_t *a, const int8_t *b, int m, int n, int k, const Epilogue &ep, bool peg, cudaStream_t s) {
    if (tile < 0) tile = pick_tile(m, n, peg);
    if (tile >= TILES || (peg && !INFO[tile].peg)) return cudaErrorInvalidValue;
    if (peg) {
        switch (tile) {
        case 0: return launch<T0Peg, true>(a, b, m, n, k, ep, s);
        case 4: return launch<T4Peg, true>(a, b, m, n, k, ep, s);
        case 5: return launch<T5Peg, true>(a, b, m, n, k, ep, s);
        }
        return cudaErrorInvalidValue;
    }
    switch (tile) {
    case 6: return launch<T6, false>(a, b, m, n, k, ep, s);
    case 0: return launch<T0, false>(a, b, m, n, k, ep, s);
    case 1: return launch<T1, false>(a, b, m, n, k, ep, s);
    case 2: return launch<T2, false>(a, b, m, n, k, ep, s);
    case 3: return launch<T3, false>(a, b, m, n, k, ep, s);
    case 4: return launch<T4, false>(a, b, m, n, k, ep, s);
    case 5: return launch<T5, false>(a, b, m, n, k, ep, s);
    }
    return cudaErrorInvalidValue;
}

bool aligned(const void *p, unsigned bytes) { return ((uintptr_t)p & (bytes - 1)) == 0; }

// The operand checks every GEMM shares: sizes, K % 16, 16-byte aligned operands.
bool operands_ok(const void *a, const void *b, int m, int n, int k) {
    return a && b && m > 0 && n > 0 && k > 0 && k % 16 == 0 && aligned(a, 16) && aligned(b, 16);
}

bool f32_epilogue_ok(const float *w_scale, const float *residual, int n, int act, const float *y) {
    unsigned pair = (n % 2 == 0) ? 8 : 4;  // float2 accesses when N is even
    return w_scale && y && aligned(y, pair) && (!residual || aligned(residual, pair)) && (act == 0 || act == 1);
}

int grid_for(size_t n, int threads) {
    size_t blocks = (n + threads - 1) / threads;
    return (int)(blocks < 65535 * 16 ? blocks : 65535 * 16);
}

}  // namespace

extern "C" {

int qd_i8_gemm_tile_info(int tile, int *bm, int *bn, int *bk, int *warps, int *stages, int *peg) {
    if (tile < 0 || tile >= TILES) return cudaErrorInvalidValue;
    *bm = INFO[tile].bm;
    *bn = INFO[tile].bn;
    *bk = INFO[tile].bk;
    *warps = INFO[tile].warps;
    *stages = INFO[tile].stages;
    *peg = INFO[tile].peg;
    return cudaSuccess;
}

int qd_i8_gemm_pick_tile(int m, int n, int k, int peg, int *tile) {
    if (m <= 0 || n <= 0 || k <= 0) return cudaErrorInvalidValue;
    *tile = pick_tile(m, n, peg);
    return cudaSuccess;
}

int qd_i8_gemm_s32(const signed char *a, const signed char *b, int m, int n, int k, int *c, int tile, void *stream) {
    if (!operands_ok(a, b, m, n, k) || !c || !aligned(c, n % 2 == 0 ? 8 : 4)) return cudaErrorInvalidValue;
    Epilogue ep = {};
    ep.out = OUT_S32;
    ep.c32 = c;
    return dispatch(tile, (const int8_t *)a, (const int8_t *)b, m, n, k, ep, false, S(stream));
}

int qd_i8_gemm_f32(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
                   const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float *y,
                   int tile, void *stream) {
    if (!operands_ok(a, b, m, n, k) || !x_scale || !f32_epilogue_ok(w_scale, residual, n, act, y)) return cudaErrorInvalidValue;
    Epilogue ep = {};
    ep.out = OUT_F32;
    ep.y = y;
    ep.sx = x_scale;
    ep.sx_per_row = x_per_row != 0;
    ep.sw = w_scale;
    ep.sw_per_col = w_per_col != 0;
    ep.bias = bias;
    ep.residual = residual;
    ep.act = act;
    return dispatch(tile, (const int8_t *)a, (const int8_t *)b, m, n, k, ep, false, S(stream));
}

int qd_i8_gemm_peg_f32(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
                       const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float *y,
                       int tile, void *stream) {
    if (!operands_ok(a, b, m, n, k) || !group_scales || !f32_epilogue_ok(w_scale, residual, n, act, y)) return cudaErrorInvalidValue;
    if (groups <= 0 || k % groups != 0 || (k / groups) % 16 != 0) return cudaErrorInvalidValue;
    Epilogue ep = {};
    ep.out = OUT_F32;
    ep.y = y;
    ep.sx = group_scales;
    ep.sw = w_scale;
    ep.sw_per_col = w_per_col != 0;
    ep.bias = bias;
    ep.residual = residual;
    ep.act = act;
    ep.groups = groups;
    ep.group_size = k / groups;
    return dispatch(tile, (const int8_t *)a, (const int8_t *)b, m, n, k, ep, true, S(stream));
}

int qd_quantize_s8_tensor(const float *x, int rows, int cols, float scale, signed char *q, void *stream) {
    if (!x || !q || rows <= 0 || cols <= 0 || !(scale > 0.f && scale <= 3.4028235e38f)) return cudaErrorInvalidValue;
    size_t n = (size_t)rows * cols;
    int vec4 = n % 4 == 0 && aligned(x, 16) && aligned(q, 4);
    qd::quantize_tensor_kernel<<<grid_for(vec4 ? n / 4 : n, 256), 256, 0, S(stream)>>>(x, scale, n, (int8_t *)q, vec4);
    return cudaGetLastError();
}

int qd_quantize_s8_token(const float *x, int rows, int cols, signed char *q, float *scales, void *stream) {
    if (!x || !q || !scales || rows <= 0 || cols <= 0) return cudaErrorInvalidValue;
    int vec4 = cols % 4 == 0 && aligned(x, 16) && aligned(q, 4);
    int warps = 8;
    unsigned blocks = (unsigned)((rows + warps - 1) / warps);
    qd::quantize_token_kernel<<<blocks, warps * 32, 0, S(stream)>>>(x, rows, cols, (int8_t *)q, scales, vec4);
    return cudaGetLastError();
}

int qd_quantize_s8_group(const float *x, int rows, int cols, int groups, const float *scales, signed char *q, void *stream) {
    if (!x || !q || !scales || rows <= 0 || cols <= 0 || groups <= 0 || cols % groups != 0) return cudaErrorInvalidValue;
    size_t n = (size_t)rows * cols;
    int group_size = cols / groups;
    int vec4 = group_size % 4 == 0 && aligned(x, 16) && aligned(q, 4);
    qd::quantize_group_kernel<<<grid_for(vec4 ? n / 4 : n, 256), 256, 0, S(stream)>>>(x, scales, cols, group_size, n,
                                                                                        (int8_t *)q, vec4);
    return cudaGetLastError();
}

}  // extern "C"
