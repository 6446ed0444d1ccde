#!/usr/bin/env bash
# Multi-core scaling of Warren (issue 15): loadgen with 16 queues and 16
# producer/consumer pairs (16 B, prefetch 1000, ack every 100) against
# `warren --shards N` for N in 1 2 4 8 16, one broker per N, on one machine.
# Meant for the lent 16-core machine: one short run does it all (about
# 5 x (DURATION + 5) s).
#
#   scripts/scaling.sh [BIN_DIR] [OUT_DIR]
#
# BIN_DIR holds release builds of `warren` and `loadgen` (default
# target/release). OUT_DIR (default .) receives scaling-N.json (loadgen's
# reports), warren-N.log and scaling.md, the table for BENCHMARKS.md.
#
# Environment (optional): SHARDS_LIST="1 2 4 8 16" DURATION=8 PAIRS=16
# SIZE=16 EXTRA="" (more loadgen flags, e.g. "-f persistent -c 1000")
# LOADGEN_CPUS="" (a taskset CPU list for loadgen, e.g. "8-15": then the
# broker's shards, pinned to CPUs 0..N-1, never share a core with it).
#
# loadgen runs on the same machine (a thread per producer and consumer), so
# at 16 shards it competes with the broker for the cores: the table gives
# the broker's CPU per message beside the rates, the figure that does not
# depend on who else ran.
set -euo pipefail

BIN=${1:-target/release}
OUT_DIR=${2:-.}
SHARDS_LIST=${SHARDS_LIST:-"1 2 4 8 16"}
DURATION=${DURATION:-8}
PAIRS=${PAIRS:-16}
SIZE=${SIZE:-16}
EXTRA=${EXTRA:-}
LOADGEN_CPUS=${LOADGEN_CPUS:-}
PIN=()
if [ -n "$LOADGEN_CPUS" ]; then
    PIN=(taskset -c "$LOADGEN_CPUS")
fi
mkdir -p "$OUT_DIR"

echo "machine: $(nproc) CPUs, kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "run: $PAIRS queues, $PAIRS producers, $PAIRS consumers, ${SIZE} B, ${DURATION} s per shard count, loadgen on CPUs ${LOADGEN_CPUS:-any}"

wait_for_port() {
    local port=$1
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

for n in $SHARDS_LIST; do
    data=$(mktemp -d)
    port=$((5700 + n))
    "$BIN/warren" --shards "$n" --port "$port" --management-port $((15700 + n)) \
        --data-dir "$data" >"$OUT_DIR/warren-$n.log" 2>&1 &
    pid=$!
    if ! wait_for_port "$port"; then
        echo "warren --shards $n did not listen; its log:"
        cat "$OUT_DIR/warren-$n.log"
        kill -9 "$pid" 2>/dev/null || true
        exit 1
    fi
    echo "== --shards $n"
    # shellcheck disable=SC2086
    ${PIN[@]+"${PIN[@]}"} "$BIN/loadgen" run --uri "amqp://guest:guest@127.0.0.1:$port/%2f" \
        -x "$PAIRS" -y "$PAIRS" --queues "$PAIRS" -s "$SIZE" -q 1000 -A 100 \
        -z "$DURATION" --broker-pid "$pid" --quiet --queue-prefix "scale$n" \
        --json "$OUT_DIR/scaling-$n.json" $EXTRA || echo "loadgen failed at --shards $n"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$data"
done

python3 - "$OUT_DIR" $SHARDS_LIST <<'EOF' | tee "$OUT_DIR/scaling.md"
import json, os, sys
out, shards = sys.argv[1], sys.argv[2:]
rows, base = [], None
for n in shards:
    path = os.path.join(out, f"scaling-{n}.json")
    if not os.path.exists(path):
        rows.append(f"| {n} | (no report) | | | | | |")
        continue
    m = json.load(open(path))["metrics"]
    v = lambda k: m.get(k, {}).get("value", float("nan"))
    recv = v("receive rate")
    base = base or recv
    rows.append(
        f"| {n} | {v('publish rate'):,.0f} | {recv:,.0f} | {recv / base:.2f}x "
        f"| {v('broker CPU per msg'):.2f} | {v('broker CPU per wall s'):.2f} "
        f"| {v('e2e latency p99') if 'e2e latency p99' in m else float('nan'):.1f} |"
    )
print("| shards | published msg/s | received msg/s | received vs 1 shard | broker CPU µs/msg | broker cores busy | e2e p99 ms |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
EOF
