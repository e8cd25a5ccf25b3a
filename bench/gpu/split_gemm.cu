// On the GPU host: can FP32-accurate products run faster than FP32 itself on tensor cores, for the IG-50 shapes?
// Each operand is split into a high and a low part and three products are summed in one GEMM over a 3x longer inner
// dimension: [x_hi | x_lo | x_hi] . [w_hi | w_hi | w_lo]^T = x_hi w_hi + x_lo w_hi + x_hi w_lo (lo . lo dropped).
//   3xTF32: parts in TF32 (FP32's exponent range, so no scaling), TF32 tensor cores.
//   3xFP16: parts in FP16 with each row scaled by a power of two so that its largest value lies in [2^14, 2^15); FP16
//           tensor cores at twice TF32's rate, and a pass that divides the scales out.
// Times the split of the left operand, the product and (FP16) the unscale pass; error: relative Frobenius distance to
// float64 on sampled rows, beside true FP32's. Inputs: uniform [-1, 1), and the same times 2^U{-8..8} per element.
// Build here: nvcc -O2 -std=c++17 -arch=sm_90 bench/gpu/split_gemm.cu -ldl -o .gpu/split_gemm
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cublas_gemm_ex.h"

__device__ float tf32_rounded(float v) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return __uint_as_float(r);
}

// x [rows, k] -> out [rows, 3k]: slot lo_slot holds the low part, the other two the high part.
__global__ void split_tf32(const float *x, int rows, int k, int lo_slot, float *out) {
    size_t n = (size_t)rows * k;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / k, c = i % k;
        float v = x[i], hi = tf32_rounded(v), lo = tf32_rounded(v - hi);
        float *o = out + r * 3 * k + c;
        o[0] = lo_slot == 0 ? lo : hi, o[k] = lo_slot == 1 ? lo : hi, o[2 * k] = lo_slot == 2 ? lo : hi;
    }
}

// One block per row: the row scaled by 2^s (its largest |value| into [2^14, 2^15)), split into FP16 hi + lo; 2^-s kept.
__global__ void split_fp16(const float *x, int k, int lo_slot, __half *out, float *inv_scale) {
    const float *row = x + (size_t)blockIdx.x * k;
    float m = 0;
    for (int c = threadIdx.x; c < k; c += blockDim.x) m = fmaxf(m, fabsf(row[c]));
    __shared__ float part[32];
    for (int o = 16; o; o >>= 1) m = fmaxf(m, __shfl_xor_sync(~0u, m, o));
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = m;
    __syncthreads();
    m = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) m = fmaxf(m, part[w]);
    int e = 0;
    if (m > 0) frexpf(m, &e);  // m = f 2^e, f in [0.5, 1)
    int s = min(max(15 - e, -126), 127);
    float scale = ldexpf(1.f, s);
    if (threadIdx.x == 0) inv_scale[blockIdx.x] = ldexpf(1.f, -s);
    __half *o = out + (size_t)blockIdx.x * 3 * k;
    for (int c = threadIdx.x; c < k; c += blockDim.x) {
        float v = row[c] * scale;
        __half hi = __float2half_rn(v), lo = __float2half_rn(v - __half2float(hi));
        o[c] = lo_slot == 0 ? lo : hi, o[k + c] = lo_slot == 1 ? lo : hi, o[2 * k + c] = lo_slot == 2 ? lo : hi;
    }
}

// y[m, n] *= row_inv[i] * col_inv[j]
__global__ void unscale(float *y, int m, int n, const float *row_inv, const float *col_inv) {
    size_t total = (size_t)m * n;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] *= row_inv[i / n] * col_inv[i % n];
}

struct Shape { const char *what; int m, n, k; };  // row-major y[m, n] = x[m, k] w[n, k]^T
const char *const kMethods[] = {"FP32", "TF32", "3xTF32", "3xFP16"};  // indexed by `method` below

