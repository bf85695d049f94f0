#!/usr/bin/env bash
# imagegate benchmark: a report, not a test. See bench/README.md for what it measures.
#
# Builds imagegate (Release, build-bench/), serves the shipped policies over TLS, and drives it
# and an nginx that answers the very same response bytes (same certificate, TLS versions,
# keep-alive, one worker per core) with the same load:
#   1. saturated: wrk -t2 -c32 -d10s --latency, POST bench/pod3.json       -> req/s, p50, p99
#   2. paced at ~1,000 req/s: wrk -c20, each connection waiting a random (exponential) time of
#      calibrated mean after each answer; 3 runs per server, alternating -> medians of p50, p99
# and prints one table with the ratio imagegate/nginx. It exits 0 whatever the numbers are;
# it exits non-zero only when it cannot measure (build failure, a server that does not start or
# dies, a response that is not an AdmissionReview).
#
# Knobs (environment):
#   BENCH_DURATION=10s        saturated run length            BENCH_WARMUP=2s (0 to skip)
#   BENCH_CONNECTIONS=32      wrk connections                 BENCH_WRK_THREADS=2
#   BENCH_RATE=1000           paced run, total requests/s     BENCH_RATE_DURATION=10s
#   BENCH_RATE_CONNECTIONS=20 paced run, connections          BENCH_SERVER_THREADS=$(nproc)
#   BENCH_PACED_RUNS=3        paced runs per server, alternating; medians are reported
#   BENCH_ARRIVALS=poisson    paced waits: exponential (requests arrive independently) or
#                             fixed (connections answered together stay together: convoys)
#   BENCH_PACER=wrk           paced run's client: wrk (delay() in post.lua) or hey (-q)
#   BENCH_BODY=bench/pod3.json  request body                  BENCH_POLICY=policies
#   BENCH_NGINX_MODE=return   nginx answers with `return 200 '<body>'`; `static` serves a file
#   BENCH_BUILD_DIR=build-bench   IMAGEGATE_BIN=path (skip the build and use this binary)
#   BENCH_IMAGEGATE_ARGS="--flag value"   extra `imagegate serve` flags (A/B runs)
#   BENCH_RESULTS=<build dir>/bench-results   raw outputs, one folder per run
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir=$root/bench
build_dir=${BENCH_BUILD_DIR:-$root/build-bench}
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
connections=${BENCH_CONNECTIONS:-32}
wrk_threads=${BENCH_WRK_THREADS:-2}
rate=${BENCH_RATE:-1000}
rate_duration=${BENCH_RATE_DURATION:-10s}
rate_workers=${BENCH_RATE_CONNECTIONS:-20}
paced_runs=${BENCH_PACED_RUNS:-3}
arrivals=${BENCH_ARRIVALS:-poisson}
cores=$(nproc)
server_threads=${BENCH_SERVER_THREADS:-$cores}
body_file=${BENCH_BODY:-$bench_dir/pod3.json}
policy=${BENCH_POLICY:-$root/policies}
nginx_mode=${BENCH_NGINX_MODE:-return}
nginx_bin=${NGINX_BIN:-/usr/sbin/nginx}

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 2
}
fail() { die "$@"; }
# shellcheck source=bench/lib.sh
. "$bench_dir/lib.sh"

