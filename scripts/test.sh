#!/usr/bin/env bash
# The README's second command: installs what is missing, builds with warnings as errors, and runs
# every test (unit, peer cases, integration with the real server, the chart with the real helm)
# through CTest. IMAGEGATE_SANITIZERS=1 then runs the same suite again in a second build under
# AddressSanitizer and UndefinedBehaviorSanitizer: it doubles the time (about 30 minutes on a
# 2-core CI machine, its limit), so CI leaves it out and developers run it before they merge.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# ccache (installed by install-deps.sh) makes a rebuild of unchanged sources nearly free; it is
# harmless on a cold cache.
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

build_dir=${IMAGEGATE_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAGEGATE_WERROR=ON "${launcher[@]}"
cmake --build "$build_dir" -j"$(nproc)"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "$@"

if [[ ${IMAGEGATE_SANITIZERS:-0} != 0 ]]; then
  asan_dir=${IMAGEGATE_ASAN_BUILD_DIR:-build-asan}
  cmake -S . -B "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAGEGATE_WERROR=ON \
    -DIMAGEGATE_SANITIZE=ON "${launcher[@]}"
  cmake --build "$asan_dir" -j"$(nproc)"
  # Leak checking on; any report fails the test that caused it (-fno-sanitize-recover=all). A
  # small quarantine, so that the tests bounding the server's RSS measure the server, not ASan's
  # store of freed blocks (256 MB by default).
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:quarantine_size_mb=16} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    ctest --test-dir "$asan_dir" --output-on-failure -j"$(nproc)" "$@"
fi
