// A quantized site and the s8 layer it feeds in one pass: the next linear layer's s8 operand written straight from
// the site's input, the site's FP32 values never stored. CPU counterpart: the ops one after another (the s8 layer's
// input quantization is the GPU's own; the GPU test checks the fused bytes against the GPU's separate passes).
#pragma once
#include "activation.cuh"
#include "common.cuh"
#include "fake_quant.cuh"
#include "s8.cuh"

namespace qd {

// q = s8 of grid(act(x)): act GELU (ACT_GELU) or none (ACT_NONE), then the optional per-column grid (q_scale NULL:
// none) as fake_quant_columns_kernel applies it, then the next s8 GEMM's static input scale s as quantize_tensor_ld_kernel
// applies it, in the same float operations, so the bytes are the separate passes' bytes. on_grid: the grid is s itself
// (every column's scale s, zero point 0, [qmin, qmax] within [-127, 127]; q_scale not read): quantize_on_grid, the
// same bytes with one division. Rows of ldq >= cols bytes, columns cols .. ldq-1 zeroed (K padding). Four columns per
// thread: cols % 4 == 0, ldq % 4 == 0, x 16-byte and q 4-byte aligned.
// Each thread keeps its four columns (and their grid) over the rows it visits, which it takes kSiteRows at a time.
constexpr int kSiteRows = 4;
__global__ void site_quantize_kernel(const float *__restrict__ x, int rows, int cols, int act, const float *q_scale,
                                     const float *q_zp, float qmin, float qmax, int on_grid, float s, int8_t *__restrict__ q, int ldq) {
    for (int c4 = blockIdx.x * blockDim.x + threadIdx.x; c4 < ldq / 4; c4 += gridDim.x * blockDim.x) {
        const int c = 4 * c4;
        if (c >= cols) {
            for (int r = blockIdx.y; r < rows; r += gridDim.y) reinterpret_cast<uint32_t *>(q + (size_t)r * ldq)[c4] = 0u;
            continue;
        }
        float scale[4] = {}, zp[4] = {};
        if (q_scale && !on_grid)
            for (int j = 0; j < 4; j++) scale[j] = q_scale[c + j], zp[j] = q_zp[c + j];
#pragma unroll kSiteRows
        for (int r = blockIdx.y; r < rows; r += gridDim.y) {
            const float4 v = reinterpret_cast<const float4 *>(x + (size_t)r * cols)[c4];
            float y[4] = {v.x, v.y, v.z, v.w};
            uint32_t bytes = 0;
            for (int j = 0; j < 4; j++) {
                if (act == ACT_GELU) y[j] = gelu(y[j]);
                if (on_grid) bytes |= (uint32_t)(uint8_t)quantize_on_grid(y[j], s, qmin, qmax) << 8 * j;
                else if (q_scale) y[j] = fake_quant(y[j], scale[j], zp[j], qmin, qmax);
            }
            reinterpret_cast<uint32_t *>(q + (size_t)r * ldq)[c4] = on_grid ? bytes : quantize_four(make_float4(y[0], y[1], y[2], y[3]), s);
        }
    }
}

}  // namespace qd
