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
#   RECOVERY_N=1000000 persistent messages in the restart-recovery scenario
#   RECOVERY_SIGNALS="TERM KILL"  how the brokers are stopped before the
#                      restart (one recovery-1m run per signal)
#   CONNS_N=1000       idle connections;  QUEUES_N=20000  idle queues
#   SCENARIOS="..."    which scenarios (default: all of the suite below)
#   CARGO_TARGET_DIR   build directory (default ./target)
#   WARREN=… LOADGEN=… release binaries to use (both given: nothing is built)
#   OUT=BENCHMARKS.md
#   SECTION=results    the markers (<!-- SECTION:begin … --> … <!-- SECTION:end -->)
#                      of the part of OUT this run replaces; a SECTION not in
#                      OUT yet is appended to it
#
# RabbitMQ: installed with apt-get if missing, started by hand (no
# systemd) on $RABBIT_PORT unless something already answers there (node
# rabbit$RABBIT_PORT@localhost, data and logs in /tmp/rmq-$RABBIT_PORT).
# Only the brokers this script started are stopped at the end.
#
# recovery-1m restarts both brokers (fill, stop with each signal of
# RECOVERY_SIGNALS, start on the same data, time the recovery, drain), so it
# needs a RabbitMQ this script started: with one that was already running it
# is skipped. It runs first, so every later scenario runs against the
# restarted brokers.
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
RECOVERY_N=${RECOVERY_N:-1000000}
RECOVERY_SIGNALS=${RECOVERY_SIGNALS:-TERM KILL}
OUT=${OUT:-BENCHMARKS.md}
SECTION=${SECTION:-results}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
COMMAND="$0 $*"
ENV_USED="DURATION=$DURATION ROUNDS=$ROUNDS SHARDS=$SHARDS BACKLOG_N=$BACKLOG_N CONNS_N=$CONNS_N QUEUES_N=$QUEUES_N RECOVERY_N=$RECOVERY_N RECOVERY_SIGNALS='$RECOVERY_SIGNALS'"
[ -n "${SCENARIOS:-}" ] && ENV_USED="$ENV_USED SCENARIOS='$SCENARIOS'"
ENV_USED="$ENV_USED SECTION=$SECTION WARREN_PORT=$WARREN_PORT RABBIT_PORT=$RABBIT_PORT"

