#!/usr/bin/env bash
# Shared by the Java runners (compat-tests/java*.sh), scripts/bench-groups.sh and
# fuzz/capture-corpus.sh: the kafka-clients classpath, compiling compat-tests/java/*.java, and
# run_java, which runs one scenario in its own bounded JVM. Source it (it sources lib.sh);
# java_prepare resolves the jars with scripts/setup-kafka.sh (a no-op once cached). Optional, set
# before sourcing:
#   RUNNER   prefix of this file's messages (default java.sh)
#   CLASSES_SUBDIR  directory under $CACHE for the compiled classes, wiped on every compile
#                   (default java-classes; each runner has its own so they can run side by side)
#   KAFKA_CLIENT_VERSION  kafka-clients release to run with (default 4.3.0, the one the Kafka
#                   install carries; e.g. 4.4.0 for the newest, resolved on first use)
# After sourcing, the caller defines JAVA_OPTS (array) and PASSED / FAILED (arrays) for run_java.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNNER="${RUNNER:-java.sh}"
SRC="$ROOT/compat-tests/java"
JAVA_TIMEOUT=300
KAFKA_VERSION=4.3.0
KAFKA_CLIENT_VERSION="${KAFKA_CLIENT_VERSION:-$KAFKA_VERSION}"
# Where scripts/setup-kafka.sh puts each client: 4.3.0 comes with the full Kafka install, any
# other release has a clients-only directory of its own.
if [ "$KAFKA_CLIENT_VERSION" = "$KAFKA_VERSION" ]; then
  JARS="$CACHE/kafka-$KAFKA_VERSION/libs"
  CLASSES="$CACHE/${CLASSES_SUBDIR:-java-classes}"
else
  JARS="$CACHE/kafka-clients-$KAFKA_CLIENT_VERSION/libs"
  # Compiled against that client, and kept apart so a run with each client can go side by side.
  CLASSES="$CACHE/${CLASSES_SUBDIR:-java-classes}-$KAFKA_CLIENT_VERSION"
fi

# An explicit classpath rather than $JARS/*: the Kafka install also holds the broker, Streams,
# Connect and their dependencies, which the client scenarios must not pick up by accident.
jar_path() {
  local f
  for f in "$JARS"/$1; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

# java_prepare: installs the jars (idempotent), sets CP, compiles every scenario source.
java_prepare() {
  local pat f
  FJORD_CACHE="$CACHE" KAFKA_CLIENT_VERSIONS="$KAFKA_CLIENT_VERSION" bash "$ROOT/scripts/setup-kafka.sh"
  # The broker reads every FJORD_* environment variable as a setting and refuses to start on an
  # unknown one, so the harness's own FJORD_BIN / FJORD_CACHE must not reach it. lib.sh has already
  # copied them into shell variables; keep them, just stop exporting them.
  export -n FJORD_BIN FJORD_CACHE 2>/dev/null || true

  CP=""
  # The client and its runtime dependencies (the codecs load lazily, so a missing one would only
  # show up on first use of that codec).
  for pat in "kafka-clients-$KAFKA_CLIENT_VERSION.jar" 'slf4j-api-*.jar' 'lz4-java-*.jar' 'snappy-java-*.jar' 'zstd-jni-*.jar'; do
    f="$(jar_path "$pat")" || { echo "$RUNNER: missing $pat in $JARS" >&2; exit 1; }
    CP="$CP${CP:+:}$f"
  done
  # Optional log4j2 binding: with it client warnings show (filtered by log4j2.properties); without it
  # slf4j prints a "no binding" notice and stays silent. The clients declare slf4j-api 1.7, so the
  # binding is log4j-slf4j-impl, not log4j-slf4j2-impl.
  for pat in 'log4j-api-*.jar' 'log4j-core-*.jar' 'log4j-slf4j-impl-*.jar'; do
    if f="$(jar_path "$pat")"; then CP="$CP:$f"; fi
  done
  echo "$RUNNER: kafka-clients $KAFKA_CLIENT_VERSION from $JARS"

  echo "$RUNNER: compiling $SRC -> $CLASSES"
  rm -rf "$CLASSES"
  mkdir -p "$CLASSES"
  timeout 300 javac --release 17 -Xlint:all -encoding UTF-8 -d "$CLASSES" -cp "$CP" "$SRC"/*.java
}

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
  [ "$rc" -eq 124 ] && echo "$RUNNER: $name timed out after ${JAVA_TIMEOUT}s"
  FAILED+=("$name")
  if ! kill -0 "${BROKER_PID:-0}" 2>/dev/null; then echo "$RUNNER: the broker process is no longer running"; fi
  echo "--- broker log tail ($BROKER_LOG)"
  # Colour codes stripped and lines clipped: tracing output is unreadable otherwise.
  tail -n "${JAVA_LOG_TAIL:-30}" "$BROKER_LOG" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-300 || true
  echo "---"
}
