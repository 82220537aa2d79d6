#!/usr/bin/env bash
# Kafka Connect 4.3.0, the real distributed worker (org.apache.kafka.connect.cli.ConnectDistributed,
# as bin/connect-distributed.sh runs it, with the whole Kafka libs/ on the classpath), against a
# fresh Fjord broker, driven through its REST API with curl:
#   worker       starts with config/offset/status storage topics on the broker (it creates them,
#                compacted, replication factor 1, and checks their cleanup policy); GET /connectors = []
#   round trip   FileStreamSource (in.txt -> topic connect-lines, created by the worker through
#                topic.creation.default.*) and FileStreamSink (topic -> out.txt): N lines arrive,
#                byte for byte; GET /connectors/file-source/offsets = the file's size
#   pause        PUT .../file-source/pause: connector and task PAUSED; lines appended to in.txt do not
#                reach out.txt and the committed source offset does not move; PUT .../resume: they do
#   restart      SIGTERM the worker, append lines while it is down, start it again: the connectors
#                come back from the config topic, the source resumes at its committed offset and the
#                sink at its group's committed offset: out.txt = in.txt, no line lost or doubled, and
#                the topic holds each line once
#   delete       DELETE both connectors: GET /connectors = [] and .../file-source answers 404
# The broker runs its log cleaner every second (log.cleaner.backoff.ms=1000 instead of 15 s), so
# the storage topics are compacted while the worker runs and before it reads them back.
# Every check prints PASS/FAIL; the run ends with "N passed, N failed" and exits non-zero on failure.
#
# Usage: bash compat-tests/connect.sh [--against fjord|kafka]
#   kafka: the same against the reference Kafka (scripts/kafka-ref.sh), to check the script itself.
# Env: FJORD_BIN, FJORD_CACHE as for lib.sh; KEEP_WORK=1 keeps the work dir (kept on failure);
#      CONNECT_LOG_LEVEL (default info) for the worker log in the work dir.
# Needs java 17, curl and python3; the Kafka jars come from scripts/setup-kafka.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# lib.sh enables errexit; checks here must keep going after a failure to report them all.
set +e

AGAINST=fjord
while [ $# -gt 0 ]; do
  case "$1" in
    --against) AGAINST="${2:-}"; shift 2 ;;
    --against=*) AGAINST="${1#--against=}"; shift ;;
    *) echo "usage: $0 [--against fjord|kafka]" >&2; exit 2 ;;
  esac
done
case "$AGAINST" in fjord|kafka) ;; *) echo "--against must be fjord or kafka" >&2; exit 2 ;; esac

LINES_1=200   # round trip
LINES_2=50    # appended while the source is paused
LINES_3=50    # appended while the worker is down
WAIT=60       # seconds any one step may take
LIBS="$CACHE/kafka-4.3.0/libs"
TOPIC=connect-lines
PASSED=0 FAILED=0
START=$SECONDS

pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
step() { echo; echo "== $*"; }

for cmd in java curl python3; do
  command -v "$cmd" >/dev/null || { echo "connect.sh needs $cmd"; exit 2; }
done
if [ "$AGAINST" = fjord ] && [ ! -x "$FJORD_BIN" ]; then
  echo "broker binary $FJORD_BIN not built (cargo build --release)"; exit 2
fi
FJORD_CACHE="$CACHE" KAFKA_CLIENT_VERSIONS= bash "$ROOT/scripts/setup-kafka.sh" || exit 1
# The broker refuses unknown FJORD_* variables (lib.sh keeps its own copies).
export -n FJORD_BIN FJORD_CACHE 2>/dev/null || true

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-connect.XXXXXX")"
export KAFKA_REF_DIR="$WORK/kafka-ref"
IN="$WORK/in.txt"
OUT="$WORK/out.txt"
WORKER_LOG="$WORK/worker.log"
WORKER_PID=""
KAFKA_UP=0

