#!/usr/bin/env python3
"""Where the GPU sat idle in a CUPTI trace (bench/gpu/trace/cupti_trace.cpp), inside each cudaProfilerStart /
cudaProfilerStop range (IgBench's -Dqdrift.profile=true wraps one IG in one).

For each range: its length, the GPU's busy time (the union of kernels, copies and sets), the idle time, and the
idle time split by its cause:
  host late   the API call that queued the next GPU operation started after the previous operation ended
              (the GPU waited for the host to launch);
  queued      the next operation was queued in time but started late (launch latency, a dependency);
and the largest gaps with the operations on both sides and the host API calls running in the gap; the host's time
before the first GPU operation and after the last, and for a range of few API calls (a replayed graph) each call
with the Java time before it.
Usage: gaps.py trace.csv [top]"""
import csv
import sys
from collections import defaultdict

GPU = ("kernel", "memcpy", "memset")


def load(path):
    gpu, api = [], []
    with open(path) as f:
        for r in csv.DictReader(f):
            rec = (int(r["start_ns"]), int(r["end_ns"]), r["name"], r["correlation"])
            (gpu if r["kind"] in GPU else api).append((r["kind"],) + rec)
    gpu.sort(key=lambda r: r[1])
    api.sort(key=lambda r: r[1])
    return gpu, api


def ranges(api):
    starts = [a[2] for a in api if a[3].startswith("cudaProfilerStart")]
    stops = [a[1] for a in api if a[3].startswith("cudaProfilerStop")]
    return [(s, min(e for e in stops if e > s)) for s in starts if any(e > s for e in stops)]


def short(name, n=60):
    name = name.split("(")[0]
    return name if len(name) <= n else name[: n - 3] + "..."


def analyse(gpu, api, lo, hi, top):
    ops = [g for g in gpu if g[1] >= lo and g[2] <= hi]
    calls = [a for a in api if a[1] >= lo and a[2] <= hi]
    launch_by_corr = {a[4]: a for a in calls}
    busy, idle_late, idle_queued, gaps = 0, 0, 0, []
    end = lo
    for i, op in enumerate(ops):
        s, e = op[1], op[2]
        if s > end and i > 0:
            gap = s - end
            launch = launch_by_corr.get(op[4])
            late = launch is not None and launch[1] > end
            if late:
                idle_late += gap
            else:
                idle_queued += gap
            gaps.append((gap, late, ops[i - 1], op, end, s))
        busy += max(0, e - max(s, end))
        end = max(end, e)
    first, last = (ops[0][1], end) if ops else (lo, lo)
    span = last - first
    print("range %.3f ms; GPU from first to last operation %.3f ms: busy %.3f ms, idle %.3f ms "
          "(host late %.3f, queued %.3f); %d kernels, %d copies/sets"
          % ((hi - lo) / 1e6, span / 1e6, busy / 1e6, (span - busy) / 1e6, idle_late / 1e6, idle_queued / 1e6,
             sum(1 for o in ops if o[0] == "kernel"), sum(1 for o in ops if o[0] != "kernel")))
    print("host alone: %.3f ms before the first GPU operation, %.3f ms after the last" % ((first - lo) / 1e6, (hi - last) / 1e6))
    if len(calls) <= 40:  # a replayed IG: few calls, each with the Java time before it
        print("host timeline (us from the range's start): call, its length, Java time since the previous call")
        prev = lo
        for a in calls:
            print("  %9.1f %-34s %8.1f %8.1f" % ((a[1] - lo) / 1e3, short(a[3], 34), (a[2] - a[1]) / 1e3, (a[1] - prev) / 1e3))
            prev = a[2]
        print("  %9.1f %-34s %8s %8.1f" % ((hi - lo) / 1e3, "(range end)", "", (hi - prev) / 1e3))
    per_api = defaultdict(lambda: [0, 0])
    for a in calls:
        per_api[a[3]][0] += 1
        per_api[a[3]][1] += a[2] - a[1]
    print("host API calls in the range (count, total ms, mean us):")
    for name, (n, t) in sorted(per_api.items(), key=lambda kv: -kv[1][1])[:14]:
        print("  %-44s %6d %9.3f %9.2f" % (short(name, 44), n, t / 1e6, t / n / 1e3))
    print("largest idle gaps (us): cause, before -> after, host calls overlapping the gap (us)")
    for gap, late, before, after, g0, g1 in sorted(gaps, key=lambda g: -g[0])[:top]:
        overlap = defaultdict(int)
        for a in calls:
            o = min(a[2], g1) - max(a[1], g0)
            if o > 0:
                overlap[short(a[3], 30)] += o
        host = ", ".join("%s %.0f" % (k, v / 1e3) for k, v in sorted(overlap.items(), key=lambda kv: -kv[1])[:4])
        print("  %8.1f %-6s %s -> %s | %s" % (gap / 1e3, "late" if late else "queued", short(before[3], 40),
                                              short(after[3], 40), host or "none (host in Java)"))


def main():
    path, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 15
    gpu, api = load(path)
    rs = ranges(api)
    if not rs:
        print("no cudaProfilerStart/Stop range in", path)
        return 1
    for i, (lo, hi) in enumerate(rs):
        print("== range %d" % (i + 1))
        analyse(gpu, api, lo, hi, top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
