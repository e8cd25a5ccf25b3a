// The few cuBLAS declarations the GEMM harnesses use (values of cublas_api.h), bound at run time from
// libcublas.so.13 as the Java side does: this machine builds them without cuBLAS.
#pragma once
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <library_types.h>

#include <cstdio>
#include <cstdlib>

#include "check.h"

typedef void *cublasHandle_t;
typedef int cublasStatus_t;
enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_16F = 74, CUBLAS_COMPUTE_32F_FAST_16BF = 75,
                           CUBLAS_COMPUTE_32F_FAST_TF32 = 77, CUBLAS_COMPUTE_32F_EMULATED_16BFX9 = 78 };
const int CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_GEMM_DEFAULT = -1, CUBLAS_STATUS_SUCCESS = 0;
static cublasStatus_t (*cublasGemmEx)(cublasHandle_t, int, int, int, int, int, const void *, const void *, cudaDataType, int,
                                      const void *, cudaDataType, int, const void *, void *, cudaDataType, int,
                                      cublasComputeType_t, int);

// Opens cuBLAS, prints the device, and returns a handle with a 64 MiB workspace (exits on any failure).
static cublasHandle_t open_cublas() {
    void *lib = dlopen("libcublas.so.13", RTLD_NOW);
    if (!lib) { fprintf(stderr, "cannot open libcublas.so.13: %s\n", dlerror()); exit(1); }
    auto bind = [&](const char *name) {
        void *f = dlsym(lib, name);
        if (!f) { fprintf(stderr, "no %s in libcublas.so.13\n", name); exit(1); }
        return f;
    };
    auto create = (cublasStatus_t(*)(cublasHandle_t *))bind("cublasCreate_v2");
    auto set_workspace = (cublasStatus_t(*)(cublasHandle_t, void *, size_t))bind("cublasSetWorkspace_v2");
    cublasGemmEx = (decltype(cublasGemmEx))bind("cublasGemmEx");
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s\n", prop.name);
    cublasHandle_t h;
    CHECK(create(&h));
    void *workspace;
    CHECK(cudaMalloc(&workspace, 64 << 20));
    CHECK(set_workspace(h, workspace, 64 << 20));
    return h;
}
