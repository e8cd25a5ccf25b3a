#!/usr/bin/env bash
# Hopper wgmma s8 GEMM (cuda/int8_gemm_wgmma.cuh, native/int8_wgmma.cu) on an sm_90 GPU host with the CUDA 13
# toolkit: builds the standalone harness bench/gpu/wgmma_check.cu, shows the kernels' registers / spills
# (ptxas) and SASS (IGMMA, TMA, no local memory) of the plain and the PEG ("peg") kernels, runs compute-sanitizer
# memcheck on a subset of the small shapes and racecheck on a smaller one, then the whole check + benchmark,
# whose tables come last.
#
# Usage, from anywhere: bench/gpu/wgmma-check.sh      Env: OUT (logs and wgmma.json; default /tmp/wgmma-out),
# OUT_BIN (the harness binary; default /tmp/wgmma_check), SKIP_MEMCHECK=1, SKIP_RACECHECK=1, time limits in
# seconds MEMCHECK_TIMEOUT (400), RACECHECK_TIMEOUT (300), CHECK_TIMEOUT (600).
# Success: the last lines read "RESULT: PASS" and "wgmma-check: OK"; exit status 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/wgmma-out}
mkdir -p "$OUT"
export OUT
BIN=${OUT_BIN:-/tmp/wgmma_check}
OBJ=$(mktemp -d)
status=0
summary=()

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader 2>&1 | tee "$OUT/device.txt"
nvcc --version | tail -1

# ---- build: the three translation units in parallel, sm_90a only. The watchdog makes a pipeline deadlock
# trap (launch failure) after a 5 s barrier wait instead of hanging the run.
echo "== build"
if [[ -n ${PREBUILT:-} ]]; then   # built elsewhere with the same flags (saves the GPU host's time): binary + ptxas log
  cp "$PREBUILT" "$BIN" && cp "$PREBUILT.build.txt" "$OUT/build-wgmma.txt" && cp "$PREBUILT.build.txt" "$OUT/build.txt"
fi
FLAGS=(-O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -Icuda -Inative -DQD_WGMMA_WATCHDOG_NS=5000000000ull
       -Xptxas -v,-warn-spills)
