#!/usr/bin/env bash
# `make demo`: a namespace topology, lfp started with `fpctl start`, Linux configured with plain `ip`,
# and what lfp mirrored into its shared memory shown with `fpctl`.
#
#   host A (lfp-demo-a) a0 ---- eth1 [ lfp-demo-cp: control plane ] eth2 ---- b0 host B (lfp-demo-b)
#                                       + VRF 7 = netns lfp-demo-vrf7
#
# KEEP=1 leaves everything running (stop with: scripts/demo.sh stop).
set -euo pipefail
cd "$(dirname "$0")/.."
D=/tmp/lfp-demo
CFG=$D/lfp.json
FPCTL="node build/cli/fpctl.js"
NS="lfp-demo-cp lfp-demo-a lfp-demo-b lfp-demo-vrf7"

cleanup() {
  [ -f "$CFG" ] && $FPCTL stop -c "$CFG" >/dev/null 2>&1 || true
  for n in $NS; do ip netns del "$n" 2>/dev/null || true; done
  rm -f /dev/shm/lfp-demo
}
if [ "${1:-}" = stop ]; then cleanup; rm -rf "$D"; echo "demo stopped"; exit 0; fi
cleanup
[ "${KEEP:-0}" = 1 ] || trap 'cleanup; rm -rf "$D"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Topology: host A -- control plane -- host B, plus a VRF namespace"
for n in $NS; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n lfp-demo-cp link add eth1 type veth peer name a0 netns lfp-demo-a
ip -n lfp-demo-cp link add eth2 type veth peer name b0 netns lfp-demo-b
mkdir -p $D
cat > $CFG <<JSON
{
  "controlPlaneNetns": "lfp-demo-cp",
  "vrfNetns": ["lfp-demo-vrf7"],
  "ports": ["eth1", "eth2"],
  "fpc": "ipc://$D/fpc.sock",
  "shm": { "path": "/dev/shm/lfp-demo", "maxRoutes": 100000, "tbl8Groups": 4096 },
  "runDir": "$D",
  "logDir": "$D"
}
JSON
echo "config $CFG:"; cat $CFG

step "Start lfp"
run $FPCTL start -c $CFG --fresh

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
  ip -n $n addr add 192.168.$i.2/24 dev $dev
  ip -n $n -6 addr add 2001:db8:$i::2/64 dev $dev nodad
  ip -n $n route add default via 192.168.$i.1
  ip -n $n -6 route add default via 2001:db8:$i::1
done
run ip -n lfp-demo-cp netns set lfp-demo-vrf7 7
run ip -n lfp-demo-vrf7 link add v7a type veth peer name v7b
run ip -n lfp-demo-vrf7 addr add 172.16.7.1/24 dev v7a
run ip -n lfp-demo-vrf7 link set v7a up

step "Traffic: host A pings host B (IPv4 and IPv6); Linux learns the neighbours"
run ip netns exec lfp-demo-a ping -c 3 -i 0.3 -w 5 192.168.2.2
run ip netns exec lfp-demo-a ping -6 -c 3 -i 0.3 -w 5 2001:db8:2::2
sleep 0.2

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

cat <<TXT

The fast path that forwards with this state is the next step (issue 3); today the kernel
forwards, lfp mirrors. Logs: $D/fpmd.log $D/cmgrd.log
TXT
[ "${KEEP:-0}" = 1 ] && echo "Left running (KEEP=1). Stop with: scripts/demo.sh stop"
exit 0
