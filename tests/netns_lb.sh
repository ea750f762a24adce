#!/bin/sh
# Three `splitwire serve` processes, each in its own network namespace,
# behind an nftables load balancer in a router namespace (DNAT of a virtual
# address to `numgen inc mod 3`, a new server per new flow, as kube-proxy's
# nftables mode spreads flows with numgen), and three clients in a fourth
# namespace sending to the virtual address. Mid-run one server is killed
# (SIGKILL) and another drained (SIGTERM); the balancer still lists both,
# so new flows may land on them and must fail over again. Every image must
# be answered exactly once, with the label `classify --local` gives it.
# Needs root, `ip netns` and nft: skips (77) without them.
#
#   netns_lb.sh SPLITWIRE BUNDLE MODELS IMAGE...
set -u
SPW_CLI=$1 bundle=$2 models=$3
shift 3
. "$(dirname "$0")/spw_procs.sh"
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null 2>&1 || skip "no ip (iproute2)"
command -v nft >/dev/null 2>&1 || skip "no nft (nftables)"

tag=spw$$
rt=${tag}r cl=${tag}c
dir=$(mktemp -d)
spw_keys "$dir" || exit 1
pids=
cleanup() {
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
  for p in $pids; do wait "$p" 2>/dev/null; done
  for ns in $rt $cl ${tag}s1 ${tag}s2 ${tag}s3; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
  echo "netns_lb.sh: $*"
  for f in "$dir"/*.log; do echo "== $f"; cat "$f"; done
  ip netns exec $rt nft list ruleset 2>&1
  exit 1
}

ip netns add $rt 2>/dev/null || skip "cannot create network namespaces"
ip netns add $cl || fail "ip netns add"
in_rt() { ip netns exec $rt "$@"; }
in_rt nft add table ip spwlb 2>/dev/null || skip "nftables does not work in a namespace"
in_rt sysctl -qw net.ipv4.ip_forward=1 || fail "no forwarding in the router"

# 10.213.0.0/24: clients; 10.213.S.0/24: server S; 10.213.100.1: the service.
vip=10.213.100.1 port=7878
link() { # NS HOSTSIDE ROUTERSIDE SUBNET
  ip link add "$2" type veth peer name "$3" || fail "veth $2"
  ip link set "$2" netns "$1" && ip link set "$3" netns $rt || fail "moving veth $2"
  ip -n "$1" addr add "$4.2/24" dev "$2" && ip -n "$1" link set "$2" up &&
    ip -n "$1" link set lo up && ip -n "$1" route add default via "$4.1" || fail "address $4.2"
  ip -n $rt addr add "$4.1/24" dev "$3" && ip -n $rt link set "$3" up || fail "address $4.1"
}
ip -n $rt link set lo up
link $cl ${tag}c0 ${tag}r0 10.213.0
for s in 1 2 3; do
  ip netns add ${tag}s$s || fail "ip netns add"
  link ${tag}s$s ${tag}s$s ${tag}r$s 10.213.$s
done
in_rt nft -f - <<NFT || fail "loading the balancer's rules"
table ip spwlb {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr $vip udp dport $port dnat to numgen inc mod 3 map { 0 : 10.213.1.2, 1 : 10.213.2.2, 2 : 10.213.3.2 }
  }
}
NFT

# 3 clients x 30 distinct files.
n=0
for c in 1 2 3; do
  mkdir "$dir/img$c"
  k=0
  while [ $k -lt 30 ]; do
    for f in "$@"; do
      [ $k -lt 30 ] && cp "$f" "$dir/img$c/$c-$k-$(basename "$f")"
      k=$((k + 1))
    done
  done
done

for s in 1 2 3; do
  # Batches of one: the same plan as --local, so labels compare exactly.
  SPW_NS=${tag}s$s spw_serve --bundle "$bundle" --models "$models" --listen 0.0.0.0:$port \
    --max-batch 1 2>"$dir/srv$s.log" &
  echo $! >"$dir/srv$s.pid"
  pids="$pids $!"
done
for s in 1 2 3; do
  i=0
  until grep -q 'serving on' "$dir/srv$s.log" || [ $i -gt 300 ]; do i=$((i + 1)); sleep 0.1; done
  grep -q 'serving on' "$dir/srv$s.log" || fail "server $s did not start"
done

for c in 1 2 3; do
  (spw_classify --local --bundle "$bundle" --models "$models" --json "$dir/img$c") \
    >"$dir/local$c.out" 2>"$dir/local$c.log" || fail "classify --local failed"
done

# One flow per client at first: numgen inc puts one on each server.
for c in 1 2 3; do
  : >"$dir/remote$c.out"
done
for c in 1 2 3; do
  SPW_NS=$cl spw_classify --server $vip:$port --bundle "$bundle" --json --inflight 4 \
    --timeout-ms 60000 "$dir/img$c" >"$dir/remote$c.out" 2>"$dir/client$c.log" &
  echo $! >"$dir/client$c.pid"
  pids="$pids $!"
done
i=0
while [ $i -lt 3000 ]; do
  low=0
  for c in 1 2 3; do
    [ "$(grep -c '"label"' "$dir/remote$c.out")" -ge 2 ] || low=1
  done
  [ $low -eq 0 ] && break
  i=$((i + 1)); sleep 0.05
done
kill -KILL "$(cat "$dir/srv1.pid")"
kill -TERM "$(cat "$dir/srv2.pid")"
before=0
for c in 1 2 3; do before=$((before + $(grep -c '"label"' "$dir/remote$c.out"))); done
[ $before -ge 6 ] || fail "the clients did not start answering"
[ $before -lt 90 ] || fail "every image was done before the servers left: nothing tested"
wait "$(cat "$dir/srv2.pid")" || fail "server 2 did not exit 0 after SIGTERM"
for c in 1 2 3; do
  wait "$(cat "$dir/client$c.pid")" || fail "client $c failed"
done
kill -TERM "$(cat "$dir/srv3.pid")"
wait "$(cat "$dir/srv3.pid")" || fail "server 3 did not exit 0"

total=0
for c in 1 2 3; do
  for w in local remote; do
    sed -n 's/^{"file": "\([^"]*\)", "label": \(-*[0-9]*\),.*/\1 \2/p' "$dir/$w$c.out" |
      sort >"$dir/$w$c.lab"
  done
  [ "$(wc -l <"$dir/local$c.lab")" -eq 30 ] || fail "classify --local did not label 30 files"
  cmp -s "$dir/local$c.lab" "$dir/remote$c.lab" ||
    { diff "$dir/local$c.lab" "$dir/remote$c.lab"; fail "client $c: results differ from --local"; }
  total=$((total + $(wc -l <"$dir/remote$c.lab")))
done
res() { sed -n 's/^splitwire server: [0-9]* requests, \([0-9]*\) results.*/\1/p' "$dir/srv$1.log" | tail -1; }
echo "netns_lb.sh: $total images answered once each, as --local labels them" \
  "($before before server 1 was killed and server 2 drained;" \
  "server 2 answered $(res 2) in all, server 3 $(res 3))"
[ $total -eq 90 ] || fail "$total of 90 images answered"
for c in 1 2 3; do
  sed -n 's/.*"total_ms_p50": \([0-9.]*\), "total_ms_p99": \([0-9.]*\).*/\1 \2/p' "$dir/remote$c.out" |
    { read -r p50 p99; echo "netns_lb.sh: client $c: total ms p50 $p50, p99 $p99"; }
done
