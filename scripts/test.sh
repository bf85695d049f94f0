#!/usr/bin/env bash
# The README's second command: installs what is missing, builds with warnings as errors, and runs
# every test (unit, peer cases, integration with the real server) through CTest; then the same
# suite again in a second build under AddressSanitizer and UndefinedBehaviorSanitizer
# (IMAGEGATE_SANITIZERS=0 skips that part, for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build_dir=${IMAGEGATE_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAGEGATE_WERROR=ON
cmake --build "$build_dir" -j"$(nproc)"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "$@"

if [[ ${IMAGEGATE_SANITIZERS:-1} != 0 ]]; then
  asan_dir=${IMAGEGATE_ASAN_BUILD_DIR:-build-asan}
  cmake -S . -B "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAGEGATE_WERROR=ON \
    -DIMAGEGATE_SANITIZE=ON
  cmake --build "$asan_dir" -j"$(nproc)"
  # Leak checking on; any report fails the test that caused it (-fno-sanitize-recover=all). A
  # small quarantine, so that the tests bounding the server's RSS measure the server, not ASan's
  # store of freed blocks (256 MB by default).
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:quarantine_size_mb=16} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    ctest --test-dir "$asan_dir" --output-on-failure -j"$(nproc)" "$@"
fi
