#!/usr/bin/env bash
# One rate point of the compute-balanced family (--arch mb), two stages on
# one thread, each bounded by the clock (--minutes with --cosine):
#
#   tools/train/mb_chain.sh LAMBDA NAME [MIN_WINDOWS] [MIN_WHOLE]
#
# 1. <NAME>_win: a fresh mb model (it starts as the backbone itself, the
#    latent at gain 0.5, the entropy model first fitted to it for 100
#    batches), 112x112 windows of aspect-kept crops (area 0.35-1) of the
#    broad corpus, --ste, --saliency, --kd 1e4, --tail-mse 1e6, moving
#    average 0.999, Adam 8e-4 cosine over MIN_WINDOWS minutes (default 60).
# 2. <NAME>_w224: from stage 1's average, whole 224x224 crops (the largest
#    square of each photo), --ste, --saliency, --kd 1e6, moving average
#    0.995, Adam 1e-4 cosine over MIN_WHOLE minutes (default 38).
#
# INIT=CKPT (environment) starts stage 1 from that checkpoint instead (e.g.
# another lambda's run; Adam LR1, default 8e-4 fresh or 3e-4 with INIT, and
# warm-up W1 = 100 or 50 steps).
#
# Each stage resumes from its own ckpt_last.pt when rerun (written every 5
# minutes) and ends with a 500-image val check; runs go to build-ml/runs/.
# Needs the corpus (tools/train/corpus.py).  Launch niced and detached, e.g.
#   OMP_NUM_THREADS=1 nice -n 19 setsid nohup tools/train/mb_chain.sh 2 mb_s28_l2g \
#       > build-ml/runs/mb_s28_l2g.chain.log 2>&1 < /dev/null &
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 2 ] || { sed -n 2,21p "$0"; exit 2; }
lmbda=$1 name=$2 m1=${3:-60} m2=${4:-38}
export OMP_NUM_THREADS=1
py=/usr/bin/python3
common=(--arch mb --split s28 --lmbda "$lmbda" --corpus broad --ste --saliency --threads 1 --cosine
        --epochs 100 --ckpt-minutes 5 --val-n 500 --log-every 10)
cd "$root"
if [ -n "${INIT:-}" ]; then
    start=(--init "$INIT"); lr1=${LR1:-3e-4}; w1=${W1:-50}
else
    start=(--latent-gain 0.5 --fit-density 100); lr1=${LR1:-8e-4}; w1=${W1:-100}
fi
[ -e "build-ml/runs/${name}_win/DONE.chain" ] || {
    $py tools/train/train.py "${common[@]}" --name "${name}_win" --patch 112 --crop-scale 0.35 \
        --kd 1e4 --tail-mse 1e6 --ema 0.999 --lr "$lr1" --warmup "$w1" --minutes "$m1" "${start[@]}"
    touch "build-ml/runs/${name}_win/DONE.chain"
}
$py tools/train/train.py "${common[@]}" --name "${name}_w224" --init "build-ml/runs/${name}_win/ckpt_last.pt" \
    --patch 0 --crop-scale 1.0 --kd 1e6 --ema 0.995 --lr 1e-4 --warmup 20 --minutes "$m2"
touch "build-ml/runs/${name}_w224/DONE.chain"
