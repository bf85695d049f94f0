#!/usr/bin/env bash
# imagegate soak: a report, not a test. See bench/README.md, "Soak".
#
# SOAK_DURATION (10m) of ~1,000 requests/s, mixed, against `imagegate serve` (shipped policies,
# a generated certificate, a free loopback port, a registry config naming the black-hole registry):
#   - well-behaved: wrk, keep-alive, paced to ~95% of SOAK_RATE, rotating 8 digest-pinned pod
#     reviews that need no registry (bench/pod3.json with other names and uids), every answer
#     checked (HTTP 200 and allowed) in bench/soak.lua; plus a new-connection client (a fresh TLS
#     connection per review, bench/attack.py newconn) every 0.2 s;
#   - the rest (~5%): cold reviews whose image is on the black-hole registry or on a port nobody
#     listens on (a new tag each time: fetch errors, no cache), bodies that are not JSON, the
#     wrong Content-Type, GET of an unknown path;
# and samples the server's RSS, open fds and CPU every SOAK_SAMPLE seconds. Targets: zero errors
# to the well-behaved clients, RSS flat after the warm-up, no fd growth. Exits 0 whatever the
# numbers are, non-zero only when it cannot measure.
#
# Knobs (environment): SOAK_DURATION=10m (wrk syntax: 60s, 10m)  SOAK_RATE=1000  SOAK_SAMPLE=10
#   SOAK_WARMUP=<a sixth of the run, at most 60s>  SOAK_CONNECTIONS=16  SOAK_NOISE_CONNECTIONS=8
#   SOAK_NOFILE=1024 (the server's ulimit -n)  SOAK_NEWCONN_INTERVAL=0.2
#   BENCH_SERVER_THREADS=$(nproc)  BENCH_IMAGEGATE_ARGS  BENCH_BODY=bench/pod3.json  BENCH_POLICY=policies
#   BENCH_BUILD_DIR=build-bench  IMAGEGATE_BIN=path  BENCH_RESULTS=<build dir>/bench-results
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir=$root/bench
build_dir=${BENCH_BUILD_DIR:-$root/build-bench}
py=/usr/bin/python3
duration=${SOAK_DURATION:-10m}
rate=${SOAK_RATE:-1000}
sample=${SOAK_SAMPLE:-10}
connections=${SOAK_CONNECTIONS:-16}
noise_connections=${SOAK_NOISE_CONNECTIONS:-8}
nofile=${SOAK_NOFILE:-1024}
server_threads=${BENCH_SERVER_THREADS:-$(nproc)}
body_file=${BENCH_BODY:-$bench_dir/pod3.json}
policy=${BENCH_POLICY:-$root/policies}

log() { printf 'soak: %s\n' "$*" >&2; }
die() {
  printf 'soak: error: %s\n' "$*" >&2
  exit 2
}
fail() { die "$@"; }
# shellcheck source=bench/lib.sh
. "$bench_dir/lib.sh"

