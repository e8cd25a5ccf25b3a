#!/usr/bin/env bash
# Integrated Gradients at scale on the GPU host, after `make gpu-bundle` here: the gradient kernels and
# whole GPU gradients against the CPU backend (CudaGradientsTest), then IG-50 throughput of qdrift
# (FP32, W8A8 simulated, W8A8 with the s8 forward) next to PyTorch autograd (FP32, FP16) in the same call.
# Usage: bench/gpu/ig-run.sh [shape ...]   (default: bert-base minilm); logs and JSON under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
shapes=${*:-bert-base minilm}
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/device.txt"
status=0
echo "== CudaGradientsTest"
timeout 300 "${JAVA[@]}" -jar $G/lib/junit-platform-console-standalone.jar execute -cp "$CP" \
  --select-class dev.qdrift.backend.cuda.CudaGradientsTest --details=tree --disable-banner > "$OUT/gradients-tests.log" 2>&1 || status=1
grep -E "rel err|IG-50|✘|tests (successful|failed)" "$OUT/gradients-tests.log"
for shape in $shapes; do
  echo "== qdrift IG-50 shape:$shape"
  "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:$shape --ig-steps 50 --seq 128 --runs 10 --warmup 2 \
    --ig-schemes ${IG_SCHEMES:-fp32,fp32+tf32,w8a8-sym,w8a8-sym+int8,w8a8-sym+int8+tf32} \
    --json "$OUT/ig-$shape.json" 2>&1 | grep -vE "^WARNING" || status=1
  echo "== PyTorch IG-50 shape:$shape"
  PYTHONUNBUFFERED=1 python3 bench/gpu/pytorch_ig.py $shape 50 128 10 2 > "$OUT/torch-ig-$shape.json" || status=1
done
python3 - "$OUT" $shapes <<'PY'
import json, sys, os
out = sys.argv[1]
print("\n%-10s %-34s %10s %8s %9s %11s %11s %11s %10s" % ("shape", "scheme", "ms per IG", "seq/s", "TFLOPS", "vs torch32",
      "vs torchTF32", "vs torch16", "TF32 err"))
for shape in sys.argv[2:]:
    try:
        q = json.load(open(os.path.join(out, "ig-%s.json" % shape)))
        t = {r["dtype"]: r["ms_per_ig"] for r in json.load(open(os.path.join(out, "torch-ig-%s.json" % shape)))["rows"]}
    except Exception as e:
        print(shape, "missing:", e); continue
    for r in q["rows"]:
        err = "%.1e" % r["tf32Error"] if r.get("tf32Error") is not None else "-"
        print("%-10s %-34s %10.2f %8.2f %9.2f %10.2fx %10.2fx %10.2fx %10s" % (shape, r["scheme"], r["msPerIg"], r["sequencesPerS"],
              r["tflops"], t["float32"] / r["msPerIg"], t["tf32"] / r["msPerIg"], t["float16"] / r["msPerIg"], err))
    for d, ms in t.items():
        print("%-10s %-34s %10.2f %8.2f" % (shape, "pytorch " + d, ms, 1000 / ms))
PY
exit $status
