#!/usr/bin/env bash
# On the GPU host (carry .gpu, .gpu-h; after `make gpu-bundle gpu-harness` and
# `bench/gpu/variants-build.sh direct='-DQD_WGMMA_TMA_STORE=0' staged='-DQD_WGMMA_TMA_STORE=1'` here): the A/B of
# the s32 output's TMA-store epilogue, the wgmma harness with memcheck and racecheck, the whole GPU test package,
# the Java kernels under compute-sanitizer, and the encoder / IG rows. Logs under $OUT (archived); tables last.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/ab" "$OUT/wgmma"
start=$(date +%s)
OUT="$OUT/ab" bash bench/gpu/variants-run.sh > "$OUT/ab-console.txt" 2>&1  # (variants-run archives its folder)
echo "== A/B done ($(( $(date +%s) - start )) s)"
OUT="$OUT/wgmma" PREBUILT=$PWD/.gpu-h/wgmma_check MEMCHECK_TIMEOUT=150 RACECHECK_TIMEOUT=150 CHECK_TIMEOUT=120 \
  bash bench/gpu/wgmma-check.sh > "$OUT/wgmma/console.txt" 2>&1; echo "== wgmma-check exit $? ($(( $(date +%s) - start )) s)"
grep -E "SUMMARY|memcheck|racecheck|spills|IGMMA" "$OUT/wgmma/console.txt" | tail -8
OUT=$OUT bash tools/gpu-run.sh tests > /dev/null 2>&1
echo "== GPU tests ($(( $(date +%s) - start )) s)"; grep -E "✘|tests (successful|failed|skipped)" "$OUT/gpu-tests.log" | head -20
OUT=$OUT SANITIZE_LIMIT_S=${SANITIZE_LIMIT_S:-70} bash tools/gpu-run.sh sanitize 2>&1 | grep -E "==|SUMMARY|failed"
echo "== sanitizers done ($(( $(date +%s) - start )) s)"
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
for s in "fp32 --tf32" "w8a8-sym --int8"; do
  "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --batch 32,128 --seq 128 --runs 30 \
    --scheme $s --json "$OUT/enc-$(echo "$s" | tr -d ' -').json" 2>&1 | grep -vE "WARNING|INFO|^\[" | head -4
done
echo "== encoder rows done ($(( $(date +%s) - start )) s)"
"${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --ig-steps 50 --seq 128 --runs 10 --warmup 2 \
  --ig-schemes fp32+tf32,w8a8-sym+int8+tf32 --json "$OUT/ig-bert-base.json" 2>&1 | grep -vE "WARNING|INFO" | tail -6
echo "== IG rows done ($(( $(date +%s) - start )) s)"
echo; echo "######## A/B (direct: TMA stores off; staged: the s32 output through shared memory + TMA stores)"
grep -E "^########|^M x N|^[0-9]+x[0-9]+x[0-9]+ |RESULT" "$OUT/ab-console.txt"
echo "## harness"; sed -n '/^== Summary/,$p' "$OUT/wgmma/console.txt" | grep -E "^[0-9]+x|RESULT" | head -6; tail -3 "$OUT/wgmma/console.txt"
cd "$OUT" && tar -cJf /tmp/tma.tar.xz . && rm -rf ./* && mv /tmp/tma.tar.xz .