# ---------------------------------------------------------------------------------------------
# Tools
missing=()
for tool in cmake openssl curl wrk python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ -x $nginx_bin ]] || missing+=("$nginx_bin")
((${#missing[@]} == 0)) || die "missing ${missing[*]}: run scripts/install-deps.sh"
[[ -f $body_file ]] || die "no request body $body_file"
body_file=$(cd "$(dirname "$body_file")" && pwd)/$(basename "$body_file")
[[ -e $policy ]] || die "no policies at $policy"

# ---------------------------------------------------------------------------------------------
# 1. Build (Release, tests off). Warnings are the test build's business, not the benchmark's.
bench_imagegate_binary bench-build.log

# ---------------------------------------------------------------------------------------------
# Temporary directory, processes killed by PID on exit.
bench_mktemp "${TMPDIR:-/tmp}/imagegate-bench.XXXXXX" || die "mktemp failed"
tmp=$bench_tmp
chmod 0711 "$tmp"  # nginx workers drop to an unprivileged user when started as root
trap 'exit 130' INT
trap 'exit 143' TERM

results=${BENCH_RESULTS:-$build_dir/bench-results}/run-$(date +%Y%m%dT%H%M%S)
mkdir -p "$results"

# ---------------------------------------------------------------------------------------------
# 1b. TLS: a throwaway CA and a serving certificate for 127.0.0.1 and localhost (P-256).
log "generating CA and serving certificate"
bench_make_certs "$tmp" || die "openssl failed"
cacert=$tmp/ca.crt

# ---------------------------------------------------------------------------------------------
# 2. Two free loopback ports (both sockets held open while picking, so they differ).
read -r ig_port ngx_port < <(bench_free_ports 2)

ig_args=(serve --listen "127.0.0.1:$ig_port" --tls-cert "$tmp/tls.crt" --tls-key "$tmp/tls.key"
  --policy "$policy")
if "$bin" serve --help 2>&1 | grep -q -- '--threads'; then
  ig_args+=(--threads "$server_threads")
fi
# Extra `imagegate serve` flags, for A/B runs (word-split on spaces).
read -r -a extra_args <<<"${BENCH_IMAGEGATE_ARGS:-}"
ig_args+=("${extra_args[@]}")
log "starting imagegate on 127.0.0.1:$ig_port (${ig_args[*]})"
"$bin" "${ig_args[@]}" >"$tmp/imagegate.log" 2>&1 &
ig_pid=$!
bench_track "$ig_pid"
bench_wait_healthy imagegate "$ig_pid" "https://127.0.0.1:$ig_port/healthz" "$tmp/imagegate.log"
ig_url="https://127.0.0.1:$ig_port/validate?timeout=10s"

# ---------------------------------------------------------------------------------------------
# 3. One review through curl: keep the response bytes, check it is an AdmissionReview.
post() { # url body_out headers_out -> prints the HTTP status
  curl -sS --max-time 10 --cacert "$cacert" -H 'Content-Type: application/json' \
    --data-binary @"$body_file" -D "$3" -o "$2" -w '%{http_code}' "$1"
}
ig_status=$(post "$ig_url" "$tmp/response.json" "$tmp/ig.headers") || die "POST to imagegate failed"
[[ $ig_status == 200 ]] || {
  cat "$tmp/response.json" >&2
  die "imagegate answered HTTP $ig_status to POST /validate"
}
verdict=$(python3 - "$tmp/response.json" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1], "rb"))
    assert r["kind"] == "AdmissionReview", "kind is not AdmissionReview"
    resp = r["response"]
    print("allowed" if resp["allowed"] else "denied (%s)" % resp.get("status", {}).get("code"),
          "warnings=%d" % len(resp.get("warnings") or []))
except Exception as e:
    print("ERROR", e)
EOF
)
[[ $verdict != ERROR* ]] || {
  cat "$tmp/response.json" >&2
  die "imagegate's answer is not an AdmissionReview: $verdict"
}
resp_bytes=$(stat -c %s "$tmp/response.json")
req_bytes=$(stat -c %s "$body_file")
ig_header_bytes=$(stat -c %s "$tmp/ig.headers")
cp "$tmp/response.json" "$results/response.json"
log "imagegate answered $resp_bytes bytes: $verdict"

# 3b. nginx answering the same bytes.
mkdir -p "$tmp/nginx" "$tmp/www"
chmod 0755 "$tmp/nginx" "$tmp/www"
cp "$tmp/response.json" "$tmp/www/validate.json"
chmod 0644 "$tmp/www/validate.json"
if [[ $nginx_mode == return ]] && grep -q '\$' "$tmp/response.json"; then
  log "response contains '\$', which nginx's return cannot quote: serving it as a static file"
  nginx_mode=static
