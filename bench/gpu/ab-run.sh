#!/usr/bin/env bash
# On the GPU host: the IG-50 and encoder speed rows of two builds of qdrift in one call — the bundle's jar
# (`make gpu-bundle` here) and a base jar carried beside it (default .gpu/base/qdrift.jar, e.g. main's before a
# change: `git worktree add /tmp/base main && (cd /tmp/base && make native && mvn -o package -DskipTests)`, then copy
# its target/qdrift.jar), each row run base, new, base, new so that clock drift shows — with PyTorch's IG-50 in the
# same call for the ratios. Then the whole GPU test package and memcheck / racecheck of the kernel tests on the new
# build. Logs and JSON come back in $OUT/ab.tar.gz (the device returns at most 8 files; unpack it into the results
# folder), the table in $OUT/table.txt and last on the console.
# Env: BASE_JAR, IG_SCHEMES (qdrift bench --ig-schemes), ENC_SCHEMES (';'-separated qdrift bench --scheme args),
# SANITIZE (the JUnit selection the sanitizers run; default the kernel tests), SKIP_TESTS=1.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source tools/gpu-java.sh   # G, PATH (the carried JRE), CP, JAVA
BASE_JAR=${BASE_JAR:-$G/base/qdrift.jar}
[[ -f $BASE_JAR ]] || { echo "no base jar at $BASE_JAR"; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/device.txt"
IG_SCHEMES=${IG_SCHEMES:-fp32+tf32,w8a8-sym,w8a8-sym+int8+tf32}
ENC_SCHEMES=${ENC_SCHEMES:-fp32 --tf32;w8a8-sym;w8a8-sym --int8}
status=0
for round in 1 2; do
  for build in base new; do
    cp_build=$CP; [[ $build == base ]] && cp_build=${CP/$G\/qdrift.jar/$BASE_JAR}
    echo "== round $round, $build: IG-50 BERT-base shape"
    "${JAVA[@]}" -cp "$cp_build" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --ig-steps 50 --seq 128 --runs 10 \
      --warmup 2 --ig-schemes "$IG_SCHEMES" --json "$OUT/ig-$build-$round.json" 2>&1 | grep -vE "WARNING|INFO" | tail -4 || status=1
    IFS=';' read -ra encs <<< "$ENC_SCHEMES"
    for s in "${encs[@]}"; do
      "${JAVA[@]}" -cp "$cp_build" dev.qdrift.cli.Main bench --device cuda --model shape:bert-base --batch 32,128 --seq 128 --runs 30 \
        --scheme $s --json "$OUT/enc-$build-$round-$(echo "$s" | tr -d ' -').json" > /dev/null 2>&1 || status=1
    done
  done
done
echo "== PyTorch IG-50 BERT-base shape"
PYTHONUNBUFFERED=1 python3 bench/gpu/pytorch_ig.py bert-base 50 128 10 2 > "$OUT/torch-ig.json" || status=1
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
python3 - "$OUT" <<'PY' | tee "$OUT/table.txt"
import json, os, sys, glob
out = sys.argv[1]
def load(p):
    try: return json.load(open(p))
    except Exception: return None
torch = load(os.path.join(out, "torch-ig.json"))
t16 = {r["dtype"]: r["ms_per_ig"] for r in torch["rows"]}.get("float16") if torch else None
print("\nIG-50, BERT-base shape, seq 128: ms per IG (median of 10), rounds 1 / 2; new/base = base / new time (> 1: new faster)")
print("%-28s %17s %17s %9s %11s" % ("scheme", "base r1 / r2", "new r1 / r2", "new/base", "new vs FP16"))
rows = {}
for build in ("base", "new"):
    for rnd in (1, 2):
        j = load(os.path.join(out, "ig-%s-%d.json" % (build, rnd)))
        for r in (j or {}).get("rows", []): rows.setdefault(r["scheme"], {})[(build, rnd)] = r["msPerIg"]
for s, v in rows.items():
    b = [v.get(("base", k)) for k in (1, 2)]; n = [v.get(("new", k)) for k in (1, 2)]
    if None in b or None in n: print(s, "incomplete", v); continue
    bm, nm = min(b), min(n)
    print("%-28s %8.2f / %6.2f %8.2f / %6.2f %8.2fx %10s" % (s, b[0], b[1], n[0], n[1], bm / nm, "%.2fx" % (t16 / nm) if t16 else "-"))
if t16: print("PyTorch FP16 IG-50: %.2f ms" % t16)
print("\nEncoder forward, BERT-base shape, seq 128: median ms, best of the two rounds")
print("%-22s %6s %9s %9s %9s" % ("scheme", "batch", "base", "new", "new/base"))
for f in sorted(glob.glob(os.path.join(out, "enc-new-1-*.json"))):
    tag = f.split("enc-new-1-")[1][:-5]
    def best(build):
        ms = {}
        for rnd in (1, 2):
            j = load(os.path.join(out, "enc-%s-%d-%s.json" % (build, rnd, tag)))
            for r in (j or {}).get("rows", []):
                m = r.get("medianMs", r.get("median_ms"))
                if m is not None: ms[r["batch"]] = min(ms.get(r["batch"], 1e9), m)
        return ms
    b, n = best("base"), best("new")
    for batch in sorted(n):
        if batch in b: print("%-22s %6d %9.2f %9.2f %8.2fx" % (tag, batch, b[batch], n[batch], b[batch] / n[batch]))
PY
(cd "$OUT" && tar czf ab.tar.gz --exclude ab.tar.gz --exclude table.txt --exclude device.txt . && find . -type f ! -name ab.tar.gz ! -name table.txt ! -name device.txt -delete)
exit $status
