#!/usr/bin/env bash
# Regenerates the development PKI: a CA, a server certificate for localhost/127.0.0.1/::1 and a
# client certificate, all signed by that CA. For tests and trying TLS locally, never for
# production (the private keys are committed).
#
#   certs/make-certs.sh [DIR]      (default: the directory of this script)
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")" && pwd)}
days=3650
cd "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/O=logport dev/CN=logport dev CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt

leaf() { # name subject extensions
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$tmp/$1.csr"
  printf '%s\n' "$3" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -CAserial "$tmp/ca.srl" \
    -days "$days" -sha256 -extfile "$tmp/$1.ext" -out "$1.crt" 2>/dev/null
}

leaf server "/O=logport dev/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

leaf client "/O=logport dev/CN=logport-test-client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

# A second, unrelated CA and a client signed by it: a certificate the server must refuse.
key other-ca.key
openssl req -x509 -new -key other-ca.key -sha256 -days "$days" -subj "/O=elsewhere/CN=untrusted CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out other-ca.crt
key untrusted-client.key
openssl req -new -key untrusted-client.key -subj "/O=elsewhere/CN=untrusted-client" -out "$tmp/u.csr"
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > "$tmp/u.ext"
openssl x509 -req -in "$tmp/u.csr" -CA other-ca.crt -CAkey other-ca.key -CAcreateserial -CAserial "$tmp/o.srl" \
  -days "$days" -sha256 -extfile "$tmp/u.ext" -out untrusted-client.crt 2>/dev/null
rm -f other-ca.key

chmod 644 ./*.crt ./*.key
echo "certificates written to $dir:"
ls -1 "$dir"/*.crt "$dir"/*.key
