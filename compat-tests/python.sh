#!/usr/bin/env bash
# Python client compatibility tests (kafka-python, confluent-kafka, aiokafka) against a
# fresh Fjord broker. Extra arguments go to pytest, e.g. `compat-tests/python.sh -k confluent`.
#
# Needs the venv from scripts/setup-python.sh and target/release/fjord (or FJORD_BIN).
# Env: PYTHON_TESTS_TIMEOUT bounds the whole pytest run (seconds, default 1200;
# the consumer-group tests alone take about 5 minutes, one KIP-848 session timeout included);
# KEEP_WORK=1 keeps the broker's data dir and log even when everything passed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ ! -x "$VENV/bin/python" ]; then echo "no venv at $VENV: run scripts/setup-python.sh"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-python.XXXXXX")"
rc=1
finish() {
  stop_broker TERM || true
  if [ "$rc" -ne 0 ]; then
    echo "--- broker log tail (${BROKER_LOG:-none})"; tail -40 "${BROKER_LOG:-/dev/null}" 2>/dev/null || true
    echo "--- work dir kept: $WORK"
  elif [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap finish EXIT

# Kafka's bounds for KIP-848 group configs lowered (as a Kafka broker would need them), so
# that test_group_rejoins_and_configs.py may give one group a session timeout of a few seconds.
start_broker "$WORK/data" --override group.consumer.min.session.timeout.ms=2000 \
  --override group.consumer.min.heartbeat.interval.ms=500
echo "broker on $BOOTSTRAP (pid $BROKER_PID, log $BROKER_LOG)"

# -p no:cacheprovider keeps pytest from writing .pytest_cache into the source tree;
# -rfExXw lists failures, errors, xfails/xpasses (features the broker does not advertise yet,
# see conftest.py) and warnings (consumer-side errors are reported as warnings);
# kafka-python's own DeprecationWarnings (importlib.resources) would drown those out.
set +e
export PYTHONDONTWRITEBYTECODE=1
BOOTSTRAP="$BOOTSTRAP" timeout --kill-after=10 "${PYTHON_TESTS_TIMEOUT:-1200}" \
  "$VENV/bin/python" -m pytest "$ROOT/compat-tests/python" -v -p no:cacheprovider -rfExXw \
  -W ignore::DeprecationWarning "$@"
rc=$?
set -e
[ "$rc" -eq 124 ] && echo "pytest killed after ${PYTHON_TESTS_TIMEOUT:-1200}s"
exit "$rc"
