// Host launchers for the Hopper wgmma s8 GEMM (cuda/int8_gemm_wgmma.cuh): tensor maps, configuration choice,
// launch. Same contract as qd_i8_gemm_s32 / qd_i8_gemm_f32 (native/int8.cu); runs on sm_90 devices only and
// answers cudaErrorNotSupported elsewhere. Int8Ops asks qd_i8_gemm_wgmma_supported once and routes calls to the
// mma.sync kernel where it says no. The PEG GEMM (sm90::gemm_peg) is reached through int8.cu's qd_i8_gemm_peg_*.
//
// C prototypes: qdrift.h, INT8 section.
#include <cuda_runtime.h>
#include <stdint.h>
#include "int8_gemm_wgmma.cuh"
#include "qdrift.h"


namespace {

using namespace qd::i8;
using sm90::Config;
using sm90::encode_tiled_fn;
using sm90::make_tensor_map;

// The configurations compiled in (index = `config`). Shared memory: 4 x 48 KB, 5 x 40 KB, 6 x 32 KB; STAGED (the
// s32 output through OutputStager) adds 2, 1, 2 boxes of 2 KB per consumer warp, what fits.
//                                   BN   stages
template <bool STAGED> using C0 = Config<256, 4, STAGED ? 2 : 0>;
template <bool STAGED> using C1 = Config<192, 5, STAGED ? 1 : 0>;
template <bool STAGED> using C2 = Config<128, 6, STAGED ? 2 : 0>;
constexpr int CONFIGS = 3;
struct ConfigInfo {
    int bm, bn, bk, stages;
    float eff;  // assumed relative throughput per SM (operand reuse of the wider tiles); see pick_config
};
constexpr ConfigInfo INFO[CONFIGS] = {
    {C0<false>::BM, C0<false>::BN, C0<false>::BK, C0<false>::STAGES, 1.00f},
    {C1<false>::BM, C1<false>::BN, C1<false>::BK, C1<false>::STAGES, 0.95f},
    {C2<false>::BM, C2<false>::BN, C2<false>::BK, C2<false>::STAGES, 0.85f},
};
// The PEG configurations (the output type is added per launch, sm90::PegConfig): the FP32 sums beside the s32
// ones (BN registers a thread) leave room for BN <= 192. eff as above: BN 128 ran 8-10% slower than 192 at the BERT
// shapes where both fill the SMs (H100, bench/results/2026-11-23-h100-peg-wgmma/).
using P0 = Config<192, 5>;
using P1 = Config<128, 6>;
static_assert(sm90::PEG_CONFIGS == 2, "the configs below");
constexpr ConfigInfo PEG_INFO[sm90::PEG_CONFIGS] = {
    {P0::BM, P0::BN, P0::BK, P0::STAGES, 1.00f},
    {P1::BM, P1::BN, P1::BK, P1::STAGES, 0.90f},
};

constexpr int MAX_DEVICES = 64;

// Per device, once: compute capability 9.0 and the SM count.
struct DeviceInfo {
    int checked, sm90, sms;
};
DeviceInfo device_info(int *dev_out) {
    static DeviceInfo info[MAX_DEVICES];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= MAX_DEVICES) return {1, 0, 0};
    *dev_out = dev;
    if (!info[dev].checked) {
        int major = 0, minor = 0, sms = 0;
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
        info[dev] = {1, major == 9 && minor == 0 && sms > 0, sms};  // sm_90a code runs on 9.0 only
    }
    return info[dev];
}

// Estimated time ~ (tiles the busiest CTA runs) x (tile area) / (tile efficiency): wave quantization of
// the persistent grid against the wider tiles' better reuse. Ties go to the lower index.
int pick_config(const ConfigInfo *info, int configs, int m, int n, int sms) {
    int best = 0;
    double best_cost = 0;
    for (int i = 0; i < configs; i++) {
        long tiles = (long)((m + info[i].bm - 1) / info[i].bm) * ((n + info[i].bn - 1) / info[i].bn);
        long per_cta = (tiles + sms - 1) / sms;
        double cost = (double)per_cta * info[i].bm * info[i].bn / info[i].eff;
        if (i == 0 || cost < best_cost) best = i, best_cost = cost;
    }
    return best;
}

