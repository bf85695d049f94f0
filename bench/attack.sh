#!/usr/bin/env bash
# imagegate under hostile clients: a report, not a test. See bench/README.md, "Hostile clients".
#
# Serves the shipped policies over TLS on a free loopback port (plus a registry config that points
# one registry host at tests/fixtures/registry/blackhole.py) and, for each attack, measures while
# the attack runs a well-behaved keep-alive client (one connection, sequential POST of
# bench/pod3.json) and a new-connection client (a fresh TLS connection per POST): success rate,
# p50 and p99; and the server's RSS and open fds before, at the peak and after (a settle) it:
#   baseline    no attack
#   slowloris   1,500 reconnecting TLS clients that handshake and trickle header bytes
#   flood       5,000 idle TCP connections, reconnecting when closed
#   upload      200 connections announcing a ~3 MB body, stalling after 1 MB of it
#   bomb        4 loops posting a 3 MB `[{},{},...]` body and 1 posting 3 MB of `[[[...]]]`
#   slowreg     4 reviews/s of 16-image pods whose images live on the black-hole registry
# once per server fd limit in ATTACK_NOFILE (default: 1024, a container's usual, and this shell's
# hard limit). It exits 0 whatever the numbers are, non-zero only when it cannot measure (build,
# certificates, the server does not start, a tool is missing).
#
# Knobs (environment; durations in seconds):
#   ATTACK_NOFILE="1024 <hard>"   server `ulimit -n` values, one table section each
#   ATTACK_ONLY="slowloris flood upload bomb slowreg"   which attacks, in order
#   ATTACK_RAMP=2  ATTACK_PROBE=8  ATTACK_SETTLE=5    per attack: ramp-up, measuring, settle after
#   ATTACK_SOURCES=64          attacker source addresses (127.0.1.x); 0 = 127.0.0.1, the probes' own
#   ATTACK_NICE=10             attackers' nice value (they share the 2 cores with the server)
#   ATTACK_PROCS=2             processes per connection attack (slowloris, flood, upload)
#   ATTACK_SLOWLORIS_CLIENTS=1500  ATTACK_FLOOD_CLIENTS=5000  ATTACK_UPLOAD_CLIENTS=200
#   ATTACK_UPLOAD_LENGTH=3000000  ATTACK_UPLOAD_SEND=1000000  ATTACK_BOMB_LOOPS=4
#   ATTACK_BOMB_DEEP_LOOPS=1  ATTACK_BOMB_SIZE=3000000  ATTACK_SLOWREG_RATE=4  ATTACK_SLOWREG_IMAGES=16
#   ATTACK_KEEPALIVE_INTERVAL=0.01  ATTACK_NEWCONN_INTERVAL=0.05   probe pacing (100/s and 20/s)
#   BENCH_SERVER_THREADS=$(nproc)  BENCH_IMAGEGATE_ARGS="--flag value"  BENCH_BODY=bench/pod3.json
#   BENCH_POLICY=policies  BENCH_BUILD_DIR=build-bench  IMAGEGATE_BIN=path  BENCH_RESULTS=<build>/bench-results
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir=$root/bench
build_dir=${BENCH_BUILD_DIR:-$root/build-bench}
py=/usr/bin/python3 # Debian's, whatever python3 comes first on PATH
hard_nofile=$(ulimit -Hn)
nofile_list=${ATTACK_NOFILE:-1024 $hard_nofile}
attacks=${ATTACK_ONLY:-slowloris flood upload bomb slowreg}
ramp=${ATTACK_RAMP:-2}
probe_secs=${ATTACK_PROBE:-8}
settle=${ATTACK_SETTLE:-5}
sources=${ATTACK_SOURCES:-64}
nice_level=${ATTACK_NICE:-10}
procs=${ATTACK_PROCS:-2}
server_threads=${BENCH_SERVER_THREADS:-$(nproc)}
body_file=${BENCH_BODY:-$bench_dir/pod3.json}
policy=${BENCH_POLICY:-$root/policies}

log() { printf 'attack: %s\n' "$*" >&2; }
die() {
  printf 'attack: error: %s\n' "$*" >&2
  exit 2
}
fail() { die "$@"; }
# shellcheck source=bench/lib.sh
. "$bench_dir/lib.sh"

