#!/usr/bin/env bash
# Transaction scenarios through the real Apache Kafka kafka-clients 4.3.0 jar against a freshly
# started Fjord broker, each in its own bounded JVM, with the client's default transaction protocol
# (the broker finalizes transaction.version=2, so KIP-890: EndTxn v5 epoch bumps, implicit adds).
# compat-tests/java/TxnScenarios.java has the details:
#   interleave           20 transactions over 3 partitions alternating commit/abort; read_committed vs
#                        read_uncommitted contents, offsets, seeks; two transactional producers and a plain
#                        one interleaved record by record in one partition
#   ctp                  consume-transform-produce app (TxnCtpApp) in a child JVM, SIGKILLed mid-transaction
#                        and restarted with the same transactional.id: output exactly once
#   fencing              zombie producer fenced by a new instance's initTransactions and by Admin.fenceProducers
#   timeout              transaction.timeout.ms=5000 left open is aborted by the broker, LSO unblocked;
#                        listTransactions / describeTransactions / describeProducers
#   restart              broker restarted (SIGTERM) while two transactions are open: the same producer
#                        commits one afterwards, a new instance aborts the other
#   verify-after-restart everything above read again from the restarted broker
#
# Usage: bash compat-tests/java-txn.sh
# Env (besides FJORD_BIN / FJORD_CACHE from lib.sh):
#   JAVA_TXN_SCENARIOS   only these scenarios, by name prefix (default: all; verify-after-restart
#                        expects all the others to have run)
#   JAVA_TXN_RESTART_SIGNAL  how the restart scenario stops the broker: TERM (default, graceful) or
#                        KILL (crash; then start the broker with --override log.flush.interval.messages=1
#                        via JAVA_TXN_BROKER_ARGS, or acknowledged data may legitimately be lost)
#   JAVA_TXN_BROKER_ARGS extra broker arguments (word-split)
#   JAVA_COMPAT_COMPILE_ONLY, JAVA_COMPAT_KEEP, JAVA_COMPAT_LOG_LEVEL   as for java.sh
RUNNER=java-txn.sh
CLASSES_SUBDIR=java-txn-classes
source "$(dirname "${BASH_SOURCE[0]}")/java-common.sh"

ONLY="${JAVA_TXN_SCENARIOS:-}"
JAVA_LOG_TAIL=40

java_prepare

if [ "${JAVA_COMPAT_COMPILE_ONLY:-0}" = 1 ]; then
  echo "$RUNNER: compile-only mode; not starting a broker"
  exit 0
fi
if [ ! -x "$FJORD_BIN" ]; then
  echo "$RUNNER: broker binary $FJORD_BIN not found; build it with 'cargo build --release'" >&2
  exit 1
fi

# shellcheck disable=SC2206
BROKER_ARGS=(${JAVA_TXN_BROKER_ARGS:-})
RESTART_SIGNAL="${JAVA_TXN_RESTART_SIGNAL:-TERM}"
JAVA_OPTS=(
  -Xmx512m
  "-Dlog4j2.configurationFile=$SRC/log4j2.properties"
)

DATA="$(mktemp -d "${TMPDIR:-/tmp}/fjord-java-txn.XXXXXX")"
PASSED=()
FAILED=()

cleanup() {
  stop_broker TERM || true
  rm -f "$DATA.ready" "$DATA.restarted"
  if [ "${#FAILED[@]}" -eq 0 ] && [ "${JAVA_COMPAT_KEEP:-0}" != 1 ]; then
    rm -rf "$DATA" "$DATA.log"
  else
    echo "$RUNNER: broker data kept in $DATA, log in $DATA.log"
  fi
}
trap cleanup EXIT

if ! start_broker "$DATA" "${BROKER_ARGS[@]}"; then
  FAILED+=(broker-start)
  echo "java-txn: 0 passed, 1 failed"
  exit 1
fi
echo "$RUNNER: broker pid $BROKER_PID on $BOOTSTRAP, data $DATA"

want() {
  local w
  [ -z "$ONLY" ] && return 0
  for w in $ONLY; do
    case "$1" in "$w"*) return 0 ;; esac
  done
  return 1
}

# Broker lines about transactions and any WARN/ERROR logged since line $1 (first 40).
broker_lines_since() {
  tail -n +"$(($1 + 1))" "$BROKER_LOG" | sed 's/\x1b\[[0-9;]*m//g' \
    | grep -E 'WARN|ERROR|panic|transaction|txn|marker' | head -40 | cut -c1-300 || true
}

# run_txn NAME: run_java plus, on failure, the broker's transaction / WARN / ERROR lines meanwhile.
run_txn() {
  local name="$1" before
  before=$(wc -l <"$BROKER_LOG" 2>/dev/null || echo 0)
  if ! run_java "$name" TxnScenarios "$name" "$BOOTSTRAP"; then
    echo "--- broker transaction / WARN / ERROR lines logged during $name (first 40)"
    broker_lines_since "$before"
    echo "---"
  fi
}

# The restart scenario runs in the background: it opens transactions, writes $DATA.ready and waits
# (bounded) for $DATA.restarted, which this runner creates after restarting the broker.
run_restart() {
  local rc=0 jpid before
  before=$(wc -l <"$BROKER_LOG" 2>/dev/null || echo 0)
  rm -f "$DATA.ready" "$DATA.restarted"
  echo
  echo "=== restart"
  timeout "$JAVA_TIMEOUT" java "${JAVA_OPTS[@]}" -cp "$CLASSES:$CP" TxnScenarios restart "$BOOTSTRAP" \
    "$DATA.ready" "$DATA.restarted" &
  jpid=$!
  for _ in $(seq 1 1200); do
    [ -f "$DATA.ready" ] && break
    kill -0 "$jpid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -f "$DATA.ready" ]; then
    echo "$RUNNER: restarting the broker (SIG$RESTART_SIGNAL) with two transactions open"
    stop_broker "$RESTART_SIGNAL" || true
    if start_broker "$DATA" "${BROKER_ARGS[@]}"; then
      echo "$RUNNER: broker restarted, pid $BROKER_PID"
      touch "$DATA.restarted"
    else
      echo "$RUNNER: broker restart failed"
    fi
  else
    echo "$RUNNER: the restart scenario never got ready"
  fi
  wait "$jpid" || rc=$?
  if [ "$rc" -eq 0 ]; then
    PASSED+=(restart)
  else
    [ "$rc" -eq 124 ] && echo "$RUNNER: restart timed out after ${JAVA_TIMEOUT}s"
    FAILED+=(restart)
    echo "--- broker transaction / WARN / ERROR lines logged during restart (first 40)"
    broker_lines_since "$before"
    echo "---"
  fi
}

if want interleave; then run_txn interleave; fi
if want ctp; then run_txn ctp; fi
if want fencing; then run_txn fencing; fi
if want timeout; then run_txn timeout; fi
if want restart; then run_restart; fi
if want verify-after-restart; then
  # A second, plain restart first, so everything is read from a broker that reloaded it.
  echo
  echo "=== second restart"
  if restart_broker "$DATA" "${BROKER_ARGS[@]}"; then
    echo "$RUNNER: broker restarted, pid $BROKER_PID"
    run_txn verify-after-restart
  else
    FAILED+=(second-restart)
  fi
fi

echo
[ "${#FAILED[@]}" -eq 0 ] || echo "$RUNNER: failed scenarios: ${FAILED[*]}"
echo "java-txn: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[ "${#FAILED[@]}" -eq 0 ]
