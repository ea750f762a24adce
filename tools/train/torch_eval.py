#!/usr/bin/python3
"""PyTorch's own numbers for a trained compressor, on the images `splitwire
eval` picks, to set beside the C runtime's.

    torch_eval.py CKPT_OR_RUN_DIR [--limit N] [--json FILE]

Same selection as `splitwire eval --limit N` (all files sorted by path, the
middle one of each of N equal strides), same input convention, eval mode
(latent rounded to the medians' grid as the coder does).  The rate is the
entropy model's estimate, -log2 of the likelihoods, in bytes: the real stream
adds at most a few bytes of rANS flush and 32-bit padding per image.

Besides top-1 against the labels it reports fidelity to the uncompressed
backbone on the same images: how often the two top-1 classes agree and the
mean KL(backbone || compressed path) of their class distributions.  Near
the backbone's accuracy these vary far less between two compressors than
top-1 does (top-1 also counts the images where a feature error happens to
mend a mistake of the backbone).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.models import imagenette  # noqa: E402
from tools.models.mobilenet_v2 import MobileNetV2, from_unit  # noqa: E402
from tools.train.export import load_checkpoint  # noqa: E402
from tools.train.train import fidelity_sums  # noqa: E402


def pick(n, limit):
    """Indices `splitwire eval --limit` keeps (tools/eval/eval_metrics.c)."""
    if limit <= 0 or limit >= n:
        return list(range(n))
    return [((2 * k + 1) * n) // (2 * limit) for k in range(limit)]


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt", help="checkpoint file or run directory (uses ckpt_last.pt)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, default=0, help="images spread evenly over the set (0 = all)")
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--json", default=None, help="write the result here ('-' = stdout)")
    ap.add_argument("--weights", default="auto", choices=["auto", "live", "ema"],
                    help="as export.py: auto = the moving average where the run kept one")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    path, ck, model = load_checkpoint(a.ckpt, a.weights)
    split = ck["args"]["split"]
    model.eval()
    if ck["args"].get("backbone", "mnv2") == "mnv1":
        from tools.models.mobilenet_v1 import MobileNetV1
        teacher = MobileNetV1.from_tflite()
    else:
        teacher = MobileNetV2.from_tflite()
    items = sorted(imagenette.listing(a.split), key=lambda t: t[0])
    items = [items[i] for i in pick(len(items), a.limit)]
    ids = torch.tensor([k for _, _, _, k in imagenette.classes()]) + 1

    bits = kl = 0.0
    hit1000 = hit10 = agree = 0
    for s in range(0, len(items), a.batch):
        chunk = items[s:s + a.batch]
        u8 = np.stack([imagenette.load_uint8(rel) for rel, _, _ in chunk])
        x = from_unit(torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255.0)
        out, lik, _ = model(x)
        bits += float((-torch.log2(lik)).sum())
        logits = teacher.tail(out, split)
        ref = teacher.tail(teacher.head(x, split), split)
        cls = torch.tensor([c for _, c, _ in chunk])
        in1k = torch.tensor([k for _, _, k in chunk])
        pred = logits[:, 1:].argmax(1)
        hit1000 += int((pred == in1k).sum())
        a_sum, kl_sum = fidelity_sums(logits, ref)
        agree += a_sum
        kl += kl_sum
        hit10 += int((logits[:, ids].argmax(1) == cls).sum())
        print("\r%d/%d" % (s + len(chunk), len(items)), end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    n = len(items)
    res = dict(ckpt=os.path.relpath(path), weights=ck["weights"], images=n, est_bytes=bits / 8 / n,
               bpp=bits / n / (224 * 224), top1_1000=hit1000 / n, top1_10=hit10 / n,
               agree_1000=agree / n, kl=kl / n)
    text = json.dumps(res)
    if a.json == "-":
        print(text)
    else:
        print("%s (%s weights): %d images, %.1f B/image (estimate), %.4f bpp, top-1 %.2f%% 1000-way, %.2f%% 10-way; "
              "top-1 agrees with the backbone's on %.2f%%, KL(backbone || this) %.4f nats"
              % (res["ckpt"], res["weights"], n, res["est_bytes"], res["bpp"], 100 * res["top1_1000"],
                 100 * res["top1_10"], 100 * res["agree_1000"], res["kl"]))
        if a.json:
            with open(a.json, "w") as f:
                f.write(text + "\n")


if __name__ == "__main__":
    main()