finish() {
  trap '' INT TERM
  if [ -n "$WORKER_PID" ]; then
    kill -TERM "$WORKER_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$WORKER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$WORKER_PID" 2>/dev/null
    wait "$WORKER_PID" 2>/dev/null
  fi
  stop_broker TERM >/dev/null
  if [ "$KAFKA_UP" = 1 ]; then
    bash "$ROOT/scripts/kafka-ref.sh" stop >/dev/null 2>&1 || echo "could not stop the reference Kafka in $KAFKA_REF_DIR"
  fi
  echo
  if [ "$FAILED" -ne 0 ]; then
    echo "--- worker log: WARN/ERROR lines (first 40 of $(grep -c -E '^\[[^]]*\] (WARN|ERROR)' "$WORKER_LOG" 2>/dev/null))"
    grep -E '^\[[^]]*\] (WARN|ERROR)' "$WORKER_LOG" 2>/dev/null | head -40 | cut -c1-400
    if [ "$AGAINST" = fjord ]; then
      echo "--- fjord log: WARN/ERROR lines (first 30)"
      sed 's/\x1b\[[0-9;]*m//g' "$BROKER_LOG" 2>/dev/null | grep -E 'WARN|ERROR|panic' | head -30 | cut -c1-300
    fi
    echo "--- work dir kept: $WORK (worker.log, worker.properties, in.txt, out.txt)"
  elif [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  echo "connect: $PASSED passed, $FAILED failed ($((SECONDS - START)) s)"
  [ "$FAILED" -eq 0 ]
}
trap 'finish; exit $?' EXIT
trap 'echo interrupted; FAILED=$((FAILED + 1)); exit 130' INT TERM

# --- REST --------------------------------------------------------------------------------------
# rest METHOD PATH [JSON]: prints the body, then a last line with the HTTP status.
rest() {
  local args=(-sS -m 15 -X "$1" -w '\n%{http_code}' "http://127.0.0.1:$REST_PORT$2")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data "$3")
  curl "${args[@]}" 2>&1
}
rest_status() { tail -n 1 <<<"$1"; }
rest_body() { sed '$d' <<<"$1"; }

# json EXPR: evaluates a Python expression over the JSON document on stdin (as `d`).
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null; }

# states NAME: "connector-state task0-state ..." from GET /connectors/NAME/status.
states() {
  rest_body "$(rest GET "/connectors/$1/status")" |
    json '" ".join([d["connector"]["state"]] + [t["state"] for t in sorted(d["tasks"], key=lambda t: t["id"])])'
}

# wait_state NAME WANT: until the connector and its one task are both WANT (bounded).
wait_state() {
  local got=""
  for _ in $(seq 1 $((WAIT * 2))); do
    got="$(states "$1")"
    [ "$got" = "$2 $2" ] && { pass "$1: connector and task $2"; return 0; }
    sleep 0.5
  done
  fail "$1: connector and task not $2 within ${WAIT}s (status: ${got:-none}; $(rest_body "$(rest GET "/connectors/$1/status")" | head -c 600))"
  return 1
}

# source_position: the committed source offset of file-source (GET .../offsets), "none" if absent.
source_position() {
  rest_body "$(rest GET /connectors/file-source/offsets)" |
    json '([o["offset"]["position"] for o in d["offsets"]] or ["none"])[0]'
}

# --- files ---------------------------------------------------------------------------------------
NEXT_LINE=1
# append_lines N: N more numbered lines to in.txt. ASCII only: FileStreamSourceTask counts its
# offset in characters but skips that many bytes when it resumes, so multi-byte UTF-8 would make
# the connector itself (on any broker) re-read a few lines after a restart.
append_lines() {
  local i end=$((NEXT_LINE + $1))
  for ((i = NEXT_LINE; i < end; i++)); do
    printf 'line %05d: the quick brown fox jumps over the lazy dog, n=%d\n' "$i" $((i * 7919 % 1000)) >>"$IN"
  done
  NEXT_LINE=$end
}

