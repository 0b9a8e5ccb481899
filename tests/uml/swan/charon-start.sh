#!/bin/bash
# Start one charon (strongSwan's IKE daemon) in network namespace NETNS with its own private /run
# (a tmpfs mounted in the mount namespace `ip netns exec` creates, so charon.pid of two daemons do
# not clash), config DIR/strongswan.conf (vici socket DIR/charon.vici, log DIR/charon.log), then
# load DIR/swanctl/ (swanctl.conf + credentials) into it.
#   charon-start.sh DIR NETNS        prints the daemon's pid (also in DIR/charon.pid)
# Exit 0 once the connections are loaded; non-zero (with the log's tail) if charon did not come up
# within 30 s.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: charon-start.sh DIR NETNS" >&2; exit 2; }
dir=$(cd "$1" && pwd); ns=$2
CHARON=${LFP_CHARON:-/usr/lib/ipsec/charon}
[ -x "$CHARON" ] || { echo "charon-start: $CHARON not found (apt-get install strongswan-charon)" >&2; exit 3; }
export STRONGSWAN_CONF=$dir/strongswan.conf
rm -f "$dir/charon.vici" "$dir/charon.log"
# `ip netns exec` execs (no fork): $! is charon's pid.
ip netns exec "$ns" /bin/sh -c 'mount -t tmpfs -o mode=755 tmpfs /run && exec "$0"' "$CHARON" \
    </dev/null >>"$dir/charon.out" 2>&1 &
pid=$!
echo "$pid" >"$dir/charon.pid"
for _ in $(seq 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "charon-start: charon in $ns exited" >&2
        tail -n 20 "$dir/charon.out" "$dir/charon.log" >&2 2>/dev/null || true
        exit 1
    fi
    [ -S "$dir/charon.vici" ] && break
    sleep 0.1
done
if [ ! -S "$dir/charon.vici" ]; then
    echo "charon-start: no vici socket after 30 s" >&2
    tail -n 20 "$dir/charon.log" >&2 2>/dev/null || true
    exit 1
fi
SWANCTL_DIR=$dir/swanctl swanctl --load-all --noprompt --uri "unix://$dir/charon.vici" >"$dir/load.out" 2>&1 || {
    echo "charon-start: swanctl --load-all failed:" >&2
    cat "$dir/load.out" >&2
    exit 1
}
echo "$pid"
