#!/usr/bin/python3
"""The committed bundles' measured numbers as docs/EVAL.md's table and as
rows for docs/eval-sweep.csv.

    table.py [--csv] [BUNDLE_DIR ...]     (default: every models/*/manifest.json
                                           with numbers; models/default skipped)

Reads only what card.py wrote into each manifest's `measured`, so the table
cannot drift from the bundles.  Order: SVBI family by lambda, then the other
SVBI variants, then the Entropic Student baseline.
"""

import argparse
import glob
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(dirs):
    out = []
    for d in dirs:
        path = os.path.join(d, "manifest.json")
        if os.path.islink(os.path.normpath(d)):
            continue  # models/default points at a listed bundle
        with open(path) as f:
            man = json.load(f)
        if man.get("measured", {}).get("images"):
            out.append(man)
    # family name = bundle name without its -l<lambda> suffix
    fam = {m["name"]: m["name"].rsplit("-l", 1)[0] for m in out}
    rank = {"svbi-mnv2-s28": 0, "es-mnv2-s28": 2}
    out.sort(key=lambda m: (rank.get(fam[m["name"]], 1), fam[m["name"]], m["rate_point"]["lambda"]))
    return out


def pct(v):
    return "%.1f%%" % (100 * v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundles", nargs="*")
    ap.add_argument("--csv", action="store_true", help="`splitwire eval --csv` rows instead of markdown")
    a = ap.parse_args()
    dirs = a.bundles or sorted(os.path.dirname(p) for p in glob.glob(os.path.join(REPO, "models", "*",
                                                                                    "manifest.json")))
    rows = load(dirs)
    if not rows:
        sys.exit("table: no measured bundles")
    if a.csv:
        for m in rows:
            r = m["measured"]
            bpp = r["bytes_per_image"] * 8 / (m["input"]["width"] * m["input"]["height"])
            fid = "%.4f,%.5f" % (r["agree"], r["kl"]) if "agree" in r else "nan,nan"
            print("bundle,%s,%d,%.1f,%.5f,%.4f,%.4f,%s" % (m["name"], r["images"], r["bytes_per_image"], bpp,
                                                        r["top1"], r["top1_10way"], fid))
        return
    print("| bundle | lambda | images | bytes | bpp | top-1 (1000-way) | top-1 (10-way) | agrees with the backbone "
          "| KL | PyTorch: est. bytes | PyTorch top-1 (1000 / 10) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in rows:
        r = m["measured"]
        t = r.get("pytorch")
        print("| %s | %g | %d | %.0f | %.3f | %s | %s | %s | %s | %s | %s |"
              % (m["name"], m["rate_point"]["lambda"], r["images"], r["bytes_per_image"], r["bpp"],
                 pct(r["top1"]), pct(r["top1_10way"]),
                 pct(r["agree"]) if "agree" in r else "-", "%.3f" % r["kl"] if "kl" in r else "-",
                 "%.0f" % t["est_bytes_per_image"] if t else "-",
                 "%s / %s" % (pct(t["top1"]), pct(t["top1_10way"])) if t else "-"))


if __name__ == "__main__":
    main()
