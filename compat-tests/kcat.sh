#!/usr/bin/env bash
# Compatibility scenarios driven by kcat (librdkafka 2.0.x) against a fresh Fjord broker.
#
# Every check prints PASS/FAIL with what it compared; the run ends with a
# "N passed, N failed" line and exits non-zero if anything failed. A failing run keeps
# its work dir (data, broker log, kcat stderr) and prints the broker log tail.
#
# Needs: kcat (scripts/setup-kcat.sh), target/release/fjord (or FJORD_BIN). The venv from
# scripts/setup-python.sh is used to pre-create multi-partition topics, because kcat cannot
# create topics, and to read a consumer group's committed offsets through confluent-kafka's
# AdminClient; without it those steps fail.
#
# Env: KCAT_TIMEOUT (seconds per kcat call, default 30), GROUP_WAIT (seconds a consumer-group
# step may take, default 40), KEEP_WORK=1 keeps the work dir.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# lib.sh enables errexit; checks here must keep going after a failure to report them all.
set +e

KCAT_TIMEOUT="${KCAT_TIMEOUT:-30}"
PASSED=0 FAILED=0 SKIPPED=0

pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
skip() { echo "SKIP: $*"; SKIPPED=$((SKIPPED + 1)); }
step() { echo; echo "== $*"; }

# kcat bounded by a hard timeout; message.timeout.ms below it so that a stuck produce
# reports librdkafka's own delivery error instead of just being killed.
kc() { timeout --kill-after=5 "$KCAT_TIMEOUT" kcat "$@"; }
kc_produce() { kc -P -X message.timeout.ms=$(((KCAT_TIMEOUT - 5) * 1000)) "$@"; }

if ! command -v kcat >/dev/null; then echo "kcat not found: run scripts/setup-kcat.sh"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-kcat.XXXXXX")"
DATA="$WORK/data"