fi
python3 - "$bench_dir/nginx.conf.template" "$tmp/nginx/nginx.conf" "$tmp/response.json" \
  "$nginx_mode" "$server_threads" "$tmp/nginx" "$ngx_port" "$tmp/tls.crt" "$tmp/tls.key" \
  "$tmp/www/validate.json" <<'EOF'
import sys
template, out, body_path, mode, workers, prefix, port, cert, key, static = sys.argv[1:]
body = open(body_path, "rb").read().decode("utf-8")
if mode == "return":
    # nginx quoted strings: \\ -> \ and \' -> '; everything else is literal.
    quoted = body.replace("\\", "\\\\").replace("'", "\\'")
    validate = "      return 200 '" + quoted + "';"
elif mode == "static":
    # The static module refuses POST with 405; redirect that to the same file as a 200.
    validate = "      alias " + static + ";\n      error_page 405 =200 $uri;"
else:
    sys.exit("BENCH_NGINX_MODE must be return or static, not " + mode)
text = open(template).read()
for name, value in (("WORKERS", workers), ("PREFIX", prefix), ("PORT", port), ("CERT", cert),
                    ("KEY", key), ("VALIDATE", validate)):
    text = text.replace("@" + name + "@", value)
open(out, "w").write(text)
EOF
cp "$tmp/nginx/nginx.conf" "$results/nginx.conf"
ngx_cmd=("$nginx_bin" -p "$tmp/nginx" -e "$tmp/nginx/nginx-error.log" -c "$tmp/nginx/nginx.conf")
"${ngx_cmd[@]}" -t >"$tmp/nginx-t.log" 2>&1 || {
  cat "$tmp/nginx-t.log" >&2
  die "nginx rejected the generated configuration"
}
log "starting nginx ($nginx_mode, $server_threads workers) on 127.0.0.1:$ngx_port"
"${ngx_cmd[@]}" >"$tmp/nginx.out" 2>&1 &
ngx_pid=$!
bench_track "$ngx_pid"
bench_wait_healthy nginx "$ngx_pid" "https://127.0.0.1:$ngx_port/healthz" "$tmp/nginx/nginx-error.log"
ngx_url="https://127.0.0.1:$ngx_port/validate?timeout=10s"
ngx_status=$(post "$ngx_url" "$tmp/nginx-response.json" "$tmp/ngx.headers") ||
  die "POST to nginx failed"
[[ $ngx_status == 200 ]] || die "nginx answered HTTP $ngx_status to POST /validate"
cmp -s "$tmp/response.json" "$tmp/nginx-response.json" ||
  die "nginx's body differs from imagegate's (see $tmp/nginx-response.json)"
ngx_header_bytes=$(stat -c %s "$tmp/ngx.headers")

tls_of() { # port -> "TLSv1.3 TLS_AES_256_GCM_SHA384"
  openssl s_client -connect "127.0.0.1:$1" -CAfile "$cacert" -brief </dev/null 2>&1 |
    awk -F': ' '/^Protocol version/ {p = $2} /^Ciphersuite/ {c = $2} END {print p, c}'
}
ig_tls=$(tls_of "$ig_port")
ngx_tls=$(tls_of "$ngx_port")

