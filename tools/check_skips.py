#!/usr/bin/env python3
"""Lists the tests a ctest run skipped and fails when one may not skip.

Usage: check_skips.py JUNIT.xml MAY_SKIP.txt [STAGE]

JUNIT.xml is ctest's --output-junit report. MAY_SKIP.txt holds one test
name (an fnmatch pattern) per line followed by why it may skip here; '#'
starts a comment. Every other test must run: a skip (exit 77) of one of
them means something this machine should provide is missing (DPDK,
Vulkan, numpy, gnuplot, the converted backbone, ../shared), and the run
fails. Also fails when the report holds no test at all.
"""
import fnmatch
import sys
import xml.etree.ElementTree as ET


def allowed(path):
    rules = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, why = line.partition(" ")
                rules.append((name, why.strip()))
    return rules


def reason(case):
    """The first 'skipped: ...' line the test printed, else ctest's note."""
    out = case.findtext("system-out") or ""
    for line in out.splitlines():
        if line.startswith("skipped:"):
            return line[len("skipped:"):].strip()
    node = case.find("skipped")
    return node.get("message", "") if node is not None else ""


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    stage = argv[3] if len(argv) == 4 else argv[1]
    rules = allowed(argv[2])
    cases = list(ET.parse(argv[1]).getroot().iter("testcase"))
    if not cases:
        print(f"check_skips: {stage}: no test ran")
        return 1
    skipped = [c for c in cases if c.find("skipped") is not None
               or c.get("status") in ("notrun", "disabled")]
    bad = 0
    print(f"== skipped ({stage}): {len(skipped)} of {len(cases)}")
    for c in skipped:
        name = c.get("name")
        ok = [why for pat, why in rules if fnmatch.fnmatchcase(name, pat)]
        verdict = f"allowed: {ok[0]}" if ok else "NOT ALLOWED to skip here"
        print(f"  {name}: {reason(c)} [{verdict}]")
        bad += not ok
    if bad:
        print(f"check_skips: {stage}: {bad} test(s) skipped that must run on this machine "
              f"(install what they need, or list them in {argv[2]} with a reason)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
