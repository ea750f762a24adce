#!/usr/bin/python3
"""Checks of share.py on small hand-made eval CSVs (ctest eval_share)."""
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.eval import share  # noqa: E402

HEAD = "method,setting,images,mean_bytes,bpp,top1_1000,top1_10,agree,kl\n"
# A codec whose top-1 rises 60% -> 80% from 0.5 to 1.0 bpp, a second one that
# is worse everywhere, and bundles between them.
ROWS = """backbone,original,10,10000,1.6,0.80,0.99,1.0,0
jpeg,10,10,3000,0.5,0.60,0.9,0.7,1.0
jpeg,50,10,6000,1.0,0.80,0.95,0.9,0.1
webp,10,10,4000,0.7,0.50,0.9,0.6,1.5
webp,50,10,9000,1.5,0.75,0.95,0.85,0.3
bundle,ours-a,10,1000,0.15,0.70,0.95,0.8,0.55
bundle,ours-b,10,1200,0.19,0.795,0.97,0.85,0.2
bundle,ours-c,10,500,0.08,0.55,0.9,0.65,1.2
bundle,ours-d,10,9000,1.2,0.90,0.99,0.95,nan
bundle,es-x,10,5000,0.8,0.70,0.95,0.8,0.6
"""


def run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = share.main(argv)
    return rc, out.getvalue()


class Share(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.csv = self.write("r.csv", HEAD + ROWS)

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def table(self, *extra):
        rc, out = run([self.csv, "--json"] + list(extra))
        self.assertEqual(rc, 0)
        return {(s["bundle"], s["metric"]): s for s in json.loads(out)}

    def test_interpolates_in_bpp(self):
        s = self.table()[("ours-a", "top1")]
        self.assertAlmostEqual(s["codecs"]["jpeg"]["bpp"], 0.75)
        self.assertTrue(s["codecs"]["jpeg"]["exact"])
        self.assertAlmostEqual(s["codecs"]["webp"]["bpp"], 0.7 + 0.8 * 0.8)
        self.assertEqual(s["best"]["codec"], "jpeg")
        self.assertAlmostEqual(s["best"]["share"], 0.15 / 0.75)

    def test_bound_and_never(self):
        t = self.table()
        low = t[("ours-c", "top1")]  # 55%: jpeg's first point already does better
        self.assertEqual(low["codecs"]["jpeg"], {"bpp": 0.5, "exact": False})
        self.assertAlmostEqual(low["codecs"]["webp"]["bpp"], 0.7 + 0.8 * 0.2)
        high = t[("ours-d", "top1")]  # 90%: no codec gets there
        self.assertIsNone(high["codecs"]["jpeg"])
        self.assertIsNone(high["best"])

    def test_lower_is_better_and_missing_values(self):
        t = self.table("--metric", "all")
        kl = t[("ours-a", "kl")]  # 0.55: jpeg falls from 1.0 to 0.1 over 0.5 -> 1.0 bpp
        self.assertAlmostEqual(kl["codecs"]["jpeg"]["bpp"], 0.75)
        self.assertNotIn(("ours-d", "kl"), t)  # nan: not compared
        self.assertIn(("ours-d", "agree"), t)

    def test_later_file_replaces_row(self):
        later = self.write("b.csv", HEAD + "bundle,ours-a,10,1000,0.30,0.70,0.95,0.8,0.55\n")
        rc, out = run([self.csv, later, "--json"])
        self.assertEqual(rc, 0)
        rows = [s for s in json.loads(out) if s["bundle"] == "ours-a"]
        self.assertEqual(len(rows), 1)
        self.assertAlmostEqual(rows[0]["best"]["share"], 0.30 / 0.75)

    def test_target(self):
        rc, out = run([self.csv, "--target", "--json"])
        t = json.loads(out)
        # ours-b (79.5%; 1 point below = 79%) needs 0.19 / 0.9875 of jpeg's bytes;
        # at es-x's 70% the bundles' curve needs 0.15 bpp against 0.8.
        self.assertEqual(t["within_one_point"], ["ours-b", "ours-d"])
        self.assertEqual(t["best"]["bundle"], "ours-b")
        self.assertAlmostEqual(t["best"]["best"]["bpp"], 0.9875)
        self.assertTrue(t["codec_share_met"])
        self.assertAlmostEqual(t["baselines"][0]["ours_bpp"], 0.15)
        self.assertAlmostEqual(t["baselines"][0]["saving"], 1 - 0.15 / 0.8)
        self.assertTrue(t["met"])
        self.assertEqual(rc, 0)
        # The same bundle with more bytes misses the quarter.
        worse = self.write("w.csv", HEAD + "bundle,ours-b,10,2000,0.25,0.795,0.97,0.85,0.2\n")
        rc, out = run([self.csv, worse, "--target"])
        self.assertEqual(rc, 1)
        self.assertIn("target: not met", out)

    def test_bad_input(self):
        self.assertEqual(run([self.write("x.csv", "a,b\n1,2\n")])[0], 2)
        self.assertEqual(run([os.path.join(self.dir.name, "missing.csv")])[0], 2)
        self.assertEqual(run([self.write("n.csv", HEAD + "bundle,b,1,1,nan,0.5,0.5,0.5,0.5\n")])[0], 2)
        nob = self.write("nb.csv", HEAD + "jpeg,10,10,3000,0.5,0.60,0.9,0.7,1.0\n")
        self.assertEqual(run([nob, "--target"])[0], 2)


if __name__ == "__main__":
    unittest.main()
