# bench/lib.sh: what the bench scripts share (run.sh, registry_bench.sh, attack.sh, soak.sh).
# Sourced, not run. The sourcing script sets `root` (the repository) and `build_dir`, and defines
#   log MESSAGE    one progress line on stderr
#   fail MESSAGE   give up; must not return (run.sh's exits 2, registry_bench.sh's exits 0)
# shellcheck shell=bash

# ---------------------------------------------------------------------------------------------
# The binary: $IMAGEGATE_BIN, else a Release build of the imagegate target in $build_dir (tests
# off, -DIMAGEGATE_WERROR=OFF: warnings are the test build's business). Sets `bin`.
#   bench_imagegate_binary BUILD_LOG_NAME    (the build's output goes to $build_dir/BUILD_LOG_NAME)
bench_imagegate_binary() {
  local build_log=$build_dir/${1:-bench-build.log} candidate
  if [[ -n ${IMAGEGATE_BIN:-} ]]; then
    bin=$IMAGEGATE_BIN
  else
    mkdir -p "$build_dir" || fail "cannot create $build_dir"
    if [[ ! -f $build_dir/CMakeCache.txt ]]; then
      log "configuring $build_dir (Release)"
      cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DIMAGEGATE_BUILD_TESTS=OFF \
        -DIMAGEGATE_WERROR=OFF >"$build_dir/bench-configure.log" 2>&1 || {
        tail -40 "$build_dir/bench-configure.log" >&2
        fail "cmake configure failed (log: $build_dir/bench-configure.log)"
      }
    fi
    log "building imagegate in $build_dir"
    cmake --build "$build_dir" -j"$(nproc)" --target imagegate >"$build_log" 2>&1 || {
      tail -40 "$build_log" >&2
      fail "build failed (log: $build_log)"
    }
    # The executable's folder depends on the CMake files' version (older ones put it in webhook/),
    # and a build dir may hold both: take the newest one built.
    bin=
    for candidate in "$build_dir/imagegate" "$build_dir/webhook/imagegate"; do
      if [[ -x $candidate && (-z $bin || $candidate -nt $bin) ]]; then bin=$candidate; fi
    done
    [[ -n $bin ]] || fail "built, but found no imagegate binary under $build_dir"
  fi
  [[ -x $bin ]] || fail "no imagegate binary at '$bin' (not executable)"
}

# ---------------------------------------------------------------------------------------------
# A temporary directory, and the processes started from this shell, cleaned up on exit.
#   bench_mktemp TEMPLATE      mktemp -d TEMPLATE -> $bench_tmp; installs the EXIT trap
#   bench_track PID            stop PID on exit (SIGTERM, 5 s, then SIGKILL)
#   bench_stop PID...          stop those now, and forget them (a reaped PID may be reused)
#   bench_forget PID...        forget those (already waited for)
#   bench_on_exit COMMAND      run COMMAND (eval'd) at exit, before the processes are stopped
bench_tmp=
bench_pids=()
bench_exit_hooks=()

bench_track() { bench_pids+=("$1"); }

bench_on_exit() { bench_exit_hooks+=("$1"); }

