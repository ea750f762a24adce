#!/usr/bin/env python3
"""Request frames on the wire per request, by capture, as JSON.

    tools/bench/frames.py [--cli build/splitwire] [--bundle DIR] [--models DIR]
                          [--count N] [--loss 0.1] [--cases udp,udp-loss,af_packet,...]
                          [IMAGE...]

Runs `splitwire serve` and `classify` and captures what reaches the server
with a raw AF_PACKET socket (root; no tcpdump needed): on loopback for
`--transport udp`, and on a veth pair between two network namespaces for
DPDK net_af_packet. For every REQUEST frame from the client it reads the
splitwire header (request id, fragment count, flags): `needed` is the
fragments of every distinct request, `frames` the REQUEST frames captured
that carry request payload (fragments, and fragments resent), `ratio`
frames / needed (1.0: nothing sent twice). Keep-alive probes (REQUEST frames
with the probe flag: 74 bytes, no payload) are counted apart in
`keepalives`, and `ratio_with_keepalives` counts them too. A fragment sent
again after the server's ACK of its request is counted in `after_ack`. ACK,
HELLO and other frames are counted by type in `frame_types`. The -loss
cases emulate 10% random loss on both sides' transmit (--link 0,0,0,LOSS):
frames the emulation drops never reach the wire, so `frames` there counts
what the link carried; every request must still complete. Frames are counted as the server's side receives them
(packet type HOST), so loopback's outgoing copies are not counted twice.
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PMD = "/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0"
TYPES = {1: "request", 2: "result", 3: "error", 4: "nack", 5: "ping", 6: "pong", 7: "ack",
         8: "hello", 9: "welcome", 10: "cookie", 11: "stale"}


def capture(iface, port, stop_file):
    """Counts splitwire frames to UDP port `port` received on iface until
    stop_file exists; prints the counts as JSON."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    kinds = {}
    reqs = {}  # request id -> [fragment count, frames, distinct fragments]
    frags = {}
    first = {}
    extra_t = []  # ms from a request's first frame to each repeated one
    acked = {}
    repeats = []
    after_ack = [0]  # repeated frames of requests the server had ACKed
    keepalives = 0
    drained = 0
    while True:
        r, _, _ = select.select([s], [], [], 0.05)
        if not r:
            if os.path.exists(stop_file):
                drained += 1
                if drained > 4:
                    break
            continue
        pkt, addr = s.recvfrom(65536)
        # Received frames, and the server's own outgoing ones (its ACKs);
        # loopback shows each frame both ways, so only the received copy of
        # what the client sent counts.
        if addr[2] not in (socket.PACKET_HOST, socket.PACKET_OUTGOING) or \
                len(pkt) < 14 + 20 + 8 + 70:
            continue
        if struct.unpack_from("!H", pkt, 12)[0] != 0x0800:
            continue
        ihl = (pkt[14] & 15) * 4
        if pkt[14 + 9] != 17:
            continue
        udp = 14 + ihl
        sport, dport = struct.unpack_from("!HH", pkt, udp)
        h = udp + 8
        if port not in (sport, dport) or pkt[h:h + 2] != b"SW":
            continue
        t = pkt[h + 3]
        rid = struct.unpack_from("<Q", pkt, h + 8)[0]
        now = time.monotonic()
        if sport == port:
            # The server's ACK of a whole request: later copies of its
            # fragments are probes of a request the server holds.
            if t == 7:
                acked.setdefault(rid, now)
            continue
        if addr[2] != socket.PACKET_HOST:
            continue
        kinds[TYPES.get(t, str(t))] = kinds.get(TYPES.get(t, str(t)), 0) + 1
        if t != 1:
            continue
        if pkt[h + 5] & 2:
            keepalives += 1
            continue
        idx, cnt = struct.unpack_from("<HH", pkt, h + 30)
        e = reqs.setdefault(rid, [cnt, 0])
        e[1] += 1
        first.setdefault(rid, now)
        if idx in frags.setdefault(rid, set()):
            extra_t.append((now - first[rid]) * 1000)
            repeats.append((rid, now))
            if rid in acked:
                after_ack[0] += 1
        frags[rid].add(idx)
    needed = sum(e[0] for e in reqs.values())
    frames = sum(e[1] for e in reqs.values())
    print(json.dumps({"requests": len(reqs), "needed": needed, "frames": frames,
                      "ratio": round(frames / needed, 4) if needed else None,
                      "keepalives": keepalives,
                      "ratio_with_keepalives": (round((frames + keepalives) / needed, 4)
                                                if needed else None),
                      "after_ack": after_ack[0],
                      "ratio_before_ack": (round((frames - after_ack[0]) / needed, 4)
                                           if needed else None),
                      "incomplete_on_wire": sum(1 for k, e in reqs.items()
                                                if len(frags[k]) < e[0]),
                      # requests by how many frames beyond their fragments they took
                      "extra_histogram": {str(x): sum(1 for e in reqs.values() if e[1] - e[0] == x)
                                          for x in sorted({e[1] - e[0] for e in reqs.values()})},
                      "extra_after_ms": sorted(round(x, 1) for x in extra_t)[:60],
                      "frame_types": kinds,
                      "acks": {str(k): v for k, v in acked.items()},
                      "repeats": [[str(k), v] for k, v in repeats]}))


