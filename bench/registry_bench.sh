#!/usr/bin/env bash
# imagegate registry benchmark: a report, not a test. See bench/README.md, "Registry fetches".
#
# Starts a TLS + basic-auth fixture registry (tests/fixtures/registry) holding the test images and
# measures, on that warm registry:
#   a. cold `imagegate check` of one image (a fresh process every time, so its in-memory cache is
#      cold; process start included) against curl fetching the same manifest and config blob
#      (two sequential requests on one connection, same CA, same credentials)   -> ratio, target <= 1.5x
#   b. `imagegate check` of 10 distinct images at once against the slowest single one of them
#                                                                               -> ratio, target < 2x
# It always exits 0: the numbers are for reading, and when something cannot be measured it says
# so on stderr instead of failing.
#
# Knobs (environment):
#   IMAGEGATE_BIN=path        use this binary instead of building build-bench/ (Release)
#   BENCH_BUILD_DIR=build-bench   BENCH_RUNS=20 (timed runs per command)   BENCH_WARMUP_RUNS=3
#   BENCH_TIMER=auto          hyperfine when installed; `loop` forces the date +%s%N loop
#   BENCH_RESULTS=<build dir>/bench-results   raw outputs, one folder per run
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixtures=$root/tests/fixtures/registry
build_dir=${BENCH_BUILD_DIR:-$root/build-bench}
runs=${BENCH_RUNS:-20}
warmup_runs=${BENCH_WARMUP_RUNS:-3}
timer=${BENCH_TIMER:-auto}
accept='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json'
overlap_images=10

log() { printf 'registry-bench: %s\n' "$*" >&2; }
# Not a test: report why nothing (more) can be measured and end with 0.
give_up() {
  printf 'registry-bench: cannot measure: %s\n' "$*" >&2
  exit 0
}
fail() { give_up "$@"; }
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

