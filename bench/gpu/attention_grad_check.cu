// On the GPU host: the fused attention backward at the IG-50 shape (50 sequences x 12 heads x 128 tokens, head dim
// 64), TF32 (FP32 dqkv, one block per SM) against FP16 (FP16 dqkv, two blocks per SM): median time of 50 launches
// each, and the FP16 kernel's relative Frobenius distance from the TF32 kernel's dq, dk, dv (both are checked against
// the CPU reference in CudaGradientsTest; here the two must agree within 2e-3). Random inputs, every third sequence with its last 40
// keys masked.
// Build here: nvcc -O3 -std=c++17 -Icuda -gencode arch=compute_90a,code=sm_90a bench/gpu/attention_grad_check.cu -o .gpu/attention_grad_check
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "check.h"
#include "fused_attention.cuh"

template <typename Launch>
static float median_ms(Launch launch) {
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    std::vector<float> ms;
    for (int i = 0; i < 60; i++) {
        CHECK(cudaEventRecord(a));
        launch();
        CHECK(cudaEventRecord(b));
        CHECK(cudaEventSynchronize(b));
        float t;
        CHECK(cudaEventElapsedTime(&t, a, b));
        if (i >= 10) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

int main() {
    constexpr int HD = 64;
    const int batch = 50, seq = 128, heads = 12, width = heads * HD, rows = batch * seq;
    const float scale = 1.f / std::sqrt((float)HD);
    std::mt19937 rng(20261206);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> qkv((size_t)rows * 3 * width), dctx((size_t)rows * width);
    for (auto &x : qkv) x = 2 * u(rng);
    for (auto &x : dctx) x = u(rng);
    std::vector<int> mask(rows);
    for (int b = 0; b < batch; b++)
        for (int t = 0; t < seq; t++) mask[b * seq + t] = b % 3 == 2 && t >= seq - 40 ? 0 : 1;
    float *d_qkv, *d_dctx, *d_ref;
    __half *d_half;
    int *d_mask;
    CHECK(cudaMalloc(&d_qkv, qkv.size() * 4));
    CHECK(cudaMalloc(&d_dctx, dctx.size() * 4));
    CHECK(cudaMalloc(&d_ref, qkv.size() * 4));
    CHECK(cudaMalloc(&d_half, qkv.size() * 2));
    CHECK(cudaMalloc(&d_mask, rows * 4));
    CHECK(cudaMemcpy(d_qkv, qkv.data(), qkv.size() * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(d_dctx, dctx.data(), dctx.size() * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(d_mask, mask.data(), rows * 4, cudaMemcpyHostToDevice));
    const size_t tf32_smem = qd::fused_attention_grad_smem<HD>(seq), half_smem = qd::fused_attention_grad_half_smem<HD>(seq);
    CHECK(cudaFuncSetAttribute(qd::fused_attention_grad_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)tf32_smem));
    CHECK(cudaFuncSetAttribute(qd::fused_attention_grad_half_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)half_smem));
    auto tf32 = [&] {
        qd::fused_attention_grad_kernel<HD><<<batch * heads, qd::kFusedAttentionThreads, tf32_smem>>>(d_dctx, d_qkv, d_mask, seq, heads,
                                                                                                       scale, d_ref);
    };
    auto half = [&] {
        qd::fused_attention_grad_half_kernel<HD><<<batch * heads, qd::kFusedAttentionThreads, half_smem>>>(d_dctx, d_qkv, d_mask, seq, heads,
                                                                                                         scale, d_half);
    };
    tf32();
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    std::vector<float> ref(qkv.size());
    CHECK(cudaMemcpy(ref.data(), d_ref, ref.size() * 4, cudaMemcpyDeviceToHost));
    printf("fused attention backward, %d x %d heads x %d tokens, head dim %d; smem TF32 %zu B, FP16 %zu B\n", batch, heads, seq, HD, tf32_smem,
           half_smem);
    printf("%-22s %9s %9s %9s %9s %9s\n", "kernel", "ms", "vs TF32", "err dq", "err dk", "err dv");
    const float t_ref = median_ms(tf32);
    printf("%-22s %9.4f %9s\n", "TF32, 1 block/SM", t_ref, "1.00x");
    CHECK(cudaMemset(d_half, 0xFF, qkv.size() * 2));  // NaN: a value not written shows
    half();
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    std::vector<__half> got(qkv.size());
    CHECK(cudaMemcpy(got.data(), d_half, got.size() * 2, cudaMemcpyDeviceToHost));
    double num[3] = {}, den[3] = {}, err[3];
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < 3 * width; c++) {
            const size_t i = (size_t)r * 3 * width + c;
            const double d = (double)__half2float(got[i]) - ref[i];
            num[c / width] += d * d, den[c / width] += (double)ref[i] * ref[i];
        }
    int bad = 0;
    for (int p = 0; p < 3; p++) {
        err[p] = std::sqrt(num[p] / den[p]);
        if (!(err[p] < 2e-3)) bad = 1;
    }
    const float t = median_ms(half);
    printf("%-22s %9.4f %8.2fx %9.2e %9.2e %9.2e\n", "FP16, 2 blocks/SM", t, t_ref / t, err[0], err[1], err[2]);
    printf(bad ? "FAILED: the FP16 kernel is more than 2e-3 from the TF32 kernel\n" : "ok: FP16 within 2e-3 of TF32\n");
    return bad;
}
