#!/usr/bin/env bash
# On the GPU host: an A/B of wgmma harness builds that differ only in compile-time switches, in one call, on
# the same GPU. Each binary .gpu-h/var/wgmma_check_NAME (built here by bench/gpu/variants-build.sh) runs in full
# (checks + speed); the summary tables of all variants come last. Carry .gpu-h. Logs and each variant's wgmma.json
# under $OUT/NAME/, archived (the device tool brings back few files); unpack the archive into the results folder
# before committing it: the files inside name the device, a .tar.xz does not show it.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
compgen -G ".gpu-h/var/wgmma_check_*.build.txt" > /dev/null || { echo "no variants in .gpu-h/var: build them with bench/gpu/variants-build.sh"; exit 2; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/device.txt"
for bin in .gpu-h/var/wgmma_check_*; do
  [[ $bin == *.txt ]] && continue
  v=${bin##*wgmma_check_}; mkdir -p "$OUT/$v"
  cp "$bin.build.txt" "$OUT/$v/build.txt"
  start=$(date +%s)
  OUT="$OUT/$v" timeout "${VARIANT_TIMEOUT:-200}" "$bin" > "$OUT/$v/console.txt" 2>&1; echo "$v: exit $? in $(( $(date +%s) - start )) s"
done
for v in "$OUT"/*/; do
  echo; echo "######## $(basename "$v")"; sed -n '/^== Summary/,$p' "$v/console.txt" | grep -v "^wrote"
  grep -E "RESULT" "$v/console.txt" | tail -1
done
cd "$OUT" && tar -cJf /tmp/variants.tar.xz . && rm -rf ./* && mv /tmp/variants.tar.xz .