int main() {
    const int M = 6400;
    const Shape shapes[] = {{"fwd QKV", M, 2304, 768},    {"fwd O", M, 768, 768},     {"fwd FFN up", M, 3072, 768},
                            {"fwd FFN down", M, 768, 3072}, {"bwd QKV", M, 768, 2304}, {"bwd O", M, 768, 768},
                            {"bwd FFN up", M, 768, 3072},   {"bwd FFN down", M, 3072, 768}};
    cublasHandle_t h = open_cublas();
    std::mt19937 rng(20261206);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::uniform_int_distribution<int> octave(-8, 8);
    cudaEvent_t e0, e1, e2, e3;
    for (auto *e : {&e0, &e1, &e2, &e3}) CHECK(cudaEventCreate(e));
    const int kRuns = 30, kSample = 16;
    double sum[4][3] = {};  // per method: split, gemm, unscale ms summed over shapes (uniform inputs)
    printf("%-13s %-6s %-8s %9s %9s %9s %9s %10s\n", "product", "input", "method", "split ms", "gemm ms", "scale ms", "total ms",
           "rel error");
    for (const Shape &s : shapes) {
        for (int wide = 0; wide < 2; wide++) {
            size_t xn = (size_t)s.m * s.k, wn = (size_t)s.n * s.k, yn = (size_t)s.m * s.n;
            std::vector<float> hx(xn), hw(wn);
            for (auto &v : hx) v = wide ? ldexpf(u(rng), octave(rng)) : u(rng);
            for (auto &v : hw) v = wide ? ldexpf(u(rng), octave(rng)) : u(rng);
            std::vector<double> ref((size_t)kSample * s.n);
            for (int r = 0; r < kSample; r++)
                for (int j = 0; j < s.n; j++) {
                    double a = 0;
                    size_t row = (size_t)r * (s.m / kSample);
                    for (int t = 0; t < s.k; t++) a += (double)hx[row * s.k + t] * hw[(size_t)j * s.k + t];
                    ref[(size_t)r * s.n + j] = a;
                }
            float *x, *w, *y, *x3, *w3, *xinv, *winv;
            __half *x3h, *w3h;
            CHECK(cudaMalloc(&x, xn * 4)); CHECK(cudaMalloc(&w, wn * 4)); CHECK(cudaMalloc(&y, yn * 4));
            CHECK(cudaMalloc(&x3, xn * 12)); CHECK(cudaMalloc(&w3, wn * 12));
            CHECK(cudaMalloc(&x3h, xn * 6)); CHECK(cudaMalloc(&w3h, wn * 6));
            CHECK(cudaMalloc(&xinv, s.m * 4)); CHECK(cudaMalloc(&winv, s.n * 4));
            CHECK(cudaMemcpy(x, hx.data(), xn * 4, cudaMemcpyHostToDevice));
            CHECK(cudaMemcpy(w, hw.data(), wn * 4, cudaMemcpyHostToDevice));
            split_tf32<<<2048, 256>>>(w, s.n, s.k, 2, w3);
            split_fp16<<<s.n, 256>>>(w, s.k, 2, w3h, winv);
            const float one = 1.f, zero = 0.f;
            for (int method = 0; method < 4; method++) {
                auto split = [&] {
                    if (method == 2) split_tf32<<<2048, 256>>>(x, s.m, s.k, 1, x3);
                    if (method == 3) split_fp16<<<s.m, 256>>>(x, s.k, 1, x3h, xinv);
                };
                auto gemm = [&] {
                    int kk = method >= 2 ? 3 * s.k : s.k;
                    const void *a = method == 2 ? (void *)w3 : method == 3 ? (void *)w3h : (void *)w;
                    const void *b = method == 2 ? (void *)x3 : method == 3 ? (void *)x3h : (void *)x;
                    cudaDataType t = method == 3 ? CUDA_R_16F : CUDA_R_32F;
                    cublasComputeType_t compute = method == 0 || method == 3 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
                    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, s.n, s.m, kk, &one, a, t, kk, b, t, kk, &zero, y, CUDA_R_32F, s.n,
                                       compute, CUBLAS_GEMM_DEFAULT));
                };
                auto post = [&] { if (method == 3) unscale<<<2048, 256>>>(y, s.m, s.n, xinv, winv); };
                split(); gemm(); post();
                CHECK(cudaDeviceSynchronize());
                std::vector<float> got((size_t)kSample * s.n);
                for (int r = 0; r < kSample; r++)
                    CHECK(cudaMemcpy(&got[(size_t)r * s.n], y + (size_t)r * (s.m / kSample) * s.n, s.n * 4, cudaMemcpyDeviceToHost));
                double num = 0, den = 0;
                for (size_t i = 0; i < ref.size(); i++) num += (got[i] - ref[i]) * (got[i] - ref[i]), den += ref[i] * ref[i];
                std::vector<float> ts, tg, tp;
                for (int i = 0; i < kRuns + 5; i++) {
                    CHECK(cudaEventRecord(e0)); split(); CHECK(cudaEventRecord(e1)); gemm(); CHECK(cudaEventRecord(e2)); post();
                    CHECK(cudaEventRecord(e3)); CHECK(cudaEventSynchronize(e3));
                    float a, b, c;
                    CHECK(cudaEventElapsedTime(&a, e0, e1)); CHECK(cudaEventElapsedTime(&b, e1, e2)); CHECK(cudaEventElapsedTime(&c, e2, e3));
                    if (i >= 5) ts.push_back(a), tg.push_back(b), tp.push_back(c);
                }
                for (auto *v : {&ts, &tg, &tp}) std::sort(v->begin(), v->end());
                double a = ts[kRuns / 2], b = tg[kRuns / 2], c = tp[kRuns / 2];
                if (!wide) sum[method][0] += a, sum[method][1] += b, sum[method][2] += c;
                printf("%-13s %-6s %-8s %9.4f %9.4f %9.4f %9.4f %10.2e\n", s.what, wide ? "wide" : "unif", kMethods[method], a, b, c, a + b + c,
                       std::sqrt(num / den));
            }
            for (void *p : {(void *)x, (void *)w, (void *)y, (void *)x3, (void *)w3, (void *)x3h, (void *)w3h, (void *)xinv, (void *)winv})
                CHECK(cudaFree(p));
        }
    }
    printf("\nsum over the 8 products (uniform inputs), ms: split / gemm / unscale / total; x 12 layers = per IG-50\n");
    for (int m = 0; m < 4; m++)
        printf("%-8s %8.3f %8.3f %8.3f %8.3f  per IG %7.2f\n", kMethods[m], sum[m][0], sum[m][1], sum[m][2], sum[m][0] + sum[m][1] + sum[m][2],
               12 * (sum[m][0] + sum[m][1] + sum[m][2]));
    return 0;
}
