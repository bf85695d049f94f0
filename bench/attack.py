#!/usr/bin/python3
"""Hostile clients and well-behaved probes for bench/attack.sh and bench/soak.sh.

Standard library only; run it with Debian's /usr/bin/python3. Every mode runs until its
--duration ends (0: until SIGTERM/SIGINT) and then writes one JSON object of counters to --stats
(stdout when not given).

  attack.py MODE --port PORT [options]

Attacks (--sources N spreads them over N loopback source addresses 127.0.1.1..., so that they
are N clients; the probes connect from 127.0.0.1):
  slowloris  --clients 1500    TLS handshake, then one header byte every --trickle seconds;
                               reconnect as soon as the server closes
  flood      --clients 5000    plain TCP connections that never send a byte; reconnect when closed
  upload     --clients 200     TLS, announce Content-Length --length, send --send bytes, stall
  bomb       --kind flat|deep  one keep-alive TLS connection posting a --size byte `[{},{},...]`
                               (flat) or `[[[...]]]` (deep) body in a loop
  slowreg    --registry H:P    --rate reviews/s, each a pod with --images containers whose images
                               (a fresh tag every time) live on registry H:P
Probes (measure, do not attack):
  keepalive  one keep-alive connection, sequential POST of --body every --interval seconds
  newconn    a fresh TLS connection (verified against --cafile) for every POST of --body
Both count a request as a success only for HTTP 200 with "allowed":true in the answer, and give
p50/p99/max of the successful requests' latency.
"""
import argparse
import errno
import heapq
import json
import os
import random
import resource
import selectors
import signal
import socket
import ssl
import sys
import threading
import time

stop = threading.Event()


