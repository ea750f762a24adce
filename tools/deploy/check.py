#!/usr/bin/python3
"""Checks the deployment files in deploy/ as far as this machine allows.

    /usr/bin/python3 tools/deploy/check.py SPLITWIRE_BINARY

- deploy/k8s/*.yaml: parsed; a Deployment and a UDP Service that select the
  same pods, the container port named by the Service, probes that run an
  existing `splitwire` subcommand, a grace period for the drain. (kubectl's
  own validation needs a cluster, which this machine does not have.)
- deploy/systemd/*.service: `systemd-analyze verify` on a copy whose
  ExecStart and EnvironmentFile point at this tree, so the unit is checked
  as systemd would load it.
- deploy/Containerfile: every command it runs exists in the tree, the port
  it exposes is the one the others use.
Exits 0 when everything holds, 1 otherwise, printing what failed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORT = 7878
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def cli_subcommands(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"^  (\w+) ", out, re.M))


def check_k8s(binary):
    subs = cli_subcommands(binary)
    path = os.path.join(ROOT, "deploy", "k8s", "splitwire.yaml")
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    kinds = {d["kind"]: d for d in docs}
    check(set(kinds) == {"Deployment", "Service"}, f"{path}: kinds {sorted(kinds)}")
    dep, svc = kinds.get("Deployment"), kinds.get("Service")
    if not dep or not svc:
        return
    check(dep["apiVersion"] == "apps/v1" and svc["apiVersion"] == "v1", "apiVersions")
    sel = dep["spec"]["selector"]["matchLabels"]
    tmpl = dep["spec"]["template"]["metadata"]["labels"]
    check(all(tmpl.get(k) == v for k, v in sel.items()), "Deployment selector misses its pods")
    check(all(tmpl.get(k) == v for k, v in svc["spec"]["selector"].items()),
          "Service selector misses the pods")
    pod = dep["spec"]["template"]["spec"]
    check(pod.get("terminationGracePeriodSeconds", 30) >= 10, "no time to drain on SIGTERM")
    (ctr,) = pod["containers"]
    ports = {p["name"]: p for p in ctr["ports"]}
    for sp in svc["spec"]["ports"]:
        check(sp["protocol"] == "UDP", "Service port is not UDP")
        cp = ports.get(sp["targetPort"])
        check(cp is not None and cp["protocol"] == "UDP" and cp["containerPort"] == PORT,
              f"Service targetPort {sp['targetPort']} is not the container's UDP {PORT}")
    for probe in ("readinessProbe", "livenessProbe"):
        cmd = ctr.get(probe, {}).get("exec", {}).get("command", [])
        check(len(cmd) >= 2 and cmd[0] == "splitwire" and cmd[1] in subs,
              f"{probe} runs {cmd}, not a splitwire subcommand")
        check(f"127.0.0.1:{PORT}" in cmd, f"{probe} does not ask port {PORT}")


def check_systemd(binary):
    if not shutil.which("systemd-analyze"):
        print("check.py: no systemd-analyze: the unit is not verified")
        return
    src = os.path.join(ROOT, "deploy", "systemd", "splitwire-serve@.service")
    env = os.path.join(ROOT, "deploy", "systemd", "serve.env")
    with tempfile.TemporaryDirectory() as d:
        unit = os.path.join(d, "splitwire-serve@.service")
        text = open(src).read()
        text = text.replace("/usr/local/bin/splitwire", os.path.abspath(binary))
        text = text.replace("/etc/splitwire/serve.env", env)
        open(unit, "w").write(text)
        inst = os.path.join(d, "splitwire-serve@1.service")
        os.symlink(unit, inst)
        r = subprocess.run(["systemd-analyze", "verify", inst], capture_output=True, text=True)
        msg = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and not msg, f"systemd-analyze verify: {msg or r.returncode}")
    envs = dict(l.split("=", 1) for l in open(env).read().splitlines() if l and l[0] != "#")
    for var in re.findall(r"\$\{(\w+)\}", text):
        check(var in envs, f"the unit uses ${{{var}}}, which serve.env does not set")


def check_containerfile():
    path = os.path.join(ROOT, "deploy", "Containerfile")
    text = open(path).read()
    for script in re.findall(r"\b(tools/[\w/.]+\.sh)\b", text):
        check(os.path.exists(os.path.join(ROOT, script)), f"Containerfile runs {script}: missing")
    check(f"EXPOSE {PORT}/udp" in text, f"Containerfile does not expose {PORT}/udp")
    check(f"0.0.0.0:{PORT}" in text, "Containerfile does not serve on the exposed port")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    check_k8s(sys.argv[1])
    check_systemd(sys.argv[1])
    check_containerfile()
    for f in failures:
        print("check.py: FAIL:", f)
    print(f"check.py: {'all checks hold' if not failures else f'{len(failures)} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
