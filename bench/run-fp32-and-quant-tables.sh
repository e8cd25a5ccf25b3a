#!/usr/bin/env bash
# The FP32 baselines (issue 2) and the quantization accuracy tables (issue 4) on the real data sets,
# for both built-in models. Resumable: a step whose output exists is skipped. CPU by default;
# DEVICE=cuda to run on a GPU. Outputs: out/heads/, out/quant/, then bench/results/ summaries.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
DEVICE=${DEVICE:-cpu}
EVAL_LIMIT=${EVAL_LIMIT:-}        # e.g. 1000 to cap the held-out sets
SCHEMES=${SCHEMES:-fp32,w8a8,w8a8-pct99.99,w8a8-mse,w8a8-pc,w8a8-pt,peg3,peg4,peg6,mixed,w4a8}
mkdir -p out/heads out/quant
run() { echo "+ $*" >&2; "$@"; }

for model in minilm bge-small; do
  # SST-2: probe on a 8000-sentence stratified sample of train, scored on dev
  [ -f out/heads/$model-sst2.safetensors ] || run ./qdrift train-head --device $DEVICE --model builtin:$model \
      --data $DATA/sst2/train.tsv --task sst2 --limit 8000 --out out/heads/$model-sst2.safetensors
  [ -f out/heads/$model-sst2.eval.json ] || run ./qdrift eval --device $DEVICE --model builtin:$model \
      --head out/heads/$model-sst2.safetensors --data $DATA/sst2/dev.tsv --task sst2 --json out/heads/$model-sst2.eval.json
  # AG News and QNLI have one split here: 70/30 seeded stratified
  for task in agnews qnli; do
    file=$DATA/$task/$( [ $task = agnews ] && echo test.csv || echo dev.tsv )
    [ -f out/heads/$model-$task.safetensors ] || run ./qdrift train-head --device $DEVICE --model builtin:$model \
        --data $file --task $task --split 0.7 --out out/heads/$model-$task.safetensors
    [ -f out/heads/$model-$task.eval.json ] || run ./qdrift eval --device $DEVICE --model builtin:$model \
        --head out/heads/$model-$task.safetensors --data $file --task $task --json out/heads/$model-$task.eval.json
  done
done

for model in minilm bge-small; do
  for task in sst2 agnews qnli; do
    case $task in sst2) file=$DATA/sst2/dev.tsv;; agnews) file=$DATA/agnews/test.csv;; qnli) file=$DATA/qnli/dev.tsv;; esac
    out=out/quant/$model-$task.json
    [ -f $out ] || run ./qdrift quantize-eval --device $DEVICE --model builtin:$model --head out/heads/$model-$task.safetensors \
        --data $file --task $task ${EVAL_LIMIT:+--limit $EVAL_LIMIT} --schemes $SCHEMES \
        --calibration out/quant/$model-$task.calib.json --json $out
  done
done
