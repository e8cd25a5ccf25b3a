#!/usr/bin/env bash
# INT8 GEMM on the GPU host, after `make gpu-bundle` here: SASS evidence of the kernels (IMMA, ldmatrix,
# cp.async, no local-memory spills; registers per kernel), the correctness tests (Int8GemmTest), the benchmark
# (Int8GemmBenchMain: our mma.sync kernel, plain / PEG / FP16 and s8 outputs, vs cuBLASLt s8 and cuBLAS FP16 /
# FP32), an Nsight Compute profile of two tiles and compute-sanitizer memcheck on the small test shapes.
# Logs under $OUT. Usage: bench/gpu/int8-run.sh [sass] [tests] [bench] [memcheck] [ncu]  (default: all but ncu)
# (TEST_TIMEOUT, BENCH_TIMEOUT: seconds, default 400 and 300)
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
steps=${*:-sass tests bench memcheck}
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
JUNIT=(-jar $G/lib/junit-platform-console-standalone.jar execute -cp "$CP" --select-class dev.qdrift.backend.cuda.Int8GemmTest
       --disable-banner)
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/device.txt"
status=0
summary=()

if [[ $steps == *sass* ]]; then
  python3 -c "import zipfile; open('/tmp/libqdrift_cuda.so','wb').write(zipfile.ZipFile('$G/qdrift.jar').read('native/linux-x86_64/libqdrift_cuda.so'))"
  cuobjdump -sass /tmp/libqdrift_cuda.so > "$OUT/sass.txt" 2>&1
  echo "== SASS per kernel (sm_90a; IMMA / LDSM / LDGSTS / local LDL+STL)"
  awk '/arch = /{arch=$3} /Function :/{f=$3} f ~ /i8|quantize/ && /IMMA|LDSM|LDGSTS|LDL|STL|Function :/ {
         key=arch " " f; k[key]=1; if ($0 ~ /IMMA/) i[key]++; if ($0 ~ /LDSM/) l[key]++; if ($0 ~ /LDGSTS/) g[key]++; if ($0 ~ /LDL|STL/) s[key]++ }
       END { for (x in k) printf "  %-100s IMMA %4d LDSM %4d LDGSTS %3d LDL/STL %d\n", substr(x,1,100), i[x], l[x], g[x], s[x] }' \
    "$OUT/sass.txt" | sed -E 's/_ZN2qd2i811gemm_kernelINS0_4TileI//; s/EEEvPKaS5_iiiNS0_8EpilogueE//; s/_ZN2qd//' | sort > "$OUT/sass-summary.txt"
  grep sm_90a "$OUT/sass-summary.txt"
  summary+=("SASS: IMMA in the whole library: $(grep -c IMMA "$OUT/sass.txt"); LDL/STL in int8 kernels: $(awk '/Function :/{f=$3} f ~ /i8|quantize/ && /LDL|STL/' "$OUT/sass.txt" | wc -l)")
  # registers / stack / local memory per kernel and architecture (Tile<BM,BN,BK,warpsM,warpsN,stages,minCTAs,dbuf>, PEG mode:
  # 0 plain, 1 per-slice fold, 2 per-slice fold with I2F, 3 per-k-step fold)
  cuobjdump -res-usage /tmp/libqdrift_cuda.so 2>&1 | awk '/arch = /{arch=$3} /Function/{f=$2} /REG:/{ if (f ~ /gemm_kernel|quantize|repack/) print arch, f, $0 }' \
    | sed -E 's/_ZN2qd2i811gemm_kernelINS0_4TileI//; s/EEEvPKaS5_iiiNS0_8EpilogueE//; s/_ZN2qd//; s/Resource usage://' > "$OUT/res-usage.txt"
  grep -E "sm_90a" "$OUT/res-usage.txt" | sed -E 's/ +/ /g' | head -40
fi
if [[ $steps == *tests* ]]; then
  echo "== Int8GemmTest"
  timeout ${TEST_TIMEOUT:-400} "${JAVA[@]}" "${JUNIT[@]}" --details=tree > "$OUT/int8-tests.log" 2>&1; rc=$?
  [[ $rc == 0 ]] || status=1
  grep -E "✘|worst|quantize \+|f16 / s8|MethodSource|tile [0-9]:" "$OUT/int8-tests.log" | head -80
  summary+=("tests (exit $rc): $(grep -E 'tests (successful|failed|skipped|aborted)' "$OUT/int8-tests.log" | tr -s ' ' | tr '\n' ' ')")
fi
if [[ $steps == *bench* ]]; then
  echo "== Int8GemmBenchMain"
  timeout ${BENCH_TIMEOUT:-300} "${JAVA[@]}" -cp "$CP" dev.qdrift.backend.cuda.Int8GemmBenchMain > "$OUT/int8-bench.log" 2>&1 || status=1
  cat "$OUT/int8-bench.log"
fi
if [[ $steps == *ncu* ]]; then
  # One launch each of the listed tiles at 16384x3072x768, after 40 of its warm-up launches.
  for tile in ${NCU_TILES:-6 0}; do
    echo "== ncu, tile $tile, 16384x3072x768 int32"
    timeout 120 ncu --target-processes all -k regex:gemm_kernel --launch-skip 40 --launch-count 1 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
      --section MemoryWorkloadAnalysis --section Occupancy \
      --metrics regex:'smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio',sm__inst_executed_pipe_tensor_op_imma.avg.pct_of_peak_sustained_active,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum \
      "${JAVA[@]}" -Dqdrift.int8.bench.tiles=$tile -cp "$CP" dev.qdrift.backend.cuda.Int8GemmBenchMain 16384,3072,768 > "$OUT/ncu-tile$tile.txt" 2>&1
    grep -E "Duration|Throughput|Pipe|Issue|Warp Cycles|Eligible|Active Warps|Occupancy|Registers|Bank|stalled_[a-z_]*_per_issue_active.ratio +[a-z]* +[0-9.]*[1-9]" "$OUT/ncu-tile$tile.txt" | grep -vE " 0(\.0+)?$" | head -60
  done
fi
if [[ $steps == *memcheck* ]]; then
  echo "== compute-sanitizer memcheck, Int8GemmTest quick (products <= 1.5 M MACs)"
  timeout 150 compute-sanitizer --tool memcheck --print-limit 10 --target-processes all "${JAVA[@]}" -Dqdrift.int8.quick=true \
    "${JUNIT[@]}" --details=summary > "$OUT/int8-memcheck.log" 2>&1
  summary+=("memcheck (exit $?): $(grep -E 'ERROR SUMMARY|tests (successful|failed)' "$OUT/int8-memcheck.log" | tr -s ' ' | tr '\n' ' ')")
fi
echo "== summary"
[[ -f $OUT/sass-summary.txt ]] && echo "SASS per kernel (arch, kernel = Tile<BM,BN,BK,warpsM,warpsN,stages,minCTAs,dbuf>, PEG):" && cat "$OUT/sass-summary.txt"
printf '%s\n' "${summary[@]}"
exit $status