# ---------------------------------------------------------------------------------------------
# CPU accounting: user+system ticks of a process and of its direct children (nginx workers).
clk_tck=$(getconf CLK_TCK)
cpu_ticks() {
  local pid total=0 t
  for pid in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

# wrk --latency output -> "rps p50_ms p99_ms requests non2xx socket_errors"
parse_wrk() {
  awk '
    function ms(v,   n, u) {
      n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
      if (u == "us") return n / 1000; if (u == "ms") return n; if (u == "s") return n * 1000
      if (u == "m") return n * 60000; return n
    }
    /^ +50%/ {p50 = ms($2)} /^ +99%/ {p99 = ms($2)}
    /requests in/ {n = $1}
    /Non-2xx or 3xx responses:/ {bad = $NF}
    /Socket errors:/ {gsub(/,/, ""); errs = $4 + $6 + $8 + $10}
    /^Requests\/sec:/ {rps = $2}
    END {printf "%s %s %s %s %d %d\n", rps == "" ? "nan" : rps, p50 == "" ? "nan" : p50,
                p99 == "" ? "nan" : p99, n == "" ? 0 : n, bad, errs}' "$1"
}

# hey output -> "rps p50_ms p99_ms requests non200 errors"
parse_hey() {
  awk '
    /Requests\/sec:/ {rps = $2}
    /^ +50% in/ {p50 = $3 * 1000} /^ +99% in/ {p99 = $3 * 1000}
    /^Error distribution:/ {inerr = 1; next}
    /^ +\[[0-9]+\]/ {
      c = $1; gsub(/[][]/, "", c)
      if (inerr) errs += c; else {n += $2; if (c != 200) bad += $2}
    }
    END {printf "%s %s %s %d %d %d\n", rps == "" ? "nan" : rps, p50 == "" ? "nan" : p50,
                p99 == "" ? "nan" : p99, n, bad, errs}' "$1"
}

declare -A R # R[name.metric]

# 4. Saturated: wrk, keep-alive TLS, same settings for both.
run_wrk() { # name pid url
  local name=$1 pid=$2 url=$3 out=$results/wrk-$1.txt before after
  if [[ $warmup != 0 && $warmup != 0s ]]; then
    BENCH_BODY=$body_file wrk -t"$wrk_threads" -c"$connections" -d"$warmup" \
      -s "$bench_dir/post.lua" "$url" >"$results/wrk-$name-warmup.txt" 2>&1 || true
  fi
  log "wrk -t$wrk_threads -c$connections -d$duration --latency against $name"
  before=$(cpu_ticks "$pid")
  times >"$tmp/times.before" # this shell's reaped children: wrk's own CPU time
  BENCH_BODY=$body_file wrk -t"$wrk_threads" -c"$connections" -d"$duration" --latency \
    -s "$bench_dir/post.lua" "$url" >"$out" 2>&1 || log "wrk against $name failed (see $out)"
  times >"$tmp/times.after"
  after=$(cpu_ticks "$pid")
  read -r "R[$name.rps]" "R[$name.p50]" "R[$name.p99]" "R[$name.n]" "R[$name.bad]" "R[$name.err]" \
    < <(parse_wrk "$out")
  R[$name.cpu_us]=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="${R[$name.n]}" \
    'BEGIN {print (n > 0 ? t / hz * 1e6 / n : "nan")}')
  R[$name.cpu_pct]=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v s="$(seconds_of "$duration")" \
    'BEGIN {print t / hz / s * 100}')
  R[$name.wrk_us]=$(awk -v n="${R[$name.n]}" '
    function sec(v,   p) {split(v, p, /[ms]/); return p[1] * 60 + p[2]}
    FNR == 2 {t[FILENAME] = sec($1) + sec($2)}
    END {b = t[ARGV[1]]; a = t[ARGV[2]]; print (n > 0 ? (a - b) * 1e6 / n : "nan")}' \
    "$tmp/times.before" "$tmp/times.after")
}

# 5. Paced: ~$rate requests/s in total. Default pacer: wrk itself (post.lua's delay()), the same
# low-overhead client as the saturated run; a 2 s calibration run measures the per-request
# overhead on top of the delay and the delay is corrected so that the run offers ~$rate req/s.
# BENCH_PACER=hey uses `hey -q` instead (exact rate, but the Go client itself adds about 1 ms at
# the median and several at p99 on a 2-core machine: it measures hey more than the server).
pacer=${BENCH_PACER:-wrk}
if [[ $pacer == hey ]] && ! command -v hey >/dev/null 2>&1; then
  log "BENCH_PACER=hey but hey is not installed (scripts/install-deps.sh): pacing with wrk"
  pacer=wrk
