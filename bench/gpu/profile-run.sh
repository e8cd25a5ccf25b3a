#!/usr/bin/env bash
# On the GPU host after `make gpu-bundle`: where the time of one IG-50 goes (Nsight Compute, kernel durations
# summed by kernel, over one IG inside a profiler range: -Dqdrift.profile=true), and an Nsight Compute summary of
# the wgmma INT8 GEMM at 16384x3072x768. Usage: bench/gpu/profile-run.sh [ig] [wgmma]   (logs under $OUT)
set -uo pipefail
what=${*:-ig wgmma}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
NCU=(ncu --clock-control none --target-processes all)
if [[ $what == *ig* ]]; then
  for scheme in ${IG_SCHEMES:-w8a8-sym+int8+tf32 fp32+tf32}; do
    tag=$(echo "$scheme" | tr -d '+-')
    echo "== ncu kernel durations, one IG-50 of BERT-base shape, $scheme"
    timeout 200 "${NCU[@]}" --profile-from-start off --metrics gpu__time_duration.sum --csv --page raw \
      "${JAVA[@]}" -Dqdrift.profile=true -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --ig-steps 50 \
      --seq 128 --runs 3 --warmup 1 --ig-schemes "$scheme" > "$OUT/ncu-ig-$tag.csv" 2> "$OUT/ncu-ig-$tag.log"
    echo "exit $?"
    python3 bench/gpu/kernel_breakdown.py "$OUT/ncu-ig-$tag.csv" | tee "$OUT/breakdown-$tag.txt"
  done
fi
if [[ $what == *wgmma* ]]; then
  echo "== ncu, wgmma s8 GEMM 16384x3072x768 int32 (one launch after 40 warm-up launches)"
  timeout 150 "${NCU[@]}" -k regex:wgmma_gemm_kernel --launch-skip 40 --launch-count 1 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy \
    --section LaunchStats --section WarpStateStats \
    --metrics sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_tensor_op_gmma.sum \
    "${JAVA[@]}" -Dqdrift.int8.bench.tiles=wgmma -cp "$CP" dev.qdrift.backend.cuda.Int8GemmBenchMain 16384,3072,768 > "$OUT/ncu-wgmma.txt" 2>&1
  echo "exit $?"
  grep -E "wgmma s32|Duration|Throughput|gmma|Registers|Shared Memory|Occupancy|Eligible|Issued Warp|Warp Cycles|Block Size|Grid Size" \
    "$OUT/ncu-wgmma.txt" | head -40
fi
