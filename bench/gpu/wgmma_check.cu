// Standalone correctness + speed harness for the Hopper wgmma s8 GEMM (native/int8_wgmma.cu), built and run
// by bench/gpu/wgmma-check.sh on an sm_90 GPU. No Java, no cuBLASLt headers: cuBLASLt is opened at run time.
//
//   0. a TMA probe: the shared-memory layout one box lands in (swizzle, zero fill), checked byte by byte.
//   1. exactness, small and ragged shapes: OUT_S32 bit-exact against a CPU int32 reference for every config,
//      with the full grid and with the persistent grid capped at 1 and 3 CTAs (many tiles per CTA, the stage
//      ring and the output staging boxes wrapping across tiles), and with the output 8 bytes off a 16-byte
//      boundary (the direct stores; so are N = 77 and 130, N % 4 != 0); the F32 epilogue (scales, bias, GELU, residual, in place) against a CPU
//      double reference within |got - ref| <= 1e-5 * max(|ref|, 1).
//   2. exactness, BERT shapes and 8192^3: the whole int32 output of every config against the mma.sync kernel
//      (qd_i8_gemm_s32) and against cuBLASLt, the mma.sync output itself spot-checked against the CPU; the
//      F32 epilogue against qd_i8_gemm_f32.
//   3. speed: CUDA events around each launch, after warm-up, median of RUNS launches rotating over SETS input
//      sets, all launches queued behind a 20 ms spin kernel (GPU time only, no host launch gaps): wgmma (auto config and each config), mma.sync (auto tile), cuBLASLt s8 TN -> s32, and the F32
//      epilogue with bias + GELU for wgmma and mma.sync.
//   PEG (per-embedding-group activation scales, sm90::gemm_peg; qd_i8_gemm_peg_* with the auto tile): part 1
//      on ragged shapes with 1-8 groups (FP32 / FP16 / s8 outputs, every PEG config, full grid and 1 CTA) against
//      a float64 reference from the exact int32 group sums (tolerance at peg_tolerance); the BERT shapes with 1,
//      4 and 6 groups against the mma.sync PEG and CPU points; speed: plain wgmma (int32 and FP32 output), PEG
//      wgmma (auto and each config) and mma.sync PEG, FP32 output with per-channel weight scales and bias.
// Outputs are poisoned (0x7f bytes; s8: 0x80) before every checked run. Prints a table last, writes
// $OUT/wgmma.json if OUT is set. Exit 0: all checks passed; 1: a mismatch; 2: not an sm_90 device; 3: a CUDA
// error or fault. Inputs: random s8 (never 0) from a fresh seed per run (QD_SEED=n repeats one), printed first.
// Flags: --quick (part 1 only), --memcheck (a subset of part 1, for compute-sanitizer), --racecheck (a smaller
// one), --no-bench (parts 1, 2).
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <library_types.h>
#include <stdint.h>
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <type_traits>
#include <vector>
#include "int8_gemm_wgmma.cuh"  // make_tensor_map and the PTX helpers, for the TMA probe
#include "qdrift.h"


static const int CONFIGS = 3, RUNS = 100, WARMUP = 10, SETS = 3;
static const uint32_t POISON = 0x7f7f7f7fu;

// ---- errors: a CUDA error (or a kernel fault, which kills the context) ends the run with exit 3 ----------
static char g_stage_buf[160] = "start";  // what was running, for the message
static const char *g_stage = g_stage_buf;
static void set_stage(const char *s) { snprintf(g_stage_buf, sizeof g_stage_buf, "%s", s); }
static void cuda_fail(const char *what, int e, const char *file, int line) {
    printf("\nCUDA ERROR during [%s]: %s -> %d (%s) at %s:%d\n", g_stage, what, e, cudaGetErrorString((cudaError_t)e),
           file, line);
    if (e == cudaErrorLaunchFailure || e == cudaErrorIllegalAddress || e == cudaErrorIllegalInstruction ||
        e == cudaErrorMisalignedAddress)
        printf("  (a kernel fault; with the watchdog build, a trap after a barrier wait of > 5 s means a pipeline "
               "deadlock)\n");
    printf("RESULT: FAIL (CUDA error)\n");
    fflush(stdout);
    exit(3);
}
#define CK(x)                                                  \
    do {                                                       \
        int e_ = (int)(x);                                     \
        if (e_ != 0) cuda_fail(#x, e_, __FILE__, __LINE__);    \
    } while (0)
// After a launch: the launch status, then the execution status.
#define CKL(x)                                    \
    do {                                          \
        CK(x);                                    \
        CK(cudaDeviceSynchronize());              \
    } while (0)

// ---- inputs: a hash of (seed, index), the same on host and device; values in -128..127, never 0 ---------
__host__ __device__ inline int8_t gen_s8(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    int v = (int)(z % 255);          // 0..254
    return (int8_t)(v < 128 ? v - 128 : v - 127);  // -128..-1, 1..127
}
__host__ __device__ inline float gen_unit(uint64_t seed, uint64_t i) {  // [0, 1)
    uint64_t z = seed * 0xD1B54A32D192ED03ull + i * 0x9E3779B97F4A7C15ull + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}
__global__ void fill_s8(int8_t *p, size_t n, uint64_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = gen_s8(seed, i);
}
__global__ void fill_f32(float *p, size_t n, uint64_t seed, float lo, float hi) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = lo + (hi - lo) * gen_unit(seed, i);
}
// Mismatch count and up to 8 mismatching indices (the first 8 found, not necessarily the lowest).
__global__ void cmp_i32(const int *got, const int *ref, size_t n, unsigned long long *res) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        if (got[i] != ref[i]) {
            unsigned long long c = atomicAdd(res, 1ull);
            if (c < 8) res[1 + c] = i;
        }
}
__device__ __host__ inline bool close_f32(float got, double ref) {
    return std::isfinite(got) && std::fabs((double)got - ref) <= 1e-5 * std::fmax(std::fabs(ref), 1.0);
}
__global__ void cmp_f32(const float *got, const float *ref, size_t n, unsigned long long *res) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        if (!close_f32(got[i], (double)ref[i])) {
            unsigned long long c = atomicAdd(res, 1ull);
            if (c < 8) res[1 + c] = i;
        }
}

template <class T>
static T *dalloc(size_t n) {
    void *p = nullptr;
    CK(cudaMalloc(&p, n * sizeof(T) + 16));
    return (T *)p;
}
static void dfill_s8(int8_t *p, size_t n, uint64_t seed) {
    fill_s8<<<1024, 256>>>(p, n, seed);
    CKL(cudaGetLastError());
}
static void dfill_f32(float *p, size_t n, uint64_t seed, float lo, float hi) {
    fill_f32<<<1024, 256>>>(p, n, seed, lo, hi);
    CKL(cudaGetLastError());
}

// ---- bookkeeping -------------------------------------------------------------------------------------------
static long g_checks = 0, g_failed = 0;
static std::vector<std::string> g_failures;
// Mismatch details: printed for the first 25 failing runs (the rest only counted), the first 16 lines kept
// for the summary so that they also show at the end of the output.
static int g_failing_runs = 0;
static std::vector<std::string> g_details;
static bool verbose() { return g_failing_runs < 25; }
static void detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void detail(const char *fmt, ...) {
    char buf[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (verbose()) fputs(buf, stdout);
    if (g_details.size() < 16) g_details.push_back(buf);
}
// The first failing int32 run's top-left corner as a map: '.' right, 'X' wrong, 'P' never written.
static bool g_map_printed = false;
static void mismatch_map(const std::vector<int> &got, const std::vector<int> &ref, int m, int n, const char *what) {
    if (g_map_printed) return;
    g_map_printed = true;
    const int rows = std::min(m, 32), cols = std::min(n, 64);
    printf("  map of %s, rows 0-%d x columns 0-%d ('.' right, 'X' wrong, 'P' never written):\n", what, rows - 1,
           cols - 1);
    for (int i = 0; i < rows; i++) {
        char line[80];
        for (int j = 0; j < cols; j++) {
            const size_t x = (size_t)i * n + j;
            line[j] = got[x] == ref[x] ? '.' : (uint32_t)got[x] == POISON ? 'P' : 'X';
        }
        line[cols] = 0;
        printf("    %3d %s\n", i, line);
    }
}
static void record(bool ok, const std::string &what) {
    g_checks++;
    if (!ok) {
        g_failed++;
        g_failing_runs++;
        if (g_failures.size() < 20) g_failures.push_back(what);
    }
}

static std::string join(const std::vector<int> &v) {
    std::string r;
    for (int x : v) r += (r.empty() ? "" : ",") + std::to_string(x);
    return r;
}

// ---- CPU references ------------------------------------------------------------------------------------------
static void cpu_gemm(const std::vector<int8_t> &a, const std::vector<int8_t> &b, int m, int n, int k,
                     std::vector<int> &c) {
    c.assign((size_t)m * n, 0);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            const int8_t *pa = &a[(size_t)i * k], *pb = &b[(size_t)j * k];
            int s = 0;
            for (int q = 0; q < k; q++) s += (int)pa[q] * (int)pb[q];
            c[(size_t)i * n + j] = s;
        }
}
static double gelu_d(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440)); }

// An F32 epilogue variant: which of the options it uses.
struct Variant {
    const char *name;
    int x_per_row, w_per_col, bias, residual, act, in_place;
};
static const Variant VARIANTS[] = {
    {"scalar scales", 0, 0, 0, 0, 0, 0},
    {"row x col scales + bias", 1, 1, 1, 0, 0, 0},
    {"row x col + bias + GELU", 1, 1, 1, 0, 1, 0},
    {"row x col + bias + GELU + residual", 1, 1, 1, 1, 1, 0},
    {"scalar x col + residual", 0, 1, 0, 1, 0, 0},
    {"row x scalar + bias + GELU + residual in place", 1, 0, 1, 1, 1, 1},
};
static const int NVARIANTS = sizeof(VARIANTS) / sizeof(VARIANTS[0]);

