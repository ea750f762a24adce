#!/usr/bin/python3
"""Bytes at equal quality: what share of a codec's bits a bundle needs.

    share.py RESULTS.csv [MORE.csv ...] [--metric top1|top1_10|agree|kl|all]
             [--codecs jpeg,webp,avif] [--baseline-prefix es-] [--target] [--json]

Reads the CSV rows of `splitwire eval` (several files may be given, e.g. a
codec sweep and a bundle run on the same images; a later row with the same
method and setting replaces an earlier one).  For every bundle row and
metric it finds the rate at which each codec's curve first reaches the
bundle's value, interpolating linearly in bpp between neighbouring points
(sorted by bpp), and prints the cheapest codec's rate and the bundle's share
of it.  A codec whose lowest point already does better gives an upper bound
(marked "<="); one that never gets there gives no share.

--target checks the rate-accuracy target of the model issue on these rows:
among bundles within 1 point of top-1 (1000-way) of the `backbone` row, the
best needs at most 1/4 of the cheapest codec's bytes at its own top-1, and
at every baseline bundle (name starting with --baseline-prefix) the other
bundles' curve needs at least 60% fewer bytes at the baseline's top-1.
Exit status 0 when met, 1 when not, 2 on bad input.

Python standard library only.
"""
import argparse
import csv
import json
import math
import sys

METRICS = {  # name -> (CSV column, higher is better, printed as percent)
    "top1": ("top1_1000", True, True),
    "top1_10": ("top1_10", True, True),
    "agree": ("agree", True, True),
    "kl": ("kl", False, False),
}
CODEC_SHARE = 0.25
BASELINE_SAVING = 0.60
TOP1_SLACK = 0.01


class Bad(Exception):
    pass


def num(s):
    try:
        v = float(s)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def load(paths):
    rows = {}
    for path in paths:
        try:
            with open(path, newline="") as f:
                r = csv.DictReader(f)
                need = {"method", "setting", "bpp", "top1_1000"}
                if not r.fieldnames or not need <= set(r.fieldnames):
                    raise Bad("%s: not a splitwire eval CSV (needs columns %s)" % (path, ", ".join(sorted(need))))
                for row in r:
                    if num(row.get("bpp")) is None:
                        raise Bad("%s: row %s/%s has no bpp" % (path, row["method"], row["setting"]))
                    rows[(row["method"], row["setting"])] = row
        except OSError as e:
            raise Bad("%s: %s" % (path, e.strerror))
    return list(rows.values())


def curve(rows, column):
    """(bpp, value) points with a value, sorted by bpp."""
    pts = [(num(r["bpp"]), num(r.get(column))) for r in rows]
    return sorted(p for p in pts if p[1] is not None)


def reach(points, v, higher):
    """Lowest bpp at which the polyline through `points` reaches v:
    (bpp, exact) or None.  exact is False when the first point already
    does better, so the rate is only an upper bound."""
    better = (lambda m: m >= v) if higher else (lambda m: m <= v)
    prev = None
    for b, m in points:
        if better(m):
            if prev is None:
                return b, m == v
            pb, pm = prev
            return pb + (b - pb) * (v - pm) / (m - pm), True
        prev = (b, m)
    return None


def shares(rows, codecs, metric):
    column, higher, _ = METRICS[metric]
    curves = {c: curve([r for r in rows if r["method"] == c], column) for c in codecs}
    out = []
    for r in rows:
        if r["method"] != "bundle":
            continue
        v = num(r.get(column))
        if v is None:
            continue
        best = None
        per = {}
        for c in codecs:
            hit = reach(curves[c], v, higher)
            per[c] = None if hit is None else {"bpp": hit[0], "exact": hit[1]}
            if hit and (best is None or hit[0] < best[1]):
                best = (c, hit[0], hit[1])
        bpp = num(r["bpp"])
        out.append({"bundle": r["setting"], "metric": metric, "value": v, "bpp": bpp, "codecs": per,
                    "best": None if best is None else {"codec": best[0], "bpp": best[1], "exact": best[2],
                                                        "share": bpp / best[1]}})
    return out