# ---------------------------------------------------------------------------------------------
# Tools and binary
missing=()
for tool in cmake curl openssl python3 skopeo umoci docker-registry htpasswd; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
((${#missing[@]} == 0)) || give_up "missing ${missing[*]}: run scripts/install-deps.sh"
if [[ $timer == auto ]]; then
  if command -v hyperfine >/dev/null 2>&1; then timer=hyperfine; else timer=loop; fi
fi
[[ $timer == hyperfine || $timer == loop ]] || give_up "BENCH_TIMER must be auto, hyperfine or loop"

# The same Release build as bench/run.sh, so one build serves both reports.
bench_imagegate_binary registry-bench-build.log

results=${BENCH_RESULTS:-$build_dir/bench-results}/registry-$(date +%Y%m%d-%H%M%S)
mkdir -p "$results" || give_up "cannot create $results"

# ---------------------------------------------------------------------------------------------
# The registry. Everything lives in $work and every started process is stopped by the PIDs the
# fixture scripts recorded, whatever happens.
bench_mktemp /tmp/imagegate-registry-bench.XXXXXX || give_up "mktemp failed"
work=$bench_tmp
reg=$work/registry
bench_on_exit '[[ -f $reg/registry.env ]] && "$fixtures/stop-registry.sh" "$reg" >>"$work/fixture.log" 2>&1'
trap 'exit 0' INT TERM

# The images are kept in the build dir: a second run reuses them (build-images.sh is idempotent).
images=$build_dir/registry-images
mkdir -p "$reg"
log "building the fixture images, starting a tls-basic registry and pushing"
# A crashed run's registry still ends itself after 10 minutes.
export IMAGEGATE_REGISTRY_MAX_LIFETIME=600
"$fixtures/build-images.sh" "$images" >>"$work/fixture.log" 2>&1 ||
  give_up "build-images.sh failed: $(tail -5 "$work/fixture.log")"
"$fixtures/start-registry.sh" tls-basic "$reg" >>"$work/fixture.log" 2>&1 ||
  give_up "start-registry.sh failed: $(tail -5 "$work/fixture.log")"
"$fixtures/push-images.sh" "$images" "$reg" >>"$work/fixture.log" 2>&1 ||
  give_up "push-images.sh failed: $(tail -5 "$work/fixture.log")"
"$fixtures/docker-config.sh" "$reg" >>"$work/fixture.log" 2>&1 || give_up "docker-config.sh failed"
# One KEY="VALUE" from a fixture env file. Not sourced: this shell should hold no REGISTRY_*
# variable, since docker-registry takes those as config overrides (tests/fixtures/registry/README.md).
envval() { sed -n "s/^$2=\"\(.*\)\"\$/\1/p" "$1"; }
host=$(envval "$reg/registry.env" REGISTRY_HOST)
registry_url=$(envval "$reg/registry.env" REGISTRY_URL)
ca=$(envval "$reg/registry.env" REGISTRY_CA)
cert_dir=$(envval "$reg/registry.env" REGISTRY_CERT_DIR)
creds=$(envval "$reg/registry.env" REGISTRY_USER):$(envval "$reg/registry.env" REGISTRY_PASSWORD)
image=$(envval "$reg/pushed.env" PUSHED_STATIC_1_REF)
config_digest=$(envval "$reg/pushed.env" PUSHED_STATIC_1_CONFIG_DIGEST)
[[ -n $host && -n $image && -n $config_digest ]] || give_up "cannot read the fixture env files"

cat >"$work/registry.yaml" <<EOF
dockerConfig: $reg/docker-config.json
registries:
  - host: '$host'
    caFile: $ca
EOF
# Rules that need the image facts, as a real policy would have; `check` fetches either way.
cat >"$work/policy.yaml" <<'EOF'
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: bench
spec:
  rules:
    - name: non-root
      runAsNonRoot: {}
    - name: small
      maxImageSize: {compressed: 5Mi}
EOF

check_cmd() { # check_cmd IMAGE... -> a shell command line
  local cmd
  printf -v cmd '%q check --policy %q --registry-config %q --output json' \
    "$bin" "$work/policy.yaml" "$work/registry.yaml"
  local image
  for image in "$@"; do cmd+=" $(printf '%q' "$image")"; done
  printf '%s >/dev/null' "$cmd"
}

# imagegate speaks HTTP/1.1 with keep-alive, so curl does too (the registry would pick HTTP/2).
curl_common() {
  printf 'curl -sS --fail --http1.1 --cacert %q -u %q -H %q' \
    "$ca" "$creds" "Accept: $accept"
}
manifest_url=$registry_url/v2/test/static/manifests/1
config_url=$registry_url/v2/test/static/blobs/$config_digest
# One curl process, two sequential requests on one connection: the least a client can do.
curl_one="$(curl_common) -o /dev/null $manifest_url -o /dev/null $config_url"
# Two curl processes: a second process start and TLS handshake, for context.
curl_two="$(curl_common) -o /dev/null $manifest_url && $(curl_common) -o /dev/null $config_url"

# Sanity: every command works before it is timed.
eval "$(check_cmd "$image")" || give_up "imagegate check of $image failed"
eval "$curl_one" || give_up "curl of the manifest and config failed"
got=$(eval "$(curl_common) $config_url" | sha256sum | cut -d' ' -f1)
[[ sha256:$got == "$config_digest" ]] || give_up "curl fetched the wrong config"

# ---------------------------------------------------------------------------------------------
# Timing: time_commands NAME CMD... -> "$results/NAME.tsv" with "mean_ms<TAB>sd_ms<TAB>median_ms<TAB>min_ms"
# per command, in order.
time_commands() {
  local name=$1
  shift
  if [[ $timer == hyperfine ]]; then
    hyperfine --style none --warmup "$warmup_runs" --runs "$runs" \
      --export-json "$results/$name.json" "$@" >"$results/$name.hyperfine.txt" 2>&1 ||
      return 1
    python3 - "$results/$name.json" >"$results/$name.tsv" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("%.2f\t%.2f\t%.2f\t%.2f" % (r["mean"] * 1e3, (r["stddev"] or 0) * 1e3,
                                      r["median"] * 1e3, r["min"] * 1e3))
PY
  else
    : >"$results/$name.tsv"
    local cmd i start end
    for cmd in "$@"; do
      for ((i = 0; i < warmup_runs; i++)); do eval "$cmd" || return 1; done
      : >"$results/$name.samples"
      for ((i = 0; i < runs; i++)); do
        start=$(date +%s%N)
        eval "$cmd" || return 1
        end=$(date +%s%N)
        echo $(((end - start) / 1000)) >>"$results/$name.samples"
      done
      python3 - "$results/$name.samples" >>"$results/$name.tsv" <<'PY'
import statistics, sys
us = [int(line) for line in open(sys.argv[1])]
ms = [u / 1e3 for u in us]
sd = statistics.stdev(ms) if len(ms) > 1 else 0.0
print("%.2f\t%.2f\t%.2f\t%.2f" % (statistics.mean(ms), sd, statistics.median(ms), min(ms)))
PY
    done
  fi
}

row() { sed -n "${2}p" "$results/$1.tsv"; }
field() { cut -f"$2" <<<"$1"; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f' % (a / b) if b else 'n/a')" "$1" "$2"; }

busy_before=$(bench_busy_pct)

# ---------------------------------------------------------------------------------------------
# (a) cold check vs curl
log "a: cold imagegate check vs curl ($timer, $runs runs each after $warmup_runs warm-up runs)"
time_commands cold "$(check_cmd "$image")" "$curl_one" "$curl_two" ||
  give_up "timing (a) failed; see $results"
check_row=$(row cold 1)
curl_row=$(row cold 2)
curl2_row=$(row cold 3)

# ---------------------------------------------------------------------------------------------
# (b) fetch overlap: 10 distinct images (own manifest and config each: a label per variant, so
# no digest-keyed cache can share anything between them), pushed into 10 repositories.
log "b: pushing $overlap_images distinct images"
# shellcheck source=tests/fixtures/registry/lib.sh
. "$fixtures/lib.sh"
variants=$work/variants
cp -a "$images/oci" "$variants" || give_up "cannot copy the OCI layout"
overlap_refs=()
for ((i = 1; i <= overlap_images; i++)); do
  umoci config --image "$variants:static" --tag "variant-$i" \
    --config.label "io.imagegate.bench.variant=$i" >>"$work/fixture.log" 2>&1 ||
    give_up "umoci config failed"
  fx_skopeo "$work" copy --preserve-digests --dest-cert-dir "$cert_dir" \
    --dest-creds "$creds" "oci:$variants:variant-$i" \
    "docker://$host/bench/overlap-$i:1" >>"$work/fixture.log" 2>&1 || give_up "skopeo copy failed"
  overlap_refs+=("$host/bench/overlap-$i:1")
done
eval "$(check_cmd "${overlap_refs[@]}")" || give_up "imagegate check of the $overlap_images images failed"
digests=$("$bin" check --policy "$work/policy.yaml" --registry-config "$work/registry.yaml" \
  --output json "${overlap_refs[@]}" | python3 -c 'import json, sys; print(len({i["digest"] for i in json.load(sys.stdin)}))')
[[ $digests == "$overlap_images" ]] || give_up "expected $overlap_images distinct digests, got $digests"

log "b: imagegate check of each image alone, then of all $overlap_images at once"
overlap_cmds=()
for ref in "${overlap_refs[@]}"; do overlap_cmds+=("$(check_cmd "$ref")"); done
overlap_cmds+=("$(check_cmd "${overlap_refs[@]}")")
time_commands overlap "${overlap_cmds[@]}" || give_up "timing (b) failed; see $results"
all_row=$(row overlap $((overlap_images + 1)))
# Over the single-image rows: the slowest and the fastest image by median (a whole row: one
# outlier run cannot pick the image, as it could by mean), the median and the sum of each column.
singles() { # singles slowest|fastest|median|sum -> a row
  head -n "$overlap_images" "$results/overlap.tsv" | python3 -c '
import statistics, sys
rows = [[float(x) for x in line.split("\t")] for line in sys.stdin if line.strip()]
how = sys.argv[1]
if how in ("slowest", "fastest"):
    row = (max if how == "slowest" else min)(rows, key=lambda r: r[2])
else:
    row = [(statistics.median if how == "median" else sum)(c) for c in zip(*rows)]
print("\t".join("%.2f" % x for x in row))' "$1"
}
slowest_row=$(singles slowest)
typical_row=$(singles median)
fastest_row=$(singles fastest)
sum_row=$(singles sum)

# The registry shares the 2 cores: its own CPU per run (htpasswd's bcrypt check runs on every
# request) sets a floor under the wall time of 10 fetches that no client-side overlap can beat.
registry_pid=$(envval "$reg/registry.env" REGISTRY_SERVER_PID)
process_cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }
cpu_per_run() { # cpu_per_run PID CMD -> CPU ms of PID over 10 runs of CMD, per run
  local before after i
  before=$(process_cpu_ms "$1")
  for ((i = 0; i < 10; i++)); do eval "$2" || return 1; done
  after=$(process_cpu_ms "$1")
  echo $(((after - before) / 10))
}
registry_cpu_single=$(cpu_per_run "$registry_pid" "${overlap_cmds[0]}" 2>/dev/null || echo n/a)
registry_cpu_all=$(cpu_per_run "$registry_pid" "${overlap_cmds[$overlap_images]}" 2>/dev/null || echo n/a)

busy_after=$(bench_busy_pct)

# ---------------------------------------------------------------------------------------------
# Report
{
  printf 'imagegate registry fetches: %s, %s cores, registry tls-basic on %s, timer %s (%s runs, %s warm-up)\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$host" "$timer" "$runs" "$warmup_runs"
  printf 'other work on the machine (CPU busy, 1 s sample): %s%% before, %s%% after\n' \
    "$busy_before" "$busy_after"
  printf '\n%-58s %10s %8s %10s %8s\n' "" "mean ms" "+/- sd" "median ms" "min ms"
  line() { printf '%-58s %10s %8s %10s %8s\n' "$1" "$(field "$2" 1)" "$(field "$2" 2)" "$(field "$2" 3)" "$(field "$2" 4)"; }
  echo "(a) cold fetch of $image (manifest + config)"
  line "  imagegate check, fresh process" "$check_row"
  line "  curl, 1 process, 2 sequential requests (baseline)" "$curl_row"
  line "  curl, 2 processes (context)" "$curl2_row"
  printf '  ratio check/curl: %s (median), %s (mean)   <- target <= 1.5\n' \
    "$(ratio "$(field "$check_row" 3)" "$(field "$curl_row" 3)")" \
    "$(ratio "$(field "$check_row" 1)" "$(field "$curl_row" 1)")"
  echo "(b) fetch overlap: $overlap_images distinct images"
  line "  imagegate check, one image: fastest of the $overlap_images" "$fastest_row"
  line "  imagegate check, one image: median of the $overlap_images" "$typical_row"
  line "  imagegate check, one image: slowest of the $overlap_images" "$slowest_row"
  line "  imagegate check, all $overlap_images at once" "$all_row"
  printf '  ratio all/slowest single: %s (median), %s (mean)   <- target < 2 (fetches overlap)\n' \
    "$(ratio "$(field "$all_row" 3)" "$(field "$slowest_row" 3)")" \
    "$(ratio "$(field "$all_row" 1)" "$(field "$slowest_row" 1)")"
  printf '  ratio all/median single:  %s (median)\n' \
    "$(ratio "$(field "$all_row" 3)" "$(field "$typical_row" 3)")"
  printf '  registry CPU per run (ms): %s for one image, %s for all %s -> floor for all: %s ms on %s cores\n' \
    "$registry_cpu_single" "$registry_cpu_all" "$overlap_images" \
    "$( [[ $registry_cpu_all =~ ^[0-9]+$ ]] && echo $((registry_cpu_all / $(nproc))) || echo n/a)" "$(nproc)"
  # Context: the ten run one after another, process starts included (an upper bound for "no
  # overlap at all").
  printf '  ratio all/sum of the %s singles: %s (mean)\n' "$overlap_images" \
    "$(ratio "$(field "$all_row" 1)" "$(field "$sum_row" 1)")"
  if ((busy_before > 20 || busy_after > 20)); then
    echo "warning: the machine was busy with other work; only the ratios are roughly comparable"
  fi
} | tee "$results/report.txt"
log "raw outputs in $results"
exit 0
