#!/bin/bash
# Run a command as root inside a freshly booted user-mode Linux kernel (Debian's
# `user-mode-linux`, which has ESP/XFRM as modules; the host kernel does not).
#
#   tests/uml/run-in-uml.sh [--timeout SECONDS] [--mem SIZE] [--log FILE] -- COMMAND [ARGS...]
#
# The guest's root filesystem is the host's, read-only; the repository this script lives in is
# mounted writable at the same path; /tmp, /run, /var/tmp, /dev/shm are empty tmpfs. The command
# runs in the current directory with the current environment, its stdout/stderr appear on ours,
# and we exit with its exit status. Our own messages start with "run-in-uml:".
# Exit status: the command's; 124 on timeout; 125 if UML or the guest setup failed; 126 usage.
# See tests/uml/README.md.

set -u
PROG=run-in-uml
MY_PGID=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd -P)
INIT="$SCRIPT_DIR/uml-init.sh"

TIMEOUT=${LFP_UML_TIMEOUT:-600}
MEM=${LFP_UML_MEM:-1G}
KLOG_COPY=""
UML=${LFP_UML_KERNEL:-}

msg() { echo "$PROG: $*" >&2; }
usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 126
}

while [ $# -gt 0 ]; do
    case "$1" in
    --timeout) [ $# -ge 2 ] || usage; TIMEOUT=$2; shift 2 ;;
    --timeout=*) TIMEOUT=${1#*=}; shift ;;
    --mem) [ $# -ge 2 ] || usage; MEM=$2; shift 2 ;;
    --mem=*) MEM=${1#*=}; shift ;;
    --log) [ $# -ge 2 ] || usage; KLOG_COPY=$2; shift 2 ;;
    --log=*) KLOG_COPY=${1#*=}; shift ;;
    -h | --help) usage ;;
    --) shift; break ;;
    -*) msg "unknown option $1"; usage ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || { msg "no command given"; usage; }
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && [ "$TIMEOUT" -gt 0 ] || { msg "bad --timeout '$TIMEOUT'"; exit 126; }
[[ "$MEM" =~ ^[0-9]+[kKmMgG]?$ ]] || { msg "bad --mem '$MEM'"; exit 126; }

# --- prerequisites ------------------------------------------------------------------------------
if [ -z "$UML" ]; then
    UML=$(command -v linux.uml 2>/dev/null || true)
    [ -n "$UML" ] || { [ -x /usr/bin/linux.uml ] && UML=/usr/bin/linux.uml; }
fi
if [ -z "$UML" ] || [ ! -x "$UML" ]; then
    msg "linux.uml not found: apt-get install -y user-mode-linux kmod"
    exit 125
fi
if ! compgen -G "/usr/lib/uml/modules/*/modules.dep" >/dev/null; then
    msg "no UML modules in /usr/lib/uml/modules: apt-get install -y user-mode-linux"
    exit 125
fi
if ! command -v modprobe >/dev/null 2>&1 && [ ! -x /sbin/modprobe ] && [ ! -x /usr/sbin/modprobe ]; then
    msg "modprobe not found: apt-get install -y kmod"
    exit 125
fi

# --- run directory (host side; mounted at the same path inside UML) ----------------------------
# On $TMPDIR or /tmp rather than /dev/shm: other jobs on a shared machine may mount/unmount
# tmpfs over /dev/shm, which made the directory vanish under us. /dev/shm (TMPDIR=/dev/shm) is
# faster when the command writes a lot (each write is synchronous, see uml-init.sh).
RUN=""
for base in "${TMPDIR:-/tmp}" /tmp; do
    if [ -d "$base" ] && [ -w "$base" ]; then
        RUN=$(mktemp -d "$base/lfp-uml.XXXXXX" 2>/dev/null) && break
    fi
done
[ -n "$RUN" ] || { msg "cannot create a temporary directory"; exit 125; }
RUN=$(cd "$RUN" && pwd -P)
# Both paths travel on the kernel command line, which splits at whitespace.
if [[ "$RUN$REPO" =~ [[:space:]] ]]; then
    msg "paths with whitespace are not supported: '$REPO', '$RUN'"
    rm -rf -- "$RUN"
    exit 125
fi

