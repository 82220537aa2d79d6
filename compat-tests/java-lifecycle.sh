#!/usr/bin/env bash
# Log-lifecycle scenarios through the real Apache Kafka kafka-clients 4.3.0 jar against a freshly
# started Fjord broker (log.retention.check.interval.ms=1000, log.cleaner.backoff.ms=1000), each in
# its own bounded JVM (compat-tests/java/LifecycleScenarios.java has the details):
#   configs            incrementalAlterConfigs SET/APPEND/SUBTRACT/DELETE, describeConfigs sources and
#                      synonyms, invalid values / unknown keys, cluster-default and per-broker log.retention.ms
#   retention-fill     ~16 MB of records stamped 1 hour ago plus a few fresh ones   (du measured after)
#   retention          retention.ms set live: the old records go; consumers at a deleted offset
#                      (auto.offset.reset earliest / none); retention.ms=5000 from creation; retention.bytes
#   compaction-fill    10 versions of 1000 keys (old tombstones included), held by min.compaction.lag.ms,
#                      in one topic per producer codec (none gzip snappy lz4 zstd)       (du measured after)
#   compaction         lag removed: exactly the latest value per live key remains; describeLogDirs shrinks;
#                      a second round of updates is compacted too; keyless records refused
#   delete-records     deleteRecords -> lowWatermark; earliest offsets, consumers and an idempotent producer follow
#   offsets-for-times  offsetsForTimes / listOffsets by timestamp, plain and gzip, LogAppendTime
#   timestamp-bounds   message.timestamp.after.max.ms (Kafka 4 default 1 h) / before.max.ms -> INVALID_TIMESTAMP
#   restart            graceful broker restart on the same data dir, then
#   after-restart      log starts, configs and compacted contents persisted; retention still runs
# The runner prints `du -sb` of the data dir at each stage and a table at the end (information only:
# the store need not give space back to the filesystem at once; describeLogDirs sizes are checked).
#
# Usage: bash compat-tests/java-lifecycle.sh
# Env (besides FJORD_BIN / FJORD_CACHE from lib.sh):
#   JAVA_LIFECYCLE_SCENARIOS  only these scenarios, by name prefix (default: all). The fill / verify
#                             pairs depend on each other, as does after-restart on all the others.
#   JAVA_COMPAT_COMPILE_ONLY, JAVA_COMPAT_KEEP, JAVA_COMPAT_LOG_LEVEL   as for java.sh
RUNNER=java-lifecycle.sh
CLASSES_SUBDIR=java-lifecycle-classes
source "$(dirname "${BASH_SOURCE[0]}")/java-common.sh"

ONLY="${JAVA_LIFECYCLE_SCENARIOS:-}"
JAVA_LOG_TAIL=40
# Per-JVM bound (java-common.sh sets 300 s): compaction waits up to 30 s per codec and round.
JAVA_TIMEOUT=420

java_prepare

if [ "${JAVA_COMPAT_COMPILE_ONLY:-0}" = 1 ]; then
  echo "$RUNNER: compile-only mode; not starting a broker"
  exit 0
fi
if [ ! -x "$FJORD_BIN" ]; then
  echo "$RUNNER: broker binary $FJORD_BIN not found; build it with 'cargo build --release'" >&2
  exit 1
fi

BROKER_ARGS=(--override log.retention.check.interval.ms=1000 --override log.cleaner.backoff.ms=1000)
JAVA_OPTS=(
  -Xmx1g
  "-Dlog4j2.configurationFile=$SRC/log4j2.properties"
)

DATA="$(mktemp -d "${TMPDIR:-/tmp}/fjord-java-lifecycle.XXXXXX")"
PASSED=()
FAILED=()
DISK=()

cleanup() {
  stop_broker TERM || true
  if [ "${#FAILED[@]}" -eq 0 ] && [ "${JAVA_COMPAT_KEEP:-0}" != 1 ]; then
    rm -rf "$DATA" "$DATA.log"
  else
    echo "$RUNNER: broker data kept in $DATA, log in $DATA.log"
  fi
}
trap cleanup EXIT

if ! start_broker "$DATA" "${BROKER_ARGS[@]}"; then
  FAILED+=(broker-start)
  echo "java-lifecycle: 0 passed, 1 failed"
  exit 1
fi
echo "$RUNNER: broker pid $BROKER_PID on $BOOTSTRAP, data $DATA, args: ${BROKER_ARGS[*]}"

