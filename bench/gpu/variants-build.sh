#!/usr/bin/env bash
# Builds wgmma harness variants here for bench/gpu/variants-run.sh: each argument NAME='-DFLAG=V ...' builds the harness
# (`make gpu-harness`, wgmma-check.sh's flags) plus those switches into .gpu-h/var/wgmma_check_NAME (its
# ptxas log beside it as .build.txt) and prints its spill lines. Example (the turn-taking A/B, whose switches are in
# bench/results/2026-11-23-h100-turns-ab/turns.diff):
#   bench/gpu/variants-build.sh base='-DQD_WGMMA_PEG_TURNS=0' peg='-DQD_WGMMA_PEG_TURNS=1'
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $# -gt 0 ]] || { echo "usage: $0 NAME='-DFLAG=V ...' ..." >&2; exit 2; }
for spec in "$@"; do
  name=${spec%%=*}; bin=.gpu-h/var/wgmma_check_$name
  make -s gpu-harness HARNESS_DEFS="${spec#*=}" HARNESS_BIN="$bin"
  echo "$name: spills of the wgmma kernels:"; grep -A2 "Compiling entry.*wgmma_gemm_kernel" "$bin.build.txt" | grep spill | sort | uniq -c
done
