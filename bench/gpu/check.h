// CHECK for the bench harnesses: a nonzero status (CUDA or cuBLAS) prints where and exits.
#pragma once
#include <cstdio>
#include <cstdlib>

#define CHECK(x)                                                                                          \
    do {                                                                                                  \
        auto s_ = (x);                                                                                    \
        if (s_ != 0) { fprintf(stderr, "%s:%d %s -> %d\n", __FILE__, __LINE__, #x, (int)s_); exit(1); } \
    } while (0)
