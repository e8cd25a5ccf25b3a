#!/usr/bin/env bash
# On the GPU host, after `make gpu-bundle gpu-harness` here (carry .gpu, .gpu-h): the s8 encoder with its GEMMs on
# our kernels vs on cuBLASLt (--int8-gemm cublaslt) in the same call — the wgmma harness (the epilogue code is
# shared), the GPU test package, memcheck over the INT8 suite (the dequantize pass, cuBLASLt), then the BERT-base
# encoder forward (b32, b128) and IG-50 both ways, and PyTorch FP16 for the encoder. Logs under $OUT; tables last.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
stamp "wgmma harness"
mkdir -p "$OUT/wgmma" && OUT="$OUT/wgmma" PREBUILT=$PWD/.gpu-h/wgmma_check SKIP_RACECHECK=1 SKIP_MEMCHECK=1 CHECK_TIMEOUT=120 \
  bash bench/gpu/wgmma-check.sh > "$OUT/wgmma/console.txt" 2>&1; grep -E "RESULT|wgmma-check:" "$OUT/wgmma/console.txt" | tail -2
stamp "GPU tests"
OUT=$OUT bash tools/gpu-run.sh tests > /dev/null 2>&1; grep -E "✘|tests (successful|failed)" "$OUT/gpu-tests.log" | head -20
grep -E "bit-identical|CPU's own change" "$OUT/gpu-tests.log" | head -12
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
stamp "memcheck, INT8 suite"
timeout 120 compute-sanitizer --tool memcheck --print-limit 20 "${JAVA[@]}" -Dqdrift.int8.quick=true \
  -jar .gpu/lib/junit-platform-console-standalone.jar execute -cp "$CP" --select-class dev.qdrift.backend.cuda.Int8GemmTest \
  --disable-banner --details=summary > "$OUT/sanitizer-memcheck-int8.log" 2>&1
grep -E "ERROR SUMMARY|tests (successful|failed)" "$OUT/sanitizer-memcheck-int8.log"
stamp "encoder BERT-base shape, W8A8 s8: ours vs cuBLASLt"
for g in ours cublaslt; do
  "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --batch 32,128 --seq 128 --runs 30 \
    --scheme w8a8-sym --int8 --int8-gemm $g --json "$OUT/enc-$g.json" 2>&1 | grep -vE "WARNING|INFO|^\[" | head -4
done
PYTHONUNBUFFERED=1 python3 bench/gpu/pytorch_bert.py bert-base 32,128 128 30 5 > "$OUT/torch-bert-base.json" 2> "$OUT/torch.err" || tail -3 "$OUT/torch.err"
stamp "IG-50 BERT-base shape, W8A8 s8 forward + TF32 backward: ours vs cuBLASLt"
for g in ours cublaslt; do
  "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --ig-steps 50 --seq 128 --runs 10 --warmup 2 \
    --ig-schemes w8a8-sym+int8+tf32 --int8-gemm $g --json "$OUT/ig-$g.json" 2>&1 | grep -vE "WARNING|INFO" | tail -2
done
stamp done
python3 - "$OUT" <<'PY'
import json, sys, os
o = sys.argv[1]
enc = {g: {r["batch"]: r for r in json.load(open(f"{o}/enc-{g}.json"))["rows"]} for g in ("ours", "cublaslt")}
try:
    t = json.load(open(f"{o}/torch-bert-base.json"))
except Exception:
    t = None
print("encoder forward, BERT-base shape, seq 128, W8A8 s8 (median ms):")
for b in (32, 128):
    a, l = enc["ours"][b]["medianMs"], enc["cublaslt"][b]["medianMs"]
    print(f"  b{b}: ours {a:.2f}  cuBLASLt+pass {l:.2f}  cuBLASLt/ours time {l/a:.2f}")
if t:
    print("  PyTorch (same call):", ", ".join(f"{r['dtype']} b{r['batch']} {r['median_ms']:.2f}" for r in t["rows"]))
ig = {g: json.load(open(f"{o}/ig-{g}.json"))["rows"][0]["msPerIg"] for g in ("ours", "cublaslt")}
print(f"IG-50 W8A8+TF32 ms: ours {ig['ours']:.2f}  cuBLASLt {ig['cublaslt']:.2f}")
PY
cd "$OUT" && rm -f wgmma/sass.txt && tar -cJf /tmp/lt.tar.xz . && rm -rf ./* && mv /tmp/lt.tar.xz .
