#!/usr/bin/env bash
# Fuzzes every parser of outside input (admission reviews through the whole service, registry
# manifests and configs, WWW-Authenticate and token responses, Docker config.json, policies,
# registry config, image references, globs, durations, quantities) with libFuzzer + ASan + UBSan.
#
#   scripts/fuzz.sh [SECONDS]      # default 300; the corpus grows in build-fuzz/corpus
#
# It starts from tests/fuzz/corpus (the seeds, and every input that ever found a bug). A failure
# leaves the input in build-fuzz/artifacts/ and exits non-zero: copy it into tests/fuzz/corpus/
# with the fix, so that the fuzz_replay CTest test keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-300}
scripts/install-deps.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DIMAGEGATE_FUZZ=ON -DIMAGEGATE_BUILD_TESTS=OFF -DIMAGEGATE_WERROR=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target imagegate_fuzzer
mkdir -p build-fuzz/corpus build-fuzz/artifacts
exec build-fuzz/imagegate_fuzzer -max_total_time="$seconds" -max_len=8192 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 \
  build-fuzz/corpus tests/fuzz/corpus
