#!/usr/bin/env bash
# Installs every Debian 12 package imagegate needs to build, test and benchmark.
# Idempotent: when everything is present it only runs dpkg-query and exits.
set -euo pipefail

packages=(
  # build
  g++ cmake make pkg-config clang-format
  libboost-dev libboost-program-options-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libarchive-dev
  libgtest-dev libgmock-dev
  # layer scanning: ISA-L inflate (and its igzip CLI for the benchmark), libzstd (and zstd)
  libisal-dev isal libzstd-dev zstd
  # tests: TLS material, HTTP client, real OCI registry and daemonless image building
  openssl curl ca-certificates jq
  docker-registry apache2-utils skopeo umoci busybox-static python3-jwt python3-cryptography
  # benchmarks
  wrk nginx-light hey hyperfine time
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
