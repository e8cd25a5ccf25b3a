#!/usr/bin/env python3
"""How far one W8A8 IG is from what the device allows: for each kind of kernel in the IG's Nsight Compute breakdown
(bench/gpu/profile-run.sh ig; the kinds of breakdown-*.txt), the floor max(operations / peak rate, bytes / memory
bandwidth), counted from the model's shape and the data formats the kernels read and write today, next to the
measured time.

Arithmetic, not a measurement: the peak rates and the bandwidth are the data sheet's (dense tensor-core rates), which
no kernel reaches; a kernel at 80-90% of the bandwidth or 60-75% of a tensor-core peak is near what is practical.
Bytes count each tensor crossing HBM once per kernel that reads or writes it (weights included, caches not); an
L2-resident re-read would make a floor lower.

Usage: ig_floor.py [--breakdown FILE] [--device h100-sxm|h200] [--layers 12 --hidden 768 --ffn 3072 --seq 128 --steps 50]
"""
import argparse
import re

# Data sheet figures: HBM bytes/s and dense tensor-core operations/s.
DEVICES = {
    "h100-sxm": dict(name="H100 SXM5 80GB HBM3", bw=3.35e12, int8=1979e12, fp16=989e12, tf32=494.7e12),
    "h200": dict(name="H200 SXM 141GB HBM3e", bw=4.8e12, int8=1979e12, fp16=989e12, tf32=494.7e12),
}


def kinds(layers, hidden, ffn, seq, steps):
    """{kind: (operations, bytes, peak key, what is counted)} for one IG: steps x seq tokens in one batch."""
    t, h, f, lay = steps * seq, hidden, ffn, layers
    linear_n = 3 * h + h + f + h          # the outputs of Q|K|V, attention output, FFN intermediate, FFN output
    linear_k = h + h + h + f              # their inputs
    weights = h * (3 * h + h + f) + f * h  # per layer
    macs = t * weights                    # per layer, forward; the input gradients take as many
    return {
        "GEMM s8 (ours)": (2 * macs * lay, lay * (t * linear_k + weights + 4 * t * linear_n), "int8",
                           "s8 operands and weights in, FP32 outputs out (kept for the backward)"),
        "GEMM cuBLAS": (2 * macs * lay, lay * (2 * t * linear_n + 2 * weights + 4 * t * linear_k), "fp16",
                        "FP16 dY and weights in, FP32 input gradients out (no weight gradients)"),
        "attention": (lay * (4 + 10) * t * seq * h,
                      lay * ((4 * 3 * h + 4 * h) * t + (4 * h + 4 * 3 * h + 2 * 3 * h) * t), "fp16",
                      "forward: FP32 q|k|v in, FP32 context out; backward: FP32 dctx and q|k|v in, FP16 dq|dk|dv out"),
        "LayerNorm": (0, (2 * lay + 1) * t * h * ((4 * 4 + 1) + (4 + 4 + 4 + 2)), "fp16",
                      "forward: x and residual in, FP32 output and sum out, s8 operand out; "
                      "backward: dy and sum in, FP32 and FP16 dx out"),
        "GELU / bias / activation": (0, lay * t * f * (4 + 4 + 2), "fp16", "GELU backward: FP32 dG and u in, FP16 out"),
        "quantize / fake-quant": (0, lay * t * (f * (4 + 1) + h * (4 + 1)), "fp16",
                                  "GELU site (u FP32 in, s8 out) and attention-context site (FP32 in, s8 out)"),
    }


def measured(path):
    """{kind: ms} from a breakdown-*.txt; 'attention' sums every kind whose name starts with it. Kinds without a floor
    here (the IG path's interpolation and sums, pooling, embedding, copies: 0.05 ms) are left out of the sum."""
    out = {}
    for line in open(path):
        m = re.match(r"^(\S.*?)\s{2,}([0-9.]+)\s+[0-9.]+%$", line.rstrip())
        if m:
            kind = "attention" if m.group(1).startswith("attention") else m.group(1)
            out[kind] = out.get(kind, 0) + float(m.group(2))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--breakdown")
    ap.add_argument("--device", default="h100-sxm", choices=DEVICES)
    for name, default in (("layers", 12), ("hidden", 768), ("ffn", 3072), ("seq", 128), ("steps", 50)):
        ap.add_argument("--" + name, type=int, default=default)
    a = ap.parse_args()
    dev = DEVICES[a.device]
    got = measured(a.breakdown) if a.breakdown else {}
    print("IG-%d, %d layers, hidden %d, FFN %d, seq %d; floors on the %s data sheet (%.2f TB/s; dense int8 %.0f, fp16 %.0f T/s)"
          % (a.steps, a.layers, a.hidden, a.ffn, a.seq, dev["name"], dev["bw"] / 1e12, dev["int8"] / 1e12, dev["fp16"] / 1e12))
    print("%-26s %9s %9s %9s %9s %10s  %s" % ("kind", "GOP", "MB", "floor ms", "meas. ms", "floor/meas", "bytes counted"))
    total_floor = total_meas = 0.0
    for kind, (ops, nbytes, peak, what) in kinds(a.layers, a.hidden, a.ffn, a.seq, a.steps).items():
        floor = max(ops / dev[peak], nbytes / dev["bw"]) * 1e3
        ms = got.get(kind)
        total_floor += floor
        total_meas += ms or 0
        print("%-26s %9.0f %9.0f %9.2f %9s %10s  %s" % (kind, ops / 1e9, nbytes / 1e6, floor, "%.2f" % ms if ms else "-",
                                                       "%.2f" % (floor / ms) if ms else "-", what))
    print("%-26s %9s %9s %9.2f %9s %10s" % ("sum", "", "", total_floor, "%.2f" % total_meas if got else "-",
                                            "%.2f" % (total_floor / total_meas) if got else "-"))


if __name__ == "__main__":
    main()
