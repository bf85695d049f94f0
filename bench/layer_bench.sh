#!/usr/bin/env bash
# imagegate layer-scan benchmark: a report, not a test. See bench/README.md, "Layer scanning".
#
# On one large real layer (a tar of this machine's /usr/share and /usr/bin, ~1.2 GB
# uncompressed, cached in build-bench/layers/ with its gzip -6 and zstd -3 forms), times side by
# side, output to /dev/null, best of BENCH_RUNS runs each:
#   zcat, igzip -d -c, tar -tzf (gzip) and zstd -d -c (zstd)
#   imagegate layer scan on the same files (sha256 + decompression + tar index, as the webhook)
# and prints uncompressed MB/s, the ratios against the targets (scan >= 2.5x zcat and >= 0.8x
# igzip for gzip, >= 0.8x zstd for zstd), the scanner's peak RSS above an idle scan of a tiny
# layer (target < 64 MiB) and the index's bytes per entry. It always exits 0 when it could
# measure; it exits 2 when it cannot (a tool or the build is missing).
#
# Knobs (environment):
#   IMAGEGATE_BIN=path        use this binary instead of building build-bench/ (Release)
#   BENCH_BUILD_DIR=build-bench   BENCH_RUNS=3   BENCH_LAYER_SOURCES="usr/share usr/bin"
#   BENCH_RESULTS=<build dir>/bench-results   raw outputs, one folder per run
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BENCH_BUILD_DIR:-$root/build-bench}
runs=${BENCH_RUNS:-3}
read -r -a sources <<<"${BENCH_LAYER_SOURCES:-usr/share usr/bin}"

log() { printf 'layer-bench: %s\n' "$*" >&2; }
fail() {
  printf 'layer-bench: cannot measure: %s\n' "$*" >&2
  exit 2
}
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