def on_signal(signum, frame):
    stop.set()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def sources(n):
    """N loopback addresses other than 127.0.0.1 (lo holds all of 127/8 on Linux)."""
    if n <= 0:
        return ["127.0.0.1"]
    return ["127.0.%d.%d" % (1 + i // 250, 1 + i % 250) for i in range(n)]


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(q / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def client_context(cafile=None):
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------------------------------------
# Non-blocking connection machinery for the many-connection attacks.

class Conn:
    __slots__ = ("sock", "fd", "tls", "state", "opened", "next_at", "sent", "payload", "source",
                 "index")


class ManyConns:
    """Keeps `clients` connections open against the server, reconnecting every one the server
    closes. Subclasses decide what a connection sends once it is up (`on_ready`, `on_timer`)."""

    tls = True
    connect_timeout = 5.0

    def __init__(self, args):
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.ctx = client_context()
        self.sources = sources(args.sources)
        self.timers = []  # heap of (time, seq, conn)
        self.seq = 0
        self.stats = {"connects": 0, "connect_errors": 0, "established": 0, "closed_by_server": 0,
                      "open_peak": 0, "bytes_sent": 0}
        self.open = set()
        self.port = args.port

    def schedule(self, conn, at):
        self.seq += 1
        conn.next_at = at
        heapq.heappush(self.timers, (at, self.seq, conn))

    def start_one(self, index):
        conn = Conn()
        conn.source = self.sources[index % len(self.sources)]
        conn.tls = None
        conn.sent = 0
        conn.payload = b""
        conn.next_at = None
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sock = s
        conn.fd = s.fileno()  # the selector is keyed by fd: wrap_socket detaches `s`
        conn.index = index
        try:
            s.bind((conn.source, 0))
            rc = s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            self.stats["connect_errors"] += 1
            s.close()
            self.schedule_retry(index)
            return
        if rc not in (0, errno.EINPROGRESS):
            self.stats["connect_errors"] += 1
            s.close()
            self.schedule_retry(index)
            return
        self.stats["connects"] += 1
        conn.state = "connecting"
        conn.opened = time.monotonic()
        self.open.add(conn)
        self.stats["open_peak"] = max(self.stats["open_peak"], len(self.open))
        self.sel.register(conn.fd, selectors.EVENT_WRITE, (conn, index))
        self.schedule(conn, conn.opened + self.connect_timeout)  # connect/handshake watchdog

    def schedule_retry(self, index):
        self.retry.append(index)

    def close(self, conn, index, by_server):
        if conn not in self.open:
            return
        self.open.discard(conn)
        try:
            self.sel.unregister(conn.fd)
        except (KeyError, ValueError):
            pass
        try:
            (conn.tls or conn.sock).close()
        except OSError:
            pass
        if by_server:
            self.stats["closed_by_server"] += 1
        conn.state = "closed"
        if not stop.is_set():
            self.retry.append(index)

    def sock_of(self, conn):
        return conn.tls or conn.sock

    def handshake(self, conn, index):
        try:
            conn.tls.do_handshake()
        except ssl.SSLWantReadError:
            self.sel.modify(conn.fd, selectors.EVENT_READ, (conn, index))
            return
        except ssl.SSLWantWriteError:
            self.sel.modify(conn.fd, selectors.EVENT_WRITE, (conn, index))
            return
        except (ssl.SSLError, OSError):
            self.close(conn, index, True)
            return
        self.ready(conn, index)

    def ready(self, conn, index):
        conn.state = "ready"
        self.stats["established"] += 1
        self.sel.modify(conn.fd, selectors.EVENT_READ, (conn, index))
        self.on_ready(conn, index)

    def on_event(self, conn, index, mask):
        if conn.state == "connecting":
            err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.stats["connect_errors"] += 1
                self.close(conn, index, False)
                return
            if self.tls:
                conn.state = "handshake"
                conn.tls = self.ctx.wrap_socket(conn.sock, server_hostname="localhost",
                                                do_handshake_on_connect=False)
                self.handshake(conn, index)
            else:
                self.ready(conn, index)
            return
        if conn.state == "handshake":
            self.handshake(conn, index)
            return
        if mask & selectors.EVENT_WRITE:
            self.on_writable(conn, index)
            if conn.state == "closed":
                return
        if mask & selectors.EVENT_READ:
            try:
                data = self.sock_of(conn).recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return  # a TLS 1.3 session ticket, no application data
            except (ssl.SSLError, OSError):
                self.close(conn, index, True)
                return
            if not data:
                self.close(conn, index, True)
            else:
                self.on_data(conn, index, data)

    def send(self, conn, index, data):
        try:
            n = self.sock_of(conn).send(data)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return 0
        except (ssl.SSLError, OSError):
            self.close(conn, index, True)
            return -1
        self.stats["bytes_sent"] += n
        return n

    # Hooks
    def on_ready(self, conn, index):
        pass

    def on_timer(self, conn, index):
        pass

    def on_writable(self, conn, index):
        pass

    def on_data(self, conn, index, data):
        pass

    def run(self):
        self.retry = list(range(self.args.clients))
        ramp = max(1, self.args.ramp)  # new connections per loop turn: no SYN storm at start
        while not stop.is_set():
            pending, self.retry = self.retry[:ramp], self.retry[ramp:]
            for index in pending:
                self.start_one(index)
            now = time.monotonic()
            timeout = 0.05 if self.retry else 0.2
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - now))
            for key, mask in self.sel.select(timeout):
                conn, index = key.data
                if conn.state != "closed":
                    self.on_event(conn, index, mask)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                at, _, conn = heapq.heappop(self.timers)
                if conn.state == "closed" or conn.next_at != at:
                    continue
                if conn.state in ("connecting", "handshake"):
                    self.close(conn, conn.index, False)
                    self.stats["connect_timeouts"] = self.stats.get("connect_timeouts", 0) + 1
                    continue
                self.on_timer(conn, conn.index)
        for conn in list(self.open):
            try:
                self.sock_of(conn).close()
            except OSError:
                pass
        self.stats["open_at_end"] = len(self.open)
        return self.stats


class SlowLoris(ManyConns):
    """A request line and one header byte every --trickle seconds: the header never ends."""

    def on_ready(self, conn, index):
        head = b"POST /validate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
        if self.send(conn, index, head) >= 0:
            self.schedule(conn, time.monotonic() + self.args.trickle * random.uniform(0.5, 1.5))

    def on_timer(self, conn, index):
        if self.send(conn, index, b"a") >= 0:
            self.schedule(conn, time.monotonic() + self.args.trickle)


class Flood(ManyConns):
    tls = False


class StalledUpload(ManyConns):
    """Announces --length bytes of body, sends --send of them and stalls."""

    def on_ready(self, conn, index):
        head = ("POST /validate?timeout=10s HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % self.args.length)
        conn.payload = head.encode() + b"[" + b"{}," * (self.args.send // 3)
        conn.sent = 0
        self.on_writable(conn, index)

    def on_writable(self, conn, index):
        while conn.sent < len(conn.payload):
            n = self.send(conn, index, conn.payload[conn.sent:conn.sent + 256 * 1024])
            if n < 0:
                return
            if n == 0:
                break
            conn.sent += n
        if conn.state == "closed":
            return
        events = selectors.EVENT_READ
        if conn.sent < len(conn.payload):
            events |= selectors.EVENT_WRITE
        else:
            conn.payload = b""  # stalled: nothing more will come
        self.sel.modify(conn.fd, events, (conn, index))


# ---------------------------------------------------------------------------------------------
# Blocking HTTP over TLS for the probes, the bombs and the slow-registry reviews.

class HttpError(Exception):
    pass


def read_response(tls):
    """-> (status, body bytes, keep_alive). Content-Length framing only (what imagegate sends)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = tls.recv(65536)
        if not chunk:
            raise HttpError("closed before the response header")
        buf += chunk
        if len(buf) > 65536:
            raise HttpError("response header too large")
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise HttpError("bad status line")
    status = int(parts[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    while len(rest) < length:
        chunk = tls.recv(min(1 << 20, length - len(rest)))
        if not chunk:
            raise HttpError("closed in the response body")
        rest += chunk
    return status, rest[:length], keep


def connect(port, ctx, timeout, source=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                   source_address=(source, 0) if source else None)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def post_bytes(body, path="/validate?timeout=10s", content_type="application/json"):
    return ("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
            % (path, content_type, len(body))).encode() + body


class Probe:
    def __init__(self):
        self.ok_ms = []
        self.failures = {}
        self.n = 0

    def fail(self, why):
        self.failures[why] = self.failures.get(why, 0) + 1

    def result(self, extra=None):
        lat = sorted(self.ok_ms)
        out = {"requests": self.n, "ok": len(lat), "failed": self.n - len(lat),
               "failures": self.failures,
               "success_pct": 100.0 * len(lat) / self.n if self.n else None,
               "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
               "max_ms": lat[-1] if lat else None}
        if extra:
            out.update(extra)
        return out


def classify(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, ssl.SSLError):
        return "tls: " + (e.reason or "error")
    if isinstance(e, HttpError):
        return str(e)
    return type(e).__name__


def paced(interval, duration):
    """Yields at a fixed schedule (no catch-up bursts when late) until duration or stop."""
    start = time.monotonic()
    end = start + duration if duration > 0 else float("inf")
    at = start
    while not stop.is_set() and time.monotonic() < end:
        yield
        at += interval
        now = time.monotonic()
        if at > now:
            stop.wait(at - now)
        else:
            at = now


def probe_keepalive(args):
    body = open(args.body, "rb").read()
    request = post_bytes(body)
    ctx = client_context(args.cafile)
    probe, tls, connects = Probe(), None, 0
    for _ in paced(args.interval, args.duration):
        probe.n += 1
        t0 = time.perf_counter()
        try:
            if tls is None:
                connects += 1
                tls = connect(args.port, ctx, args.timeout)
            tls.sendall(request)
            status, answer, keep = read_response(tls)
            ms = (time.perf_counter() - t0) * 1000
            if status == 200 and b'"allowed":true' in answer:
                probe.ok_ms.append(ms)
            else:
                probe.fail("HTTP %d" % status if status != 200 else "not allowed")
            if not keep:
                tls.close()
                tls = None
        except Exception as e:  # noqa: BLE001 - every failure is counted, then reconnect
            probe.fail(classify(e))
            if tls is not None:
                tls.close()
            tls = None
    if tls is not None:
        tls.close()
    # The first connection is not a failure; every later one means the server dropped us.
    return probe.result({"reconnects": max(0, connects - 1)})


def probe_newconn(args):
    body = open(args.body, "rb").read()
    request = post_bytes(body)
    ctx = client_context(args.cafile)
    probe = Probe()
    for _ in paced(args.interval, args.duration):
        probe.n += 1
        t0 = time.perf_counter()
        tls = None
        try:
            tls = connect(args.port, ctx, args.timeout)
            tls.sendall(request)
            status, answer, _ = read_response(tls)
            ms = (time.perf_counter() - t0) * 1000
            if status == 200 and b'"allowed":true' in answer:
                probe.ok_ms.append(ms)
            else:
                probe.fail("HTTP %d" % status if status != 200 else "not allowed")
        except Exception as e:  # noqa: BLE001
            probe.fail(classify(e))
        finally:
            if tls is not None:
                try:
                    tls.close()
                except OSError:
                    pass
    return probe.result()


def bomb_body(kind, size):
    if kind == "flat":
        n = max(1, (size - 2) // 3)
        return b"[" + b"{}," * (n - 1) + b"{}]"
    depth = max(1, size // 2)
    return b"[" * depth + b"]" * depth


def bomb(args):
    request = post_bytes(bomb_body(args.kind, args.size))
    ctx = client_context()
    src = sources(args.sources)[args.worker % len(sources(args.sources))]
    stats = {"kind": args.kind, "posts": 0, "statuses": {}, "errors": 0, "bytes_each": len(request)}
    lat = []
    tls = None
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            if tls is None:
                tls = connect(args.port, ctx, 30, source=src)
            tls.sendall(request)
            status, _, keep = read_response(tls)
            lat.append((time.perf_counter() - t0) * 1000)
            stats["posts"] += 1
            key = str(status)
            stats["statuses"][key] = stats["statuses"].get(key, 0) + 1
            if not keep:
                tls.close()
                tls = None
        except Exception:  # noqa: BLE001
            stats["errors"] += 1
            if tls is not None:
                tls.close()
            tls = None
            stop.wait(0.05)
    lat.sort()
    stats["answer_p50_ms"] = percentile(lat, 50)
    return stats


def slowreg_body(template, registry, images, serial):
    review = json.loads(template)
    spec = review["request"]["object"]["spec"]
    review["request"]["uid"] = "slowreg-%d" % serial
    spec["securityContext"] = {}  # leave the user to the image: the rule needs the image config
    base = spec["containers"][0]
    containers = []
    for i in range(images):
        c = dict(base)
        c.pop("securityContext", None)
        c["name"] = "c%d" % i
        c["image"] = "%s/slow/app-%d:r%d" % (registry, i, serial)
        containers.append(c)
    spec["containers"] = containers
    spec.pop("initContainers", None)
    return json.dumps(review).encode()


def slowreg(args):
    template = open(args.body, "rb").read()
    ctx = client_context()
    lock = threading.Lock()
    stats = {"reviews": 0, "answered": 0, "allowed": 0, "denied": 0, "errors": 0, "statuses": {}}
    lat = []
    threads = []
    src = sources(args.sources)[0]

    def one(serial):
        request = post_bytes(slowreg_body(template, args.registry, args.images, serial))
        t0 = time.perf_counter()
        tls = None
        try:
            tls = connect(args.port, ctx, 40, source=src)
            tls.sendall(request)
            status, answer, _ = read_response(tls)
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                stats["answered"] += 1
                lat.append(ms)
                stats["statuses"][str(status)] = stats["statuses"].get(str(status), 0) + 1
                if b'"allowed":true' in answer:
                    stats["allowed"] += 1
                elif b'"allowed":false' in answer:
                    stats["denied"] += 1
                if "sample_message" not in stats and b'"message"' in answer:
                    try:
                        stats["sample_message"] = json.loads(answer)["response"]["status"][
                            "message"][:300]
                    except Exception:  # noqa: BLE001
                        pass
        except Exception:  # noqa: BLE001
            with lock:
                stats["errors"] += 1
        finally:
            if tls is not None:
                tls.close()

    serial = 0
    for _ in paced(1.0 / args.rate, args.duration):
        serial += 1
        t = threading.Thread(target=one, args=(serial,), daemon=True)
        t.start()
        threads.append(t)
        threads = [t for t in threads if t.is_alive()]
    stats["reviews"] = serial
    stats["in_flight_at_stop"] = sum(1 for t in threads if t.is_alive())
    # Give the reviews in flight a few seconds to be answered (attack.sh allows 5 s to stop).
    deadline = time.monotonic() + args.join
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stats["unanswered"] = sum(1 for t in threads if t.is_alive())
    with lock:
        lat.sort()
        stats["answer_p50_ms"] = percentile(lat, 50)
        stats["answer_p99_ms"] = percentile(lat, 99)
    return stats


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["slowloris", "flood", "upload", "bomb", "slowreg",
                                    "keepalive", "newconn"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile")
    p.add_argument("--body", help="AdmissionReview to POST (probes, slowreg template)")
    p.add_argument("--duration", type=float, default=0, help="seconds; 0 = until SIGTERM")
    p.add_argument("--stats", help="write the JSON result here")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--sources", type=int, default=64)
    p.add_argument("--ramp", type=int, default=200, help="new connections per event-loop turn")
    p.add_argument("--trickle", type=float, default=1.0)
    p.add_argument("--length", type=int, default=3000000)
    p.add_argument("--send", type=int, default=1000000)
    p.add_argument("--kind", choices=["flat", "deep"], default="flat")
    p.add_argument("--size", type=int, default=3000000)
    p.add_argument("--worker", type=int, default=0)
    p.add_argument("--registry")
    p.add_argument("--rate", type=float, default=4)
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--join", type=float, default=4.0, help="slowreg: wait for answers after stop")
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    nofile = raise_nofile()
    if args.duration > 0:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    t0 = time.monotonic()
    if args.mode == "slowloris":
        result = SlowLoris(args).run()
    elif args.mode == "flood":
        result = Flood(args).run()
    elif args.mode == "upload":
        result = StalledUpload(args).run()
    elif args.mode == "bomb":
        result = bomb(args)
    elif args.mode == "slowreg":
        result = slowreg(args)
    elif args.mode == "keepalive":
        result = probe_keepalive(args)
    else:
        result = probe_newconn(args)
    result["mode"] = args.mode
    result["seconds"] = round(time.monotonic() - t0, 2)
    result["client_nofile"] = nofile
    text = json.dumps(result)
    if args.stats:
        with open(args.stats + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(args.stats + ".tmp", args.stats)
    else:
        print(text)
    sys.stdout.flush()
    os._exit(0)  # do not wait for slow-registry threads still blocked on the server


if __name__ == "__main__":
    main()