UML_PID=""
UML_PGID=""
WATCH_PIDS=()
# Never signal our own process group, whatever happens.
kill_uml_group() {
    [ -n "$UML_PGID" ] && [ "$UML_PGID" != "$MY_PGID" ] && kill -KILL -- "-$UML_PGID" 2>/dev/null
    return 0
}
# Stop UML: SIGTERM makes the UML kernel process kill and reap its helper processes (one host
# process per guest address space) before exiting; SIGKILL on the whole group if it does not
# manage within 3 s. (SIGKILL alone leaves the helpers to the host's init as zombies.)
stop_uml() {
    [ -n "$UML_PID" ] || return 0
    kill -TERM "$UML_PID" 2>/dev/null
    local i
    for i in $(seq 30); do
        kill -0 "$UML_PID" 2>/dev/null || break
        [ "$(ps -o stat= -p "$UML_PID" 2>/dev/null | cut -c1)" = Z ] && break
        sleep 0.1
    done
    kill_uml_group
    wait "$UML_PID" 2>/dev/null
}
cleanup() {
    stop_uml
    UML_PID=""
    kill_uml_group
    local p
    for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${WATCH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    WATCH_PIDS=()
    rm -rf -- "$RUN"
}
trap cleanup EXIT
on_signal() {
    msg "interrupted by SIG$1, killing UML"
    trap - EXIT
    cleanup
    trap - "$1"
    kill -s "$1" $$
    exit 125
}
for s in INT TERM HUP; do trap "on_signal $s" "$s"; done

# The command, its environment and where to run it. Variables describing the host session or
# its temporary directory are dropped (the guest has its own empty /tmp).
printf '%s\0' "$@" >"$RUN/argv"
env -0 | grep -z -v -E '^(TMPDIR|PWD|OLDPWD|SHLVL|_|TERM|COLUMNS|LINES|SSH_[A-Z_]*|DISPLAY|XAUTHORITY|DBUS_SESSION_BUS_ADDRESS|XDG_RUNTIME_DIR|INVOCATION_ID|JOURNAL_STREAM|NOTIFY_SOCKET|LISTEN_[A-Z]*)=' >"$RUN/env"
printf 'PWD=%s\0' "$(pwd -P)" >>"$RUN/env"
{
    printf 'REPO=%q\n' "$REPO"
    printf 'CWD=%q\n' "$(pwd -P)"
} >"$RUN/config"
: >"$RUN/stdout"
: >"$RUN/stderr"
mkdir "$RUN/uml"

# --- boot ---------------------------------------------------------------------------------------
# Console 0 (kernel messages, the init script's own output) goes to $RUN/kernel.log through a
# pipe (UML cannot epoll a regular file); the other consoles and serial lines are disconnected.
# setsid: UML and all its host helper processes share a new process group we can kill at once.
START_MS=$(($(date +%s%N) / 1000000))
mkfifo "$RUN/console.fifo" || { msg "mkfifo failed"; exit 125; }
cat <"$RUN/console.fifo" >"$RUN/kernel.log" &
WATCH_PIDS+=($!)
TMPDIR=/dev/shm setsid "$UML" \
    mem="$MEM" \
    rootfstype=hostfs rootflags=/ ro \
    init="$INIT" \
    uml_dir="$RUN/uml" umid=lfp \
    con=null con0=null,fd:1 ssl=null \
    noreboot quiet loglevel=4 \
    lfp_uml_run="$RUN" \
    </dev/null >"$RUN/console.fifo" 2>&1 &
UML_PID=$!
# setsid() in a non-leader child does not fork, so UML's pid is its process group id. (Do not
# read the pgid with ps here: until the child has called setsid() it is still OUR group, and
# killing that would kill the runner and its caller.)
UML_PGID=$UML_PID

# Follow the command's output while it runs (the guest writes it synchronously).
tail -n +1 -s 0.1 --pid="$UML_PID" -f "$RUN/stdout" &
WATCH_PIDS+=($!)
tail -n +1 -s 0.1 --pid="$UML_PID" -f "$RUN/stderr" >&2 &
WATCH_PIDS+=($!)

sleep "$TIMEOUT" &
TIMER=$!
WATCH_PIDS+=("$TIMER")

TIMED_OUT=0
while :; do
    wait -n "$UML_PID" "$TIMER" 2>/dev/null
    if ! kill -0 "$UML_PID" 2>/dev/null; then break; fi
    if ! kill -0 "$TIMER" 2>/dev/null; then TIMED_OUT=1; break; fi
done
if [ "$TIMED_OUT" = 1 ]; then
    msg "timeout after ${TIMEOUT}s, killing UML"
    stop_uml
fi
wait "$UML_PID" 2>/dev/null
UML_STATUS=$?
UML_PID=""
kill "$TIMER" 2>/dev/null
wait "$TIMER" 2>/dev/null
# Any helper process UML left behind.
kill_uml_group
UML_PGID=""
# The tails notice the UML process is gone, read once more and exit.
for p in "${WATCH_PIDS[@]}"; do [ "$p" = "$TIMER" ] || wait "$p" 2>/dev/null; done
WATCH_PIDS=()
ELAPSED_MS=$(($(date +%s%N) / 1000000 - START_MS))
ELAPSED="$((ELAPSED_MS / 1000)).$(printf '%03d' $((ELAPSED_MS % 1000)))"

[ -n "$KLOG_COPY" ] && cp "$RUN/kernel.log" "$KLOG_COPY" 2>/dev/null

show_klog() {
    msg "---- last lines of the UML console log ----"
    tail -n "${1:-40}" "$RUN/kernel.log" | sed "s/^/$PROG: | /" >&2
}

if [ "$TIMED_OUT" = 1 ]; then
    show_klog 20
    exit 124
fi
if [ -s "$RUN/init-error" ]; then
    msg "guest setup failed: $(cat "$RUN/init-error")"
    show_klog 40
    exit 125
fi
if [ ! -s "$RUN/rc" ]; then
    msg "UML exited (status $UML_STATUS) without the command finishing"
    show_klog 60
    exit 125
fi
RC=$(cat "$RUN/rc")
[[ "$RC" =~ ^[0-9]+$ ]] || { msg "bad exit status '$RC'"; exit 125; }
if [ "$RC" != 0 ]; then
    msg "command exited with status $RC (UML run took ${ELAPSED}s)"
fi
[ -n "${LFP_UML_VERBOSE:-}" ] && msg "UML run took ${ELAPSED}s"
exit "$RC"
