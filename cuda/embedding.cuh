// Embedding gather: word + position + token type. CPU counterpart: CpuBackend.embed.
#pragma once
#include "common.cuh"

namespace qd {

// One block per token row; threads stride over the hidden dim (coalesced).
__global__ void embed_kernel(const int *ids, const int *type_ids, const float *word, const float *position,
                             const float *type, int seq, int hidden, float *out) {
    int r = blockIdx.x;
    const float *w = word + (size_t)ids[r] * hidden;
    const float *p = position + (size_t)(r % seq) * hidden;
    const float *t = type + (size_t)type_ids[r] * hidden;
    float *o = out + (size_t)r * hidden;
    for (int d = threadIdx.x; d < hidden; d += blockDim.x) o[d] = w[d] + t[d] + p[d];
}

}  // namespace qd
