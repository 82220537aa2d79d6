#!/usr/bin/env bash
# Apache Kafka 4.3.0's own command-line tools (scripts/kafka-tool.sh) against a fresh Fjord broker
# and against the real Kafka (scripts/kafka-ref.sh, one KRaft node, started here and stopped at
# the end, also on failure or Ctrl-C). Every check runs the same command against both brokers,
# normalises both outputs (compat-tests/kafka-tools/normalise.py: topic and member ids, log
# timestamps, each broker's address and log dir, column padding, hash-map row order) and
# compares stdout, stderr and exit code:
#   PASS   equal
#   KNOWN  equal once the KNOWN_DIFFERENCES below that apply to the check are taken out
#   FAIL   anything else; the diff (- fjord, + kafka) is printed
# The run ends with "N passed, N failed, N known differences" and exits non-zero on any FAIL.
#
# Covered: kafka-topics, kafka-configs (topics; brokers by id and --entity-default), the console
# producer and consumer, kafka-consumer-groups (list, describe, every --reset-offsets mode with
# --dry-run and --execute, --delete-offsets, --delete), kafka-get-offsets, kafka-delete-records,
# kafka-transactions (against an open transaction of compat-tests/kafka-tools/ToolsHelper.java),
# kafka-log-dirs, kafka-features, and the producer/consumer perf tests (record counts only).
#
# Needs: java/javac 17, python3, target/release/fjord (or FJORD_BIN). The Kafka jars are resolved
# by scripts/setup-kafka.sh on first use.
# Env: KAFKA_TOOLS_PARALLEL=0 runs the two brokers' commands one after the other instead of at
# the same time; KAFKA_TOOLS_CDS=0 disables the JVM class-data archive that makes each tool start
# about twice as fast; TOOL_TIMEOUT (seconds per tool run, default 60); KEEP_WORK=1 keeps the work
# dir (it is always kept on failure: every run's raw and normalised output is in runs/).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# lib.sh enables errexit; checks here must keep going after a failure to report them all.
set +e

# Where Fjord's output legitimately differs from Kafka's. Each entry: a glob on check names, a
# Perl expression (perl -pe, so per line; `$_ = ""` drops the line) applied to both normalised
# outputs, and why the difference is legitimate. A check that is equal only once its entries are
# applied is KNOWN; what an entry does not take out still FAILs.
KNOWN_DIFFERENCES=(
  # three lines per entry: check-name glob(s) separated by |, Perl expression, reason
  'topics.describe*|configs.*'
  's/DYNAMIC_DEFAULT_BROKER_CONFIG:min\.insync\.replicas=1(, )?//; $_ = "" if /^\tConfig: min\.insync\.replicas=1$/ || /^ min\.insync\.replicas=1 sensitive=false synonyms=\{\}$/'
  'Kafka 4.x with eligible leader replicas (KIP-966) sets min.insync.replicas=1 as a cluster-wide dynamic broker default, which then shows on every topic; Fjord is a single node without ELR and has no such config set'

  'topics.list*'
  '$_ = "" if /^__(consumer_offsets|transaction_state)$/'
  'Kafka keeps group offsets and transaction state in the internal topics __consumer_offsets and __transaction_state; Fjord keeps them in its own store, so these topics do not exist'

  'features.describe'
  '$_ = "" if /^Feature: (metadata\.version|kraft\.version|eligible\.leader\.replicas\.version|share\.version|streams\.version) /'
  'Fjord has no KRaft metadata log (metadata.version, kraft.version), no replication (eligible.leader.replicas.version) and no share or streams groups, so it does not finalize those features'

  'groups.describe-members-consumer'
  's/^(kt-live-consumer \S+ \S+ \S+ \d+) \d+ (\S+) \d+ /$1 EPOCH $2 EPOCH /'
  'Kafka 4.3 bumps a new KIP-848 group epoch twice on its first join (to 2), Fjord once (to 1); epochs are opaque to clients, which only compare them (the same difference the differential tests list)'
)

TOOL_TIMEOUT="${TOOL_TIMEOUT:-60}"
PARALLEL="${KAFKA_TOOLS_PARALLEL:-1}"
HERE="$ROOT/compat-tests/kafka-tools"
KAFKA_LIBS="$CACHE/kafka-4.3.0/libs"
PASSED=0 FAILED=0 KNOWN=0
KNOWN_USED=()

pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
step() { echo; echo "== $*"; }

