#!/bin/bash
# PID 1 inside the user-mode Linux kernel started by run-in-uml.sh. Not meant to be run by hand.
#
# The kernel passes `lfp_uml_run=<host dir>` from its command line as an environment variable.
# That host directory (created by run-in-uml.sh) holds:
#   config   shell assignments: REPO, CWD
#   argv     the command, NUL-separated
#   env      the command's environment, NUL-separated NAME=VALUE
# and receives:
#   stdout, stderr   the command's output (written through a `sync` hostfs mount, so the host
#                    can follow them while the command runs)
#   rc               the command's exit status (written last)
#   init-error       why the command could not be started (setup failure)
# Everything this script prints goes to the UML console, i.e. the kernel log on the host.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
RUN="${lfp_uml_run:-}"

log() { echo "uml-init: $*"; }

power_off() {
    sync
    # systemd's and sysvinit's poweroff -f both call reboot(2) without talking to an init system.
    poweroff -f >/dev/null 2>&1
    echo o >/proc/sysrq-trigger 2>/dev/null
    sleep 5
    exit 1 # PID 1 exiting panics the kernel, which ends the UML process too
}

fail() {
    log "FATAL: $*"
    if [ -n "$RUN" ] && [ -d "$RUN" ] && mountpoint -q "$RUN" 2>/dev/null; then
        echo "$*" >>"$RUN/init-error"
    fi
    power_off
}

[ -n "$RUN" ] || fail "no lfp_uml_run= on the kernel command line"

# --- pseudo and scratch filesystems -----------------------------------------------------------
mountpoint -q /proc || mount -t proc proc /proc || fail "mount /proc"
log "started at uptime $(cut -d' ' -f1 /proc/uptime)"
mountpoint -q /sys || mount -t sysfs sysfs /sys || fail "mount /sys"
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || log "mount /dev/pts failed"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
[ -e /dev/net/tun ] || { mkdir -p /dev/net && mknod -m 666 /dev/net/tun c 10 200; }
mount -t tmpfs -o mode=755 tmpfs /run || fail "mount /run"
mkdir -p /run/lock /run/netns /run/lfp-uml
mount -t tmpfs -o mode=1777 tmpfs /tmp || fail "mount /tmp"
mount -t tmpfs -o mode=1777 tmpfs /var/tmp 2>/dev/null || log "mount /var/tmp failed"
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

# --- the host run directory (writable, synchronous so the host sees output at once) ----------
mkdir -p "$RUN" || fail "mkdir $RUN"
mount -t hostfs -o "sync,$RUN" none "$RUN" || fail "mount hostfs $RUN"
[ -f "$RUN/config" ] || fail "$RUN/config missing"
# shellcheck source=/dev/null
. "$RUN/config"

# --- the project directory, writable ----------------------------------------------------------
mkdir -p "$REPO" 2>/dev/null
mount -t hostfs -o "$REPO" none "$REPO" || fail "mount hostfs $REPO"

# --- kernel modules -----------------------------------------------------------------------------
KVER=$(uname -r)
MODSRC=/usr/lib/uml/modules/$KVER
MODROOT=/run/lfp-uml/modroot
[ -d "$MODSRC" ] || fail "no modules for $KVER in /usr/lib/uml/modules (user-mode-linux package broken?)"
mkdir -p "$MODROOT/lib/modules"
ln -s "$MODSRC" "$MODROOT/lib/modules/$KVER"
MODPROBE=$(command -v modprobe) || fail "modprobe not found (install kmod)"
cat >/run/lfp-uml/modprobe <<EOF
#!/bin/sh
exec $MODPROBE -d $MODROOT "\$@"
EOF
chmod 755 /run/lfp-uml/modprobe
# Crypto templates and RNGs are requested by the kernel itself (e.g. crypto-stdrng).
echo /run/lfp-uml/modprobe >/proc/sys/kernel/modprobe || fail "cannot set kernel.modprobe"

MODULES=(
    ipv6
    xfrm_user xfrm_algo af_key
    esp4 esp6 ah4 ah6 ipcomp ipcomp6 xfrm4_tunnel xfrm6_tunnel tunnel4 tunnel6
    aead gcm ghash-generic gf128mul ctr authenc authencesn cbc ecb hmac sha512_generic
    seqiv echainiv drbg
    veth tun dummy vrf ip_vti ip6_vti
)
# -a: load all, keep going; -b: honour blacklists. Missing ones are reported, not fatal.
/run/lfp-uml/modprobe -a -b "${MODULES[@]}" 2>&1 | sed 's/^/uml-init: modprobe: /'
for m in ipv6 xfrm_user esp4 esp6 gcm authenc; do
    [ -d "/sys/module/$m" ] || log "WARNING: module $m not loaded"
done

ip link set lo up || log "WARNING: cannot bring lo up"
hostname lfp-uml 2>/dev/null

# --- the command ------------------------------------------------------------------------------
mapfile -d '' ARGV <"$RUN/argv" || fail "read argv"
mapfile -d '' ENVV <"$RUN/env" || fail "read env"
[ "${#ARGV[@]}" -gt 0 ] || fail "empty command"
if ! cd "$CWD" 2>/dev/null; then
    log "cannot cd to $CWD, using $REPO"
    cd "$REPO" || fail "cd $REPO"
fi

log "running ${ARGV[*]} at uptime $(cut -d' ' -f1 /proc/uptime)"
# env -i: exactly the host's environment (as filtered by run-in-uml.sh), nothing of PID 1's.
env -i "${ENVV[@]}" "${ARGV[@]}" </dev/null >>"$RUN/stdout" 2>>"$RUN/stderr"
rc=$?
log "command exited with $rc at uptime $(cut -d' ' -f1 /proc/uptime)"
echo "$rc" >"$RUN/rc.tmp" && mv "$RUN/rc.tmp" "$RUN/rc"
power_off