// Host scales for an m x n x k product: acc * sx * sw comes out of order 1.
struct Scales {
    std::vector<float> sx, sw, bias, res;
};
static Scales make_scales(int m, int n, int k, uint64_t seed) {
    Scales s;
    const float base = 1.0f / (5461.0f * std::sqrt((float)k));  // ~1 / std(acc)
    s.sx.resize(m);
    s.sw.resize(n);
    s.bias.resize(n);
    s.res.resize((size_t)m * n);
    for (int i = 0; i < m; i++) s.sx[i] = base * (0.5f + gen_unit(seed, i));
    for (int j = 0; j < n; j++) s.sw[j] = 0.5f + gen_unit(seed + 1, j);
    for (int j = 0; j < n; j++) s.bias[j] = gen_unit(seed + 2, j) - 0.5f;
    for (size_t i = 0; i < s.res.size(); i++) s.res[i] = 2.f * gen_unit(seed + 3, i) - 1.f;
    return s;
}
static double f32_ref(const Variant &v, const Scales &s, int acc, int i, int j, int n) {
    double a = (double)acc * s.sx[v.x_per_row ? i : 0] * s.sw[v.w_per_col ? j : 0];
    if (v.bias) a += s.bias[j];
    if (v.act) a = gelu_d(a);
    if (v.residual) a += s.res[(size_t)i * n + j];
    return a;
}

// ---- part 1: small and ragged shapes against the CPU -----------------------------------------------------------
// reduced: a subset for compute-sanitizer (every launch is slow there).
// tiny: one shape (racecheck; N % 4 == 0, so that the s32 output goes through the shared-memory staging boxes).
static void small_shapes(bool reduced, bool tiny) {
    const std::vector<int> Ms = tiny ? std::vector<int>{129} : reduced ? std::vector<int>{7, 129} : std::vector<int>{1, 7, 64, 129, 300};
    const std::vector<int> Ns = tiny ? std::vector<int>{76} : reduced ? std::vector<int>{24, 77} : std::vector<int>{8, 24, 77, 130, 200, 768};
    const std::vector<int> Ks = tiny ? std::vector<int>{1040} : reduced ? std::vector<int>{48, 1040} : std::vector<int>{16, 48, 768, 1040};
    const int caps[] = {0, 1, 3};  // persistent-grid caps: full, 1 CTA, 3 CTAs
    long runs = 0, f32_runs = 0;
    int shape_idx = 0;
    printf("\n== Part 1: small / ragged shapes vs CPU (M in {%s}, N in {%s}, K in {%s})\n", join(Ms).c_str(),
           join(Ns).c_str(), join(Ks).c_str());
    for (int m : Ms)
        for (int n : Ns)
            for (int k : Ks) {
                shape_idx++;
                char shape[64];
                snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
                set_stage(shape);
                const uint64_t seed = 1000 + shape_idx;
                std::vector<int8_t> ha((size_t)m * k), hb((size_t)n * k);
                for (size_t i = 0; i < ha.size(); i++) ha[i] = gen_s8(seed, i);
                for (size_t i = 0; i < hb.size(); i++) hb[i] = gen_s8(seed + 500, i);
                std::vector<int> ref;
                cpu_gemm(ha, hb, m, n, k, ref);
                int8_t *da = dalloc<int8_t>(ha.size()), *db = dalloc<int8_t>(hb.size());
                int *dc = dalloc<int>((size_t)m * n + 2);  // + 2: room for the shifted output
                CK(cudaMemcpy(da, ha.data(), ha.size(), cudaMemcpyHostToDevice));
                CK(cudaMemcpy(db, hb.data(), hb.size(), cudaMemcpyHostToDevice));
                std::vector<int> got((size_t)m * n);

                // OUT_S32: auto config, then every config x grid cap, then the auto config with the output 8 bytes
                // off a 16-byte boundary ("shifted": the direct stores instead of the staging boxes).
                for (int r = -1; r <= CONFIGS * 3; r++) {
                    const bool shifted = r == CONFIGS * 3;
                    const char *tag = shifted ? " shifted" : "";
                    const int cfg = r < 0 || shifted ? -1 : r / 3, cap = r < 0 || shifted ? 0 : caps[r % 3];
                    if (reduced && cap == 3) continue;
                    int *out = shifted ? dc + 2 : dc;
                    CK(cudaMemset(out, 0x7f, (size_t)m * n * sizeof(int)));
                    CKL(qd_i8_gemm_wgmma_s32_cfg((const signed char *)da, (const signed char *)db, m, n, k, out, cfg,
                                                 cap, nullptr));
                    CK(cudaMemcpy(got.data(), out, got.size() * sizeof(int), cudaMemcpyDeviceToHost));
                    long bad = 0, unwritten = 0;
                    for (size_t i = 0; i < got.size(); i++)
                        if (got[i] != ref[i]) {
                            if (bad < 5)
                                detail("  MISMATCH s32%s %s config %d cap %d: C[%zu][%zu] expected %d got %d%s\n", tag,
                                       shape, cfg, cap, i / n, i % n, ref[i], got[i],
                                       (uint32_t)got[i] == POISON ? " (never written)" : "");
                            bad++;
                            unwritten += (uint32_t)got[i] == POISON;
                        }
                    if (bad) {
                        detail("  FAIL s32%s %s config %d cap %d: %ld of %zu wrong (%ld never written)\n", tag, shape,
                               cfg, cap, bad, got.size(), unwritten);
                        char where[96];
                        snprintf(where, sizeof where, "s32%s %s config %d cap %d", tag, shape, cfg, cap);
                        mismatch_map(got, ref, m, n, where);
                    }
                    char what[128];
                    snprintf(what, sizeof what, "s32%s %s config %d cap %d: %ld wrong", tag, shape, cfg, cap, bad);
                    record(bad == 0, what);
                    runs++;
                }

                // OUT_F32: every variant with the auto config; the residual ones also per config with 1 CTA.
                Scales s = make_scales(m, n, k, seed + 7);
                float *dsx = dalloc<float>(m), *dsw = dalloc<float>(n), *dbias = dalloc<float>(n);
                float *dres = dalloc<float>((size_t)m * n), *dy = dalloc<float>((size_t)m * n);
                CK(cudaMemcpy(dsx, s.sx.data(), m * sizeof(float), cudaMemcpyHostToDevice));
                CK(cudaMemcpy(dsw, s.sw.data(), n * sizeof(float), cudaMemcpyHostToDevice));
                CK(cudaMemcpy(dbias, s.bias.data(), n * sizeof(float), cudaMemcpyHostToDevice));
                std::vector<float> goty((size_t)m * n);
                for (int vi = 0; vi < NVARIANTS; vi++)
                    for (int cfg = -1; cfg < CONFIGS; cfg++) {
                        const Variant &v = VARIANTS[vi];
                        if (cfg >= 0 && (!v.residual || reduced)) continue;
                        const int cap = cfg < 0 ? 0 : 1;
                        CK(cudaMemcpy(dres, s.res.data(), s.res.size() * sizeof(float), cudaMemcpyHostToDevice));
                        float *y = v.in_place ? dres : dy;
                        if (!v.in_place) CK(cudaMemset(dy, 0x7f, (size_t)m * n * sizeof(float)));
                        CKL(qd_i8_gemm_wgmma_f32_cfg((const signed char *)da, (const signed char *)db, m, n, k, dsx,
                                                     v.x_per_row, dsw, v.w_per_col, v.bias ? dbias : nullptr,
                                                     v.residual ? dres : nullptr, v.act, y, cfg, cap, nullptr));
                        CK(cudaMemcpy(goty.data(), y, goty.size() * sizeof(float), cudaMemcpyDeviceToHost));
                        long bad = 0;
                        double worst = 0;
                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < n; j++) {
                                const size_t idx = (size_t)i * n + j;
                                const double r = f32_ref(v, s, ref[idx], i, j, n);
                                const float g = goty[idx];
                                if (std::isfinite(g))
                                    worst = std::max(worst, std::fabs(g - r) / std::max(std::fabs(r), 1.0));
                                if (!close_f32(g, r)) {
                                    if (bad < 5)
                                        detail("  MISMATCH f32 %s [%s] config %d: y[%d][%d] expected %.9g got %.9g\n",
                                               shape, v.name, cfg, i, j, r, g);
                                    bad++;
                                }
                            }
                        if (bad)
                            detail("  FAIL f32 %s [%s] config %d: %ld of %zu out of tolerance (worst %.3g)\n", shape,
                                   v.name, cfg, bad, goty.size(), worst);
                        char what[160];
                        snprintf(what, sizeof what, "f32 %s [%s] config %d: %ld wrong", shape, v.name, cfg, bad);
                        record(bad == 0, what);
                        f32_runs++;
                    }
                CK(cudaFree(da));
                CK(cudaFree(db));
                CK(cudaFree(dc));
                CK(cudaFree(dsx));
                CK(cudaFree(dsw));
                CK(cudaFree(dbias));
                CK(cudaFree(dres));
                CK(cudaFree(dy));
            }
    printf("  %ld int32 runs and %ld F32 runs over %d shapes; failed so far: %ld\n", runs, f32_runs, shape_idx,
           g_failed);
}

