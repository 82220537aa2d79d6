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
#   KAFKA_CLIENT_VERSION      kafka-clients release (default 4.3.0; scripts/test.sh also runs 4.4.0)
# lib.sh, the classpath, compiling and run_java live in java-common.sh (shared with java-groups.sh).
RUNNER=java.sh
CLASSES_SUBDIR=java-classes
source "$(dirname "${BASH_SOURCE[0]}")/java-common.sh"

CODECS="${JAVA_COMPAT_CODECS:-none gzip snappy lz4 zstd}"
RECORDS="${JAVA_COMPAT_RECORDS:-100000}"
SEED="${JAVA_COMPAT_SEED:-42}"

java_prepare

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
