#!/usr/bin/env bash
# Idle CPU of a broker (issue 15: "an idle broker uses < 1 % of a core").
# Opens CONNS idle AMQP connections (one channel each, heartbeats off) and
# declares QUEUES empty queues, waits SETTLE seconds (Warren's tickers slow
# down after a quiet second), then reads the broker's utime+stime from
# /proc/PID/stat over DURATION seconds and prints the CPU it used as % of one core.
#
#   scripts/idle-cpu.sh                 # starts target/release/warren itself
#   scripts/idle-cpu.sh --pid PID --uri URI   # measures a running broker
#                                       # (RabbitMQ: --pid $(pgrep -f beam.smp | head -1))
#
# Environment (optional): SHARDS=2 CONNS=10 QUEUES=100 DURATION=60 SETTLE=5
# WARREN=target/release/warren PORT=0 (a free port). Needs python3 with pika.
# The queues are named idle-cpu-<pid>-N, exclusive (gone when the
# connections close at the end).
set -euo pipefail

cd "$(dirname "$0")/.."
SHARDS=${SHARDS:-2}
CONNS=${CONNS:-10}
QUEUES=${QUEUES:-100}
DURATION=${DURATION:-60}
SETTLE=${SETTLE:-5}
WARREN=${WARREN:-target/release/warren}
PID=""
URI=""
while [ $# -gt 0 ]; do
    case "$1" in
        --pid) PID=$2; shift 2 ;;
        --uri) URI=$2; shift 2 ;;
        *) echo "idle-cpu: unknown argument $1" >&2; exit 2 ;;
    esac
done
if { [ -n "$PID" ] && [ -z "$URI" ]; } || { [ -z "$PID" ] && [ -n "$URI" ]; }; then
    echo "idle-cpu: give both --pid and --uri, or neither" >&2
    exit 2
fi

STARTED=""
WORK=$(mktemp -d /tmp/idle-cpu.XXXXXX)
HOLDER=""
cleanup() {
    if [ -n "$HOLDER" ]; then
        kill "$HOLDER" 2>/dev/null || true
        wait "$HOLDER" 2>/dev/null || true
    fi
    if [ -n "$STARTED" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "$PID" ]; then
    PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    "$WARREN" --port "$PORT" --shards "$SHARDS" --data-dir "$WORK/data" \
        --management-port off 2>"$WORK/warren.log" &
    PID=$!
    STARTED=1
    URI="amqp://guest:guest@127.0.0.1:$PORT/%2f"
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
fi

# The holder opens the connections and queues, says "ready", then sleeps
# (no client traffic at all) until it is killed.
python3 - "$URI" "$CONNS" "$QUEUES" >"$WORK/holder.out" 2>&1 <<'EOF' &
import os, sys, time, pika
uri, conns, queues = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
params = pika.URLParameters(uri)
params.heartbeat = 0
held = [pika.BlockingConnection(params) for _ in range(conns)]
chans = [c.channel() for c in held]
for i in range(queues):
    chans[i % len(chans)].queue_declare(f"idle-cpu-{os.getpid()}-{i}", exclusive=True)
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
except BaseException:
    pass
EOF
HOLDER=$!
for _ in $(seq 600); do
    grep -q ready "$WORK/holder.out" 2>/dev/null && break
    kill -0 "$HOLDER" 2>/dev/null || { cat "$WORK/holder.out" >&2; exit 1; }
    sleep 0.1
done
grep -q ready "$WORK/holder.out" || { echo "idle-cpu: holder never ready" >&2; exit 1; }
sleep "$SETTLE"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
t0=$(ticks "$PID")
s0=$(date +%s.%N)
sleep "$DURATION"
t1=$(ticks "$PID")
s1=$(date +%s.%N)
python3 - "$t0" "$t1" "$s0" "$s1" "$HZ" "$PID" "$CONNS" "$QUEUES" <<'EOF'
import sys
t0, t1, s0, s1, hz = (float(x) for x in sys.argv[1:6])
pid, conns, queues = sys.argv[6:9]
cpu = (t1 - t0) / hz
wall = s1 - s0
print(f"idle-cpu: pid {pid}, {conns} connections, {queues} queues: "
      f"{cpu:.3f} s CPU in {wall:.1f} s = {100 * cpu / wall:.3f} % of a core")
EOF
