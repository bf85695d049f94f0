#!/usr/bin/env bash
# A Deployment rollout against a cold webhook, and two replicas sharing Redis: a report, not a
# test. See bench/README.md, "Cold bursts and replicas sharing Redis".
#
# Builds three images of the same 5 layers (directories of this machine, each layer with a
# marker file of its own so that no two images share a layer digest) with umoci, pushes them to
# a TLS + basic-auth docker-registry (tests/fixtures/registry), and measures, with a policy whose
# file rule needs every layer:
#   1. burst: 200 AdmissionReviews of a Pod with image A sent at once over 200 handshaken TLS
#      connections (bench/burst_client.cc, one thread) to a fresh `imagegate serve`: time to the
#      last answer, and the registry requests it caused, counted from the registry's own access
#      log (target: 1 manifest, 1 config, 1 per layer);
#   2. single: one cold review of image B on a fresh server, by the same client: target burst
#      <= 1.2x single. Both come after a review of a one-file image, so that neither pays for
#      opening the server's connections to the registry; they alternate BENCH_REPEATS times and
#      their medians are compared;
#   3. two replicas sharing a real redis-server: replica 1 reviews image C cold, then replica 2's
#      first review of C: its latency and its layer downloads (target 0), then its cached one.
# Knobs: IMAGEGATE_BIN, BURST_CLIENT, BENCH_BUILD_DIR=build-bench, BENCH_BURST=200, BENCH_REPEATS=3,
#   BENCH_BURST_SOURCES="usr/share/perl usr/lib/python3 usr/libexec usr/share/man usr/share/doc"
# Exits 0 when it measured, 2 when it cannot.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixtures=$root/tests/fixtures/registry
build_dir=${BENCH_BUILD_DIR:-$root/build-bench}
burst=${BENCH_BURST:-200}
repeats=${BENCH_REPEATS:-3}
read -r -a sources <<<"${BENCH_BURST_SOURCES:-usr/share/perl usr/lib/python3 usr/libexec usr/share/man usr/share/doc}"

log() { printf 'cold-burst-bench: %s\n' "$*" >&2; }
fail() {
  printf 'cold-burst-bench: cannot measure: %s\n' "$*" >&2
  exit 2
}
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

