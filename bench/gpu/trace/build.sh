#!/usr/bin/env bash
# Builds the CUPTI timeline tracer into .gpu/trace/ with libcupti beside it (the GPU host's toolkit may keep
# CUPTI elsewhere or not at all). Run a traced command there with bench/gpu/trace/run.sh.
set -euo pipefail
cd "$(dirname "$0")/../../.."
CUDA=${CUDA_HOME:-/usr/local/cuda-13.0}
mkdir -p .gpu/trace
g++ -O2 -std=c++17 -shared -fPIC -I"$CUDA/include" bench/gpu/trace/cupti_trace.cpp \
  -L"$CUDA/lib64" -lcupti -Wl,-rpath,'$ORIGIN' -o .gpu/trace/libqd_trace.so
cp -L "$CUDA/lib64/libcupti.so.13" .gpu/trace/
echo "built .gpu/trace/libqd_trace.so"
