#!/usr/bin/env python3
"""GPU memory bandwidth as PyTorch measures it, the independent figure for infermeter's probe
(issue 9: the probe must reach >= 95% of the best of these on the same GPU).

Kernels on SIZE_GIB (1) GiB float32 tensors on cuda: read-only sum (x.sum()), copy (y.copy_(x)),
add (torch.add(x, y, out=z)) and triad (torch.add(y, z, alpha=3.0, out=x)). Each timed batch runs
ITERS (20) kernels between two CUDA events and synchronizes once; the best of BATCHES (20) batches
counts. Bytes: sum 1 read, copy 1 read + 1 write, add/triad 2 reads + 1 write (STREAM's counting).

Usage: python3 bench/torch_bandwidth.py [--infermeter build/bin/infermeter] [--device cuda:0]
With --infermeter it also runs `infermeter roofline --device CUDA0 --reprobe -o json` on the same
GPU and prints infermeter's figures and the ratio to the best PyTorch figure.
"""
import argparse
import json
import os
import subprocess

import torch


def best_rate(fn, bytes_per_op, iters, batches):
    fn()  # warm-up: allocation, kernel selection
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(batches):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        stop.record()
        stop.synchronize()
        best = min(best, start.elapsed_time(stop) / 1e3)
    return bytes_per_op * iters / best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--infermeter", help="path of the infermeter binary to compare")
    ap.add_argument("--ggml-device", default="CUDA0", help="infermeter --device for the comparison")
    args = ap.parse_args()
    size = float(os.environ.get("SIZE_GIB", "1")) * (1 << 30)
    iters = int(os.environ.get("ITERS", "20"))
    batches = int(os.environ.get("BATCHES", "20"))
    n = int(size) // 4
    dev = torch.device(args.device)
    x = torch.ones(n, dtype=torch.float32, device=dev)
    y = torch.ones(n, dtype=torch.float32, device=dev)
    z = torch.zeros(n, dtype=torch.float32, device=dev)
    b = n * 4
    rates = {
        "read (sum)": best_rate(lambda: x.sum(), b, iters, batches),
        "copy": best_rate(lambda: y.copy_(x), 2 * b, iters, batches),
        "add": best_rate(lambda: torch.add(x, y, out=z), 3 * b, iters, batches),
        "triad": best_rate(lambda: torch.add(y, z, alpha=3.0, out=x), 3 * b, iters, batches),
    }
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(dev)}, {size / (1 << 30):.2f} GiB per tensor, "
          f"{iters} kernels per timed batch, best of {batches}")
    for k, v in rates.items():
        print(f"{k:<12} {v / 1e12:7.3f} TB/s")
    best = max(rates.values())
    print(f"best_torch {best / 1e12:.3f} TB/s")
    if args.infermeter:
        out = subprocess.run([args.infermeter, "-q", "roofline", "-m", "synth:tiny", "--device", args.ggml_device,
                              "--reprobe", "-o", "json"], check=True, capture_output=True, text=True).stdout
        c = json.loads(out)["ceilings"]
        for k in ("mem_read_bytes_per_s", "mem_copy_bytes_per_s", "mem_triad_bytes_per_s", "mem_bw_bytes_per_s"):
            print(f"infermeter {k:<24} {c[k] / 1e12:7.3f} TB/s")
        print(f"ratio infermeter/torch {c['mem_bw_bytes_per_s'] / best:.3f} (target >= 0.95; infermeter's kind: "
              f"{c.get('mem_bw_kind', '?')})")


if __name__ == "__main__":
    main()
