#!/usr/bin/python3
"""N AdmissionReviews sent at once over N TLS connections: what a Deployment rollout of N
replicas does to the webhook. Every connection is opened and handshaken first; then a barrier
releases all the requests together. Prints one JSON object: the time from the release to the
last answer, per-request latencies (p50, max), and how many answers were AdmissionReviews that
allowed or denied, so that the caller can tell a fast answer from a failed one.

  burst.py --url https://127.0.0.1:PORT/validate?timeout=30s --cafile CA --body FILE --count 200
"""

import argparse
import http.client
import json
import resource
import ssl
import sys
import threading
import time
import urllib.parse


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    raise_nofile(args.count * 2 + 64)

    url = urllib.parse.urlsplit(args.url)
    path = url.path + ("?" + url.query if url.query else "")
    with open(args.body, "rb") as f:
        body = f.read()
    context = ssl.create_default_context(cafile=args.cafile)

    connections = []
    for _ in range(args.count):
        conn = http.client.HTTPSConnection(url.hostname, url.port, context=context,
                                           timeout=args.timeout)
        conn.connect()
        connections.append(conn)

    barrier = threading.Barrier(args.count + 1)
    latencies = [None] * args.count
    answers = [None] * args.count

    def one(index):
        conn = connections[index]
        barrier.wait()
        start = time.monotonic()
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            review = json.loads(payload)
            answers[index] = "allowed" if review["response"]["allowed"] else "denied"
        except Exception as error:  # reported, not raised: the summary counts failures
            answers[index] = "error: %s" % error
        latencies[index] = time.monotonic() - start

    threads = [threading.Thread(target=one, args=(i,)) for i in range(args.count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    released = time.monotonic()
    for thread in threads:
        thread.join()
    last = time.monotonic() - released
    for conn in connections:
        conn.close()

    ordered = sorted(latencies)
    summary = {
        "count": args.count,
        "lastAnswerSeconds": round(last, 4),
        "p50Seconds": round(ordered[len(ordered) // 2], 4),
        "maxSeconds": round(ordered[-1], 4),
        "allowed": answers.count("allowed"),
        "denied": answers.count("denied"),
        "errors": sorted({a for a in answers if a.startswith("error")})[:3],
    }
    print(json.dumps(summary))
    return 0 if summary["allowed"] + summary["denied"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
