#!/usr/bin/env bash
# A Deployment rollout against a cold webhook, and two replicas sharing Redis: a report, not a
# test. See bench/README.md, "Cold bursts and replicas sharing Redis".
#
# Builds three images of the same 5 layers (directories of this machine, each layer with a
# marker file of its own so that no two images share a layer digest) with umoci, pushes them to
# a TLS + basic-auth docker-registry (tests/fixtures/registry), and measures, with a policy whose
# file rule needs every layer:
#   1. burst: 200 AdmissionReviews of a Pod with image A sent at once over 200 TLS connections
#      (bench/burst.py) to a fresh `imagegate serve`: time to the last answer, and the registry
#      requests it caused, counted from the registry's own access log (target: 1 manifest, 1
#      config, 1 per layer);
#   2. single: one cold review of image B on the same server, by the same client: target burst
#      <= 1.2x single
#      (both after a review of a one-file image, so that neither pays for opening the server's
#      connections to the registry);
#   3. two replicas sharing a real redis-server: replica 1 reviews image C cold, then replica 2's
#      first review of C: its latency and its layer downloads (target 0), then its cached one.
# Knobs: IMAGEGATE_BIN, BENCH_BUILD_DIR=build-bench, BENCH_BURST=200,
#   BENCH_BURST_SOURCES="usr/share/perl usr/lib/python3 usr/libexec usr/share/man usr/share/doc"
# Exits 0 when it measured, 2 when it cannot.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixtures=$root/tests/fixtures/registry
build_dir=${BENCH_BUILD_DIR:-$root/build-bench}
burst=${BENCH_BURST:-200}
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

log "1: $burst reviews at once of a new ${layers}-layer image (~${layer_mb} MB of files)"
load_before=$(uptime)
registry_config "$work/registry.yaml"
serve main "$work/registry.yaml"
review_ms "$port_main" warm "$results/review-warm.json" >/dev/null
offset=$(log_size)
/usr/bin/python3 "$root/bench/burst.py" --url "https://127.0.0.1:$port_main/validate?timeout=30s" \
  --cafile "$cacert" --body "$work/review-burst.json" --count "$burst" >"$results/burst.json" ||
  log "some answers of the burst were not AdmissionReviews: $(cat "$results/burst.json")"
read -r burst_manifests burst_blobs < <(registry_gets burst "$offset")
burst_s=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["lastAnswerSeconds"])' <"$results/burst.json")

log "2: one cold review of another image with the same layers' sizes"
offset=$(log_size)
# The same client as the burst's, so that its own cost (a Python thread per request) is in both.
/usr/bin/python3 "$root/bench/burst.py" --url "https://127.0.0.1:$port_main/validate?timeout=30s" \
  --cafile "$cacert" --body "$work/review-single.json" --count 1 >"$results/single.json" ||
  log "the single review was not answered with an AdmissionReview: $(cat "$results/single.json")"
single_ms=$(/usr/bin/python3 -c 'import json,sys; print(round(json.load(sys.stdin)["lastAnswerSeconds"] * 1000))' <"$results/single.json")
read -r single_manifests single_blobs < <(registry_gets single "$offset")

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
  printf '1. %s reviews at once, cold: last answer after %s s (%s)\n' "$burst" "$burst_s" \
    "$(cat "$results/burst.json")"
  printf '   registry GETs: %s manifest, %s blobs (config + layers; target 1 and %s)\n' \
    "$burst_manifests" "$burst_blobs" "$((layers + 1))"
  printf '2. one cold review: %s ms (registry GETs: %s manifest, %s blobs)\n' "$single_ms" \
    "$single_manifests" "$single_blobs"
  printf '   burst / single: %sx (target <= 1.2)\n' "$(ratio "$burst_s" "$(awk -v m="$single_ms" 'BEGIN {print m / 1000}')")"
  printf '3. replicas sharing Redis: replica 1 cold %s ms (%s manifest, %s blobs)\n' "$one_ms" \
    "$one_manifests" "$one_blobs"
  printf '   replica 2, first review: %s ms (%s manifest, %s blobs: config only is the target)\n' \
    "$two_ms" "$two_manifests" "$two_blobs"
  printf '   replica 2, second review: %s ms\n' "$two_cached_ms"
} | tee "$results/summary.txt"
log "raw outputs in $results"
