// qdrift.h INT8 section: host launchers for the s8 GEMM (cuda/int8_gemm.cuh) and the quantize kernels
// (cuda/quantize.cuh). Each checks its arguments, picks a launch shape and returns the launch status.
#include "qdrift.h"
#include "int8_gemm.cuh"
#include "int8_gemm_wgmma.cuh"  // sm90::gemm_peg
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
using T7 = Tile<128, 64, 64, 2, 2, 4, 2, true>;    // 4 warps of 64 x 32
using T8 = Tile<128, 128, 128, 2, 4, 3, 1, true>;  // 8 warps of 64 x 32, 128-byte k-tiles
// The PEG GEMM keeps a second (FP32) accumulator set, so its tiles have warp tiles of at most 64 x 32 (64 + 64
// accumulator registers a thread); all double-buffer their fragments. Tiles 7 and 8 are their plain shapes.
using T0Peg = Tile<128, 128, 64, 2, 4, 4, 1, true>;  // tile 0's shape, 1 CTA of 8 warps per SM
using T4Peg = T4;
using T5Peg = Tile<64, 64, 64, 2, 2, 4, 3, true>;
using T7Peg = T7;
using T8Peg = T8;

constexpr int TILES = 9;
struct TileInfo {
    int bm, bn, bk, warps, stages, smem, peg;
    float eff;      // relative throughput per SM when the tile keeps the SM busy (heuristic, see pick_tile)
    float peg_eff;  // the same for its PEG variant (0: none), relative to tile 6's plain throughput
};
#define INFO_OF(T, peg, eff, peg_eff) {T::BM, T::BN, T::BK, T::THREADS / 32, T::STAGES, T::SMEM, peg, eff, peg_eff}
// eff: median throughput relative to T6 over 4096x768x768, 4096x3072x768, 4096x768x3072 and
// 16384x3072x768 on an H100 (int32 output, 2026-11-23): T6 1, T3 .93, T0 .87, T1/T2 .86, T4 .70, T5 .66.
// T7 / T8 and every peg_eff are estimates, not yet measured (Int8GemmBenchMain prints every PEG tile's rate to
// calibrate them): the per-slice PEG main loop is its tile's plain loop, so peg_eff ~ the plain efficiency of a
// 64 x 32-warp-tile kernel at 8 warps per SM (T0 .87, T4 .70) less the folds (~5-10% at K = 768, G = 6).
// T7 is T4 transposed (same CTA area, warps and ldmatrix / mma ratio); T8 halves T0Peg's barriers (BK 128).
constexpr TileInfo INFO[TILES] = {
    INFO_OF(T0, 1, 0.87f, 0.80f), INFO_OF(T1, 0, 0.86f, 0.f),   INFO_OF(T2, 0, 0.86f, 0.f),
    INFO_OF(T3, 0, 0.93f, 0.f),   INFO_OF(T4, 1, 0.70f, 0.65f), INFO_OF(T5, 1, 0.66f, 0.58f),
    INFO_OF(T6, 0, 1.00f, 0.f),   INFO_OF(T7, 1, 0.70f, 0.66f), INFO_OF(T8, 1, 0.84f, 0.84f),
};
// A PEG group size that is not a multiple of the tile's BK takes the per-k-step path (PEG_STEP): slower.
constexpr float PEG_STEP_PENALTY = 0.6f;

// The float epilogue as a pass of its own over int32 sums computed elsewhere (cuBLASLt's s8 GEMM, for comparison
// with the fused kernels): y[m,n] = act(acc[m,n] * sx[m or 0] * sw[n or 0] + bias[n]) + residual[m,n], FP32.
// One thread per output, grid-stride; y may be the residual buffer (each element is read before it is written).
__global__ void dequantize_f32_kernel(const int *__restrict__ acc, int m, int n, Epilogue ep) {
    const size_t total = (size_t)m * n;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int row = (int)(i / n), col = (int)(i % n);
        const float sx = __ldg(ep.sx + (ep.sx_per_row ? row : 0)), sw = __ldg(ep.sw + (ep.sw_per_col ? col : 0));
        const float bias = ep.bias ? __ldg(ep.bias + col) : 0.f, res = ep.residual ? ep.residual[i] : 0.f;
        ((float *)ep.dst)[i] = epilogue_value((float)__ldg(acc + i), sx, sw, bias, res, ep.act);
    }
}

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
// index. groups > 0: the PEG GEMM with that many groups of k / groups channels.
int pick_tile(int m, int n, int k, int groups) {
    int sms = device_sms(), best = -1;
    double best_cost = 0;
    for (int i = 0; i < TILES; i++) {
        double eff = INFO[i].eff;
        if (groups > 0) {
            if (!INFO[i].peg) continue;
            eff = INFO[i].peg_eff * ((k / groups) % INFO[i].bk == 0 ? 1.f : PEG_STEP_PENALTY);
        }
        long tiles = (long)((m + INFO[i].bm - 1) / INFO[i].bm) * ((n + INFO[i].bn - 1) / INFO[i].bn);
        long per_sm = (tiles + sms - 1) / sms;
        double cost = (double)per_sm * INFO[i].bm * INFO[i].bn / eff;
        if (best < 0 || cost < best_cost) best = i, best_cost = cost;
    }
    return best;
}

