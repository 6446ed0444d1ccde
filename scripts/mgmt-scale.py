#!/usr/bin/env python3
"""Declares N non-durable queues against a running broker and reports the
declare rate per range (checkpoints at 1 k, 10 k, 100 k…), then times the
management requests of issue 13 at that scale (each three times).

    scripts/mgmt-scale.py AMQP_PORT MANAGEMENT_PORT [N] [--requests-only]

Declares are no-wait (`queue_declare` without a callback) over one pika
channel, as BENCHMARKS.md's earlier measurement; at each checkpoint a
synchronous passive declare waits until the broker has taken every
declare before it, so the time of a range is the broker's, not the
client's. Queue names: `scale-NNNNNN`.
"""

import subprocess
import sys
import time

import pika


def declare(amqp_port, n):
    params = pika.ConnectionParameters("127.0.0.1", amqp_port, heartbeat=0)
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    checkpoints = [c for c in (1_000, 10_000, 100_000, 1_000_000) if c <= n]
    if n not in checkpoints:
        checkpoints.append(n)
    done, start = 0, time.monotonic()
    for cp in checkpoints:
        t0 = time.monotonic()
        for i in range(done, cp):
            ch._impl.queue_declare(f"scale-{i:06d}", callback=None)
        # Waits for every declare before it.
        ch.queue_declare(f"scale-{cp - 1:06d}", passive=True)
        dt = time.monotonic() - t0
        print(
            f"declares {done + 1}-{cp}: {dt:.2f} s, {(cp - done) / dt:,.0f} declares/s "
            f"(total {time.monotonic() - start:.1f} s)",
            flush=True,
        )
        done = cp
    conn.close()


def timed(cmd):
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    return time.monotonic() - t0, len(out)


def requests(mgmt_port):
    base = f"http://127.0.0.1:{mgmt_port}"
    curl = ["curl", "-sf", "-u", "guest:guest", "-o", "/dev/stdout"]
    for path in (
        "/api/queues?page=1&page_size=100",
        "/api/queues?page=1&page_size=100&sort=messages&sort_reverse=true",
        "/api/queues?page=1&page_size=100&name=scale-0999&sort=name",
        "/api/queues?page=500&page_size=100",
        "/metrics",
    ):
        runs = [timed(curl + [base + path]) for _ in range(3)]
        times = " / ".join(f"{t:.3f}" for t, _ in runs)
        print(f"GET {path}: {times} s ({runs[0][1]:,} bytes)", flush=True)


if __name__ == "__main__":
    amqp, mgmt = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 100_000
    if "--requests-only" not in sys.argv:
        declare(amqp, n)
    requests(mgmt)