// ---- TMA probe: one box through a tensor map made exactly as the launchers make theirs, the raw shared
// memory copied out. Checks the layout the wgmma descriptors assume: 16-byte chunk c of box row r holds
// logical chunk c ^ (r % 8) (128-byte swizzle), elements outside the matrix are zero.
__global__ void tma_probe(const __grid_constant__ CUtensorMap map, int x, int y, int bytes, uint8_t *out) {
#if defined(QD_WGMMA_SM90A)
    using namespace qd::i8;
    using namespace qd::i8::sm90;
    extern __shared__ uint8_t smem_raw[];
    __shared__ uint64_t bar_word;
    const uint32_t raw = smem_u32(smem_raw), base = (raw + 1023u) & ~1023u, bar = smem_u32(&bar_word);
    if (threadIdx.x == 0) {
        mbar_init(bar, 1);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        mbar_arrive_expect_tx(bar, bytes);
        tma_load_2d(base, &map, bar, x, y);
    }
    mbar_wait(bar, 0);
    const uint8_t *src = smem_raw + (base - raw);
    for (int i = threadIdx.x; i < bytes; i += blockDim.x) out[i] = src[i];
#endif
}
static void tma_probes() {
    set_stage("TMA probe");
    printf("\n== TMA probe (128-byte swizzle layout and zero fill, as the wgmma descriptors read it)\n");
    struct Probe {
        int rows, k, box_rows, x, y;
    } probes[] = {{100, 48, 128, 0, 0}, {300, 1040, 128, 1024, 256}, {200, 768, 256, 128, 0}, {4096, 768, 192, 640, 3904}};
    for (const Probe &p : probes) {
        std::vector<int8_t> h((size_t)p.rows * p.k);
        for (size_t i = 0; i < h.size(); i++) h[i] = gen_s8(31 + p.rows, i);
        int8_t *d = dalloc<int8_t>(h.size());
        const int bytes = p.box_rows * 128;
        uint8_t *dout = dalloc<uint8_t>(bytes);
        CK(cudaMemcpy(d, h.data(), h.size(), cudaMemcpyHostToDevice));
        CK(cudaMemset(dout, 0x5a, bytes));
        CUtensorMap map;
        if (!qd::i8::sm90::make_tensor_map(&map, d, p.rows, p.k, p.box_rows, 128)) {
            printf("  make_tensor_map refused %dx%d box %d\n", p.rows, p.k, p.box_rows);
            record(false, "TMA probe: make_tensor_map refused");
            continue;
        }
        tma_probe<<<1, 128, bytes + 1024>>>(map, p.x, p.y, bytes, dout);
        CKL(cudaGetLastError());
        std::vector<uint8_t> got(bytes);
        CK(cudaMemcpy(got.data(), dout, bytes, cudaMemcpyDeviceToHost));
        long bad = 0;
        for (int r = 0; r < p.box_rows; r++)
            for (int c = 0; c < 8; c++)
                for (int b = 0; b < 16; b++) {
                    const int row = p.y + r, col = p.x + 16 * (c ^ (r & 7)) + b;
                    const int8_t want = row < p.rows && col < p.k ? h[(size_t)row * p.k + col] : 0;
                    const int8_t g = (int8_t)got[r * 128 + c * 16 + b];
                    if (g != want) {
                        if (bad < 4)
                            detail("  MISMATCH TMA probe %dx%d box %d at (k %d, row %d): smem row %d chunk %d byte %d: "
                                   "expected %d got %d\n", p.rows, p.k, p.box_rows, p.x, p.y, r, c, b, want, g);
                        bad++;
                    }
                }
        printf("  %4d x %4d, box %3d x 128 at (k %4d, row %4d): %s\n", p.rows, p.k, p.box_rows, p.x, p.y,
               bad ? "WRONG" : "as expected");
        char what[96];
        snprintf(what, sizeof what, "TMA probe %dx%d box %d: %ld bytes wrong", p.rows, p.k, p.box_rows, bad);
        record(bad == 0, what);
        CK(cudaFree(d));
        CK(cudaFree(dout));
    }
}

// ---- argument checks: unsupported input is refused (non-zero status), never launched ---------------------------
static void argument_checks() {
    set_stage("argument checks");
    printf("\n== Argument checks (each must be refused)\n");
    int8_t *a = dalloc<int8_t>(64 * 64), *b = dalloc<int8_t>(64 * 64);
    int *c = dalloc<int>(64 * 64);
    float *f = dalloc<float>(64 * 64);
    struct Case {
        const char *name;
        int status;
    } cases[] = {
        {"k % 16 != 0 (k = 40)", qd_i8_gemm_wgmma_s32((const signed char *)a, (const signed char *)b, 64, 64, 40, c, nullptr)},
        {"a not 16-byte aligned", qd_i8_gemm_wgmma_s32((const signed char *)a + 8, (const signed char *)b, 64, 64, 32, c, nullptr)},
        {"m = 0", qd_i8_gemm_wgmma_s32((const signed char *)a, (const signed char *)b, 0, 64, 32, c, nullptr)},
        {"c misaligned for even n", qd_i8_gemm_wgmma_s32((const signed char *)a, (const signed char *)b, 64, 64, 32, c + 1, nullptr)},
        {"config 3", qd_i8_gemm_wgmma_s32_cfg((const signed char *)a, (const signed char *)b, 64, 64, 32, c, 3, 0, nullptr)},
        {"f32 act 2", qd_i8_gemm_wgmma_f32((const signed char *)a, (const signed char *)b, 64, 64, 32, f, 0, f, 0, nullptr, nullptr, 2, f, nullptr)},
        {"f32 x_scale NULL", qd_i8_gemm_wgmma_f32((const signed char *)a, (const signed char *)b, 64, 64, 32, nullptr, 0, f, 0, nullptr, nullptr, 0, f, nullptr)},
    };
    for (const Case &cs : cases) {
        printf("  %-28s -> %d (%s)\n", cs.name, cs.status, cudaGetErrorString((cudaError_t)cs.status));
        record(cs.status != 0, std::string("argument check not refused: ") + cs.name);
    }
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    CK(cudaFree(a));
    CK(cudaFree(b));
    CK(cudaFree(c));
    CK(cudaFree(f));
}

// ---- cuBLASLt, opened at run time ---------------------------------------------------------------------------------
struct LtAlgo {
    uint64_t data[8];
};
struct LtHeuristic {
    LtAlgo algo;
    size_t workspaceSize;
    int state;
    float wavesCount;
    int reserved[4];
};
struct Lt {
    typedef int (*Create)(void **);
    typedef int (*DescCreate)(void **, int, int);
    typedef int (*DescSet)(void *, int, const void *, size_t);
    typedef int (*LayoutCreate)(void **, int, uint64_t, uint64_t, int64_t);
    typedef int (*PrefCreate)(void **);
    typedef int (*PrefSet)(void *, int, const void *, size_t);
    typedef int (*Heuristic)(void *, void *, void *, void *, void *, void *, void *, int, LtHeuristic *, int *);
    typedef int (*Matmul)(void *, void *, const void *, const void *, void *, const void *, void *, const void *,
                          const void *, void *, void *, void *, const LtAlgo *, void *, size_t, cudaStream_t);
    typedef int (*Destroy)(void *);
    Create create = nullptr;
    DescCreate desc_create = nullptr;
    DescSet desc_set = nullptr;
    LayoutCreate layout_create = nullptr;
    PrefCreate pref_create = nullptr;
    PrefSet pref_set = nullptr;
    Heuristic heuristic = nullptr;
    Matmul matmul = nullptr;
    Destroy desc_destroy = nullptr, layout_destroy = nullptr, pref_destroy = nullptr;
    void *handle = nullptr, *workspace = nullptr;
    size_t workspace_bytes = 32u << 20;
    std::string why;
    bool open() {
        const char *names[] = {"libcublasLt.so.13", "libcublasLt.so", "libcublasLt.so.12"};
        void *lib = nullptr;
        for (const char *nm : names)
            if ((lib = dlopen(nm, RTLD_NOW | RTLD_LOCAL))) {
                printf("  cuBLASLt: %s\n", nm);
                break;
            }
        if (!lib) {
            why = "libcublasLt not found by dlopen";
            return false;
        }
#define SYM(var, T, name)                                  \
    if (!(var = (T)dlsym(lib, name))) {                    \
        why = std::string("libcublasLt lacks ") + name;    \
        return false;                                      \
    }
        SYM(create, Create, "cublasLtCreate");
        SYM(desc_create, DescCreate, "cublasLtMatmulDescCreate");
        SYM(desc_set, DescSet, "cublasLtMatmulDescSetAttribute");
        SYM(layout_create, LayoutCreate, "cublasLtMatrixLayoutCreate");
        SYM(pref_create, PrefCreate, "cublasLtMatmulPreferenceCreate");
        SYM(pref_set, PrefSet, "cublasLtMatmulPreferenceSetAttribute");
        SYM(heuristic, Heuristic, "cublasLtMatmulAlgoGetHeuristic");
        SYM(matmul, Matmul, "cublasLtMatmul");
        SYM(desc_destroy, Destroy, "cublasLtMatmulDescDestroy");
        SYM(layout_destroy, Destroy, "cublasLtMatrixLayoutDestroy");
        SYM(pref_destroy, Destroy, "cublasLtMatmulPreferenceDestroy");
#undef SYM
        if (create(&handle) != 0) {
            why = "cublasLtCreate failed";
            return false;
        }
        CK(cudaMalloc(&workspace, workspace_bytes));
        return true;
    }
    // Row-major c[m,n] = sum_k a[m,k] b[n,k] is, column-major, c^T (n x m, ld n) = op_T(b: k x n, ld k) *
    // op_N(a: k x m, ld k): cuBLASLt's "TN" int8 product, compute type 32I, int32 alpha 1, beta 0.
    struct Plan {
        void *desc = nullptr, *la = nullptr, *lb = nullptr, *lc = nullptr;
        LtHeuristic h{};
        bool ok = false;
    };
    Plan plan(int m, int n, int k) {
        const int COMPUTE_32I = 72, DESC_TRANSA = 3, DESC_TRANSB = 4, PREF_MAX_WORKSPACE = 1, OP_N = 0, OP_T = 1;
        Plan p;
        if (desc_create(&p.desc, COMPUTE_32I, CUDA_R_32I) != 0) return p;
        desc_set(p.desc, DESC_TRANSA, &OP_T, sizeof(int));
        desc_set(p.desc, DESC_TRANSB, &OP_N, sizeof(int));
        if (layout_create(&p.la, CUDA_R_8I, k, n, k) != 0 || layout_create(&p.lb, CUDA_R_8I, k, m, k) != 0 ||
            layout_create(&p.lc, CUDA_R_32I, n, m, n) != 0)
            return p;
        void *pref = nullptr;
        if (pref_create(&pref) != 0) return p;
        uint64_t ws = workspace_bytes;
        pref_set(pref, PREF_MAX_WORKSPACE, &ws, sizeof ws);
        int found = 0;
        int st = heuristic(handle, p.desc, p.la, p.lb, p.lc, p.lc, pref, 1, &p.h, &found);
        pref_destroy(pref);
        p.ok = st == 0 && found > 0;
        return p;
    }
    int run(const Plan &p, const int8_t *a, const int8_t *b, int *c) {
        const int one = 1, zero = 0;
        return matmul(handle, p.desc, &one, b, p.la, a, p.lb, &zero, c, p.lc, c, p.lc, &p.h.algo, workspace,
                      workspace_bytes, nullptr);
    }
    void release(Plan &p) {
        if (p.la) layout_destroy(p.la);
        if (p.lb) layout_destroy(p.lb);
        if (p.lc) layout_destroy(p.lc);
        if (p.desc) desc_destroy(p.desc);
        p = Plan();
    }
};
static Lt g_lt;
static bool g_have_lt = false;

