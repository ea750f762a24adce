#!/usr/bin/python3
"""Mutation testing: does the test suite notice when the code is wrong?

Applies each one-line mutation of a catalogue (tests/mutations.txt) to a
scratch copy of the working tree, rebuilds it incrementally, runs the tests
named by the entry (or the whole suite) and reports whether any failed.
The working tree itself is never written to. See docs/TESTING.md.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("id", "file", "find", "replace", "tests", "about")
# Areas for --list and the summary, by path prefix (first match wins).
AREAS = (
    ("drivers/cpu/", "ops"),
    ("drivers/", "drivers"),
    ("shaders/", "shaders"),
    ("runtime/codec/", "codec"),
    ("runtime/service/", "service"),
    ("runtime/bundle/", "bundle"),
    ("runtime/image/", "image"),
    ("netpath/", "netpath"),
    ("tools/cli/", "cli"),
)


class CatalogueError(Exception):
    pass


def area_of(path):
    for prefix, name in AREAS:
        if path.startswith(prefix):
            return name
    return path.split("/")[0]


def parse_catalogue(path):
    """Entries as dicts; each starts at an 'id:' line, '#' lines are comments."""
    entries = []
    cur = None
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition(":")
            key = key.strip()
            if not sep or key not in KEYS:
                raise CatalogueError(f"{path}:{no}: expected one of {', '.join(KEYS)}: '{line}'")
            # Only the one space after the colon is syntax; keep the rest.
            value = value[1:] if value.startswith(" ") else value
            value = value.rstrip()
            if key == "id":
                cur = {"id": value, "line": no}
                entries.append(cur)
                continue
            if cur is None:
                raise CatalogueError(f"{path}:{no}: '{key}' before the first 'id:'")
            if key in cur:
                raise CatalogueError(f"{path}:{no}: '{key}' given twice for {cur['id']}")
            cur[key] = value
    seen = set()
    for e in entries:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", e["id"]):
            raise CatalogueError(f"{path}:{e['line']}: bad id '{e['id']}' (use [a-z0-9_.-])")
        if e["id"] in seen:
            raise CatalogueError(f"{path}:{e['line']}: id {e['id']} used twice")
        seen.add(e["id"])
        for key in ("file", "find", "replace", "about"):
            if key not in e:
                raise CatalogueError(f"{path}:{e['line']}: {e['id']} has no '{key}:'")
        if not e["find"]:
            raise CatalogueError(f"{path}:{e['line']}: {e['id']} has an empty 'find:'")
        if e["find"] == e["replace"]:
            raise CatalogueError(f"{path}:{e['line']}: {e['id']} replaces text by itself")
        if "tests" in e:
            try:
                re.compile(e["tests"])
            except re.error as err:
                raise CatalogueError(f"{path}:{e['line']}: {e['id']}: bad tests regex: {err}")
    return entries


def locate(tree, e):
    """(original bytes, mutated bytes, line number), or CatalogueError saying
    why the entry is stale: the text must occur exactly once in the file."""
    path = os.path.join(tree, e["file"])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise CatalogueError(f"cannot read {e['file']}: {err.strerror}")
    text = data.decode("utf-8")
    lines = [i + 1 for i, l in enumerate(text.split("\n")) for _ in range(l.count(e["find"]))]
    if len(lines) != 1:
        where = f" (lines {', '.join(map(str, lines[:8]))})" if lines else ""
        raise CatalogueError(f"'find' matches {len(lines)} times in {e['file']}{where}")
    return data, text.replace(e["find"], e["replace"], 1).encode("utf-8"), lines[0]


def tree_files():
    """Tracked and untracked-but-not-ignored files of the working tree."""
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], check=True, capture_output=True).stdout
    # --cached still lists a tracked file deleted in the working tree.
    return sorted({p for p in out.decode().split("\0")
                   if p and os.path.lexists(os.path.join(ROOT, p))})


def sync_tree(tree):
    """Makes tree a copy of the working tree. Only files whose content differs
    are written, and they get a fresh mtime, so the persistent build redoes
    exactly what changed (a restored mutant included)."""
    os.makedirs(tree, exist_ok=True)
    files = tree_files()
    manifest = os.path.join(tree, ".mutate-files")
    old = set()
    if os.path.exists(manifest):
        with open(manifest) as f:
            old = set(f.read().split("\0")) - {""}
    for gone in old - set(files):
        p = os.path.join(tree, gone)
        if os.path.lexists(p):
            os.remove(p)
    written = 0
    for rel in files:
        src, dst = os.path.join(ROOT, rel), os.path.join(tree, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            target = os.readlink(src)
            if not (os.path.islink(dst) and os.readlink(dst) == target):
                if os.path.lexists(dst):
                    os.remove(dst)
                os.symlink(target, dst)
                written += 1
            continue
        if os.path.islink(dst):
            os.remove(dst)
        with open(src, "rb") as f:
            data = f.read()
        try:
            if os.path.getsize(dst) == len(data):
                with open(dst, "rb") as f:
                    if f.read() == data:
                        continue
        except OSError:
            pass
        write_file(dst, data)
        shutil.copymode(src, dst)
        written += 1
    with open(manifest, "w") as f:
        f.write("\0".join(files))
    return written


def write_file(path, data):
    # A fresh mtime, always: ninja rebuilds only what is newer than its output.
    with open(path, "wb") as f:
        f.write(data)
    now = time.time()
    os.utime(path, (now, now))


def link_outside(scratch, tree, build):
    """Tests read ../shared next to the source tree, and the converted
    backbone from build/models: point the scratch tree at the real ones."""
    shared = os.path.realpath(os.path.join(ROOT, "..", "shared"))
    link = os.path.join(scratch, "shared")
    if os.path.isdir(shared) and not os.path.lexists(link):
        os.symlink(shared, link)
    models = os.path.join(ROOT, "build", "models")
    link = os.path.join(build, "models")
    if os.path.isdir(models) and not os.path.lexists(link):
        os.makedirs(build, exist_ok=True)
        os.symlink(models, link)


def run_logged(cmd, log, timeout=None, env=None):
    """Runs cmd in its own process group, appending its output to log; a
    command past its timeout is killed with its children. Returns (rc, text)."""
    with open(log, "a") as lf:
        lf.write("$ " + " ".join(cmd) + "\n")
        lf.flush()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True, env=env)
        try:
            out, _ = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            rc = None
        except BaseException:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise
        text = out.decode("utf-8", "replace")
        lf.write(text + f"\n[exit {rc}]\n")
    return rc, text


def build(build_dir, tree, jobs, log):
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        rc, _ = run_logged(["cmake", "-S", tree, "-B", build_dir, "-G", "Ninja",
                            "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], log)
        if rc != 0:
            return False
    rc, _ = run_logged(["cmake", "--build", build_dir, "-j", str(jobs)], log)
    return rc == 0


def ctest(build_dir, regex, jobs, timeout, wall, log):
    """Returns ('pass'|'fail'|'none'|'hang', [failed test names])."""
    cmd = ["ctest", "--test-dir", build_dir, "--no-tests=error", "-j", str(jobs),
           "--timeout", str(timeout)]
    if regex:
        cmd += ["-R", regex]
    rc, text = run_logged(cmd, log, timeout=wall)
    if rc is None:
        return "hang", ["(ctest past --wall)"]
    failed = re.findall(r"^\s*\d+ - (\S+) \(", text.split("tests FAILED:")[-1], re.M) \
        if "tests FAILED:" in text else []
    if rc == 0:
        return "pass", []
    if failed:
        return "fail", failed
    if "No tests were found" in text:
        return "none", []
    return "fail", ["(ctest exit %d)" % rc]


def on_term(signum, frame):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(
        prog="tools/mutate.sh",
        description="Apply each mutation of a catalogue to a scratch copy of the working "
        "tree, rebuild, run the tests, and report which mutations the tests caught.")
    ap.add_argument("--catalogue", default=os.path.join(ROOT, "tests", "mutations.txt"),
                    help="the catalogue (default tests/mutations.txt)")
    ap.add_argument("--list", action="store_true",
                    help="list the entries and check each still applies; run nothing")
    ap.add_argument("--only", metavar="ID[,ID]", help="run only these entries")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                    help="parallel build jobs and tests (default: CPU count)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-mutate"),
                    help="scratch directory: source copy, persistent build, logs "
                    "(default build-mutate/)")
    ap.add_argument("--full", action="store_true",
                    help="ignore the entries' test filters: the whole suite for each")
    ap.add_argument("--timeout", type=int, default=300,
                    help="ctest timeout for a test that sets none (default 300 s)")
    ap.add_argument("--wall", type=int, default=1800,
                    help="limit on one ctest run; past it the mutant counts as caught "
                    "(hang) (default 1800 s)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip checking first that the selected tests pass unmutated")
    args = ap.parse_args()

    try:
        entries = parse_catalogue(args.catalogue)
    except (CatalogueError, OSError) as err:
        print(f"mutate: {err}", file=sys.stderr)
        return 2
    if args.only:
        want = args.only.split(",")
        unknown = [i for i in want if i not in {e["id"] for e in entries}]
        if unknown:
            print(f"mutate: no entry {', '.join(unknown)} in {args.catalogue}", file=sys.stderr)
            return 2
        entries = [e for e in entries if e["id"] in want]

    if args.list:
        stale = 0
        counts = {}
        for e in entries:
            counts[area_of(e["file"])] = counts.get(area_of(e["file"]), 0) + 1
            try:
                _, _, line = locate(ROOT, e)
                where = f"{e['file']}:{line}"
            except (CatalogueError, UnicodeDecodeError) as err:
                where = f"STALE: {err}"
                stale += 1
            print(f"{e['id']:<28} {area_of(e['file']):<8} {e.get('tests', '(all)'):<34} {where}")
            print(f"{'':<28} {e['about']}")
        print(f"{len(entries)} entries: " + ", ".join(f"{a} {n}" for a, n in sorted(counts.items()))
              + (f"; {stale} stale" if stale else ""))
        return 1 if stale else 0

    scratch = os.path.abspath(args.build_dir)
    tree = os.path.join(scratch, "tree")
    # The build sits inside the copy, as build/ does in a checkout, so
    # compiler caches keyed on relative paths are shared with normal builds.
    bdir = os.path.join(tree, "build")
    logs = os.path.join(scratch, "logs")
    if os.path.realpath(scratch) == os.path.realpath(ROOT) or \
            os.path.realpath(ROOT).startswith(os.path.realpath(tree) + os.sep):
        print("mutate: --build-dir must not be the working tree", file=sys.stderr)
        return 2
    os.makedirs(logs, exist_ok=True)
    # A termination signal unwinds like ^C, so a mutated file is restored.
    signal.signal(signal.SIGTERM, on_term)

    n = sync_tree(tree)
    link_outside(scratch, tree, bdir)
    print(f"mutate: scratch tree {tree} ({n} files updated)", flush=True)
    base_log = os.path.join(logs, "baseline.log")
    open(base_log, "w").close()
    if not build(bdir, tree, args.jobs, base_log):
        print(f"mutate: the unmutated tree does not build; see {base_log}", file=sys.stderr)
        return 2

    def regex_of(e):
        return None if args.full else e.get("tests")

    runnable, results = [], {}
    for e in entries:
        try:
            e["orig"], e["mutant"], e["lineno"] = locate(tree, e)
            runnable.append(e)
        except (CatalogueError, UnicodeDecodeError) as err:
            results[e["id"]] = ("STALE", str(err))

    if runnable and not args.no_baseline:
        regs = [regex_of(e) for e in runnable]
        union = None if None in regs else "|".join(f"({r})" for r in sorted(set(regs)))
        print("mutate: baseline: the selected tests on the unmutated tree", flush=True)
        state, failed = ctest(bdir, union, args.jobs, args.timeout, args.wall, base_log)
        if state != "pass":
            what = "no test matches the filters" if state == "none" else "failing: " + " ".join(failed)
            print(f"mutate: baseline is not clean ({what}); see {base_log}", file=sys.stderr)
            return 2

    try:
        for e in runnable:
            log = os.path.join(logs, e["id"] + ".log")
            open(log, "w").close()
            path = os.path.join(tree, e["file"])
            print(f"mutate: {e['id']}: {e['file']}:{e['lineno']}: {e['about']}", flush=True)
            t0 = time.time()
            write_file(path, e["mutant"])
            try:
                if build(bdir, tree, args.jobs, log):
                    state, failed = ctest(bdir, regex_of(e), args.jobs, args.timeout, args.wall,
                                          log)
                else:
                    state, failed = "nobuild", []
            finally:
                write_file(path, e["orig"])
            secs = time.time() - t0
            if state == "nobuild":
                results[e["id"]] = ("NO BUILD", f"see {log}")
            elif state in ("fail", "hang"):
                results[e["id"]] = ("caught", " ".join(failed) + f" ({secs:.0f} s)")
            elif state == "none":
                results[e["id"]] = ("ERROR", f"no test matches '{regex_of(e)}'")
            else:
                results[e["id"]] = ("SURVIVED", f"{regex_of(e) or 'whole suite'} passed ({secs:.0f} s)")
            print(f"  {results[e['id']][0]}: {results[e['id']][1]}", flush=True)
    except KeyboardInterrupt:
        print("mutate: interrupted; the scratch tree is restored", file=sys.stderr)
        return 130

    print()
    for e in entries:
        status, detail = results[e["id"]]
        print(f"{e['id']:<28} {status:<9} {detail}")
    caught = [e for e in entries if results[e["id"]][0] == "caught"]
    missed = [e["id"] for e in entries if results[e["id"]][0] != "caught"]
    print(f"\ncaught {len(caught)} of {len(entries)}")
    for kind in ("SURVIVED", "NO BUILD", "STALE", "ERROR"):
        ids = [e["id"] for e in entries if results[e["id"]][0] == kind]
        if ids:
            print(f"{kind.lower() if kind != 'SURVIVED' else 'survivors'}: {' '.join(ids)}")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
