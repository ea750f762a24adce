#!/usr/bin/env python3
"""A victim's latency alone and beside a flood, in one run, as JSON.

    tools/bench/fairness.py [--cli build/splitwire] [--bundle DIR] [--models DIR]
                            [--images N] [--flooders K] [--flood-inflight M]
                            [--max-batch B] [--workers W] [IMAGE...]

Starts `splitwire serve` (protocol 2, loopback) and classifies N images from a
victim client one at a time (--inflight 1), first with the server to itself,
then while K flooding clients each keep M requests in flight (the same images
over and over, with a long deadline so refused requests come back). Prints
one JSON object: the victim's p50/p99 (ms, submit to result) unloaded and
loaded, their ratio, the victim's lost requests, and how often the server
refused the flood as busy. Default: the tiny test bundle and its six images,
so it runs anywhere; pass --bundle models/default --models build/models and
images for the real model. Everything shares this machine's CPUs; in a
deployment a flooder encodes on its own machine, so the flooders run at
nice 19 (--flood-nice) and the ratio measures the server's queueing more
than the encoders' competition for cores.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(v, q):
    """Nearest rank, as the CLI's summary computes it."""
    if not v:
        return None
    v = sorted(v)
    return v[max(0, -(-len(v) * q // 100) - 1)]


def victim_run(client, images, timeout_ms, acc):
    """One phase of the victim; per-request samples go into acc."""
    out = subprocess.run(client + ["--json", "--inflight", "1", "--timeout-ms", str(timeout_ms)]
                         + images, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if not line.startswith('{"file"'):
            continue
        d = json.loads(line)
        if "error" in d:
            acc["failed"] += 1
            continue
        acc["ok"] += 1
        acc["total"].append(d["ms"]["total"])
        # What the server's queueing governs: the round trip and the server,
        # without the client's own encoding.
        acc["wire"].append(d["ms"]["network"] + d["ms"]["server"])
    acc["failed"] += len(images) - sum(1 for l in out.stdout.splitlines()
                                       if l.startswith('{"file"'))


def summary(acc):
    return {"ok": acc["ok"], "failed": acc["failed"],
            "p50_ms": pct(acc["total"], 50), "p99_ms": pct(acc["total"], 99),
            "wire_p50_ms": pct(acc["wire"], 50), "wire_p99_ms": pct(acc["wire"], 99)}


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def flood_on(a, client, files):
    return [subprocess.Popen(
        ["nice", "-n", str(a.flood_nice)] + client +
        ["--quiet", "--inflight", str(a.flood_inflight), "--timeout-ms", "600000"] +
        files * max(1, 20000 // len(files)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(a.flooders)]


def flood_off(floods):
    alive = all(f.poll() is None for f in floods)
    for f in floods:
        if f.poll() is None:
            f.send_signal(signal.SIGINT)
    for f in floods:
        try:
            f.wait(timeout=30)
        except subprocess.TimeoutExpired:
            f.kill()
            f.wait()
    return alive


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "splitwire"))
    ap.add_argument("--bundle", default=os.path.join(ROOT, "tests", "vectors", "bundle", "tiny"))
    ap.add_argument("--models", default=os.path.join(ROOT, "tests", "vectors", "bundle", "models"))
    ap.add_argument("--images", type=int, default=60, help="victim requests per phase")
    ap.add_argument("--rounds", type=int, default=4, help="unloaded and loaded phases, in turn")
    ap.add_argument("--flooders", type=int, default=1)
    ap.add_argument("--flood-inflight", type=int, default=64)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--flood-nice", type=int, default=19,
                    help="niceness of the flooders (their own machine, in a deployment)")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = a.files or sorted(
        os.path.join(ROOT, "tests", "vectors", "reference", "tiny", f)
        for f in os.listdir(os.path.join(ROOT, "tests", "vectors", "reference", "tiny"))
        if f.endswith(".png"))
    victim_images = (files * (a.images // len(files) + 1))[:a.images]
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([a.cli, "keygen", os.path.join(d, "srv")], check=True,
                       capture_output=True)
        port = free_port()
        log_path = os.path.join(d, "server.log")
        log = open(log_path, "w")
        srv = subprocess.Popen([a.cli, "serve", "--bundle", a.bundle, "--models", a.models,
                                "--listen", f"127.0.0.1:{port}", "--key",
                                os.path.join(d, "srv.key"), "--max-batch", str(a.max_batch),
                                "--workers", str(a.workers)], stderr=log)
        deadline = time.time() + 60
        while "serving on" not in open(log_path).read():
            if srv.poll() is not None or time.time() > deadline:
                sys.exit("fairness.py: the server did not start")
            time.sleep(0.1)
        client = [a.cli, "classify", "--server", f"127.0.0.1:{port}", "--server-pub",
                  os.path.join(d, "srv.pub"), "--bundle", a.bundle]
        floods = []
        quiet = {"ok": 0, "failed": 0, "total": [], "wire": []}
        busy = {"ok": 0, "failed": 0, "total": [], "wire": []}
        flood_alive = True
        try:
            # Alternate phases, so drift in the machine's load hits both alike.
            for _ in range(a.rounds):
                victim_run(client, victim_images, 60000, quiet)
                floods = flood_on(a, client, files)
                time.sleep(1.5)
                victim_run(client, victim_images, 60000, busy)
                flood_alive &= flood_off(floods)
                floods = []
        finally:
            flood_off(floods)
            srv.terminate()
            srv.wait(timeout=60)
            log.close()
        text = open(log_path).read()
    m = re.search(r"admission: (\d+) refused busy", text)
    r = re.search(r"splitwire server: (\d+) requests, (\d+) results, (\d+) errors, (\d+) dropped",
                  text)
    res = {
        "bundle": os.path.basename(os.path.normpath(a.bundle)),
        "victim_requests_per_phase": len(victim_images),
        "flooders": a.flooders,
        "flood_inflight": a.flood_inflight,
        "max_batch": a.max_batch,
        "workers": a.workers,
        "flood_nice": a.flood_nice,
        "rounds": a.rounds,
        "unloaded": summary(quiet),
        "loaded": summary(busy),
        "p99_ratio": ratio(pct(busy["total"], 99), pct(quiet["total"], 99)),
        "p50_ratio": ratio(pct(busy["total"], 50), pct(quiet["total"], 50)),
        "wire_p99_ratio": ratio(pct(busy["wire"], 99), pct(quiet["wire"], 99)),
        "victim_lost": busy["failed"] + quiet["failed"],
        "flood_lasted": flood_alive,
        "server_requests": int(r.group(1)) if r else None,
        "server_busy": int(m.group(1)) if m else (int(r.group(4)) if r else None),
    }
    print(json.dumps(res, indent=1))
    return 0 if res["victim_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
