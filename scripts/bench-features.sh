#!/usr/bin/env bash
# Runs loadgen's queue-feature scenarios (ttl-expiry, nack-requeue,
# dlx-fan-in by reject and by TTL, delayed, ttl-1m-memory) against a Warren
# this script starts and a RabbitMQ that is already running, and writes the
# tables into BENCHMARKS.md between the features markers (text outside
# them, and the results of scripts/bench-vs-rabbitmq.sh, are kept).
#
#   scripts/bench-features.sh
#
# Environment (all optional):
#   RABBIT_URI=amqp://guest:guest@127.0.0.1:5680/%2f   a running RabbitMQ
#   RABBIT_PID         its pid (default: whoever listens on the URI's port)
#   SHARDS=2           warren --shards (Warren gets a free port, a temp data dir)
#   DURATION=5         seconds of publishing in ttl-expiry and delayed
#   ROUNDS=2           A/B rounds of the rate scenarios (ttl-1m-memory runs once)
#   NACK_N=100000      messages in nack-requeue;  FANIN_N=25000 per source
#   TTL_MEMORY_N=1000000  TTL_MEMORY_TTL=120000 (ms)  TTL_MEMORY_SIZE=1024
#   RSS_BOUND_MIB=64   Warren's ttl-1m-memory run fails if its RSS grows more
#                      (the default --memory-budget of 16 MiB, plus 48 MiB for I/O buffers)
#   SCENARIOS="..."    a subset of: ttl-expiry nack-requeue dlx-fan-in
#                      dlx-fan-in-ttl delayed ttl-1m-memory
#   OUT=BENCHMARKS.md
#
# delayed runs against RabbitMQ too, where it fails at setup (3.10.8 here
# has no rabbitmq_delayed_message_exchange plugin): the table says so
# instead of showing a comparison.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
RABBIT_URI=${RABBIT_URI:-amqp://guest:guest@127.0.0.1:5680/%2f}
SHARDS=${SHARDS:-2}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
NACK_N=${NACK_N:-100000}
FANIN_N=${FANIN_N:-25000}
TTL_MEMORY_N=${TTL_MEMORY_N:-1000000}
TTL_MEMORY_TTL=${TTL_MEMORY_TTL:-120000}
TTL_MEMORY_SIZE=${TTL_MEMORY_SIZE:-1024}
RSS_BOUND_MIB=${RSS_BOUND_MIB:-64}
OUT=${OUT:-BENCHMARKS.md}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ALL="ttl-expiry nack-requeue dlx-fan-in dlx-fan-in-ttl delayed ttl-1m-memory"
SCENARIOS=${SCENARIOS:-$ALL}
ENV_USED="SHARDS=$SHARDS DURATION=$DURATION ROUNDS=$ROUNDS NACK_N=$NACK_N FANIN_N=$FANIN_N TTL_MEMORY_N=$TTL_MEMORY_N TTL_MEMORY_TTL=$TTL_MEMORY_TTL TTL_MEMORY_SIZE=$TTL_MEMORY_SIZE RSS_BOUND_MIB=$RSS_BOUND_MIB"

log() { echo "bench-features: $*" >&2; }

RABBIT_PORT=$(echo "$RABBIT_URI" | sed -E 's#^amqps?://([^@]*@)?[^:/]+:([0-9]+).*#\2#')
RABBIT_PID=${RABBIT_PID:-$(ss -Hltnp "sport = :$RABBIT_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)}
[ -n "$RABBIT_PID" ] || { log "nothing listens on port $RABBIT_PORT ($RABBIT_URI)"; exit 1; }
RABBIT_VERSION=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)

log "building warren and loadgen (release) into $TARGET"
CARGO_TARGET_DIR=$TARGET cargo build --release -p warren -p loadgen >&2
LOADGEN=$TARGET/release/loadgen

WORK=$(mktemp -d /tmp/warren-bench-features.XXXXXX)
WARREN_PID=""
cleanup() {
    if [ -n "$WARREN_PID" ] && kill -0 "$WARREN_PID" 2>/dev/null; then
        kill -TERM "$WARREN_PID" || true
        wait "$WARREN_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$TARGET/release/warren" --bind 127.0.0.1 --port 0 --admin-port off --shards "$SHARDS" \
    --data-dir "$WORK/warren-data" 2>>"$WORK/warren.log" &
WARREN_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/warren.log" && break; sleep 0.1; done
WARREN_PORT=$(grep -o 'listening on [0-9.]*:[0-9]*' "$WORK/warren.log" | head -1 | sed 's/.*://')
[ -n "$WARREN_PORT" ] || { cat "$WORK/warren.log" >&2; exit 1; }
log "warren (pid $WARREN_PID) on port $WARREN_PORT; RabbitMQ (pid $RABBIT_PID) on $RABBIT_PORT"
A="amqp://guest:guest@127.0.0.1:$WARREN_PORT/%2f"
B=$RABBIT_URI
RESULTS=$WORK/results.md
: >"$RESULTS"
FAILED=""

compare() { # title, rounds, loadgen flags…
    local title=$1 rounds=$2
    shift 2
    log "$title"
    echo "#### $title" >>"$RESULTS"
    "$LOADGEN" compare --a "$A" --b "$B" --a-name warren --b-name rabbitmq \
        --a-pid "$WARREN_PID" --b-pid "$RABBIT_PID" --rounds "$rounds" \
        --queue-prefix bench-features --quiet --markdown "$WORK/section.md" "$@" >&2
}

# The compare section under a title of our own (its "### scenario" heading
# would repeat the scenario name for the two dlx-fan-in variants).
append_section() {
    if [ -f "$WORK/section.md" ]; then
        tail -n +2 "$WORK/section.md" >>"$RESULTS"
        rm -f "$WORK/section.md"
    else
        echo "- **no table: loadgen wrote none (see the log)**" >>"$RESULTS"
        echo >>"$RESULTS"
    fi
}

for s in $SCENARIOS; do
    case $s in
        ttl-expiry)
            compare "ttl-expiry (x-message-ttl 100 ms, dead-lettered, $DURATION s flood)" "$ROUNDS" \
                --scenario ttl-expiry -z "$DURATION" || FAILED="$FAILED $s"
            append_section ;;
        nack-requeue)
            compare "nack-requeue ($NACK_N messages, each requeued 3 times)" "$ROUNDS" \
                --scenario nack-requeue -C "$NACK_N" || FAILED="$FAILED $s"
            append_section ;;
        dlx-fan-in)
            compare "dlx-fan-in by reject (8 sources x $FANIN_N)" "$ROUNDS" \
                --scenario dlx-fan-in -C "$FANIN_N" || FAILED="$FAILED $s"
            append_section ;;
        dlx-fan-in-ttl)
            compare "dlx-fan-in by TTL (8 sources x $FANIN_N, x-message-ttl 100 ms)" "$ROUNDS" \
                --scenario dlx-fan-in --dlx-via ttl --ttl 100 -C "$FANIN_N" || FAILED="$FAILED $s"
            append_section ;;
        delayed)
            # RabbitMQ is expected to fail here (no plugin): not a failure.
            compare "delayed (Warren only: x-delay 0-2000 ms, 5,000 msg/s for $DURATION s)" 1 \
                --scenario delayed -z "$DURATION" || true
            append_section
            echo "- RabbitMQ $RABBIT_VERSION here has no rabbitmq_delayed_message_exchange plugin: the run against it fails at exchange.declare, so there is no comparison." >>"$RESULTS"
            echo >>"$RESULTS" ;;
        ttl-1m-memory)
            log "ttl-1m-memory: $TTL_MEMORY_N x $TTL_MEMORY_SIZE B, TTL $TTL_MEMORY_TTL ms"
            echo "#### ttl-1m-memory" >>"$RESULTS"
            mem_flags=(--scenario ttl-1m-memory --backlog "$TTL_MEMORY_N" --ttl "$TTL_MEMORY_TTL"
                -s "$TTL_MEMORY_SIZE" --queue-prefix bench-features --quiet)
            ok=1
            "$LOADGEN" "${mem_flags[@]}" --uri "$A" --broker-pid "$WARREN_PID" \
                --rss-bound-mib "$RSS_BOUND_MIB" --save "$WORK/ttlmem-warren" >&2 || ok=0
            "$LOADGEN" "${mem_flags[@]}" --uri "$B" --broker-pid "$RABBIT_PID" \
                --save "$WORK/ttlmem-rabbitmq" >&2 || ok=0
            "$LOADGEN" merge --title "ttl-1m-memory ($TTL_MEMORY_N x $TTL_MEMORY_SIZE B, x-message-ttl $TTL_MEMORY_TTL ms)" \
                --a-name warren --b-name rabbitmq \
                --intro "Each broker in turn: publish $TTL_MEMORY_N transient $TTL_MEMORY_SIZE B messages (confirm window 1000) into a queue with x-message-ttl $TTL_MEMORY_TTL ms nobody consumes, check all are queued, then wait until the queue is empty; broker RSS sampled every 100 ms. Warren's run fails if its RSS grows more than $RSS_BOUND_MIB MiB over its RSS before (the default --memory-budget is 16 MiB); a failed run's figures are still shown. One run each." \
                --keep-failed --a "$WORK/ttlmem-warren" --b "$WORK/ttlmem-rabbitmq" --markdown "$WORK/section.md" >&2 || ok=0
            append_section
            [ "$ok" = 1 ] || FAILED="$FAILED $s" ;;
        *) log "unknown scenario $s"; exit 2 ;;
    esac
    kill -0 "$WARREN_PID" 2>/dev/null || { log "warren exited during $s"; tail -20 "$WORK/warren.log" >&2; FAILED="$FAILED warren-exited"; break; }
done

MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "<!-- features:begin (generated by scripts/bench-features.sh; edit outside these markers) -->"
    echo "## Queue-feature results"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs ($MODEL), shared by loadgen, both brokers and other work"
    echo "- brokers: warren $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+uncommitted changes') with --shards $SHARDS; RabbitMQ $RABBIT_VERSION"
    echo "- command: \`$ENV_USED scripts/bench-features.sh\`"
    [ -n "$FAILED" ] && echo "- scenarios with a failed run:$FAILED"
    echo
    cat "$RESULTS"
    echo "<!-- features:end -->"
} >"$WORK/features.md"

# shellcheck source=scripts/md-section.sh
. "$ROOT/scripts/md-section.sh"
if ! splice_section "$OUT" "$WORK/features.md" features; then
    { echo; cat "$WORK/features.md"; } >>"$OUT"
fi
log "wrote $OUT"
[ -z "$FAILED" ]
