#!/usr/bin/python3
"""Times PyTorch on the SVBI client encoder, in the conditions splitwire's
cpu-fast backend is compared under: oneDNN, channels_last, a fixed thread
count, torch.inference_mode, glibc malloc tuned to keep large blocks (so
allocation does not dominate), warm-up, then median and p99 over N runs.

The weights come from the ONNX file (numpy_helper), loaded into a torch
module of the same structure: three residual down-sampling blocks,
main = conv3x3 s2 -> conv3x3 s1 -> ReLU, shortcut = conv1x1 s2, out = main + shortcut.

Prints one JSON object. Two timings per batch size:
  median_ms / p99_ms      the module call on a channels_last input
  io_median_ms / io_p99_ms  the same plus NCHW -> channels_last on the input and
                          back on the output, which is what a splitwire run
                          (NCHW in, NCHW out) includes.
"""
import argparse
import json
import os
import sys
import time

TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"

if os.environ.get("GLIBC_TUNABLES") != TUNABLES:
    # glibc reads the tunables at start-up: restart with them set.
    os.environ["GLIBC_TUNABLES"] = TUNABLES
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2)

    def forward(self, x):
        # No activation between the two 3x3 convolutions (reference quirk).
        return torch.relu(self.conv2(self.conv1(x))) + self.shortcut(x)


class Encoder(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.blocks = nn.Sequential(
            *[Block(a, b) for a, b in zip(channels[:-1], channels[1:])])

    def forward(self, x):
        return self.blocks(x)


def load_encoder(path):
    model = onnx.load(path)
    state = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
             for t in model.graph.initializer}
    n_blocks = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    channels = [state["blocks.0.conv1.weight"].shape[1]]
    channels += [state[f"blocks.{i}.conv1.weight"].shape[0] for i in range(n_blocks)]
    enc = Encoder(channels)
    enc.load_state_dict(state, strict=True)
    return enc.eval()


def percentile(sorted_ms, q):
    return sorted_ms[min(len(sorted_ms) - 1, int((len(sorted_ms) - 1) * q))]


def time_calls(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    times.sort()
    return times[len(times) // 2], percentile(times, 0.99), times[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "sample", "encoder.onnx"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--check", metavar="INPUT.npy:OUTPUT.npy",
                    help="also compare the module's output on INPUT with OUTPUT (e.g. splitwire's)")
    args = ap.parse_args()
    if args.runs < 50:
        ap.error("--runs must be at least 50")

    torch.set_num_threads(args.threads)
    torch.backends.mkldnn.enabled = True
    enc = load_encoder(args.model).to(memory_format=torch.channels_last)
    result = {
        "framework": "pytorch", "torch": torch.__version__,
        "onednn": torch.backends.mkldnn.is_available(),
        "threads": torch.get_num_threads(), "memory_format": "channels_last",
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
        "model": os.path.normpath(args.model), "size": args.size,
        "runs": args.runs, "warmup": args.warmup, "results": [],
    }
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        if args.check:
            inp, outp = args.check.split(":")
            x = torch.from_numpy(np.load(inp)).contiguous(memory_format=torch.channels_last)
            y = enc(x).contiguous().numpy()
            want = np.load(outp)
            result["check_max_abs_diff"] = float(np.abs(y - want).max())
        for batch in args.batch:
            x_nchw = torch.randn(batch, 3, args.size, args.size, generator=gen)
            x = x_nchw.contiguous(memory_format=torch.channels_last)
            med, p99, best = time_calls(lambda: enc(x), args.warmup, args.runs)
            io_med, io_p99, _ = time_calls(
                lambda: enc(x_nchw.contiguous(memory_format=torch.channels_last)).contiguous(),
                args.warmup, args.runs)
            result["results"].append({
                "batch": batch, "median_ms": round(med, 4), "p99_ms": round(p99, 4),
                "min_ms": round(best, 4), "io_median_ms": round(io_med, 4),
                "io_p99_ms": round(io_p99, 4)})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