built=1
[[ -n ${PREBUILT:-} ]] || {
nvcc "${FLAGS[@]}" -c native/int8_wgmma.cu -o "$OBJ/int8_wgmma.o" > "$OUT/build-wgmma.txt" 2>&1 & p1=$!
nvcc "${FLAGS[@]}" -c native/int8.cu -o "$OBJ/int8.o" > "$OUT/build-int8.txt" 2>&1 & p2=$!
nvcc "${FLAGS[@]}" -c bench/gpu/wgmma_check.cu -o "$OBJ/wgmma_check.o" > "$OUT/build-check.txt" 2>&1 & p3=$!
for p in $p1 $p2 $p3; do wait $p || built=0; done
[[ $built == 1 ]] && nvcc -gencode arch=compute_90a,code=sm_90a "$OBJ"/*.o -ldl -o "$BIN" > "$OUT/build-link.txt" 2>&1 || built=0
cat "$OUT"/build-*.txt > "$OUT/build.txt"
}
if [[ $built != 1 ]]; then
  grep -v "ptxas info" "$OUT/build.txt" | head -60
  echo "RESULT: BUILD FAILED"
  exit 3
fi
echo "registers / spills of the wgmma kernels (config BN x stages x [plain: s32 staging boxes per warp | peg: output type], peg: the PEG variant):"
awk '/Compiling entry function .*wgmma_gemm_kernel/ { match($0, /ConfigILi[0-9]+(ELi-?[0-9]+|ELb[01])*E/); c = substr($0, RSTART + 9, RLENGTH - 9);
       gsub(/ELi|ELb/, " x ", c); gsub(/E$/, "", c); name = c ($0 ~ /PegConfig/ ? " peg" : ""); next }
     name != "" && /stack frame/ { sub(/^ +/, ""); frame = $0; next }
     name != "" && /Used [0-9]+ registers/ { sub(/^.*: /, ""); printf "  %-10s %s; %s\n", name, $0, frame; name = "" }' "$OUT/build-wgmma.txt"
grep -i -E "warning|C75[0-9][0-9]" "$OUT/build.txt" | grep -v "ptxas info" | head -20
spills=$(awk '/Compiling entry function .*wgmma_gemm_kernel/ {w = 1; next} w && /spill stores/ {print; w = 0}' "$OUT/build-wgmma.txt" | grep -c -v " 0 bytes spill stores, 0 bytes spill loads")
summary+=("build: wgmma kernels with spills: $spills (want 0)")
[[ $spills == 0 ]] || status=1

# ---- SASS of the wgmma kernels: IGMMA (wgmma), UTMALDG (TMA loads), UTMASTG (TMA stores: the staged s32 kernels), SYNCS (mbarriers), LDL/STL (local memory).
echo "== SASS (sm_90a)"
if cuobjdump -sass "$BIN" > "$OUT/sass.txt" 2>&1; then
  awk '/Function :/ { f = $3; if (f ~ /wgmma_gemm_kernel/) { match(f, /ConfigILi[0-9]+(ELi-?[0-9]+|ELb[01])*E/); n = substr(f, RSTART + 9, RLENGTH - 9);
                      gsub(/ELi|ELb/, "x", n); gsub(/E$/, "", n); if (f ~ /PegConfig/) n = n "-peg"; k[n] = 1 } else n = "" }
       n != "" { if ($0 ~ /IGMMA/) ig[n]++; if ($0 ~ /HGMMA/) hg[n]++; if ($0 ~ /UTMALDG/) tma[n]++; if ($0 ~ /SYNCS/) sy[n]++;
                 if ($0 ~ /UTMASTG/) st[n]++;
                 if ($0 ~ /WARPGROUP/) wg[n]++; if ($0 ~ /USETMAXREG/) mr[n]++; if ($0 ~ /[^A-Z](LDL|STL)[. ]/) l[n]++ }
       END { for (x in k) printf "  config %-10s IGMMA %3d  HGMMA %d  UTMALDG %2d  UTMASTG %d  SYNCS %3d  WARPGROUP %3d  USETMAXREG %d  LDL/STL %d\n",
                                  x, ig[x], hg[x], tma[x], st[x], sy[x], wg[x], mr[x], l[x] }' "$OUT/sass.txt" | sort | tee "$OUT/sass-summary.txt"
  igmma=$(awk '{s += $4} END {print s + 0}' "$OUT/sass-summary.txt")
  local_mem=$(awk '{s += $NF} END {print s + 0}' "$OUT/sass-summary.txt")
  tma_st=$(awk '{for (i = 1; i < NF; i++) if ($i == "UTMASTG") s += $(i + 1)} END {print s + 0}' "$OUT/sass-summary.txt")
  summary+=("SASS: IGMMA instructions in the wgmma kernels: $igmma (want > 0); UTMASTG (the staged s32 output): $tma_st (want > 0); LDL/STL: $local_mem (want 0)")
  [[ $igmma -gt 0 && $tma_st -gt 0 && $local_mem == 0 ]] || status=1
else
  summary+=("SASS: cuobjdump failed (see $OUT/sass.txt)")
fi

# ---- compute-sanitizer: memcheck over a subset of the small shapes (out-of-bounds epilogue stores etc.),
# racecheck (shared-memory hazards) over one plain and one PEG shape. The harness's --memcheck / --racecheck
# flags pick those subsets; a tool's run is skipped with SKIP_MEMCHECK=1 / SKIP_RACECHECK=1.
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
sanitize() {  # tool, time limit, what its summary line counts
  local tool=$1 limit=$2 unit=$3 rc
  echo "== compute-sanitizer $tool"
  if [[ -z $CS ]]; then summary+=("$tool: compute-sanitizer not found, skipped"); return; fi
  timeout "$limit" "$CS" --tool "$tool" --error-exitcode 9 "$BIN" --"$tool" > "$OUT/$tool.log" 2>&1; rc=$?
  grep -E "RACECHECK SUMMARY|ERROR SUMMARY|RESULT|Invalid|hazard|FAIL" "$OUT/$tool.log" | head -20
  summary+=("$tool: exit $rc ($(grep -o -E '(RACECHECK|ERROR) SUMMARY: [0-9]* (hazard|error)[s]*[^)]*' "$OUT/$tool.log" | tail -1)) (want exit 0, 0 $unit)")
  [[ $rc == 0 ]] || status=1
}
[[ ${SKIP_MEMCHECK:-0} == 1 ]] || sanitize memcheck "${MEMCHECK_TIMEOUT:-400}" errors
[[ ${SKIP_RACECHECK:-0} == 1 ]] || sanitize racecheck "${RACECHECK_TIMEOUT:-300}" hazards

# ---- the whole check + benchmark (table last).
echo "== wgmma_check"
timeout "${CHECK_TIMEOUT:-600}" "$BIN" 2>&1 | tee "$OUT/wgmma-check.log"
rc=${PIPESTATUS[0]}
[[ $rc == 0 ]] || status=1
summary+=("harness: exit $rc ($(grep '^RESULT' "$OUT/wgmma-check.log" | tail -1)) (want 0, RESULT: PASS)")

echo
echo "== wgmma-check summary"
for s in "${summary[@]}"; do echo "  $s"; done
rm -rf "$OBJ"
[[ $status == 0 ]] && echo "wgmma-check: OK" || echo "wgmma-check: FAILED"
exit $status