template <class T, int PEG>
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

// PEG: the per-slice fold when the group size is a multiple of the tile's BK (the exponent-trick conversion when
// the group sums fit it, else I2F), else the per-k-step fold.
template <class T>
int launch_peg(const int8_t *a, const int8_t *b, int m, int n, int k, Epilogue ep, cudaStream_t s) {
    if (ep.group_size % T::BK == 0) {
        ep.slices_per_group = ep.group_size / T::BK;
        return ep.fold_magic ? launch<T, PEG_SLICE>(a, b, m, n, k, ep, s) : launch<T, PEG_SLICE_WIDE>(a, b, m, n, k, ep, s);
    }
    return launch<T, PEG_STEP>(a, b, m, n, k, ep, s);
}

int dispatch(int tile, const int8_t *a, const int8_t *b, int m, int n, int k, const Epilogue &ep, cudaStream_t s) {
    bool peg = ep.groups > 0;
    if (tile < 0) tile = pick_tile(m, n, k, ep.groups);
    if (tile >= TILES || (peg && !INFO[tile].peg)) return cudaErrorInvalidValue;
    if (peg) {
        switch (tile) {
        case 0: return launch_peg<T0Peg>(a, b, m, n, k, ep, s);
        case 4: return launch_peg<T4Peg>(a, b, m, n, k, ep, s);
        case 5: return launch_peg<T5Peg>(a, b, m, n, k, ep, s);
        case 7: return launch_peg<T7Peg>(a, b, m, n, k, ep, s);
        case 8: return launch_peg<T8Peg>(a, b, m, n, k, ep, s);
        }
        return cudaErrorInvalidValue;
    }
    switch (tile) {
    case 6: return launch<T6, PEG_NONE>(a, b, m, n, k, ep, s);
    case 0: return launch<T0, PEG_NONE>(a, b, m, n, k, ep, s);
    case 1: return launch<T1, PEG_NONE>(a, b, m, n, k, ep, s);
    case 2: return launch<T2, PEG_NONE>(a, b, m, n, k, ep, s);
    case 3: return launch<T3, PEG_NONE>(a, b, m, n, k, ep, s);
    case 4: return launch<T4, PEG_NONE>(a, b, m, n, k, ep, s);
    case 5: return launch<T5, PEG_NONE>(a, b, m, n, k, ep, s);
    case 7: return launch<T7, PEG_NONE>(a, b, m, n, k, ep, s);
    case 8: return launch<T8, PEG_NONE>(a, b, m, n, k, ep, s);
    }
    return cudaErrorInvalidValue;
}

bool aligned(const void *p, unsigned bytes) { return ((uintptr_t)p & (bytes - 1)) == 0; }

// The operand checks every GEMM shares: sizes, K % 16, 16-byte aligned operands.
bool operands_ok(const void *a, const void *b, int m, int n, int k) {
    return a && b && m > 0 && n > 0 && k > 0 && k % 16 == 0 && aligned(a, 16) && aligned(b, 16);
}

size_t out_bytes(int out) { return out == OUT_F16 ? 2 : out == OUT_S8 ? 1 : 4; }

// The epilogue of an FP32 / FP16 / s8 output: checks it and fills `ep` (without sx / groups). Outputs need only
// their element's natural alignment: 4-element vector accesses are used where N % 4 == 0 and the pointers allow
// them, element-wise ones otherwise. The residual may be the FP32 output itself (in place) but must not otherwise overlap
// the output.
bool epilogue_ok(int out, const float *w_scale, int w_per_col, const float *bias, const float *residual, int act,
                 float out_scale, void *y, int m, int n, Epilogue &ep) {
    size_t e = out_bytes(out);
    if (!w_scale || !y || !aligned(y, (unsigned)e) || (residual && !aligned(residual, 4)) || (act != 0 && act != 1)) return false;
    if (out == OUT_S8 && !(out_scale >= 0x1p-64f && out_scale <= 0x1p64f)) return false;  // see requantize()
    if (residual && (const void *)residual != (const void *)y) {
        uintptr_t r0 = (uintptr_t)residual, r1 = r0 + (size_t)m * n * 4, y0 = (uintptr_t)y, y1 = y0 + (size_t)m * n * e;
        if (r0 < y1 && y0 < r1) return false;
    } else if (residual && out != OUT_F32) {
        return false;
    }
    ep.out = out;
    ep.dst = y;
    ep.sw = w_scale;
    ep.sw_per_col = w_per_col != 0;
    ep.bias = bias;
    ep.residual = residual;
    ep.act = act;
    ep.out_scale = out == OUT_S8 ? out_scale : 1.f;
    ep.vec4 = n % 4 == 0 && aligned(y, (unsigned)(4 * e)) && (!residual || aligned(residual, 16)) &&
              (!w_per_col || aligned(w_scale, 16)) && (!bias || aligned(bias, 16));
    return true;
}