// ---- part 2 + 3: the big shapes ------------------------------------------------------------------------------------
struct Shape {
    int m, n, k;
};
static const Shape BIG[] = {{4096, 768, 768}, {4096, 3072, 768}, {4096, 768, 3072}, {16384, 3072, 768}, {8192, 8192, 8192}};
static const int NBIG = sizeof(BIG) / sizeof(BIG[0]);

struct Timing {
    double med_us = 0, min_us = 0;
};
struct Row {
    Shape s;
    int auto_cfg = -1, mma_tile = -1;
    Timing wg, wg_cfg[CONFIGS], mma, lt, wg_f32, mma_f32;
    bool lt_ok = false;
};

static unsigned long long *g_cmp = nullptr;  // device: count + 8 indices

// Compare two device outputs, int32 exactly or FP32 within close_f32; on mismatch print up to 8 positions with both
// values (an int32 still holding the poison was never written).
template <class T>
static long compare(const T *got, const T *ref, int m, int n, const char *what) {
    constexpr bool exact = std::is_same<T, int>::value;
    const size_t total = (size_t)m * n;
    CK(cudaMemset(g_cmp, 0, 9 * sizeof(unsigned long long)));
    if constexpr (exact) cmp_i32<<<2048, 256>>>(got, ref, total, g_cmp);
    else cmp_f32<<<2048, 256>>>(got, ref, total, g_cmp);
    CKL(cudaGetLastError());
    unsigned long long h[9];
    CK(cudaMemcpy(h, g_cmp, sizeof h, cudaMemcpyDeviceToHost));
    if (h[0]) {
        detail("  FAIL %s: %llu of %zu %s\n", what, h[0], total, exact ? "int32 differ" : "floats out of tolerance");
        for (unsigned long long i = 0; i < std::min(h[0], 8ull); i++) {
            T g, r;
            CK(cudaMemcpy(&g, got + h[1 + i], sizeof(T), cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(&r, ref + h[1 + i], sizeof(T), cudaMemcpyDeviceToHost));
            if constexpr (exact)
                detail("    C[%llu][%llu]: expected %d got %d%s\n", h[1 + i] / n, h[1 + i] % n, r, g,
                       (uint32_t)g == POISON ? " (never written)" : "");
            else
                detail("    y[%llu][%llu]: reference %.9g got %.9g\n", h[1 + i] / n, h[1 + i] % n, r, g);
        }
    }
    return (long)h[0];
}

// Holds the stream for `ns` nanoseconds, so that the host queues every timed launch before the first runs:
// the events then time the GPU's work alone, not the host's launch rate (short kernels would otherwise
// include the launchers' host time, tensor-map encoding among it).
__global__ void spin_ns(unsigned long long ns) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    } while (t - t0 < ns);
}

// Median / min over RUNS launches of fn(set), each between its own pair of events, sets rotating.
template <class F>
static Timing time_it(F fn) {
    for (int i = 0; i < WARMUP; i++) CK(fn(i % SETS));
    CK(cudaDeviceSynchronize());
    std::vector<cudaEvent_t> ev(2 * RUNS);
    for (auto &e : ev) CK(cudaEventCreate(&e));
    spin_ns<<<1, 1>>>(20000000ull);
    CK(cudaGetLastError());
    for (int i = 0; i < RUNS; i++) {
        CK(cudaEventRecord(ev[2 * i]));
        CK(fn(i % SETS));
        CK(cudaEventRecord(ev[2 * i + 1]));
    }
    CK(cudaDeviceSynchronize());
    std::vector<double> us(RUNS);
    for (int i = 0; i < RUNS; i++) {
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
        us[i] = ms * 1000.0;
    }
    for (auto &e : ev) CK(cudaEventDestroy(e));
    std::sort(us.begin(), us.end());
    Timing t;
    t.med_us = us[RUNS / 2];
    t.min_us = us[0];
    return t;
}
// The issue's cuBLASLt INT8 TN anchors on the H100 (TOPS), for the wg/anc column; 0 where none.
static double lt_anchor(const Shape &s) {
    if (s.m == 4096 && s.n == 768 && s.k == 768) return 416;
    if (s.m == 4096 && s.n == 3072 && s.k == 768) return 621;
    if (s.m == 4096 && s.n == 768 && s.k == 3072) return 862;
    if (s.m == 16384 && s.n == 3072 && s.k == 768) return 879;
    return 0;
}
static double tops(const Shape &s, const Timing &t) { return t.med_us > 0 ? 2.0 * s.m * s.n * s.k / (t.med_us * 1e6) : 0; }

