// On the GPU host: how fast and how exact cuBLAS runs the IG-50 products (BERT-base, 50 steps x 128 tokens = 6400
// rows) under each FP32-in / FP32-out compute type — true FP32, TF32, BF16 and FP16 tensor cores converting on the
// fly, and FP32 emulated on BF16 (Blackwell-only in the documentation: refused or not here?) — and, for reference,
// with operands already in BF16 / FP16. Answers whether a low-precision backward is worth
// building before building it. Error: relative Frobenius distance to the same product in float64 on the host, on a
// sampled block of rows (uniform [-1, 1) inputs, so no cancellation games).
// Build here (no cuBLAS headers: it is opened at run time, as the Java side does):
//   nvcc -O2 -std=c++17 -arch=sm_90 bench/gpu/gemm_modes.cu -ldl -o .gpu/gemm_modes
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cublas_gemm_ex.h"

struct Shape { const char *what; bool backward; int m, n, k; };  // row-major: y[m,n] = x[m,k] w[n,k]^T, or dx = dy w
struct Mode { const char *name; cudaDataType in; cublasComputeType_t compute; };

__global__ void to_bf16(const float *x, __nv_bfloat16 *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) y[i] = __float2bfloat16(x[i]);
}
__global__ void to_fp16(const float *x, __half *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) y[i] = __float2half(x[i]);
}

static void *converted(const float *x, size_t n, cudaDataType to) {
    if (to == CUDA_R_32F) return (void *)x;
    void *y;
    CHECK(cudaMalloc(&y, n * 2));
    if (to == CUDA_R_16BF) to_bf16<<<1024, 256>>>(x, (__nv_bfloat16 *)y, n);
    else to_fp16<<<1024, 256>>>(x, (__half *)y, n);
    CHECK(cudaGetLastError());
    return y;
}

