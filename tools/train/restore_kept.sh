#!/usr/bin/env bash
# Brings back the run checkpoints that were committed under models/runs/
# before training runs left git: every models/runs/<run>/*.pt of COMMIT
# (default: the last commit that still had them) is written, with the run's
# args.json and train.log, to build-ml/kept/<run>/, where warm starts
# (train.py --init build-ml/kept/<run>/ckpt_last.pt), soup.py and export.py
# find them.  Existing files are left alone.
#
#   tools/train/restore_kept.sh [COMMIT]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
commit=${1:-}
if [ -z "$commit" ]; then
    # The commit that removed them from the index; its parent still has them.
    gone=$(git log -n 1 --format=%H --diff-filter=D -- 'models/runs/*.pt')
    [ -n "$gone" ] || { echo "restore_kept: no commit removed checkpoints under models/runs" >&2; exit 1; }
    commit=$gone^
fi
kept=${SPLITWIRE_WORK:-$root/build-ml}/kept
n=0
while IFS= read -r path; do
    run=$(basename "$(dirname "$path")")
    mkdir -p "$kept/$run"
    dst=$kept/$run/$(basename "$path")
    [ -e "$dst" ] && continue
    git show "$commit:$path" > "$dst.tmp" && mv "$dst.tmp" "$dst"
    for f in args.json train.log; do
        git cat-file -e "$commit:models/runs/$run/$f" 2>/dev/null && [ ! -e "$kept/$run/$f" ] &&
            git show "$commit:models/runs/$run/$f" > "$kept/$run/$f"
    done
    n=$((n + 1))
done < <(git ls-tree -r --name-only "$commit" -- models/runs | grep '\.pt$')
echo "restore_kept: $n checkpoint(s) from $(git rev-parse --short "$commit") in $kept"
