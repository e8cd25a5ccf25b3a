"""Prints qdrift's CUDA latency next to PyTorch's from the same run (bench-*.json, torch-*.json)."""
import glob, json, os, sys

out = sys.argv[1]
print(f"{'model':<16}{'batch':>6}{'qdrift fwd ms':>14}{'compute ms':>11}{'graph ms':>10}{'torch fp32 ms':>15}{'ratio':>7}{'torch fp16 ms':>15}{'pool MiB':>10}")
for f in sorted(glob.glob(os.path.join(out, "bench-*.json"))):
    ours = json.load(open(f))
    t = json.load(open(f.replace("bench-", "torch-")))
    ref = {(r["dtype"], r["batch"]): r["median_ms"] for r in t["rows"]}
    for r in ours["rows"]:
        b = r["batch"]
        t32, t16 = ref.get(("float32", b)), ref.get(("float16", b))
        best = min(r['computeMs'], r['graphMs'])
        print(f"{ours['model']:<16}{b:>6}{r['medianMs']:>14.2f}{r['computeMs']:>11.2f}{r['graphMs']:>10.2f}{t32:>15.2f}"
              f"{t32 / best:>7.2f}{t16:>15.2f}{r['poolPeakBytes'] / 2**20:>10.1f}")
print("ratio = torch fp32 ms / qdrift best of (compute, graph) ms, both on device-resident inputs (above 1: qdrift faster)")