if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi
for cmd in java javac python3 perl; do
  command -v "$cmd" >/dev/null || { echo "kafka-tools.sh needs $cmd"; exit 2; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-kafka-tools.XXXXXX")"
mkdir -p "$WORK/runs/fjord" "$WORK/runs/kafka"
export KAFKA_REF_DIR="$WORK/kafka-ref"
declare -A BS LOGDIR BG_PIDS
CHECK_PIDS=()
START=$SECONDS

finish() {
  local p
  trap '' INT TERM
  # A check's runs are subshells running `timeout`: stop the timeout (it passes SIGTERM to its
  # tool), then the subshell. Background runs are `timeout` itself.
  for p in ${CHECK_PIDS[@]+"${CHECK_PIDS[@]}"}; do pkill -TERM -P "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
  for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  # Interrupted while the reference Kafka was starting: let kafka-ref.sh clean up after itself
  # first (it stops what it started on SIGTERM), so that stop below finds every node.
  if [ -n "${REF_PID:-}" ] && kill -0 "$REF_PID" 2>/dev/null; then
    kill -TERM "$REF_PID" 2>/dev/null
    for _ in $(seq 1 400); do kill -0 "$REF_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  stop_broker TERM >/dev/null
  bash "$ROOT/scripts/kafka-ref.sh" stop >/dev/null 2>&1 ||
    echo "kafka-tools: could not stop the reference Kafka in $KAFKA_REF_DIR"
  echo
  if [ "$FAILED" -ne 0 ]; then
    echo "--- fjord log tail ($BROKER_LOG)"; tail -20 "$BROKER_LOG" 2>/dev/null
    echo "--- work dir kept: $WORK (runs/<broker>/<check>.{out,err,rc,norm})"
  elif [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  local i unused=()
  for ((i = 0; i < ${#KNOWN_DIFFERENCES[@]}; i += 3)); do
    [[ " ${KNOWN_USED[*]} " == *" $i "* ]] || unused+=("${KNOWN_DIFFERENCES[$i]}")
  done
  # Only a complete run can tell: an entry never needed may be stale (fixed in Fjord, or Kafka changed).
  [ "${DONE:-0}" = 0 ] || [ ${#unused[@]} -eq 0 ] ||
    echo "note: known differences not needed in this run (stale entries?): ${unused[*]}"
  echo "kafka-tools: $PASSED passed, $FAILED failed, $KNOWN known differences ($((SECONDS - START)) s)"
  [ "$FAILED" -eq 0 ]
}
INTERRUPTED=0
trap 'finish; rc=$?; [ "$INTERRUPTED" = 0 ] || rc=130; exit $rc' EXIT
trap 'echo interrupted; INTERRUPTED=1; FAILED=$((FAILED + 1)); exit 130' INT TERM

# --- running tools ---------------------------------------------------------------------------
# tool_cmd SIDE TIMEOUT TOOL ARGS...: sets CMD to TOOL (a kafka-tool.sh name, or `helper` for
# ToolsHelper) against SIDE's broker, bounded by TIMEOUT; @BS@ in ARGS is its bootstrap address.
tool_cmd() {
  local side="$1" secs="$2" tool="$3"; shift 3
  local args=("${@//@BS@/${BS[$side]}}")
  if [ "$tool" = helper ]; then
    CMD=(timeout -k 5 "$secs" java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData
      "-Dlog4j2.configurationFile=$ROOT/compat-tests/kafka-dist/tools-log4j2.properties"
      -cp "$HELPER_CP" ToolsHelper "${args[@]}")
  else
    CMD=(timeout -k 5 "$secs" bash "$ROOT/scripts/kafka-tool.sh" "$tool" "${args[@]}")
  fi
}

# run_one SIDE NAME STDIN TOOL ARGS...: runs it, leaving runs/SIDE/NAME.{out,err,rc}.
run_one() {
  local side="$1" name="$2" stdin="$3" CMD rc; shift 3
  local f="$WORK/runs/$side/$name"
  tool_cmd "$side" "$TOOL_TIMEOUT" "$@"
  "${CMD[@]}" <"$stdin" >"$f.out" 2>"$f.err"
  rc=$?
  echo "$rc" >"$f.rc"
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || echo "(timed out after ${TOOL_TIMEOUT}s)" >>"$f.err"
}

# check NAME [--sort] [--norm MODE]... [--stdin FILE] [--fails] [--expect REGEX] -- TOOL ARGS...:
# runs the command against both brokers and compares (normalise.py modes: sort, configs,
# cols=A,B, epoch, logdirs, ...). The reference run must exit 0 (with --fails: non-zero) and its
# normalised output match REGEX, or the check itself is broken and FAILs as such.
check() {
  local name="$1" modes=() stdin=/dev/null; shift
  EXPECT_RC=0 EXPECT_RE=
  while [ "$1" != -- ]; do
    case "$1" in
      --sort) modes+=(sort) ;;
      --norm) modes+=("$2"); shift ;;
      --stdin) stdin="$2"; shift ;;
      --fails) EXPECT_RC=nonzero ;;
      --expect) EXPECT_RE="$2"; shift ;;
      *) echo "check: bad option $1"; return 2 ;;
    esac
    shift
  done
  shift
  CHECK_T0=$EPOCHREALTIME
  # In the background even one at a time: `wait` lets Ctrl-C through at once, and finish() can
  # stop the runs (CHECK_PIDS) instead of leaving them to their timeout.
  local side
  for side in fjord kafka; do
    run_one "$side" "$name" "$stdin" "$@" &
    CHECK_PIDS+=($!)
    [ "$PARALLEL" = 1 ] || wait $!
  done
  wait "${CHECK_PIDS[@]}"
  CHECK_PIDS=()
  compare "$name" "$(describe_cmd "$@")" ${modes[@]+"${modes[@]}"}
}

# describe_cmd TOOL ARGS...: the command line as printed with a check (no bootstrap option).
describe_cmd() {
  local out=() skip=0 a
  for a in "$@"; do
    if [ "$skip" = 1 ]; then skip=0; continue; fi
    case "$a" in
      --bootstrap-server) skip=1 ;;
      *@BS@*) out+=("${a//@BS@/BS}") ;;
      *) out+=("$a") ;;
    esac
  done
  echo "${out[*]}"
}

