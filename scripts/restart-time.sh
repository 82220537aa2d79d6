#!/usr/bin/env bash
# Restart time with a full broker (by hand, not CI): writes --mb megabytes (default 1024)
# of 1 KiB records with a fast idempotent confluent-kafka producer, stops the broker with
# SIGTERM (time, exit code), restarts it on the same data dir and measures spawn -> first
# accepted connection, -> first Metadata answer, -> first record fetched from the middle
# of a partition; then checks the record count against what was acknowledged (watermarks
# and a full read-back). Details in scripts/restart_time.py.
#
# Usage: scripts/restart-time.sh [--mb MB] [--partitions P] [--value-bytes B] [--no-full-scan]
#                                [--broker-args "..."]
# Needs free disk of about 1.2x MB in ${TMPDIR:-/tmp}; the broker's RSS grows to roughly
# 1 GiB per GB written (see README, Performance).
# Env: RESTART_TIME_TIMEOUT (seconds, default 1800); KEEP_WORK=1 keeps the data dir.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../compat-tests/lib.sh"

if [ ! -x "$VENV/bin/python" ]; then echo "no venv at $VENV: run scripts/setup-python.sh"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-restart.XXXXXX")"
rc=1
finish() {
  if [ -f "$WORK/data.pid" ]; then
    "$VENV/bin/python" -c 'import sys; sys.path.insert(0, sys.argv[1]); import harness; harness.kill_leftover(sys.argv[2])' \
      "$ROOT/scripts" "$WORK/data.pid" || true
  fi
  if [ "$rc" -ne 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "--- work dir kept: $WORK (broker log $WORK/data.log)"
    [ "$rc" -ne 0 ] && { echo "--- broker log tail"; tail -20 "$WORK/data.log" 2>/dev/null || true; }
  else
    rm -rf "$WORK"
  fi
}
trap finish EXIT

set +e
PYTHONDONTWRITEBYTECODE=1 timeout --kill-after=20 "${RESTART_TIME_TIMEOUT:-1800}" \
  "$VENV/bin/python" -u "$ROOT/scripts/restart_time.py" \
  --broker-bin "$FJORD_BIN" --data-dir "$WORK/data" --json "$WORK/summary.json" "$@"
rc=$?
set -e
[ "$rc" -eq 124 ] && echo "restart-time killed after ${RESTART_TIME_TIMEOUT:-1800}s"
exit "$rc"
