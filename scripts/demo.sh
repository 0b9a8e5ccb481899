#!/usr/bin/env bash
# `make demo`: a namespace topology, lfp started with `fpctl start`, Linux configured with plain `ip`,
# and what lfp mirrored into its shared memory shown with `fpctl`.
#
#   host A (lfp-demo-a) a0 ---- pA [ lfp-demo-phy: the wire side of lfp ] pB ---- b0 host B (lfp-demo-b)
#                                  fast path ports eth1 (pA), eth2 (pB)
#                                  DPVIs eth1, eth2 in lfp-demo-cp (the control plane, configured with ip)
#                                  + VRF 7 = netns lfp-demo-vrf7
#
# KEEP=1 leaves everything running (stop with: scripts/demo.sh stop).
set -euo pipefail
cd "$(dirname "$0")/.."
D=/tmp/lfp-demo
CFG=$D/lfp.json
FPCTL="node build/cli/fpctl.js"
NS="lfp-demo-cp lfp-demo-phy lfp-demo-a lfp-demo-b lfp-demo-vrf7"

cleanup() {
  [ -f "$CFG" ] && $FPCTL stop -c "$CFG" >/dev/null 2>&1 || true
  for n in $NS; do ip netns del "$n" 2>/dev/null || true; done
  # fpmd mounted a huge-page tmpfs on $D/shm for the shared memory (shm.hugePages)
  if mountpoint -q "$D/shm" 2>/dev/null; then umount "$D/shm" || true; fi
}
if [ "${1:-}" = stop ]; then cleanup; rm -rf "$D"; echo "demo stopped"; exit 0; fi
cleanup
[ "${KEEP:-0}" = 1 ] || trap 'cleanup; rm -rf "$D"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Topology: host A -- lfp -- host B, plus a VRF namespace"
for n in $NS; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n lfp-demo-phy link add pA type veth peer name a0 netns lfp-demo-a
ip -n lfp-demo-phy link add pB type veth peer name b0 netns lfp-demo-b
ip -n lfp-demo-phy link set pA up
ip -n lfp-demo-phy link set pB up
mkdir -p $D
cat > $CFG <<JSON
{
  "controlPlaneNetns": "lfp-demo-cp",
  "vrfNetns": ["lfp-demo-vrf7"],
  "ports": [
    { "name": "eth1", "kernel": "pA", "netns": "lfp-demo-phy" },
    { "name": "eth2", "kernel": "pB", "netns": "lfp-demo-phy" }
  ],
  "fpc": "ipc://$D/fpc.sock",
  "shm": { "path": "$D/shm/lfp", "maxRoutes": 100000, "tbl8Groups": 4096 },
  "runDir": "$D",
  "logDir": "$D"
}
JSON
echo "config $CFG:"; cat $CFG

step "Start lfp (fpmd, the fast path with its DPVIs eth1/eth2 in the control plane, cmgrd)"
run $FPCTL start -c $CFG --fresh
run ip -n lfp-demo-cp -br link show

