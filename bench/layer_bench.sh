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
# Timing: best wall time of $runs runs (the machine is shared; the minimum is the least noisy).
#   best_of NAME COMMAND...   -> seconds on stdout; each run's output in $results/NAME.out
best_of() {
  local name=$1 best= i start end s
  shift
  for ((i = 0; i < runs; i++)); do
    start=$(date +%s%N)
    "$@" >"$results/$name.out" 2>"$results/$name.err" || {
      cat "$results/$name.err" >&2
      fail "$name failed: $*"
    }
    end=$(date +%s%N)
    s=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    if [[ -z $best ]] || awk -v s="$s" -v b="$best" 'BEGIN {exit !(s < b)}'; then best=$s; fi
  done
  echo "$best"
}
to_null() { "$@" >/dev/null; }
tar_list() { tar -tzf "$1" >/dev/null; }

log "machine busy: $(bench_busy_pct)% of all CPU before the runs (other work skews absolute times)"
log "timing ($runs runs each, best kept)"
t_zcat=$(best_of zcat to_null zcat "$gz")
t_igzip=$(best_of igzip to_null igzip -d -c "$gz")
t_tar=$(best_of tar-tzf tar_list "$gz")
t_scan_gz=$(best_of scan-gz "$bin" layer scan "$gz")
t_zstd=$(best_of zstd to_null zstd -d -c "$zst")
t_scan_zst=$(best_of scan-zst "$bin" layer scan "$zst")
t_scan_tar=$(best_of scan-tar "$bin" layer scan "$tarball")

# Peak RSS of the scan against the same binary scanning a tiny layer (the idle footprint).
tiny=$results/tiny.tar
tar -C "$root" -cf "$tiny" README.md
peak_kb() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
rss_idle=$(peak_kb "$bin" layer scan "$tiny")
rss_gz=$(peak_kb "$bin" layer scan "$gz")
rss_zst=$(peak_kb "$bin" layer scan "$zst")

entries=$(awk '/^entries:/ {print $2}' "$results/scan-gz.out")
per_entry=$(awk '/^index:/ {print $4}' "$results/scan-gz.out")
index_bytes=$(awk '/^index:/ {print $2}' "$results/scan-gz.out")

mbs() { awk -v b="$tar_bytes" -v s="$1" 'BEGIN {printf "%.0f", b / 1e6 / s}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

{
  printf 'layer: /%s  %.0f MB tar, gzip -6 %.0f MB, zstd -3 %.0f MB, %s entries\n' \
    "${sources[*]}" "$(awk -v b="$tar_bytes" 'BEGIN {print b / 1e6}')" \
    "$(awk -v b="$gz_bytes" 'BEGIN {print b / 1e6}')" "$(awk -v b="$zst_bytes" 'BEGIN {print b / 1e6}')" \
    "$entries"
  printf '%-44s %8s %10s\n' "command (output to /dev/null)" "seconds" "MB/s"
  printf '%-44s %8s %10s\n' "zcat layer.tar.gz" "$t_zcat" "$(mbs "$t_zcat")"
  printf '%-44s %8s %10s\n' "igzip -d -c layer.tar.gz" "$t_igzip" "$(mbs "$t_igzip")"
  printf '%-44s %8s %10s\n' "tar -tzf layer.tar.gz" "$t_tar" "$(mbs "$t_tar")"
  printf '%-44s %8s %10s\n' "imagegate layer scan layer.tar.gz" "$t_scan_gz" "$(mbs "$t_scan_gz")"
  printf '%-44s %8s %10s\n' "zstd -d -c layer.tar.zst" "$t_zstd" "$(mbs "$t_zstd")"
  printf '%-44s %8s %10s\n' "imagegate layer scan layer.tar.zst" "$t_scan_zst" "$(mbs "$t_scan_zst")"
  printf '%-44s %8s %10s\n' "imagegate layer scan layer.tar (no compression)" "$t_scan_tar" "$(mbs "$t_scan_tar")"
  echo
  printf 'gzip: scan / zcat   %5sx   (target >= 2.5)\n' "$(ratio "$t_zcat" "$t_scan_gz")"
  printf 'gzip: scan / igzip  %5sx   (target >= 0.8)\n' "$(ratio "$t_igzip" "$t_scan_gz")"
  printf 'gzip: scan / tar -tzf %3sx\n' "$(ratio "$t_tar" "$t_scan_gz")"
  printf 'zstd: scan / zstd   %5sx   (target >= 0.8)\n' "$(ratio "$t_zstd" "$t_scan_zst")"
  printf 'peak RSS above idle: gzip %d MiB, zstd %d MiB (idle %d MiB; target < 64 MiB)\n' \
    $(((rss_gz - rss_idle) / 1024)) $(((rss_zst - rss_idle) / 1024)) $((rss_idle / 1024))
  printf 'index: %s bytes for %s entries = %s bytes/entry\n' "$index_bytes" "$entries" "$per_entry"
} | tee "$results/summary.txt"
log "raw outputs in $results"
