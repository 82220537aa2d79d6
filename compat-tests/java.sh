#!/usr/bin/env bash
# Java compatibility scenarios, driven by the real Apache Kafka kafka-clients 4.3.0 jar against a
# freshly started Fjord broker:
#   admin                      AdminClient topic lifecycle, cluster and config APIs
#   produce-CODEC              100k keyed records with headers, idempotent producer, per codec
#   verify-CODEC               group-less consumer reads them back, every field compared
#   restart                    graceful broker restart on the same data dir
#   verify-after-restart-CODEC the same comparison against the recovered log
#
# Usage: bash compat-tests/java.sh
# Env (besides FJORD_BIN / FJORD_CACHE from lib.sh):
#   JAVA_COMPAT_CODECS        codecs to exercise (default: "none gzip snappy lz4 zstd")
#   JAVA_COMPAT_RECORDS       records per codec (default 100000)
#   JAVA_COMPAT_SEED          data-set seed (default 42)
#   JAVA_COMPAT_COMPILE_ONLY  1 = fetch jars and compile, start no broker
#   JAVA_COMPAT_KEEP          1 = keep the broker data dir and log even when everything passed
#   JAVA_COMPAT_LOG_LEVEL     kafka-clients log level (default warn)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SRC="$ROOT/compat-tests/java"
CLASSES="$CACHE/java-classes"
CODECS="${JAVA_COMPAT_CODECS:-none gzip snappy lz4 zstd}"
RECORDS="${JAVA_COMPAT_RECORDS:-100000}"
SEED="${JAVA_COMPAT_SEED:-42}"
JAVA_TIMEOUT=300

FJORD_CACHE="$CACHE" bash "$ROOT/scripts/fetch-jars.sh"
# The broker reads every FJORD_* environment variable as a setting and refuses to start on an
# unknown one, so the harness's own FJORD_BIN / FJORD_CACHE must not reach it. lib.sh has already
# copied them into shell variables; keep them, just stop exporting them.
export -n FJORD_BIN FJORD_CACHE 2>/dev/null || true

# An explicit classpath rather than $JARS/*: the cache also holds Kafka Connect and its deps,
# which these scenarios must not pick up by accident.
jar_path() {
  local f
  for f in "$JARS"/$1; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}
CP=""
for pat in 'kafka-clients-4.3.0.jar' 'slf4j-api-*.jar' 'lz4-java-*.jar' 'snappy-java-*.jar' 'zstd-jni-*.jar'; do
  f="$(jar_path "$pat")" || { echo "java.sh: missing $pat in $JARS" >&2; exit 1; }
  CP="$CP${CP:+:}$f"
done
# Optional log4j2 binding: with it client warnings show (filtered by log4j2.properties); without it
# slf4j prints a single "no providers" notice and stays silent.
for pat in 'log4j-api-*.jar' 'log4j-core-*.jar' 'log4j-slf4j2-impl-*.jar'; do
  if f="$(jar_path "$pat")"; then CP="$CP:$f"; fi
done

echo "java.sh: compiling $SRC -> $CLASSES"
rm -rf "$CLASSES"
mkdir -p "$CLASSES"
timeout 300 javac --release 17 -Xlint:all -encoding UTF-8 -d "$CLASSES" -cp "$CP" "$SRC"/*.java

if [ "${JAVA_COMPAT_COMPILE_ONLY:-0}" = 1 ]; then
  echo "java.sh: compile-only mode; not starting a broker"
  exit 0
fi
if [ ! -x "$FJORD_BIN" ]; then
  echo "java.sh: broker binary $FJORD_BIN not found; build it with 'cargo build --release'" >&2
  exit 1
fi

JAVA_OPTS=(
  -Xmx1g
  "-Dlog4j2.configurationFile=$SRC/log4j2.properties"
  "-Dfjord.records=$RECORDS"
)
# Fixed for the whole run so produce and every later verify regenerate identical timestamps.
TS_BASE="$(date +%s%3N)"

DATA="$(mktemp -d "${TMPDIR:-/tmp}/fjord-java-compat.XXXXXX")"
PASSED=()
FAILED=()

cleanup() {
  stop_broker TERM || true
  if [ "${#FAILED[@]}" -eq 0 ] && [ "${JAVA_COMPAT_KEEP:-0}" != 1 ]; then
    rm -rf "$DATA" "$DATA.log"
  else
    echo "java.sh: broker data kept in $DATA, log in $DATA.log"
  fi
}
trap cleanup EXIT

# run_java NAME MAIN_CLASS [ARGS...]: one scenario in its own bounded JVM; records the outcome.
run_java() {
  local name="$1"; shift
  local rc=0
  echo
  echo "=== $name"
  timeout "$JAVA_TIMEOUT" java "${JAVA_OPTS[@]}" -cp "$CLASSES:$CP" "$@" || rc=$?
  if [ "$rc" -eq 0 ]; then
    PASSED+=("$name")
    return 0
  fi
  [ "$rc" -eq 124 ] && echo "java.sh: $name timed out after ${JAVA_TIMEOUT}s"
  FAILED+=("$name")
  if ! kill -0 "${BROKER_PID:-0}" 2>/dev/null; then echo "java.sh: the broker process is no longer running"; fi
  echo "--- broker log tail ($BROKER_LOG)"
  # Colour codes stripped and lines clipped: tracing output is unreadable otherwise.
  tail -n 30 "$BROKER_LOG" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-300 || true
  echo "---"
}

if ! start_broker "$DATA"; then
  FAILED+=(broker-start)
  echo "java-compat: 0 passed, 1 failed"
  exit 1
fi
echo "java.sh: broker pid $BROKER_PID on $BOOTSTRAP, data $DATA"

run_java admin AdminScenario "$BOOTSTRAP"
for codec in $CODECS; do
  run_java "produce-$codec" ProduceVerify produce "$BOOTSTRAP" "$codec" "$SEED" "$TS_BASE"
done
for codec in $CODECS; do
  run_java "verify-$codec" ProduceVerify verify "$BOOTSTRAP" "$codec" "$SEED" "$TS_BASE"
done

echo
echo "=== restart"
if restart_broker "$DATA"; then
  PASSED+=(restart)
  echo "java.sh: broker restarted, pid $BROKER_PID"
  for codec in $CODECS; do
    run_java "verify-after-restart-$codec" ProduceVerify verify "$BOOTSTRAP" "$codec" "$SEED" "$TS_BASE"
  done
else
  FAILED+=(restart)
fi

echo
[ "${#FAILED[@]}" -eq 0 ] || echo "java.sh: failed scenarios: ${FAILED[*]}"
# The only line shaped like a test-runner summary, so CI reads the scenario tally from it.
echo "java-compat: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[ "${#FAILED[@]}" -eq 0 ]
