#!/usr/bin/python3
"""Writes the committed codec test vectors (tests/vectors/codec/).

    /usr/bin/python3 tools/codec/make_vectors.py [outdir]

Deterministic (fixed seeds). Each set: a table directory, int32 symbols
(C, H, W) as .npy and the streams the reference coder makes of them.
"""

import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.codec import rans_ref  # noqa: E402
from tools.codec import tables as tb  # noqa: E402


def logistic_tables(locs, scales):
    """Tables of logistic densities through the same path as update()."""
    locs = np.asarray(locs, dtype=np.float32)
    scales = np.asarray(scales, dtype=np.float32)
    t = np.float32(tb.quantile_target())
    quantiles = np.stack([locs - t * scales, locs, locs + t * scales], axis=1)[:, None, :]

    def logits(x):
        return (x - locs[:, None, None]) / scales[:, None, None]

    return tb.build_tables(quantiles, logits)


def sample(tables, C, H, W, rng):
    """Symbols drawn from each channel's own quantised distribution."""
    out = np.zeros((C, H, W), dtype=np.int32)
    for c in range(C):
        n = int(tables["cdf_length"][c])
        cdf = tables["quantized_cdf"][c, :n].astype(np.int64)
        u = rng.integers(0, 1 << 16, size=H * W)
        bins = np.searchsorted(cdf, u, side="right") - 1
        maxv = n - 2
        vals = bins.copy()
        tail = bins == maxv
        # Tail draws land just outside the table, on either side.
        vals[tail] = np.where(rng.random(tail.sum()) < 0.5, -1 - rng.integers(0, 4, tail.sum()),
                              maxv + rng.integers(0, 4, tail.sum()))
        out[c] = (vals + tables["offset"][c]).reshape(H, W)
    return out


def write(outdir, name, arr):
    np.save(os.path.join(outdir, name + ".npy"), arr)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "vectors", "codec")
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(20240531)

    # t6: six logistic channels, from very peaked to wide, off-integer medians.
    t6 = logistic_tables([0.0, 0.3, -1.7, 2.25, 0.5, -0.05], [0.05, 0.2, 0.7, 1.5, 3.0, 0.4])
    tb.check_tables(t6)
    tb.save_tables(os.path.join(outdir, "t6"), t6)
    C, H, W = 6, 7, 9

    lo = t6["offset"] - 3
    hi = t6["offset"] + t6["cdf_length"] - 2 + 3
    rnd = np.stack([rng.integers(lo[c], hi[c], size=(H, W)) for c in range(C)]).astype(np.int32)
    skw = sample(t6, C, H, W, rng)
    for name, s in (("random", rnd), ("skewed", skw)):
        write(outdir, name, s)
        data = rans_ref.encode(s, t6)
        assert np.array_equal(rans_ref.decode(data, t6, s.shape), s)
        open(os.path.join(outdir, name + ".bin"), "wb").write(data)
    tiled = rans_ref.encode_tiled(rnd, t6, 3)
    open(os.path.join(outdir, "random_tiled3.bin"), "wb").write(tiled)

    # t2: tiny tables (one bin plus tail; two bins plus tail) so most symbols bypass.
    t2 = tb.tables_from_pmfs(np.array([[0.999, 0.0], [0.7, 0.25]], dtype=np.float32), [1, 2],
                             [0.001, 0.05], [0, -1], [0.25, -3.5])
    tb.check_tables(t2)
    tb.save_tables(os.path.join(outdir, "t2"), t2)
    C, H, W = 2, 5, 11
    mag = np.exp(rng.uniform(0, np.log(2.0 ** 26), size=(C, H, W))).astype(np.int64)
    sign = np.where(rng.random((C, H, W)) < 0.5, -1, 1)
    byp = (sign * mag).astype(np.int32)
    byp[0, 0, :4] = [0, 1, -1, 2]      # in range, the tail value itself, just outside
    byp[1, 0, :4] = [-1, 0, 1, -2]
    byp[1, 1, :3] = [(1 << 26) + 5, -(1 << 26), 15 + 1]
    write(outdir, "bypass", byp)
    data = rans_ref.encode(byp, t2)
    assert np.array_equal(rans_ref.decode(data, t2, byp.shape), byp)
    open(os.path.join(outdir, "bypass.bin"), "wb").write(data)

    # Quantisation: exact halves must round to even, as torch.round.
    med = t6["medians"]
    y = rng.normal(0, 2, size=(6, 7, 9)).astype(np.float32)
    y[:, 0, :4] = np.array([0.5, 1.5, -0.5, -2.5], dtype=np.float32)[None, :] + med[:, None]
    write(outdir, "latent", y)
    write(outdir, "latent_symbols", np.rint(y - med[:, None, None]).astype(np.int32))
    print("wrote", outdir)


if __name__ == "__main__":
    main()
