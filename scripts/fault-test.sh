#!/usr/bin/env bash
# Replication fault harness (issue 12): three Fjord nodes, a replication-factor-3 topic,
# an idempotent acks=all producer (librdkafka; with --java also Java kafka-clients) and a read_committed
# consumer while leaders, followers and
# the controller are SIGKILLed, a leader is SIGSTOPped past the session timeout, and every
# node is restarted in turn. The logic and the checks are in scripts/fault_harness.py.
#
# Usage: scripts/fault-test.sh [--java] [--eos] [--rounds N] [--faults a,b,...] [--rate R] [--session-ms MS]
#   default (the test command's short form): 1 round of every fault;
#   the long form by hand: --rounds 10 (or more).
# Env: FAULT_TEST_TIMEOUT bounds the whole run (seconds, default 600); KEEP_WORK=1 keeps the
#      nodes' data dirs and logs even when everything passed.
set -euo pipefail
RUNNER=fault-test.sh
CLASSES_SUBDIR=fault-classes
source "$(dirname "${BASH_SOURCE[0]}")/../compat-tests/java-common.sh"

if [ ! -x "$VENV/bin/python" ]; then echo "no venv at $VENV: run scripts/setup-python.sh"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi

# --java: the Java producer (compat-tests/java/FaultProducer.java) runs beside librdkafka's.
# --eos (with --java): a Java exactly-once consume-transform-produce application
# (compat-tests/java/FaultEos.java) runs too, with faults that kill its transaction coordinator
# and an output partition leader.
java_args=()
args=()
for a in "$@"; do
  if [ "$a" = --java ]; then
    java_prepare >/dev/null || { echo "fault-test: compiling the Java producer failed"; exit 1; }
    java_args=(--java-cp "$CLASSES:$CP")
  else
    args+=("$a")
  fi
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-faults.XXXXXX")"
rc=1
finish() {
  for f in "$WORK"/node*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    kill -CONT "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
  # The namespaces, veth pairs and bridge of this run (named after FAULT_NET_TAG).
  tag="$(printf %04d $(( $$ % 10000 )))"
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^fjn$tag-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^fj(v${tag}[0-9]a|br$tag)$" || true); do
    ip link del "$l" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "fault-test: node logs and data kept in $WORK"
    for l in "$WORK"/node*.log; do
      [ -f "$l" ] || continue
      echo "----- $(basename "$l"): warnings and errors (last 20)"
      grep -aE "WARN|ERROR|panic" "$l" | tail -20 || true
    done
  else
    rm -rf "$WORK"
  fi
}
trap finish EXIT

set +e
FAULT_NET_TAG=$$ timeout "${FAULT_TEST_TIMEOUT:-600}" "$VENV/bin/python" "$ROOT/scripts/fault_harness.py" \
  --binary "$FJORD_BIN" --work "$WORK" "${java_args[@]}" "${args[@]}"
rc=$?
set -e
if [ "$rc" -eq 124 ]; then echo "fault-test: timed out"; fi
exit "$rc"
