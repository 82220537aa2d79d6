#!/usr/bin/env bash
# Consumer-group scenarios through the real Apache Kafka kafka-clients 4.3.0 jar against a freshly
# started Fjord broker. Every scenario runs once per group protocol, classic and consumer (KIP-848),
# each in its own bounded JVM (compat-tests/java/GroupScenarios.java has the details):
#   assign3-P             3 members on 6 partitions: each partition owned once, 2 per member
#   kill-P                a member in a child JVM is SIGKILLed; the others take over within the session timeout
#   zombie-P              a member in a child JVM is SIGSTOPped past its session timeout, then SIGCONTed:
#                         the others take over, and the zombie is fenced and rejoins
#   commit-resume-P       commitSync part-way, close, new members resume exactly at the commits, nothing lost
#   static-classic        a static member (group.instance.id) restarts: same partitions, no rebalance;
#                         a duplicate instance id fences the running member
#   join20-P              20 members join at once on 24 partitions and converge to one generation
#   admin-P               list/describe groups, list/alter/delete offsets, delete groups
#   assignor-NAME-P       3 members converge: classic cooperative-sticky and range (client-side),
#                         consumer uniform and range (server-side, group.remote.assignor)
#   offsets-commit-P      commit known offsets, then
#   restart               graceful broker restart on the same data dir, then
#   offsets-verify-P      the offsets, the group and resuming consumption survive it
#
# Usage: bash compat-tests/java-groups.sh
# Env (besides FJORD_BIN / FJORD_CACHE from lib.sh):
#   JAVA_GROUPS_PROTOCOLS   protocols to exercise (default: "classic consumer")
#   JAVA_GROUPS_SCENARIOS   only these scenarios, by name prefix (e.g. "assign3 offsets"; default: all)
#   JAVA_GROUPS_FAST_CONSUMER_TIMEOUTS
#                           1 (default) = start the broker with a 6 s consumer-protocol session timeout
#                           and a 1 s heartbeat interval (Kafka's defaults are 45 s / 5 s) if it accepts
#                           those settings; 0 = the broker's defaults (the kill scenario then waits ~50 s)
#   JAVA_COMPAT_COMPILE_ONLY, JAVA_COMPAT_KEEP, JAVA_COMPAT_LOG_LEVEL   as for java.sh
#
# The broker always gets group.initial.rebalance.delay.ms=0 so a group forms without Kafka's 3 s wait.
RUNNER=java-groups.sh
CLASSES_SUBDIR=java-groups-classes
source "$(dirname "${BASH_SOURCE[0]}")/java-common.sh"

PROTOCOLS="${JAVA_GROUPS_PROTOCOLS:-classic consumer}"
ONLY="${JAVA_GROUPS_SCENARIOS:-}"
JAVA_LOG_TAIL=60

java_prepare

if [ "${JAVA_COMPAT_COMPILE_ONLY:-0}" = 1 ]; then
  echo "$RUNNER: compile-only mode; not starting a broker"
  exit 0
fi
if [ ! -x "$FJORD_BIN" ]; then
  echo "$RUNNER: broker binary $FJORD_BIN not found; build it with 'cargo build --release'" >&2
  exit 1
fi

DATA="$(mktemp -d "${TMPDIR:-/tmp}/fjord-java-groups.XXXXXX")"
PASSED=()
FAILED=()

cleanup() {
  stop_broker TERM || true
  if [ "${#FAILED[@]}" -eq 0 ] && [ "${JAVA_COMPAT_KEEP:-0}" != 1 ]; then
    rm -rf "$DATA" "$DATA.log"
  else
    echo "$RUNNER: broker data kept in $DATA, log in $DATA.log"
  fi
}
trap cleanup EXIT

# Broker settings: the rebalance delay always; the short consumer-protocol timeouts when asked for
# and accepted (an unknown setting stops the broker with a message naming it, so a broker without
# them is simply restarted with fewer settings, and the scenarios are told Kafka's defaults).
# Kafka itself also needs its min.* bounds lowered; a broker without those names gets the pair alone.
BASE_ARGS=(--override group.initial.rebalance.delay.ms=0)
FAST_PAIR=(--override group.consumer.session.timeout.ms=6000 --override group.consumer.heartbeat.interval.ms=1000)
FAST_MINS=(--override group.consumer.min.session.timeout.ms=6000 --override group.consumer.min.heartbeat.interval.ms=1000)
CONSUMER_SESSION_MS=45000
CONSUMER_HEARTBEAT_MS=5000
BROKER_ARGS=()
started=0
if [ "${JAVA_GROUPS_FAST_CONSUMER_TIMEOUTS:-1}" = 1 ]; then
  for extra in "${FAST_PAIR[*]}" "${FAST_PAIR[*]} ${FAST_MINS[*]}"; do
    read -r -a extra_args <<<"$extra"
    if start_broker "$DATA" "${BASE_ARGS[@]}" "${extra_args[@]}"; then
      BROKER_ARGS=("${BASE_ARGS[@]}" "${extra_args[@]}")
      CONSUMER_SESSION_MS=6000
      CONSUMER_HEARTBEAT_MS=1000
      started=1
      break
    fi
  done
  [ "$started" = 1 ] || echo "$RUNNER: the broker refused the consumer-protocol timeout settings; using its defaults"