step "Configure Linux with ip (in the control-plane netns)"
run ip -n lfp-demo-cp link set eth1 up
run ip -n lfp-demo-cp link set eth2 up
run ip -n lfp-demo-cp addr add 192.168.1.1/24 dev eth1
run ip -n lfp-demo-cp addr add 192.168.2.1/24 dev eth2
run ip -n lfp-demo-cp -6 addr add 2001:db8:1::1/64 dev eth1 nodad
run ip -n lfp-demo-cp -6 addr add 2001:db8:2::1/64 dev eth2 nodad
run ip -n lfp-demo-cp route add 198.51.100.0/24 nexthop via 192.168.1.2 weight 2 nexthop via 192.168.2.2 weight 1
run ip -n lfp-demo-cp route add 203.0.113.0/24 via 192.168.2.2 table 100
run ip -n lfp-demo-cp rule add from 192.168.1.0/24 to 203.0.113.0/24 table 100 pref 100
run ip -n lfp-demo-cp xfrm policy add src 192.168.1.0/24 dst 10.99.0.0/16 dir out tmpl src 192.168.2.1 dst 192.168.2.99 proto esp reqid 1 mode tunnel
run ip netns exec lfp-demo-cp sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
for h in a:1 b:2; do
  n=lfp-demo-${h%%:*}; i=${h##*:}; dev=${h%%:*}0
  ip -n $n link set $dev up
  ip netns exec $n ethtool -K $dev tx off >/dev/null   # veth offload would leave UDP checksums unfilled
  ip -n $n addr add 192.168.$i.2/24 dev $dev
  ip -n $n -6 addr add 2001:db8:$i::2/64 dev $dev nodad
  ip -n $n route add default via 192.168.$i.1
  ip -n $n -6 route add default via 2001:db8:$i::1
done
run ip -n lfp-demo-cp netns set lfp-demo-vrf7 7
run ip -n lfp-demo-vrf7 link add v7a type veth peer name v7b
run ip -n lfp-demo-vrf7 addr add 172.16.7.1/24 dev v7a
run ip -n lfp-demo-vrf7 link set v7a up

# the DPVIs get carrier from their ports (the fast path's control tick): wait for it
for i in $(seq 50); do
  ip -n lfp-demo-cp link show eth1 | grep -q LOWER_UP && ip -n lfp-demo-cp link show eth2 | grep -q LOWER_UP && break
  sleep 0.1
done

step "Traffic: host A pings host B (IPv4 and IPv6); Linux resolves the neighbours through the DPVIs"
run ip netns exec lfp-demo-a ping -c 3 -i 0.3 -w 5 192.168.2.2
run ip netns exec lfp-demo-a ping -6 -c 3 -i 0.3 -w 5 2001:db8:2::2
sleep 0.2

step "A 50,000-packet UDP flow from host A to host B"
UDP="node build/tests/lib/udp-tool.js"
ip netns exec lfp-demo-b $UDP recv 5001 50000 15000 > $D/recv.json 2>/dev/null &
sleep 0.5
run ip netns exec lfp-demo-a $UDP send 192.168.2.2 5001 50000 20000
wait
echo "host B received: $(cat $D/recv.json)"

step "Fast path counters: the flow was forwarded by the fast path, not by Linux"
run $FPCTL -c $CFG show stats

step "What lfp mirrored into shared memory (fpctl reads it directly)"
run $FPCTL -c $CFG show ports
run $FPCTL -c $CFG show vrfs
run $FPCTL -c $CFG show addresses --vrf 0
run $FPCTL -c $CFG show routes --vrf 0
run $FPCTL -c $CFG show rules --vrf 0
run $FPCTL -c $CFG show neighbours
run $FPCTL -c $CFG show sp
run $FPCTL -c $CFG show routes --vrf 7
run $FPCTL -c $CFG status

step "A change in Linux shows up in lfp at once"
run ip -n lfp-demo-cp route replace 198.51.100.0/24 via 192.168.1.2
run $FPCTL -c $CFG show routes --vrf 0 --json | grep -A6 '"198.51.100.0"' | head -8

step "The fast path crashes (kill -9): the watcher starts it again; eth1/eth2 keep their addresses and routes"
FP_PID=$(cat $D/fp.pid)
run kill -9 $FP_PID
for i in $(seq 100); do
  NEW=$(cat $D/fp.pid 2>/dev/null); [ -n "$NEW" ] && [ "$NEW" != "$FP_PID" ] && ip -n lfp-demo-cp link show eth2 | grep -q LOWER_UP && break
  sleep 0.1
done
run ip -n lfp-demo-cp -br addr show dev eth1
run ip netns exec lfp-demo-a ping -c 2 -i 0.3 -w 5 192.168.2.2
run $FPCTL -c $CFG status

cat <<TXT

"fast-path forwarded" counts packets the fast path forwarded itself; "to Linux (DPVI)" counts the
exceptions (ARP/ND, the first packets of a flow before its neighbour is known, local traffic).
Logs: $D/fpmd.log $D/fp.log $D/cmgrd.log
TXT
[ "${KEEP:-0}" = 1 ] && echo "Left running (KEEP=1). Stop with: scripts/demo.sh stop"
exit 0
