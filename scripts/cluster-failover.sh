#!/usr/bin/env bash
# Controller failover, measured: three Fjord nodes (combined broker+controller), then N times:
# find the active controller (every node's own DescribeCluster must name the same one), SIGKILL
# it, and measure from the kill
#   create  until a CreateTopics through a survivor succeeds (a fresh client every 50 ms; the
#           figure includes starting the Python client, about 0.2 s),
#   alter   until an IncrementalAlterConfigs of one topic's retention.ms succeeds (likewise,
#           concurrently with the creates),
# then restart the killed node and measure
#   back    from its restart until every node lists all three brokers again.
# At the end every topic created so far must be on every node, and the topic's retention.ms the
# last value set: no committed metadata may be lost to a controller crash. Prints each kill's
# times and their median and max; exits non-zero on any failure.
#
#   scripts/cluster-failover.sh [--kills N] [--kafka]
#
# --kills N  kills per cluster (default 20).
# CLUSTER_TOOL_VERBOSE=1 prints every failed CreateTopics / IncrementalAlterConfigs attempt.
# --kafka    the same afterwards against three Apache Kafka 4.3.0 nodes from
#            `scripts/kafka-ref.sh start --nodes 3` (restarted one at a time with
#            `kafka-ref.sh launch --node N`), so Kafka's figures stand beside Fjord's. Kafka's
#            DescribeCluster names a random broker as the controller (KIP-919: only a controller
#            listener tells the truth), so there the active controller is the leader recorded in
#            the nodes' quorum-state files (the highest leader epoch).
# Both clusters get broker.session.timeout.ms=3000 and broker.heartbeat.interval.ms=500.
# Needs the venv (scripts/setup-python.sh), target/release/fjord (or FJORD_BIN); --kafka also
# the Kafka jars (scripts/setup-kafka.sh). KEEP_WORK=1 keeps the work dir.
source "$(dirname "${BASH_SOURCE[0]}")/../compat-tests/cluster-lib.sh"
set +e

KILLS=20 KAFKA=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) KILLS="${2:?--kills needs a number}"; shift 2 ;;
    --kafka) KAFKA=1; shift ;;
    *) echo "usage: $0 [--kills N] [--kafka]" >&2; exit 2 ;;
  esac
done
[[ "$KILLS" =~ ^[1-9][0-9]*$ ]] || { echo "--kills must be a positive number" >&2; exit 2; }
if [ ! -x "$VENV/bin/python" ]; then echo "no venv at $VENV: run scripts/setup-python.sh"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi
export -n FJORD_BIN FJORD_CACHE 2>/dev/null || true
export PYTHONDONTWRITEBYTECODE=1

TOOL="$ROOT/compat-tests/cluster/cluster_tool.py"
KAFKA_REF="$ROOT/scripts/kafka-ref.sh"
CWORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-failover.XXXXXX")"
FAILURES=0
SUMMARY=()
KAFKA_STARTED=0

tool() { timeout --kill-after=5 "${TOOL_TIMEOUT:-90}" "$VENV/bin/python" "$TOOL" "$@"; }
failure() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }

