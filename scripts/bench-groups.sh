#!/usr/bin/env bash
# Consumer-group rebalance benchmark through the real Java client (kafka-clients 4.3.0): how long
# a 10-member group takes to form, and to converge again after an 11th member joins, for the
# classic protocol and the consumer protocol (KIP-848). Starts its own broker on a fresh data dir
# with group.initial.rebalance.delay.ms=0 (Kafka's 3 s default would dominate the formation time).
#
# Usage: scripts/bench-groups.sh
#   Takes about 1-3 minutes with the defaults. Does not build the broker: it uses
#   target/release/fjord (or FJORD_BIN) as it is.
# Environment:
#   BENCH_GROUPS_REPS=5            repetitions per protocol (median reported)
#   BENCH_GROUPS_PROTOCOLS="classic consumer"
#   BENCH_GROUPS_MEMBERS=10        members before the extra one joins
#   BENCH_GROUPS_PARTITIONS=20     partitions of the subscribed topic
#   BENCH_GROUPS_BROKER_ARGS=""    extra fjord arguments, e.g.
#                                  "--override group.consumer.heartbeat.interval.ms=1000"
#   BENCH_GROUPS_TIMEOUT=600       seconds one protocol's run may take
#   BENCH_GROUPS_KEEP=1            keep the broker data dir and log
#
# Client settings are Kafka's defaults (classic: session.timeout.ms 45000, heartbeat.interval.ms
# 3000; consumer: the broker's group.consumer.heartbeat.interval.ms, 5000 in Kafka), so the
# figures are what an untuned application sees. On a shared 2-core machine the 11 consumers
# (each with its own network and heartbeat threads) and the broker compete for CPU; read the
# figures as orders of magnitude and compare protocols, not machines.
#
# Prints a markdown table (also kept in target/bench/last-groups-results.md). Exit status 0 when
# every run converged, whatever the figures.
set -euo pipefail
RUNNER=bench-groups.sh
CLASSES_SUBDIR=java-bench-classes
source "$(dirname "${BASH_SOURCE[0]}")/../compat-tests/java-common.sh"

REPS="${BENCH_GROUPS_REPS:-5}"
PROTOCOLS="${BENCH_GROUPS_PROTOCOLS:-classic consumer}"
MEMBERS="${BENCH_GROUPS_MEMBERS:-10}"
PARTS="${BENCH_GROUPS_PARTITIONS:-20}"
RUN_TIMEOUT="${BENCH_GROUPS_TIMEOUT:-600}"
read -r -a EXTRA_ARGS <<<"${BENCH_GROUPS_BROKER_ARGS:-}"
OUT_DIR="$ROOT/target/bench"

java_prepare
if [ ! -x "$FJORD_BIN" ]; then
  echo "$RUNNER: broker binary $FJORD_BIN not found; build it with 'cargo build --release'" >&2
  exit 1
fi

DATA="$(mktemp -d "${TMPDIR:-/tmp}/fjord-bench-groups.XXXXXX")"
FAILED=()
cleanup() {
  stop_broker TERM || true
  if [ "${BENCH_GROUPS_KEEP:-0}" = 1 ] || [ "${#FAILED[@]}" -ne 0 ]; then
    echo "$RUNNER: broker data kept in $DATA, log in $DATA.log"
  else
    rm -rf "$DATA" "$DATA.log"
  fi
}
trap cleanup EXIT

start_broker "$DATA" --override group.initial.rebalance.delay.ms=0 "${EXTRA_ARGS[@]}"
echo "$RUNNER: broker pid $BROKER_PID on $BOOTSTRAP; $MEMBERS members (+1), $PARTS partitions, $REPS repetitions"

JAVA_OPTS=(-Xmx1g "-Dlog4j2.configurationFile=$SRC/log4j2.properties")
RESULTS=()
for proto in $PROTOCOLS; do
  echo
  echo "=== $proto"
  log="$(mktemp)"
  rc=0
  timeout "$RUN_TIMEOUT" java "${JAVA_OPTS[@]}" -cp "$CLASSES:$CP" GroupBench "$BOOTSTRAP" "$proto" "$REPS" "$MEMBERS" "$PARTS" \
    | tee "$log" || rc=$?
  line="$(grep '^RESULT ' "$log" || true)"
  rm -f "$log"
  if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
    [ "$rc" -eq 124 ] && echo "$RUNNER: $proto run timed out after ${RUN_TIMEOUT}s"
    FAILED+=("$proto")
    echo "--- broker log tail ($BROKER_LOG)"
    tail -n 30 "$BROKER_LOG" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-300 || true
    echo "---"
  fi
  [ -n "$line" ] && RESULTS+=("$line")
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
shown() { if [ "$1" = -1 ]; then echo "did not converge"; else echo "$1 ms"; fi; }
mkdir -p "$OUT_DIR"
{
  echo "| protocol | formation of $MEMBERS: assigned | formation: same generation | member $((MEMBERS + 1)) joins: assigned | join: same generation |"
  echo "|---|---|---|---|---|"
  for r in "${RESULTS[@]}"; do
    echo "| $(field protocol "$r") | $(shown "$(field formation_assigned_ms "$r")") | $(shown "$(field formation_gen_ms "$r")") | $(shown "$(field join_assigned_ms "$r")") | $(shown "$(field join_gen_ms "$r")") |"
  done
  echo
  echo "Medians of $REPS repetitions, $PARTS partitions, broker args: --override group.initial.rebalance.delay.ms=0 ${EXTRA_ARGS[*]:-}"
  echo "assigned = every partition owned once and evenly spread; same generation = also every member on one generation / member epoch."
} | tee "$OUT_DIR/last-groups-results.md"

[ "${#FAILED[@]}" -eq 0 ] || { echo "$RUNNER: failed: ${FAILED[*]}"; exit 1; }