missing=()
for tool in cmake openssl curl wrk; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
[[ -x $py ]] || missing+=("$py")
((${#missing[@]} == 0)) || die "missing ${missing[*]}: run scripts/install-deps.sh"
[[ -f $body_file ]] || die "no request body $body_file"
seconds=$(seconds_of "$duration")
seconds=${seconds%.*}
((seconds >= 20)) || die "SOAK_DURATION=$duration is too short (20 s at least)"
warmup=${SOAK_WARMUP:-$((seconds / 6 > 60 ? 60 : seconds / 6))}

bench_imagegate_binary bench-build.log
bench_mktemp "${TMPDIR:-/tmp}/imagegate-soak.XXXXXX" || die "mktemp failed"
tmp=$bench_tmp
trap 'exit 130' INT
trap 'exit 143' TERM
results=${BENCH_RESULTS:-$build_dir/bench-results}/soak-$(date +%Y%m%dT%H%M%S)
mkdir -p "$results"

bench_make_certs "$tmp" || die "openssl failed"
cacert=$tmp/ca.crt
# The server's port, and one that nobody listens on (picked, then released).
read -r port refused_port < <(bench_free_ports 2)

"$py" "$root/tests/fixtures/registry/blackhole.py" "$tmp/blackhole.port" $((seconds + 300)) \
  >"$tmp/blackhole.log" 2>&1 &
bench_track $!
for ((i = 0; i < 100; i++)); do [[ -s $tmp/blackhole.port ]] && break; sleep 0.1; done
[[ -s $tmp/blackhole.port ]] || die "blackhole.py did not start"
blackhole=127.0.0.1:$(tr -d '\n' <"$tmp/blackhole.port")
printf 'registries:\n  - host: "%s"\n' "$blackhole" >"$tmp/registries.yaml"

# Bodies: 8 digest-pinned variants of pod3.json, and the cold template (the user left to the
# image, so the non-root rule needs the image config; @IMAGE@ replaced per request).
"$py" - "$body_file" "$tmp" <<'EOF'
import copy, json, sys
review = json.load(open(sys.argv[1]))
for i in range(8):
    r = copy.deepcopy(review)
    r["request"]["uid"] = "soak-good-%d" % i
    r["request"]["name"] = r["request"]["object"]["metadata"]["name"] = "soak-%d" % i
    json.dump(r, open("%s/good-%d.json" % (sys.argv[2], i), "w"), separators=(",", ":"))
r = copy.deepcopy(review)
spec = r["request"]["object"]["spec"]
spec["securityContext"] = {}
c = spec["containers"][0]
c.pop("securityContext", None)
c["image"] = "@IMAGE@"
spec["containers"] = [c]
json.dump(r, open("%s/cold-template.json" % sys.argv[2], "w"), separators=(",", ":"))
EOF
bodies=$(printf '%s:' "$tmp"/good-*.json)

log "starting imagegate (ulimit -n $nofile) on 127.0.0.1:$port"
ig_args=(serve --listen "127.0.0.1:$port" --tls-cert "$tmp/tls.crt" --tls-key "$tmp/tls.key"
  --policy "$policy" --threads "$server_threads" --registry-config "$tmp/registries.yaml")
read -r -a extra_args <<<"${BENCH_IMAGEGATE_ARGS:-}"
ig_args+=("${extra_args[@]}")
(
  ulimit -n "$nofile" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  exec "$bin" "${ig_args[@]}"
) >"$tmp/imagegate.log" 2>&1 &
ig_pid=$!
bench_track "$ig_pid"
bench_wait_healthy imagegate "$ig_pid" "https://127.0.0.1:$port/healthz" "$tmp/imagegate.log"
url="https://127.0.0.1:$port/validate?timeout=10s"

# Pacing: the good stream offers ~95% of the rate, the noise ~5% (less while cold reviews wait).
# The good stream's delay is calibrated as in run.sh: 2 s at the nominal period measure what each
# request adds to it, and the delay is shortened by that much.
good_period=$(awk -v r="$rate" -v c="$connections" 'BEGIN {printf "%.3f", c * 1000 / (r * 0.95)}')
SOAK_MODE=good SOAK_BODIES=$bodies SOAK_DELAY_MS=$good_period \
  wrk -t1 -c"$connections" -d2s -s "$bench_dir/soak.lua" "$url" >"$results/wrk-calibration.txt" 2>&1 || true
achieved=$(awk '/^Requests\/sec:/ {print $2}' "$results/wrk-calibration.txt")
good_delay=$(awk -v p="$good_period" -v a="${achieved:-0}" -v c="$connections" 'BEGIN {
  d = p; if (a + 0 > 0) d = p - (c * 1000 / a - p)
  if (d < p / 2) d = p / 2; if (d > p) d = p; printf "%.3f", d}')
noise_delay=$(awk -v r="$rate" -v c="$noise_connections" 'BEGIN {printf "%.3f", c * 1000 / (r * 0.05)}')

busy_start=$(bench_busy_pct)
clk_tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
start_rss=$(bench_rss_kb "$ig_pid")
start_fds=$(bench_fd_count "$ig_pid")
log "soak for $duration at ~$rate req/s (good: wrk -c$connections, ${good_delay} ms apart per connection; noise: -c$noise_connections, ${noise_delay} ms)"

SOAK_MODE=good SOAK_BODIES=$bodies SOAK_DELAY_MS=$good_delay \
  wrk -t1 -c"$connections" -d"$duration" --timeout 5s --latency -s "$bench_dir/soak.lua" "$url" \
  >"$results/wrk-good.txt" 2>&1 &
good_pid=$!
bench_track "$good_pid"
SOAK_MODE=noise SOAK_COLD_TEMPLATE=$tmp/cold-template.json SOAK_BLACKHOLE=$blackhole \
  SOAK_REFUSED=127.0.0.1:$refused_port SOAK_DELAY_MS=$noise_delay \
  wrk -t"$noise_connections" -c"$noise_connections" -d"$duration" --timeout 15s --latency \
  -s "$bench_dir/soak.lua" "https://127.0.0.1:$port/" >"$results/wrk-noise.txt" 2>&1 &
noise_pid=$!
bench_track "$noise_pid"
"$py" "$bench_dir/attack.py" newconn --port "$port" --cafile "$cacert" --body "$body_file" \
  --duration "$seconds" --interval "${SOAK_NEWCONN_INTERVAL:-0.2}" --stats "$results/newconn.json" \
  >"$results/newconn.log" 2>&1 &
newconn_pid=$!
bench_track "$newconn_pid"

# Samples: elapsed s, RSS KiB, fds, server CPU % over the interval.
printf '%s %s %s %s\n' 0 "$start_rss" "$start_fds" 0 >"$results/samples.txt"
t_start=$(date +%s)
ticks=$(cpu_ticks "$ig_pid")
while bench_alive "$good_pid"; do
  for ((i = 0; i < sample * 10; i++)); do
    bench_alive "$good_pid" || break
    sleep 0.1
  done
  bench_alive "$ig_pid" || break
  now=$(($(date +%s) - t_start))
  t=$(cpu_ticks "$ig_pid")
  printf '%s %s %s %s\n' "$now" "$(bench_rss_kb "$ig_pid")" "$(bench_fd_count "$ig_pid")" \
    "$(awk -v t=$((t - ticks)) -v hz="$clk_tck" -v s="$sample" 'BEGIN {printf "%.0f", t / hz / s * 100}')" \
    | tee -a "$results/samples.txt" | awk '{printf "soak: %4d s  RSS %7.1f MB  fds %5d  CPU %3d%%\n", $1, $2 / 1024, $3, $4}' >&2
  ticks=$t
done
alive=1
bench_alive "$ig_pid" || alive=0
wait "$good_pid" || true
bench_forget "$good_pid"
wait "$noise_pid" "$newconn_pid" || true
bench_forget "$noise_pid" "$newconn_pid"
sleep 2
end_rss=$(bench_rss_kb "$ig_pid")
end_fds=$(bench_fd_count "$ig_pid")
busy_end=$(bench_busy_pct)
cp "$tmp/imagegate.log" "$results/imagegate.log"

"$py" - "$results" "$warmup" "$alive" "$end_rss" "$end_fds" "$duration" "$rate" "$busy_start" \
  "$busy_end" <<'EOF' | tee "$results/report.txt"
import json, os, re, sys
results, warmup, alive, end_rss, end_fds, duration, rate, busy0, busy1 = sys.argv[1:]
warmup = float(warmup)

def wrk(path):
    text = open(path).read()
    out = {"text": text}
    def ms(v):
        m = re.match(r"([0-9.]+)(us|ms|s|m)", v)
        if not m:
            return None
        n, u = float(m.group(1)), m.group(2)
        return n / 1000 if u == "us" else n if u == "ms" else n * 1000 if u == "s" else n * 60000
    for q in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % q, text, re.M)
        out["p" + q] = ms(m.group(1)) if m else None
    m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", text)
    out["max"] = ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in", text)
    out["n"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    out["rps"] = float(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["sockerr"] = sum(int(x) for x in m.groups()) if m else 0
    out["sockerr_text"] = m.group(0) if m else "none"
    m = re.search(r"^soak-bad (\d+)", text, re.M)
    out["bad"] = int(m.group(1)) if m else None
    out["noise"] = re.findall(r"^soak-noise (\S+) (\d+) (\d+)", text, re.M)
    return out

good = wrk(os.path.join(results, "wrk-good.txt"))
noise = wrk(os.path.join(results, "wrk-noise.txt"))
try:
    nc = json.load(open(os.path.join(results, "newconn.json")))
except Exception:
    nc = None
samples = [tuple(float(x) for x in line.split()) for line in open(os.path.join(results, "samples.txt"))
           if len(line.split()) == 4 and "nan" not in line]
print()
print("imagegate soak: %s at ~%s req/s; other work %s%% busy before, %s%% after (2 shared cores)" % (
    duration, rate, busy0, busy1))
print()
print("  %6s %9s %6s %5s" % ("t (s)", "RSS (MB)", "fds", "CPU%"))
for t, r, f, c in samples:
    print("  %6d %9.1f %6d %5d%s" % (t, r / 1024, f, c, "   <- end of warm-up" if t >= warmup and
          not any(warmup <= s[0] < t for s in samples) else ""))
print()
bad = good["bad"]
errors = (bad or 0) + good["sockerr"] + (nc["failed"] if nc else 1)
print("  well-behaved, keep-alive (wrk, rotating 8 reviews): %d requests, %.0f req/s, p50 %.2f ms, p99 %.2f ms, max %.1f ms" % (
    good["n"], good["rps"] or 0, good["p50"] or -1, good["p99"] or -1, good["max"] or -1))
print("    not 200+allowed: %s; socket errors: %s" % ("n/a" if bad is None else bad, good["sockerr_text"]))
if nc:
    print("  well-behaved, new connection per review: %d requests, %d failed %s, p50 %.2f ms, p99 %.2f ms" % (
        nc["requests"], nc["failed"], json.dumps(nc["failures"]) if nc["failed"] else "",
        nc["p50_ms"] or -1, nc["p99_ms"] or -1))
print("  noise: %d requests, %.0f req/s; socket errors: %s" % (
    noise["n"], noise["rps"] or 0, noise["sockerr_text"]))
kinds = {}
for kind, status, n in noise["noise"]:
    kinds.setdefault(kind, []).append("%s x%s" % (status, n))
for kind in sorted(kinds):
    print("    %-15s %s" % (kind, ", ".join(sorted(kinds[kind]))))
after = [s for s in samples if s[0] >= warmup]
verdict = lambda ok: "met" if ok else "MISSED"
print()
print("  targets")
print("    errors to well-behaved clients: %d   (target 0: %s)" % (errors, verdict(errors == 0)))
if after:
    r0, r1 = after[0][1] / 1024, after[-1][1] / 1024
    rmax = max(s[1] for s in after) / 1024
    span = max(1.0, after[-1][0] - after[0][0])
    growth = (r1 - r0) / span * 60
    ok = r1 <= r0 * 1.10 + 2
    print("    RSS after warm-up (%ds): %.1f MB -> %.1f MB at the end (max %.1f), %+.2f MB/min   (target flat, within 10%% + 2 MB: %s)" % (
        warmup, r0, r1, rmax, growth, verdict(ok)))
    f0, f1, fmax = after[0][2], after[-1][2], max(s[2] for s in after)
    print("    fds after warm-up: %d -> %d (max %d); 2 s after the load stopped: %s   (target no growth, within 16: %s)" % (
        f0, f1, fmax, end_fds, verdict(f1 <= f0 + 16)))
else:
    print("    no samples after the warm-up (SOAK_WARMUP=%s s is too long for this run)" % warmup)
if alive != "1":
    print("  THE SERVER DIED during the soak (see imagegate.log)")
print("  raw outputs: " + results)
EOF
exit 0
