#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, makes development TLS material
# (unless IMAGEGATE_TLS_CERT/IMAGEGATE_TLS_KEY name your own) and serves
# https://127.0.0.1:8443 with the bundled policies. Extra arguments go to `imagegate serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# The same configuration as scripts/test.sh, so that running one after the other rebuilds nothing
# twice (RelWithDebInfo is -O2 with symbols).
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAGEGATE_WERROR=ON "${launcher[@]}"
# The server only: the tests build with scripts/test.sh.
cmake --build build -j"$(nproc)" --target imagegate

cert_dir=build/dev-certs
tls_cert=${IMAGEGATE_TLS_CERT:-}
tls_key=${IMAGEGATE_TLS_KEY:-}
if { [ -n "$tls_cert" ] && [ -z "$tls_key" ]; } || { [ -z "$tls_cert" ] && [ -n "$tls_key" ]; }; then
  echo "dev.sh: set both IMAGEGATE_TLS_CERT and IMAGEGATE_TLS_KEY, or neither" >&2
  exit 2
fi

# A development CA and a serving certificate signed by it, made once and kept across runs so
# that a CA you already trust stays valid. Never use these outside your machine.
make_dev_certs() {
  mkdir -p "$cert_dir"
  (
    cd "$cert_dir"
    umask 077
    if [ ! -f ca.crt ] || [ ! -f ca.key ]; then
      openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=imagegate development CA" \
        -keyout ca.key -out ca.crt 2>/dev/null
      rm -f serving.crt serving.key
    fi
    if [ ! -f serving.crt ] || [ ! -f serving.key ]; then
      printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >serving.ext
      openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout serving.key -out serving.csr 2>/dev/null
      openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
        -extfile serving.ext -out serving.crt 2>/dev/null
      rm -f serving.csr serving.ext
    fi
  )
}

if [ -z "$tls_cert" ]; then
  make_dev_certs
  tls_cert=$cert_dir/serving.crt
  tls_key=$cert_dir/serving.key
  ca_hint="--cacert $cert_dir/ca.crt"
else
  ca_hint="--cacert <the CA that signed $tls_cert>"
fi

# webhook/CMakeLists.txt builds the binary in build/webhook/ unless an output directory is set.
bin=build/imagegate
[ -x "$bin" ] || bin=build/webhook/imagegate

cat >&2 <<MSG

imagegate: serving https://127.0.0.1:8443 (Ctrl-C stops it). From another terminal:

  curl $ca_hint -H 'Content-Type: application/json' --data @tests/data/admission/pod-deny.json https://127.0.0.1:8443/validate

MSG
exec "$bin" serve --listen 127.0.0.1:8443 --tls-cert "$tls_cert" --tls-key "$tls_key" \
  --policy policies "$@"