# TERM to all first, so they stop in parallel, then wait for each (5 s) and KILL what is left.
bench_terminate() {
  local pid i
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

bench_forget() { # PID...: no longer stop those at exit (they have been waited for)
  local pid kept=() forget
  ((${#bench_pids[@]} > 0)) || return 0
  for pid in "${bench_pids[@]}"; do
    for forget in "$@"; do [[ $pid == "$forget" ]] && continue 2; done
    kept+=("$pid")
  done
  bench_pids=("${kept[@]}")
}

bench_stop() {
  bench_forget "$@"
  bench_terminate "$@"
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
bench_cleanup() {
  local hook
  for hook in "${bench_exit_hooks[@]}"; do eval "$hook" || true; done
  ((${#bench_pids[@]} == 0)) || bench_terminate "${bench_pids[@]}"
  bench_pids=()
  [[ -z $bench_tmp ]] || rm -rf -- "$bench_tmp"
}

bench_mktemp() {
  bench_tmp=$(mktemp -d "$1") || return 1
  trap bench_cleanup EXIT
}

# ---------------------------------------------------------------------------------------------
# TLS: a throwaway CA and a P-256 serving certificate for 127.0.0.1 and localhost, in DIR:
# ca.crt, tls.crt, tls.key (openssl CLI; its output in DIR/openssl.log, printed on failure).
#   bench_make_certs DIR || fail ...
bench_make_certs() {
  local dir=$1
  (
    cd "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj "/CN=imagegate bench CA" -keyout ca.key -out ca.crt \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=localhost" -keyout tls.key -out tls.csr
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >tls.ext
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile tls.ext -out tls.crt
  ) >"$dir/openssl.log" 2>&1 || {
    cat "$dir/openssl.log" >&2
    return 1
  }
  chmod 0644 "$dir/tls.crt" "$dir/ca.crt"
}

# N free loopback ports on one line (all sockets held open while picking, so they differ).
#   read -r a b < <(bench_free_ports 2)
bench_free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# ---------------------------------------------------------------------------------------------
# Processes and servers.
bench_alive() { kill -0 "$1" 2>/dev/null; }

# Wait (30 s) for URL to answer 2xx over TLS verified with $cacert; fail if PID exits first.
#   bench_wait_healthy NAME PID URL LOG
bench_wait_healthy() {
  local i
  for ((i = 0; i < 150; i++)); do
    if curl -fsS --max-time 2 --cacert "$cacert" -o /dev/null "$3" 2>/dev/null; then return 0; fi
    if ! bench_alive "$2"; then
      cat "$4" >&2 || true
      fail "$1 exited before answering $3"
    fi
    sleep 0.2
  done
  cat "$4" >&2 || true
  fail "$1 did not answer $3 within 30 s"
}

# Resident memory (KiB, VmRSS) and open file descriptors of a process; "nan" when it is gone.
bench_rss_kb() { awk '/^VmRSS:/ {print $2; found = 1} END {if (!found) print "nan"}' "/proc/$1/status" 2>/dev/null || echo nan; }
bench_fd_count() {
  [[ -d /proc/$1/fd ]] || { echo nan; return 0; }
  find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# How busy the machine is with other work: percent of all CPU busy over 1 s of /proc/stat.
bench_busy_pct() {
  local a b
  a=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " ")
    busy = y[1] - x[1]; idle = y[2] - x[2]
    printf "%.0f", (busy + idle > 0) ? busy * 100 / (busy + idle) : 0}'
}

# Seconds in a wrk/hey duration such as 10s, 2m, 500ms.
seconds_of() {
  awk -v d="$1" 'BEGIN {n = d + 0; u = d; sub(/^[0-9.]+/, "", u)
    print ((u == "ms") ? n / 1000 : (u == "m") ? n * 60 : (u == "h") ? n * 3600 : n)}'
}

# ---------------------------------------------------------------------------------------------
# The registry fixtures' TLS + basic-auth docker-registry (tests/fixtures/registry) in $reg, with
# a docker config.json for imagegate; stopped at exit. Needs $root, $work and $reg; sets host,
# registry_url, ca, cert_dir and creds; calls fail when it cannot.
bench_registry_env() { sed -n "s/^$1=\"\(.*\)\"\$/\1/p" "$reg/registry.env"; }
bench_start_registry() {
  local fixtures=$root/tests/fixtures/registry
  bench_on_exit '[[ -f $reg/registry.env ]] && "$root/tests/fixtures/registry/stop-registry.sh" "$reg" >>"$work/fixture.log" 2>&1'
  export IMAGEGATE_REGISTRY_MAX_LIFETIME=${IMAGEGATE_REGISTRY_MAX_LIFETIME:-1200}
  "$fixtures/start-registry.sh" tls-basic "$reg" >>"$work/fixture.log" 2>&1 ||
    fail "start-registry.sh failed: $(tail -5 "$work/fixture.log")"
  "$fixtures/docker-config.sh" "$reg" >>"$work/fixture.log" 2>&1 || fail "docker-config.sh failed"
  host=$(bench_registry_env REGISTRY_HOST)
  registry_url=$(bench_registry_env REGISTRY_URL)
  ca=$(bench_registry_env REGISTRY_CA)
  cert_dir=$(bench_registry_env REGISTRY_CERT_DIR)
  creds=$(bench_registry_env REGISTRY_USER):$(bench_registry_env REGISTRY_PASSWORD)
  [[ -n $host && -n $ca ]] || fail "cannot read $reg/registry.env"
}