finish() {
  local p
  for p in ${GROUP_PIDS[@]+"${GROUP_PIDS[@]}"}; do kill -TERM "$p" 2>/dev/null; done
  stop_broker TERM
  echo
  if [ "$FAILED" -ne 0 ]; then
    echo "--- broker log tail ($BROKER_LOG)"; tail -40 "$BROKER_LOG" 2>/dev/null
    echo "--- work dir kept: $WORK"
  elif [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  echo "kcat: $PASSED passed, $FAILED failed, $SKIPPED skipped"
  [ "$FAILED" -eq 0 ]
}
trap 'finish; exit $?' EXIT
trap 'echo interrupted; FAILED=$((FAILED + 1)); exit 130' INT TERM

# Records sent are appended to $WORK/expected.<topic> as
# "partition<TAB>keylen:key<TAB>valuelen:value<TAB>headers" in send order; offsets are
# assigned when comparing (per partition, from 0), which is exactly what a fresh log must
# hand back. Lengths are in bytes so empty and null (-1) keys/values are told apart.
CONSUME_FMT='%p\t%o\t%K:%k\t%S:%s\t%h\n'

# partition_for KEY NPART: librdkafka's default partitioner (consistent_random) is
# CRC32(key) % partitions for non-empty keys; used when a produce does not pin -p.
partition_for() { python3 -c 'import sys, zlib; print(zlib.crc32(sys.argv[1].encode()) % int(sys.argv[2]))' "$1" "$2"; }

# num_partitions TOPIC: partition count from kcat's metadata (empty if unknown).
num_partitions() {
  kc -L -b "$BOOTSTRAP" -t "$1" -J 2>/dev/null |
    python3 -c 'import json, sys; t = json.load(sys.stdin)["topics"][0]; print(len(t["partitions"]) if not t.get("error") else "")' 2>/dev/null
}

# produce LABEL TOPIC PARTITION(-1 = by key) [kcat args...] <<< "key:value" lines
# Headers come from the -H args (kcat applies them to every record of the call).
# PRODUCE_BOOTSTRAP overrides the bootstrap address; kcat's stderr is left in produce.err.
produce() {
  local label="$1" topic="$2" part="$3"; shift 3
  local input; input="$(cat)"
  local pflag=() hdrs="" a prev=""
  [ "$part" -ge 0 ] && pflag=(-p "$part")
  for a in "$@"; do [ "$prev" = -H ] && hdrs="${hdrs:+$hdrs,}$a"; prev="$a"; done
  if printf '%s\n' "$input" | kc_produce -b "${PRODUCE_BOOTSTRAP:-$BOOTSTRAP}" -t "$topic" -K: "${pflag[@]}" "$@" \
      2>"$WORK/produce.err"; then
    pass "$label: kcat -P exited 0 ($(printf '%s\n' "$input" | wc -l) records)"
  else
    fail "$label: kcat -P failed (rc=$?): $(grep -v '^%7' "$WORK/produce.err" | tail -5)"
  fi
  local n="" line k v p
  while IFS= read -r line; do
    k="${line%%:*}" v="${line#*:}" p="$part"
    if [ "$p" -lt 0 ]; then
      n="${n:-$(num_partitions "$topic")}"
      p="$(partition_for "$k" "${n:-1}")"
    fi
    printf '%s\t%s:%s\t%s:%s\t%s\n' "$p" "$(printf '%s' "$k" | wc -c)" "$k" \
      "$(printf '%s' "$v" | wc -c)" "$v" "$hdrs" >>"$WORK/expected.$topic"
  done <<<"$input"
}

# verify LABEL TOPIC [BOOTSTRAP]: consume the whole topic and compare exactly.
verify() {
  local label="$1" topic="$2" bs="${3:-$BOOTSTRAP}"
  local exp="$WORK/expected.$topic.offsets" got="$WORK/got.$topic"
  # Number records per partition in send order: partition, offset, key, value, headers.
  awk -F'\t' -v OFS='\t' '{ print $1, off[$1]++, $2, $3, $4 }' "$WORK/expected.$topic" |
    sort -t"$(printf '\t')" -k1,1n -k2,2n >"$exp"
  kc -C -b "$bs" -t "$topic" -e -o beginning -q -f "$CONSUME_FMT" 2>"$WORK/consume.err" |
    sort -t"$(printf '\t')" -k1,1n -k2,2n >"$got"
  if cmp -s "$exp" "$got"; then
    pass "$label: consumed $(wc -l <"$got") records of $topic; partition, offset, key, value, headers all match"
  else
    fail "$label: consumed records of $topic differ (expected vs got):"
    diff "$exp" "$got" | cut -c1-160 | head -20
    [ -s "$WORK/consume.err" ] && echo "kcat stderr: $(tail -5 "$WORK/consume.err")"
  fi
}

# check_metadata LABEL [TOPIC NPART(-1 = any)]: the broker list (exactly one broker, with
# id >= 0, advertising the address we bootstrapped from) and, given TOPIC, its layout.
check_metadata() {
  local label="$1" topic="${2:-}" want="${3:--1}" out msg
  out="$(kc -L -b "$BOOTSTRAP" ${topic:+-t "$topic"} -J 2>"$WORK/meta.err")" ||
    { fail "$label: kcat -L failed: $(tail -3 "$WORK/meta.err")"; return; }
  if msg="$(python3 - "$out" "$BOOTSTRAP" "$topic" "$want" <<'EOF'
import json, sys
md, bootstrap, topic, want = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
errs = []
brokers = md["brokers"]
if len(brokers) != 1:
    errs.append(f"expected 1 broker, got {brokers}")
b = brokers[0] if brokers else {"id": None, "name": None}
if not isinstance(b["id"], int) or b["id"] < 0:
    errs.append(f"bad broker id {b['id']!r}")
if b["name"] != bootstrap:
    errs.append(f"broker advertises {b['name']!r}, expected {bootstrap!r}")
summary = (f"broker id={b['id']} at {b['name']}, controller={md.get('controllerid')}, "
           f"topics={sorted(t['topic'] for t in md['topics'])}")
if topic:
    tops = [t for t in md["topics"] if t["topic"] == topic]
    if not tops:
        errs.append(f"topic {topic} missing from metadata")
    else:
        t = tops[0]
        parts = sorted(t.get("partitions", []), key=lambda p: p["partition"])
        if t.get("error"):
            errs.append(f"topic error {t['error']}")
        if want >= 0 and len(parts) != want:
            errs.append(f"expected {want} partitions, got {len(parts)}")
        if not parts or [p["partition"] for p in parts] != list(range(len(parts))):
            errs.append(f"partition ids not 0..n-1: {[p['partition'] for p in parts]}")
        for p in parts:
            if (p.get("error") or p["leader"] != b["id"]
                    or [r["id"] for r in p["replicas"]] != [b["id"]]
                    or [r["id"] for r in p["isrs"]] != [b["id"]]):
                errs.append(f"partition {p} not led/replicated by broker {b['id']}")
        summary = (f"broker id={b['id']} at {b['name']}; topic {topic} has {len(parts)} "
                   f"partitions, each led by it with replicas=isr=[{b['id']}]")
if errs:
    print("; ".join(errs))
    sys.exit(1)
print(summary)
EOF
  )"; then pass "$label: $msg"; else fail "$label: $msg"; fi
}

