#!/bin/bash
# Make a test CA and one certificate per given name with strongSwan's `pki` (ECDSA P-256, valid
# for 1 day), in swanctl's layout:
#   pki.sh OUTDIR NAME...
#     OUTDIR/ca.key, OUTDIR/x509ca/ca.crt
#     OUTDIR/NAME/ecdsa/NAME.key, OUTDIR/NAME/x509/NAME.crt  (subject "C=CH, O=lfp test, CN=NAME",
#                                                           subjectAltName NAME)
# Uses STRONGSWAN_CONF from the environment if set (the tests give pki a short plugin list).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: pki.sh OUTDIR NAME..." >&2; exit 2; }
out=$1; shift
mkdir -p "$out/x509ca"
umask 077
pki --gen --type ecdsa --size 256 --outform pem >"$out/ca.key"
pki --self --ca --lifetime 1 --in "$out/ca.key" --type ecdsa \
    --dn "C=CH, O=lfp test, CN=lfp test CA" --outform pem >"$out/x509ca/ca.crt"
for name in "$@"; do
    mkdir -p "$out/$name/ecdsa" "$out/$name/x509" "$out/$name/x509ca"
    pki --gen --type ecdsa --size 256 --outform pem >"$out/$name/ecdsa/$name.key"
    pki --pub --in "$out/$name/ecdsa/$name.key" --type ecdsa |
        pki --issue --lifetime 1 --cacert "$out/x509ca/ca.crt" --cakey "$out/ca.key" \
            --dn "C=CH, O=lfp test, CN=$name" --san "$name" --outform pem >"$out/$name/x509/$name.crt"
    cp "$out/x509ca/ca.crt" "$out/$name/x509ca/ca.crt"
done