missing=()
for tool in cmake openssl curl; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
[[ -x $py ]] || missing+=("$py")
((${#missing[@]} == 0)) || die "missing ${missing[*]}: run scripts/install-deps.sh"
[[ -f $body_file ]] || die "no request body $body_file"
[[ -e $policy ]] || die "no policies at $policy"

bench_imagegate_binary bench-build.log

bench_mktemp "${TMPDIR:-/tmp}/imagegate-attack.XXXXXX" || die "mktemp failed"
tmp=$bench_tmp
trap 'exit 130' INT
trap 'exit 143' TERM
results=${BENCH_RESULTS:-$build_dir/bench-results}/attack-$(date +%Y%m%dT%H%M%S)
mkdir -p "$results"

log "generating CA and serving certificate"
bench_make_certs "$tmp" || die "openssl failed"
cacert=$tmp/ca.crt
read -r port < <(bench_free_ports 1)

# The black-hole registry: accepts, reads, never answers (its own lifetime ends it after 15 min).
"$py" "$root/tests/fixtures/registry/blackhole.py" "$tmp/blackhole.port" 900 \
  >"$tmp/blackhole.log" 2>&1 &
bench_track $!
for ((i = 0; i < 100; i++)); do [[ -s $tmp/blackhole.port ]] && break; sleep 0.1; done
[[ -s $tmp/blackhole.port ]] || die "blackhole.py did not start"
blackhole=127.0.0.1:$(tr -d '\n' <"$tmp/blackhole.port")
# Default timeouts (connect 2 s, request 5 s): the ClientHello hangs until the request timeout.
printf 'registries:\n  - host: "%s"\n' "$blackhole" >"$tmp/registries.yaml"

ig_args=(serve --listen "127.0.0.1:$port" --tls-cert "$tmp/tls.crt" --tls-key "$tmp/tls.key"
  --policy "$policy" --threads "$server_threads" --registry-config "$tmp/registries.yaml")
read -r -a extra_args <<<"${BENCH_IMAGEGATE_ARGS:-}"
ig_args+=("${extra_args[@]}")

ig_pid=
start_server() { # NOFILE LOG
  # Soft and hard limit both: the server raises its soft limit to the hard one at start.
  (
    ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" # above the hard limit needs root
    exec "$bin" "${ig_args[@]}"
  ) >>"$2" 2>&1 &
  ig_pid=$!
  bench_track "$ig_pid"
  bench_wait_healthy imagegate "$ig_pid" "https://127.0.0.1:$port/healthz" "$2"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# RSS (KiB) and fds of the server every 0.25 s until killed: the peak comes from here.
sampler() {
  while :; do
    printf '%s %s\n' "$(bench_rss_kb "$1")" "$(bench_fd_count "$1")"
    sleep 0.25
  done
}

# The attack's processes for phase $1, started in the background; PIDs in attack_pids.
attack_pids=()
start_attack() { # NAME DIR
  local name=$1 dir=$2 common i share
  common=(--port "$port" --sources "$sources")
  attack_one() { # STATS-NAME ARGS...
    local stats=$dir/attack-$1.json
    shift
    (
      ulimit -Sn "$hard_nofile"
      exec nice -n "$nice_level" "$py" "$bench_dir/attack.py" "$@" --stats "$stats"
    ) >>"$dir/attack.log" 2>&1 &
    attack_pids+=($!)
    bench_track $!
  }
  case $name in
    baseline) ;;
    slowloris | flood | upload)
      local clients
      case $name in
        slowloris) clients=${ATTACK_SLOWLORIS_CLIENTS:-1500} ;;
        flood) clients=${ATTACK_FLOOD_CLIENTS:-5000} ;;
        upload) clients=${ATTACK_UPLOAD_CLIENTS:-200} ;;
      esac
      for ((i = 0; i < procs; i++)); do
        share=$(((clients + procs - 1 - i) / procs))
        attack_one "$name-$i" "$name" "${common[@]}" --clients "$share" \
          --length "${ATTACK_UPLOAD_LENGTH:-3000000}" --send "${ATTACK_UPLOAD_SEND:-1000000}"
      done
      ;;
    bomb)
      for ((i = 0; i < ${ATTACK_BOMB_LOOPS:-4}; i++)); do
        attack_one "flat-$i" bomb "${common[@]}" --kind flat --worker "$i" \
          --size "${ATTACK_BOMB_SIZE:-3000000}"
      done
      for ((i = 0; i < ${ATTACK_BOMB_DEEP_LOOPS:-1}; i++)); do
        attack_one "deep-$i" bomb "${common[@]}" --kind deep --worker "$((i + 100))" \
          --size "${ATTACK_BOMB_SIZE:-3000000}"
      done
      ;;
    slowreg)
      attack_one slowreg slowreg "${common[@]}" --registry "$blackhole" --body "$body_file" \
        --rate "${ATTACK_SLOWREG_RATE:-4}" --images "${ATTACK_SLOWREG_IMAGES:-16}"
      ;;
    *) die "unknown attack '$name' in ATTACK_ONLY" ;;
  esac
}

