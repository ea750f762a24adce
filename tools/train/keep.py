#!/usr/bin/python3
"""Keeps a training run: its record in the repository, its weights outside.

    keep.py [--half] [--average-only] RUN_DIR [CACHE_DIR]
                                (default CACHE_DIR: build-ml/kept/<run name>)

The record, models/runs/<run name>/{args.json, train.log}, is committed: the
settings and the log of every run behind a bundle.  Checkpoints never are
(.gitignore refuses *.pt under models/): the weights go to CACHE_DIR, an
ignored local cache, as ckpt_last.pt without the optimizer state (about a
third of the size), plus args.json and train.log; a --ema run's moving
average is kept beside its weights.  --half stores the encoder's and
decoder's weights as float16 (half again; enough to resume or warm-start
from, and loading widens them); the entropy bottleneck stays float32, so
the coder tables exported from a kept run are the run's own.  --average-only
keeps only the moving average, stored once and named as both the weights
and the average (half again; a resume goes on from the average).

Warm starts take the kept file directly (train.py --init
build-ml/kept/<run>/ckpt_last.pt); to resume a kept run:

    mkdir -p build-ml/runs && cp -r build-ml/kept/<run> build-ml/runs/
    OMP_NUM_THREADS=2 /usr/bin/python3 tools/train/train.py --lmbda <lambda> [--epochs N]

train.py then restarts Adam from the kept weights.  The checkpoints that
were committed before runs left git come back with
tools/train/restore_kept.sh.
"""
import os
import shutil
import sys

import torch

if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.train import models  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RECORD_FILES = ("args.json", "train.log")


def work_dir():
    return os.environ.get("SPLITWIRE_WORK", os.path.join(REPO, "build-ml"))


def record(run, name=None):
    """Copy a run's settings and log to models/runs/<name>/ (committed)."""
    rec = os.path.join(REPO, "models", "runs", name or os.path.basename(os.path.abspath(run)))
    os.makedirs(rec, exist_ok=True)
    for fn in RECORD_FILES:
        shutil.copy(os.path.join(run, fn), os.path.join(rec, fn))
    return rec


def main():
    argv = sys.argv[1:]
    half = "--half" in argv
    average_only = "--average-only" in argv
    argv = [a for a in argv if a not in ("--half", "--average-only")]
    if len(argv) not in (1, 2):
        sys.exit(__doc__)
    run = os.path.abspath(argv[0])
    name = os.path.basename(run)
    out = argv[1] if len(argv) == 2 else os.path.join(work_dir(), "kept", name)
    if os.path.abspath(out).startswith(os.path.join(REPO, "models") + os.sep):
        sys.exit("keep: checkpoints stay out of the repository; give a cache directory outside models/")
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
    for fn in RECORD_FILES:
        shutil.copy(os.path.join(run, fn), os.path.join(out, fn))
    rec = record(run, name)
    print("keep: %s -> %s (epoch %d, step %d, %d bytes); record in %s" % (
        run, out, ck["epoch"], ck["global_step"], os.path.getsize(os.path.join(out, "ckpt_last.pt")),
        os.path.relpath(rec, REPO)))


if __name__ == "__main__":
    main()
