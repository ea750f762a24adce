#!/usr/bin/env bash
# Emulated mobile uplinks for netpath benchmarks: two network namespaces
# joined by a veth pair, shaped with tc netem in both directions.
#
#   tools/net/netem.sh up <lte|5g|wifi|none>   create (or reshape) the link
#   tools/net/netem.sh down                    remove namespaces and veth
#   tools/net/netem.sh status                  show addresses and qdiscs
#
# Client side: namespace spw-cli, interface spw-c, 10.77.0.1/24.
# Server side: namespace spw-srv, interface spw-s, 10.77.0.2/24.
# Run a program in a side with: ip netns exec spw-cli <command>.
#
# Presets (uplink = client -> server, downlink = server -> client). Typical
# figures for a device with decent coverage, not worst cases:
#   preset  uplink rate  downlink rate  one-way delay (jitter)  loss each way
#   lte       10 Mbit/s     30 Mbit/s       25 ms (5 ms)            0.5 %
#   5g        50 Mbit/s    200 Mbit/s       10 ms (2 ms)            0.1 %
#   wifi      80 Mbit/s    150 Mbit/s        3 ms (1 ms)            0.2 %
#   none      unshaped
# Jitter is normally distributed; netem may reorder packets when jitter
# exceeds their spacing, which the protocol has to handle anyway.
# Kernels without sch_netem (some VMs) get the rates alone, from a token
# bucket (tbf); delay and loss then come from the transport's own shaper
# (spw_net_config.shape_delay_us, shape_loss), and the script says so.
set -euo pipefail

NS_C=spw-cli NS_S=spw-srv IF_C=spw-c IF_S=spw-s
IP_C=10.77.0.1 IP_S=10.77.0.2

die() { echo "netem.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, tc)"
command -v ip >/dev/null || die "'ip' (iproute2) not found"
command -v tc >/dev/null || die "'tc' (iproute2) not found"

down() {
  ip netns del "$NS_C" 2>/dev/null || true
  ip netns del "$NS_S" 2>/dev/null || true
}

rate_only=0
shape() { # ns dev rate delay jitter loss
  ip netns exec "$1" tc qdisc del dev "$2" root 2>/dev/null || true
  [ "$3" = none ] && return 0
  if ip netns exec "$1" tc qdisc add dev "$2" root netem \
       rate "$3" delay "$4" "$5" distribution normal loss "$6" limit 10000 2>/dev/null; then
    return 0
  fi
  # No netem: a token bucket at the same rate, 64 KiB of burst, 100 ms of queue.
  rate_only=1
  ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "$3" burst 64kb latency 100ms
}

up() {
  local preset=$1 ur dr d j l
  case "$preset" in
    lte)  ur=10mbit dr=30mbit  d=25ms j=5ms l=0.5% ;;
    5g)   ur=50mbit dr=200mbit d=10ms j=2ms l=0.1% ;;
    wifi) ur=80mbit dr=150mbit d=3ms  j=1ms l=0.2% ;;
    none) ur=none dr=none d=0 j=0 l=0 ;;
    *) die "unknown preset '$preset' (lte, 5g, wifi, none)" ;;
  esac
  if ! ip netns list | grep -qw "$NS_C"; then
    ip netns add "$NS_C"
    ip netns add "$NS_S"
    ip link add "$IF_C" netns "$NS_C" type veth peer name "$IF_S" netns "$NS_S"
    ip -n "$NS_C" addr add "$IP_C/24" dev "$IF_C"
    ip -n "$NS_S" addr add "$IP_S/24" dev "$IF_S"
    ip -n "$NS_C" link set lo up
    ip -n "$NS_S" link set lo up
    ip -n "$NS_C" link set "$IF_C" up
    ip -n "$NS_S" link set "$IF_S" up
  fi
  if ! shape "$NS_C" "$IF_C" "$ur" "$d" "$j" "$l" ||
     ! shape "$NS_S" "$IF_S" "$dr" "$d" "$j" "$l"; then
    down
    die "tc could not shape the link (neither netem nor tbf); namespaces removed"
  fi
  echo "netem.sh: $preset link between $NS_C ($IP_C) and $NS_S ($IP_S)"
  if [ "$rate_only" = 1 ]; then
    echo "netem.sh: this kernel has no netem: rates only (tbf); add delay $d and loss $l" \
         "with the transport's shaper (shape_delay_us, shape_loss)" >&2
  fi
}

status() {
  for ns in "$NS_C" "$NS_S"; do
    ip netns list | grep -qw "$ns" || { echo "$ns: absent"; continue; }
    echo "== $ns"
    ip -n "$ns" -brief addr
    ip netns exec "$ns" tc qdisc show
  done
}

case "${1:-}" in
  up) up "${2:-lte}" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up <lte|5g|wifi|none> | down | status" >&2; exit 2 ;;
esac
