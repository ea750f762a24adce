#!/usr/bin/python3
"""Times PyTorch on the server half: the decoder g_s of a training run plus
MobileNetV2's tail from the split, under the same conditions as
torch_encoder.py (oneDNN, channels_last, fixed threads, inference_mode,
glibc malloc tuned, warm-up, then median and p99).

    torch_server.py RUN_DIR [--batch 1 8] [--runs 50] [--threads 2]

RUN_DIR is a tools/train run (args.json and ckpt_last.pt); its export with
tools/train/export.py gives the decoder.onnx that splitwire times, so both
sides run the same weights. Prints one JSON object.
"""
import argparse
import json
import os
import sys

if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.bench import torch_encoder as te  # noqa: E402  (re-executes with the glibc tunables)

HERE = os.path.dirname(os.path.abspath(__file__))
import torch  # noqa: E402
from tools.models.mobilenet_v2 import MobileNetV2  # noqa: E402
from tools.train import models  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nchw", action="store_true", help="contiguous NCHW instead of channels_last")
    a = ap.parse_args()
    fmt = torch.contiguous_format if a.nchw else torch.channels_last
    torch.set_num_threads(a.threads)
    with open(os.path.join(a.run, "args.json")) as f:
        args = json.load(f)
    comp = models.build(args["arch"], args["split"], width=args["width"],
                        n_blocks=args["dec_blocks"], mid_act=args["mid_act"])
    ck = torch.load(os.path.join(a.run, "ckpt_last.pt"), map_location="cpu")
    comp.load_state_dict(ck["model"])
    dec = comp.decoder.eval().to(memory_format=fmt)
    net = MobileNetV2.from_tflite().eval().to(memory_format=fmt)
    split = args["split"]
    out = {"framework": "pytorch", "torch": torch.__version__, "threads": a.threads,
           "memory_format": "nchw" if a.nchw else "channels_last", "run": a.run, "split": split, "results": []}
    for b in a.batch:
        y = torch.randint(-3, 4, (b, 48, 28, 28)).float().contiguous(memory_format=fmt)
        with torch.inference_mode():
            med, p99, best = te.time_calls(lambda: net.tail(dec(y), split), a.warmup, a.runs)
        out["results"].append({"batch": b, "median_ms": round(med, 4), "p99_ms": round(p99, 4),
                               "min_ms": round(best, 4)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
