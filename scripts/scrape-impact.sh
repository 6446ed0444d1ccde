#!/usr/bin/env bash
# Does scraping /metrics every second change loadgen's 1p1c figures?
# Against one Warren that this script starts, alternates a loadgen run
# without and a run with a scraper (curl /metrics and /metrics/per-object
# once a second), the order swapped every round, and prints each run and
# the medians of each group.
#
#   scripts/scrape-impact.sh
#
# Environment (all optional):
#   WARREN=target/release/warren   LOADGEN=target/release/loadgen
#   SHARDS=2  ROUNDS=5  SECONDS_PER_RUN=10  SCENARIO=1p1c-16b
#   PORT=25800 (management: PORT + 10)
set -euo pipefail

cd "$(dirname "$0")/.."
WARREN=${WARREN:-target/release/warren}
LOADGEN=${LOADGEN:-target/release/loadgen}
SHARDS=${SHARDS:-2}
ROUNDS=${ROUNDS:-5}
RUN_S=${SECONDS_PER_RUN:-10}
SCENARIO=${SCENARIO:-1p1c-16b}
PORT=${PORT:-25800}
MGMT=$((PORT + 10))
WORK=$(mktemp -d)

"$WARREN" --port "$PORT" --management-port "$MGMT" --shards "$SHARDS" \
    --data-dir "$WORK/data" >"$WORK/broker.log" 2>&1 &
BROKER=$!
SCRAPER=""
cleanup() {
    [ -n "$SCRAPER" ] && kill "$SCRAPER" 2>/dev/null || true
    kill "$BROKER" 2>/dev/null || true
    wait "$BROKER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$MGMT/metrics" && break
    sleep 0.1
done

scrape() {
    while true; do
        curl -s -o /dev/null "http://127.0.0.1:$MGMT/metrics" || true
        curl -s -o /dev/null "http://127.0.0.1:$MGMT/metrics/per-object" || true
        sleep 1
    done
}

run() { # $1: plain | scraped, $2: round
    if [ "$1" = scraped ]; then
        scrape &
        SCRAPER=$!
    fi
    "$LOADGEN" --uri "amqp://guest:guest@127.0.0.1:$PORT/%2f" --scenario "$SCENARIO" \
        -z "$RUN_S" --broker-pid "$BROKER" --json "$WORK/$1-$2.json" >/dev/null 2>&1
    if [ -n "$SCRAPER" ]; then
        kill "$SCRAPER" 2>/dev/null || true
        wait "$SCRAPER" 2>/dev/null || true
        SCRAPER=""
    fi
}

for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
        run plain "$r"
        run scraped "$r"
    else
        run scraped "$r"
        run plain "$r"
    fi
done

python3 - "$WORK" "$ROUNDS" <<'EOF'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
keys = ["publish rate", "receive rate", "e2e latency p99"]
groups = {"plain": [], "scraped": []}
for r in range(1, rounds + 1):
    for g in groups:
        m = json.load(open(f"{work}/{g}-{r}.json"))["metrics"]
        row = [m[k]["value"] for k in keys]
        groups[g].append(row)
        print(f"round {r} {g:8s} " + "  ".join(f"{k} {v:,.1f}" for k, v in zip(keys, row)))
for g, rows in groups.items():
    med = [statistics.median(col) for col in zip(*rows)]
    print(f"median {g:8s} " + "  ".join(f"{k} {v:,.1f}" for k, v in zip(keys, med)))
EOF
