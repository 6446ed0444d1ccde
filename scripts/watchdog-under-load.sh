#!/usr/bin/env bash
# How often the watchdog fires under load (issue 14): starts a release
# Warren, runs loadgen scenarios against it back to back, stops it with
# SIGTERM and prints its shutdown line (watchdog_fires, parked_fires,
# startup_fires, starved_windows; see docs/ARCHITECTURE.md "The glommio
# stall").
#
#   SHARDS=2 SECONDS_EACH=60 ROUNDS=1 scripts/watchdog-under-load.sh
#
# WARREN / LOADGEN name the binaries (default target/release/…); the data
# directory is a fresh one under ./target/tmp (never tmpfs: the
# persistent scenario needs a real filesystem).
set -euo pipefail
cd "$(dirname "$0")/.."
WARREN=${WARREN:-target/release/warren}
LOADGEN=${LOADGEN:-target/release/loadgen}
SHARDS=${SHARDS:-2}
SECONDS_EACH=${SECONDS_EACH:-60}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-5795}
SCENARIOS=${SCENARIOS:-1p1c-16b 4p4c persistent-confirms-1k client-like-16b fanout-10}
mkdir -p target/tmp
data=$(mktemp -d target/tmp/watchdog-load.XXXXXX)
log="$data/warren.log"
"$WARREN" --shards "$SHARDS" --port "$PORT" --management-port off --data-dir "$data/data" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening" "$log" && break; sleep 0.2; done
started=$(date +%s)
for round in $(seq "$ROUNDS"); do
    for s in $SCENARIOS; do
        printf 'round %s %-24s ' "$round" "$s"
        "$LOADGEN" --uri "amqp://guest:guest@127.0.0.1:$PORT/%2f" --scenario "$s" \
            -z "$SECONDS_EACH" --quiet --queue-prefix "wd$round" 2>&1 |
            awk '/receive rate/ { r = $3 } /e2e latency p99 / { p = $4 } END { print "received " r " msg/s, e2e p99 " p " ms" }'
    done
done
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
echo "load: $(($(date +%s) - started)) s, $SHARDS shards, machine load average $(cut -d' ' -f1-3 /proc/loadavg)"
grep "watchdog:" "$log" || echo "no shutdown line (see $log)"
grep -c "made no progress" "$log" | sed 's/^/stall lines: /'
rm -rf "$data"