int gemm_plain(int out, const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
               const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float out_scale,
               void *y, int tile, cudaStream_t stream) {
    Epilogue ep = {};
    if (!operands_ok(a, b, m, n, k) || !x_scale ||
        !epilogue_ok(out, w_scale, w_per_col, bias, residual, act, out_scale, y, m, n, ep))
        return cudaErrorInvalidValue;
    ep.sx = x_scale;
    ep.sx_per_row = x_per_row != 0;
    return dispatch(tile, (const int8_t *)a, (const int8_t *)b, m, n, k, ep, stream);
}

int gemm_peg(int out, const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
             const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float out_scale, void *y,
             int tile, cudaStream_t stream) {
    Epilogue ep = {};
    if (!operands_ok(a, b, m, n, k) || !group_scales ||
        !epilogue_ok(out, w_scale, w_per_col, bias, residual, act, out_scale, y, m, n, ep))
        return cudaErrorInvalidValue;
    if (groups <= 0 || k % groups != 0 || (k / groups) % 16 != 0) return cudaErrorInvalidValue;
    ep.sx = group_scales;
    ep.groups = groups;
    ep.group_size = k / groups;
    ep.fold_magic = ep.group_size <= 256;  // |acc_g| <= 256 * 128 * 128 = 2^22
    if (tile < 0) {  // the wgmma PEG where it runs (sm_90, group_size % 32 == 0), else the mma.sync kernel
        int r = sm90::gemm_peg((const int8_t *)a, (const int8_t *)b, m, n, k, ep, -1, 0, stream);
        if (r != cudaErrorNotSupported) return r;
    }
    return dispatch(tile, (const int8_t *)a, (const int8_t *)b, m, n, k, ep, stream);
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

int qd_i8_gemm_pick_tile(int m, int n, int k, int groups, int *tile) {
    if (m <= 0 || n <= 0 || k <= 0 || groups < 0 || (groups > 0 && k % groups != 0)) return cudaErrorInvalidValue;
    *tile = pick_tile(m, n, k, groups);
    return cudaSuccess;
}

int qd_i8_gemm_s32(const signed char *a, const signed char *b, int m, int n, int k, int *c, int tile, void *stream) {
    if (!operands_ok(a, b, m, n, k) || !c || !aligned(c, 4)) return cudaErrorInvalidValue;
    Epilogue ep = {};
    ep.out = OUT_S32;
    ep.dst = c;
    ep.pairs = n % 2 == 0 && aligned(c, 8);
    return dispatch(tile, (const int8_t *)a, (const int8_t *)b, m, n, k, ep, S(stream));
}

int qd_i8_dequantize_f32(const int *acc, int m, int n, const float *x_scale, int x_per_row, const float *w_scale, int w_per_col,
                         const float *bias, const float *residual, int act, float *y, void *stream) {
    Epilogue ep = {};
    if (!acc || m <= 0 || n <= 0 || !aligned(acc, 4) || !x_scale ||
        !epilogue_ok(OUT_F32, w_scale, w_per_col, bias, residual, act, 1.f, y, m, n, ep))
        return cudaErrorInvalidValue;
    const uintptr_t a0 = (uintptr_t)acc, a1 = a0 + (size_t)m * n * 4, y0 = (uintptr_t)y, y1 = y0 + (size_t)m * n * 4;
    if (a0 != y0 && a0 < y1 && y0 < a1) return cudaErrorInvalidValue;  // y may be acc itself, not overlap it in part
    ep.sx = x_scale;
    ep.sx_per_row = x_per_row != 0;
    const size_t total = (size_t)m * n;
    const int threads = 256, blocks = (int)std::min<size_t>((total + threads - 1) / threads, (size_t)device_sms() * 16);
    dequantize_f32_kernel<<<blocks, threads, 0, S(stream)>>>(acc, m, n, ep);
    return cudaGetLastError();
}

int qd_i8_gemm_f32(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
                   const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float *y,
                   int tile, void *stream) {
    return gemm_plain(OUT_F32, a, b, m, n, k, x_scale, x_per_row, w_scale, w_per_col, bias, residual, act, 1.f, y, tile, S(stream));
}

int qd_i8_gemm_f16(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
                   const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, unsigned short *y,
                   int tile, void *stream) {
    return gemm_plain(OUT_F16, a, b, m, n, k, x_scale, x_per_row, w_scale, w_per_col, bias, residual, act, 1.f, y, tile, S(stream));
}

int qd_i8_gemm_s8(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale, int x_per_row,
                  const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float out_scale,
                  signed char *q, int tile, void *stream) {
    return gemm_plain(OUT_S8, a, b, m, n, k, x_scale, x_per_row, w_scale, w_per_col, bias, residual, act, out_scale, q, tile,
                      S(stream));
}

int qd_i8_gemm_peg_f32(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
                       const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float *y,
                       int tile, void *stream) {
    return gemm_peg(OUT_F32, a, b, m, n, k, groups, group_scales, w_scale, w_per_col, bias, residual, act, 1.f, y, tile, S(stream));
}

int qd_i8_gemm_peg_f16(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
                       const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, unsigned short *y,
                       int tile, void *stream) {
    return gemm_peg(OUT_F16, a, b, m, n, k, groups, group_scales, w_scale, w_per_col, bias, residual, act, 1.f, y, tile, S(stream));
}

int qd_i8_gemm_peg_s8(const signed char *a, const signed char *b, int m, int n, int k, int groups, const float *group_scales,
                      const float *w_scale, int w_per_col, const float *bias, const float *residual, int act, float out_scale,
                      signed char *q, int tile, void *stream) {
    return gemm_peg(OUT_S8, a, b, m, n, k, groups, group_scales, w_scale, w_per_col, bias, residual, act, out_scale, q, tile,
                    S(stream));
}

int qd_quantize_s8_tensor_ld(const float *x, int rows, int cols, float scale, signed char *q, int ldq, void *stream) {
    if (!x || !q || rows <= 0 || cols <= 0 || ldq < cols || !(scale > 0.f && scale <= 3.4028235e38f)) return cudaErrorInvalidValue;
    if (ldq == cols) {
        size_t n = (size_t)rows * cols;
        int vec4 = n % 4 == 0 && aligned(x, 16) && aligned(q, 4);
        qd::quantize_tensor_kernel<<<grid_for(vec4 ? n / 4 : n, 256), 256, 0, S(stream)>>>(x, scale, n, (int8_t *)q, vec4);
    } else {
        qd::quantize_tensor_ld_kernel<<<grid_for((size_t)rows * ldq, 256), 256, 0, S(stream)>>>(x, scale, rows, cols, ldq,
                                                                                                (int8_t *)q);
    }
    return cudaGetLastError();
}

int qd_quantize_s8_tensor(const float *x, int rows, int cols, float scale, signed char *q, void *stream) {
    return qd_quantize_s8_tensor_ld(x, rows, cols, scale, q, cols, stream);
}

int qd_quantize_s8_token_ld(const float *x, int rows, int cols, signed char *q, int ldq, float *scales, void *stream) {
    if (!x || !q || !scales || rows <= 0 || cols <= 0 || ldq < cols) return cudaErrorInvalidValue;
    int vec4 = cols % 4 == 0 && ldq % 4 == 0 && aligned(x, 16) && aligned(q, 4);
    int warps = 8;
    unsigned blocks = (unsigned)((rows + warps - 1) / warps);
    qd::quantize_token_kernel<<<blocks, warps * 32, 0, S(stream)>>>(x, rows, cols, ldq, (int8_t *)q, scales, vec4);
    return cudaGetLastError();
}

int qd_quantize_s8_token(const float *x, int rows, int cols, signed char *q, float *scales, void *stream) {
    return qd_quantize_s8_token_ld(x, rows, cols, q, cols, scales, stream);
}

int qd_i8_repack(const signed char *src, int rows, int cols, int groups, signed char *dst, int dst_cols, void *stream) {
    if (!src || !dst || rows <= 0 || cols <= 0 || groups <= 0 || cols % groups != 0 || dst_cols % groups != 0 ||
        dst_cols / groups < cols / groups)
        return cudaErrorInvalidValue;
    qd::repack_s8_kernel<<<grid_for((size_t)rows * dst_cols, 256), 256, 0, S(stream)>>>((const int8_t *)src, rows, cols, groups,
                                                                                         (int8_t *)dst, dst_cols);
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