template <class C, bool PEG>
int launch(const int8_t *a, const int8_t *b, int m, int n, int k, const Epilogue &ep, int dev, int sms, int max_ctas,
           cudaStream_t stream) {
    auto kernel = sm90::wgmma_gemm_kernel<C, PEG>;
    static bool smem_set[MAX_DEVICES];  // the > 48 KB opt-in, once per device (racing threads only repeat it)
    if (!smem_set[dev]) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
        if (e != cudaSuccess) return e;
        smem_set[dev] = true;
    }
    CUtensorMap map_a, map_b, map_c = {};
    if (!make_tensor_map(&map_a, a, m, k, C::BM, C::BK) || !make_tensor_map(&map_b, b, n, k, C::BN, C::BK) ||
        (C::STORE_BUFS > 0 && !sm90::make_output_map(&map_c, ep.dst, m, n)))
        return cudaErrorInvalidValue;
    long tiles = (long)((m + C::BM - 1) / C::BM) * ((n + C::BN - 1) / C::BN);
    if (tiles > 0x7fffffffL) return cudaErrorInvalidValue;
    long grid = tiles < sms ? tiles : sms;
    if (max_ctas > 0 && grid > max_ctas) grid = max_ctas;
    kernel<<<(unsigned)grid, C::THREADS, C::SMEM, stream>>>(map_a, map_b, map_c, m, n, k, ep);
    return cudaGetLastError();
}

// The PEG kernel of config P for the output type of `ep`.
template <class P>
int launch_peg(const int8_t *a, const int8_t *b, int m, int n, int k, const Epilogue &ep, int dev, int sms, int max_ctas,
               cudaStream_t s) {
    using sm90::PegConfig;
    switch (ep.out) {
    case OUT_F32: return launch<PegConfig<P::BN, P::STAGES, OUT_F32>, true>(a, b, m, n, k, ep, dev, sms, max_ctas, s);
    case OUT_F16: return launch<PegConfig<P::BN, P::STAGES, OUT_F16>, true>(a, b, m, n, k, ep, dev, sms, max_ctas, s);
    case OUT_S8: return launch<PegConfig<P::BN, P::STAGES, OUT_S8>, true>(a, b, m, n, k, ep, dev, sms, max_ctas, s);
    }
    return cudaErrorInvalidValue;
}

bool aligned(const void *p, unsigned bytes) { return ((uintptr_t)p & (bytes - 1)) == 0; }

bool operands_ok(const void *a, const void *b, int m, int n, int k) {
    return a && b && m > 0 && n > 0 && k > 0 && k % 16 == 0 && aligned(a, 16) && aligned(b, 16);
}

// The s32 output through shared memory and TMA stores (sm90::OutputStager): rows a multiple of 16 bytes, a 16-byte
// aligned start.
bool stageable(const Epilogue &ep, int n) {
    return QD_WGMMA_TMA_STORE && ep.out == OUT_S32 && n % 4 == 0 && aligned(ep.dst, 16);
}

bool f32_epilogue_ok(const float *x_scale, const float *w_scale, const float *residual, int n, int act, const float *y) {
    unsigned pair = (n % 2 == 0) ? 8 : 4;  // float2 accesses when N is even
    return x_scale && w_scale && y && aligned(y, pair) && (!residual || aligned(residual, pair)) && (act == 0 || act == 1);
}

template <bool STAGED>
int launch_config(int config, const int8_t *a, const int8_t *b, int m, int n, int k, const Epilogue &ep, int dev, int sms,
                  int max_ctas, cudaStream_t s) {
    switch (config) {
    case 0: return launch<C0<STAGED>, false>(a, b, m, n, k, ep, dev, sms, max_ctas, s);
    case 1: return launch<C1<STAGED>, false>(a, b, m, n, k, ep, dev, sms, max_ctas, s);
    case 2: return launch<C2<STAGED>, false>(a, b, m, n, k, ep, dev, sms, max_ctas, s);
    }
    return cudaErrorInvalidValue;
}

int dispatch(const int8_t *a, const int8_t *b, int m, int n, int k, const Epilogue &ep, int config, int max_ctas,
             cudaStream_t s) {
    if (config < -1 || config >= CONFIGS || max_ctas < 0) return cudaErrorInvalidValue;
    int dev = 0;
    DeviceInfo d = device_info(&dev);
    if (!d.sm90 || !encode_tiled_fn()) return cudaErrorNotSupported;
    if (config < 0) config = pick_config(INFO, CONFIGS, m, n, d.sms);
    return stageable(ep, n) ? launch_config<true>(config, a, b, m, n, k, ep, dev, d.sms, max_ctas, s)
                            : launch_config<false>(config, a, b, m, n, k, ep, dev, d.sms, max_ctas, s);
}

}  // namespace