log() { echo "bench: $*" >&2; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid of the process listening on a TCP port.
listener_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

WARREN_PID=""
STARTED_RABBIT=""
RABBIT_WRAPPER=""   # the su process running rabbitmq-server, when we started it
RMQ_HOME=/tmp/rmq-$RABBIT_PORT
RMQ_NODE=rabbit$RABBIT_PORT@localhost
WORK=$(mktemp -d /tmp/warren-bench.XXXXXX)

cleanup() {
    if [ -n "$WARREN_PID" ] && kill -0 "$WARREN_PID" 2>/dev/null; then
        log "stopping warren (pid $WARREN_PID)"
        kill -TERM "$WARREN_PID" || true
        wait "$WARREN_PID" 2>/dev/null || true
    fi
    if [ -n "$STARTED_RABBIT" ]; then
        log "stopping the RabbitMQ this script started"
        su rabbitmq -s /bin/sh -c "RABBITMQ_NODENAME=$RMQ_NODE HOME=$RMQ_HOME \
            /usr/lib/rabbitmq/bin/rabbitmqctl -n $RMQ_NODE stop" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Starts RabbitMQ in the background (does not wait for it): sets
# RABBIT_WRAPPER. Same node, data and open-files limit every time.
start_rabbit() {
    mkdir -p "$RMQ_HOME" && chown rabbitmq "$RMQ_HOME"
    # Raise the open-files limit first: idle-connections needs > 1024 sockets.
    su rabbitmq -s /bin/sh -c "ulimit -n \$(ulimit -Hn); RABBITMQ_NODE_PORT=$RABBIT_PORT RABBITMQ_NODENAME=$RMQ_NODE \
        RABBITMQ_MNESIA_BASE=$RMQ_HOME/mnesia RABBITMQ_LOG_BASE=$RMQ_HOME/log \
        RABBITMQ_DIST_PORT=2$RABBIT_PORT HOME=$RMQ_HOME /usr/lib/rabbitmq/bin/rabbitmq-server" \
        >>"$RMQ_HOME/out.log" 2>&1 &
    RABBIT_WRAPPER=$!
}

# ---- RabbitMQ
if ! answers "$RABBIT_PORT"; then
    if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
        log "installing rabbitmq-server"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server
    fi
    log "starting RabbitMQ on $RABBIT_PORT (node $RMQ_NODE, data in $RMQ_HOME)"
    start_rabbit
    STARTED_RABBIT=1
    for _ in $(seq 1 120); do answers "$RABBIT_PORT" && break; sleep 1; done
    answers "$RABBIT_PORT" || { log "RabbitMQ did not come up (see $RMQ_HOME/out.log)"; exit 1; }
else
    log "RabbitMQ already answers on $RABBIT_PORT: using it"
fi
RABBIT_PID=$(listener_pid "$RABBIT_PORT")
RABBIT_NOFILE=$(awk '/Max open files/ {print $4}' "/proc/$RABBIT_PID/limits" 2>/dev/null || echo '?')
RABBIT_VERSION=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)

# ---- build (WARREN=… LOADGEN=…: use those binaries instead)
if [ -n "${WARREN:-}" ] && [ -n "${LOADGEN:-}" ]; then
    log "using $WARREN and $LOADGEN (not built here)"
    WARREN_GIVEN=1
else
    log "building warren and loadgen (release) into $TARGET"
    CARGO_TARGET_DIR=$TARGET cargo build --release -p warren -p loadgen >&2
    WARREN=$TARGET/release/warren
    LOADGEN=$TARGET/release/loadgen
fi

# ---- Warren
if answers "$WARREN_PORT"; then
    log "port $WARREN_PORT is taken: stop whatever listens there or set WARREN_PORT"
    exit 1
fi
mkdir -p "$WORK/warren-data"
# Starts Warren in the background (does not wait for it): sets WARREN_PID.
start_warren() {
    "$WARREN" --bind 127.0.0.1 --port "$WARREN_PORT" --shards "$SHARDS" \
        --data-dir "$WORK/warren-data" 2>>"$WORK/warren.log" &
    WARREN_PID=$!
}
start_warren
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/warren.log" && break; sleep 0.1; done
grep -q "listening on" "$WORK/warren.log" || { cat "$WORK/warren.log" >&2; exit 1; }
log "$(grep 'listening on' "$WORK/warren.log")"

# ---- the suite
A="amqp://guest:guest@127.0.0.1:$WARREN_PORT/%2f"
B="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2f"
ALL="recovery-1m idle-connections-1000 queues-100k 1p1c-16b 1p1c-1k persistent-confirms-1k 4p4c fanout-10 client-like-16b client-like-persistent-1k latency-10k backlog"
SCENARIOS=${SCENARIOS:-$ALL}
RESULTS=$WORK/results.md
TARGETS=$WORK/targets.md
: >"$RESULTS"
: >"$TARGETS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
FAILED=""

now_ns() { date +%s%N; }

# Waits (up to 300 s) for a process that is not our child to exit.
wait_gone() {
    for _ in $(seq 1 3000); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

# Whether a process is alive (a zombie child is not).
alive() {
    local st
    st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# Starts broker $1 and runs recover-wait (flags in RW_FLAGS) alongside,
# stopping it if the broker process dies first (status 2 then).
start_and_recover() {
    local name=$1 out=$2 t0 lg watch
    t0=$(now_ns)
    if [ "$name" = warren ]; then start_warren; watch=$WARREN_PID; else start_rabbit; watch=$RABBIT_WRAPPER; fi
    "$LOADGEN" "${RW_FLAGS[@]}" --mode recover-wait --since-unix-ns "$t0" --save "$out" &
    lg=$!
    while alive "$lg"; do
        if ! alive "$watch"; then
            kill "$lg" 2>/dev/null
            wait "$lg" 2>/dev/null
            return 2
        fi
        sleep 0.2
    done
    wait "$lg"
}

# One broker through the restart test: fill, stop with signal $3, start on
# the same data, time the recovery and drain. $1 = warren | rabbitmq,
# $2 = URI. Appends "stop took X s" to $WORK/recovery-$1-$3.stop.
recover_one() {
    local name=$1 uri=$2 sig=$3 pid t0 t1
    local base="$WORK/recovery-$name-$sig"
    local flags=(--scenario recovery-1m --recovery "$RECOVERY_N" --uri "$uri" --quiet)
    if [ "$name" = warren ]; then pid=$WARREN_PID; else pid=$RABBIT_PID; fi
    log "recovery-1m ($name, SIG$sig): fill $RECOVERY_N"
    "$LOADGEN" "${flags[@]}" --broker-pid "$pid" --save "$base.fill" || return 1
    t0=$(now_ns)
    kill "-$sig" "$pid"
    if [ "$name" = warren ]; then
        wait "$pid" 2>/dev/null || true
    else
        wait_gone "$pid" || { log "RabbitMQ did not exit after SIG$sig"; return 1; }
        wait "$RABBIT_WRAPPER" 2>/dev/null || true
    fi
    t1=$(now_ns)
    echo "$(( (t1 - t0) / 1000000 ))" >"$base.stop_ms"
    # loadgen finds the restarted broker's pid from its listening socket
    # (RabbitMQ's is unknown until then), the same way for both.
    RW_FLAGS=("${flags[@]}")
    start_and_recover "$name" "$base.recover"
    local rc=$?
    if [ "$rc" = 2 ]; then
        # The broker exited while starting: say so, then give it one more
        # start on the same data (1 s later) so the data can still be checked.
        local why
        if [ "$name" = warren ]; then why=$(tail -1 "$WORK/warren.log"); else why="see $RMQ_HOME/log"; fi
        log "$name exited while restarting after SIG$sig ($why); starting it once more"
        echo "- **$name exited while restarting after SIG$sig** (\`$why\`); its recovery-1m (SIG$sig) figures come from a second start on the same data 1 s later" >>"$WORK/recovery-notes.md"
        sleep 1
        start_and_recover "$name" "$base.recover"
        rc=$?
    fi
    if [ "$name" = rabbitmq ]; then
        for _ in $(seq 1 600); do answers "$RABBIT_PORT" && break; sleep 0.2; done
        RABBIT_PID=$(listener_pid "$RABBIT_PORT")
    fi
    return $rc
}

recovery_suite() {
    if [ -z "$STARTED_RABBIT" ]; then
        log "recovery-1m skipped: it restarts RabbitMQ, and this one was not started by this script"
        echo "- recovery-1m skipped: the RabbitMQ on $RABBIT_PORT was not started by this script" >>"$RESULTS"
        return 0
    fi
    for sig in $RECOVERY_SIGNALS; do
        local ok=1
        recover_one warren "$A" "$sig" || ok=0
        alive "$WARREN_PID" || { log "warren is not running after the restart"; return 1; }
        recover_one rabbitmq "$B" "$sig" || ok=0
        [ -n "$RABBIT_PID" ] || { log "RabbitMQ is not listening after the restart"; return 1; }
        local w_stop r_stop
        w_stop=$(cat "$WORK/recovery-warren-$sig.stop_ms" 2>/dev/null || echo '?')
        r_stop=$(cat "$WORK/recovery-rabbitmq-$sig.stop_ms" 2>/dev/null || echo '?')
        "$LOADGEN" merge --title "recovery-1m (SIG$sig)" --a-name warren --b-name rabbitmq \
            --intro "Each broker in turn: \`--mode fill\` publishes $RECOVERY_N persistent 16 B messages to a durable queue (confirm window 1000) and waits for every confirm; the broker gets SIG$sig (exit took ${w_stop} ms for warren, ${r_stop} ms for rabbitmq); it is started again on the same data and \`--mode recover-wait\` (started with it) times, from the moment the process was launched, the first completed AMQP handshake and the first passive queue.declare that reports all $RECOVERY_N ready; RSS is read then; then 1 consumer (qos 1000, ack every 100) drains the queue. One run each." \
            --a "$WORK/recovery-warren-$sig.fill" --a "$WORK/recovery-warren-$sig.recover" \
            --b "$WORK/recovery-rabbitmq-$sig.fill" --b "$WORK/recovery-rabbitmq-$sig.recover" \
            --markdown "$RESULTS" >&2 || ok=0
        if [ -f "$WORK/recovery-notes.md" ]; then
            cat "$WORK/recovery-notes.md" >>"$RESULTS"
            echo >>"$RESULTS"
            rm -f "$WORK/recovery-notes.md"
            ok=0
        fi
        [ "$ok" = 1 ] || FAILED="$FAILED recovery-1m(SIG$sig)"
    done
}

for s in $SCENARIOS; do
    if [ "$s" = recovery-1m ]; then
        recovery_suite || { FAILED="$FAILED recovery-1m"; echo "- **a broker did not come back in recovery-1m**" >>"$RESULTS"; break; }
        continue
    fi
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
        --scenario "$s" "${extra[@]}" --quiet --markdown "$RESULTS" --targets "$TARGETS" \
        --json "$WORK/$s.json"; then
        FAILED="$FAILED $s"
    fi
    if ! alive "$WARREN_PID"; then
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
    echo "<!-- $SECTION:begin (generated by scripts/bench-vs-rabbitmq.sh; edit outside these markers) -->"
    if [ "$SECTION" = results ]; then echo "## Results"; else echo "## Results ($SECTION)"; fi
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs ($MODEL), $MEM RAM, $(uname -sr)"
    # The broker's source: the commit, and whether src/ or the crates differ from it.
    WARREN_SRC="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src protocol Cargo.toml Cargo.lock 2>/dev/null || echo '+uncommitted changes to src')"
    if [ -n "${WARREN_GIVEN:-}" ]; then WARREN_LABEL="binary $WARREN (not built by this script; the checkout is at $WARREN_SRC)"; else WARREN_LABEL=$WARREN_SRC; fi
    echo "- brokers: warren $WARREN_LABEL with --shards $SHARDS; RabbitMQ $RABBIT_VERSION (Debian package, default config)"
    echo "- command: \`$ENV_USED $COMMAND\`"
    echo "- loadgen, Warren and RabbitMQ all share these $(nproc) CPUs; RabbitMQ's open-files limit: $RABBIT_NOFILE"
    echo "- load average (1, 5, 15 min) before the suite: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here)"
    echo "- each figure is the median over the successful rounds of its scenario"
    [ -n "$FAILED" ] && echo "- scenarios with a failed run:$FAILED"
    echo
    if [ -s "$TARGETS" ]; then
        echo "### Targets (issue 15), from this run"
        echo
        echo "Generated by \`loadgen compare --targets\` from the medians below (A = warren, B = rabbitmq)."
        echo
        echo "| scenario | target | measured (median) | status |"
        echo "|---|---|---|---|"
        cat "$TARGETS"
        echo
    fi
    cat "$RESULTS"
    echo "<!-- $SECTION:end -->"
} >"$WORK/section.md"

# shellcheck source=scripts/md-section.sh
. "$ROOT/scripts/md-section.sh"
if ! splice_section "$OUT" "$WORK/section.md" "$SECTION"; then
    if [ -f "$OUT" ]; then
        { echo; cat "$WORK/section.md"; } >>"$OUT"
    else
        { echo "# Benchmarks: Warren vs RabbitMQ"; echo; cat "$WORK/section.md"; } >"$OUT"
    fi
fi
log "wrote $OUT"
