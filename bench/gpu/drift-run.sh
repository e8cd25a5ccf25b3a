#!/usr/bin/env bash
# On the GPU host: the drift reproduction (issue 6) with real weights, every run resumable. Each call first
# files away the model-jar parts it was sent (bench/gpu/drift-bundle.sh made them); once all are there it
# reassembles the jars and runs `qdrift drift --device cuda` for MiniLM and bge-small on SST-2 dev and the
# AG News held-out split, IG-50, schemes fp32,w8a8,peg4,mixed,w4a8, the four runs side by side, until
# LIMIT_S seconds have passed; then it stops them (a killed run loses nothing: the next call resumes it).
# Results (examples.jsonl, aggregate.json, logs, wall times) are copied to $OUT every call.
# Usage: bench/gpu/drift-run.sh [collect|run]   Env: LIMIT_S (default 520), EXTRA (more drift options),
# RUNS (default "minilm-sst2 minilm-agnews bge-small-sst2 bge-small-agnews"), SCHEMES (default
# fp32,w8a8,peg4,mixed,w4a8), METHOD (default ig), TAG (appended to each run's folder name).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
W=/tmp/qdrift-drift; mkdir -p $W/parts
for d in .gpu-m*; do [[ -d $d ]] && cp $d/part-* $W/parts/ 2>/dev/null; done
ls -la $W/parts | tail -n +2 | tee "$OUT/parts.txt"
[[ ${1:-run} == collect ]] && exit 0
if [[ ! -f $W/models.ok ]]; then
  cat $(ls $W/parts/part-* | sort -V) > $W/models.tar
  [[ $(sha256sum $W/models.tar | cut -d' ' -f1) == $(cat .gpu-d/models.sha256) ]] || { echo "model parts incomplete"; exit 4; }
  mkdir -p $W/lib && tar -xf $W/models.tar -C $W/lib && rm $W/models.tar && touch $W/models.ok
fi
# The heads name their training data by absolute path (/work/shared/data/...): put the data there.
mkdir -p /work/shared && { [[ -d /work/shared/data ]] || cp -r .gpu-d/data /work/shared/data; }
[[ -x /tmp/jre/bin/java ]] || tar -xJf .gpu/jre.tar.xz -C /tmp
export PATH=/tmp/jre/bin:$PATH RUST_FLAVOR=cpu
CP=".gpu/qdrift.jar:$(ls .gpu/lib/*.jar .gpu-d/lib/*.jar $W/lib/*.jar | grep -v junit | tr '\n' ':')"
JAVA=(java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx12g)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/device.txt"
D=/work/shared/data
pids=()
for run in ${RUNS:-minilm-sst2 minilm-agnews bge-small-sst2 bge-small-agnews}; do
    model=${run%-*} task=${run##*-}
    data=$([[ $task == sst2 ]] && echo $D/sst2/dev.tsv || echo $D/agnews/test.csv)
    dir=$W/runs/$run${TAG:-}; mkdir -p $dir
    ( start=$(date +%s)
      "${JAVA[@]}" -cp "$CP" dev.qdrift.cli.Main drift --device cuda --model builtin:$model --head .gpu-d/$model-$task.safetensors \
        --data $data --task $task --schemes ${SCHEMES:-fp32,w8a8,peg4,mixed,w4a8} --method ${METHOD:-ig} --steps 50 \
        --calibration $dir/calibration.json --out $dir ${EXTRA:-} > $dir/log.$start.txt 2>&1
      echo "$run${TAG:-} exit $? wall $(( $(date +%s) - start )) s (this call)" >> $W/walltimes.txt ) &
    pids+=($!)
done
# The time limit: a watcher that stops the runs (its sleep must not hold this script's stdout open).
( sleep ${LIMIT_S:-520}; for p in "${pids[@]}"; do pkill -TERM -P $p; done ) > /dev/null 2>&1 & killer=$!
wait "${pids[@]}"; pkill -P $killer 2>/dev/null; kill $killer 2>/dev/null
mkdir -p "$OUT/runs" && cp $W/walltimes.txt "$OUT/" && for d in $W/runs/*; do
  mkdir -p "$OUT/runs/$(basename $d)" && cp $d/*.json $d/*.jsonl $d/log.* "$OUT/runs/$(basename $d)/" 2>/dev/null
  echo "$(basename $d): $(wc -l < $d/examples.jsonl 2>/dev/null) lines; $(tail -c 300 $(ls -t $d/log.* | head -1) | tr '\r' '\n' | tail -2 | tr '\n' ' ')"
done
cat $W/walltimes.txt
