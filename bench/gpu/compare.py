"""Prints qdrift's CUDA latency next to PyTorch's from the same run (bench-*.json, torch-*.json)."""
import glob, json, os, sys

out = sys.argv[1]
print(f"{'model':<16}{'batch':>6}{'qdrift fp32 ms':>16}{'torch fp32 ms':>15}{'ratio':>8}{'torch fp16 ms':>15}{'pool MiB':>10}")
for f in sorted(glob.glob(os.path.join(out, "bench-*.json"))):
    ours = json.load(open(f))
    t = json.load(open(f.replace("bench-", "torch-")))
    ref = {(r["dtype"], r["batch"]): r["median_ms"] for r in t["rows"]}
    for r in ours["rows"]:
        b = r["batch"]
        t32, t16 = ref.get(("float32", b)), ref.get(("float16", b))
        print(f"{ours['model']:<16}{b:>6}{r['medianMs']:>16.2f}{t32:>15.2f}{t32 / r['medianMs']:>8.2f}{t16:>15.2f}"
              f"{r['poolPeakBytes'] / 2**20:>10.1f}")
print("ratio = torch fp32 ms / qdrift fp32 ms (above 1: qdrift faster)")
