#!/usr/bin/env bash
# Kafka Streams 4.3.0 (the real library, compat-tests/streams/StreamsCompat.java) against a fresh
# Fjord broker and against the real Kafka (scripts/kafka-ref.sh, one KRaft node), with the same
# input, and the output of both compared byte for byte.
#
# The application: input topic purchases (3000 records, key = user id, value = amount, fixed seed,
# explicit timestamps 400 ms apart over 20 minutes from 2026-01-01T00:00Z, one in ten up to 20 s
# late) -> selectKey(region) -> repartition topic -> (a) a running sum per region, a KTable with a
# changelog topic, and (b) a count per region and 1-minute tumbling window with 30 s grace, a
# windowed store with a changelog topic; each aggregate's updates go to an output topic.
# processing.guarantee=exactly_once_v2, statestore.cache.max.bytes=0, commit.interval.ms=200.
#
# Why the whole output stream can be compared, not just the last value per key: every topic has
# one partition, so one task writes the repartition topic in input order and one task writes each
# output topic in repartition order; without a record cache every update is forwarded, so the
# output is the full sequence of aggregate values, whatever the commit timing. No input record is
# later than the grace period, so none is dropped (the late-record cut-off depends on stream time
# an instance has seen, which a restarted instance starts again from scratch). The expected output
# is also computed independently (a model in StreamsCompat setup), which checks the reference too.
#
# Checks (PASS/FAIL each), per broker:
#   setup        topics created, input produced (idempotent, acks=all)
#   run a        the app (application.id streams-a) processes everything; then SIGTERM; both
#                output topics, read with a read_committed consumer, equal the model exactly
#                (partition, key bytes, value bytes, timestamp, order)
#   run k        (Fjord; on Kafka with --against kafka) application.id streams-k, three instances
#                (JVMs) one after the other with the same state dir, so the same transactional.id:
#                1 blocks its stream thread inside an open transaction after 1000 updates and is
#                  SIGKILLed there (transaction.timeout.ms 60 s: only instance 2 can end it);
#                2 starts right away: its InitProducerId fences 1 and aborts that transaction; it
#                  restores the stores from the changelogs, resumes, and is SIGKILLed the same way
#                  (transaction.timeout.ms 5 s): the broker must abort it on the timeout, and the
#                  log cleaner gets a few seconds on the compacted changelogs before
#                3 restores again and runs to the end.
#                After each kill the committed output is a strict prefix of run a's; at the end it
#                equals run a's exactly (whole stream, so the last value per key too, no update
#                doubled or lost); the aborted transactions' records are in the log
#                (read_uncommitted sees them) but not in the read_committed output
# and between brokers: run a's output topics from Fjord equal Kafka's byte for byte.
#
# Usage: bash compat-tests/java-streams.sh [--against both|fjord|kafka]
#   both (default): Kafka (run a) as the reference, then Fjord (runs a and k)
#   fjord / kafka:  that broker only, runs a and k (kafka: to check the script itself)
# Env: FJORD_BIN, FJORD_CACHE as for lib.sh; KEEP_WORK=1 keeps the work dir (kept on failure);
#      JAVA_STREAMS_LOG_LEVEL (default info) for the app's log files in the work dir.
# Needs java/javac 17 and python3; the Kafka jars come from scripts/setup-kafka.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# lib.sh enables errexit; checks here must keep going after a failure to report them all.
set +e

AGAINST=both
while [ $# -gt 0 ]; do
  case "$1" in
    --against) AGAINST="${2:-}"; shift 2 ;;
    --against=*) AGAINST="${1#--against=}"; shift ;;
    *) echo "usage: $0 [--against both|fjord|kafka]" >&2; exit 2 ;;
  esac
done
case "$AGAINST" in both|fjord|kafka) ;; *) echo "--against must be both, fjord or kafka" >&2; exit 2 ;; esac

