// Host transfers in float64 (Java's double): the host copies its doubles as they are and the device rounds them to
// float32, or widens float32 results to float64 for the host to copy back, so that no per-element loop runs on the host
// (an IG's input and result, 98304 values each at BERT-base's 128 tokens). CPU counterparts: the casts in CpuBackend.
#pragma once
#include "common.cuh"

namespace qd {

// y = (float) x, rounded to nearest even, as Java's (float) cast.
__global__ void round_to_float_kernel(const double *x, size_t n, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) y[i] = __double2float_rn(x[i]);
}

// y = (double) x, exact.
__global__ void widen_to_double_kernel(const float *x, size_t n, double *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) y[i] = (double)x[i];
}

}  // namespace qd