missing=()
for tool in cmake tar gzip zcat igzip zstd /usr/bin/time; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
((${#missing[@]} == 0)) || fail "missing ${missing[*]}: run scripts/install-deps.sh"

bench_imagegate_binary layer-bench-build.log

results=${BENCH_RESULTS:-$build_dir/bench-results}/layers-$(date +%Y%m%d-%H%M%S)
mkdir -p "$results" || fail "cannot create $results"

# ---------------------------------------------------------------------------------------------
# The layer, built once and cached: the key is the list of sources.
layers=$build_dir/layers
mkdir -p "$layers" || fail "cannot create $layers"
key=$(printf '%s\n' "${sources[@]}" | sha256sum | cut -c1-12)
tarball=$layers/layer-$key.tar
if [[ ! -s $tarball.zst ]]; then
  log "building the layer: tar of /${sources[*]} (once; cached in $layers)"
  tar -C / -cf "$tarball.tmp" "${sources[@]}" 2>"$results/tar.log" || {
    # Files that vanish or cannot be read while tar runs are fine for a benchmark layer.
    [[ -s $tarball.tmp ]] || fail "tar failed (log: $results/tar.log)"
  }
  mv "$tarball.tmp" "$tarball"
  log "gzip -6 (about a minute)"
  gzip -6 -c "$tarball" >"$tarball.gz.tmp" && mv "$tarball.gz.tmp" "$tarball.gz" || fail "gzip failed"
  log "zstd -3"
  zstd -q -3 -f "$tarball" -o "$tarball.zst.tmp" && mv "$tarball.zst.tmp" "$tarball.zst" ||
    fail "zstd failed"
fi
gz=$tarball.gz
zst=$tarball.zst
tar_bytes=$(stat -c %s "$tarball")
gz_bytes=$(stat -c %s "$gz")
zst_bytes=$(stat -c %s "$zst")

# ---------------------------------------------------------------------------------------------
# Timing: best wall time of $runs runs (the machine is shared; the minimum is the least noisy),
# and the CPU time (user + system) of that run, which moves much less with other work.
#   best_of NAME 'SHELL COMMAND'   -> sets t_NAME and c_NAME (seconds); output in $results/NAME.*
best_of() {
  local name=$1 command=$2 best= best_cpu= i wall cpu
  for ((i = 0; i < runs; i++)); do
    /usr/bin/time -f '%e %U %S' -o "$results/$name.time" sh -c "$command" \
      >"$results/$name.out" 2>"$results/$name.err" || {
      cat "$results/$name.err" >&2
      fail "$name failed: $command"
    }
    read -r wall cpu < <(awk '{printf "%.2f %.2f\n", $1, $2 + $3}' "$results/$name.time")
    if [[ -z $best ]] || awk -v s="$wall" -v b="$best" 'BEGIN {exit !(s < b)}'; then
      best=$wall
      best_cpu=$cpu
    fi
  done
  printf -v "t_$name" '%s' "$best"
  printf -v "c_$name" '%s' "$best_cpu"
}
q() { printf '%q' "$1"; }

busy_before=$(bench_busy_pct)
log "machine busy: ${busy_before}% of all CPU before the runs (other work skews absolute times)"
log "timing ($runs runs each, best kept)"
best_of zcat "zcat $(q "$gz") >/dev/null"
best_of igzip "igzip -d -c $(q "$gz") >/dev/null"
best_of tar "tar -tzf $(q "$gz") >/dev/null"
best_of scan_gz "$(q "$bin") layer scan $(q "$gz")"
best_of zstd "zstd -d -c $(q "$zst") >/dev/null"
best_of scan_zst "$(q "$bin") layer scan $(q "$zst")"
best_of scan_tar "$(q "$bin") layer scan $(q "$tarball")"

# Peak RSS of the scan against the same binary scanning a tiny layer (the idle footprint).
tiny=$results/tiny.tar
tar -C "$root" -cf "$tiny" README.md
peak_kb() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
rss_idle=$(peak_kb "$bin" layer scan "$tiny")
rss_gz=$(peak_kb "$bin" layer scan "$gz")
rss_zst=$(peak_kb "$bin" layer scan "$zst")

entries=$(awk '/^entries:/ {print $2}' "$results/scan_gz.out")
per_entry=$(awk '/^index:/ {print $4}' "$results/scan_gz.out")
index_bytes=$(awk '/^index:/ {print $2}' "$results/scan_gz.out")

mbs() { awk -v b="$tar_bytes" -v s="$1" 'BEGIN {printf "%.0f", b / 1e6 / s}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

{
  printf 'layer: /%s  %.0f MB tar, gzip -6 %.0f MB, zstd -3 %.0f MB, %s entries\n' \
    "${sources[*]}" "$(awk -v b="$tar_bytes" 'BEGIN {print b / 1e6}')" \
    "$(awk -v b="$gz_bytes" 'BEGIN {print b / 1e6}')" "$(awk -v b="$zst_bytes" 'BEGIN {print b / 1e6}')" \
    "$entries"
  row() { printf '%-48s %8s %8s %8s\n' "$1" "$2" "$(mbs "$2")" "$3"; }
  printf '%-48s %8s %8s %8s\n' "command (output to /dev/null)" "wall s" "MB/s" "CPU s"
  row "zcat layer.tar.gz" "$t_zcat" "$c_zcat"
  row "igzip -d -c layer.tar.gz" "$t_igzip" "$c_igzip"
  row "tar -tzf layer.tar.gz" "$t_tar" "$c_tar"
  row "imagegate layer scan layer.tar.gz" "$t_scan_gz" "$c_scan_gz"
  row "zstd -d -c layer.tar.zst" "$t_zstd" "$c_zstd"
  row "imagegate layer scan layer.tar.zst" "$t_scan_zst" "$c_scan_zst"
  row "imagegate layer scan layer.tar (uncompressed)" "$t_scan_tar" "$c_scan_tar"
  echo
  printf 'throughput ratios (wall; CPU in brackets: the scan also hashes and parses)\n'
  printf 'gzip: scan / zcat     %5sx  [%sx]  (target >= 2.5)\n' "$(ratio "$t_zcat" "$t_scan_gz")" \
    "$(ratio "$c_zcat" "$c_scan_gz")"
  printf 'gzip: scan / igzip    %5sx  [%sx]  (target >= 0.8)\n' "$(ratio "$t_igzip" "$t_scan_gz")" \
    "$(ratio "$c_igzip" "$c_scan_gz")"
  printf 'gzip: scan / tar -tzf %5sx  [%sx]\n' "$(ratio "$t_tar" "$t_scan_gz")" \
    "$(ratio "$c_tar" "$c_scan_gz")"
  printf 'zstd: scan / zstd     %5sx  [%sx]  (target >= 0.8)\n' "$(ratio "$t_zstd" "$t_scan_zst")" \
    "$(ratio "$c_zstd" "$c_scan_zst")"
  printf 'peak RSS above idle: gzip %d MiB, zstd %d MiB (idle %d MiB; target < 64 MiB)\n' \
    $(((rss_gz - rss_idle) / 1024)) $(((rss_zst - rss_idle) / 1024)) $((rss_idle / 1024))
  printf 'index: %s bytes for %s entries = %s bytes/entry\n' "$index_bytes" "$entries" "$per_entry"
  printf 'machine busy with other work before the runs: %s%% of all CPU%s\n' "$busy_before" \
    "$( ((busy_before > 20)) && echo ' (wall-time ratios are unreliable; read the CPU ones)')"
} | tee "$results/summary.txt"
log "raw outputs in $results"
