#!/usr/bin/env bash
# On the GPU host: the IG-50 and encoder speed rows of several builds of qdrift in one call — the bundle's jar
# (`make gpu-bundle` here, named "new") and earlier builds' jars carried beside it (BUILDS, default
# "base=.gpu/base/qdrift.jar"; make one with `git worktree add /tmp/wt main && (cd /tmp/wt && make build)` and copy its
# target/qdrift.jar, the CUDA library inside) — each row run in rounds (all builds, then all again) so that clock drift
# shows, with PyTorch's IG-50 in the same call for the ratios. Then the whole GPU test package and memcheck /
# racecheck of the kernel tests on the new build. Logs and JSON come back in $OUT/ab.tar.gz (the device returns at
# most 8 files; unpack it into the results folder), the table in $OUT/table.txt and last on the console.
# Env: BUILDS ("name=jar ..."), IG_SCHEMES (qdrift bench --ig-schemes), ENC_SCHEMES (';'-separated qdrift bench
# --scheme args), SANITIZE (the JUnit selection the sanitizers run; default the kernel tests), SKIP_TESTS=1, SKIP_TORCH=1,
# IG_WARMUP (IGs before the 20 timed ones, default 30: the host's Java code is compiled by then; with 2, the first
# timed IGs still run partly interpreted, 0.7 ms slower per IG on the H100 in bench/gpu/trace's timeline).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
BUILDS=${BUILDS:-base=$G/base/qdrift.jar}
declare -A JAR; NAMES=()
for b in $BUILDS; do NAMES+=("${b%%=*}"); JAR[${b%%=*}]=${b#*=}; [[ -f ${JAR[${b%%=*}]} ]] || { echo "no jar at ${b#*=}"; exit 2; }; done
NAMES+=(new); JAR[new]=$G/qdrift.jar
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/device.txt"
IG_SCHEMES=${IG_SCHEMES:-fp32+tf32,w8a8-sym,w8a8-sym+int8+tf32}
ENC_SCHEMES=${ENC_SCHEMES-fp32 --tf32;w8a8-sym;w8a8-sym --int8}  # set and empty: no encoder rows
status=0
for round in 1 2; do
  for build in "${NAMES[@]}"; do
    cp_build=${CP/$G\/qdrift.jar/${JAR[$build]}}
    echo "== round $round, $build: IG-50 BERT-base shape"
    "${JAVA[@]}" -cp "$cp_build" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --ig-steps 50 --seq 128 --runs 20 \
      --warmup ${IG_WARMUP:-30} --ig-schemes "$IG_SCHEMES" --json "$OUT/ig-$build-$round.json" 2>&1 | grep -vE "WARNING|INFO" | tail -4 || status=1
    IFS=';' read -ra encs <<< "$ENC_SCHEMES"
    for s in "${encs[@]}"; do
      "${JAVA[@]}" -cp "$cp_build" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --batch 32,128 --seq 128 --runs 30 \
        --scheme $s --json "$OUT/enc-$build-$round-$(echo "$s" | tr -d ' -').json" > /dev/null 2>&1 || status=1
    done
  done
done
if [[ ${SKIP_TORCH:-0} != 1 ]]; then
  echo "== PyTorch IG-50 BERT-base shape"
  PYTHONUNBUFFERED=1 python3 bench/gpu/pytorch_ig.py bert-base 50 128 10 2 > "$OUT/torch-ig.json" || status=1
fi
if [[ ${SKIP_TESTS:-0} != 1 ]]; then
  echo "== GPU tests (new build)"
  OUT=$OUT bash tools/gpu-run.sh tests > /dev/null 2>&1; grep -E "✘|tests (successful|failed|skipped)" "$OUT/gpu-tests.log" | head -20
  for tool in memcheck racecheck; do
    sel=${SANITIZE:---select-class dev.qdrift.backend.cuda.CudaKernelsTest}
    echo "== compute-sanitizer --tool $tool: $sel"
    timeout 200 compute-sanitizer --tool $tool --target-processes all --print-limit 20 "${JAVA[@]}" -jar $G/lib/junit-platform-console-standalone.jar \
      execute -cp "$CP" $sel --disable-banner --details=summary > "$OUT/sanitizer-$tool.log" 2>&1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed|skipped)" "$OUT/sanitizer-$tool.log"
  done
fi
python3 - "$OUT" "${NAMES[@]}" <<'PY' | tee "$OUT/table.txt"
import json, os, sys, glob
out, names = sys.argv[1], sys.argv[2:]
def load(p):
    try: return json.load(open(p))
    except Exception: return None
torch = load(os.path.join(out, "torch-ig.json"))
t16 = {r["dtype"]: r["ms_per_ig"] for r in torch["rows"]}.get("float16") if torch else None
base = names[0]
print("\nIG-50, BERT-base shape, seq 128: ms per IG (median of 20 after IG_WARMUP warm-up), rounds 1 / 2; x%s = %s's best / this build's best (> 1: faster)" % (base, base))
print("%-28s" % "scheme" + "".join("%17s %7s" % (n + " r1 / r2", "x" + base) for n in names) + " %11s" % "new vs FP16")
rows = {}
for build in names:
    for rnd in (1, 2):
        for r in (load(os.path.join(out, "ig-%s-%d.json" % (build, rnd))) or {}).get("rows", []):
            rows.setdefault(r["scheme"], {})[(build, rnd)] = r["msPerIg"]
for s, v in rows.items():
    if any(v.get((n, k)) is None for n in names for k in (1, 2)): print(s, "incomplete", v); continue
    best = {n: min(v[(n, 1)], v[(n, 2)]) for n in names}
    print("%-28s" % s + "".join("%8.2f / %6.2f %6.2fx" % (v[(n, 1)], v[(n, 2)], best[base] / best[n]) for n in names)
          + " %10s" % ("%.2fx" % (t16 / best["new"]) if t16 else "-"))
if t16: print("PyTorch FP16 IG-50: %.2f ms" % t16)
print("\nEncoder forward, BERT-base shape, seq 128: median ms, best of the two rounds; x%s as above" % base)
print("%-22s %6s" % ("scheme", "batch") + "".join("%9s %7s" % (n, "x" + base) for n in names))
def best(build, tag):
    ms = {}
    for rnd in (1, 2):
        for r in (load(os.path.join(out, "enc-%s-%d-%s.json" % (build, rnd, tag))) or {}).get("rows", []):
            m = r.get("medianMs", r.get("median_ms"))
            if m is not None: ms[r["batch"]] = min(ms.get(r["batch"], 1e9), m)
    return ms
for f in sorted(glob.glob(os.path.join(out, "enc-new-1-*.json"))):
    tag = f.split("enc-new-1-")[1][:-5]
    ms = {n: best(n, tag) for n in names}
    for batch in sorted(ms["new"]):
        if all(batch in ms[n] for n in names):
            print("%-22s %6d" % (tag, batch) + "".join("%9.2f %6.2fx" % (ms[n][batch], ms[base][batch] / ms[n][batch]) for n in names))
PY
# Archived outside $OUT, then moved in: tar refuses a folder that changes (its own archive growing) as it reads it.
(cd "$OUT" && tar czf /tmp/ab.tar.gz --exclude table.txt --exclude device.txt . && find . -type f ! -name table.txt ! -name device.txt -delete \
  && mv /tmp/ab.tar.gz .)
exit $status
