#!/usr/bin/python3
"""Builds the label-free training corpus: natural photos at their own aspect.

    corpus.py [--work build-ml] [--name broad] [--max-side 256]
              [--caltech /work/.mirror/MachineLearning2020+Homework2-Caltech101/repo/.git]

Head distillation needs no labels, so any natural photo is a training
example.  Sources (every one recorded in the corpus's sources.json):

* Imagenette v2 train from ${SPLITWIRE_SHARED:-../shared}/data/imagenette2-224
  (9,469 photos; that copy is already squashed to 224 x 224).
* Caltech-101 (9,144 photos of 101 object categories plus the
  BACKGROUND_Google clutter set, mostly about 300 x 200, native aspect), read
  from a clone of github.com/MachineLearning2020/Homework2-Caltech101 at
  commit 836044dd000296b2bb74d0aa4b4e462e459b01d7 (the directory
  101_ObjectCategories; the images are read straight out of the git objects,
  no checkout needed).  Skipped with a note when the clone is absent.

Every photo is converted to RGB and, if its shorter side exceeds --max-side,
shrunk (Lanczos) to that shorter side with its aspect kept; smaller ones are
kept as they are.  The corpus is one flat uint8 array (pixels.npy) plus an
index (index.npy: offset, height, width, source per image) under
<work>/corpus/<name>/; data.Corpus reads it as a memmap, and
data.augment_corpus takes aspect-kept (square) random-resized crops of it.
Nothing of it belongs in git.
"""

import argparse
import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.models import imagenette  # noqa: E402

CALTECH_REPO = "github.com/MachineLearning2020/Homework2-Caltech101"
CALTECH_COMMIT = "836044dd000296b2bb74d0aa4b4e462e459b01d7"
CALTECH_DEFAULT = "/work/.mirror/MachineLearning2020+Homework2-Caltech101/repo/.git"


def shrink(im, max_side):
    im = im.convert("RGB")
    w, h = im.size
    s = min(w, h)
    if s > max_side:
        f = max_side / float(s)
        im = im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def imagenette_images(max_side):
    for rel, _, _ in imagenette.listing("train"):
        with Image.open(os.path.join(imagenette.data_dir(), rel)) as im:
            yield rel, shrink(im, max_side)


def caltech_images(git_dir, max_side):
    """(path, pixels) of every .jpg under 101_ObjectCategories at the pinned
    commit, read with git cat-file from the bare clone."""
    ls = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", CALTECH_COMMIT, "101_ObjectCategories"],
                        check=True, capture_output=True, text=True).stdout
    entries = []
    for line in ls.splitlines():
        meta, path = line.split("\t", 1)
        _, kind, sha = meta.split()
        if kind == "blob" and path.lower().endswith((".jpg", ".jpeg")):
            entries.append((path, sha))
    entries.sort()
    cat = subprocess.Popen(["git", "--git-dir", git_dir, "cat-file", "--batch"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        for path, sha in entries:
            cat.stdin.write((sha + "\n").encode())
            cat.stdin.flush()
            header = cat.stdout.readline().split()
            size = int(header[2])
            blob = cat.stdout.read(size)
            cat.stdout.read(1)  # the newline after the contents
            with Image.open(io.BytesIO(blob)) as im:
                yield path, shrink(im, max_side)
    finally:
        cat.stdin.close()
        cat.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=os.environ.get("SPLITWIRE_WORK", os.path.join(REPO, "build-ml")))
    ap.add_argument("--name", default="broad")
    ap.add_argument("--max-side", type=int, default=256, help="shrink larger photos to this shorter side")
    ap.add_argument("--caltech", default=CALTECH_DEFAULT, help="bare clone (git dir) of " + CALTECH_REPO)
    a = ap.parse_args()
    out = os.path.join(a.work, "corpus", a.name)
    os.makedirs(out, exist_ok=True)
    sources = [dict(name="imagenette2-224/train", origin="shared copy (squashed to 224x224)",
                    path=imagenette.data_dir(), gen=imagenette_images(a.max_side))]
    if os.path.isdir(a.caltech):
        sources.append(dict(name="caltech101", origin="https://%s commit %s, 101_ObjectCategories"
                            % (CALTECH_REPO, CALTECH_COMMIT), path=a.caltech,
                            gen=caltech_images(a.caltech, a.max_side)))
    else:
        print("corpus: no Caltech-101 clone at %s; Imagenette train only" % a.caltech)
    flat_tmp = os.path.join(out, "pixels.raw.tmp")
    index, off = [], 0
    with open(flat_tmp, "wb") as f:
        for k, src in enumerate(sources):
            n0 = len(index)
            for rel, px in src.pop("gen"):
                f.write(px.tobytes())
                index.append((off, px.shape[0], px.shape[1], k))
                off += px.size
                if len(index) % 2000 == 0:
                    print("corpus: %d images, %.2f GB" % (len(index), off / 1e9), flush=True)
            src["images"] = len(index) - n0
    flat = np.memmap(flat_tmp, dtype=np.uint8, mode="r", shape=(off,))
    np.save(os.path.join(out, "pixels.npy.tmp.npy"), flat)
    del flat
    os.remove(flat_tmp)
    np.save(os.path.join(out, "index.npy.tmp.npy"), np.array(index, dtype=np.int64))
    with open(os.path.join(out, "sources.json"), "w") as f:
        json.dump(dict(max_side=a.max_side, images=len(index), bytes=off, sources=sources), f, indent=2)
    os.replace(os.path.join(out, "index.npy.tmp.npy"), os.path.join(out, "index.npy"))
    os.replace(os.path.join(out, "pixels.npy.tmp.npy"), os.path.join(out, "pixels.npy"))
    print("corpus: %s: %d images, %.2f GB (%s)" % (out, len(index), off / 1e9,
                                                  ", ".join("%s %d" % (s["name"], s["images"]) for s in sources)))


if __name__ == "__main__":
    main()
