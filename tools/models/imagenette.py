"""Imagenette (224x224 JPEG) listing and decoding, shared by the backbone
check and the training tools.  The data is read in place from
${SPLITWIRE_SHARED:-<repo>/../shared}/data/imagenette2-224."""

import os

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shared_dir():
    return os.environ.get("SPLITWIRE_SHARED", os.path.join(REPO, "..", "shared"))


def data_dir():
    return os.path.join(shared_dir(), "data", "imagenette2-224")


def classes():
    """[(idx, wnid, name, imagenet1k_idx)] from classes.tsv."""
    rows = []
    with open(os.path.join(data_dir(), "classes.tsv")) as f:
        next(f)
        for line in f:
            i, wnid, name, in1k = line.rstrip("\n").split("\t")
            rows.append((int(i), wnid, name, int(in1k)))
    return rows


def listing(split):
    """Sorted [(relative path, class idx 0..9, ImageNet-1k idx)] of a split."""
    out = []
    root = data_dir()
    for i, wnid, _, in1k in classes():
        d = os.path.join(root, split, wnid)
        for fn in sorted(os.listdir(d)):
            if fn.lower().endswith((".jpg", ".jpeg")):
                out.append((os.path.join(split, wnid, fn), i, in1k))
    return out


def load_uint8(rel):
    """HWC uint8 RGB (greyscale images are expanded to 3 channels)."""
    with Image.open(os.path.join(data_dir(), rel)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