def wait_log(path, text, proc, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if text in open(path).read():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def classify_result(out):
    ok = failed = 0
    for line in out.splitlines():
        if line.startswith('{"file"'):
            if '"error"' in line:
                failed += 1
            else:
                ok += 1
    return ok, failed


def run_case(a, d, name, images):
    loss = name.endswith("-loss")
    dpdk = name.startswith("af_packet")
    ns_s = ns_c = None
    tag = f"spwf{os.getpid() % 10000}"
    prefix = []
    if dpdk:
        ns_s, ns_c = tag + "s", tag + "c"
        sh = (f"ip netns add {ns_s} && ip netns add {ns_c} && "
              f"ip link add {tag}a type veth peer name {tag}b && "
              f"ip link set {tag}a netns {ns_s} && ip link set {tag}b netns {ns_c} && "
              f"ip netns exec {ns_s} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
              f"ip netns exec {ns_c} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
              f"ip -n {ns_s} link set {tag}a up && ip -n {ns_c} link set {tag}b up && "
              f"ip -n {ns_s} link set lo up && ip -n {ns_c} link set lo up")
        if subprocess.run(sh, shell=True).returncode:
            return {"case": name, "skipped": "cannot create namespaces and a veth pair"}
        eal = ("--no-huge -m 512 --no-pci --no-telemetry --file-prefix {p} "
               f"-d {PMD}/librte_mempool_ring.so -d {PMD}/librte_net_af_packet.so "
               "--vdev=net_af_packet0,iface={i},qpairs=1")
        server_addr, port = "10.99.0.2", 9000
        srv_net = ["--transport", "dpdk", "--eal", eal.format(p=tag + "S", i=tag + "a")]
        cli_net = ["--transport", "dpdk", "--eal", eal.format(p=tag + "C", i=tag + "b"),
                   "--bind", "10.99.0.1:9001"]
        iface = tag + "a"
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        server_addr, srv_net, cli_net, iface = "127.0.0.1", [], [], "lo"
    link = ["--link", f"0,0,0,{a.loss}"] if loss else []
    stop = os.path.join(d, name + ".stop")
    cap_out = open(os.path.join(d, name + ".cap"), "w")
    in_s = ["ip", "netns", "exec", ns_s] if ns_s else []
    in_c = ["ip", "netns", "exec", ns_c] if ns_c else []
    cap = subprocess.Popen(in_s + [sys.executable, os.path.abspath(__file__), "--capture",
                                   iface, str(port), stop], stdout=cap_out)
    # DPDK's af_packet sends past the capture taps of its own interface: the
    # server's ACKs are seen arriving on the client's side.
    ack_out = open(os.path.join(d, name + ".acks"), "w")
    ack_cap = subprocess.Popen(in_c + [sys.executable, os.path.abspath(__file__), "--capture",
                                       tag + "b", str(port), stop],
                               stdout=ack_out) if dpdk else None
    log_path = os.path.join(d, name + ".srv")
    log = open(log_path, "w")
    srv = subprocess.Popen(in_s + [a.cli, "serve", "--bundle", a.bundle, "--models", a.models,
                                   "--listen", f"{server_addr}:{port}", "--key",
                                   os.path.join(d, "srv.key")] + srv_net + link, stderr=log)
    res = {"case": name}
    try:
        if not wait_log(log_path, "serving on", srv):
            res["skipped"] = "the server did not start: " + open(log_path).read()[-300:]
            return res
        t0 = time.time()
        out = subprocess.run(in_c + [a.cli, "classify", "--server", f"{server_addr}:{port}",
                                     "--server-pub", os.path.join(d, "srv.pub"), "--bundle",
                                     a.bundle, "--json", "--timeout-ms", "60000", "--inflight",
                                     a.inflight] + cli_net +
                             link + images, capture_output=True, text=True)
        res["seconds"] = round(time.time() - t0, 2)
        ok, failed = classify_result(out.stdout)
        res.update({"images": len(images), "ok": ok, "failed": failed, "rc": out.returncode})
        if out.returncode:
            res["stderr"] = out.stderr[-300:]
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
        open(stop, "w").close()
        cap.wait(timeout=30)
        cap_out.close()
        if ack_cap:
            ack_cap.wait(timeout=30)
        ack_out.close()
        log.close()
        if ns_s:
            subprocess.run(f"ip netns del {ns_s}; ip netns del {ns_c}", shell=True,
                           stderr=subprocess.DEVNULL)
    try:
        res.update(json.loads(open(os.path.join(d, name + ".cap")).read()))
    except ValueError:
        res["capture"] = "no result"
        return res
    acks = res.pop("acks", {})
    repeats = res.pop("repeats", [])
    if dpdk:
        try:
            acks = json.loads(open(os.path.join(d, name + ".acks")).read())["acks"]
        except ValueError:
            acks = {}
        n = sum(1 for rid, t in repeats if rid in acks and acks[rid] <= t)
        res["after_ack"] = n
        res["ratio_before_ack"] = round((res["frames"] - n) / res["needed"], 4)
    return res


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--capture":
        capture(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "splitwire"))
    ap.add_argument("--bundle", default=os.path.join(ROOT, "models", "default"))
    ap.add_argument("--models", default=os.path.join(ROOT, "build", "models"))
    ap.add_argument("--count", type=int, default=40, help="images per case")
    ap.add_argument("--loss", default="0.1")
    ap.add_argument("--inflight", default="4", help="classify --inflight")
    ap.add_argument("--cases", default="udp,udp-loss,af_packet,af_packet-loss")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("frames.py: capturing needs root")
    files = a.files
    if not files:
        shared = os.environ.get("SPLITWIRE_SHARED", os.path.join(ROOT, "..", "shared"))
        val = os.path.join(shared, "data", "imagenette2-224", "val")
        files = sorted(os.path.join(r, f) for r, _, fs in os.walk(val) for f in fs
                       if f.endswith((".JPEG", ".jpg", ".png")))[::97]
    images = (files * (a.count // max(1, len(files)) + 1))[:a.count]
    results = []
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([a.cli, "keygen", os.path.join(d, "srv")], check=True,
                       capture_output=True)
        for name in a.cases.split(","):
            results.append(run_case(a, d, name, images))
            print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"bundle": os.path.basename(os.path.normpath(a.bundle)),
                      "loss": float(a.loss), "cases": results}, indent=1))
    return 0 if all(r.get("ok") == len(images) for r in results if "skipped" not in r) else 1


if __name__ == "__main__":
    sys.exit(main())