# wait_sink LABEL: until out.txt equals in.txt byte for byte (bounded).
wait_sink() {
  for _ in $(seq 1 $((WAIT * 4))); do
    cmp -s "$IN" "$OUT" && { pass "$1: out.txt = in.txt, $(wc -l <"$OUT") lines, byte for byte"; return 0; }
    sleep 0.25
  done
  fail "$1: out.txt differs from in.txt after ${WAIT}s: in $(wc -l <"$IN") lines, out $(wc -l <"$OUT" 2>/dev/null || echo 0) lines"
  diff "$IN" "$OUT" 2>&1 | head -6 | cut -c1-160
  return 1
}

# --- worker ------------------------------------------------------------------------------------
write_worker_config() {
  cat >"$WORK/worker.properties" <<EOF
# Written by compat-tests/connect.sh
bootstrap.servers=$BS
group.id=fjord-connect
config.storage.topic=connect-configs
offset.storage.topic=connect-offsets
status.storage.topic=connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
listeners=http://127.0.0.1:$REST_PORT
# Source offsets and sink consumer offsets are committed every second (default 60 s).
offset.flush.interval.ms=1000
# Only the plugins' ServiceLoader manifests: a reflective scan of the whole libs/ costs seconds.
plugin.discovery=service_load
EOF
}

