"""Sums the kernel durations of an `ncu --csv --page raw --metrics gpu__time_duration.sum` log by kernel and by
kind (GEMMs of cuBLAS / cuBLASLt / ours, attention pieces, normalization, element-wise, quantization), and prints
the totals, largest first. Usage: kernel_breakdown.py FILE.csv"""
import csv, re, sys
from collections import defaultdict

KINDS = [  # (kind, pattern on the kernel name), first match wins
    ("GEMM s8 (ours)", r"gemm_kernel|wgmma_gemm"),
    ("GEMM cuBLAS", r"gemm|cutlass|sm90_xmma|nvjet|sgemm|gemv|ampere_|Kernel2"),
    ("attention (fused, or pointers + softmax around cuBLAS)", r"fused_attention|head_pointers|split_heads|merge_heads|softmax"),
    ("LayerNorm", r"layernorm"),
    ("GELU / bias / activation", r"gelu|bias|activation"),
    ("quantize / fake-quant", r"quant"),
    ("FP16 operands (conversion)", r"to_half"),
    ("IG path (interpolate, sums), pooling, embedding, copies", r"interpolate|weighted|pool|embed|copy"),
]

def main(path):
    lines = [l for l in open(path, errors="replace") if l.startswith('"')]
    rows = list(csv.reader(lines))
    if not rows:
        print("no kernels profiled in", path); return
    head = rows[0]
    name_col, time_col = head.index("Kernel Name"), head.index("gpu__time_duration.sum")
    unit = rows[1][time_col] if len(rows) > 1 else ""
    scale = {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0, "second": 1e3}.get(unit, None)
    data = rows[2:] if scale is not None else rows[1:]
    scale = scale or 1e-6
    by_kernel, by_kind, count = defaultdict(float), defaultdict(float), defaultdict(int)
    for r in data:
        try:
            ms = float(r[time_col].replace(",", "")) * scale
        except ValueError:
            continue
        name = r[name_col]
        short = re.sub(r"\(.*", "", name)[:70]
        by_kernel[short] += ms
        count[short] += 1
        kind = next((k for k, p in KINDS if re.search(p, name, re.I)), "other")
        by_kind[kind] += ms
    total = sum(by_kind.values())
    print("%d kernel launches, %.2f ms of kernel time (serialized by the profiler)" % (sum(count.values()), total))
    print("%-56s %9s %6s" % ("kind", "ms", "share"))
    for k, v in sorted(by_kind.items(), key=lambda x: -x[1]):
        print("%-56s %9.2f %5.1f%%" % (k, v, 100 * v / total))
    print("\n%-70s %7s %9s" % ("kernel (top 15)", "calls", "ms"))
    for k, v in sorted(by_kernel.items(), key=lambda x: -x[1])[:15]:
        print("%-70s %7d %9.2f" % (k, count[k], v))

if __name__ == "__main__":
    main(sys.argv[1])
