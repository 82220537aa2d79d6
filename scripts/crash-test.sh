#!/usr/bin/env bash
# Crash durability test: SIGKILL the broker at random moments under an idempotent
# acks=all producer and check that nothing acknowledged is lost or duplicated.
# The logic and the full description are in scripts/crash_test.py.
#
# Usage: scripts/crash-test.sh [--trials N] [--no-flush] [--rate R] [--seed S] [--partitions P]
#   default: 20 trials with --log-flush-interval-messages 1 (acknowledge after flush);
#            fails (exit 1) on any lost or duplicated acknowledged record.
#   --no-flush: the broker runs without the flush setting; losses are reported, not failed.
#
#        scripts/crash-test.sh --meta [--trials N] [--seed S] [--flush alternate|on|off]
#   metadata instead of records (scripts/crash_meta.py): topic creations, offset commits and
#   transactions (with send_offsets_to_transaction) run concurrently while the broker is
#   SIGKILLed 0.3-2 s into each trial (default 10); after each restart every acknowledged
#   topic, commit and transaction must be there. Exit 1 on any loss, 2 if it could not run.
# Env: CRASH_TEST_TIMEOUT bounds the whole run (seconds, default 300);
#      KEEP_WORK=1 keeps the data dir and broker log even when everything passed;
#      FJORD_BIN / FJORD_CACHE as in compat-tests/lib.sh.
# Needs the venv from scripts/setup-python.sh and target/release/fjord.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../compat-tests/lib.sh"

if [ ! -x "$VENV/bin/python" ]; then echo "no venv at $VENV: run scripts/setup-python.sh"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi

# --meta selects the metadata test; every other argument goes to the Python side.
script=crash_test.py
work_name=fjord-crash
args=()
for a in "$@"; do
  if [ "$a" = --meta ]; then script=crash_meta.py; work_name=fjord-crashmeta; else args+=("$a"); fi
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/$work_name.XXXXXX")"
rc=1
finish() {
  # After a timeout the Python side may not have stopped its broker: kill it by pid.
  if [ -f "$WORK/data.pid" ]; then
    "$VENV/bin/python" -c 'import sys; sys.path.insert(0, sys.argv[1]); import harness; harness.kill_leftover(sys.argv[2])' \
      "$ROOT/scripts" "$WORK/data.pid" || true
  fi
  if [ "$rc" -ne 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "--- work dir kept: $WORK (broker log $WORK/data.log)"
    if [ "$rc" -ne 0 ]; then
      echo "--- broker log: warnings/errors and harness markers (last 40)"
      grep -a -E 'WARN|ERROR|panic|=== harness' "$WORK/data.log" 2>/dev/null | tail -40 || true
    fi
  else
    rm -rf "$WORK"
  fi
}
trap finish EXIT

set +e
PYTHONDONTWRITEBYTECODE=1 timeout --kill-after=10 "${CRASH_TEST_TIMEOUT:-300}" \
  "$VENV/bin/python" -u "$ROOT/scripts/$script" \
  --broker-bin "$FJORD_BIN" --data-dir "$WORK/data" --json "$WORK/summary.json" ${args[@]+"${args[@]}"}
rc=$?
set -e
[ "$rc" -eq 124 ] && echo "$script killed after ${CRASH_TEST_TIMEOUT:-300}s"
exit "$rc"