# create_topic NAME PARTITIONS: kcat cannot create topics, so use the librdkafka-based
# confluent-kafka AdminClient from the compat venv.
create_topic() {
  "$VENV/bin/python" - "$BOOTSTRAP" "$1" "$2" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, name, parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
try:
    admin.create_topics([NewTopic(name, parts, 1)], operation_timeout=10)[name].result(timeout=20)
except Exception as e:  # one line for the report; the type tells timeout from broker error
    sys.exit(f"{type(e).__name__}: {e}")
EOF
}

# --- consumer groups (kcat -G) -------------------------------------------------------------
# kcat -G is librdkafka's balanced KafkaConsumer: group.id, subscribe, auto-commit of the
# records it printed, and a final commit when it closes on SIGTERM/SIGINT. No -o: an explicit
# start offset would override the committed offsets; auto.offset.reset=earliest applies only
# where the group has none. -e in -G mode (kcat 1.7.1) exits once every partition of the
# *current* assignment has hit EOF, and its EOF count is not reset by a rebalance, so it is
# only reliable for a member that is alone in its group; two members are stopped with SIGTERM.
KCAT_GROUP_TIMEOUT="${KCAT_GROUP_TIMEOUT:-120}"

# group_start NAME GROUP TOPIC [kcat args...]: starts a kcat -G member in the background;
# its records go to $WORK/group.NAME.out, its log (rebalances) to $WORK/group.NAME.err.
# Sets GROUP_PID (the pid of `timeout`, which passes SIGTERM on to kcat and exits with its
# status). Every member is also in GROUP_PIDS, which finish() stops.
GROUP_PIDS=()
group_start() {
  local name="$1" group="$2" topic="$3"; shift 3
  timeout --kill-after=30 "$KCAT_GROUP_TIMEOUT" kcat -b "$BOOTSTRAP" -G "$group" \
    -X auto.offset.reset=earliest -X client.id="$name" -u -f "$CONSUME_FMT" "$@" "$topic" \
    >"$WORK/group.$name.out" 2>"$WORK/group.$name.err" &
  GROUP_PID=$!
  GROUP_PIDS+=("$GROUP_PID")
}

# group_split NPART NAME...: prints each member's current assignment (from the last
# "rebalanced" line kcat logged) as "name=p,p,..." and exits 0 when they split 0..NPART-1
# cleanly: every member owns some, none is owned twice, all are owned.
group_split() {
  python3 - "$WORK" "$@" <<'EOF'
import re, sys
work, npart, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
owned = {}
for name in names:
    lines = [l for l in open(f"{work}/group.{name}.err", errors="replace") if "rebalanced" in l]
    last = lines[-1] if lines else ""
    owned[name] = sorted(int(p) for p in re.findall(r"\[(\d+)\]", last)) if "assigned:" in last else []
print(" ".join(f"{n}={','.join(map(str, ps)) or '-'}" for n, ps in owned.items()))
flat = [p for ps in owned.values() for p in ps]
ok = all(owned.values()) and len(flat) == len(set(flat)) == npart and set(flat) == set(range(npart))
sys.exit(0 if ok else 1)
EOF
}

# group_offsets GROUP TOPIC: the group's committed offsets via confluent-kafka's AdminClient
# list_consumer_group_offsets, as "partition=offset" sorted by partition, or an error line.
group_offsets() {
  "$VENV/bin/python" - "$BOOTSTRAP" "$1" "$2" <<'EOF'
import sys
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
bootstrap, group, topic = sys.argv[1:]
admin = AdminClient({"bootstrap.servers": bootstrap})
try:
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                            request_timeout=20)[group].result(timeout=25)
except Exception as e:
    sys.exit(f"{type(e).__name__}: {e}")
bad = [f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in res.topic_partitions
       if tp.error or tp.topic != topic]
if bad:
    sys.exit("unexpected entries: " + "; ".join(bad))