run_phase() { # NOFILE NAME
  local nofile=$1 name=$2 dir=$results/$1-$2 spid t0 t1 kpid npid log_from
  mkdir -p "$dir"
  log "[$nofile] $name: ramp ${ramp}s, measure ${probe_secs}s, settle ${settle}s"
  log_from=$(wc -l <"$server_log")
  printf 'before %s %s\n' "$(bench_rss_kb "$ig_pid")" "$(bench_fd_count "$ig_pid")" >"$dir/rss.txt"
  sampler "$ig_pid" >"$dir/samples.txt" &
  spid=$!
  bench_track "$spid"
  attack_pids=()
  start_attack "$name" "$dir"
  [[ $name == baseline ]] || sleep "$ramp"
  t0=$(cpu_ticks "$ig_pid")
  "$py" "$bench_dir/attack.py" keepalive --port "$port" --cafile "$cacert" --body "$body_file" \
    --duration "$probe_secs" --interval "${ATTACK_KEEPALIVE_INTERVAL:-0.01}" \
    --stats "$dir/keepalive.json" >>"$dir/probe.log" 2>&1 &
  kpid=$!
  bench_track "$kpid"
  "$py" "$bench_dir/attack.py" newconn --port "$port" --cafile "$cacert" --body "$body_file" \
    --duration "$probe_secs" --interval "${ATTACK_NEWCONN_INTERVAL:-0.05}" \
    --stats "$dir/newconn.json" >>"$dir/probe.log" 2>&1 &
  npid=$!
  bench_track "$npid"
  wait "$kpid" "$npid" || true
  bench_forget "$kpid" "$npid"
  t1=$(cpu_ticks "$ig_pid")
  ((${#attack_pids[@]} == 0)) || bench_stop "${attack_pids[@]}"
  bench_stop "$spid"
  [[ $name == baseline ]] || sleep "$settle"
  printf 'after %s %s\n' "$(bench_rss_kb "$ig_pid")" "$(bench_fd_count "$ig_pid")" >>"$dir/rss.txt"
  {
    echo "nofile=$nofile"
    echo "name=$name"
    echo "cpu_pct=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v s="$probe_secs" 'BEGIN {printf "%.0f", t / hz / s * 100}')"
    echo "max_connections=$max_connections"
    echo "server_nofile=$server_nofile"
    if bench_alive "$ig_pid"; then echo "alive=1"; else echo "alive=0"; fi
  } >"$dir/meta.txt"
  tail -n +"$((log_from + 1))" "$server_log" >"$dir/server.log" || true
  if ! bench_alive "$ig_pid"; then
    log "[$nofile] the server DIED during $name (log: $dir/server.log); restarting it"
    bench_stop "$ig_pid"
    start_server "$nofile" "$server_log"
  fi
}

busy_start=$(bench_busy_pct)
load_start=$(cut -d' ' -f1 /proc/loadavg)
phases=()
for nofile in $nofile_list; do
  [[ " ${phases[*]} " == *" $nofile "* ]] && continue # the hard limit may be 1024 too
  phases+=("$nofile")
  server_log=$tmp/imagegate-$nofile.log
  log "starting imagegate with ulimit -n $nofile (${ig_args[*]})"
  start_server "$nofile" "$server_log"
  server_nofile=$(awk '/^Max open files/ {print $4 "/" $5}' "/proc/$ig_pid/limits")
  max_connections=$(sed -n 's/.*"maxConnections":\([0-9]*\).*"imagegate listening".*/\1/p; s/.*"imagegate listening".*"maxConnections":\([0-9]*\).*/\1/p' "$server_log" | head -1)
  printf 'start %s %s\n' "$(bench_rss_kb "$ig_pid")" "$(bench_fd_count "$ig_pid")" >"$results/$nofile-start.txt"
  run_phase "$nofile" baseline
  for name in $attacks; do run_phase "$nofile" "$name"; done
  cp "$server_log" "$results/"
  bench_stop "$ig_pid"
done
busy_end=$(bench_busy_pct)
load_end=$(cut -d' ' -f1 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# Report
{
  echo
  echo "imagegate under attack  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
  echo "  machine   $(nproc) cores; attackers (nice $nice_level), probes and server share them; other work ${busy_start}% busy before, ${busy_end}% after; load $load_start -> $load_end"
  echo "  server    imagegate serve, $server_threads threads, policies ${policy#"$root"/}${BENCH_IMAGEGATE_ARGS:+, $BENCH_IMAGEGATE_ARGS}; black-hole registry $blackhole"
  echo "  probes    keep-alive: 1 connection, POST $(basename "$body_file") every ${ATTACK_KEEPALIVE_INTERVAL:-0.01}s; new-conn: fresh TLS connection every ${ATTACK_NEWCONN_INTERVAL:-0.05}s;"
  echo "            5 s timeout; success = HTTP 200 and allowed; latency of successes; ${probe_secs}s while each attack runs (after ${ramp}s ramp-up)"
  echo "  attackers from $( ((sources > 0)) && echo "$sources addresses 127.0.1.x" || echo "127.0.0.1 (the probes' own address)")"
} >"$results/header.txt"
"$py" - "$results" "${phases[*]}" "$attacks" "$probe_secs" "$settle" <<'EOF' | cat "$results/header.txt" - | tee "$results/report.txt"
import json, os, sys
results, phases, attacks, probe_secs, settle = (sys.argv[1], sys.argv[2].split(), sys.argv[3].split(),
                                                float(sys.argv[4]), sys.argv[5])

def load(path):
    try:
        return json.load(open(path))
    except Exception:
        return None

def num(v, f="%.1f"):
    return "n/a" if v is None else f % v

def pct(p):
    if not p or p.get("success_pct") is None:
        return "n/a"
    return "%.1f%%" % p["success_pct"] if p["success_pct"] < 100 else "100%"

def attack_summary(d, name):
    stats = [load(os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.startswith("attack-")]
    stats = [s for s in stats if s]
    if name == "baseline":
        return ""
    if not stats:
        return "attacker wrote no stats"
    tot = {}
    for s in stats:
        for k, v in s.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                tot[k] = tot.get(k, 0) + v
    secs = max(s.get("seconds", 1) for s in stats) or 1
    if name in ("slowloris", "flood", "upload"):
        out = "%d connections opened (%.0f/s), %d closed by the server, %d open at the peak" % (
            tot.get("connects", 0), tot.get("connects", 0) / secs, tot.get("closed_by_server", 0),
            tot.get("open_peak", 0))
        if name == "upload":
            out += ", %.0f MB sent" % (tot.get("bytes_sent", 0) / 1e6)
        if tot.get("connect_errors") or tot.get("connect_timeouts"):
            out += ", %d connect errors, %d handshake timeouts" % (tot.get("connect_errors", 0),
                                                                  tot.get("connect_timeouts", 0))
        return out
    if name == "bomb":
        parts = []
        for s in stats:
            st = ",".join("%s x%d" % kv for kv in sorted(s.get("statuses", {}).items()))
            parts.append("%s: %d posts (%s), answer p50 %s ms" % (
                s["mode"] if "kind" not in s else s["kind"], s.get("posts", 0), st or "none",
                num(s.get("answer_p50_ms"), "%.0f")))
        return "; ".join(parts)
    if name == "slowreg":
        s = stats[0]
        out = ("%d reviews sent, %d answered (%d allowed, %d denied, %d errors; %d still waiting 4 s after"
               " the attack stopped), answer p50 %s / p99 %s ms") % (
            s.get("reviews", 0), s.get("answered", 0), s.get("allowed", 0), s.get("denied", 0),
            s.get("errors", 0), s.get("unanswered", 0), num(s.get("answer_p50_ms"), "%.0f"),
            num(s.get("answer_p99_ms"), "%.0f"))
        if s.get("sample_message"):
            out += "\n      a denial: " + s["sample_message"].replace("\n", " | ")[:220]
        return out
    return ""

def server_log_summary(d):
    evicted = refused = accept_failed = 0
    other = {}
    try:
        lines = open(os.path.join(d, "server.log")).read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            j = json.loads(line)
        except ValueError:
            other["(not JSON)"] = other.get("(not JSON)", 0) + 1
            continue
        msg = j.get("msg", "")
        if msg.startswith("connection limit reached"):
            evicted += j.get("evictedSinceLastLog", 0)
            refused += j.get("refusedSinceLastLog", 0)
        elif msg == "accept failed":
            accept_failed += 1
        elif j.get("level") in ("warn", "error"):
            other[msg] = other.get(msg, 0) + 1
    out = "server log: %d evicted, %d refused (its pressure lines: a second late at most), %d accept failures" % (
        evicted, refused, accept_failed)
    if other:
        out += "; " + ", ".join("%s x%d" % kv for kv in sorted(other.items(), key=lambda kv: -kv[1])[:3])
    return out

def rss(d):
    vals = {}
    for line in open(os.path.join(d, "rss.txt")):
        k, r, f = line.split()
        vals[k] = (r, f)
    peak_r = peak_f = None
    for line in open(os.path.join(d, "samples.txt")):
        parts = line.split()
        if len(parts) == 2 and parts[0] != "nan":
            peak_r = max(peak_r or 0, int(parts[0]))
            peak_f = max(peak_f or 0, int(parts[1]))
    def mb(v):
        return None if v in (None, "nan") else int(v) / 1024.0
    def fd(v):
        return None if v in (None, "nan") else int(v)
    b, a = vals.get("before", ("nan", "nan")), vals.get("after", ("nan", "nan"))
    return mb(b[0]), mb(peak_r), mb(a[0]), fd(b[1]), peak_f, fd(a[1])

hdr = "  %-10s | %-7s %7s %7s | %-7s %7s %7s | %-22s | %-17s | %4s | %s" % (
    "attack", "k-a ok", "p50 ms", "p99 ms", "new ok", "p50 ms", "p99 ms", "RSS MB before/peak/after",
    "fds before/peak/af", "CPU%", "targets")
for nofile in phases:
    start = open(os.path.join(results, "%s-start.txt" % nofile)).read().split()
    meta = {}
    try:
        for line in open(os.path.join(results, "%s-baseline" % nofile, "meta.txt")):
            k, _, v = line.strip().partition("=")
            meta[k] = v
    except OSError:
        pass
    print()
    print("server ulimit -n %s (soft/hard in the process: %s), maxConnections %s; at start RSS %.1f MB, %s fds" % (
        nofile, meta.get("server_nofile", "?"), meta.get("max_connections", "?"),
        int(start[1]) / 1024.0, start[2]))
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    notes = []
    for name in ["baseline"] + attacks:
        d = os.path.join(results, "%s-%s" % (nofile, name))
        if not os.path.isdir(d):
            continue
        m = {}
        for line in open(os.path.join(d, "meta.txt")):
            k, _, v = line.strip().partition("=")
            m[k] = v
        ka, nc = load(os.path.join(d, "keepalive.json")), load(os.path.join(d, "newconn.json"))
        rb, rp, ra, fb, fp, fa = rss(d)
        verdicts = []
        if ka is None or ka.get("success_pct") != 100.0 or (ka.get("p99_ms") or 1e9) >= 50:
            verdicts.append("k-a MISSED")
        if name in ("slowloris", "flood") and (nc is None or (nc.get("success_pct") or 0) < 99):
            verdicts.append("new MISSED")
        if name != "baseline" and (ra is None or rb is None or ra > rb * 1.2):
            verdicts.append("RSS MISSED")
        if m.get("alive") != "1":
            verdicts.append("SERVER DIED")
        print("  %-10s | %-7s %7s %7s | %-7s %7s %7s | %6s %7s %7s | %5s %5s %5s | %4s | %s" % (
            name, pct(ka), num(ka and ka.get("p50_ms"), "%.2f"), num(ka and ka.get("p99_ms"), "%.1f"),
            pct(nc), num(nc and nc.get("p50_ms"), "%.2f"), num(nc and nc.get("p99_ms"), "%.1f"),
            num(rb), num(rp), num(ra), num(fb, "%d"), num(fp, "%d"), num(fa, "%d"),
            m.get("cpu_pct", "?"), ", ".join(verdicts) if verdicts else "met"))
        detail = []
        for label, p in (("k-a", ka), ("new", nc)):
            if p and p.get("failed"):
                detail.append("%s failures: %d of %d (%s)" % (label, p["failed"], p["requests"], ", ".join(
                    "%s x%d" % kv for kv in sorted(p["failures"].items(), key=lambda kv: -kv[1]))))
            if p and p.get("reconnects"):
                detail.append("k-a reconnected %d times" % p["reconnects"])
        summary = attack_summary(d, name)
        notes.append("    %-9s %s" % (name + ":", summary or "(no attack)"))
        for line in detail + [server_log_summary(d)]:
            notes.append("    %-9s %s" % ("", line))
    print()
    print("  what each attack did and what the server logged:")
    print("\n".join(notes))
print()
print("  targets: keep-alive 100% and p99 < 50 ms under every attack; new connections >= 99% under")
print("  slowloris and flood; RSS after (attack stopped, %s s settle) within 20%% of before." % settle)
print("  Figures are from one shared 2-core machine: attackers, probes and server compete for it.")
print("  raw outputs: " + results)
EOF
exit 0
