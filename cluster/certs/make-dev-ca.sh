#!/usr/bin/env bash
# Development CA plus a server and a client certificate for mutual TLS (Triton gRPC, Ray gRPC).
# Usage: cluster/certs/make-dev-ca.sh OUT_DIR [SERVER_NAME]
# Writes ca.{crt,key}, server.{crt,key} (SAN: SERVER_NAME, localhost, 127.0.0.1),
# client.{crt,key}. For development and tests only: production certificates come from your PKI.
set -euo pipefail
out="${1:?usage: make-dev-ca.sh OUT_DIR [SERVER_NAME]}"
name="${2:-localhost}"
days=30
mkdir -p "$out"
cd "$out"
umask 077

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -keyout ca.key -out ca.crt -subj "/CN=TrendFlow dev CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null

issue() {  # issue NAME CN EXTENSIONS
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf '%b' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

issue server "$name" "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1\n"
issue client "trendflow-client" "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
rm -f ca.srl
chmod 644 ./*.crt
echo "dev CA and certificates written to $out"
