#!/usr/bin/env bash
# Profiles a release Warren (--shards $SHARDS) with perf while loadgen runs
# one scenario against it, and writes under docs/perf/:
#
#   NAME.svg      a flame graph of the broker's on-CPU stacks (all threads)
#   NAME.top.txt  the top self-time functions, % of the broker's samples
#
#   scripts/perf-flame.sh NAME [loadgen flags…]
#   scripts/perf-flame.sh 1p1c-16b --scenario 1p1c-16b
#   scripts/perf-flame.sh persistent-confirms-1k --scenario persistent-confirms-1k
#
# Needs perf (Debian: linux-perf) and inferno's inferno-collapse-perf and
# inferno-flamegraph on PATH (`cargo install inferno`); CI does not run this.
# Stacks are unwound with DWARF (the release profile keeps line tables,
# `debug = 1`; Rust code has no frame pointers). The data directory is
# under target/ (a disk: loadgen refuses tmpfs for persistent scenarios).
#
# Environment (all optional):
#   DURATION=14   loadgen seconds (perf records the middle of it)
#   RECORD=8      perf seconds, starting 3 s into the run
#   FREQ=999      perf samples per second per CPU
#   SHARDS=2  PORT=5790  CARGO_TARGET_DIR (default ./target)  OUT=docs/perf
#   WARREN=…  LOADGEN=…   binaries to use instead of the release build's
set -euo pipefail

cd "$(dirname "$0")/.."
NAME=${1:?usage: scripts/perf-flame.sh NAME [loadgen flags…]}
shift
DURATION=${DURATION:-14}
RECORD=${RECORD:-8}
FREQ=${FREQ:-999}
SHARDS=${SHARDS:-2}
PORT=${PORT:-5790}
OUT=${OUT:-docs/perf}
TARGET=${CARGO_TARGET_DIR:-$(pwd)/target}
for tool in perf inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null || { echo "perf-flame: $tool not found" >&2; exit 1; }
done
WARREN=${WARREN:-$TARGET/release/warren}
LOADGEN=${LOADGEN:-$TARGET/release/loadgen}
[ -x "$WARREN" ] && [ -x "$LOADGEN" ] ||
    CARGO_TARGET_DIR=$TARGET cargo build --release -p warren -p loadgen >&2

WORK=$(mktemp -d "$TARGET/perf-flame.XXXXXX")
WPID=""
cleanup() {
    if [ -n "$WPID" ] && kill -0 "$WPID" 2>/dev/null; then
        kill -TERM "$WPID" && wait "$WPID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$WARREN" --bind 127.0.0.1 --port "$PORT" --shards "$SHARDS" \
    --data-dir "$WORK/data" 2>"$WORK/warren.log" &
WPID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/warren.log" && break; sleep 0.1; done
grep -q "listening on" "$WORK/warren.log" || { cat "$WORK/warren.log" >&2; exit 1; }

"$LOADGEN" --uri "amqp://guest:guest@127.0.0.1:$PORT/%2f" --broker-pid "$WPID" \
    -z "$DURATION" --quiet "$@" >"$WORK/loadgen.txt" &
LPID=$!
sleep 3
perf record -F "$FREQ" -g --call-graph dwarf,16384 -p "$WPID" -o "$WORK/perf.data" \
    -- sleep "$RECORD" 2>"$WORK/perf.log" >/dev/null
wait "$LPID" || { cat "$WORK/loadgen.txt" >&2; echo "perf-flame: loadgen failed" >&2; exit 1; }

mkdir -p "$OUT"
perf script -i "$WORK/perf.data" 2>/dev/null | inferno-collapse-perf >"$WORK/folded.txt"
inferno-flamegraph --title "warren --shards $SHARDS: $NAME ($*)" <"$WORK/folded.txt" >"$OUT/$NAME.svg"
{
    echo "# warren --shards $SHARDS under loadgen $*"
    echo "# $(git rev-parse --short HEAD)$(git diff --quiet -- src || echo '+uncommitted src'), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# self time, % of the broker's samples (perf report --no-children --sort symbol)"
    grep -E 'rate|broker CPU per msg' "$WORK/loadgen.txt" | sed 's/^/# loadgen: /'
    perf report -i "$WORK/perf.data" --no-children -g none --sort symbol --stdio 2>/dev/null >"$WORK/report.txt"
    grep -m1 '^# Samples' "$WORK/report.txt" || true
    echo "# by object (the kernel is [kernel.kallsyms]):"
    perf report -i "$WORK/perf.data" --no-children -g none --sort dso --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | sed -E 's/[ -]+$//; s/^/#/' | head -6
    echo "# by function:"
    grep -E '^ +[0-9.]+%' "$WORK/report.txt" | sed -E 's/[ -]+$//' | head -30
} >"$OUT/$NAME.top.txt"
echo "perf-flame: wrote $OUT/$NAME.svg and $OUT/$NAME.top.txt" >&2