finish() {
  local n
  cluster_stop
  if [ "$KAFKA_STARTED" = 1 ]; then
    # kafka-ref.sh stop removes its dir; the logs stay for a post-mortem.
    for n in "${NODES[@]}"; do cp "$KDIR/node$n/server.log" "$CWORK/kafka-node$n.log" 2>/dev/null; done
    KAFKA_REF_DIR="$KDIR" bash "$KAFKA_REF" stop >/dev/null 2>&1
  fi
  echo
  [ "${#SUMMARY[@]}" -eq 0 ] || printf '%s\n' "${SUMMARY[@]}"
  if [ "$FAILURES" -ne 0 ]; then
    for n in "${NODES[@]}"; do node_log_tail "$n" 30; done
    echo "--- work dir kept: $CWORK"
  elif [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work dir kept: $CWORK"
  else
    rm -rf "$CWORK"
  fi
  echo "cluster-failover: $FAILURES failure(s)"
  [ "$FAILURES" -eq 0 ]
}
trap 'finish; exit $?' EXIT
trap 'echo interrupted; FAILURES=$((FAILURES + 1)); exit 130' INT TERM

# The operations each flavour provides: <flavour>_controller (prints the active controller's
# node number), <flavour>_kill N, <flavour>_start N, <flavour>_started N (bounded wait).
fjord_controller() {
  local out
  out="$(tool controller "$BOOTSTRAP_ALL")" || { echo "$out" >&2; return 1; }
  out="${out#controller=}"
  echo "${out%% *}"
}
fjord_kill() { node_kill "$1" KILL; }
fjord_start() { node_start "$1"; }
fjord_started() { node_wait_started 60 "$1"; }

# Kafka: node n's dir under kafka-ref's, its broker port in broker.port.
KDIR="$CWORK/kafka"
kafka_controller() {
  # Each node's quorum-state holds the leader it last knew of and that leader's epoch; the
  # highest epoch wins. Survivors' files only: a killed node's file is stale.
  python3 - "$KDIR" <<'EOF'
import glob, json, os, sys
best = None
for f in glob.glob(os.path.join(sys.argv[1], "node*", "data", "__cluster_metadata-0", "quorum-state")):
    try:
        q = json.load(open(f))
    except (OSError, ValueError):
        continue
    if q.get("leaderId", -1) >= 0 and (best is None or q["leaderEpoch"] > best[0]):
        best = (q["leaderEpoch"], q["leaderId"])
if best is None:
    sys.exit("no quorum-state names a leader")
print(best[1])
EOF
}
kafka_kill() {
  local pid
  pid="$(cat "$KDIR/node$1/kafka.pid")"
  kill -KILL "$pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}
kafka_start() { KAFKA_REF_DIR="$KDIR" bash "$KAFKA_REF" launch --node "$1" >/dev/null; }
kafka_started() {
  local deadline=$((SECONDS + 120))
  until (exec 3<>"/dev/tcp/127.0.0.1/${PORT[$1]}") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "Kafka node $1 not listening after 120s"; return 1; }
    sleep 0.2
  done
}

# run_kills FLAVOUR LABEL: the kill loop against the running cluster of FLAVOUR.
run_kills() {
  local fl="$1" label="$2" i ctl t_kill t_restart out alter_pid survivors ids
  local create=() alter=() back=() base="failover-base"
  local topics="$CWORK/$fl.topics"
  : >"$topics"
  out="$(tool create-until "$BOOTSTRAP_ALL" "$base" --timeout 30 2>&1)" ||
    { failure "$label: creating $base: $out"; return; }
  echo "$base -" >"$topics"
  for i in $(seq 1 "$KILLS"); do
    ctl=""
    for _ in $(seq 1 100); do
      ctl="$("${fl}_controller" 2>"$CWORK/ctl.err")" && [[ "$ctl" =~ ^[123]$ ]] && break
      ctl=""
      sleep 0.1
    done
    [ -n "$ctl" ] || { failure "$label kill $i: no agreed active controller within 10s: $(cat "$CWORK/ctl.err")"; break; }
    survivors="$(addrs $(others "$ctl"))"
    t_kill=$EPOCHREALTIME
    "${fl}_kill" "$ctl" || { failure "$label kill $i: node $ctl did not die on SIGKILL"; break; }
    # The alter runs beside the creates, both timed from the kill.
    tool alter-until "$survivors" "$base" "$((86400000 + i))" --since "$t_kill" --timeout 60 \
      >"$CWORK/alter.out" 2>&1 &
    alter_pid=$!
    out="$(tool create-until "$survivors" "failover-$i" --since "$t_kill" --timeout 60 2>"$CWORK/create.err")"
    if [[ "$out" == *" ok after "* ]]; then
      create+=("${out%% *}")
      echo "failover-$i -" >>"$topics"
    else
      create+=(x); failure "$label kill $i: CreateTopics through the survivors: $out"
    fi
    wait "$alter_pid"
    [ -z "${CLUSTER_TOOL_VERBOSE:-}" ] || cat "$CWORK/create.err" "$CWORK/alter.out"
    out="$(tail -n 1 "$CWORK/alter.out")"
    if [[ "$out" == *" ok after "* ]]; then
      alter+=("${out%% *}")
    else
      alter+=(x); failure "$label kill $i: IncrementalAlterConfigs through the survivors: $out"
    fi
    # Whatever came of it, the last value set is the one that must survive (a timed-out alter
    # may or may not have been committed, so the check only holds once one succeeded).
    [ "${alter[-1]}" = x ] || sed -i "s/^$base .*/$base $((86400000 + i))/" "$topics"

    t_restart=$EPOCHREALTIME
    "${fl}_start" "$ctl"
    if ! "${fl}_started" "$ctl"; then
      back+=(x); failure "$label kill $i: node $ctl did not come back"; break
    fi
    out="$(tool wait-agree --nodes "$BOOTSTRAP_ALL" --brokers 1,2,3 --since "$t_restart" --timeout 120 2>&1)"
    if [ $? -eq 0 ]; then back+=("${out%%s:*}"); else back+=(x); failure "$label kill $i: $out"; fi
    printf '%s kill %2d: node %s (controller)  create %ss  alter %ss  back %ss\n' \
      "$label" "$i" "$ctl" "${create[-1]}" "${alter[-1]}" "${back[-1]}"
  done

  # No topic created before, nor the last retention.ms set, may be missing on any node.
  ids="$(tool wait-agree --nodes "$BOOTSTRAP_ALL" --brokers 1,2,3 --timeout 30 2>&1)" ||
    failure "$label: nodes do not agree at the end: $ids"
  if out="$(tool final-check --nodes "$BOOTSTRAP_ALL" "$topics" 2>&1)"; then
    echo "$label: final check: $out"
  else
    failure "$label: committed metadata lost: $out"
  fi
  SUMMARY+=("$label ($KILLS kills): create $(printf '%s\n' "${create[@]}" | tool stats)")
  SUMMARY+=("$label ($KILLS kills): alter  $(printf '%s\n' "${alter[@]}" | tool stats)")
  SUMMARY+=("$label ($KILLS kills): back   $(printf '%s\n' "${back[@]}" | tool stats)")
}

echo "== Fjord: three nodes, $KILLS controller kills (work dir $CWORK)"
cluster_pick_ports || exit 1
for n in "${NODES[@]}"; do node_start "$n"; done
if ! node_wait_started 60 "${NODES[@]}" ||
   ! out="$(tool wait-agree --nodes "$BOOTSTRAP_ALL" --brokers 1,2,3 --timeout 30)"; then
  failure "the Fjord cluster did not form: ${out:-}"
  exit 1
fi
echo "cluster up: $out"
run_kills fjord Fjord
cluster_stop

if [ "$KAFKA" = 1 ]; then
  echo
  echo "== Apache Kafka: three nodes, $KILLS controller kills"
  KAFKA_STARTED=1
  if ! KAFKA_REF_DIR="$KDIR" bash "$KAFKA_REF" start --nodes 3 \
      --override broker.session.timeout.ms="$SESSION_TIMEOUT_MS" \
      --override broker.heartbeat.interval.ms="$HEARTBEAT_MS" >"$CWORK/kafka-start.log" 2>&1; then
    failure "Kafka did not start: $(tail -5 "$CWORK/kafka-start.log")"
    exit 1
  fi
  BOOTSTRAP_ALL=""
  for n in "${NODES[@]}"; do
    PORT[$n]="$(cat "$KDIR/node$n/broker.port")"
    ADDR[$n]="127.0.0.1:${PORT[$n]}"
    BOOTSTRAP_ALL+="${BOOTSTRAP_ALL:+,}${ADDR[$n]}"
  done
  echo "Kafka up: $BOOTSTRAP_ALL"
  run_kills kafka Kafka
fi