want() {
  local w
  [ -z "$ONLY" ] && return 0
  for w in $ONLY; do
    case "$1" in "$w"*) return 0 ;; esac
  done
  return 1
}

# disk LABEL: du -sb of the data dir (and the files in it), recorded for the final table.
disk() {
  local bytes
  bytes=$(du -sb "$DATA" 2>/dev/null | cut -f1)
  LAST_DU="$bytes"
  DISK+=("$(printf '%-34s %12s bytes' "$1" "$bytes")")
  echo "$RUNNER: du -sb data dir ($1): $bytes bytes"
  (cd "$DATA" && du -ab . 2>/dev/null | sort -k2 | awk '$1 > 0 {printf "    %12d  %s\n", $1, $2}' | head -20) || true
}

# disk_settle LABEL REF_BYTES: the store may give space back only later (sled reclaims its
# segments and blob files lazily), so poll du for up to 20 s until it is below REF_BYTES and
# record when (information only, never a failure).
disk_settle() {
  local label="$1" ref="$2" bytes waited=0
  while :; do
    bytes=$(du -sb "$DATA" 2>/dev/null | cut -f1)
    if [ "$bytes" -lt "$ref" ] || [ "$waited" -ge 20 ]; then break; fi
    sleep 1
    waited=$((waited + 1))
  done
  if [ "$bytes" -lt "$ref" ]; then
    DISK+=("$(printf '%-34s %12s bytes (below %s after %ss)' "$label" "$bytes" "$ref" "$waited")")
  else
    DISK+=("$(printf '%-34s %12s bytes (still not below %s after %ss)' "$label" "$bytes" "$ref" "$waited")")
  fi
  echo "$RUNNER: du -sb data dir ($label): $bytes bytes after ${waited}s (reference $ref)"
}

# run_lc NAME: run_java plus, on failure, the broker's WARN/ERROR lines logged while it ran.
run_lc() {
  local name="$1" before
  before=$(wc -l <"$BROKER_LOG" 2>/dev/null || echo 0)
  if ! run_java "$name" LifecycleScenarios "$name" "$BOOTSTRAP"; then
    echo "--- broker WARN/ERROR lines logged during $name (first 40)"
    tail -n +"$((before + 1))" "$BROKER_LOG" | sed 's/\x1b\[[0-9;]*m//g' | grep -E 'WARN|ERROR|panic' \
      | head -40 | cut -c1-300 || true
    echo "---"
  fi
  # What the cleaner did meanwhile (INFO lines of retention and compaction), for the report.
  echo "--- broker log-maintenance lines during $name (first 12)"
  tail -n +"$((before + 1))" "$BROKER_LOG" | sed 's/\x1b\[[0-9;]*m//g' \
    | grep -E 'retention deleted|compacted|records deleted|configs changed|failed' | head -12 | cut -c1-300 || true
}

disk "empty broker"
if want configs; then run_lc configs; fi
DU_REF=0
if want retention-fill; then run_lc retention-fill; disk "before retention"; DU_REF="$LAST_DU"; fi
if want retention; then
  run_lc retention; disk "after retention"
  if [ "$DU_REF" -gt 0 ]; then disk_settle "after retention, settled" "$DU_REF"; fi
fi
DU_REF=0
if want compaction-fill; then run_lc compaction-fill; disk "before compaction"; DU_REF="$LAST_DU"; fi
if want compaction; then
  run_lc compaction; disk "after compaction"
  if [ "$DU_REF" -gt 0 ]; then disk_settle "after compaction, settled" "$DU_REF"; fi
fi
if want delete-records; then run_lc delete-records; fi
if want offsets-for-times; then run_lc offsets-for-times; fi
if want timestamp-bounds; then run_lc timestamp-bounds; fi
disk "before restart"

if want restart || want after-restart; then
  echo
  echo "=== restart"
  if restart_broker "$DATA" "${BROKER_ARGS[@]}"; then
    PASSED+=(restart)
    echo "$RUNNER: broker restarted, pid $BROKER_PID"
    disk "after restart"
    if want after-restart; then run_lc after-restart; disk "after-restart scenario"; fi
  else
    FAILED+=(restart)
  fi
fi

echo
echo "$RUNNER: data dir size (du -sb; information only):"
printf '  %s\n' "${DISK[@]}"
echo
[ "${#FAILED[@]}" -eq 0 ] || echo "$RUNNER: failed scenarios: ${FAILED[*]}"
echo "java-lifecycle: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[ "${#FAILED[@]}" -eq 0 ]