static void big_shape(Row &row, bool bench) {
    const Shape s = row.s;
    const int m = s.m, n = s.n, k = s.k;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
    set_stage(shape);
    const size_t mk = (size_t)m * k, nk = (size_t)n * k, mn = (size_t)m * n;
    int8_t *A[SETS], *B[SETS];
    int *C[SETS];
    float *Y[SETS];
    for (int i = 0; i < SETS; i++) {
        A[i] = dalloc<int8_t>(mk);
        B[i] = dalloc<int8_t>(nk);
        C[i] = dalloc<int>(mn);
        Y[i] = bench ? dalloc<float>(mn) : nullptr;
        dfill_s8(A[i], mk, 7000 + 10 * i + m + k);
        dfill_s8(B[i], nk, 9000 + 10 * i + n + 3 * k);
    }
    int *ref = dalloc<int>(mn);
    float *sx = dalloc<float>(m), *sw = dalloc<float>(n), *bias = dalloc<float>(n);
    const float base = 1.0f / (5461.0f * std::sqrt((float)k));
    dfill_f32(sx, m, 11, 0.5f * base, 1.5f * base);
    dfill_f32(sw, n, 12, 0.5f, 1.5f);
    dfill_f32(bias, n, 13, -0.5f, 0.5f);
    qd_i8_gemm_wgmma_pick_config(m, n, k, &row.auto_cfg);
    qd_i8_gemm_pick_tile(m, n, k, 0, &row.mma_tile);
    printf("\n== %s: wgmma auto config %d, mma.sync auto tile %d\n", shape, row.auto_cfg, row.mma_tile);

    // Reference: the mma.sync kernel, itself spot-checked against the CPU (corners, edges, random elements).
    CK(cudaMemset(ref, 0x7f, mn * 4));
    CKL(qd_i8_gemm_s32((const signed char *)A[0], (const signed char *)B[0], m, n, k, ref, -1, nullptr));
    {
        const uint64_t sa = 7000 + m + k, sb = 9000 + n + 3 * k;
        std::vector<std::pair<int, int>> pts = {{0, 0}, {0, n - 1}, {m - 1, 0}, {m - 1, n - 1}, {m / 2, n / 2}};
        for (int i = 0; i < 256; i++)
            pts.push_back({(int)(gen_unit(77, 2 * i) * m), (int)(gen_unit(77, 2 * i + 1) * n)});
        long bad = 0;
        for (auto [i, j] : pts) {
            long sum = 0;
            for (int q = 0; q < k; q++) sum += (long)gen_s8(sa, (size_t)i * k + q) * gen_s8(sb, (size_t)j * k + q);
            int g;
            CK(cudaMemcpy(&g, ref + (size_t)i * n + j, 4, cudaMemcpyDeviceToHost));
            if (g != (int)sum) {
                if (bad < 5) printf("  FAIL mma.sync reference C[%d][%d]: CPU %ld, mma.sync %d\n", i, j, sum, g);
                bad++;
            }
        }
        printf("  mma.sync reference vs CPU at %zu points: %ld wrong\n", pts.size(), bad);
        record(bad == 0, std::string("mma.sync reference vs CPU ") + shape);
    }
    // Every wgmma config, whole output vs the reference.
    for (int cfg = -1; cfg < CONFIGS; cfg++) {
        CK(cudaMemset(C[0], 0x7f, mn * 4));
        CKL(qd_i8_gemm_wgmma_s32_cfg((const signed char *)A[0], (const signed char *)B[0], m, n, k, C[0], cfg, 0, nullptr));
        char what[96];
        snprintf(what, sizeof what, "wgmma config %d vs mma.sync, %s", cfg, shape);
        long bad = compare(C[0], ref, m, n, what);
        printf("  %-44s %s\n", what, bad ? "MISMATCH" : "identical");
        record(bad == 0, what);
    }
    // cuBLASLt's output against the same reference (checks our cuBLASLt setup before we time it).
    Lt::Plan plan;
    if (g_have_lt) {
        plan = g_lt.plan(m, n, k);
        row.lt_ok = plan.ok;
        if (plan.ok) {
            CK(cudaMemset(C[0], 0x7f, mn * 4));
            int st = g_lt.run(plan, A[0], B[0], C[0]);
            CK(cudaDeviceSynchronize());
            if (st != 0) {
                printf("  cuBLASLt matmul status %d: no cuBLASLt column\n", st);
                row.lt_ok = false;
            } else {
                char what[96];
                snprintf(what, sizeof what, "cuBLASLt vs mma.sync, %s", shape);
                long bad = compare(C[0], ref, m, n, what);
                printf("  %-44s %s (waves %.2f)\n", what, bad ? "MISMATCH" : "identical", plan.h.wavesCount);
                record(bad == 0, what);
            }
        } else {
            printf("  cuBLASLt: no algorithm for this shape\n");
        }
    }
    // F32 epilogue vs the mma.sync kernel's: bias + GELU (row x col scales); residual in place at K = 3072.
    {
        const bool in_place = k >= 3072;
        float *res = dalloc<float>(mn), *y1 = dalloc<float>(mn), *y2 = dalloc<float>(mn);
        dfill_f32(res, mn, 14, -1.f, 1.f);
        if (in_place) {
            CK(cudaMemcpy(y1, res, mn * 4, cudaMemcpyDeviceToDevice));
            CK(cudaMemcpy(y2, res, mn * 4, cudaMemcpyDeviceToDevice));
        } else {
            CK(cudaMemset(y1, 0x7f, mn * 4));
            CK(cudaMemset(y2, 0x7f, mn * 4));
        }
        CKL(qd_i8_gemm_f32((const signed char *)A[0], (const signed char *)B[0], m, n, k, sx, 1, sw, 1, bias,
                           in_place ? y2 : nullptr, 1, y2, -1, nullptr));
        CKL(qd_i8_gemm_wgmma_f32((const signed char *)A[0], (const signed char *)B[0], m, n, k, sx, 1, sw, 1, bias,
                                 in_place ? y1 : nullptr, 1, y1, nullptr));
        char what[128];
        snprintf(what, sizeof what, "wgmma f32 (bias+GELU%s) vs mma.sync f32, %s", in_place ? "+residual in place" : "",
                 shape);
        long bad = compare(y1, y2, m, n, what);
        printf("  %-44s %s\n", what, bad ? "OUT OF TOLERANCE" : "within 1e-5");
        record(bad == 0, what);
        CK(cudaFree(res));
        CK(cudaFree(y1));
        CK(cudaFree(y2));
    }

    if (bench) {
        set_stage((std::string("timing ") + shape).c_str());
        auto sc = [](const void *p) { return (const signed char *)p; };
        row.wg = time_it([&](int i) { return qd_i8_gemm_wgmma_s32(sc(A[i]), sc(B[i]), m, n, k, C[i], nullptr); });
        for (int cfg = 0; cfg < CONFIGS; cfg++)
            row.wg_cfg[cfg] = time_it(
                [&](int i) { return qd_i8_gemm_wgmma_s32_cfg(sc(A[i]), sc(B[i]), m, n, k, C[i], cfg, 0, nullptr); });
        row.mma = time_it([&](int i) { return qd_i8_gemm_s32(sc(A[i]), sc(B[i]), m, n, k, C[i], -1, nullptr); });
        if (row.lt_ok) row.lt = time_it([&](int i) { return g_lt.run(plan, A[i], B[i], C[i]); });
        row.wg_f32 = time_it([&](int i) {
            return qd_i8_gemm_wgmma_f32(sc(A[i]), sc(B[i]), m, n, k, sx, 1, sw, 1, bias, nullptr, 1, Y[i], nullptr);
        });
        row.mma_f32 = time_it([&](int i) {
            return qd_i8_gemm_f32(sc(A[i]), sc(B[i]), m, n, k, sx, 1, sw, 1, bias, nullptr, 1, Y[i], -1, nullptr);
        });
        printf("  us (median of %d, min): wgmma %.1f (%.1f)  cfg0 %.1f  cfg1 %.1f  cfg2 %.1f  mma.sync %.1f (%.1f)  "
               "cuBLASLt %.1f (%.1f)  f32+GELU: wgmma %.1f  mma.sync %.1f\n",
               RUNS, row.wg.med_us, row.wg.min_us, row.wg_cfg[0].med_us, row.wg_cfg[1].med_us, row.wg_cfg[2].med_us,
               row.mma.med_us, row.mma.min_us, row.lt.med_us, row.lt.min_us, row.wg_f32.med_us, row.mma_f32.med_us);
    }
    if (g_have_lt) g_lt.release(plan);
    for (int i = 0; i < SETS; i++) {
        CK(cudaFree(A[i]));
        CK(cudaFree(B[i]));
        CK(cudaFree(C[i]));
        if (Y[i]) CK(cudaFree(Y[i]));
    }
    CK(cudaFree(ref));
    CK(cudaFree(sx));
    CK(cudaFree(sw));
    CK(cudaFree(bias));
}

// ---- PEG (per-embedding-group activation scales) on wgmma --------------------------------------------------------
// sm90::gemm_peg directly (every config, grid caps) and through qd_i8_gemm_peg_* with the auto tile (-1), which runs
// it on sm_90 where the group width is a multiple of 32; the mma.sync PEG is qd_i8_gemm_peg_* with a tile forced.
//
// Reference: the int32 group sums are exact, so y = act(sw * sum_g s_g acc_g + bias) + residual is computed in
// float64 from them. The kernel's FP32 result carries its own roundings: the G fmas of the fold, each within 2^-24
// of the running sum, itself at most sum_g |s_g acc_g| (the conversions are exact for |acc_g| < 2^24, true here),
// then the roundings of the scale, bias, GELU (erff within 2 ulp, slope <= 1.13) and residual. Hence
//   |got - ref| <= (G + 8) * 2^-23 * (|sw| sum_g |s_g acc_g| + |bias| + |residual|)
// (about (G + 2) * 1.13 + 6 roundings of 2^-24, doubled for slack). FP16 adds its own rounding (2^-11 |ref|, and
// 2^-25 for subnormals); an s8 output q must be clamp(rint(y / out_scale)) for some y within the FP32 bound.
static double peg_tolerance(int groups, double mag) { return (groups + 8) * 0x1p-23 * mag; }

static uint64_t g_seed;  // fresh per run; QD_SEED repeats one

static qd::i8::Epilogue peg_epilogue(int out, void *y, const float *gs, int groups, int k, const float *sw, int w_per_col,
                                     const float *bias, const float *res, int act, float out_scale) {
    qd::i8::Epilogue ep = {};
    ep.out = out;
    ep.dst = y;
    ep.sx = gs;
    ep.sw = sw;
    ep.sw_per_col = w_per_col;
    ep.bias = bias;
    ep.residual = res;
    ep.act = act;
    ep.out_scale = out == qd::i8::OUT_S8 ? out_scale : 1.f;
    ep.groups = groups;
    ep.group_size = k / groups;
    return ep;
}
// The public entry point of output `out` (tile -1: the wgmma PEG on sm_90; >= 0: that mma.sync tile).
static int peg_public(int out, const int8_t *a, const int8_t *b, int m, int n, int k, int groups, const float *gs,
                      const float *sw, int w_per_col, const float *bias, const float *res, int act, float out_scale,
                      void *y, int tile) {
    const signed char *sa = (const signed char *)a, *sb = (const signed char *)b;
    if (out == qd::i8::OUT_F16)
        return qd_i8_gemm_peg_f16(sa, sb, m, n, k, groups, gs, sw, w_per_col, bias, res, act, (unsigned short *)y, tile, nullptr);
    if (out == qd::i8::OUT_S8)
        return qd_i8_gemm_peg_s8(sa, sb, m, n, k, groups, gs, sw, w_per_col, bias, res, act, out_scale, (signed char *)y,
                                 tile, nullptr);
    return qd_i8_gemm_peg_f32(sa, sb, m, n, k, groups, gs, sw, w_per_col, bias, res, act, (float *)y, tile, nullptr);
}

struct PegVariant {
    const char *name;
    int out, w_per_col, bias, residual, act, in_place;
    int cfg, cap;  // cfg -1: qd_i8_gemm_peg_* with the auto tile; >= 0: sm90::gemm_peg with that config and grid cap
};
static const PegVariant PEG_VARIANTS[] = {
    {"f32 col+bias", qd::i8::OUT_F32, 1, 1, 0, 0, 0, -1, 0},
    {"f32 col+bias", qd::i8::OUT_F32, 1, 1, 0, 0, 0, 0, 0},
    {"f32 col+bias", qd::i8::OUT_F32, 1, 1, 0, 0, 0, 0, 1},
    {"f32 col+bias", qd::i8::OUT_F32, 1, 1, 0, 0, 0, 1, 0},
    {"f32 col+bias", qd::i8::OUT_F32, 1, 1, 0, 0, 0, 1, 1},
    {"f32 scalar", qd::i8::OUT_F32, 0, 0, 0, 0, 0, -1, 0},
    {"f32 col+bias+GELU+residual", qd::i8::OUT_F32, 1, 1, 1, 1, 0, -1, 0},
    {"f32 scalar+bias+GELU+residual in place", qd::i8::OUT_F32, 0, 1, 1, 1, 1, 1, 1},
    {"f16 col+bias+GELU", qd::i8::OUT_F16, 1, 1, 0, 1, 0, -1, 0},
    {"f16 col+bias+residual", qd::i8::OUT_F16, 1, 1, 1, 0, 0, 0, 1},
    {"s8 col+bias+GELU", qd::i8::OUT_S8, 1, 1, 0, 1, 0, -1, 0},
    {"s8 col+residual", qd::i8::OUT_S8, 1, 0, 1, 0, 0, 1, 1},
};

// One output element against the float64 reference: ref before the output conversion, mag its error scale.
static bool peg_close(int out, double got, double ref, double tol, float out_scale) {
    if (out == qd::i8::OUT_S8) {
        auto q = [&](double y) { return std::fmin(127.0, std::fmax(-127.0, std::nearbyint(y / out_scale))); };
        const double slack = tol + 0x1p-22 * std::fabs(ref);  // y / out_scale: one more FP32 rounding
        return got >= q(ref - slack) && got <= q(ref + slack);
    }
    if (out == qd::i8::OUT_F16) tol += 0x1p-11 * std::fabs(ref) + 0x1p-25;
    return std::isfinite(got) && std::fabs(got - ref) <= tol;
}

