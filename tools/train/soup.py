#!/usr/bin/python3
"""Averages the weights of runs fine-tuned from one start (a "model soup").

    soup.py OUT_DIR RUN_DIR RUN_DIR [...]

Each run contributes the weights export.py would take (its moving average
where it kept one), all with equal weight; every floating-point tensor is
averaged, the entropy bottleneck's included, and integer state must agree.
The runs must share the architecture (same state-dict keys and shapes) and
should share their start: averaging only helps within one basin.  OUT_DIR
gets ckpt_last.pt (the average as both weights and moving average, no
optimizer state; args, epoch and step of the first run, the sources under
"soup"), args.json and a one-line train.log, so export.py, torch_eval.py,
publish.sh, keep.py and --init take it like a run.
"""
import json
import os
import sys
import time

import torch

if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.train import models  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3:
        sys.exit(__doc__)
    out, runs = argv[0], argv[1:]
    cks = [models.load_checkpoint(os.path.join(r, "ckpt_last.pt")) for r in runs]
    sds = [models.checkpoint_weights(c)[0] for c in cks]
    first = sds[0]
    for r, sd in zip(runs[1:], sds[1:]):
        if sd.keys() != first.keys() or any(sd[k].shape != first[k].shape for k in first):
            sys.exit("soup: %s has another architecture than %s" % (r, runs[0]))
    avg = {}
    for k, v in first.items():
        if v.is_floating_point():
            avg[k] = torch.stack([sd[k].float() for sd in sds]).mean(0).to(v.dtype)
        else:
            if any(not torch.equal(sd[k], v) for sd in sds[1:]):
                sys.exit("soup: integer state %s differs between the runs" % k)
            avg[k] = v.clone()
    args = dict(cks[0]["args"])
    args["name"] = os.path.basename(os.path.normpath(out))
    soup = [{"run": os.path.relpath(r), "global_step": c.get("global_step"),
             "weights": models.checkpoint_weights(c)[1]} for r, c in zip(runs, cks)]
    ck = {"model": avg, "ema": avg, "args": args, "epoch": cks[0].get("epoch", 0),
          "step_in_epoch": cks[0].get("step_in_epoch", 0), "global_step": cks[0].get("global_step", 0),
          "soup": soup}
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "ckpt_last.pt.tmp")
    torch.save(ck, tmp)
    os.replace(tmp, os.path.join(out, "ckpt_last.pt"))
    with open(os.path.join(out, "args.json"), "w") as f:
        json.dump(args, f, indent=2)
    with open(os.path.join(out, "train.log"), "w") as f:
        f.write("%s soup: the mean of %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), ", ".join(
            "%s (step %s, %s weights)" % (e["run"], e["global_step"], e["weights"]) for e in soup)))
    print("soup: %d runs -> %s" % (len(runs), os.path.join(out, "ckpt_last.pt")))


if __name__ == "__main__":
    main()
