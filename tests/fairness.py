#!/usr/bin/env python3
"""One peer floods a real `splitwire serve` (protocol 2, loopback); another
is served as if alone.

    fairness.py SPLITWIRE BUNDLE MODELS IMAGE...

The server admits few requests (--max-batch 2: 6 held at once, so a peer
holding 3 is over its share while the others hold nothing). A flooding
client keeps 64 requests in flight, far beyond its share, and is refused as
busy again and again (the server counts it). Meanwhile a second client
classifies the images five times over with 2 in flight: every answer must
equal `classify --local`'s, none may fail, and the server must never have
refused it as busy (its log, at debug level, names each busy refusal).
No timing is asserted: tools/bench/fairness.sh measures the latencies.
Exit 0 when every check holds.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(path, text, proc, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with open(path) as f:
            if text in f.read():
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def labels(stdout):
    """Sorted (file, label) pairs, and the number of error lines."""
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"file"')]
    got = sorted((r["file"], r.get("label")) for r in rows if "error" not in r)
    return got, sum(1 for r in rows if "error" in r)


def main():
    if len(sys.argv) < 5:
        print(__doc__)
        return 2
    cli, bundle, models = sys.argv[1:4]
    images = sys.argv[4:] * 5
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([cli, "keygen", os.path.join(d, "srv")], check=True, capture_output=True)
        port = free_port()
        srv_log_path = os.path.join(d, "server.log")
        srv_log = open(srv_log_path, "w")
        srv = subprocess.Popen([cli, "serve", "--bundle", bundle, "--models", models, "--listen",
                                f"127.0.0.1:{port}", "--key", os.path.join(d, "srv.key"),
                                "--max-batch", "2"], stderr=srv_log)
        if not wait_for(srv_log_path, "serving on", srv, 30):
            srv.kill()
            sys.exit("fairness.py: the server did not start")
        client = [cli, "classify", "--server", f"127.0.0.1:{port}", "--server-pub",
                  os.path.join(d, "srv.pub"), "--bundle", bundle]
        flood = None
        try:
            local = subprocess.run([cli, "classify", "--local", "--json", "--bundle", bundle,
                                    "--models", models] + images, capture_output=True, text=True,
                                   timeout=120)
            want, _ = labels(local.stdout)
            check(local.returncode == 0 and len(want) == len(images), "classify --local answered")
            # The flood: the same images over and over, 64 in flight, a long
            # deadline so that its refused requests keep coming back.
            flood_err = open(os.path.join(d, "flood.err"), "w")
            flood = subprocess.Popen(client + ["--quiet", "--inflight", "64", "--timeout-ms",
                                               "600000"] + sys.argv[4:] * 1500,
                                     stdout=subprocess.DEVNULL, stderr=flood_err)
            time.sleep(1.0)
            venv = dict(env, SPW_LOG="debug")
            victim = subprocess.run(client + ["--json", "--inflight", "2", "--timeout-ms",
                                              "60000"] + images, capture_output=True, text=True,
                                    timeout=300, env=venv)
            got, errors = labels(victim.stdout)
            flood_running = flood.poll() is None
            check(victim.returncode == 0, f"the second client exits 0 (rc {victim.returncode}) "
                  f"{victim.stderr[-300:] if victim.returncode else ''}")
            check(errors == 0 and len(got) == len(images),
                  f"it lost none of its {len(images)} requests ({len(got)} answered, "
                  f"{errors} errors)")
            check(got == want, "its answers equal classify --local's")
            refused = victim.stderr.count("refused as busy")
            check(refused == 0, f"the server never refused it as busy ({refused} times)")
            check(flood_running, "the flood lasted the whole run")
        finally:
            if flood and flood.poll() is None:
                flood.send_signal(signal.SIGINT)
                try:
                    flood.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    flood.kill()
                    flood.wait()
            srv.terminate()
            srv.wait(timeout=60)
            srv_log.close()
        text = open(srv_log_path).read()
        print(text.strip())
        import re
        m = re.search(r"admission: (\d+) refused busy", text)
        busy = int(m.group(1)) if m else 0
        check(busy > 0, f"the flood was refused as busy {busy} times: it was over its share")
        check(srv.returncode == 0, f"the server exits 0 (rc {srv.returncode})")
    print("fairness.py:", "all checks hold" if not failures else f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