// (K, groups): widths 32 .. 768, a multiple of the 128-byte slice or not (a slice split by group boundaries), K past
// the last whole slice (480, 224, 576), groups 1 .. 8; widths > 256 take the wide conversion.
struct PegCase {
    int k, groups;
};
static const PegCase PEG_CASES[] = {{32, 1}, {64, 2}, {1536, 3}, {768, 4}, {480, 5}, {768, 6},
                                    {224, 7}, {2048, 8}, {3072, 4}, {576, 3}};

// level 0: all; 1: compute-sanitizer memcheck subset; 2: racecheck subset.
static void peg_small_shapes(int level) {
    using namespace qd::i8;
    const std::vector<int> Ms = level == 2 ? std::vector<int>{129} : level ? std::vector<int>{7, 129} : std::vector<int>{1, 7, 129, 300};
    const std::vector<int> Ns = level ? std::vector<int>{77} : std::vector<int>{24, 77, 520};
    std::vector<PegCase> cases(PEG_CASES, PEG_CASES + sizeof(PEG_CASES) / sizeof(PEG_CASES[0]));
    if (level == 1) cases = {{480, 5}, {768, 4}, {1536, 3}};
    if (level == 2) cases = {{768, 4}};
    printf("\n== PEG part 1: ragged shapes vs a float64 reference from the int32 group sums (M in {%s}, N in {%s}, "
           "(K, groups) in {", join(Ms).c_str(), join(Ns).c_str());
    for (size_t i = 0; i < cases.size(); i++) printf("%s(%d,%d)", i ? "," : "", cases[i].k, cases[i].groups);
    printf("})\n");

    // Group widths that are not whole wgmma K steps go to the mma.sync PEG: gemm_peg says so, the entry point works.
    {
        set_stage("PEG width 48");
        const int m = 33, n = 40, k = 96, groups = 2;
        int8_t *a = dalloc<int8_t>(m * k), *b = dalloc<int8_t>(n * k);
        float *gs = dalloc<float>(groups), *sw = dalloc<float>(1), *y = dalloc<float>(m * n);
        dfill_s8(a, m * k, g_seed + 11);
        dfill_s8(b, n * k, g_seed + 12);
        dfill_f32(gs, groups, g_seed + 13, 1e-4f, 2e-4f);
        dfill_f32(sw, 1, g_seed + 14, 0.5f, 1.5f);
        Epilogue ep = peg_epilogue(OUT_F32, y, gs, groups, k, sw, 0, nullptr, nullptr, 0, 1.f);
        const int st = sm90::gemm_peg(a, b, m, n, k, ep, -1, 0, nullptr);
        const int pub = qd_i8_gemm_peg_f32((const signed char *)a, (const signed char *)b, m, n, k, groups, gs, sw, 0,
                                           nullptr, nullptr, 0, y, -1, nullptr);
        CK(cudaDeviceSynchronize());
        printf("  group width 48: sm90::gemm_peg -> %d (want %d, not supported), qd_i8_gemm_peg_f32 -> %d (want 0)\n", st,
               (int)cudaErrorNotSupported, pub);
        record(st == cudaErrorNotSupported && pub == 0, "PEG group width 48: not routed to the mma.sync PEG");
        CK(cudaFree(a));
        CK(cudaFree(b));
        CK(cudaFree(gs));
        CK(cudaFree(sw));
        CK(cudaFree(y));
    }

    long runs = 0;
    int shape_idx = 0;
    for (int m : Ms)
        for (int n : Ns)
            for (const PegCase &pc : cases) {
                const int k = pc.k, groups = pc.groups, gsz = k / groups;
                shape_idx++;
                char shape[64];
                snprintf(shape, sizeof shape, "%dx%dx%d G=%d", m, n, k, groups);
                set_stage(shape);
                const uint64_t seed = g_seed + 100 * shape_idx;
                std::vector<int8_t> ha((size_t)m * k), hb((size_t)n * k);
                for (size_t i = 0; i < ha.size(); i++) ha[i] = gen_s8(seed, i);
                for (size_t i = 0; i < hb.size(); i++) hb[i] = gen_s8(seed + 1, i);
                // Group scales spread over a factor of 8, so that a group folded with the wrong scale shows.
                const float base = 1.0f / (5461.0f * std::sqrt((float)k));
                std::vector<float> gs(groups), sw(n), bias(n), res((size_t)m * n);
                for (int g = 0; g < groups; g++) gs[g] = base * (0.25f + 1.75f * gen_unit(seed + 2, g));
                for (int j = 0; j < n; j++) sw[j] = 0.5f + gen_unit(seed + 3, j);
                for (int j = 0; j < n; j++) bias[j] = gen_unit(seed + 4, j) - 0.5f;
                for (size_t i = 0; i < res.size(); i++) res[i] = 2.f * gen_unit(seed + 5, i) - 1.f;
                const float out_scale = 3.0f / 127.0f;  // |y| up to ~3 in range, the tails clamp
                // sum_g s_g acc_g and sum_g |s_g acc_g|, from the exact int32 group sums.
                std::vector<double> sum((size_t)m * n), mag((size_t)m * n);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double s = 0, a = 0;
                        for (int g = 0; g < groups; g++) {
                            const int8_t *pa = &ha[(size_t)i * k + g * gsz], *pb = &hb[(size_t)j * k + g * gsz];
                            int acc = 0;
                            for (int q = 0; q < gsz; q++) acc += (int)pa[q] * (int)pb[q];
                            s += (double)gs[g] * acc;
                            a += std::fabs((double)gs[g] * acc);
                        }
                        sum[(size_t)i * n + j] = s;
                        mag[(size_t)i * n + j] = a;
                    }
                int8_t *da = dalloc<int8_t>(ha.size()), *db = dalloc<int8_t>(hb.size());
                float *dgs = dalloc<float>(groups), *dsw = dalloc<float>(n), *dbias = dalloc<float>(n);
                float *dres = dalloc<float>((size_t)m * n);
                void *dy = dalloc<float>((size_t)m * n);
                CK(cudaMemcpy(da, ha.data(), ha.size(), cudaMemcpyHostToDevice));
                CK(cudaMemcpy(db, hb.data(), hb.size(), cudaMemcpyHostToDevice));
                CK(cudaMemcpy(dgs, gs.data(), groups * 4, cudaMemcpyHostToDevice));
                CK(cudaMemcpy(dsw, sw.data(), n * 4, cudaMemcpyHostToDevice));
                CK(cudaMemcpy(dbias, bias.data(), n * 4, cudaMemcpyHostToDevice));
                std::vector<uint8_t> got((size_t)m * n * 4);
                for (const PegVariant &v : PEG_VARIANTS) {
                    if (level && v.cfg < 0 && v.out == OUT_F32 && v.w_per_col && !v.residual) continue;  // the config runs cover it
                    const size_t esz = v.out == OUT_F16 ? 2 : v.out == OUT_S8 ? 1 : 4;
                    CK(cudaMemcpy(dres, res.data(), res.size() * 4, cudaMemcpyHostToDevice));
                    void *y = v.in_place ? (void *)dres : dy;
                    if (!v.in_place) CK(cudaMemset(dy, v.out == OUT_S8 ? 0x80 : 0x7f, (size_t)m * n * esz));
                    const float *r = v.residual ? dres : nullptr, *bi = v.bias ? dbias : nullptr;
                    if (v.cfg < 0) {
                        CKL(peg_public(v.out, da, db, m, n, k, groups, dgs, dsw, v.w_per_col, bi, r, v.act, out_scale, y, -1));
                    } else {
                        Epilogue ep = peg_epilogue(v.out, y, dgs, groups, k, dsw, v.w_per_col, bi, r, v.act, out_scale);
                        CKL(sm90::gemm_peg(da, db, m, n, k, ep, v.cfg, v.cap, nullptr));
                    }
                    CK(cudaMemcpy(got.data(), y, (size_t)m * n * esz, cudaMemcpyDeviceToHost));
                    long bad = 0, unwritten = 0;
                    double worst = 0;  // |got - ref| / tolerance, FP32 outputs
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++) {
                            const size_t idx = (size_t)i * n + j;
                            const double swj = sw[v.w_per_col ? j : 0];
                            double ref = swj * sum[idx] + (v.bias ? bias[j] : 0.0);
                            if (v.act) ref = gelu_d(ref);
                            if (v.residual) ref += res[idx];
                            const double tol = peg_tolerance(
                                groups, std::fabs(swj) * mag[idx] + (v.bias ? std::fabs(bias[j]) : 0.0) +
                                            (v.residual ? std::fabs(res[idx]) : 0.0));
                            double g;
                            bool poison;
                            if (v.out == OUT_F32) {
                                float f;
                                memcpy(&f, &got[idx * 4], 4);
                                g = f;
                                poison = f == 0x1.fefefep+127f;
                                if (std::isfinite(f)) worst = std::max(worst, std::fabs(g - ref) / tol);
                            } else if (v.out == OUT_F16) {
                                __half h;
                                memcpy(&h, &got[idx * 2], 2);
                                g = __half2float(h);
                                poison = got[idx * 2] == 0x7f && got[idx * 2 + 1] == 0x7f;
                            } else {
                                g = (int8_t)got[idx];
                                poison = got[idx] == 0x80;
                            }
                            if (!peg_close(v.out, g, ref, tol, out_scale)) {
                                if (bad < 3)
                                    detail("  MISMATCH PEG %s [%s] config %d cap %d: y[%d][%d] reference %.9g got %.9g "
                                           "(tolerance %.3g)%s\n", shape, v.name, v.cfg, v.cap, i, j, ref, g, tol,
                                           poison ? " (never written)" : "");
                                bad++;
                                unwritten += poison;
                            }
                        }
                    if (bad)
                        detail("  FAIL PEG %s [%s] config %d cap %d: %ld of %d wrong (%ld never written)\n", shape, v.name,
                               v.cfg, v.cap, bad, m * n, unwritten);
                    char what[160];
                    snprintf(what, sizeof what, "PEG %s [%s] config %d cap %d: %ld wrong (worst %.2f of the tolerance)",
                             shape, v.name, v.cfg, v.cap, bad, worst);
                    record(bad == 0, what);
                    runs++;
                }
                CK(cudaFree(da));
                CK(cudaFree(db));
                CK(cudaFree(dgs));
                CK(cudaFree(dsw));
                CK(cudaFree(dbias));
                CK(cudaFree(dres));
                CK(cudaFree(dy));
            }
    printf("  %ld PEG runs over %d shapes; failed so far: %ld\n", runs, shape_idx, g_failed);
}

