#!/bin/bash
# Stop the charon started by charon-start.sh DIR (SIGTERM, SIGKILL after 5 s). Always exits 0.
#   charon-stop.sh DIR
dir=$1
[ -f "$dir/charon.pid" ] || exit 0
pid=$(cat "$dir/charon.pid")
if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
fi
rm -f "$dir/charon.pid"
exit 0
