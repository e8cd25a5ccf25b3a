#!/usr/bin/env bash
# Builds wgmma harness variants here for bench/gpu/variants-run.sh: each argument NAME='-DFLAG=V ...' compiles
# bench/gpu/wgmma_check.cu with wgmma-check.sh's flags plus those switches into .gpu-h/var/wgmma_check_NAME (its
# ptxas log beside it as .build.txt) and prints its spill lines. Example (the turn-taking A/B, whose switches are in
# bench/results/2026-11-23-h100-turns-ab/turns.diff):
#   bench/gpu/variants-build.sh base='-DQD_WGMMA_PEG_TURNS=0' peg='-DQD_WGMMA_PEG_TURNS=1'
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $# -gt 0 ]] || { echo "usage: $0 NAME='-DFLAG=V ...' ..." >&2; exit 2; }
FLAGS=(-O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -Icuda -Inative -DQD_WGMMA_WATCHDOG_NS=5000000000ull -Xptxas -v,-warn-spills)
mkdir -p .gpu-h/var
for spec in "$@"; do
  name=${spec%%=*}; read -r -a defs <<< "${spec#*=}"
  obj=$(mktemp -d)
  for src in native/int8_wgmma.cu native/int8.cu bench/gpu/wgmma_check.cu; do
    nvcc "${FLAGS[@]}" "${defs[@]}" -c "$src" -o "$obj/$(basename "$src").o" >> "$obj/build.txt" 2>&1
  done
  nvcc -gencode arch=compute_90a,code=sm_90a "$obj"/*.o -ldl -o ".gpu-h/var/wgmma_check_$name"
  cp "$obj/build.txt" ".gpu-h/var/wgmma_check_$name.build.txt"
  echo "$name: spills of the wgmma kernels:"; grep -A2 "Compiling entry.*wgmma_gemm_kernel" "$obj/build.txt" | grep spill | sort | uniq -c
  rm -rf "$obj"
done