// ---- PEG at the BERT shapes: vs the mma.sync PEG and CPU points; speed --------------------------------------------
struct PegRow {
    Shape s;
    int groups = 0, cfg = -1, mma_tile = -1;
    Timing plain_f32, peg, peg_cfg[qd::i8::sm90::PEG_CONFIGS], mma_peg;
};

// plain_f32: the plain wgmma FP32 timing of this shape, measured by the first call (groups 4) and reused.
static void peg_big_shape(PegRow &row, bool bench, Timing &plain_f32) {
    using namespace qd::i8;
    const int m = row.s.m, n = row.s.n, k = row.s.k, groups = row.groups, gsz = k / groups;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%d G=%d", m, n, k, groups);
    set_stage(shape);
    const size_t mk = (size_t)m * k, nk = (size_t)n * k, mn = (size_t)m * n;
    const uint64_t seed = g_seed + 7919 * (m + n + k + groups);
    int8_t *A[SETS], *B[SETS];
    float *Y[SETS];
    for (int i = 0; i < SETS; i++) {
        A[i] = dalloc<int8_t>(mk);
        B[i] = dalloc<int8_t>(nk);
        Y[i] = dalloc<float>(mn);
        dfill_s8(A[i], mk, seed + 10 * i);
        dfill_s8(B[i], nk, seed + 10 * i + 1);
    }
    float *gs = dalloc<float>(groups), *sw = dalloc<float>(n), *bias = dalloc<float>(n), *sx = dalloc<float>(m);
    const float base = 1.0f / (5461.0f * std::sqrt((float)k));
    dfill_f32(gs, groups, seed + 2, 0.25f * base, 2.0f * base);
    dfill_f32(sw, n, seed + 3, 0.5f, 1.5f);
    dfill_f32(bias, n, seed + 4, -0.5f, 0.5f);
    dfill_f32(sx, m, seed + 5, 0.5f * base, 1.5f * base);
    row.cfg = sm90::peg_pick_config(m, n);
    CK(qd_i8_gemm_pick_tile(m, n, k, groups, &row.mma_tile));
    printf("\n== PEG %s: wgmma PEG auto config %d, mma.sync PEG auto tile %d\n", shape, row.cfg, row.mma_tile);

    // wgmma PEG (auto tile) vs mma.sync PEG, FP32 with bias + GELU: same fold and epilogue arithmetic, so the
    // outputs should agree bit for bit; the check allows 1e-5 relative (the mma.sync path is itself checked against
    // the CPU by Int8GemmTest), the count of differing bits is printed.
    float *y2 = dalloc<float>(mn);
    CK(cudaMemset(Y[0], 0x7f, mn * 4));
    CK(cudaMemset(y2, 0x7f, mn * 4));
    CKL(qd_i8_gemm_peg_f32((const signed char *)A[0], (const signed char *)B[0], m, n, k, groups, gs, sw, 1, bias,
                           nullptr, 1, Y[0], -1, nullptr));
    CKL(qd_i8_gemm_peg_f32((const signed char *)A[0], (const signed char *)B[0], m, n, k, groups, gs, sw, 1, bias,
                           nullptr, 1, y2, row.mma_tile, nullptr));
    {
        char what[128];
        snprintf(what, sizeof what, "PEG wgmma vs mma.sync f32 (bias+GELU), %s", shape);
        const long bad = compare(Y[0], y2, m, n, what);
        CK(cudaMemset(g_cmp, 0, 9 * sizeof(unsigned long long)));
        cmp_i32<<<2048, 256>>>((const int *)Y[0], (const int *)y2, mn, g_cmp);
        CKL(cudaGetLastError());
        unsigned long long differ = 0;
        CK(cudaMemcpy(&differ, g_cmp, sizeof differ, cudaMemcpyDeviceToHost));
        printf("  %-52s %s (%llu of %zu not bit-identical)\n", what, bad ? "OUT OF TOLERANCE" : "within 1e-5", differ, mn);
        record(bad == 0, what);
    }
    // CPU points (corners, centre, random) against the float64 reference and peg_tolerance.
    {
        std::vector<float> hgs(groups), hsw(n), hbias(n);
        CK(cudaMemcpy(hgs.data(), gs, groups * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(hsw.data(), sw, n * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(hbias.data(), bias, n * 4, cudaMemcpyDeviceToHost));
        std::vector<std::pair<int, int>> pts = {{0, 0}, {0, n - 1}, {m - 1, 0}, {m - 1, n - 1}, {m / 2, n / 2}};
        for (int i = 0; i < 128; i++) pts.push_back({(int)(gen_unit(seed + 6, 2 * i) * m), (int)(gen_unit(seed + 6, 2 * i + 1) * n)});
        long bad = 0;
        for (auto [i, j] : pts) {
            double s = 0, a = 0;
            for (int g = 0; g < groups; g++) {
                long acc = 0;
                for (int q = g * gsz; q < (g + 1) * gsz; q++)
                    acc += (long)gen_s8(seed, (size_t)i * k + q) * gen_s8(seed + 1, (size_t)j * k + q);
                s += (double)hgs[g] * acc;
                a += std::fabs((double)hgs[g] * acc);
            }
            const double ref = gelu_d(hsw[j] * s + hbias[j]);
            const double tol = peg_tolerance(groups, std::fabs(hsw[j]) * a + std::fabs(hbias[j]));
            float g;
            CK(cudaMemcpy(&g, Y[0] + (size_t)i * n + j, 4, cudaMemcpyDeviceToHost));
            if (!peg_close(OUT_F32, g, ref, tol, 1.f)) {
                if (bad < 5) printf("  FAIL PEG wgmma y[%d][%d]: reference %.9g got %.9g (tolerance %.3g)\n", i, j, ref, g, tol);
                bad++;
            }
        }
        printf("  PEG wgmma vs CPU at %zu points: %ld wrong\n", pts.size(), bad);
        record(bad == 0, std::string("PEG wgmma vs CPU points ") + shape);
    }
    CK(cudaFree(y2));

    if (bench) {
        set_stage((std::string("timing ") + shape).c_str());
        auto sc = [](const void *p) { return (const signed char *)p; };
        // Both FP32 outputs with per-channel weight scales and bias, no activation (plain: per-token activation scales).
        if (plain_f32.med_us == 0)
            plain_f32 = time_it([&](int i) {
                return qd_i8_gemm_wgmma_f32(sc(A[i]), sc(B[i]), m, n, k, sx, 1, sw, 1, bias, nullptr, 0, Y[i], nullptr);
            });
        row.plain_f32 = plain_f32;
        row.peg = time_it([&](int i) {
            return qd_i8_gemm_peg_f32(sc(A[i]), sc(B[i]), m, n, k, groups, gs, sw, 1, bias, nullptr, 0, Y[i], -1, nullptr);
        });
        for (int c = 0; c < sm90::PEG_CONFIGS; c++)
            row.peg_cfg[c] = time_it([&](int i) {
                Epilogue ep = peg_epilogue(OUT_F32, Y[i], gs, groups, k, sw, 1, bias, nullptr, 0, 1.f);
                return sm90::gemm_peg(A[i], B[i], m, n, k, ep, c, 0, nullptr);
            });
        row.mma_peg = time_it([&](int i) {
            return qd_i8_gemm_peg_f32(sc(A[i]), sc(B[i]), m, n, k, groups, gs, sw, 1, bias, nullptr, 0, Y[i],
                                      row.mma_tile, nullptr);
        });
        printf("  us (median of %d): plain wgmma f32 %.1f  PEG wgmma %.1f (", RUNS, row.plain_f32.med_us, row.peg.med_us);
        for (int c = 0; c < sm90::PEG_CONFIGS; c++) printf("%scfg%d %.1f", c ? ", " : "", c, row.peg_cfg[c].med_us);
        printf(")  mma.sync PEG %.1f\n", row.mma_peg.med_us);
    }
    for (int i = 0; i < SETS; i++) {
        CK(cudaFree(A[i]));
        CK(cudaFree(B[i]));
        CK(cudaFree(Y[i]));
    }
    CK(cudaFree(gs));
    CK(cudaFree(sw));
    CK(cudaFree(bias));
    CK(cudaFree(sx));
}

int main(int argc, char **argv) {
    bool quick = false, reduced = false, tiny = false, bench = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--memcheck")) quick = reduced = true;
        else if (!strcmp(argv[i], "--racecheck")) quick = reduced = tiny = true;
        else if (!strcmp(argv[i], "--no-bench")) bench = false;
        else {
            printf("usage: %s [--quick | --memcheck | --racecheck] [--no-bench]\n", argv[0]);
            return 3;
        }
    }
    setvbuf(stdout, nullptr, _IOLBF, 0);
    const char *seed_env = getenv("QD_SEED");
    g_seed = seed_env && *seed_env ? strtoull(seed_env, nullptr, 10) : (uint64_t)time(nullptr);
    printf("seed: %llu (QD_SEED=%llu repeats this run's inputs)\n", (unsigned long long)g_seed,
           (unsigned long long)g_seed);
    int dev = 0;
    cudaDeviceProp prop;
    CK(cudaGetDevice(&dev));
    CK(cudaGetDeviceProperties(&prop, dev));
    printf("device: %s, sm_%d%d, %d SMs, %.1f GiB\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
           prop.totalGlobalMem / 1073741824.0);
    int sup = qd_i8_gemm_wgmma_supported();
    if (sup != 0) {
        printf("wgmma GEMM not supported here: %d (%s)\nRESULT: NOT SUPPORTED\n", sup,
               cudaGetErrorString((cudaError_t)sup));
        return 2;
    }
    for (int c = 0; c < CONFIGS; c++) {
        int bm, bn, bk, st;
        CK(qd_i8_gemm_wgmma_config_info(c, &bm, &bn, &bk, &st));
        printf("wgmma config %d: %d x %d tile, %d-byte K slices, %d stages\n", c, bm, bn, bk, st);
    }
    for (int c = 0; c < qd::i8::sm90::PEG_CONFIGS; c++) {
        int bn, st;
        qd::i8::sm90::peg_config_info(c, &bn, &st);
        printf("wgmma PEG config %d: 128 x %d tile, 128-byte K slices, %d stages\n", c, bn, st);
    }
    CK(cudaMalloc(&g_cmp, 9 * sizeof(unsigned long long)));

    if (!tiny) {
        argument_checks();
        tma_probes();
    }
    small_shapes(reduced, tiny);
    peg_small_shapes(tiny ? 2 : reduced ? 1 : 0);
    std::vector<Row> rows;
    std::vector<PegRow> peg_rows;
    if (!quick) {
        printf("\n== Part 2%s: BERT shapes and 8192^3\n", bench ? " + 3" : "");
        g_have_lt = g_lt.open();
        if (!g_have_lt) printf("  no cuBLASLt (%s): its column stays empty\n", g_lt.why.c_str());
        for (int i = 0; i < NBIG; i++) {
            Row r;
            r.s = BIG[i];
            big_shape(r, bench);
            rows.push_back(r);
        }
        // G = 1 (one fold per tile, at its end): what the PEG kernel's tile (BN <= 192) and FP32 sums cost beside the
        // plain kernel's, apart from the per-group folds.
        printf("\n== PEG at the BERT shapes, 1, 4 and 6 groups%s\n", bench ? " (+ speed)" : "");
        for (int i = 0; i < NBIG; i++) {
            if (BIG[i].m == 8192) continue;  // not a BERT shape
            Timing plain_f32;
            for (int groups : {1, 4, 6}) {
                PegRow r;
                r.s = BIG[i];
                r.groups = groups;
                peg_big_shape(r, bench, plain_f32);
                peg_rows.push_back(r);
            }
        }
    }

    // ---- summary: failures, table, JSON ----
    const bool pass = g_failed == 0;
    printf("\n== Summary\n");
    for (const std::string &f : g_failures) printf("  FAILED: %s\n", f.c_str());
    if (!g_details.empty()) printf("  first mismatch details:\n");
    for (const std::string &d : g_details) printf("  %s", d.c_str());
    if (bench && !quick) {
        printf("\nTOPS (median of %d launches, %d rotating input sets; int32 output; wg/anc: wgmma over the issue's "
               "cuBLASLt anchor; F32: bias + GELU epilogue)\n", RUNS, SETS);
        printf("%-17s %4s %8s %8s %8s %8s %7s %8s %7s | %7s %7s %7s | %9s %9s\n", "M x N x K", "cfg", "wgmma",
               "mma.sync", "cuBLASLt", "wg/Lt", "wg/mma", "wg us", "wg/anc", "cfg0", "cfg1", "cfg2", "wgF32gelu",
               "mmaF32gelu");
        for (const Row &r : rows) {
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%dx%d", r.s.m, r.s.n, r.s.k);
            const double w = tops(r.s, r.wg), lt = tops(r.s, r.lt), mm = tops(r.s, r.mma);
            const double anchor = lt_anchor(r.s);
            printf("%-17s %4d %8.1f %8.1f %8.1f %8.2f %7.2f %8.1f %7.2f | %7.1f %7.1f %7.1f | %9.1f %9.1f\n", shape,
                   r.auto_cfg, w, mm, lt, lt > 0 ? w / lt : 0.0, mm > 0 ? w / mm : 0.0, r.wg.med_us,
                   anchor > 0 ? w / anchor : 0.0, tops(r.s, r.wg_cfg[0]), tops(r.s, r.wg_cfg[1]),
                   tops(r.s, r.wg_cfg[2]), tops(r.s, r.wg_f32), tops(r.s, r.mma_f32));
        }
        printf("\nPEG TOPS (median of %d launches, %d rotating input sets; FP32 output, per-channel weight scales + bias, "
               "no activation; plain f32: the same epilogue with per-token activation scales; plain s32: int32 output)\n",
               RUNS, SETS);
        printf("%-17s %2s %4s %9s %9s %9s", "M x N x K", "G", "cfg", "plain-s32", "plain-f32", "PEG-wgmma");
        for (int c = 0; c < qd::i8::sm90::PEG_CONFIGS; c++) printf("    cfg%d", c);
        printf(" %9s | %8s %8s %8s\n", "PEG-mma", "PEG/f32", "PEG/s32", "PEG/mma");
        for (const PegRow &r : peg_rows) {
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%dx%d", r.s.m, r.s.n, r.s.k);
            double s32 = 0;
            for (const Row &p : rows)
                if (p.s.m == r.s.m && p.s.n == r.s.n && p.s.k == r.s.k) s32 = tops(p.s, p.wg);
            const double f32 = tops(r.s, r.plain_f32), peg = tops(r.s, r.peg), mma = tops(r.s, r.mma_peg);
            printf("%-17s %2d %4d %9.1f %9.1f %9.1f", shape, r.groups, r.cfg, s32, f32, peg);
            for (int c = 0; c < qd::i8::sm90::PEG_CONFIGS; c++) printf(" %7.1f", tops(r.s, r.peg_cfg[c]));
            printf(" %9.1f | %8.2f %8.2f %8.2f\n", mma, f32 > 0 ? peg / f32 : 0.0, s32 > 0 ? peg / s32 : 0.0,
                   mma > 0 ? peg / mma : 0.0);
        }
    }
    const char *out = getenv("OUT");
    if (out && *out) {
        std::string path = std::string(out) + "/wgmma.json";
        FILE *f = fopen(path.c_str(), "w");
        if (f) {
            fprintf(f, "{\n  \"device\": \"%s\",\n  \"sms\": %d,\n  \"checks\": %ld,\n  \"failed\": %ld,\n", prop.name,
                    prop.multiProcessorCount, g_checks, g_failed);
            fprintf(f, "  \"failures\": [");
            for (size_t i = 0; i < g_failures.size(); i++)
                fprintf(f, "%s\"%s\"", i ? ", " : "", g_failures[i].c_str());
            fprintf(f, "],\n  \"runs\": %d,\n  \"sets\": %d,\n  \"shapes\": [", RUNS, SETS);
            for (size_t i = 0; i < rows.size(); i++) {
                const Row &r = rows[i];
                auto t = [&](const Timing &x) {
                    static char buf[96];
                    snprintf(buf, sizeof buf, "{\"median_us\": %.3f, \"min_us\": %.3f, \"tops\": %.1f}", x.med_us,
                             x.min_us, tops(r.s, x));
                    return std::string(buf);
                };
                fprintf(f, "%s\n    {\"m\": %d, \"n\": %d, \"k\": %d, \"auto_config\": %d, \"mma_tile\": %d,", i ? "," : "",
                        r.s.m, r.s.n, r.s.k, r.auto_cfg, r.mma_tile);
                fprintf(f, " \"wgmma\": %s, \"mma_sync\": %s, \"cublaslt\": %s,", t(r.wg).c_str(), t(r.mma).c_str(),
                        r.lt_ok ? t(r.lt).c_str() : "null");
                fprintf(f, " \"wgmma_config\": [%s, %s, %s],", t(r.wg_cfg[0]).c_str(), t(r.wg_cfg[1]).c_str(),
                        t(r.wg_cfg[2]).c_str());
                fprintf(f, " \"wgmma_f32_gelu\": %s, \"mma_sync_f32_gelu\": %s,", t(r.wg_f32).c_str(),
                        t(r.mma_f32).c_str());
                fprintf(f, " \"wgmma_over_cublaslt\": %.3f}",
                        r.lt_ok && r.lt.med_us > 0 && r.wg.med_us > 0 ? r.lt.med_us / r.wg.med_us : 0.0);
            }
            fprintf(f, "\n  ],\n  \"peg\": [");
            for (size_t i = 0; i < peg_rows.size(); i++) {
                const PegRow &r = peg_rows[i];
                auto t = [&](const Timing &x) {
                    static char buf[96];
                    snprintf(buf, sizeof buf, "{\"median_us\": %.3f, \"min_us\": %.3f, \"tops\": %.1f}", x.med_us,
                             x.min_us, tops(r.s, x));
                    return std::string(buf);
                };
                fprintf(f, "%s\n    {\"m\": %d, \"n\": %d, \"k\": %d, \"groups\": %d, \"auto_config\": %d, "
                           "\"mma_tile\": %d,", i ? "," : "", r.s.m, r.s.n, r.s.k, r.groups, r.cfg, r.mma_tile);
                fprintf(f, " \"plain_wgmma_f32\": %s, \"peg_wgmma\": %s,", t(r.plain_f32).c_str(), t(r.peg).c_str());
                fprintf(f, " \"peg_wgmma_config\": [");
                for (int c = 0; c < qd::i8::sm90::PEG_CONFIGS; c++) fprintf(f, "%s%s", c ? ", " : "", t(r.peg_cfg[c]).c_str());
                fprintf(f, "],");
                fprintf(f, " \"peg_mma_sync\": %s}", t(r.mma_peg).c_str());
            }
            fprintf(f, "\n  ],\n  \"seed\": %llu\n}\n", (unsigned long long)g_seed);
            fclose(f);
            printf("wrote %s\n", path.c_str());
        }
    }
    printf("RESULT: %s (%ld checks, %ld failed)\n", pass ? "PASS" : "FAIL", g_checks, g_failed);
    return pass ? 0 : 1;
}