int main() {
    const int M = 6400;
    const Shape shapes[] = {{"fwd QKV/O", false, M, 768, 768},  {"fwd FFN up", false, M, 3072, 768},
                            {"fwd FFN down", false, M, 768, 3072}, {"bwd QKV/O", true, M, 768, 768},
                            {"bwd FFN up", true, M, 768, 3072},  {"bwd FFN down", true, M, 3072, 768},
                            // Q, K and V as one product (weights concatenated), forward and W^T-layout backward.
                            {"fwd QKV one", false, M, 2304, 768}, {"bwdT QKV one", false, M, 768, 2304}};
    const Mode modes[] = {{"FP32", CUDA_R_32F, CUBLAS_COMPUTE_32F},
                          {"32F_FAST_TF32", CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32},
                          {"32F_FAST_16BF", CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_16BF},
                          {"32F_FAST_16F", CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_16F},
                          {"32F_EMU_16BFX9", CUDA_R_32F, CUBLAS_COMPUTE_32F_EMULATED_16BFX9},
                          {"BF16 operands", CUDA_R_16BF, CUBLAS_COMPUTE_32F},
                          {"FP16 operands", CUDA_R_16F, CUBLAS_COMPUTE_32F}};
    cublasHandle_t h = open_cublas();
    std::mt19937 rng(20261205);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    printf("%-13s %-15s %10s %9s %11s\n", "product", "mode", "median ms", "TFLOPS", "rel error");
    const int kBuffers = 3, kWarmup = 10, kRuns = 50, kSampleRows = 16;
    cudaEvent_t start, stop;
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    for (const Shape &s : shapes) {
        // Operands as stored in the encoder: the left one [rows, inner], the weight [n, k] row-major.
        int inner = s.backward ? s.n : s.k, out = s.backward ? s.k : s.n;
        size_t left_n = (size_t)s.m * inner, w_n = (size_t)s.n * s.k, y_n = (size_t)s.m * out;
        std::vector<float> hw(w_n);
        std::vector<std::vector<float>> hx(kBuffers, std::vector<float>(left_n));
        for (auto &v : hw) v = u(rng);
        for (auto &b : hx) for (auto &v : b) v = u(rng);
        float *dw, *dy, *dx[kBuffers];
        CHECK(cudaMalloc(&dw, w_n * 4));
        CHECK(cudaMalloc(&dy, y_n * 4));
        CHECK(cudaMemcpy(dw, hw.data(), w_n * 4, cudaMemcpyHostToDevice));
        for (int b = 0; b < kBuffers; b++) {
            CHECK(cudaMalloc(&dx[b], left_n * 4));
            CHECK(cudaMemcpy(dx[b], hx[b].data(), left_n * 4, cudaMemcpyHostToDevice));
        }
        // float64 reference rows of buffer 0.
        std::vector<double> ref((size_t)kSampleRows * out);
        for (int r = 0; r < kSampleRows; r++) {
            int row = r * (s.m / kSampleRows);
            for (int j = 0; j < out; j++) {
                double acc = 0;
                for (int t = 0; t < inner; t++)
                    acc += (double)hx[0][(size_t)row * inner + t] * (s.backward ? hw[(size_t)t * s.k + j] : hw[(size_t)j * s.k + t]);
                ref[(size_t)r * out + j] = acc;
            }
        }
        for (const Mode &mode : modes) {
            void *w = converted(dw, w_n, mode.in), *x[kBuffers];
            for (int b = 0; b < kBuffers; b++) x[b] = converted(dx[b], left_n, mode.in);
            const float one = 1.f, zero = 0.f;
            auto run = [&](int b) {
                // Column-major view: forward y^T[n,m] = W(k x n, op T) . x^T[k,m]; backward dx^T[k,m] = W(k x n, op N) . dy^T[n,m].
                return s.backward ? cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, s.k, s.m, s.n, &one, w, mode.in, s.k, x[b], mode.in,
                                                 s.n, &zero, dy, CUDA_R_32F, s.k, mode.compute, CUBLAS_GEMM_DEFAULT)
                                  : cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, s.n, s.m, s.k, &one, w, mode.in, s.k, x[b], mode.in,
                                                 s.k, &zero, dy, CUDA_R_32F, s.n, mode.compute, CUBLAS_GEMM_DEFAULT);
            };
            auto release = [&] {  // the converted copies (FP32 modes use the originals)
                if (mode.in == CUDA_R_32F) return;
                CHECK(cudaFree(w));
                for (int i = 0; i < kBuffers; i++) CHECK(cudaFree(x[i]));
            };
            cublasStatus_t st = run(0);
            if (st != CUBLAS_STATUS_SUCCESS) {
                printf("%-13s %-15s refused: cublasGemmEx status %d\n", s.what, mode.name, (int)st);
                release();
                continue;
            }
            CHECK(cudaDeviceSynchronize());
            std::vector<float> got((size_t)kSampleRows * out);
            for (int r = 0; r < kSampleRows; r++)
                CHECK(cudaMemcpy(&got[(size_t)r * out], dy + (size_t)r * (s.m / kSampleRows) * out, out * 4, cudaMemcpyDeviceToHost));
            double num = 0, den = 0;
            for (size_t i = 0; i < ref.size(); i++) num += (got[i] - ref[i]) * (got[i] - ref[i]), den += ref[i] * ref[i];
            for (int i = 0; i < kWarmup; i++) CHECK(run(i % kBuffers));
            std::vector<float> ms;
            for (int i = 0; i < kRuns; i++) {
                CHECK(cudaEventRecord(start));
                CHECK(run(i % kBuffers));
                CHECK(cudaEventRecord(stop));
                CHECK(cudaEventSynchronize(stop));
                float t;
                CHECK(cudaEventElapsedTime(&t, start, stop));
                ms.push_back(t);
            }
            std::sort(ms.begin(), ms.end());
            double med = ms[kRuns / 2], tflops = 2.0 * s.m * s.n * s.k / (med * 1e-3) / 1e12;
            printf("%-13s %-15s %10.4f %9.1f %11.2e\n", s.what, mode.name, med, tflops, std::sqrt(num / den));
            release();
        }
        CHECK(cudaFree(dw));
        CHECK(cudaFree(dy));
        for (int b = 0; b < kBuffers; b++) CHECK(cudaFree(dx[b]));
    }
    CHECK(cudaEventDestroy(start));
    CHECK(cudaEventDestroy(stop));
    return 0;
}
