#!/usr/bin/env bash
# On the GPU host after `make gpu-bundle`: the AUTO-tile FP16 output test at full size, the BERT-base encoder latency
# (FP32, FP32 with TF32, W8A8 on the s8 kernels) next to PyTorch, then bench/gpu/ig-run.sh (IG-50 incl. TF32 rows).
set -uo pipefail
OUT=${OUT:-/tmp/out}
export OUT
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
echo "== Int8GemmTest f16/s8 outputs (full size)"
"${JAVA[@]}" -jar .gpu/lib/junit-platform-console-standalone.jar execute -cp "$CP" \
  --select-method 'dev.qdrift.backend.cuda.Int8GemmTest#f16AndS8OutputsAreTheRoundedFp32Output(int,int,int,int)' --details=tree --disable-banner > $OUT/int8-f16.log 2>&1
grep -E "✘|tests (successful|failed)" $OUT/int8-f16.log
echo "== W8A8 encoder latency, BERT-base shape b32 s128"
for s in "fp32" "fp32 --tf32" "w8a8-sym --int8" "w8a8-pt --int8"; do
  tag=$(echo "$s" | tr -d ' -')
  "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --batch 1,32,128 --seq 128 \
    --runs 30 --scheme $s --json "$OUT/enc-$tag.json" 2>&1 | grep -vE "WARNING|^\[|INFO" | tail -5
done 2>&1 | tee $OUT/encoder.log
PYTHONUNBUFFERED=1 python3 bench/gpu/pytorch_bert.py bert-base 1,32,128 128 30 5 > "$OUT/torch-bert-base.json"; tail -c 600 $OUT/torch-bert-base.json; echo
bash bench/gpu/ig-run.sh bert-base minilm 2>&1 | tail -30