# compare NAME LABEL [MODE...]: normalises both runs of NAME and reports PASS / KNOWN / FAIL.
# EXPECT_RC (0, nonzero or any) and EXPECT_RE are what the reference run must show.
compare() {
  local name="$1" label="$2"; shift 2
  local side f k="$WORK/runs/kafka/$name" i expr changed reasons=() krc
  label="$label ($(elapsed))"
  python3 "$HERE/normalise.py" "$@" -- "$WORK/runs/fjord/$name" "${BS[fjord]}" "${LOGDIR[fjord]}" \
    "$k" "${BS[kafka]}" "${LOGDIR[kafka]}"
  krc="$(cat "$k.rc")"
  if { [ "$EXPECT_RC" = 0 ] && [ "$krc" != 0 ]; } || { [ "$EXPECT_RC" = nonzero ] && [ "$krc" = 0 ]; } ||
      { [ -n "$EXPECT_RE" ] && ! grep -qE -- "$EXPECT_RE" "$k.norm"; }; then
    fail "$name: $label: the reference Kafka did not do what this check expects" \
      "(exit code $krc, expected ${EXPECT_RC}${EXPECT_RE:+, output matching /$EXPECT_RE/}): the check is broken"
    sed 's/^/  kafka: /' "$k.norm" | head -20
    return 1
  fi
  f="$WORK/runs/fjord/$name"
  if cmp -s "$f.norm" "$k.norm"; then
    pass "$name: $label"
    return 0
  fi
  cp "$f.norm" "$f.known"; cp "$k.norm" "$k.known"
  for ((i = 0; i < ${#KNOWN_DIFFERENCES[@]}; i += 3)); do
    matches_glob "$name" "${KNOWN_DIFFERENCES[$i]}" || continue
    expr="${KNOWN_DIFFERENCES[$((i + 1))]}"
    changed=0
    for side in fjord kafka; do
      perl -pe "$expr" "$WORK/runs/$side/$name.known" >"$WORK/runs/$side/$name.tmp"
      cmp -s "$WORK/runs/$side/$name.known" "$WORK/runs/$side/$name.tmp" || changed=1
      mv "$WORK/runs/$side/$name.tmp" "$WORK/runs/$side/$name.known"
    done
    if [ "$changed" = 1 ]; then
      reasons+=("${KNOWN_DIFFERENCES[$((i + 2))]}")
      KNOWN_USED+=("$i")
    fi
  done
  if [ ${#reasons[@]} -gt 0 ] && cmp -s "$f.known" "$k.known"; then
    echo "KNOWN: $name: $label"
    for i in "${reasons[@]}"; do echo "  known difference: $i"; done
    diff "$f.norm" "$k.norm" | grep '^[<>]' | sed 's/^</  fjord:/; s/^>/  kafka:/' | head -12
    KNOWN=$((KNOWN + 1))
    return 0
  fi
  fail "$name: $label"
  [ ${#reasons[@]} -eq 0 ] || echo "  (diff after taking out ${#reasons[@]} known difference(s))"
  diff -u --label fjord --label kafka "$f.known" "$k.known" | tail -n +3 | head -40 | sed 's/^/  /'
  return 1
}

# elapsed: seconds since the current check started.
elapsed() { awk -v a="$CHECK_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }

# matches_glob NAME 'glob|glob...': true when NAME matches one of the globs.
matches_glob() {
  local g
  local IFS='|'
  for g in $2; do
    # shellcheck disable=SC2053
    [[ "$1" == $g ]] && return 0
  done
  return 1
}

# bg_start NAME TOOL ARGS...: the command against both brokers in the background, bounded by
# 180 s; output in runs/SIDE/NAME.*, the pid of its `timeout` in BG_PIDS[SIDE.NAME].
bg_start() {
  local name="$1" side CMD; shift
  CHECK_T0=$EPOCHREALTIME
  for side in fjord kafka; do
    tool_cmd "$side" 180 "$@"
    "${CMD[@]}" </dev/null >"$WORK/runs/$side/$name.out" 2>"$WORK/runs/$side/$name.err" &
    BG_PIDS[$side.$name]=$!
  done
}

# bg_stop NAME...: SIGTERM to both background runs of each NAME, all at once (timeout passes it
# on to the JVM, which shuts down as on Ctrl-C); waits up to 15 s, then SIGKILL. Records the exit
# codes.
bg_stop() {
  local name side key pid rc keys=()
  for name in "$@"; do
    for side in fjord kafka; do
      key="$side.$name"
      [ -n "${BG_PIDS[$key]:-}" ] || continue
      kill -TERM "${BG_PIDS[$key]}" 2>/dev/null
      keys+=("$key")
    done
  done
  for key in ${keys[@]+"${keys[@]}"}; do
    pid="${BG_PIDS[$key]}"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "(did not stop within 15s of SIGTERM; killed)" >>"$WORK/runs/${key/./\/}.err"
      pkill -KILL -P "$pid" 2>/dev/null   # the JVM under this timeout
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    echo "$rc" >"$WORK/runs/${key/./\/}.rc"
    unset "BG_PIDS[$key]"
  done
}

# bg_wait NAME SECONDS PATTERN COUNT: until both runs of NAME have COUNT stdout lines matching
# PATTERN (each side FAILs on its own when it does not get there in time).
bg_wait() {
  local name="$1" secs="$2" pat="$3" count="$4" side deadline ok=0
  deadline=$((SECONDS + secs))
  while [ $SECONDS -lt $deadline ]; do
    ok=1
    for side in fjord kafka; do
      [ "$(grep -c -- "$pat" "$WORK/runs/$side/$name.out" 2>/dev/null)" -ge "$count" ] || ok=0
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.2
  done
  for side in fjord kafka; do
    [ "$(grep -c -- "$pat" "$WORK/runs/$side/$name.out" 2>/dev/null)" -ge "$count" ] ||
      fail "$name: $side: no $count lines matching '$pat' within ${secs}s: $(tail -3 "$WORK/runs/$side/$name.err" 2>/dev/null | tr '\n' ' ')"
  done
  return 1
}

# --- setup ---------------------------------------------------------------------------------
step "setup: Kafka jars, ToolsHelper, Fjord, reference Kafka"
KAFKA_CLIENT_VERSIONS= bash "$ROOT/scripts/setup-kafka.sh" || { fail "scripts/setup-kafka.sh"; exit 1; }
# lib.sh copied FJORD_BIN / FJORD_CACHE; the broker refuses unknown FJORD_* variables.
export -n FJORD_BIN FJORD_CACHE 2>/dev/null || true

# The reference Kafka starts in the background (about 10 s) while the rest is prepared.
bash "$ROOT/scripts/kafka-ref.sh" start >"$WORK/kafka-ref.log" 2>&1 &
REF_PID=$!

# ToolsHelper, compiled once per source and client version into .cache.
HELPER_CP="$CACHE/kafka-tools-classes"
for jar in kafka-clients-4.3.0.jar 'slf4j-api-*.jar' 'log4j-api-*.jar' 'log4j-core-*.jar' 'log4j-slf4j-impl-*.jar'; do
  j="$(compgen -G "$KAFKA_LIBS/$jar" | head -1)"
  [ -n "$j" ] || { fail "missing $jar in $KAFKA_LIBS"; exit 1; }
  HELPER_CP="$HELPER_CP:$j"
done
stamp="$(cat "$HERE/ToolsHelper.java" "$CACHE/kafka-4.3.0/.resolved" | sha256sum | cut -c1-16)"
if [ "$(cat "$CACHE/kafka-tools-classes/.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$CACHE/kafka-tools-classes"
  mkdir -p "$CACHE/kafka-tools-classes"
  if timeout 120 javac --release 17 -Xlint:all -encoding UTF-8 -d "$CACHE/kafka-tools-classes" \
      -cp "${HELPER_CP#*:}" "$HERE/ToolsHelper.java"; then
    echo "$stamp" >"$CACHE/kafka-tools-classes/.stamp"
  else
    fail "javac ToolsHelper.java"; exit 1
  fi
fi

if ! start_broker "$WORK/fjord-data" --override group.initial.rebalance.delay.ms=0 >"$WORK/fjord-start.log"; then
  cat "$WORK/fjord-start.log"; fail "Fjord did not start"; exit 1
fi
BS[fjord]="$BOOTSTRAP"
LOGDIR[fjord]="$WORK/fjord-data"
echo "fjord: $FJORD_BIN on ${BS[fjord]} (pid $BROKER_PID), group.initial.rebalance.delay.ms=0 as in the reference"

# A class-data archive of the tools' classes, dumped once per JDK and jar set from one kafka-configs
# run against Fjord (it loads the Admin client and the Scala runtime), roughly halves each tool's
# start-up, which is most of this script's time.
if [ "${KAFKA_TOOLS_CDS:-1}" = 1 ]; then
  cds_key="$( (java -version 2>&1; ls -l "$KAFKA_LIBS") | sha256sum | cut -c1-16)"
  CDS="$CACHE/kafka-tools-cds/tools-$cds_key.jsa"
  if [ ! -s "$CDS" ]; then
    mkdir -p "$CACHE/kafka-tools-cds"
    rm -f "$CACHE"/kafka-tools-cds/tools-*.jsa
    KAFKA_TOOL_OPTS="-XX:ArchiveClassesAtExit=$CDS.tmp -Xlog:cds=off -Xlog:cds+dynamic=off" \
      timeout 60 bash "$ROOT/scripts/kafka-tool.sh" kafka-configs --bootstrap-server "${BS[fjord]}" \
      --describe --entity-type brokers --entity-name 1 >/dev/null 2>&1
    [ -s "$CDS.tmp" ] && mv "$CDS.tmp" "$CDS"
  fi
  if [ -s "$CDS" ]; then
    export KAFKA_TOOL_OPTS="-XX:SharedArchiveFile=$CDS -Xlog:cds=off -Xlog:cds+dynamic=off"
    echo "tools use the class-data archive $CDS"
  fi
fi

# Fixed inputs, the same for both brokers.
BASE=$(( ($(date +%s) - 1800) * 1000 ))   # the timestamped records are 30 min old and younger
DT5="$(date -u -d "@$((BASE / 1000 + 300))" +%Y-%m-%dT%H:%M:%S.000Z)"   # BASE + 5 min
printf '%s\n' 'h1:v1,h2:v2	k1:hello' 'h1:x	k2:world' 'h3:	k3:empty header value' \
  'h5:a,h5:b	k5:duplicate header keys' 'h:1	k1:second for k1' 'h:2	k6:' >"$WORK/keyed.txt"
printf '%s\n' 'first' 'second' >"$WORK/plain.txt"
cat >"$WORK/delete-records.json" <<'EOF'
{"version": 1, "partitions": [
  {"topic": "kt-data", "partition": 0, "offset": -1},
  {"topic": "kt-data", "partition": 1, "offset": 3}
]}
EOF

if ! wait "$REF_PID"; then
  tail -20 "$WORK/kafka-ref.log"; fail "the reference Kafka did not start"; exit 1
fi
BS[kafka]="$(awk '/^bootstrap:/ { print $2 }' "$WORK/kafka-ref.log")"
LOGDIR[kafka]="$KAFKA_REF_DIR/node1/data"
echo "kafka: Apache Kafka 4.3.0 on ${BS[kafka]} ($KAFKA_REF_DIR)"
echo "setup took $((SECONDS - START)) s"

# --- kafka-topics ----------------------------------------------------------------------------
step "kafka-topics: create, describe, alter, errors"
check topics.create-with-configs -- kafka-topics --bootstrap-server @BS@ --create --topic kt-conf \
  --partitions 3 --replication-factor 1 --config retention.ms=86400000 --config cleanup.policy=compact
for t in kt-data:2 kt-ts:2 kt-txn:1 kt-del:1; do
  check "topics.create.${t%:*}" -- kafka-topics --bootstrap-server @BS@ --create --topic "${t%:*}" --partitions "${t#*:}"
done
check topics.create-existing --fails -- kafka-topics --bootstrap-server @BS@ --create --topic kt-conf --partitions 1
check topics.create-rf3 --fails -- kafka-topics --bootstrap-server @BS@ --create --topic kt-rf3 --partitions 1 --replication-factor 3
check topics.describe --norm configs -- kafka-topics --bootstrap-server @BS@ --describe --topic kt-conf
check topics.alter-partitions -- kafka-topics --bootstrap-server @BS@ --alter --topic kt-conf --partitions 4
check topics.alter-partitions-decrease --fails -- kafka-topics --bootstrap-server @BS@ --alter --topic kt-conf --partitions 2

# --- kafka-configs: topics ---------------------------------------------------------------------
step "kafka-configs: topics"
check configs.topic.describe -- kafka-configs --bootstrap-server @BS@ --describe --entity-type topics --entity-name kt-conf
check configs.topic.add -- kafka-configs --bootstrap-server @BS@ --alter --entity-type topics --entity-name kt-conf \
  --add-config retention.ms=3600000,max.message.bytes=2000000
check configs.topic.delete -- kafka-configs --bootstrap-server @BS@ --alter --entity-type topics --entity-name kt-conf \
  --delete-config cleanup.policy
check configs.topic.describe-after -- kafka-configs --bootstrap-server @BS@ --describe --entity-type topics --entity-name kt-conf

# --- kafka-configs: brokers ----------------------------------------------------------------------
step "kafka-configs: brokers (by id and --entity-default)"
check configs.broker-default.add -- kafka-configs --bootstrap-server @BS@ --alter --entity-type brokers --entity-default \
  --add-config log.retention.ms=7200000,log.retention.bytes=1000000000
check configs.broker.add -- kafka-configs --bootstrap-server @BS@ --alter --entity-type brokers --entity-name 1 \
  --add-config log.retention.bytes=2000000000
check configs.broker-default.describe -- kafka-configs --bootstrap-server @BS@ --describe --entity-type brokers --entity-default
check configs.broker.describe-after -- kafka-configs --bootstrap-server @BS@ --describe --entity-type brokers --entity-name 1
# Every config of a topic without overrides: the broker values above are its defaults now.
check configs.topic.describe-all -- kafka-configs --bootstrap-server @BS@ --describe --all --entity-type topics --entity-name kt-data
check configs.broker-default.delete -- kafka-configs --bootstrap-server @BS@ --alter --entity-type brokers --entity-default \
  --delete-config log.retention.ms,log.retention.bytes
check configs.broker.delete -- kafka-configs --bootstrap-server @BS@ --alter --entity-type brokers --entity-name 1 \
  --delete-config log.retention.bytes
check configs.broker-default.describe-after -- kafka-configs --bootstrap-server @BS@ --describe --entity-type brokers --entity-default

# --- console producer and consumer ---------------------------------------------------------
step "console producer and consumer"
check console.produce-keys-headers --stdin "$WORK/keyed.txt" -- kafka-console-producer --bootstrap-server @BS@ \
  --topic kt-data --reader-property parse.key=true --reader-property key.separator=: --reader-property parse.headers=true
check console.produce-timestamps -- helper timestamps @BS@ kt-ts "$BASE"
check console.consume-group --sort --expect 'Processed a total of 6 messages' -- kafka-console-consumer \
  --bootstrap-server @BS@ --topic kt-data --group kt-console --from-beginning --max-messages 6 --timeout-ms 30000 --formatter-property print.key=true \
  --formatter-property print.headers=true --formatter-property print.partition=true --formatter-property print.offset=true
check console.consume-timestamps --sort --expect 'Processed a total of 8 messages' -- kafka-console-consumer \
  --bootstrap-server @BS@ --topic kt-ts --group kt-reset --from-beginning --max-messages 8 --timeout-ms 30000 --formatter-property print.timestamp=true \
  --formatter-property print.key=true --formatter-property print.partition=true --formatter-property print.offset=true

# --- kafka-consumer-groups -------------------------------------------------------------------
step "kafka-consumer-groups: active groups (classic and KIP-848 consumer protocol)"
# Members that stay: console consumers without --max-messages, stopped with SIGTERM below. They
# commit only when they close, so the offsets shown while they run do not depend on timing.
for proto in classic consumer; do
  bg_start "console.consume-live-$proto" kafka-console-consumer --bootstrap-server @BS@ --topic kt-data \
    --group "kt-live-$proto" --from-beginning --consumer-property group.protocol=$proto \
    --consumer-property auto.commit.interval.ms=600000 --formatter-property print.key=true \
    --formatter-property print.partition=true --formatter-property print.offset=true
done
bg_wait console.consume-live-classic 40 'Offset:' 6
bg_wait console.consume-live-consumer 40 'Offset:' 6
check groups.list --sort -- kafka-consumer-groups --bootstrap-server @BS@ --list
for proto in classic consumer; do
  check "groups.describe-active-$proto" --sort -- kafka-consumer-groups --bootstrap-server @BS@ --describe \
    --group "kt-live-$proto"
  check "groups.describe-members-$proto" --sort -- kafka-consumer-groups --bootstrap-server @BS@ --describe \
    --group "kt-live-$proto" --members --verbose
  check "groups.describe-state-$proto" -- kafka-consumer-groups --bootstrap-server @BS@ --describe \
    --group "kt-live-$proto" --state
done
check groups.reset-active -- kafka-consumer-groups --bootstrap-server @BS@ --reset-offsets --group kt-live-classic \
  --topic kt-data --to-earliest --execute
CHECK_T0=$EPOCHREALTIME
bg_stop console.consume-live-classic console.consume-live-consumer
for proto in classic consumer; do
  EXPECT_RC=any EXPECT_RE='Processed a total of 6 messages' compare "console.consume-live-$proto" \
    "kafka-console-consumer --group kt-live-$proto --consumer-property group.protocol=$proto, stopped by SIGTERM" sort
done
# Each committed what it read when it closed, and left its group.
check groups.describe-after-leave --sort -- kafka-consumer-groups --bootstrap-server @BS@ --describe --all-groups

step "kafka-consumer-groups: --reset-offsets, each mode with --dry-run then --execute"
# kt-reset read all of kt-ts (partition 0: 5 records, 1: 3) and committed 5 and 3.
check groups.describe-lag --sort -- kafka-consumer-groups --bootstrap-server @BS@ --describe --group kt-reset
i=0
for mode in --to-earliest --to-latest "--to-offset 1" "--shift-by 3" "--to-datetime $DT5" "--by-duration PT15M" --to-current; do
  i=$((i + 1))
  m="${mode%% *}"; m="${m#--}"
  for run in --dry-run --execute; do
    # shellcheck disable=SC2086  # mode is an option and its value
    check "groups.reset.$i-$m${run/--/.}" --sort -- kafka-consumer-groups --bootstrap-server @BS@ --reset-offsets \
      --group kt-reset --topic kt-ts $mode "$run"
  done
done
check groups.describe-after-reset --sort -- kafka-consumer-groups --bootstrap-server @BS@ --describe --group kt-reset --offsets
check groups.delete-offsets --sort -- kafka-consumer-groups --bootstrap-server @BS@ --delete-offsets --group kt-reset --topic kt-ts:1
check groups.describe-after-delete-offsets --sort -- kafka-consumer-groups --bootstrap-server @BS@ --describe --group kt-reset --offsets
check groups.delete --sort -- kafka-consumer-groups --bootstrap-server @BS@ --delete --group kt-console --group kt-missing
check groups.list-after-delete --sort -- kafka-consumer-groups --bootstrap-server @BS@ --list

# --- a deleted topic and the offsets committed for it ----------------------------------------
step "kafka-topics --delete, and a group's offsets for the deleted topic"
check console.produce-plain --stdin "$WORK/plain.txt" -- kafka-console-producer --bootstrap-server @BS@ --topic kt-del
check console.consume-del --expect 'Processed a total of 2 messages' -- kafka-console-consumer \
  --bootstrap-server @BS@ --topic kt-del --group kt-del --from-beginning --max-messages 2 --timeout-ms 30000
check topics.delete -- kafka-topics --bootstrap-server @BS@ --delete --topic kt-del
check topics.list -- kafka-topics --bootstrap-server @BS@ --list
check topics.create-again -- kafka-topics --bootstrap-server @BS@ --create --topic kt-del --partitions 1
check groups.describe-deleted-topic --sort -- kafka-consumer-groups --bootstrap-server @BS@ --describe --group kt-del

# --- kafka-get-offsets, kafka-delete-records ---------------------------------------------------
step "kafka-get-offsets and kafka-delete-records"
check get-offsets.latest --sort -- kafka-get-offsets --bootstrap-server @BS@ --topic kt-ts --time -1
check get-offsets.earliest --sort -- kafka-get-offsets --bootstrap-server @BS@ --topic kt-ts --time -2
check get-offsets.max-timestamp --sort -- kafka-get-offsets --bootstrap-server @BS@ --topic kt-ts --time -3
# BASE + 20 min: in partition 0 only an out-of-order record has that timestamp (offset 3), but the
# first batch already holds a later one (offset 2).
check get-offsets.timestamp --sort -- kafka-get-offsets --bootstrap-server @BS@ --topic kt-ts --time $((BASE + 1200000))
check delete-records --sort -- kafka-delete-records --bootstrap-server @BS@ --offset-json-file "$WORK/delete-records.json"
check get-offsets.after-delete-records --sort -- kafka-get-offsets --bootstrap-server @BS@ --topic kt-data --time -2

# --- kafka-log-dirs, kafka-features ----------------------------------------------------------
step "kafka-log-dirs and kafka-features"
check log-dirs.describe --norm logdirs -- kafka-log-dirs --bootstrap-server @BS@ --describe --topic-list kt-conf,kt-ts
check features.describe --norm epoch -- kafka-features --bootstrap-server @BS@ describe

# --- kafka-transactions ----------------------------------------------------------------------
step "kafka-transactions against an open transaction"
# One committed transaction (offsets 0-1, marker 2), then one left open (3-5).
bg_start txn.producer helper txn @BS@ kt-txn kt-txid 150
if bg_wait txn.producer 40 '^OPEN$' 1; then
  check transactions.list -- kafka-transactions --bootstrap-server @BS@ list
  check transactions.describe --norm cols=CurrentTransactionStartTimeMs,TransactionDurationMs -- \
    kafka-transactions --bootstrap-server @BS@ describe --transactional-id kt-txid
  check transactions.describe-producers --norm cols=LastTimestamp -- \
    kafka-transactions --bootstrap-server @BS@ describe-producers --topic kt-txn --partition 0
  check transactions.find-hanging -- kafka-transactions --bootstrap-server @BS@ find-hanging --broker-id 1
  check transactions.abort -- kafka-transactions --bootstrap-server @BS@ abort --topic kt-txn --partition 0 --start-offset 3
  check transactions.describe-producers-after-abort --norm cols=LastTimestamp -- \
    kafka-transactions --bootstrap-server @BS@ describe-producers --topic kt-txn --partition 0
  check get-offsets.after-abort -- kafka-get-offsets --bootstrap-server @BS@ --topic kt-txn --time -1
  check console.consume-read-committed --expect 'Processed a total of 2 messages' -- kafka-console-consumer \
    --bootstrap-server @BS@ --topic kt-txn --partition 0 --offset earliest --isolation-level read_committed --max-messages 2 --timeout-ms 30000 \
    --formatter-property print.offset=true --formatter-property print.key=true
fi
bg_stop txn.producer

# --- perf tests --------------------------------------------------------------------------------
step "kafka-producer-perf-test and kafka-consumer-perf-test (record counts only)"
check perf.producer --norm perf-producer --expect '^20000 records sent$' -- kafka-producer-perf-test \
  --bootstrap-server @BS@ --topic kt-perf --num-records 20000 --record-size 100 --throughput -1 --command-property acks=all
check perf.consumer --norm perf-consumer --expect '^data.consumed.in.nMsg=20000$' -- kafka-consumer-perf-test \
  --bootstrap-server @BS@ --topic kt-perf --num-records 20000 --timeout 30000

step "final state"
check topics.describe-all --norm configs -- kafka-topics --bootstrap-server @BS@ --describe --exclude-internal
DONE=1