print(" ".join(f"{tp.partition}={tp.offset}"
               for tp in sorted(res.topic_partitions, key=lambda tp: tp.partition)))
EOF
}

# expected_rows TOPIC: the expected file numbered per partition, sorted (as verify does).
expected_rows() {
  awk -F'\t' -v OFS='\t' '{ print $1, off[$1]++, $2, $3, $4 }' "$WORK/expected.$1" |
    sort -t"$(printf '\t')" -k1,1n -k2,2n
}

# wait_for_pids SECONDS PID...: true when all exited in time.
wait_for_pids() {
  local secs="$1" p alive; shift
  for _ in $(seq 1 $((secs * 10))); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------------------------------
step "start broker"
if ! start_broker "$DATA"; then fail "broker did not start"; exit 1; fi
pass "broker listening on $BOOTSTRAP (pid $BROKER_PID)"

step "metadata: kcat -L -J on an empty broker"
check_metadata "metadata"

T_AUTO=kcat-auto
step "produce keyed records with headers to auto-created topic $T_AUTO"
produce "auto-create produce #1" "$T_AUTO" -1 -H trace=abc -H source=kcat <<'EOF'
k1:v1
k2:hello world
ключ:значение ✓
EOF
produce "auto-create produce #2 (one header, empty value)" "$T_AUTO" -1 -H only=1 <<'EOF'
k3:
k1:second for k1
EOF
produce "auto-create produce #3 (no headers)" "$T_AUTO" -1 <<'EOF'
k4:no headers here
EOF
check_metadata "metadata for auto-created topic" "$T_AUTO" -1
verify "read back auto-created topic" "$T_AUTO"

T_PRE=kcat-precreated
step "produce to pre-created 3-partition topic $T_PRE"
if [ ! -x "$VENV/bin/python" ]; then
  fail "pre-created topic steps need the venv at $VENV (run scripts/setup-python.sh)"
elif ! create_topic "$T_PRE" 3 2>"$WORK/create.err"; then
  fail "create $T_PRE via confluent-kafka AdminClient: $(tail -3 "$WORK/create.err")"
else
  pass "created $T_PRE with 3 partitions via CreateTopics"
  check_metadata "metadata for pre-created topic" "$T_PRE" 3
  for p in 0 1 2; do
    produce "pinned to partition $p" "$T_PRE" "$p" -H part="$p" -H dup=x -H dup=y <<EOF
a$p:first in $p
b$p:second in $p
EOF
  done
  produce "keyed, partitioned by CRC32(key)" "$T_PRE" -1 -H h=keyed <<'EOF'
alpha:1
beta:2
gamma:3
delta:4
EOF
  verify "read back pre-created topic" "$T_PRE"

  step "idempotent producer (InitProducerId + sequence numbers) to $T_PRE"
  produce "enable.idempotence=true" "$T_PRE" 1 -X enable.idempotence=true -H idem=1 <<'EOF'
i1:idempotent one
i2:idempotent two
EOF
  verify "read back after idempotent produce" "$T_PRE"
fi

T_CODEC=kcat-codecs
step "compressed batches (several records per batch) to $T_CODEC"
for codec in none gzip snappy lz4 zstd; do
  produce "compression $codec" "$T_CODEC" 0 -z "$codec" -H codec="$codec" <<EOF
$codec-1:$codec payload one, compressible: $(printf 'abc%.0s' $(seq 1 50))
$codec-2:$codec payload two
$codec-3:$codec payload three
EOF
done
verify "read back compressed batches" "$T_CODEC"

step "bootstrap via localhost:$BROKER_PORT"
echo "localhost resolves to: $(getent ahosts localhost | awk '$2 == "STREAM" { print $1 }' | paste -sd' ')"
# -d broker logs every connection attempt, showing whether ::1 was tried (and refused).
PRODUCE_BOOTSTRAP="localhost:$BROKER_PORT" \
  produce "produce with -b localhost:$BROKER_PORT" "$T_AUTO" 0 -H via=localhost -d broker <<'EOF'
lh1:via localhost
EOF
echo "connection attempts:"
grep -oE '(Connecting to|Connected to|Connect to) [^ ]+( failed.*)?' "$WORK/produce.err" | sort | uniq -c
if grep -q 'ipv6#\[::1\].*failed' "$WORK/produce.err"; then
  echo "note: librdkafka tried [::1] first and was refused; it recovers by trying 127.0.0.1" \
    "next, but an IPv6 listener would avoid the failed attempt"
fi
verify "read back via localhost bootstrap" "$T_AUTO" "localhost:$BROKER_PORT"

T_GRP=kcat-group
G_KCAT=kcat-group-members
GROUP_WAIT="${GROUP_WAIT:-40}"
step "consumer group: two kcat -G members share the 6-partition topic $T_GRP"
if [ ! -x "$VENV/bin/python" ]; then
  fail "group steps need the venv at $VENV (run scripts/setup-python.sh)"
elif ! create_topic "$T_GRP" 6 2>"$WORK/create.err"; then
  fail "create $T_GRP via confluent-kafka AdminClient: $(tail -3 "$WORK/create.err")"
else
  pass "created $T_GRP with 6 partitions"
  group_start ga "$G_KCAT" "$T_GRP"; PID_A=$GROUP_PID
  group_start gb "$G_KCAT" "$T_GRP"; PID_B=$GROUP_PID
  split="" split_ok=0
  for _ in $(seq 1 $((GROUP_WAIT * 5))); do
    if split="$(group_split 6 ga gb)"; then split_ok=1; break; fi
    { kill -0 "$PID_A" && kill -0 "$PID_B"; } 2>/dev/null || break
    sleep 0.2
  done
  if [ "$split_ok" = 1 ]; then
    pass "each member owns part of $T_GRP, together all of it, none twice: $split"
  else
    fail "no clean split of $T_GRP between the two members within ${GROUP_WAIT}s: ${split:-no rebalance logged}"
    for m in ga gb; do echo "kcat $m log: $(grep -v '^%7' "$WORK/group.$m.err" | tail -5)"; done
  fi

  # Produced only now, after the split, so each record can only go to its partition's owner.
  for p in 0 1 2 3 4 5; do
    produce "group topic, partition $p" "$T_GRP" "$p" -H grp="$p" <<EOF
g$p-a:first of $p
g$p-b:second of $p
g$p-c:third of $p
EOF
  done
  expected_rows "$T_GRP" >"$WORK/group.expected"
  want_n=$(wc -l <"$WORK/group.expected")
  for _ in $(seq 1 $((GROUP_WAIT * 5))); do
    [ "$(cat "$WORK/group.ga.out" "$WORK/group.gb.out" | wc -l)" -ge "$want_n" ] && break
    sleep 0.2
  done
  sleep 2  # listen a little longer: duplicates would show up now
  sort -t"$(printf '\t')" -k1,1n -k2,2n "$WORK/group.ga.out" "$WORK/group.gb.out" >"$WORK/group.got"
  if cmp -s "$WORK/group.expected" "$WORK/group.got"; then
    pass "the two members together read all $want_n records exactly once (partition, offset, key, value, headers)"
  else
    fail "records read by the two members differ from those produced (expected vs got):"
    diff "$WORK/group.expected" "$WORK/group.got" | cut -c1-160 | head -20
  fi
  if msg="$(python3 - "$WORK" "$split" <<'EOF'
import sys
work, split = sys.argv[1], sys.argv[2]
owned = {n: {int(p) for p in ps.split(",") if p != "-"}
         for n, ps in (item.split("=") for item in split.split())}
errs, summary = [], []
for name, parts in owned.items():
    read = {int(line.split("\t")[0]) for line in open(f"{work}/group.{name}.out")}
    if not read:
        errs.append(f"{name} read nothing")
    if read - parts:
        errs.append(f"{name} read partitions {sorted(read - parts)} it does not own {sorted(parts)}")
    summary.append(f"{name} read partitions {sorted(read)}")
print("; ".join(errs or summary))
sys.exit(1 if errs else 0)
EOF
  )"; then pass "each member read only its own partitions: $msg"; else fail "$msg"; fi

  # SIGTERM: kcat closes the consumer, which commits what it printed and leaves the group.
  # One at a time: gb first takes over ga's partitions (resuming at ga's final commit) and
  # commits all six when it closes in turn.
  for m in ga gb; do
    pid="$PID_A"; [ "$m" = gb ] && pid="$PID_B"
    kill -TERM "$pid" 2>/dev/null
    if wait_for_pids 25 "$pid"; then
      wait "$pid"; rc=$?
      if [ "$rc" = 0 ]; then
        pass "member $m closed on SIGTERM with exit code 0"
      else
        fail "member $m exited with $rc after SIGTERM: $(grep -v '^%7' "$WORK/group.$m.err" | tail -4)"
      fi
    else
      fail "member $m still running 25s after SIGTERM (consumer close hangs): $(grep -v '^%7' "$WORK/group.$m.err" | tail -4)"
    fi
  done
  sort -t"$(printf '\t')" -k1,1n -k2,2n "$WORK/group.ga.out" "$WORK/group.gb.out" >"$WORK/group.got"
  if cmp -s "$WORK/group.expected" "$WORK/group.got"; then
    pass "after gb took over ga's partitions it re-read none of ga's committed records"
  else
    fail "records read changed while the members closed one by one (re-read after takeover?):"
    diff "$WORK/group.expected" "$WORK/group.got" | cut -c1-160 | head -20
  fi
  want_offsets="0=3 1=3 2=3 3=3 4=3 5=3"
  got_offsets="$(group_offsets "$G_KCAT" "$T_GRP" 2>&1)"
  if [ "$got_offsets" = "$want_offsets" ]; then
    pass "list_consumer_group_offsets($G_KCAT) shows the offsets kcat committed: $got_offsets"
  else
    fail "list_consumer_group_offsets($G_KCAT): expected '$want_offsets', got '$got_offsets'"
  fi

  step "a new kcat -G member of $G_KCAT resumes at the committed offsets"
  for p in 0 1 2 3 4 5; do
    produce "after the members left, partition $p" "$T_GRP" "$p" -H grp="$p" <<EOF
