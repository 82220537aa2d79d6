#!/usr/bin/env bash
# Regenerates the fuzz seed corpora (fuzz/corpus/{frame_decode,record_batch,produce_body}) from
# REAL client traffic: starts a Fjord broker (target/release/fjord) advertising the capture
# proxy's address, runs fuzz/capture.py in front of it, drives kcat, confluent-kafka,
# kafka-python and (when Java and the jars are available) the Apache Kafka Java client through
# the proxy, then selects a small spread of the captured frames into fuzz/corpus/.
#
# Usage: bash fuzz/capture-corpus.sh [RAW_CAPTURE_DIR]
# Needs what scripts/test.sh installs: kcat, .cache/venv (scripts/setup-python.sh), and for
# Java the jars (scripts/setup-kafka.sh). Set CAPTURE_JAVA=0 to skip the Java client.
set -uo pipefail
RUNNER=capture-corpus.sh
CLASSES_SUBDIR=java-capture-classes
source "$(dirname "${BASH_SOURCE[0]}")/../compat-tests/java-common.sh"
set +e
FUZZ="$ROOT/fuzz"
RAW="${1:-$(mktemp -d "${TMPDIR:-/tmp}/fjord-capture.XXXXXX")}"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/fjord-capture-data.XXXXXX")"
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=python3

PROXY_PORT="$(free_port)"
PROXY="127.0.0.1:$PROXY_PORT"
PROXY_PID=
cleanup() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
  stop_broker TERM || true
  rm -rf "$DATA" "$DATA.log"
}
trap cleanup EXIT

# The broker advertises the proxy, so clients keep talking through it after bootstrap.
start_broker "$DATA" --advertised-listeners "PLAINTEXT://$PROXY" \
  --override group.initial.rebalance.delay.ms=0 || exit 1
python3 "$FUZZ/capture.py" proxy --port "$PROXY_PORT" --upstream "$BOOTSTRAP" --out "$RAW" &
PROXY_PID=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && break; sleep 0.1; done
echo "$RUNNER: broker $BOOTSTRAP, proxy $PROXY, capture in $RAW"

# ---------------------------------------------------------------- kcat (librdkafka CLI)
if command -v kcat >/dev/null; then
  K=(timeout 30 kcat -b "$PROXY" -X topic.metadata.refresh.interval.ms=1000)
  "${K[@]}" -L >/dev/null
  for codec in none gzip snappy lz4 zstd; do
    seq 1 200 | awk '{printf "key%d:value %d %s\n", $1 % 13, $1, substr("abcdefghijklmnopqrstuvwxyz", 1, $1 % 26)}' \
      | "${K[@]}" -P -t "kcat-$codec" -K: -H app=kcat -H "codec=$codec" -z "$codec"
    "${K[@]}" -L -t "kcat-$codec" >/dev/null
  done
  # Idempotent producer, keyless values.
  seq 1 100 | "${K[@]}" -P -t kcat-idem -X enable.idempotence=true -z lz4
  "${K[@]}" -C -t kcat-gzip -o beginning -e -q -f '%k %s %h\n' >/dev/null
  "${K[@]}" -C -t kcat-zstd -p 0 -o -5 -e -q >/dev/null
  "${K[@]}" -Q -t kcat-none:0:-1 -t kcat-lz4:0:-2 >/dev/null
  timeout 20 kcat -b "$PROXY" -G kcat-group -o beginning -e -q kcat-none kcat-snappy >/dev/null
  # Ask librdkafka for the older protocol versions it uses with brokers that do not answer
  # ApiVersions (best effort: recent librdkafka still sends ApiVersions-era versions for some).
  for fallback in 0.11.0 1.0.0 2.0.0; do
    KO=("${K[@]}" -X api.version.request=false -X "broker.version.fallback=$fallback")
    seq 1 30 | awk '{print "old" $1 ":v" $1}' | "${KO[@]}" -P -t "kcat-old" -K: -z gzip
    "${KO[@]}" -C -t kcat-old -o beginning -e -q >/dev/null
    timeout 20 kcat -b "$PROXY" -X api.version.request=false -X "broker.version.fallback=$fallback" \
      -G "kcat-old-group-$fallback" -o beginning -e -q kcat-old >/dev/null
  done
  echo "$RUNNER: kcat done"
else
  echo "$RUNNER: kcat not installed; skipped"
fi

# ---------------------------------------------------------------- Python clients
timeout 600 "$PY" "$FUZZ/capture_clients.py" "$PROXY"

# ---------------------------------------------------------------- Java kafka-clients
if [ "${CAPTURE_JAVA:-1}" = 1 ] && command -v javac >/dev/null; then
  JAVA_TIMEOUT=180
  JAVA_OPTS=(-Xmx512m "-Dlog4j2.configurationFile=$SRC/log4j2.properties" -Dfjord.records=1500)
  PASSED=()
  FAILED=()
  if java_prepare >/dev/null; then
    TS_BASE="$(date +%s%3N)"
    run_java admin AdminScenario "$PROXY"
    for codec in none gzip snappy lz4 zstd; do
      run_java "produce-$codec" ProduceVerify produce "$PROXY" "$codec" 7 "$TS_BASE"
    done
    run_java verify-zstd ProduceVerify verify "$PROXY" zstd 7 "$TS_BASE"
    run_java commit-resume-classic GroupScenarios commit-resume classic "$PROXY"
    run_java commit-resume-consumer GroupScenarios commit-resume consumer "$PROXY"
    run_java txn-interleave TxnScenarios interleave "$PROXY"
    echo "$RUNNER: java passed: ${PASSED[*]:-}; failed: ${FAILED[*]:-}"
  else
    echo "$RUNNER: java setup failed; skipped"
  fi
fi

kill "$PROXY_PID"
wait "$PROXY_PID"
PROXY_PID=

python3 "$FUZZ/capture.py" select --raw "$RAW" \
  --frames "$FUZZ/corpus/frame_decode" \
  --batches "$FUZZ/corpus/record_batch" \
  --produce "$FUZZ/corpus/produce_body"
echo "$RUNNER: raw capture kept in $RAW"
