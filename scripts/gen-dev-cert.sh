#!/usr/bin/env bash
# Makes a development certificate that browsers accept through
# serverCertificateHashes: ECDSA P-256, valid 13 days (browsers refuse more
# than 14), SAN localhost, 127.0.0.1, ::1.  Keeps an existing one unless it
# expires within a day.  Prints the SHA-256 of the DER certificate in hex
# and base64, and writes the hex alone to DIR/cert.sha256.
#   scripts/gen-dev-cert.sh [DIR]       (default: <repo>/certs)
set -euo pipefail

dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/certs"}
mkdir -p "$dir"
cert="$dir/cert.pem"
key="$dir/key.pem"

if [ -f "$cert" ] && [ -f "$key" ] && openssl x509 -in "$cert" -noout -checkend 86400 >/dev/null 2>&1; then
    :
else
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -days 13 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -keyout "$key.tmp" -out "$cert.tmp" 2>/dev/null
    chmod 600 "$key.tmp"
    chmod 644 "$cert.tmp"
    mv "$key.tmp" "$key"
    mv "$cert.tmp" "$cert"
fi

hex=$(openssl x509 -in "$cert" -outform der | openssl dgst -sha256 -binary | od -An -tx1 | tr -d ' \n')
b64=$(openssl x509 -in "$cert" -outform der | openssl dgst -sha256 -binary | base64)
printf '%s\n' "$hex" >"$dir/cert.sha256"
echo "cert: $cert (valid until $(openssl x509 -in "$cert" -noout -enddate | cut -d= -f2))"
echo "sha256 hex: $hex"
echo "sha256 base64: $b64"
