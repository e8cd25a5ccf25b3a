#!/usr/bin/env bash
# On the GPU host, after `make gpu-bundle gpu-harness` here (the harness binary and its ptxas log in .gpu-h/,
# built with wgmma-check.sh's flags; carry .gpu and .gpu-h): with VARIANTS=1 an A/B of the harness variants in
# .gpu-h/var (bench/gpu/variants-build.sh; every one there runs, up to 200 s each), the standalone wgmma check + PEG table with memcheck and racecheck, the whole GPU
# test package, every kernel family under compute-sanitizer, and the IG / encoder speed rows. Logs under $OUT;
# tables last.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
if [[ ${VARIANTS:-0} == 1 ]]; then
  echo "== harness variants (A/B)"
  mkdir -p "$OUT/ab" && OUT="$OUT/ab" bash bench/gpu/variants-run.sh > "$OUT/ab-console.txt" 2>&1  # (it archives its folder)
  grep -E "^########|^M x N|^[0-9]+x[0-9]+x[0-9]+ |RESULT" "$OUT/ab-console.txt"
fi
echo "== wgmma harness (PEG table)"
mkdir -p "$OUT/wgmma" && OUT="$OUT/wgmma" PREBUILT=$PWD/.gpu-h/wgmma_check MEMCHECK_TIMEOUT=150 RACECHECK_TIMEOUT=150 CHECK_TIMEOUT=120 \
  bash bench/gpu/wgmma-check.sh > "$OUT/wgmma/console.txt" 2>&1
tail -25 "$OUT/wgmma/console.txt"
echo "== GPU tests"
OUT=$OUT bash tools/gpu-run.sh tests > /dev/null 2>&1; grep -E "✘|tests (successful|failed)" "$OUT/gpu-tests.log" | head -20
echo "== sanitizers"
OUT=$OUT SANITIZE_LIMIT_S=${SANITIZE_LIMIT_S:-70} bash tools/gpu-run.sh sanitize 2>&1 | grep -E "==|SUMMARY|failed"
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
echo "== IG-50 BERT-base shape"
"${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --ig-steps 50 --seq 128 --runs 10 --warmup 2 \
  --ig-schemes fp32+tf32,w8a8-sym+int8+tf32 --json "$OUT/ig-bert-base.json" 2>&1 | grep -vE "WARNING|INFO"
echo "== encoder BERT-base shape"
for s in "fp32 --tf32" "w8a8-sym --int8"; do
  "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --batch 32,128 --seq 128 --runs 30 \
    --scheme $s --json "$OUT/enc-$(echo "$s" | tr -d ' -').json" 2>&1 | grep -vE "WARNING|INFO|^\[" | head -3
done
cd "$OUT" && tar -cJf /tmp/verify.tar.xz . && rm -rf ./* && mv /tmp/verify.tar.xz .
