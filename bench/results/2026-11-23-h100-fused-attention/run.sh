#!/usr/bin/env bash
# On the GPU host, after `make gpu-bundle` here (carry .gpu): the fused attention forward — the GPU test package
# (fused vs unfused vs CPU), memcheck and racecheck over the forward kernels, then the BERT-base encoder forward
# (b32, b128: FP32, TF32, W8A8 s8) and IG-50 (FP32, FP32+TF32, W8A8 s8 + TF32) next to PyTorch (FP32, FP16) in the
# same call. Logs and JSON under $OUT (archived); tables last.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
stamp "GPU tests"
OUT=$OUT bash tools/gpu-run.sh tests > /dev/null 2>&1; grep -E "✘|tests (successful|failed)" "$OUT/gpu-tests.log" | head -20
grep -E "fused vs unfused|attention [0-9]" "$OUT/gpu-tests.log" | head -30
export PATH=/tmp/jre/bin:$PATH
CP=".gpu/qdrift.jar:.gpu/qdrift-tests.jar:$(ls .gpu/lib/*.jar | tr '\n' ':')"
JAVA=(java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g)
for tool in memcheck racecheck; do
  stamp "$tool, forward kernels"
  timeout 150 compute-sanitizer --tool $tool --print-limit 20 "${JAVA[@]}" -jar .gpu/lib/junit-platform-console-standalone.jar \
    execute -cp "$CP" --select-class dev.qdrift.backend.cuda.CudaKernelsTest --disable-banner --details=summary \
    > "$OUT/sanitizer-$tool-forward.log" 2>&1
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed)" "$OUT/sanitizer-$tool-forward.log"
done
stamp "encoder BERT-base shape"
for s in "fp32" "fp32 --tf32" "w8a8-sym --int8"; do
  tag=$(echo "$s" | tr -d ' -')
  "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --batch 32,128 --seq 128 --runs 30 \
    --scheme $s --json "$OUT/enc-$tag.json" 2>&1 | grep -vE "WARNING|INFO|^\[" | head -4
done
PYTHONUNBUFFERED=1 python3 bench/gpu/pytorch_bert.py bert-base 32,128 128 30 5 > "$OUT/torch-bert-base.json" 2> "$OUT/torch.err" || tail -3 "$OUT/torch.err"
stamp "IG-50 BERT-base shape"
"${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --ig-steps 50 --seq 128 --runs 10 --warmup 2 \
  --ig-schemes fp32,fp32+tf32,w8a8-sym+int8+tf32 --json "$OUT/ig-bert-base.json" 2>&1 | grep -vE "WARNING|INFO"
PYTHONUNBUFFERED=1 python3 bench/gpu/pytorch_ig.py bert-base 50 128 10 2 > "$OUT/torch-ig-bert-base.json" 2> "$OUT/torch-ig.err" || tail -3 "$OUT/torch-ig.err"
stamp done
python3 - "$OUT" <<'PY'
import json, sys
o = sys.argv[1]
t = {(r["dtype"], r["batch"]): r["median_ms"] for r in json.load(open(f"{o}/torch-bert-base.json"))["rows"]}
print("encoder forward, BERT-base shape, seq 128 (median ms; PyTorch from the same call):")
for tag in ("fp32", "fp32tf32", "w8a8symint8"):
    rows = {r["batch"]: r["medianMs"] for r in json.load(open(f"{o}/enc-{tag}.json"))["rows"]}
    print(f"  {tag:12s} b32 {rows[32]:7.2f}  b128 {rows[128]:7.2f}   vs PyTorch FP16: {t[('float16', 32)] / rows[32]:.2f}x, "
          f"{t[('float16', 128)] / rows[128]:.2f}x")
print("  PyTorch      " + ", ".join(f"{d} b{b} {ms:.2f}" for (d, b), ms in sorted(t.items())))
ig = json.load(open(f"{o}/ig-bert-base.json"))["rows"]
ti = {r["dtype"]: r["ms_per_ig"] for r in json.load(open(f"{o}/torch-ig-bert-base.json"))["rows"]}
print("IG-50, BERT-base shape, seq 128 (ms per IG; PyTorch autograd from the same call: " + ", ".join(f"{k} {v:.2f}" for k, v in ti.items()) + ")")
for r in ig:
    print(f"  {r['scheme']:34s} {r['msPerIg']:7.2f}  vs PyTorch FP16 {ti.get('float16', float('nan')) / r['msPerIg']:.2f}x")
PY
cd "$OUT" && tar -cJf /tmp/att.tar.xz . && rm -rf ./* && mv /tmp/att.tar.xz .
