#!/usr/bin/env python3
"""Attacks on a real `splitwire serve` (protocol 2) on loopback.

    attack.py SPLITWIRE BUNDLE MODELS IMAGE...

The client talks to the server through a relay in this script, which plays
an attacker on the path: it injects forged RESULT and ERROR frames (protocol
1 ones with a valid CRC, and protocol 2 ones with a wrong tag) for the
client's request ids before the real answers, replays every server frame to
the client and every client frame to the server many times. The client's
answers must equal `classify --local`'s and the server must count the
replays and forgeries. Then, from a plain socket, unauthenticated datagrams
of every kind go to the server: what comes back must be no larger than what
was sent (amplification <= 1). A control run of the same relay against
protocol 1 (--insecure) must be fooled, showing the attack is real. Exit 0
when every check holds.
"""
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

HDR = 70
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def v1_frame(msg_type, request_id, payload):
    """A protocol 1 frame with a valid CRC (what forged answers looked like)."""
    payload = payload + b"\0" * (-len(payload) % 4)
    h = bytearray(HDR)
    h[0:2] = b"SW"
    h[2] = 1
    h[3] = msg_type
    h[4] = HDR
    struct.pack_into("<Q", h, 8, request_id)
    struct.pack_into("<HH", h, 30, 0, 1)
    struct.pack_into("<HI", h, 34, len(payload), len(payload))
    crc = crc32c(bytes(h) + payload)
    struct.pack_into("<I", h, 16, crc)
    return bytes(h) + payload