missing=()
for tool in curl openssl skopeo umoci docker-registry htpasswd redis-server tar /usr/bin/python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
((${#missing[@]} == 0)) || fail "missing ${missing[*]}: run scripts/install-deps.sh"

bench_imagegate_binary cold-burst-bench-build.log
# The load generator: one thread, so that its own cost stays small beside the scan it measures.
burst_client=${BURST_CLIENT:-$build_dir/burst_client}
if [[ -z ${BURST_CLIENT:-} ]]; then
  [[ -f $build_dir/CMakeCache.txt ]] ||
    cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DIMAGEGATE_BUILD_TESTS=OFF \
      -DIMAGEGATE_WERROR=OFF >"$build_dir/bench-configure.log" 2>&1 ||
    fail "cmake configure failed (log: $build_dir/bench-configure.log)"
  cmake --build "$build_dir" -j"$(nproc)" --target burst_client >"$build_dir/burst-client-build.log" 2>&1 ||
    fail "building burst_client failed (log: $build_dir/burst-client-build.log)"
fi
[[ -x $burst_client ]] || fail "no burst client at $burst_client"

results=${BENCH_RESULTS:-$build_dir/bench-results}/cold-burst-$(date +%Y%m%d-%H%M%S)
mkdir -p "$results" || fail "cannot create $results"
bench_mktemp /tmp/imagegate-cold-burst-bench.XXXXXX || fail "mktemp failed"
work=$bench_tmp
reg=$work/registry
mkdir -p "$reg"
trap 'exit 2' INT TERM
# shellcheck source=tests/fixtures/registry/lib.sh
. "$fixtures/lib.sh"

# ---------------------------------------------------------------------------------------------
log "building the images with umoci"
images=$work/images
(
  set -e
  mkdir -p "$images/markers"
  cd "$images"
  umoci init --layout oci
  # A one-file image, reviewed first so that every measured review finds the server's
  # connections to the registry open.
  umoci new --image oci:warm
  echo warm >markers/warm
  tar -cf layer.tar -C "$images/markers" warm
  umoci raw add-layer --image oci:warm layer.tar
  rm -f layer.tar
  umoci config --image oci:warm --config.user=65532 --os=linux --architecture=amd64
  for tag in burst single shared; do
    umoci new --image "oci:$tag"
    for source in "${sources[@]}"; do
      marker=marker-$tag-${source//\//-}
      echo "$tag $source" >"markers/$marker"
      tar -cf layer.tar -C / "$source" -C "$images/markers" "$marker" 2>/dev/null ||
        [[ -s layer.tar ]]
      umoci raw add-layer --image "oci:$tag" --history.created_by "COPY /$source /$source" layer.tar
      rm -f layer.tar
    done
    umoci config --image "oci:$tag" --config.user=65532 --os=linux --architecture=amd64 \
      --config.entrypoint=/app
  done
) >"$results/umoci.log" 2>&1 || fail "umoci failed: $(tail -3 "$results/umoci.log")"

log "starting a tls-basic registry and pushing"
bench_start_registry
for tag in warm burst single shared; do
  fx_skopeo "$work" copy --dest-cert-dir "$cert_dir" --dest-creds "$creds" \
    "oci:$images/oci:$tag" "docker://$host/bench/$tag:1" >>"$results/push.log" 2>&1 ||
    fail "pushing $tag failed: $(tail -3 "$results/push.log")"
done
layer_mb=$(du -scm "${sources[@]/#//}" 2>/dev/null | awk 'END {print $1}')

# ---------------------------------------------------------------------------------------------
cat >"$work/policy.yaml" <<'EOF'
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: bench}
spec:
  action: Audit
  rules:
    - name: no-shells
      forbiddenFiles: {presets: [shells]}
EOF
mkdir -p "$work/certs" && bench_make_certs "$work/certs" || fail "cannot make certificates"
cacert=$work/certs/ca.crt

registry_config() { # FILE [CACHE YAML]
  cat >"$1" <<EOF
dockerConfig: $reg/docker-config.json
timeouts: {connect: 2s, request: 60s}
registries:
  - host: '$host'
    caFile: $ca
${2:-}
EOF
}

serve() { # NAME REGISTRY_CONFIG -> port in $port_NAME, pid tracked
  local name=$1 config=$2 port pid
  read -r port < <(bench_free_ports 1)
  "$bin" serve --listen "127.0.0.1:$port" --tls-cert "$work/certs/tls.crt" \
    --tls-key "$work/certs/tls.key" --policy "$work/policy.yaml" --registry-config "$config" \
    --max-review-timeout 30s >"$results/serve-$name.log" 2>&1 &
  pid=$!
  bench_track "$pid"
  echo "$pid" >"$work/pid-$name"
  bench_wait_healthy "imagegate serve ($name)" "$pid" "https://127.0.0.1:$port/healthz" \
    "$results/serve-$name.log"
  printf -v "port_$name" '%s' "$port"
}

review_body() { # TAG FILE
  cat >"$2" <<EOF
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"bench-$1",
 "kind":{"group":"","version":"v1","kind":"Pod"},
 "resource":{"group":"","version":"v1","resource":"pods"},
 "namespace":"bench","operation":"CREATE","userInfo":{"username":"bench"},
 "object":{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","namespace":"bench"},
 "spec":{"containers":[{"name":"app","image":"$host/bench/$1:1"}]}}}}
EOF
}
for tag in warm burst single shared; do review_body "$tag" "$work/review-$tag.json"; done

review_ms() { # PORT TAG OUT -> milliseconds as the client sees them
  curl -sS --cacert "$cacert" -H 'Content-Type: application/json' \
    --data-binary "@$work/review-$2.json" -o "$3" -w '%{time_total}\n' \
    "https://127.0.0.1:$1/validate?timeout=30s" | awk '{printf "%.0f", $1 * 1000}'
}

# The registry requests about bench/TAG in the access log after byte OFFSET:
# "manifests configs-and-layers" (successful GETs).
registry_gets() { # TAG OFFSET
  tail -c "+$(($2 + 1))" "$reg/registry.log" | awk -v repo="/v2/bench/$1/" '
    index($0, "\"GET " repo) && $9 ~ /^2/ { if (index($0, repo "manifests/")) m++; else b++ }
    END { printf "%d %d\n", m, b }'
}
log_size() { stat -c %s "$reg/registry.log"; }
layers=${#sources[@]}

# Each burst and each single review runs on a fresh server (nothing cached), after a review of
# the warm-up image; they alternate, BENCH_REPEATS times, and the medians are compared.
burst_once() { # RUN TAG COUNT -> $once_seconds, $once_gets ("manifests/blobs"); JSON in $results
  local run=$1 tag=$2 count=$3 offset out
  serve "$tag$run" "$work/registry.yaml"
  local -n serving_port="port_$tag$run"
  review_ms "$serving_port" warm "$results/review-warm-$tag$run.json" >/dev/null
  offset=$(log_size)
  out=$results/$tag-$run.json
  "$burst_client" --host 127.0.0.1 --port "$serving_port" --path '/validate?timeout=30s' \
    --cafile "$cacert" --body "$work/review-$tag.json" --count "$count" >"$out" ||
    log "some answers of $tag run $run were not AdmissionReviews: $(cat "$out")"
  bench_stop "$(cat "$work/pid-$tag$run")"
  once_seconds=$(json_field lastAnswerSeconds <"$out")
  once_gets=$(registry_gets "$tag" "$offset" | tr ' ' /)
}
json_field() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

log "1-2: $burst reviews at once of a new ${layers}-layer image (~${layer_mb} MB of files), and one, ${repeats} times each"
load_before=$(uptime)
registry_config "$work/registry.yaml"
burst_runs=() single_runs=() burst_gets=() single_gets=()
for ((run = 1; run <= repeats; run++)); do
  burst_once "$run" burst "$burst"
  burst_runs+=("$once_seconds") burst_gets+=("$once_gets")
  burst_once "$run" single 1
  single_runs+=("$once_seconds") single_gets+=("$once_gets")
done
burst_s=$(median "${burst_runs[@]}")
single_s=$(median "${single_runs[@]}")

log "3: two replicas sharing a redis-server"
read -r redis_port < <(bench_free_ports 1)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$work" >"$results/redis.log" 2>&1 &
redis_pid=$!
bench_track "$redis_pid"
registry_config "$work/registry-redis.yaml" "cache:
  redis:
    address: 127.0.0.1:$redis_port
    timeout: 500ms"
serve one "$work/registry-redis.yaml"
serve two "$work/registry-redis.yaml"
review_ms "$port_one" warm "$results/review-warm-one.json" >/dev/null
review_ms "$port_two" warm "$results/review-warm-two.json" >/dev/null
offset=$(log_size)
one_ms=$(review_ms "$port_one" shared "$results/review-shared-one.json")
read -r one_manifests one_blobs < <(registry_gets shared "$offset")
offset=$(log_size)
two_ms=$(review_ms "$port_two" shared "$results/review-shared-two.json")
read -r two_manifests two_blobs < <(registry_gets shared "$offset")
two_cached_ms=$(review_ms "$port_two" shared "$results/review-shared-two-cached.json")
load_after=$(uptime)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
{
  printf '%s layers (%s), ~%s MB of files; rule: forbiddenFiles shells (every layer read)\n' \
    "$layers" "${sources[*]/#//}" "$layer_mb"
  printf 'load before: %s\nload after:  %s\n\n' "$load_before" "$load_after"
  printf '1. %s reviews at once, cold (%s runs, each on a fresh server): last answer after %s s\n' \
    "$burst" "$repeats" "${burst_runs[*]}"
  printf '   registry GETs per run, manifests/blobs: %s (target 1/%s)\n' "${burst_gets[*]}" \
    "$((layers + 1))"
  printf '2. one cold review (same client, fresh servers): %s s (GETs %s)\n' "${single_runs[*]}" \
    "${single_gets[*]}"
  printf '   burst / single, medians: %s s / %s s = %sx (target <= 1.2)\n' "$burst_s" "$single_s" \
    "$(ratio "$burst_s" "$single_s")"
  printf '3. replicas sharing Redis: replica 1 cold %s ms (%s manifest, %s blobs)\n' "$one_ms" \
    "$one_manifests" "$one_blobs"
  printf '   replica 2, first review: %s ms (%s manifest, %s blobs: config only is the target)\n' \
    "$two_ms" "$two_manifests" "$two_blobs"
  printf '   replica 2, second review: %s ms\n' "$two_cached_ms"
} | tee "$results/summary.txt"
log "raw outputs in $results"