RECORDS=3000        # StreamsCompat.RECORDS: updates each output topic gets
PAUSE_AT=1000       # run k: the update after which the stream thread blocks and is killed
APP_WAIT=150        # seconds an app run may take to produce all its output
SRC="$ROOT/compat-tests/streams"
LIBS="$CACHE/kafka-4.3.0/libs"
CLASSES="$CACHE/java-streams-classes"
OUTPUTS=(region-totals region-minute-counts)
PASSED=0 FAILED=0
START=$SECONDS

pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
step() { echo; echo "== $*"; }

for cmd in java javac python3; do
  command -v "$cmd" >/dev/null || { echo "java-streams.sh needs $cmd"; exit 2; }
done
if [ "$AGAINST" != kafka ] && [ ! -x "$FJORD_BIN" ]; then
  echo "broker binary $FJORD_BIN not built (cargo build --release)"; exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-java-streams.XXXXXX")"
export KAFKA_REF_DIR="$WORK/kafka-ref"
APP_PID=""
DUMP_PID=""
KAFKA_UP=0

finish() {
  trap '' INT TERM
  [ -n "$DUMP_PID" ] && kill -TERM "$DUMP_PID" 2>/dev/null && wait "$DUMP_PID" 2>/dev/null
  [ -n "$APP_PID" ] && kill -KILL "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
  stop_broker TERM >/dev/null
  if [ "$KAFKA_UP" = 1 ]; then
    bash "$ROOT/scripts/kafka-ref.sh" stop >/dev/null 2>&1 || echo "could not stop the reference Kafka in $KAFKA_REF_DIR"
  fi
  echo
  if [ "$FAILED" -ne 0 ]; then
    echo "--- work dir kept: $WORK (<broker>/: app-<run>.out and .log, dumps; fjord/data.log: the broker log)"
  elif [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  echo "java-streams: $PASSED passed, $FAILED failed ($((SECONDS - START)) s)"
  [ "$FAILED" -eq 0 ]
}
trap 'finish; exit $?' EXIT
trap 'echo interrupted; FAILED=$((FAILED + 1)); exit 130' INT TERM

# --- compile ---------------------------------------------------------------------------------
FJORD_CACHE="$CACHE" KAFKA_CLIENT_VERSIONS= bash "$ROOT/scripts/setup-kafka.sh" || exit 1
# The broker refuses unknown FJORD_* variables (lib.sh keeps its own copies).
export -n FJORD_BIN FJORD_CACHE 2>/dev/null || true
# Streams, the client and their runtime dependencies only, not the whole Kafka install.
CP=""
for pat in kafka-streams-4.3.0.jar kafka-clients-4.3.0.jar 'rocksdbjni-*.jar' 'slf4j-api-*.jar' \
    'jackson-annotations-*.jar' 'jackson-databind-*.jar' 'jackson-core-*.jar' 'lz4-java-*.jar' \
    'snappy-java-*.jar' 'zstd-jni-*.jar' 'log4j-api-*.jar' 'log4j-core-*.jar' 'log4j-slf4j-impl-*.jar'; do
  f="$(compgen -G "$LIBS/$pat" | head -1)"
  [ -n "$f" ] || { echo "missing $pat in $LIBS"; exit 1; }
  CP="$CP${CP:+:}$f"
done
rm -rf "$CLASSES" && mkdir -p "$CLASSES"
if ! timeout 300 javac --release 17 -Xlint:all -encoding UTF-8 -d "$CLASSES" -cp "$CP" "$SRC"/*.java; then
  fail "javac $SRC/*.java"; exit 1
fi
JVM=(java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$SRC/log4j2.properties")

# jrun SECONDS LOG ARGS...: one bounded StreamsCompat run (setup, dump) in the foreground.
jrun() {
  local secs="$1" log="$2"; shift 2
  timeout -k 5 "$secs" "${JVM[@]}" "-Dstreams.log.file=$log" -cp "$CLASSES:$CP" StreamsCompat "$@"
}

# --- brokers ---------------------------------------------------------------------------------
# broker_up SIDE: a fresh broker; sets BS and BROKER_LOG_FILE.
broker_up() {
  if [ "$1" = fjord ]; then
    BROKER_PORT=""
    # As Kafka's shipped server.properties (and kafka-ref.sh): no 3 s wait before a group's first
    # rebalance; every app start is a new group generation. The cleaner every second instead of
    # every 15 s: the changelog topics are compacted, and run k must see compaction run while the
    # killed instance's transaction is open and after it is aborted, before the restore.
    start_broker "$WORK/fjord/data" --override group.initial.rebalance.delay.ms=0 \
      --override log.cleaner.backoff.ms=1000 || return 1
    BS="$BOOTSTRAP"
    BROKER_LOG_FILE="$BROKER_LOG"
    echo "fjord: pid $BROKER_PID on $BS ($FJORD_BIN)"
  else
    local out
    KAFKA_UP=1
    # Timed-out transactions aborted within a second (Kafka checks every 10 s by default, Fjord
    # twice a second), so run k does not wait up to 10 s longer on Kafka.
    out="$(KAFKA_REF_HEAP=512m bash "$ROOT/scripts/kafka-ref.sh" start --override log.cleaner.backoff.ms=1000 \
      --override transaction.abort.timed.out.transaction.cleanup.interval.ms=1000 2>&1)" ||
      { echo "$out" | tail -20; return 1; }
    BS="$(sed -n 's/^bootstrap: //p' <<<"$out")"
    BROKER_LOG_FILE="$KAFKA_REF_DIR/node1/server.log"
    echo "kafka: $BS"
  fi
}

broker_down() {
  if [ "$1" = fjord ]; then
    stop_broker TERM
  else
    bash "$ROOT/scripts/kafka-ref.sh" stop >/dev/null 2>&1
    KAFKA_UP=0
  fi
}

# --- the app ---------------------------------------------------------------------------------
# app_start DIR RUN PAUSE_AT TXN_TIMEOUT_MS: the Streams app in the background, its own JVM
# (APP_PID is the JVM itself, so SIGKILL reaches it); stdout appended to DIR/app-RUN.out, log to
# DIR/app-RUN.log. TXN_TIMEOUT_MS 0 keeps the Streams default (10 s).
app_start() {
  local d="$1" run="$2" pause="$3" txn="$4"
  echo "--- app start (pause at $pause, transaction.timeout.ms $txn)" >>"$d/app-$run.out"
  "${JVM[@]}" "-Dstreams.log.file=$d/app-$run.log" -cp "$CLASSES:$CP" StreamsCompat app "$BS" \
    "streams-$run" "$d/state-$run" "$run" "$pause" "$txn" >>"$d/app-$run.out" 2>&1 &
  APP_PID=$!
}

# app_stop: SIGTERM (KafkaStreams.close, which commits), bounded; true if it exited cleanly.
app_stop() {
  local rc
  [ -n "$APP_PID" ] || return 0
  kill -TERM "$APP_PID" 2>/dev/null
  for _ in $(seq 1 450); do
    kill -0 "$APP_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$APP_PID" 2>/dev/null; then
    kill -KILL "$APP_PID" 2>/dev/null; wait "$APP_PID" 2>/dev/null; APP_PID=""; return 1
  fi
  wait "$APP_PID"; rc=$?
  APP_PID=""
  # 143 = exited on SIGTERM after the shutdown hook ran.
  [ "$rc" -eq 0 ] || [ "$rc" -eq 143 ]
}

# wait_outputs DIR RUN: waits (bounded) until both output topics of RUN hold RECORDS committed
# records, while the app keeps running; false on timeout or if the app dies.
wait_outputs() {
  local d="$1" run="$2" t deadline=$((SECONDS + APP_WAIT)) left
  for t in "${OUTPUTS[@]}"; do
    left=$((deadline - SECONDS)); [ "$left" -gt 5 ] || left=5
    # Not through jrun: DUMP_PID must be timeout's own pid, which passes a SIGTERM on to the JVM.
    timeout -k 5 $((left + 30)) "${JVM[@]}" "-Dstreams.log.file=$d/dump.log" -cp "$CLASSES:$CP" StreamsCompat \
      dump "$BS" "$t-$run" "$d/wait.$t-$run" read_committed "$RECORDS" "$left" >>"$d/dump.out" 2>&1 &
    DUMP_PID=$!
    while kill -0 "$DUMP_PID" 2>/dev/null; do
      if ! kill -0 "$APP_PID" 2>/dev/null; then
        kill -TERM "$DUMP_PID" 2>/dev/null; wait "$DUMP_PID" 2>/dev/null; DUMP_PID=""
        echo "the app exited before its output was complete"; return 1
      fi
      sleep 0.5
    done
    wait "$DUMP_PID" || { DUMP_PID=""; tail -1 "$d/dump.out"; return 1; }
    DUMP_PID=""
  done
}

# dump_all DIR RUN ISOLATION PREFIX: every output topic of RUN, up to its end, into DIR/PREFIX.<topic>.
dump_all() {
  local d="$1" run="$2" iso="$3" prefix="$4" t ok=0
  for t in "${OUTPUTS[@]}"; do
    jrun 90 "$d/dump.log" dump "$BS" "$t-$run" "$d/$prefix.$t" "$iso" 0 60 >>"$d/dump.out" 2>&1 || ok=1
  done
  return $ok
}

# compare_files LABEL EXPECTED GOT: PASS if identical, else FAIL with the first differences.
compare_files() {
  local label="$1" exp="$2" got="$3"
  if cmp -s "$exp" "$got"; then
    pass "$label: $(wc -l <"$got") records identical (partition, key bytes, value bytes, timestamp, order)"
  else
    fail "$label: differs ($(wc -l <"$exp") expected records, $(wc -l <"$got") got); first differences (< expected, > got):"
    diff "$exp" "$got" | head -12 | cut -c1-200
  fi
}

# last_values FILE: "key<TAB>value" of the last record of each key, sorted by key.
last_values() {
  awk -F'\t' '{ last[$2] = $3 } END { for (k in last) print k "\t" last[k] }' "$1" | sort
}

# show_app_problems DIR RUN: what the app printed and its log's warnings and errors.
show_app_problems() {
  local d="$1" run="$2"
  echo "--- app-$run.out (last 15 lines)"
  tail -n 15 "$d/app-$run.out" 2>/dev/null | cut -c1-300
  echo "--- WARN/ERROR lines of app-$run.log (first 25)"
  grep -E ' (WARN|ERROR) ' "$d/app-$run.log" 2>/dev/null | head -25 | cut -c1-400
  echo "---"
}

# run_a SIDE DIR: the uninterrupted run.
run_a() {
  local side="$1" d="$2" t
  step "$side: run a (application.id streams-a), uninterrupted"
  app_start "$d" a -1 0
  if wait_outputs "$d" a; then
    pass "$side run a: both output topics reached $RECORDS committed records ($((SECONDS - RUN_START)) s since the app started)"
  else
    fail "$side run a: outputs incomplete after ${APP_WAIT}s"
    show_app_problems "$d" a
  fi
  if app_stop; then pass "$side run a: the app closed on SIGTERM"; else fail "$side run a: the app did not close cleanly on SIGTERM"; fi
  dump_all "$d" a read_committed a || fail "$side run a: dumping the output topics failed: $(tail -2 "$d/dump.out")"
  for t in "${OUTPUTS[@]}"; do
    compare_files "$side run a: $t-a (read_committed) vs the model" "$WORK/$side/model.$t" "$d/a.$t"
  done
}

# kill_instance SIDE DIR N TXN_TIMEOUT_MS: instance N of run k, started with a stream thread that
# blocks inside an open transaction after PAUSE_AT updates, is SIGKILLed there; then its
# committed output must be a strict prefix of run a's (and no shorter than after the last kill).
PREFIX=0
kill_instance() {
  local side="$1" d="$2" n="$3" txn="$4" paused=0 t len
  app_start "$d" k "$PAUSE_AT" "$txn"
  for _ in $(seq 1 $((APP_WAIT * 5))); do
    [ "$(grep -c '^PAUSED' "$d/app-k.out")" -ge "$n" ] && { paused=1; break; }
    kill -0 "$APP_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [ "$paused" != 1 ]; then
    fail "$side run k: instance $n never reached its update $PAUSE_AT"
    show_app_problems "$d" k
    app_stop
    return 1
  fi
  sleep 1  # the producer sends what the open transaction holds (linger.ms=100)
  kill -KILL "$APP_PID"; wait "$APP_PID" 2>/dev/null; APP_PID=""
  pass "$side run k: instance $n SIGKILLed with its stream thread blocked inside an open transaction (transaction.timeout.ms $txn)"
  dump_all "$d" k read_committed "killed$n" ||
    fail "$side run k: dumping the output after killing instance $n failed: $(tail -2 "$d/dump.out")"
  for t in "${OUTPUTS[@]}"; do
    len=$(wc -l <"$d/killed$n.$t")
    if [ "$len" -lt "$RECORDS" ] && [ "$len" -ge "$PREFIX" ] && cmp -s "$d/killed$n.$t" <(head -n "$len" "$d/a.$t"); then
      pass "$side run k: after killing instance $n, $t-k holds $len committed records, a prefix of run a's"
    else
      fail "$side run k: after killing instance $n, $t-k holds $len committed records, not a strict prefix of run a's $(wc -l <"$d/a.$t") (at least $PREFIX)"
    fi
  done
  PREFIX=$(wc -l <"$d/killed$n.region-totals")
}

# run_k SIDE DIR: three instances of application streams-k, all with the same state dir (so the
# same process id and transactional.id):
#   1  SIGKILLed inside a transaction, with transaction.timeout.ms 60 s so that only instance 2
#      can end it;
#   2  started right away: its InitProducerId fences instance 1 and aborts that transaction; it
#      restores the stores from the changelogs, resumes, and is SIGKILLed inside a transaction
#      too, with transaction.timeout.ms 5 s; the broker aborts that one on its timeout, and
#      the (compacted) changelogs are left to the log cleaner for a few seconds;
#   3  restores again, runs to the end; its committed output must be run a's, byte for byte.
run_k() {
  local side="$1" d="$2" t n aborted=0 counts=""
  step "$side: run k (application.id streams-k), two SIGKILLs inside transactions, then to the end"
  PREFIX=0
  kill_instance "$side" "$d" 1 60000 || return
  kill_instance "$side" "$d" 2 5000 || return
  if jrun 90 "$d/dump.log" stable "$BS" 60 "${OUTPUTS[@]/%/-k}" streams-k-by-region-repartition \
      streams-k-region-totals-changelog streams-k-region-minute-counts-changelog >"$d/stable.out" 2>&1; then
    pass "$side run k: the broker aborted instance 2's transaction on its timeout: $(tail -1 "$d/stable.out")"
  else
    fail "$side run k: instance 2's transaction not ended by the broker: $(tail -1 "$d/stable.out")"
  fi
  sleep 3  # the log cleaner runs every second (broker_up)

  RUN_START=$SECONDS
  app_start "$d" k -1 0
  if wait_outputs "$d" k; then
    pass "$side run k: instance 3 completed both outputs ($((SECONDS - RUN_START)) s after it started)"
  else
    fail "$side run k: outputs incomplete ${APP_WAIT}s after instance 3 started"
    show_app_problems "$d" k
  fi
  if app_stop; then pass "$side run k: the app closed on SIGTERM"; else fail "$side run k: the app did not close cleanly on SIGTERM"; fi
  dump_all "$d" k read_committed k || fail "$side run k: dumping the output topics failed: $(tail -2 "$d/dump.out")"
  for t in "${OUTPUTS[@]}"; do
    compare_files "$side run k: $t-k vs run a's $t-a (whole read_committed stream)" "$d/a.$t" "$d/k.$t"
    if cmp -s <(last_values "$d/a.$t") <(last_values "$d/k.$t"); then
      pass "$side run k: $t-k last value per key equals run a's ($(last_values "$d/k.$t" | wc -l) keys)"
    else
      fail "$side run k: $t-k last value per key differs from run a's:"
      diff <(last_values "$d/a.$t") <(last_values "$d/k.$t") | head -10
    fi
  done
  echo "restores: $(grep -o 'Finished restoring changelog [^ ]* to store [^ ]* with a total number of [0-9]* records' "$d/app-k.log" |
    sed 's/Finished restoring changelog streams-k-//; s/ to store.*number of / /' | paste -sd',' | sed 's/,/, /g')"
  dump_all "$d" k read_uncommitted uncommitted ||
    fail "$side run k: read_uncommitted dump failed: $(tail -2 "$d/dump.out")"
  # Each killed transaction holds at least the region-totals update it blocked after (sent before
  # the thread blocked), and whatever else was processed since the last commit.
  for t in "${OUTPUTS[@]}"; do
    n=$(wc -l <"$d/uncommitted.$t")
    counts="$counts $t-k: $n,"
    if [ "$n" -lt "$RECORDS" ]; then
      fail "$side run k: read_uncommitted sees only $n records in $t-k, fewer than read_committed's $RECORDS"
    fi
    aborted=$((aborted + n - RECORDS))
  done
  if [ "$aborted" -ge 2 ]; then
    pass "$side run k: read_uncommitted sees the killed transactions' $aborted aborted records (${counts%,}), read_committed none of them"
  else
    fail "$side run k: read_uncommitted sees $aborted aborted records (${counts%,}); the two killed transactions' records are missing from the log"
  fi
}

# side SIDE RUNS: a fresh broker, setup, the runs, broker stopped.
side() {
  local s="$1" runs="$2" d="$WORK/$1"
  mkdir -p "$d"
  step "$s: start broker"
  if ! broker_up "$s"; then fail "$s: broker did not start"; return; fi
  pass "$s: broker up at $BS"
  step "$s: setup (topics, input, model)"
  if jrun 120 "$d/setup.log" setup "$BS" "$d"; then
    pass "$s: setup: topics created, $RECORDS input records produced"
  else
    fail "$s: setup failed (log $d/setup.log)"
    grep -E ' (WARN|ERROR) ' "$d/setup.log" | head -10
    broker_down "$s"; return
  fi
  RUN_START=$SECONDS
  run_a "$s" "$d"
  [[ "$runs" == *k* ]] && run_k "$s" "$d"
  if [ "$FAILED" -ne 0 ] && [ "$s" = fjord ]; then
    echo "--- fjord log: WARN/ERROR lines (first 30)"
    sed 's/\x1b\[[0-9;]*m//g' "$BROKER_LOG_FILE" | grep -E 'WARN|ERROR|panic' | head -30 | cut -c1-300
  fi
  broker_down "$s"
}

case "$AGAINST" in
  both) side kafka a; side fjord ak ;;
  kafka) side kafka ak ;;
  fjord) side fjord ak ;;
esac

if [ "$AGAINST" = both ]; then
  step "Fjord vs Kafka"
  for t in "${OUTPUTS[@]}"; do
    if [ -s "$WORK/kafka/a.$t" ] && [ -s "$WORK/fjord/a.$t" ]; then
      compare_files "$t-a from Fjord vs from Kafka" "$WORK/kafka/a.$t" "$WORK/fjord/a.$t"
    else
      fail "$t-a: no output to compare (kafka $(wc -l <"$WORK/kafka/a.$t" 2>/dev/null) records, fjord $(wc -l <"$WORK/fjord/a.$t" 2>/dev/null))"
    fi
  done
fi
