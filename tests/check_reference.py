#!/usr/bin/python3
"""Runs a splitwire command and compares what it reports with the PyTorch
references in tests/vectors/reference/expected.json (tools/make_references.py).

    check_reference.py --bundle tiny|default --set images|shared|all
                       [--eval] [--need FILE] -- CMD [ARGS...]

classify / demo (--json): every expected image appears once, with the
reference's top-1 label and its probability within the stated tolerance.
eval (--eval, --csv -): the bundle row's image count, mean bytes and top-1
rates equal what the references imply for those images.

Exits 0 when everything agrees, 1 otherwise, 77 (skip) when --need names a
missing file (the converted backbone). Standard library only.
"""

import argparse
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = os.path.join(HERE, "vectors", "reference", "expected.json")
PRINT_STEP = 0.00005  # the CLI prints confidences with 4 decimals


def fail(msgs):
    for m in msgs:
        print("check_reference: FAIL: " + m)
    return 1 if msgs else 0


def check_json(out, want, tol, plain):
    got, errs = {}, []
    for line in out.splitlines():
        if not line.startswith('{"file"'):
            continue
        r = json.loads(line)
        for e in want:
            if r["file"].endswith(e["file"]):
                if e["file"] in got:
                    errs.append("%s reported twice" % e["file"])
                got[e["file"]] = r
    for e in want:
        r = got.get(e["file"])
        if r is None:
            errs.append("%s: no result" % e["file"])
            continue
        if "error" in r:
            errs.append("%s: %s" % (e["file"], r["error"]))
            continue
        label, prob = e["top"][0]
        if r["label"] != label:
            errs.append("%s: label %d, reference %d" % (e["file"], r["label"], label))
        if abs(r["confidence"] - prob) > tol + PRINT_STEP:
            errs.append("%s: confidence %.4f, reference %.6f (tolerance %g)"
                        % (e["file"], r["confidence"], prob, tol))
        if plain and r["bytes"] != e["bytes"]:  # tile headers add bytes
            errs.append("%s: %d bytes, reference %d" % (e["file"], r["bytes"], e["bytes"]))
    return errs, len(got)


def check_eval(out, want, name):
    rows = [l.split(",") for l in out.splitlines() if l.startswith("bundle," + name + ",")]
    if len(rows) != 1:
        return ["expected one CSV row for bundle %s, got %d" % (name, len(rows))], 0
    row, errs, n = rows[0], [], len(want)
    if int(row[2]) != n:
        errs.append("%s images, reference %d" % (row[2], n))
    mean_bytes = sum(e["bytes"] for e in want) / n
    if abs(float(row[3]) - mean_bytes) > 0.051:
        errs.append("mean bytes %s, reference %.2f" % (row[3], mean_bytes))
    if "truth" in want[0] and "top1_10way" in want[0]:
        top1 = sum(e["top"][0][0] == e["truth"] for e in want) / n
        top10 = sum(e["top1_10way"] == e["truth"] for e in want) / n
        for col, ref, what in ((5, top1, "top1_1000"), (6, top10, "top1_10")):
            if math.isnan(float(row[col])) or abs(float(row[col]) - ref) > 1e-3:
                errs.append("%s %s, reference %.4f" % (what, row[col], ref))
    return errs, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True, choices=("tiny", "default"))
    ap.add_argument("--set", default="all", choices=("images", "shared", "all"))
    ap.add_argument("--eval", action="store_true")
    ap.add_argument("--need", action="append", default=[])
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("no command")
    for f in a.need:
        if not os.path.exists(f):
            print("skipped: %s missing (bash tools/models/fetch_backbone.sh)" % f)
            return 77
    with open(EXPECTED) as f:
        ref = json.load(f)
    b = ref["bundles"][a.bundle]
    want = (b["images"] if a.set != "shared" else []) + (b["shared"] if a.set != "images" else [])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    print(p.stdout, end="")
    errs = [] if p.returncode == 0 else ["exit code %d" % p.returncode]
    e2, n = check_eval(p.stdout, want, b["name"]) if a.eval else check_json(p.stdout, want,
                                                                             ref["prob_tol"],
                                                                             "--tiled" not in cmd)
    errs += e2
    if not errs:
        print("check_reference: %d of %d images match the references" % (n, len(want)))
    return fail(errs)


if __name__ == "__main__":
    sys.exit(main())
