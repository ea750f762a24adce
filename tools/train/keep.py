#!/usr/bin/python3
"""Keeps a training run in the repository so a later machine can resume it.

    keep.py RUN_DIR [OUT_DIR]     (default OUT_DIR: models/runs/<run name>)

Writes ckpt_last.pt without the optimizer state (about a third of the size),
plus args.json and train.log. To resume elsewhere:

    mkdir -p build-ml/runs && cp -r models/runs/<run> build-ml/runs/
    OMP_NUM_THREADS=2 /usr/bin/python3 tools/train/train.py --lmbda <lambda> [--epochs N]

train.py then restarts Adam from the kept weights.
"""
import os
import shutil
import sys

import torch

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    run = os.path.abspath(sys.argv[1])
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.join(REPO, "models", "runs",
                                                               os.path.basename(run))
    ck = torch.load(os.path.join(run, "ckpt_last.pt"), map_location="cpu")
    slim = {k: v for k, v in ck.items() if k not in ("opt", "aux_opt", "torch_rng")}
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "ckpt_last.pt.tmp")
    torch.save(slim, tmp)
    os.replace(tmp, os.path.join(out, "ckpt_last.pt"))
    for name in ("args.json", "train.log"):
        shutil.copy(os.path.join(run, name), os.path.join(out, name))
    print("keep: %s -> %s (epoch %d, step %d, %d bytes)" % (
        run, out, ck["epoch"], ck["global_step"], os.path.getsize(os.path.join(out, "ckpt_last.pt"))))


if __name__ == "__main__":
    main()