namespace qd {
namespace i8 {
namespace sm90 {

int gemm_peg(const int8_t *a, const int8_t *b, int m, int n, int k, const Epilogue &ep_in, int config, int max_ctas,
             cudaStream_t s) {
    if (config < -1 || config >= PEG_CONFIGS || max_ctas < 0 || !operands_ok(a, b, m, n, k) || !ep_in.dst ||
        !ep_in.sx || !ep_in.sw || ep_in.groups <= 0 || ep_in.groups * ep_in.group_size != k ||
        (ep_in.out != OUT_F32 && ep_in.out != OUT_F16 && ep_in.out != OUT_S8))
        return cudaErrorInvalidValue;
    if (ep_in.group_size % 32 != 0) return cudaErrorNotSupported;  // a group must be whole wgmma K steps
    int dev = 0;
    DeviceInfo d = device_info(&dev);
    if (!d.sm90 || !encode_tiled_fn()) return cudaErrorNotSupported;
    // Paired stores and residual loads where N is even and the pointers allow them (int8.cu asks only for the
    // elements' own alignment).
    Epilogue ep = ep_in;
    const unsigned e = ep.out == OUT_F16 ? 2 : ep.out == OUT_S8 ? 1 : 4;
    ep.pairs = n % 2 == 0 && aligned(ep.dst, 2 * e) && (!ep.residual || aligned(ep.residual, 8));
    if (config < 0) config = pick_config(PEG_INFO, PEG_CONFIGS, m, n, d.sms);
    switch (config) {
    case 0: return launch_peg<P0>(a, b, m, n, k, ep, dev, d.sms, max_ctas, s);
    case 1: return launch_peg<P1>(a, b, m, n, k, ep, dev, d.sms, max_ctas, s);
    }
    return cudaErrorInvalidValue;
}

bool peg_config_info(int config, int *bn, int *stages) {
    if (config < 0 || config >= PEG_CONFIGS) return false;
    *bn = PEG_INFO[config].bn;
    *stages = PEG_INFO[config].stages;
    return true;
}

int peg_pick_config(int m, int n) {
    int dev = 0;
    DeviceInfo d = device_info(&dev);
    return pick_config(PEG_INFO, PEG_CONFIGS, m, n, d.sms > 0 ? d.sms : 132);
}

}  // namespace sm90
}  // namespace i8
}  // namespace qd

extern "C" {

int qd_i8_gemm_wgmma_supported(void) {
    int dev = 0;
    return device_info(&dev).sm90 && encode_tiled_fn() ? cudaSuccess : cudaErrorNotSupported;
}

int qd_i8_gemm_wgmma_config_info(int config, int *bm, int *bn, int *bk, int *stages) {
    if (config < 0 || config >= CONFIGS || !bm || !bn || !bk || !stages) return cudaErrorInvalidValue;
    *bm = INFO[config].bm;
    *bn = INFO[config].bn;
    *bk = INFO[config].bk;
    *stages = INFO[config].stages;
    return cudaSuccess;
}

int qd_i8_gemm_wgmma_pick_config(int m, int n, int k, int *config) {
    if (m <= 0 || n <= 0 || k <= 0 || !config) return cudaErrorInvalidValue;
    int dev = 0;
    DeviceInfo d = device_info(&dev);
    *config = pick_config(INFO, CONFIGS, m, n, d.sms > 0 ? d.sms : 132);
    return cudaSuccess;
}

int qd_i8_gemm_wgmma_s32_cfg(const signed char *a, const signed char *b, int m, int n, int k, int *c, int config,
                             int max_ctas, void *stream) {
    if (!operands_ok(a, b, m, n, k) || !c || !aligned(c, n % 2 == 0 ? 8 : 4)) return cudaErrorInvalidValue;
    Epilogue ep = {};
    ep.out = OUT_S32;
    ep.dst = c;
    return dispatch((const int8_t *)a, (const int8_t *)b, m, n, k, ep, config, max_ctas, (cudaStream_t)stream);
}

int qd_i8_gemm_wgmma_f32_cfg(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale,
                             int x_per_row, const float *w_scale, int w_per_col, const float *bias,
                             const float *residual, int act, float *y, int config, int max_ctas, void *stream) {
    if (!operands_ok(a, b, m, n, k) || !f32_epilogue_ok(x_scale, w_scale, residual, n, act, y))
        return cudaErrorInvalidValue;
    Epilogue ep = {};
    ep.out = OUT_F32;
    ep.dst = y;
    ep.sx = x_scale;
    ep.sx_per_row = x_per_row != 0;
    ep.sw = w_scale;
    ep.sw_per_col = w_per_col != 0;
    ep.bias = bias;
    ep.residual = residual;
    ep.act = act;
    return dispatch((const int8_t *)a, (const int8_t *)b, m, n, k, ep, config, max_ctas, (cudaStream_t)stream);
}

int qd_i8_gemm_wgmma_s32(const signed char *a, const signed char *b, int m, int n, int k, int *c, void *stream) {
    return qd_i8_gemm_wgmma_s32_cfg(a, b, m, n, k, c, -1, 0, stream);
}

int qd_i8_gemm_wgmma_f32(const signed char *a, const signed char *b, int m, int n, int k, const float *x_scale,
                         int x_per_row, const float *w_scale, int w_per_col, const float *bias, const float *residual,
                         int act, float *y, void *stream) {
    return qd_i8_gemm_wgmma_f32_cfg(a, b, m, n, k, x_scale, x_per_row, w_scale, w_per_col, bias, residual, act, y, -1,
                                    0, stream);
}

}  // extern "C"
