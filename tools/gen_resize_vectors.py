#!/usr/bin/python3
"""Writes the resize vectors that spw_image_to_tensor is checked against.

What the C resize computes (runtime/image/image.c), per axis, from src to dst
samples, then a centre crop, rounded to 8 bits:
  * the shorter side becomes `resize`, the longer one floor(side * resize /
    shorter + 0.5); the crop starts at floor((resized - crop) / 2 + 0.5);
  * downscaling (src > dst) averages the source over each output sample's
    footprint [o * src / dst, (o + 1) * src / dst), partial pixels weighted by
    the part covered (area averaging, no antialiasing filter beyond that);
  * upscaling (src <= dst) is linear between pixel centres, half-pixel
    centres (align_corners=False), the position clamped to the edges;
  * each channel value is rounded half up to an integer and clipped to
    0..255 after both axes (no rounding between them).

The expected numbers here come from PyTorch in float64, not from that
formula: upscaling is torch.nn.functional.interpolate (linear,
align_corners=False), and downscaling repeats every source pixel dst times
and then averages runs of src samples with adaptive_avg_pool1d, which is
the covered-area average exactly. PIL is no reference for either: it
rounds to 8 bits between its two passes and samples its box filter at
pixel centres.

Output, for each case NAME in tests/vectors/image/:
    NAME_src.npy  uint8 [H, W, 3]      the source image (seeded noise)
    NAME_pp.npy   int32 [3]            resize, crop_w, crop_h
    NAME_out.npy  uint8 [3, ch, cw]    the expected 8-bit crop, planar

Run with /usr/bin/python3 (PyTorch, numpy). Deterministic (fixed seeds).
"""

import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "vectors", "image")

# name, source width, height, resize (shorter side), crop width, height.
# Odd and non-square sizes, integer and non-integer factors both ways, and
# crops whose offset is a rounded half.
CASES = [
    ("down_37x23", 37, 23, 16, 16, 16),
    ("down_30x40_by2", 30, 40, 15, 15, 19),
    ("down_64x48", 64, 48, 35, 33, 35),
    ("up_13x9", 13, 9, 20, 24, 20),
    ("up_8x8", 8, 8, 11, 11, 9),
    ("up_5x7", 5, 7, 17, 17, 23),
]


def half_up(x):
    return int(math.floor(x + 0.5))


def resample_axis(t, dim, dst):
    """t float64, resampled along dim to dst samples."""
    src = t.shape[dim]
    if src == dst:
        return t
    moved = t.movedim(dim, -1)
    lead = moved.shape[:-1]
    flat = moved.reshape(-1, 1, src)
    if src > dst:
        # Each pixel repeated dst times: output o averages samples
        # [o * src, (o + 1) * src), i.e. source footprint [o*src/dst, (o+1)*src/dst).
        rep = flat.repeat_interleave(dst, dim=-1)
        res = F.adaptive_avg_pool1d(rep, dst)
    else:
        res = F.interpolate(flat, size=dst, mode="linear", align_corners=False)
    return res.reshape(*lead, dst).movedim(-1, dim)


def expected(src, resize, cw, ch):
    h, w, _ = src.shape
    s = resize / min(w, h)
    rw = resize if w < h else half_up(w * s)
    rh = resize if h <= w else half_up(h * s)
    assert rw >= cw and rh >= ch
    x0, y0 = half_up((rw - cw) / 2.0), half_up((rh - ch) / 2.0)
    t = torch.from_numpy(src.astype(np.float64)).permute(2, 0, 1)  # C, H, W
    t = resample_axis(resample_axis(t, 2, rw), 1, rh)
    crop = t[:, y0:y0 + ch, x0:x0 + cw].numpy()
    return np.clip(np.floor(crop + 0.5), 0, 255).astype(np.uint8)


def save(name, arr):
    np.save(os.path.join(OUT_DIR, name), arr, allow_pickle=False)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for i, (name, w, h, resize, cw, ch) in enumerate(CASES):
        rng = np.random.default_rng(1000 + i)
        src = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        out = expected(src, resize, cw, ch)
        save(name + "_src.npy", src)
        save(name + "_pp.npy", np.array([resize, cw, ch], dtype=np.int32))
        save(name + "_out.npy", out)
        print(f"{name}: {w}x{h} -> shorter side {resize}, crop {cw}x{ch}")


if __name__ == "__main__":
    main()