g$p-d:fourth of $p
EOF
  done
  # Alone in the group, -e is reliable: it exits once all six partitions reached their end.
  group_start gc "$G_KCAT" "$T_GRP" -e; PID_C=$GROUP_PID
  if wait_for_pids "$GROUP_WAIT" "$PID_C"; then
    wait "$PID_C"; rc_c=$?
    [ "$rc_c" = 0 ] && pass "kcat -G -e exited by itself at the end of its partitions" ||
      fail "kcat -G -e exited with $rc_c: $(grep -v '^%7' "$WORK/group.gc.err" | tail -5)"
  else
    fail "kcat -G -e did not exit within ${GROUP_WAIT}s: $(grep -v '^%7' "$WORK/group.gc.err" | tail -5)"
    kill -TERM "$PID_C" 2>/dev/null; wait_for_pids 10 "$PID_C" || kill -KILL "$PID_C" 2>/dev/null
  fi
  expected_rows "$T_GRP" | awk -F'\t' '$2 >= 3' >"$WORK/group.expected"
  sort -t"$(printf '\t')" -k1,1n -k2,2n "$WORK/group.gc.out" >"$WORK/group.got"
  if cmp -s "$WORK/group.expected" "$WORK/group.got"; then
    pass "the new member read exactly the $(wc -l <"$WORK/group.got") records produced after the commits"
  else
    fail "the new member must start at the committed offsets (3 per partition); expected vs got:"
    diff "$WORK/group.expected" "$WORK/group.got" | cut -c1-160 | head -20
  fi
  GROUP_WANT_OFFSETS="0=4 1=4 2=4 3=4 4=4 5=4"
  got_offsets="$(group_offsets "$G_KCAT" "$T_GRP" 2>&1)"
  if [ "$got_offsets" = "$GROUP_WANT_OFFSETS" ]; then
    pass "offsets after the new member closed: $got_offsets"
  else
    fail "offsets after the new member closed: expected '$GROUP_WANT_OFFSETS', got '$got_offsets'"
  fi
fi

step "restart broker and read everything back"
if restart_broker "$DATA"; then
  pass "broker restarted on $BOOTSTRAP"
  verify "after restart: $T_AUTO" "$T_AUTO"
  [ -s "$WORK/expected.$T_PRE" ] && verify "after restart: $T_PRE" "$T_PRE"
  verify "after restart: $T_CODEC" "$T_CODEC"
  if [ -n "${GROUP_WANT_OFFSETS:-}" ]; then
    got_offsets="$(group_offsets "$G_KCAT" "$T_GRP" 2>&1)"
    if [ "$got_offsets" = "$GROUP_WANT_OFFSETS" ]; then
      pass "after restart: committed offsets of $G_KCAT kept: $got_offsets"
    else
      fail "after restart: offsets of $G_KCAT: expected '$GROUP_WANT_OFFSETS', got '$got_offsets'"
    fi
  fi
else
  fail "broker did not restart"
fi
