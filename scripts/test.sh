#!/usr/bin/env bash
# The README's second command: installs what is missing, builds with warnings as errors, and runs
# every test (unit, peer cases, integration with the real server) through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build_dir=${IMAGEGATE_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAGEGATE_WERROR=ON
cmake --build "$build_dir" -j"$(nproc)"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "$@"
