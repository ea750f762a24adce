#!/usr/bin/python3
"""Record measured numbers in a bundle: manifest.json `measured` and the
"Measured" section of model_card.md.

    card.py BUNDLE_DIR --eval C.json [--torch T.json] [--backbone B.json] [--note TEXT]

C.json is `splitwire eval --bundle BUNDLE_DIR ... --json` (the C runtime:
real rANS stream, batch 1), T.json is tools/train/torch_eval.py --json on the
same images, B.json the uncompressed backbone on the same images
(`splitwire eval --backbone ... --codec none --json`).  When C.json comes from
`--fidelity` (and T.json has them), the fidelity to the backbone is recorded
too: how often the top-1 agrees with the backbone's, and KL(backbone ||
this).  Everything from the "## Measured" heading on is rewritten; the rest
of the card is kept.
"""

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shown(path):
    """Paths as a reader types them from the repository root."""
    tail = "data/imagenette2-224/val"
    if os.path.normpath(path).endswith(tail):
        return "../shared/" + tail
    return os.path.relpath(os.path.abspath(path), REPO)


def load_row(path, method, setting=None):
    """The one row of `method` (and `setting`, when given) in an eval JSON:
    a run of several bundles (and codecs) serves each bundle's card."""
    with open(path) as f:
        doc = json.load(f)
    rows = [r for r in doc["rows"] if r["method"] == method and setting in (None, r["setting"])]
    if len(rows) != 1:
        sys.exit("card: %s: expected one '%s' row%s, found %d"
                 % (path, method, "" if setting is None else " for " + setting, len(rows)))
    return doc, rows[0]


def fid(r, agree_key):
    """(agreement, KL) of an eval row, or None when it was not measured."""
    a, k = r.get(agree_key), r.get("kl")
    return None if a is None or k is None else (round(a, 4), round(k, 5))


def fid_cells(f):
    return "| %s | %.4f |" % (pct(f[0]), f[1]) if f else "| - | - |"


def pct(v):
    return "-" if v is None else "%.1f%%" % (100 * v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("--eval", required=True, help="splitwire eval --json with this bundle's row")
    ap.add_argument("--torch", help="tools/train/torch_eval.py --json on the same images")
    ap.add_argument("--backbone", help="splitwire eval --json of the backbone (codec none) on the same images")
    ap.add_argument("--note", default="", help="a paragraph appended to the section")
    a = ap.parse_args()

    man_path = os.path.join(a.bundle, "manifest.json")
    with open(man_path) as f:
        man = json.load(f)
    doc, row = load_row(a.eval, "bundle", man["name"])
    if row["failed"]:
        sys.exit("card: %d images failed in %s" % (row["failed"], a.eval))
    n = row["images"]
    data = os.path.basename(os.path.dirname(os.path.normpath(doc["data"]))) + "/" + \
        os.path.basename(os.path.normpath(doc["data"]))
    man["measured"] = {
        "bpp": round(row["bpp"], 4), "bytes_per_image": round(row["mean_bytes"], 1),
        "top1": row["top1_1000"], "top1_10way": row["top1_10"], "images": n,
        "data": "%s, %d images (splitwire eval)" % (data, n),
    }
    f_c = fid(row, "agree")
    if f_c:
        man["measured"]["agree"], man["measured"]["kl"] = f_c
    lines = ["## Measured", "",
             "With the C runtime (`splitwire eval --bundle %s --data %s%s%s%s`: the real rANS stream,"
             % (shown(a.bundle), shown(doc["data"]), "" if n >= 3925 else " --limit %d" % n,
                " --fidelity" if f_c else "",
                # the fidelity reference is the bundle's own backbone, not eval's default
                "" if man["backbone"]["id"] == "mobilenet_v2_1.0_224"
                else " --backbone build/models/%s.onnx" % man["backbone"]["id"]),
             "batch 1, cpu-fast) on %d images of %s. Fidelity: how often the top-1 class is the" % (n, data),
             "uncompressed backbone's on the same file, and the mean KL(backbone || this) in nats:", "",
             "| | images | bytes per image | bpp | top-1 (1000-way) | top-1 (10-way) "
             "| agrees with the backbone | KL |",
             "|---|---|---|---|---|---|---|---|",
             "| this bundle, C runtime | %d | %.1f | %.4f | %s | %s %s"
             % (n, row["mean_bytes"], row["bpp"], pct(row["top1_1000"]), pct(row["top1_10"]),
                fid_cells(f_c))]
    if a.torch:
        with open(a.torch) as f:
            t = json.load(f)
        if t["images"] != n:
            sys.exit("card: %s has %d images, the C run %d" % (a.torch, t["images"], n))
        man["measured"]["pytorch"] = {"est_bytes_per_image": round(t["est_bytes"], 1),
                                      "top1": t["top1_1000"], "top1_10way": t["top1_10"]}
        f_t = fid(t, "agree_1000")
        if f_t:
            man["measured"]["pytorch"]["agree"], man["measured"]["pytorch"]["kl"] = f_t
        lines.append("| same model, PyTorch (rate = entropy estimate) | %d | %.1f | %.4f | %s | %s %s"
                     % (n, t["est_bytes"], t["bpp"], pct(t["top1_1000"]), pct(t["top1_10"]),
                        fid_cells(f_t)))
    if a.backbone:
        _, b = load_row(a.backbone, "backbone")
        if b["images"] != n:
            sys.exit("card: %s has %d images, the C run %d" % (a.backbone, b["images"], n))
        man["measured"]["backbone_top1"] = b["top1_1000"]
        man["measured"]["backbone_top1_10way"] = b["top1_10"]
        lines.append("| uncompressed backbone (JPEG files), C runtime | %d | %.1f | %.4f | %s | %s | 100%% | 0 |"
                     % (n, b["mean_bytes"], b["bpp"], pct(b["top1_1000"]), pct(b["top1_10"])))
    lines.append("")
    if a.note:
        lines += [a.note, ""]

    card_path = os.path.join(a.bundle, "model_card.md")
    with open(card_path) as f:
        card = f.read()
    for marker in ("## Measured", "Measured bpp and accuracy:"):
        k = card.find(marker)
        if k >= 0:
            card = card[:k]
            break
    card = card.rstrip("\n") + "\n\n" + "\n".join(lines)
    for path, text in ((man_path, json.dumps(man, indent=2) + "\n"), (card_path, card)):
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    print("card: %s: %.4f bpp, top-1 %s / %s on %d images" % (a.bundle, row["bpp"], pct(row["top1_1000"]),
                                                             pct(row["top1_10"]), n))


if __name__ == "__main__":
    main()
