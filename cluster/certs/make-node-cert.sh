#!/usr/bin/env bash
# A node certificate for Ray's gRPC TLS (RAY_USE_TLS=1) and for Triton's gRPC mTLS, signed by
# the CA that make-dev-ca.sh (or your PKI) put in CA_DIR.
# Usage: cluster/certs/make-node-cert.sh CA_DIR OUT_DIR [EXTRA_IP ...]
# Writes OUT_DIR/node.{crt,key} (serverAuth + clientAuth: a Ray node is both) and a copy of
# ca.crt. SAN: the host name, localhost, 127.0.0.1, every address `hostname -I` reports, and the
# EXTRA_IPs. Ray connects to nodes by IP, so the certificate must name the node's own address.
set -euo pipefail
ca="${1:?usage: make-node-cert.sh CA_DIR OUT_DIR [EXTRA_IP ...]}"
out="${2:?usage: make-node-cert.sh CA_DIR OUT_DIR [EXTRA_IP ...]}"
shift 2
mkdir -p "$out"
umask 077

host="$(hostname)"
san="DNS:${host},DNS:localhost,IP:127.0.0.1"
for ip in $(hostname -I 2>/dev/null || true) "$@"; do
  case "$ip" in *:*) continue ;; esac   # IPv4 only: Ray's cluster addresses
  [ "$ip" = 127.0.0.1 ] || san="${san},IP:${ip}"
done

ext="$(mktemp)"
trap 'rm -f "$ext" "$out/node.csr"' EXIT
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$san" > "$ext"
openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$out/node.key" -out "$out/node.csr" \
  -subj "/CN=${host}" 2>/dev/null
openssl x509 -req -in "$out/node.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
  -CAserial "$out/ca.srl" -sha256 -days 365 -extfile "$ext" -out "$out/node.crt" 2>/dev/null
rm -f "$out/ca.srl"
cp "$ca/ca.crt" "$out/ca.crt"
chmod 644 "$out/node.crt" "$out/ca.crt"
echo "node certificate for ${san} written to $out"