fi
if [[ $pacer == hey ]]; then
  per_worker=$(awk -v r="$rate" -v w="$rate_workers" 'BEGIN {print r / w}')
  pacer_desc="hey -c $rate_workers -q $per_worker -z $rate_duration"
else
  pacer_desc="wrk -t1 -c$rate_workers -d$rate_duration --latency, $arrivals delay() per connection"
fi
paced_wrk() { # url delay_ms duration out
  BENCH_BODY=$body_file BENCH_DELAY_MS=$2 BENCH_ARRIVALS=$arrivals wrk -t1 -c"$rate_workers" -d"$3" --latency \
    -s "$bench_dir/post.lua" "$1" >"$4" 2>&1
}
run_paced() { # name pid url run -> R[name.rrps.run], .rp50.run, .rp99.run, ...
  local name=$1 pid=$2 url=$3 run=$4 out=$results/paced-$1-$4.txt before after period delay achieved
  if [[ $pacer == hey ]]; then
    log "paced run at ~$rate req/s against $name ($pacer_desc)"
    before=$(cpu_ticks "$pid")
    hey -c "$rate_workers" -q "$per_worker" -z "$rate_duration" -m POST -T application/json \
      -D "$body_file" "$url" >"$out" 2>&1 || log "hey against $name failed (see $out)"
    after=$(cpu_ticks "$pid")
    read -r "R[$name.rrps.$run]" "R[$name.rp50.$run]" "R[$name.rp99.$run]" "R[$name.rn.$run]" \
      "R[$name.rbad.$run]" "R[$name.rerr.$run]" < <(parse_hey "$out")
  else
    # Per-connection period for the target rate, and the delay that gives it after calibration.
    period=$(awk -v r="$rate" -v c="$rate_workers" 'BEGIN {print c * 1000 / r}')
    paced_wrk "$url" "$period" 2s "$results/paced-$name-$run-calibration.txt" || true
    achieved=$(parse_wrk "$results/paced-$name-$run-calibration.txt" | awk '{print $1}')
    delay=$(awk -v p="$period" -v a="$achieved" -v c="$rate_workers" 'BEGIN {
      d = p; if (a + 0 > 0) d = p - (c * 1000 / a - p)
      if (d < p / 2) d = p / 2; if (d > p) d = p; printf "%.3f", d}')  # a noisy calibration
    log "paced run at ~$rate req/s against $name (wrk -c$rate_workers, ${delay} ms between requests per connection)"
    before=$(cpu_ticks "$pid")
    paced_wrk "$url" "$delay" "$rate_duration" "$out" || log "paced wrk against $name failed (see $out)"
    after=$(cpu_ticks "$pid")
    read -r "R[$name.rrps.$run]" "R[$name.rp50.$run]" "R[$name.rp99.$run]" "R[$name.rn.$run]" \
      "R[$name.rbad.$run]" "R[$name.rerr.$run]" < <(parse_wrk "$out")
  fi
  R[$name.rcpu_pct.$run]=$(awk -v t=$((after - before)) -v hz="$clk_tck" \
    -v s="$(seconds_of "$rate_duration")" 'BEGIN {print t / hz / s * 100}')
}

busy_start=$(bench_busy_pct)
load_start=$(cut -d' ' -f1 /proc/loadavg)
run_wrk imagegate "$ig_pid" "$ig_url"
run_wrk nginx "$ngx_pid" "$ngx_url"
# The tail at ~1,000 req/s moves by a factor of 2 between runs on a shared 2-core VM, for nginx
# as much as for imagegate: the paced runs alternate between the two servers, and the report
# gives each figure's median over the runs, and every run's p99.
for ((run = 1; run <= paced_runs; run++)); do
  run_paced imagegate "$ig_pid" "$ig_url" "$run"
  run_paced nginx "$ngx_pid" "$ngx_url" "$run"
