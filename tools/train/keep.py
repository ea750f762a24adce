#!/usr/bin/python3
"""Keeps a training run in the repository so a later machine can resume it.

    keep.py [--half] [--average-only] RUN_DIR [OUT_DIR]
                                          (default OUT_DIR: models/runs/<run name>)

Writes ckpt_last.pt without the optimizer state (about a third of the size),
plus args.json and train.log; a --ema run's moving average is kept beside
its weights.  --half stores the encoder's and decoder's weights as float16
(half again; enough to resume or warm-start from, and loading widens them);
the entropy bottleneck stays float32, so the coder tables exported from a
kept run are the run's own.  --average-only keeps only the moving average,
stored once and named as both the weights and the average (half again; a
resume goes on from the average).  To resume elsewhere:

    mkdir -p build-ml/runs && cp -r models/runs/<run> build-ml/runs/
    OMP_NUM_THREADS=2 /usr/bin/python3 tools/train/train.py --lmbda <lambda> [--epochs N]

train.py then restarts Adam from the kept weights.
"""
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
    argv = sys.argv[1:]
    half = "--half" in argv
    average_only = "--average-only" in argv
    argv = [a for a in argv if a not in ("--half", "--average-only")]
    if len(argv) not in (1, 2):
        sys.exit(__doc__)
    run = os.path.abspath(argv[0])
    out = argv[1] if len(argv) == 2 else os.path.join(REPO, "models", "runs", os.path.basename(run))
    ck = models.load_checkpoint(os.path.join(run, "ckpt_last.pt"))
    slim = {k: v for k, v in ck.items() if k not in ("opt", "aux_opt", "torch_rng")}
    if average_only and "ema" not in ck:
        sys.exit("keep: %s has no moving average (trained without --ema)" % run)
    if half:
        for key in ("ema",) if average_only else ("model", "ema"):
            if key in ck:
                slim[key] = {k: (v.half() if k.startswith(("encoder.", "decoder.")) and v.is_floating_point() else v)
                             for k, v in ck[key].items()}
    if average_only:
        # The same tensors under both keys: torch.save writes them once, and
        # readers still see that the weights are the average.
        slim["model"] = slim["ema"]
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
