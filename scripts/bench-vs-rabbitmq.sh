#!/usr/bin/env bash
# Benchmarks Warren against RabbitMQ with loadgen and writes the results
# into BENCHMARKS.md (between the results markers; text outside them is
# kept).
#
#   scripts/bench-vs-rabbitmq.sh
#
# Environment (all optional):
#   DURATION=10        seconds per throughput run
#   ROUNDS=2           A/B rounds per throughput scenario (memory ones run once)
#   SHARDS=$(nproc)    warren --shards
#   WARREN_PORT=5672   RABBIT_PORT=5673
#   BACKLOG_N=1000000  messages in the backlog scenario
#   CONNS_N=1000       idle connections;  QUEUES_N=20000  idle queues
#   SCENARIOS="..."    which scenarios (default: all of `loadgen scenarios`)
#   CARGO_TARGET_DIR   build directory (default ./target)
#   OUT=BENCHMARKS.md
#
# RabbitMQ: installed with apt-get if missing, started by hand (no
# systemd) on $RABBIT_PORT unless something already answers there. Only
# the brokers this script started are stopped at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
SHARDS=${SHARDS:-$(nproc)}
WARREN_PORT=${WARREN_PORT:-5672}
RABBIT_PORT=${RABBIT_PORT:-5673}
BACKLOG_N=${BACKLOG_N:-1000000}
CONNS_N=${CONNS_N:-1000}
QUEUES_N=${QUEUES_N:-20000}
OUT=${OUT:-BENCHMARKS.md}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
COMMAND="$0 $*"
ENV_USED="DURATION=$DURATION ROUNDS=$ROUNDS SHARDS=$SHARDS BACKLOG_N=$BACKLOG_N CONNS_N=$CONNS_N QUEUES_N=$QUEUES_N"

