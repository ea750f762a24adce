#!/usr/bin/python3
"""The Python tools are one package with the repository root as import root.

Checks every .py under tools/ without importing it (no numpy or torch needed):
- no sys.path.insert/append: imports of the tools' own modules go through
  the package (``from tools.train import data``), never a bare sibling name;
- every directory holding modules has an __init__.py;
- a script importing tools.* that can be run as a file (it has a __main__
  block) first makes the repository root its import root (the __package__
  guard), so the documented ``python3 tools/x/y.py`` commands keep working.
Then runs one such script both ways as a smoke test.
"""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")


def modules():
    for d, dirs, files in os.walk(TOOLS):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in sorted(files):
            if f.endswith(".py"):
                yield os.path.join(d, f)


def main():
    paths = list(modules())
    own = {os.path.splitext(os.path.basename(p))[0] for p in paths} - {"__init__"}
    bad = []
    for p in paths:
        rel = os.path.relpath(p, ROOT)
        tree = ast.parse(open(p).read(), rel)
        if not os.path.exists(os.path.join(os.path.dirname(p), "__init__.py")):
            bad.append("%s: its directory has no __init__.py" % rel)
        guard_line = None
        first_tools = None
        has_main = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                f = node.func
                if (f.attr in ("insert", "append") and isinstance(f.value, ast.Attribute)
                        and f.value.attr == "path" and isinstance(f.value.value, ast.Name)
                        and f.value.value.id == "sys"):
                    bad.append("%s:%d: sys.path.%s" % (rel, node.lineno, f.attr))
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in own:
                        bad.append("%s:%d: bare import of %s" % (rel, node.lineno, a.name))
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top = node.module.split(".")[0]
                if top in own:
                    bad.append("%s:%d: bare import from %s" % (rel, node.lineno, node.module))
                if top == "tools" and (first_tools is None or node.lineno < first_tools):
                    first_tools = node.lineno
            if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                    and isinstance(node.test.left, ast.Name)):
                if node.test.left.id == "__package__":
                    guard_line = node.lineno
                if node.test.left.id == "__name__":
                    has_main = True
        if has_main and first_tools is not None and (guard_line is None or guard_line > first_tools):
            bad.append("%s: run as a file, it imports tools.* before making the root "
                       "its import root" % rel)
    for b in bad:
        print(b)
    if bad:
        return 1
    # The same self-test both ways, from another directory.
    for cmd in ([sys.executable, os.path.join(TOOLS, "eval", "test_share.py")],
                [sys.executable, "-m", "tools.eval.test_share"]):
        cwd = "/" if "-m" not in cmd else ROOT
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        if r.returncode:
            print("%s failed:\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
            return 1
    print("check_py_package: %d modules, one package, no sys.path edits" % len(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
