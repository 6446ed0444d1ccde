#!/usr/bin/env bash
# Issue 15's checks on the lent 16-core `device` machine, in one call:
#   1. the scaling curve as the issue asks (16 queues, 16 producer/consumer
#      pairs, --shards 1 2 4 8 16, loadgen on any CPU);
#   2. the same curve up to 8 shards with loadgen pinned to CPUs 8-15, so
#      the broker's shards (pinned to CPUs 0..N-1) never share a core;
#   3. fairness and low-rate latency on otherwise idle cores: 1p1c and 4p4c
#      flat out and 1p1c at 10 k msg/s against --shards 2, loadgen pinned.
#
#   scripts/device-checks.sh BIN_DIR OUT_DIR
#
# BIN_DIR holds stripped release builds of `warren` and `loadgen` (carried to
# the machine); OUT_DIR receives one tarball. About 2.5 minutes (130 s on
# the 16-CPU machine, 2026-12-01).
set -uo pipefail

BIN=${1:?BIN_DIR}
OUT=${2:?OUT_DIR}
work=$(mktemp -d)
start=$(date +%s)
DURATION=${DURATION:-8}
CPUS=${LOADGEN_CPUS:-8-15}
SCALE_PINNED=${SCALE_PINNED:-"1 2 4 8"}
SCALE_ALL=${SCALE_ALL:-"1 2 4 8 16"}
FAIR_TIME=${FAIR_TIME:-10}

echo "== 1. scaling, loadgen unpinned"
DURATION=$DURATION SHARDS_LIST="$SCALE_ALL" scripts/scaling.sh "$BIN" "$work/unpinned"
echo "== 2. scaling, loadgen on CPUs $CPUS"
DURATION=$DURATION SHARDS_LIST="$SCALE_PINNED" LOADGEN_CPUS=$CPUS scripts/scaling.sh "$BIN" "$work/pinned"

echo "== 3. fairness and low rate, --shards 2, loadgen on CPUs $CPUS"
data=$(mktemp -d)
"$BIN/warren" --shards 2 --port 5799 --management-port 15799 --data-dir "$data" \
    >"$work/warren-fair.log" 2>&1 &
pid=$!
# Wait for the listener (as scripts/scaling.sh does), not a fixed sleep.
for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/5799) 2>/dev/null && break
    sleep 0.1
done
uri="amqp://guest:guest@127.0.0.1:5799/%2f"
run() {
    local name=$1
    shift
    echo "-- $name: $*"
    taskset -c "$CPUS" "$BIN/loadgen" run --uri "$uri" --broker-pid "$pid" --quiet \
        --queue-prefix "$name" --json "$work/$name.json" "$@" 2>&1 | tail -25
}
run 1p1c -x 1 -y 1 -q 1000 -A 100 -z "$FAIR_TIME"
run 4p4c -x 4 -y 4 --queues 4 -q 1000 -A 100 -z "$FAIR_TIME"
run rate10k -x 1 -y 1 -q 1000 -A 100 -r 10000 -z "$FAIR_TIME"
run clientlike -x 1 -y 1 -q 1000 -A 100 --client-like -z "$FAIR_TIME"
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
grep -h "watchdog\|stall" "$work"/*/warren-*.log "$work/warren-fair.log" | tail -20

tar -C "$work" -czf "$OUT/device-checks.tgz" .
echo "done in $(( $(date +%s) - start )) s"