log() { echo "bench: $*" >&2; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid of the process listening on a TCP port.
listener_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

WARREN_PID=""
STARTED_RABBIT=""
WORK=$(mktemp -d /tmp/warren-bench.XXXXXX)

cleanup() {
    if [ -n "$WARREN_PID" ] && kill -0 "$WARREN_PID" 2>/dev/null; then
        log "stopping warren (pid $WARREN_PID)"
        kill -TERM "$WARREN_PID" || true
        wait "$WARREN_PID" 2>/dev/null || true
    fi
    if [ -n "$STARTED_RABBIT" ]; then
        log "stopping the RabbitMQ this script started"
        su rabbitmq -s /bin/sh -c "RABBITMQ_NODENAME=rabbit@localhost HOME=/tmp/rmq \
            /usr/lib/rabbitmq/bin/rabbitmqctl -n rabbit@localhost stop" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- RabbitMQ
if ! answers "$RABBIT_PORT"; then
    if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
        log "installing rabbitmq-server"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server
    fi
    log "starting RabbitMQ on $RABBIT_PORT"
    mkdir -p /tmp/rmq && chown rabbitmq /tmp/rmq
    # Raise the open-files limit first: idle-connections needs > 1024 sockets.
    su rabbitmq -s /bin/sh -c "ulimit -n \$(ulimit -Hn); RABBITMQ_NODE_PORT=$RABBIT_PORT RABBITMQ_NODENAME=rabbit@localhost \
        RABBITMQ_MNESIA_BASE=/tmp/rmq/mnesia RABBITMQ_LOG_BASE=/tmp/rmq/log \
        RABBITMQ_DIST_PORT=2$RABBIT_PORT HOME=/tmp/rmq /usr/lib/rabbitmq/bin/rabbitmq-server" \
        >/tmp/rmq/out.log 2>&1 &
    STARTED_RABBIT=1
    for _ in $(seq 1 120); do answers "$RABBIT_PORT" && break; sleep 1; done
    answers "$RABBIT_PORT" || { log "RabbitMQ did not come up (see /tmp/rmq/out.log)"; exit 1; }
else
    log "RabbitMQ already answers on $RABBIT_PORT: using it"
fi
RABBIT_PID=$(listener_pid "$RABBIT_PORT")
RABBIT_NOFILE=$(awk '/Max open files/ {print $4}' "/proc/$RABBIT_PID/limits" 2>/dev/null || echo '?')
RABBIT_VERSION=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)

# ---- build
log "building warren and loadgen (release) into $TARGET"
CARGO_TARGET_DIR=$TARGET cargo build --release -p warren -p loadgen >&2
LOADGEN=$TARGET/release/loadgen

# ---- Warren
if answers "$WARREN_PORT"; then
    log "port $WARREN_PORT is taken: stop whatever listens there or set WARREN_PORT"
    exit 1
fi
mkdir -p "$WORK/warren-data"
"$TARGET/release/warren" --bind 127.0.0.1 --port "$WARREN_PORT" --shards "$SHARDS" \
    --data-dir "$WORK/warren-data" 2>"$WORK/warren.log" &
WARREN_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/warren.log" && break; sleep 0.1; done
grep -q "listening on" "$WORK/warren.log" || { cat "$WORK/warren.log" >&2; exit 1; }
log "$(grep 'listening on' "$WORK/warren.log")"

# ---- the suite
A="amqp://guest:guest@127.0.0.1:$WARREN_PORT/%2f"
B="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2f"
ALL="idle-connections-1000 queues-100k 1p1c-16b 1p1c-1k persistent-confirms-1k 4p4c fanout-10 latency-10k backlog"
SCENARIOS=${SCENARIOS:-$ALL}
RESULTS=$WORK/results.md
: >"$RESULTS"
FAILED=""
for s in $SCENARIOS; do
    extra=(-z "$DURATION")
    rounds=$ROUNDS
    case $s in
        idle-connections-*) extra=(--connections "$CONNS_N"); rounds=1 ;;
        queues-*) extra=(--queues "$QUEUES_N"); rounds=1 ;;
        backlog) extra=(--backlog "$BACKLOG_N"); rounds=1 ;;
    esac
    log "scenario $s"
    if ! "$LOADGEN" compare --a "$A" --b "$B" --a-name warren --b-name rabbitmq \
        --a-pid "$WARREN_PID" --b-pid "$RABBIT_PID" --rounds "$rounds" \
        --scenario "$s" "${extra[@]}" --quiet --markdown "$RESULTS" --json "$WORK/$s.json"; then
        FAILED="$FAILED $s"
    fi
    if ! kill -0 "$WARREN_PID" 2>/dev/null; then
        log "warren exited during $s; its log:"
        tail -20 "$WORK/warren.log" >&2
        echo "- **warren exited during $s**" >>"$RESULTS"
        break
    fi
done

# ---- BENCHMARKS.md
MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
{
    echo "<!-- results:begin (generated by scripts/bench-vs-rabbitmq.sh; edit outside these markers) -->"
    echo "## Results"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs ($MODEL), $MEM RAM, $(uname -sr)"
    echo "- brokers: warren $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+uncommitted changes') with --shards $SHARDS; RabbitMQ $RABBIT_VERSION (Debian package, default config)"
    echo "- command: \`$ENV_USED $COMMAND\`"
    echo "- loadgen, Warren and RabbitMQ all share these $(nproc) CPUs; RabbitMQ's open-files limit: $RABBIT_NOFILE"
    [ -n "$FAILED" ] && echo "- scenarios with a failed run:$FAILED"
    echo
    cat "$RESULTS"
    echo "<!-- results:end -->"
} >"$WORK/section.md"

if [ -f "$OUT" ] && grep -q '<!-- results:begin' "$OUT" && grep -q '<!-- results:end -->' "$OUT"; then
    awk -v section="$WORK/section.md" '
        /<!-- results:begin/ { while ((getline line < section) > 0) print line; skip = 1; next }
        /<!-- results:end -->/ { skip = 0; next }
        !skip { print }
    ' "$OUT" >"$WORK/out.md"
    cp "$WORK/out.md" "$OUT"
else
    { echo "# Benchmarks: Warren vs RabbitMQ"; echo; cat "$WORK/section.md"; } >"$OUT"
fi
log "wrote $OUT"