done
median_of() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR ? v[int((NR + 1) / 2)] : "nan")}'; }
for name in imagegate nginx; do
  for figure in rrps rp50 rp99 rcpu_pct; do
    values=()
    for ((run = 1; run <= paced_runs; run++)); do values+=("${R[$name.$figure.$run]:-nan}"); done
    R[$name.$figure]=$(median_of "${values[@]}")
    [[ $figure == rp99 ]] && R[$name.rp99s]=${values[*]}
  done
  for figure in rn rbad rerr; do
    R[$name.$figure]=0
    for ((run = 1; run <= paced_runs; run++)); do
      R[$name.$figure]=$((R[$name.$figure] + ${R[$name.$figure.$run]:-0}))
    done
  done
done

for name in imagegate nginx; do
  pid=$ig_pid
  [[ $name == nginx ]] && pid=$ngx_pid
  bench_alive "$pid" || {
    cp "$tmp/imagegate.log" "$tmp/nginx/nginx-error.log" "$results/" 2>/dev/null || true
    die "$name died during the benchmark (logs in $results)"
  }
done
cp "$tmp/imagegate.log" "$results/imagegate.log"
load_end=$(cut -d' ' -f1 /proc/loadavg)
busy_end=$(bench_busy_pct)
log_lines=$(wc -l <"$tmp/imagegate.log")

# ---------------------------------------------------------------------------------------------
# 6. Report.
ratio=$(awk -v a="${R[imagegate.rps]}" -v b="${R[nginx.rps]}" \
  'BEGIN {if (b + 0 > 0 && a == a + 0) printf "%.2f", a / b; else print "n/a"}')
check() { # value op target -> met|MISSED|n/a
  awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
    if (v != v + 0 || v == "nan") {print "n/a"; exit}
    ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 < t + 0); print ok ? "met" : "MISSED"}'
}
fmt() { awk -v v="$1" -v f="$2" 'BEGIN {if (v == v + 0 && v != "nan") printf f, v; else printf "n/a"}'; }
row() { printf '  %-34s %12s %12s %s\n' "$1" "$2" "$3" "${4:-}"; }
ratio_of() { awk -v a="$1" -v b="$2" -v f="$3" \
  'BEGIN {if (a == a + 0 && b + 0 > 0) printf f, a / b; else printf "n/a"}'; }

cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
  echo
  echo "imagegate benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
  echo "  machine   $cores cores ($cpu_model); load generator and servers share them"
  echo "            other work: ${busy_start}% of all CPU busy before the runs, ${busy_end}% after (1 s samples, servers idle); load average $load_start -> $load_end"
  echo "  servers   imagegate ($server_threads threads, Release, policies: ${policy#"$root"/}${BENCH_IMAGEGATE_ARGS:+, $BENCH_IMAGEGATE_ARGS})"
  echo "            nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///') ($server_threads workers, '$nginx_mode' of the same bytes)"
  echo "  TLS       imagegate: $ig_tls | nginx: $ngx_tls"
  echo "  request   POST /validate?timeout=10s, $(basename "$body_file") ($req_bytes bytes)"
  echo "  response  $resp_bytes bytes, identical bodies ($verdict); headers: imagegate $ig_header_bytes B, nginx $ngx_header_bytes B"
  echo
  printf '  %-34s %12s %12s %s\n' "" imagegate nginx "imagegate/nginx"
  echo "  saturated: wrk -t$wrk_threads -c$connections -d$duration --latency (warm-up $warmup)"
  row "requests/s" "$(fmt "${R[imagegate.rps]}" %.0f)" "$(fmt "${R[nginx.rps]}" %.0f)" "$ratio"
  row "p50 latency (ms)" "$(fmt "${R[imagegate.p50]}" %.3f)" "$(fmt "${R[nginx.p50]}" %.3f)" \
    "$(ratio_of "${R[imagegate.p50]}" "${R[nginx.p50]}" %.2f)"
  row "p99 latency (ms)" "$(fmt "${R[imagegate.p99]}" %.3f)" "$(fmt "${R[nginx.p99]}" %.3f)" \
    "$(ratio_of "${R[imagegate.p99]}" "${R[nginx.p99]}" %.2f)"
  row "server CPU per request (us)" "$(fmt "${R[imagegate.cpu_us]}" %.1f)" \
    "$(fmt "${R[nginx.cpu_us]}" %.1f)" "$(ratio_of "${R[imagegate.cpu_us]}" "${R[nginx.cpu_us]}" %.2f)"
  row "server CPU (% of one core)" "$(fmt "${R[imagegate.cpu_pct]}" %.0f)" \
    "$(fmt "${R[nginx.cpu_pct]}" %.0f)"
  row "wrk CPU per request (us)" "$(fmt "${R[imagegate.wrk_us]}" %.1f)" "$(fmt "${R[nginx.wrk_us]}" %.1f)"
  row "requests / non-2xx / socket err" "${R[imagegate.n]}/${R[imagegate.bad]}/${R[imagegate.err]}" \
    "${R[nginx.n]}/${R[nginx.bad]}/${R[nginx.err]}"
  echo "  paced at ~$rate req/s: $pacer_desc; medians of $paced_runs alternating runs"
  row "achieved requests/s" "$(fmt "${R[imagegate.rrps]}" %.0f)" "$(fmt "${R[nginx.rrps]}" %.0f)"
  row "p50 latency (ms)" "$(fmt "${R[imagegate.rp50]}" %.3f)" "$(fmt "${R[nginx.rp50]}" %.3f)"
  row "p99 latency (ms)" "$(fmt "${R[imagegate.rp99]}" %.3f)" "$(fmt "${R[nginx.rp99]}" %.3f)"
  echo "    p99 of each run (ms): imagegate ${R[imagegate.rp99s]}; nginx ${R[nginx.rp99s]}"
  row "server CPU (% of one core)" "$(fmt "${R[imagegate.rcpu_pct]}" %.1f)" \
    "$(fmt "${R[nginx.rcpu_pct]}" %.1f)"
  row "requests / non-2xx / errors" "${R[imagegate.rn]}/${R[imagegate.rbad]}/${R[imagegate.rerr]}" \
    "${R[nginx.rn]}/${R[nginx.rbad]}/${R[nginx.rerr]}"
  echo
  echo "  targets"
  # Issue 10's target for the cached path; 0.70 was the first benchmark's long-term goal.
  echo "    throughput imagegate/nginx      $ratio   (target >= 0.25: $(check "$ratio" '>=' 0.25); goal >= 0.70: $(check "$ratio" '>=' 0.7))"
  echo "    imagegate p99 at ~$rate req/s    $(fmt "${R[imagegate.rp99]}" %.3f) ms, median of $paced_runs runs   (target < 2 ms: $(check "${R[imagegate.rp99]}" '<' 2))"
  if ((${R[imagegate.bad]:-0} + ${R[imagegate.err]:-0} + ${R[imagegate.rbad]:-0} + ${R[imagegate.rerr]:-0} > 0)); then
    echo "  WARNING: imagegate answered some requests with errors; see $results"
  fi
  if ((busy_start > 20 || busy_end > 20)); then
    echo "  WARNING: other processes were using the CPU (${busy_start}% / ${busy_end}%): they took CPU from"
    echo "           both servers and from wrk; compare runs made on a quiet machine only"
  fi
  if ((log_lines > 100)); then
    echo "  note: imagegate wrote $log_lines log lines during the run (logging is part of its cost)"
  fi
  echo "  raw outputs: ${results#"$root"/}"
} | tee "$results/summary.txt"
exit 0
