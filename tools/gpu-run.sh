#!/usr/bin/env bash
# Runs on the GPU host (no Java there): unpacks the carried JRE and runs the GPU tests, the
# compute-sanitizer checks and the latency benchmark against PyTorch. Built by `make gpu-bundle`.
# Usage: tools/gpu-run.sh [tests|sanitize|bench|all]   (results under $OUT)
set -uo pipefail
what=${1:-all}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"
status=0

if [[ $what == tests || $what == all ]]; then
  echo "== GPU tests (kernels vs CPU backend, encoder vs CPU, memory, OOM)"
  "${JAVA[@]}" -jar .gpu/lib/junit-platform-console-standalone.jar execute -cp "$CP" \
    --select-package dev.qdrift.backend.cuda --details=tree --disable-banner 2>&1 | tee "$OUT/gpu-tests.log" || status=1
fi
if [[ $what == sanitize || $what == all ]]; then
  # Every kernel under both tools: the forward kernels, the INT8 GEMMs (mma.sync and, on sm_90, wgmma; quick
  # shapes), the quantize kernels and the backward kernels (the whole-model gradient tests excluded for time).
  SELECTIONS=("--select-class dev.qdrift.backend.cuda.CudaKernelsTest"
              "--select-class dev.qdrift.backend.cuda.Int8GemmTest"
              "--select-class dev.qdrift.backend.cuda.CudaGradientsTest --exclude-methodname .*OnGpu.*")
  set -f  # the selections hold a regex (.*OnGpu.*), not a file pattern
  for tool in memcheck racecheck; do
    for i in "${!SELECTIONS[@]}"; do
      echo "== compute-sanitizer --tool $tool: ${SELECTIONS[$i]}"
      timeout ${SANITIZE_LIMIT_S:-240} compute-sanitizer --tool $tool --target-processes all --print-limit 20 \
        "${JAVA[@]}" -Dqdrift.int8.quick=true -jar .gpu/lib/junit-platform-console-standalone.jar execute -cp "$CP" \
        ${SELECTIONS[$i]} --disable-banner --details=summary > "$OUT/sanitizer-$tool-$i.log" 2>&1
      echo "exit $?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed|skipped)" "$OUT/sanitizer-$tool-$i.log"
    done
  done
  set +f
fi
if [[ $what == bench || $what == all ]]; then
  for shape in bert-base minilm; do
    echo "== qdrift bench shape:$shape"
    "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:$shape --batch 1,32,128 --seq 128 \
      --runs 50 --json "$OUT/bench-$shape.json" || status=1
    echo "== PyTorch reference shape:$shape"
    PYTHONUNBUFFERED=1 python3 bench/gpu/pytorch_bert.py $shape 1,32,128 128 50 5 > "$OUT/torch-$shape.json" || status=1
  done
  python3 bench/gpu/compare.py "$OUT" | tee "$OUT/summary.txt"
  echo "== BERT-base shape: FP32 vs W8A8 simulated vs W8A8 on the s8 kernels"
  for s in "fp32" "w8a8-sym" "w8a8-sym --int8" "w8a8-pt --int8"; do
    tag=$(echo "$s" | tr -d ' -')
    "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --batch 1,32,128 --seq 128 \
      --runs 30 --scheme $s --json "$OUT/int8-$tag.json" 2>&1 | grep -vE "WARNING|^\[" || status=1
  done
fi
exit $status