def check_target(rows, codecs, prefix):
    backbone = [r for r in rows if r["method"] == "backbone" and num(r.get("top1_1000")) is not None]
    if not backbone:
        raise Bad("--target needs the backbone row (splitwire eval --codec none)")
    floor = num(backbone[0]["top1_1000"]) - TOP1_SLACK
    by_top1 = shares(rows, codecs, "top1")
    near = [s for s in by_top1 if s["value"] >= floor - 1e-9 and not s["bundle"].startswith(prefix)]
    fits = [s for s in near if s["best"] and s["best"]["share"] <= CODEC_SHARE]
    best = min((s for s in near if s["best"]), key=lambda s: s["best"]["share"], default=None)
    ours = [r for r in rows if r["method"] == "bundle" and not r["setting"].startswith(prefix)]
    pts = curve(ours, "top1_1000")
    baselines = []
    for r in rows:
        if r["method"] != "bundle" or not r["setting"].startswith(prefix):
            continue
        v, bpp = num(r["top1_1000"]), num(r["bpp"])
        hit = reach(pts, v, True)
        saving = None if hit is None else 1 - hit[0] / bpp
        baselines.append({"bundle": r["setting"], "top1": v, "bpp": bpp,
                          "ours_bpp": None if hit is None else hit[0],
                          "ours_exact": None if hit is None else hit[1], "saving": saving})
    vs_codec = bool(fits)
    vs_baseline = bool(baselines) and all(b["saving"] is not None and b["saving"] >= BASELINE_SAVING
                                          for b in baselines)
    return {"backbone_top1": num(backbone[0]["top1_1000"]), "floor": floor,
            "within_one_point": [s["bundle"] for s in near], "best": best,
            "codec_share_met": vs_codec, "baselines": baselines, "baseline_saving_met": vs_baseline,
            "met": vs_codec and vs_baseline}


def fmt_value(metric, v):
    return "%.1f%%" % (100 * v) if METRICS[metric][2] else "%.3f" % v


def fmt_rate(hit):
    if hit is None:
        return "never"
    return ("%.3f" if hit["exact"] else "<=%.3f") % hit["bpp"]


def print_shares(table, codecs):
    print("| bundle | metric | value | bpp | %s | best | share |" % " | ".join(codecs))
    print("|---|---|---|---|%s---|---|" % ("---|" * len(codecs)))
    for s in table:
        b = s["best"]
        print("| %s | %s | %s | %.3f | %s | %s | %s |" % (
            s["bundle"], s["metric"], fmt_value(s["metric"], s["value"]), s["bpp"],
            " | ".join(fmt_rate(s["codecs"][c]) for c in codecs),
            b["codec"] if b else "-",
            "-" if not b else ("%.1f%%" if b["exact"] else ">=%.1f%%") % (100 * b["share"])))


def print_target(t):
    print("backbone top-1 %.2f%%: bundles within 1 point (>= %.2f%%): %s" % (
        100 * t["backbone_top1"], 100 * t["floor"], ", ".join(t["within_one_point"]) or "none"))
    b = t["best"]
    if b:
        print("best: %s, %.2f%% at %.4f bpp; %s needs %s bpp there: share %.1f%% (target <= %.0f%%): %s" % (
            b["bundle"], 100 * b["value"], b["bpp"], b["best"]["codec"], fmt_rate(b["best"]),
            100 * b["best"]["share"], 100 * CODEC_SHARE, "met" if t["codec_share_met"] else "not met"))
    else:
        print("no bundle within 1 point has a codec to compare with: not met")
    for e in t["baselines"]:
        if e["saving"] is None:
            print("baseline %s (%.2f%% at %.4f bpp): the other bundles never reach it" % (
                e["bundle"], 100 * e["top1"], e["bpp"]))
        else:
            print("baseline %s (%.2f%% at %.4f bpp): the other bundles need %s%.4f bpp, %.0f%% fewer bytes "
                  "(target >= %.0f%%)" % (e["bundle"], 100 * e["top1"], e["bpp"], "" if e["ours_exact"] else "<=",
                                          e["ours_bpp"], 100 * e["saving"], 100 * BASELINE_SAVING))
    if not t["baselines"]:
        print("no baseline bundle in the rows: the second half of the target is not checked")
    print("target: %s" % ("met" if t["met"] else "not met"))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--metric", default="top1", choices=sorted(METRICS) + ["all"])
    ap.add_argument("--codecs", default="jpeg,webp,avif")
    ap.add_argument("--baseline-prefix", default="es-")
    ap.add_argument("--target", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    codecs = [c for c in a.codecs.split(",") if c]
    try:
        rows = load(a.csv)
        if a.target:
            t = check_target(rows, codecs, a.baseline_prefix)
            if a.json:
                json.dump(t, sys.stdout, indent=1)
                print()
            else:
                print_target(t)
            return 0 if t["met"] else 1
        metrics = sorted(METRICS) if a.metric == "all" else [a.metric]
        table = [s for m in metrics for s in shares(rows, codecs, m)]
    except Bad as e:
        print("share.py: %s" % e, file=sys.stderr)
        return 2
    if a.json:
        json.dump(table, sys.stdout, indent=1)
        print()
    else:
        print_shares(table, codecs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
