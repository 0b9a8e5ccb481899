#!/usr/bin/env bash
# Installs what lfp needs and is missing: Debian packages (apt-get) and npm packages (npm ci).
# Idempotent and quiet when everything is there. Run as root (make does it for you).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: iproute2 (ip), kmod + user-mode-linux (full-kernel IPsec tests),
# g++/make/python3 (node-gyp), pkg-config + libdpdk-dev (the packet I/O addon), libssl-dev (the
# crypto addon's allocation checker), openssl (crypto benchmarks), dpdk-dev (testpmd
# for benchmarks), iputils-ping, traceroute and tcpdump (demo, tests), strongSwan (charon, swanctl,
# pki: IKEv2 tests inside user-mode Linux), tshark (independent ESP decryption check) and snmpd + snmp
# (fpsd's AgentX export, tests/kernel/fpsd-snmp.test.ts).
PKGS=(iproute2 ethtool iputils-ping kmod user-mode-linux g++ make python3 pkg-config libdpdk-dev dpdk-dev libssl-dev openssl tcpdump traceroute strongswan-charon strongswan-swanctl strongswan-pki libstrongswan-standard-plugins tshark snmpd snmp libipsec-mb-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: missing Debian packages ${missing[*]}; run as root" >&2; exit 1; fi
  echo "install-deps: installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