fi
if [ "$started" = 0 ] && start_broker "$DATA" "${BASE_ARGS[@]}"; then
  BROKER_ARGS=("${BASE_ARGS[@]}")
  started=1
fi
if [ "$started" = 0 ]; then
  echo "$RUNNER: the broker refused group.initial.rebalance.delay.ms; starting it with no group settings"
  if start_broker "$DATA"; then
    started=1
  fi
fi
if [ "$started" = 0 ]; then
  FAILED+=(broker-start)
  echo "java-groups: 0 passed, 1 failed"
  exit 1
fi
echo "$RUNNER: broker pid $BROKER_PID on $BOOTSTRAP, data $DATA, args: ${BROKER_ARGS[*]:-(none)}"
echo "$RUNNER: consumer protocol session timeout ${CONSUMER_SESSION_MS} ms, heartbeat ${CONSUMER_HEARTBEAT_MS} ms (as configured)"

# Informational: which group APIs the broker advertises (ApiVersions via kcat, if installed).
if command -v kcat >/dev/null 2>&1; then
  echo "$RUNNER: group-related APIs advertised by the broker:"
  timeout 20 kcat -b "$BOOTSTRAP" -X debug=feature -L 2>&1 \
    | grep -oE 'ApiKey [A-Za-z0-9?-]+ \((8|9|10|11|12|13|14|15|16|42|47|68|69)\) Versions [0-9]+\.\.[0-9]+' \
    | sed 's/^/  /' || echo "  (none of FindCoordinator, JoinGroup, ... ConsumerGroupHeartbeat found)"
fi

JAVA_OPTS=(
  -Xmx1g
  "-Dlog4j2.configurationFile=$SRC/log4j2.properties"
  "-Dfjord.consumer.session.ms=$CONSUMER_SESSION_MS"
  "-Dfjord.consumer.heartbeat.ms=$CONSUMER_HEARTBEAT_MS"
)

want() {
  local w
  [ -z "$ONLY" ] && return 0
  for w in $ONLY; do
    case "$1" in "$w"*) return 0 ;; esac
  done
  return 1
}

# run_group NAME SCENARIO PROTOCOL: run_java plus, on failure, the broker's WARN/ERROR lines
# logged while the scenario ran (the tail alone is often just the clean-up).
run_group() {
  local name="$1" scenario="$2" proto="$3"
  local before
  before=$(wc -l <"$BROKER_LOG" 2>/dev/null || echo 0)
  if ! run_java "$name" GroupScenarios "$scenario" "$proto" "$BOOTSTRAP"; then
    echo "--- broker WARN/ERROR lines logged during $name (first 40)"
    tail -n +"$((before + 1))" "$BROKER_LOG" | sed 's/\x1b\[[0-9;]*m//g' | grep -E 'WARN|ERROR|panic' \
      | head -40 | cut -c1-300 || true
    echo "---"
  fi
}

for proto in $PROTOCOLS; do
  if [ "$proto" = classic ]; then
    assignors="cooperative-sticky range"
    scenarios="assign3 kill zombie commit-resume static join20 admin"
  else
    assignors="uniform range"
    scenarios="assign3 kill zombie commit-resume join20 admin"
  fi
  for s in $scenarios; do
    if want "$s"; then run_group "$s-$proto" "$s" "$proto"; fi
  done
  for a in $assignors; do
    if want "assignor-$a"; then run_group "assignor-$a-$proto" "assignor-$a" "$proto"; fi
  done
  if want offsets-commit; then run_group "offsets-commit-$proto" offsets-commit "$proto"; fi
done

if want offsets-verify || want restart; then
  echo
  echo "=== restart"
  if restart_broker "$DATA" "${BROKER_ARGS[@]}"; then
    PASSED+=(restart)
    echo "$RUNNER: broker restarted, pid $BROKER_PID"
    for proto in $PROTOCOLS; do
      if want offsets-verify; then run_group "offsets-verify-$proto" offsets-verify "$proto"; fi
    done
  else
    FAILED+=(restart)
  fi
fi

echo
[ "${#FAILED[@]}" -eq 0 ] || echo "$RUNNER: failed scenarios: ${FAILED[*]}"
echo "java-groups: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[ "${#FAILED[@]}" -eq 0 ]
