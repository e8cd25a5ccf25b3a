#!/usr/bin/env bash
# Here, after `make gpu-bundle`: what a real-weight run on the GPU host needs besides .gpu/, in pieces that fit
# the host's 64 MiB per call: .gpu-d/ (the data sets, the probe heads, DJL's tokenizer jar with only its
# linux-x86_64 library, the run script's inputs) and .gpu-m1.. (the two built-in model jars, tar'ed and split).
# Send .gpu + .gpu-d + .gpu-m1 in one call, then each further .gpu-mN in a call of its own while the host is
# still up; bench/gpu/drift-run.sh collects the parts there. The parts are sized for the checkout as it is now:
# run this again after commits that grow it (the device tool refuses a call over 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .gpu-d .gpu-m* && mkdir -p .gpu-d/data .gpu-d/lib
cp -r ../shared/data/sst2 ../shared/data/agnews .gpu-d/data/
cp bench/heads/2026-11-23/*.safetensors .gpu-d/
tok=$(ls target/lib/tokenizers-*.jar)
tmp=$(mktemp -d) && (cd $tmp && unzip -q "$OLDPWD/$tok" && find native -mindepth 2 -maxdepth 2 -type d ! -name linux-x86_64 -exec rm -rf {} + \
  && jar cf "$OLDPWD/.gpu-d/lib/$(basename $tok)" .) && rm -rf $tmp
for j in target/lib/*.jar; do   # the runtime classpath, less ONNX Runtime (verification only) and the models
  [[ -f .gpu/lib/$(basename $j) ]] && continue
  case $(basename $j) in onnxruntime-*|langchain4j-*|tokenizers-*) ;; *) cp $j .gpu-d/lib/ ;; esac
done
tar -cf /tmp/qdrift-models.tar -C target/lib $(cd target/lib && ls langchain4j-embeddings-*.jar)
# Every call also carries the checkout itself (tracked and untracked files): what is left of 63 MiB goes to the parts.
capacity=$(( 63 * 1048576 - $(git ls-files -z --others --cached --exclude-standard | xargs -0 du -cb | tail -1 | cut -f1) ))
first=$(( capacity - $(du -sb .gpu .gpu-d | awk '{s += $1} END {print s}') ))
mkdir -p .gpu-m1 && head -c $first /tmp/qdrift-models.tar > .gpu-m1/part-1
tail -c +$((first + 1)) /tmp/qdrift-models.tar | split -b $capacity -d -a 1 --numeric-suffixes=2 - part-
for p in part-*; do mkdir -p .gpu-m${p#part-} && mv $p .gpu-m${p#part-}/; done
sha256sum /tmp/qdrift-models.tar | cut -d' ' -f1 > .gpu-d/models.sha256
du -sh .gpu .gpu-d .gpu-m*