# worker_start: ConnectDistributed in the background; waits (bounded) until GET /connectors answers 200.
worker_start() {
  local r
  echo "--- worker start" >>"$WORKER_LOG"
  java -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$ROOT/compat-tests/kafka-dist/connect-log4j2.properties" \
    "-Dconnect.log.file=$WORKER_LOG" -cp "$LIBS/*" org.apache.kafka.connect.cli.ConnectDistributed \
    "$WORK/worker.properties" >>"$WORK/worker.stdout" 2>&1 &
  WORKER_PID=$!
  local t0=$SECONDS
  for _ in $(seq 1 $((WAIT * 4))); do
    kill -0 "$WORKER_PID" 2>/dev/null || { fail "worker exited during start-up: $(tail -3 "$WORK/worker.stdout")"; WORKER_PID=""; return 1; }
    r="$(rest GET /connectors)"
    if [ "$(rest_status "$r")" = 200 ]; then
      pass "worker up (pid $WORKER_PID, REST 127.0.0.1:$REST_PORT) in $((SECONDS - t0)) s: GET /connectors = $(rest_body "$r")"
      return 0
    fi
    sleep 0.25
  done
  fail "worker REST API not answering GET /connectors with 200 within ${WAIT}s (last: $(tr '\n' ' ' <<<"$r" | cut -c1-200))"
  return 1
}

# worker_stop: SIGTERM, bounded; true if it exited by itself.
worker_stop() {
  local rc
  kill -TERM "$WORKER_PID" 2>/dev/null
  for _ in $(seq 1 $((WAIT * 5))); do
    kill -0 "$WORKER_PID" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$WORKER_PID" 2>/dev/null; then
    kill -KILL "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null; WORKER_PID=""
    return 1
  fi
  wait "$WORKER_PID"; rc=$?
  WORKER_PID=""
  [ "$rc" -eq 0 ] || [ "$rc" -eq 143 ]
}

# --- run -------------------------------------------------------------------------------------
step "start $AGAINST"
if [ "$AGAINST" = fjord ]; then
  # The cleaner every second instead of every 15 s: the worker's storage topics are compacted,
  # and the restarted worker must read its configs and offsets back from them.
  start_broker "$WORK/data" --override log.cleaner.backoff.ms=1000 || { fail "broker did not start"; exit 1; }
  BS="$BOOTSTRAP"
else
  KAFKA_UP=1
  out="$(KAFKA_REF_HEAP=512m bash "$ROOT/scripts/kafka-ref.sh" start --override log.cleaner.backoff.ms=1000 2>&1)" ||
    { echo "$out" | tail -20; fail "kafka did not start"; exit 1; }
  BS="$(sed -n 's/^bootstrap: //p' <<<"$out")"
fi
pass "$AGAINST listening on $BS"
REST_PORT="$(free_port)"
write_worker_config

step "worker"
worker_start || exit 1
# The worker creates its three storage topics (compacted) and refuses to start if the broker
# reports another cleanup policy for them; its log names each topic it created.
created="$(grep -o 'Created topic (name=connect-[a-z]*, numPartitions=[0-9]*, replicationFactor=[0-9]*, replicasAssignments=null, configs={cleanup.policy=compact})' "$WORKER_LOG" |
  sed 's/Created topic (name=//; s/, replicasAssignments=null//; s/)$//' | sort | paste -sd';')"
if [ "$(grep -o 'connect-[a-z]*' <<<"$created" | paste -sd' ')" = "connect-configs connect-offsets connect-status" ]; then
  pass "the worker created its storage topics: $created"
else
  fail "the worker log does not show connect-configs, connect-offsets and connect-status created compacted (got: ${created:-none})"
fi

step "round trip: FileStreamSource -> $TOPIC -> FileStreamSink"
: >"$IN"
append_lines "$LINES_1"
r="$(rest POST /connectors "$(python3 -c 'import json, sys; print(json.dumps({"name": "file-source", "config": {
  "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "tasks.max": "1",
  "file": sys.argv[1], "topic": sys.argv[2],
  "topic.creation.default.partitions": "1", "topic.creation.default.replication.factor": "1"}}))' "$IN" "$TOPIC")")"
if [ "$(rest_status "$r")" = 201 ]; then pass "POST /connectors file-source: 201"; else fail "POST /connectors file-source: $(tr '\n' ' ' <<<"$r" | cut -c1-300)"; fi
wait_state file-source RUNNING
r="$(rest POST /connectors "$(python3 -c 'import json, sys; print(json.dumps({"name": "file-sink", "config": {
  "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "tasks.max": "1",
  "file": sys.argv[1], "topics": sys.argv[2]}}))' "$OUT" "$TOPIC")")"
if [ "$(rest_status "$r")" = 201 ]; then pass "POST /connectors file-sink: 201"; else fail "POST /connectors file-sink: $(tr '\n' ' ' <<<"$r" | cut -c1-300)"; fi
wait_state file-sink RUNNING
r="$(rest GET /connectors)"
got="$(rest_body "$r" | json 'sorted(d)')"
if [ "$got" = "['file-sink', 'file-source']" ]; then pass "GET /connectors lists both: $got"; else fail "GET /connectors: $(tr '\n' ' ' <<<"$r")"; fi
wait_sink "round trip of $LINES_1 lines"

# wait_position WANT LABEL: until file-source's committed offset is WANT (bounded).
wait_position() {
  local pos=""
  for _ in $(seq 1 $((WAIT * 2))); do
    pos="$(source_position)"
    [ "$pos" = "$1" ] && { pass "$2: committed source offset of file-source = $pos (bytes of in.txt)"; return 0; }
    sleep 0.5
  done
  fail "$2: committed source offset of file-source is ${pos:-?}, expected $1 (GET /connectors/file-source/offsets: $(rest_body "$(rest GET /connectors/file-source/offsets)" | head -c 300))"
  return 1
}
wait_position "$(stat -c %s "$IN")" "after the round trip"

step "pause and resume file-source"
r="$(rest PUT /connectors/file-source/pause)"
if [ "$(rest_status "$r")" = 202 ]; then pass "PUT /connectors/file-source/pause: 202"; else fail "PUT pause: $(tr '\n' ' ' <<<"$r" | cut -c1-300)"; fi
wait_state file-source PAUSED
paused_size="$(stat -c %s "$IN")"
append_lines "$LINES_2"
sleep 6   # a running source picks new lines up within about a second
if [ "$(stat -c %s "$OUT")" = "$paused_size" ] && [ "$(wc -l <"$OUT")" = "$LINES_1" ]; then
  pass "paused: $LINES_2 lines appended to in.txt, none reached out.txt in 6 s (still $LINES_1 lines)"
else
  fail "paused: out.txt changed while file-source was paused: $(wc -l <"$OUT") lines, expected $LINES_1"
fi
pos="$(source_position)"
if [ "$pos" = "$paused_size" ]; then pass "paused: committed source offset unchanged ($pos)"; else fail "paused: committed source offset moved to $pos (was $paused_size)"; fi
r="$(rest PUT /connectors/file-source/resume)"
if [ "$(rest_status "$r")" = 202 ]; then pass "PUT /connectors/file-source/resume: 202"; else fail "PUT resume: $(tr '\n' ' ' <<<"$r" | cut -c1-300)"; fi
wait_state file-source RUNNING
wait_sink "after resume, the $LINES_2 lines appended while paused"
wait_position "$(stat -c %s "$IN")" "after resume"

step "restart the worker (SIGTERM), lines appended while it is down"
before="$(source_position)"
if worker_stop; then pass "worker stopped on SIGTERM (committed source offset then: $before)"; else fail "worker did not exit within $((WAIT))s of SIGTERM (killed)"; fi
append_lines "$LINES_3"
if worker_start; then
  r="$(rest GET /connectors)"
  got="$(rest_body "$r" | json 'sorted(d)')"
  if [ "$got" = "['file-sink', 'file-source']" ]; then pass "after the restart GET /connectors lists both again (read back from connect-configs): $got"
  else fail "after the restart GET /connectors: $(tr '\n' ' ' <<<"$r")"; fi
  wait_state file-source RUNNING
  wait_state file-sink RUNNING
  wait_sink "after the restart: every line once, the $LINES_3 appended while the worker was down included"
  wait_position "$(stat -c %s "$IN")" "after the restart"
fi
total=$((LINES_1 + LINES_2 + LINES_3))
offsets="$(KAFKA_TOOL_TIMEOUT=60 bash "$ROOT/scripts/kafka-tool.sh" kafka-get-offsets --bootstrap-server "$BS" --topic "$TOPIC" 2>&1)"
if [ "$offsets" = "$TOPIC:0:$total" ]; then
  pass "$TOPIC holds exactly $total records (end offset, one partition): the source produced no line twice"
else
  fail "$TOPIC end offsets: expected $TOPIC:0:$total, got: $(tr '\n' ' ' <<<"$offsets" | cut -c1-300)"
fi

step "delete the connectors"
for c in file-source file-sink; do
  r="$(rest DELETE "/connectors/$c")"
  if [ "$(rest_status "$r")" = 204 ]; then pass "DELETE /connectors/$c: 204"; else fail "DELETE /connectors/$c: $(tr '\n' ' ' <<<"$r" | cut -c1-300)"; fi
done
got=""
for _ in $(seq 1 $((WAIT * 2))); do
  got="$(rest_body "$(rest GET /connectors)")"
  [ "$got" = "[]" ] && break
  sleep 0.5
done
if [ "$got" = "[]" ]; then pass "GET /connectors = [] after the deletes"; else fail "GET /connectors after the deletes: $got"; fi
r="$(rest GET /connectors/file-source)"
if [ "$(rest_status "$r")" = 404 ]; then pass "GET /connectors/file-source: 404"; else fail "GET /connectors/file-source after delete: $(tr '\n' ' ' <<<"$r" | cut -c1-200)"; fi

step "stop the worker"
if worker_stop; then pass "worker stopped on SIGTERM"; else fail "worker did not exit within ${WAIT}s of SIGTERM (killed)"; fi
if grep -q -E '^\[[^]]*\] ERROR' "$WORKER_LOG"; then
  echo "note: the worker logged $(grep -c -E '^\[[^]]*\] ERROR' "$WORKER_LOG") ERROR lines; first: $(grep -m1 -E '^\[[^]]*\] ERROR' "$WORKER_LOG" | cut -c1-300)"
fi