def forge_sealed(frame, msg_type, counter):
    """A protocol 2 frame like `frame`, retyped, with a counter never used:
    its tag cannot match."""
    f = bytearray(frame)
    f[3] = msg_type
    struct.pack_into("<Q", f, 46, counter)
    return bytes(f)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(cli, bundle, models, key, port, log):
    keyargs = ["--key", key] if key else ["--insecure"]
    srv = subprocess.Popen([cli, "serve", "--bundle", bundle, "--models", models, "--listen",
                            f"127.0.0.1:{port}"] + keyargs, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        with open(log.name) as f:
            if "serving on" in f.read():
                return srv
        if srv.poll() is not None:
            break
        time.sleep(0.1)
    srv.kill()
    sys.exit("attack.py: the server did not start")


def classify_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    lines = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    per_file = {d["file"]: (d.get("label"), d.get("error")) for d in lines if "file" in d}
    return out.returncode, per_file, out.stderr


class Relay:
    """Forwards between the client and the server, attacking as it goes."""

    def __init__(self, server_port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = ("127.0.0.1", server_port)
        self.client = None
        self.forged = 0
        self.replayed_to_server = 0
        # A stranger aiming unauthenticated datagrams at the client's port.
        self.stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stranger.bind(("127.0.0.1", 0))
        self.stranger_sent = 0
        self.stranger_back = 0

    def run(self, until):
        rnd = random.Random(7)
        while time.time() < until():
            r, _, _ = select.select([self.sock, self.stranger], [], [], 0.05)
            if self.stranger in r:
                self.stranger_back += len(self.stranger.recv(65535))
                continue
            if not r:
                continue
            data, src = self.sock.recvfrom(65535)
            if src == self.server:
                if not self.client:
                    continue
                req_id = struct.unpack_from("<Q", data, 8)[0] if len(data) >= HDR else 0
                if len(data) >= HDR and data[3] in (2, 3):
                    # Forgeries first, so the client sees them before the answer.
                    for t in (2, 3):
                        self.sock.sendto(v1_frame(t, req_id, b"balloon 99.9%\0\0\0"), self.client)
                        self.sock.sendto(forge_sealed(data, t, rnd.getrandbits(40) + (1 << 40)),
                                         self.client)
                        self.forged += 2
                self.sock.sendto(data, self.client)
                # And every frame again, several times: replays.
                for _ in range(3):
                    self.sock.sendto(data, self.client)
            else:
                if not self.client:
                    self.client = src
                    for p in stranger_probes(rnd):
                        self.stranger.sendto(p, src)
                        self.stranger_sent += len(p)
                self.client = src
                self.sock.sendto(data, self.server)
                if len(data) >= HDR and data[5] == 1:
                    for _ in range(5):
                        self.sock.sendto(data, self.server)
                        self.replayed_to_server += 1
                    # Forged requests too: a known id under a new counter.
                    self.sock.sendto(forge_sealed(data, 1, rnd.getrandbits(40) + (1 << 41)),
                                     self.server)


def stranger_probes(rnd):
    """Datagrams a client must not answer: a protocol 1 first fragment of a
    large message (which once drew NACKs), protocol 1 answers and PINGs,
    sealed frames of every type under a random session, handshake frames."""
    probes = []
    for i in range(10):
        h = bytearray(v1_frame(2, 500 + i, bytes(1000)))
        struct.pack_into("<HH", h, 30, 0, 200)
        struct.pack_into("<I", h, 36, 200 * 1000)
        struct.pack_into("<I", h, 16, 0)
        struct.pack_into("<I", h, 16, crc32c(bytes(h)))
        probes.append(bytes(h))
        probes.append(v1_frame(5, 600 + i, bytes(8)))
    for t in list(range(1, 8)) + [9, 10, 11]:
        f = bytearray(HDR + 64)
        f[0:2] = b"SW"
        f[2], f[3], f[4], f[5] = 2, t, HDR, 1 if t <= 7 else 0
        struct.pack_into("<HHHI", f, 30, 0, 1, 64, 64)
        if t <= 7:
            f[42:70] = bytes(rnd.getrandbits(8) for _ in range(28))
        probes.append(bytes(f))
    return probes


def amplification(port):
    """Unauthenticated datagrams of every kind: bytes back / bytes sent."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    rnd = random.Random(11)
    sent = 0
    probes = []
    # Protocol 1 requests: the first fragment of a large message (which once
    # drew many NACKs), and a whole small one.
    for i in range(20):
        h = bytearray(v1_frame(1, 1000 + i, bytes(1000)))
        struct.pack_into("<HH", h, 30, 0, 200)
        struct.pack_into("<I", h, 36, 200 * 1000)
        struct.pack_into("<I", h, 16, 0)
        struct.pack_into("<I", h, 16, crc32c(bytes(h)))
        probes.append(bytes(h))
        probes.append(v1_frame(1, 2000 + i, bytes(64)))
        probes.append(v1_frame(5, 3000 + i, bytes(8)))  # PING
    # Protocol 2 sealed frames for sessions that do not exist, every type.
    for t in range(1, 8):
        for size in (0, 8, 64, 1000):
            f = bytearray(HDR + size)
            f[0:2] = b"SW"
            f[2], f[3], f[4], f[5] = 2, t, HDR, 1
            struct.pack_into("<QHHHI", f, 8, rnd.getrandbits(64), 0, 0, 0, 0)
            struct.pack_into("<HHHI", f, 30, 0, 1, size, size)
            f[42:70] = bytes(rnd.getrandbits(8) for _ in range(28))
            probes.append(bytes(f))
    # HELLOs that do not authenticate, with and without a cookie.
    for extra in (0, 16):
        for _ in range(10):
            f = bytearray(HDR) + bytes(rnd.getrandbits(8) for _ in range(108 + extra))
            f[0:2] = b"SW"
            f[2], f[3], f[4] = 2, 8, HDR
            struct.pack_into("<HHHI", f, 30, 0, 1, 108 + extra, 108 + extra)
            probes.append(bytes(f))
    # Garbage.
    for _ in range(50):
        probes.append(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 1400))))
    for p in probes:
        s.sendto(p, ("127.0.0.1", port))
        sent += len(p)
    back = 0
    frames = 0
    end = time.time() + 1.0
    while time.time() < end:
        r, _, _ = select.select([s], [], [], 0.05)
        if r:
            back += len(s.recv(65535))
            frames += 1
    s.close()
    return sent, back, frames


def through_relay(cli, bundle, server_port, keyargs, images):
    """classify through an attacking relay: (rc, answers, stderr, relay)."""
    import threading
    relay = Relay(server_port)
    done = {"t": time.time() + 120}
    th = threading.Thread(target=relay.run, args=(lambda: done["t"],))
    th.start()
    try:
        rc, remote, err = classify_json(
            [cli, "classify", "--server", f"127.0.0.1:{relay.port}", "--json", "--timeout-ms",
             "20000", "--bundle", bundle] + keyargs + images)
    finally:
        done["t"] = 0
        th.join()
    return rc, remote, err, relay


def control(cli, bundle, models, images, local, d):
    """The same relay against protocol 1: the forged answers are taken."""
    port = free_port()
    log = open(os.path.join(d, "insecure.log"), "w")
    srv = start_server(cli, bundle, models, None, port, log)
    try:
        _, remote, _, _ = through_relay(cli, bundle, port, ["--insecure"], images)
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        log.close()
    check(remote != local, "control: the same attack fools a protocol 1 client")


def main():
    if len(sys.argv) < 5:
        print(__doc__)
        return 2
    cli, bundle, models = sys.argv[1:4]
    images = sys.argv[4:]
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([cli, "keygen", os.path.join(d, "srv")], check=True,
                       capture_output=True)
        port = free_port()
        log = open(os.path.join(d, "server.log"), "w")
        srv = start_server(cli, bundle, models, os.path.join(d, "srv.key"), port, log)
        try:
            rc_local, local, _ = classify_json([cli, "classify", "--local", "--json", "--bundle",
                                                bundle, "--models", models] + images)
            rc, remote, err, relay = through_relay(
                cli, bundle, port, ["--server-pub", os.path.join(d, "srv.pub")], images)
            check(rc_local == 0 and len(local) == len(images), "classify --local answered")
            check(rc == 0, f"classify through the attacking relay exits 0 (rc {rc}) {err[-300:]}")
            check(remote == local, "every answer equals classify --local's despite "
                  f"{relay.forged} forged answers and the replays")
            check(relay.forged > 0 and relay.replayed_to_server > 0, "the relay did attack")
            check(relay.stranger_sent > 0 and relay.stranger_back == 0,
                  f"the client answered none of {relay.stranger_sent} bytes of unauthenticated "
                  f"datagrams from a stranger ({relay.stranger_back} bytes back)")
            sent, back, frames = amplification(port)
            check(back <= sent, f"unauthenticated datagrams: {sent} bytes sent, {back} bytes "
                  f"({frames} frames) back: amplification {back / sent:.3f} <= 1")
        finally:
            srv.terminate()
            srv.wait(timeout=30)
            log.close()
        text = open(os.path.join(d, "server.log")).read()
        print(text.strip())
        import re
        m = re.search(r"auth: handshakes (\d+), forged (\d+), replayed (\d+), no session (\d+)",
                      text)
        check(m is not None, "the server reports its refusals")
        if m:
            hs, forged, replayed, nosess = map(int, m.groups())
            check(replayed >= relay.replayed_to_server,
                  f"the server counted {replayed} replays (sent {relay.replayed_to_server})")
            check(forged >= 1, f"the server counted {forged} forgeries")
            check(nosess >= 1, f"the server counted {nosess} frames without a session")
        check(srv.returncode == 0, f"the server exits 0 (rc {srv.returncode})")
        control(cli, bundle, models, images, local, d)
    print("attack.py:", "all checks hold" if not failures else f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
