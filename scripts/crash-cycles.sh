#!/usr/bin/env bash
# Runs N kill -9 cycles (default 100) of tests/crash_cycles.rs against a
# release build of Warren: a confirm-mode publisher and a manual-ack
# consumer on one channel, SIGKILL at a random (seeded) moment, restart,
# and the by-identity check of every confirmed message at the end. Prints
# the test's result line, e.g.
#
#   crash-cycles result: shards=2 cycles=100 seed=... published=...
#   confirmed=... delivered=... distinct=... lost=0 repeats_flagged=...
#   repeats_unflagged_after_crash=... violations=0
#
#   scripts/crash-cycles.sh [N]
#
# Environment (optional): SHARDS=2 (comma-separated shard counts, each gets
# N cycles), WARREN_TEST_SEED=<seed> to replay a run.
set -euo pipefail

cd "$(dirname "$0")/.."
N="${1:-100}"
SHARDS="${SHARDS:-2}"
# The test runs under a time limit per cycle, not per run.
export CARGO_INCREMENTAL=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
WARREN_CRASH_CYCLES="$N" WARREN_CRASH_SHARDS="$SHARDS" \
    cargo test --release -p warren --test crash_cycles -- --nocapture >"$log" 2>&1 || status=$?
grep -E "^(test seed|crash-cycles result)" "$log" || true
if [ "$status" -ne 0 ]; then
    echo "crash-cycles: FAILED (exit $status); the failure, then the test's last lines:" >&2
    grep -A 6 "panicked at" "$log" | grep -v "^\[warren\]" | head -n 40 >&2 || true
    tail -n 40 "$log" >&2
fi
exit "$status"
