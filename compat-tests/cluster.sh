#!/usr/bin/env bash
# Three Fjord nodes as one cluster (each a combined broker+controller, static quorum voters) on
# loopback, driven by real clients:
#   a. kcat -L against each node lists brokers 1, 2, 3, the same list everywhere;
#   b. Java AdminClient: describeCluster (3 nodes, controller among them), createTopics of a
#      6-partition RF 1 topic whose leaders are spread two per broker, RF 4 refused;
#      Produce and Fetch sent to a node that does not lead the partition are refused;
#   c. 600 keyed records produced with acks=all (Java), read back by the Java consumer,
#      confluent-kafka and kafka-python: exactly those records, each partition in order;
#   d. kcat produce and consume on an admin-created 3-partition topic and an auto-created one;
#   e. SIGKILL of the active controller: time until a topic can be created through a survivor,
#      until the survivors agree on the metadata (the dead broker fenced); after its restart,
#      time until all three agree, it leads its partitions again at a higher leader epoch and
#      every record is readable;
#   f. the same for a node that is not the controller;
#   g. a node that is not the controller SIGKILLed and restarted at once, before its session
#      times out: the same checks after its restart;
#   i. Kafka's kafka-reassign-partitions moves a partition from nodes 1,2 to 2,3 (execute with a
#      throttle, verify until completed), the records are all there; kafka-leader-election;
#   h. `fjord dev-cluster --nodes 5 --controllers 3`: three dedicated controllers and two
#      brokers; kcat lists only the brokers, kafka-metadata-quorum shows voters 1-3 and
#      observers 4-5, kcat round-trips records, Ctrl-C stops it cleanly.
# Every check prints PASS/FAIL; the run ends with "cluster: N passed, N failed" and exits non-zero
# if anything failed. A failing run keeps its work dir (node logs and data) and shows log tails.
#
# Needs: kcat (scripts/setup-kcat.sh), the venv (scripts/setup-python.sh), the Kafka jars
# (scripts/setup-kafka.sh, via java-common.sh), target/release/fjord (or FJORD_BIN).
# Env: KEEP_WORK=1 keeps the work dir; CLUSTER_SESSION_TIMEOUT_MS (default 3000),
# CLUSTER_HEARTBEAT_MS (default 500); KCAT_TIMEOUT (seconds per kcat call, default 30).
RUNNER=cluster.sh
CLASSES_SUBDIR=cluster-classes
source "$(dirname "${BASH_SOURCE[0]}")/java-common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"
# Checks must keep going after a failure to report them all.
set +e

TOOL="$ROOT/compat-tests/cluster/cluster_tool.py"
KCAT_TIMEOUT="${KCAT_TIMEOUT:-30}"
PASSED=0 FAILED=0
FIGURES=()
SPREAD=spread OTHER=cluster-kcat AUTO=cluster-kcat-auto
N_RECORDS=600

pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
step() { echo; echo "== $*"; }
figure() { FIGURES+=("$*"); echo "figure: $*"; }
kc() { timeout --kill-after=5 "$KCAT_TIMEOUT" kcat "$@"; }
tool() { timeout --kill-after=5 "${TOOL_TIMEOUT:-90}" "$VENV/bin/python" "$TOOL" "$@"; }
jrun() {
  timeout --kill-after=5 "$JAVA_TIMEOUT" java "${JAVA_OPTS[@]}" -cp "$CLASSES:$CP" ClusterScenario "$@"
}
# secs_since T: seconds (3 decimals) from $EPOCHREALTIME value T to now.
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

if ! command -v kcat >/dev/null; then echo "kcat not found: run scripts/setup-kcat.sh"; exit 2; fi
if [ ! -x "$VENV/bin/python" ]; then echo "no venv at $VENV: run scripts/setup-python.sh"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi
java_prepare || { echo "cluster.sh: compiling the Java scenarios failed"; exit 1; }
JAVA_TIMEOUT=120
JAVA_OPTS=(-Xmx512m "-Dlog4j2.configurationFile=$SRC/log4j2.properties")
export PYTHONDONTWRITEBYTECODE=1

CWORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-cluster.XXXXXX")"
finish() {
  local n
  cluster_stop
  echo
  if [ "${#FIGURES[@]}" -gt 0 ]; then
    echo "figures:"; printf '  %s\n' "${FIGURES[@]}"
  fi
  if [ "$FAILED" -ne 0 ]; then
    for n in "${NODES[@]}"; do node_log_tail "$n" 40; done
    echo "--- work dir kept: $CWORK"
  elif [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work dir kept: $CWORK"
  else
    rm -rf "$CWORK"
  fi
  echo "cluster: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
trap 'finish; exit $?' EXIT
trap 'echo interrupted; FAILED=$((FAILED + 1)); exit 130' INT TERM

# agree LABEL MAX_SECS [wait-agree args...]: every node named by --nodes answers the same
# metadata meeting the conditions within MAX_SECS (the tool waits a little longer so that a
# slow agreement is still measured); the time is a figure unless NOFIG=1.
agree() {
  local label="$1" max="$2" out rc secs; shift 2
  out="$(tool wait-agree --timeout "$((max + 10))" "$@" 2>&1)"; rc=$?
  secs="${out%%s:*}"
  if [ "$rc" -eq 0 ] && [[ "$out" != not* ]] && awk -v s="$secs" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
    pass "$label within ${max}s: $out"
  else
    fail "$label within ${max}s: $out"
  fi
  [[ "$out" == not* ]] || [ "${NOFIG:-0}" = 1 ] || figure "$label: ${secs}s"
}

# compare LABEL GOT: a consumer's records against the producer's acked ones.
compare() {
  local out
  if out="$(tool compare "$CWORK/produced.$SPREAD" "$2")"; then pass "$1: $out"; else fail "$1: $out"; fi
}

# read_back LABEL CLIENT BOOTSTRAP: one client reads all of $SPREAD; compared with what was acked.
read_back() {
  local label="$1" client="$2" bs="$3" got="$CWORK/got.$2.$RANDOM" out
  if [ "$client" = java ]; then
    jrun consume "$bs" "$SPREAD" "$N_RECORDS" "$got" 2>&1 | tail -n 3 | sed 's/^/    /'
  else
    tool consume "$client" "$bs" "$SPREAD" "$N_RECORDS" "$got" 2>&1 | tail -n 3 | sed 's/^/    /'
  fi
  if [ -s "$got" ]; then compare "$label" "$got"; else fail "$label: $client read nothing (see above)"; fi
}

# ---------------------------------------------------------------------------------------
step "start three nodes"
cluster_pick_ports || exit 1
echo "node n: broker port / controller port; voters $VOTERS; work dir $CWORK"
for n in "${NODES[@]}"; do
  echo "  node $n: ${PORT[$n]} / ${QPORT[$n]}"
  node_start "$n"
done
t0=$EPOCHREALTIME
if node_wait_started 60 "${NODES[@]}"; then
  pass "all three nodes logged 'fjord started' ($(secs_since "$t0")s)"
else
  fail "the cluster did not start"
  exit 1
fi
agree "every node lists brokers 1,2,3" 20 --nodes "$BOOTSTRAP_ALL" --brokers 1,2,3 --since "$t0"
# Nothing after this means much without a formed cluster; stop here rather than time out step by step.
[ "$FAILED" -eq 0 ] || exit 1
if out="$(tool controller "$BOOTSTRAP_ALL")"; then pass "DescribeCluster from each node: $out"
else fail "DescribeCluster from each node: $out"; fi

step "a. kcat -L against each node"
kcat_lists=()
for n in "${NODES[@]}"; do
  out="$(kc -L -b "${ADDR[$n]}" -J 2>"$CWORK/kcat-L.err")" || { fail "kcat -L -b ${ADDR[$n]}: $(tail -3 "$CWORK/kcat-L.err")"; continue; }
  list="$(python3 -c 'import json, sys; md = json.loads(sys.argv[1])
print(" ".join("%s@%s" % (b["id"], b["name"]) for b in sorted(md["brokers"], key=lambda b: b["id"])))' "$out")"
  want="1@${ADDR[1]} 2@${ADDR[2]} 3@${ADDR[3]}"
  if [ "$list" = "$want" ]; then pass "kcat -L via node $n lists brokers $list"
  else fail "kcat -L via node $n lists brokers '$list', want '$want' (each advertising its PLAINTEXT listener)"; fi
  kcat_lists+=("$list")
done
if [ "${#kcat_lists[@]}" -eq 3 ] && [ -n "${kcat_lists[0]}" ] &&
   [ "$(printf '%s\n' "${kcat_lists[@]}" | sort -u | wc -l)" = 1 ]; then
  pass "all three nodes give the same broker list"
else
  fail "broker lists differ between nodes: $(printf '[%s] ' "${kcat_lists[@]}")"
fi

step "b. Java AdminClient: describeCluster, createTopics, describeTopics, RF 4"
jrun admin "$BOOTSTRAP_ALL" "$SPREAD" "$OTHER" | tee "$CWORK/admin.out"
if [ "${PIPESTATUS[0]}" -eq 0 ]; then pass "Java admin scenario (see its checks above)"
else fail "Java admin scenario: $(grep -c '  FAIL' "$CWORK/admin.out") check(s) failed (see above)"; fi

step "b2. Produce and Fetch sent to a node that does not lead the partition"
# The leaders as every node sees them, once they agree (creation goes through the quorum).
NOFIG=1 agree "every node sees $SPREAD and $OTHER, every partition led" 10 --nodes "$BOOTSTRAP_ALL" \
  --brokers 1,2,3 --topics "$SPREAD,$OTHER" --all-led --save "$CWORK/meta.created.json"
leader0="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["topics"]["spread"]["partitions"]["0"]["leader"])' \
  "$CWORK/meta.created.json" 2>/dev/null)"
if [[ "$leader0" =~ ^[123]$ ]]; then
  other_node="$(others "$leader0" | cut -d' ' -f1)"
  if out="$(tool not-leader "${ADDR[$other_node]}" "$SPREAD" 0 2>&1)"; then
    pass "node $other_node refuses $SPREAD[0] (led by $leader0): $out"
  else
    fail "node $other_node for $SPREAD[0] (led by $leader0) must answer NOT_LEADER_OR_FOLLOWER: $out"
  fi
else
  fail "no leader known for $SPREAD[0] (got '$leader0'); skipped the misrouted Produce/Fetch check"
fi

step "c. 600 records to $SPREAD (Java producer, acks=all), read back by three clients"
jrun produce "$BOOTSTRAP_ALL" "$SPREAD" "$N_RECORDS" "$CWORK/produced.$SPREAD" 2>&1 | tee "$CWORK/produce.out"
if [ "${PIPESTATUS[0]}" -eq 0 ] && [ "$(wc -l <"$CWORK/produced.$SPREAD")" = "$N_RECORDS" ]; then
  pass "Java producer: $N_RECORDS records acked"
else
  fail "Java producer did not get $N_RECORDS acks (see above)"
fi
if out="$(python3 - "$CWORK/produced.$SPREAD" 2>&1 <<'EOF'
import sys
per = {}
for line in open(sys.argv[1]):
    p, o, k, _ = line.split("\t")
    per.setdefault(int(p), []).append((int(o), int(k[1:])))
for p, recs in per.items():
    recs.sort()
    # Offsets 0..n-1 and keys in send order: what one idempotent producer must get.
    assert [o for o, _ in recs] == list(range(len(recs))), f"partition {p}: offsets {[o for o, _ in recs][:10]}..."
    assert [k for _, k in recs] == sorted(k for _, k in recs), f"partition {p}: keys out of send order"
assert sorted(per) == list(range(6)), f"records in partitions {sorted(per)}, want 0..5"
EOF
)"; then
  pass "acks: offsets 0..n-1 in each of the 6 partitions, keys in send order"
else
  fail "the producer's acks do not form contiguous per-partition logs: $(tail -n 1 <<<"$out")"
fi
read_back "Java consumer via node 1" java "${ADDR[1]}"
read_back "confluent-kafka via node 2" confluent "${ADDR[2]}"
read_back "kafka-python via node 3" kafka-python "${ADDR[3]}"

step "d. kcat produce and consume"
: >"$CWORK/kcat.expected"
for p in 0 1 2; do
  for i in 0 1 2 3 4; do echo "kc$p-$i:kcat value $i for partition $p"; done >"$CWORK/kcat.in.$p"
  if kc -P -b "${ADDR[2]}" -t "$OTHER" -p "$p" -K: -X message.timeout.ms=20000 <"$CWORK/kcat.in.$p" 2>"$CWORK/kcat-P.err"; then
    pass "kcat -P 5 records to $OTHER[$p] via node 2"
  else
    fail "kcat -P to $OTHER[$p]: $(grep -v '^%7' "$CWORK/kcat-P.err" | tail -3)"
  fi
  awk -F: -v p="$p" -v OFS='\t' '{ print p, NR - 1, $1, $2 }' "$CWORK/kcat.in.$p" >>"$CWORK/kcat.expected"
done
kc -C -b "${ADDR[3]}" -t "$OTHER" -o beginning -e -q -f '%p\t%o\t%k\t%s\n' 2>"$CWORK/kcat-C.err" |
  sort -t"$(printf '\t')" -k1,1n -k2,2n >"$CWORK/kcat.got"
if cmp -s "$CWORK/kcat.expected" "$CWORK/kcat.got"; then
  pass "kcat -C via node 3 read all 15 records of $OTHER (partition, offset, key, value)"
else
  fail "kcat -C of $OTHER differs from what was produced: $(diff "$CWORK/kcat.expected" "$CWORK/kcat.got" | head -5 | tr '\n' ' ') $(tail -2 "$CWORK/kcat-C.err")"
fi
# Auto-creation: a produce to an unknown topic must create it through the controller.
printf 'auto-%s:auto value %s\n' 0 0 1 1 2 2 >"$CWORK/kcat.in.auto"
if kc -P -b "${ADDR[1]}" -t "$AUTO" -p 0 -K: -X message.timeout.ms=20000 <"$CWORK/kcat.in.auto" 2>"$CWORK/kcat-P.err"; then
  pass "kcat -P 3 records to auto-created $AUTO via node 1"
else
  fail "kcat -P to auto-created $AUTO: $(grep -v '^%7' "$CWORK/kcat-P.err" | tail -3)"
fi
got="$(kc -C -b "${ADDR[2]}" -t "$AUTO" -p 0 -o beginning -e -q -f '%k:%s\n' 2>"$CWORK/kcat-C.err")"
if [ "$got" = "$(cat "$CWORK/kcat.in.auto")" ]; then
  pass "kcat -C via node 2 read the 3 records of $AUTO in order"
else
  fail "kcat -C of $AUTO via node 2: got '$(echo "$got" | tr '\n' '|')' $(tail -2 "$CWORK/kcat-C.err")"
fi

# failover LABEL VICTIM TOPIC [quick]: SIGKILL VICTIM, create TOPIC through the survivors, wait
# until they agree with VICTIM fenced, restart it, wait until all three agree with VICTIM leading
# its partitions again at a higher epoch, and read every record of $SPREAD back. With quick,
# VICTIM is restarted at once, before its session times out (no TOPIC, no fencing to wait for):
# it must re-register over its old registration.
failover() {
  local label="$1" victim="$2" topic="$3" quick="${4:-}" survivors out rc secs t_kill t_restart
  survivors="$(addrs $(others "$victim"))"
  NOFIG=1 agree "$label: before the kill, every node agrees" 10 --nodes "$BOOTSTRAP_ALL" --brokers 1,2,3 \
    --topics "$SPREAD,$OTHER" --all-led --save "$CWORK/meta.before.$victim.json"
  echo "SIGKILL node $victim (pid ${NODE_PID[$victim]})"
  t_kill=$EPOCHREALTIME
  node_kill "$victim" KILL
  if [ -z "$quick" ]; then
    failover_down "$label" "$victim" "$topic" "$survivors" "$t_kill"
    topic=",$topic"
  else
    topic=""
  fi

  echo "restart node $victim"
  t_restart=$EPOCHREALTIME
  node_start "$victim"
  if node_wait_started 30 "$victim"; then
    pass "$label: node $victim restarted ($(secs_since "$t_restart")s to 'fjord started')"
  else
    fail "$label: node $victim did not restart"
    return
  fi
  agree "$label: all three agree, node $victim leads its partitions again at a higher epoch" 20 \
    --nodes "$BOOTSTRAP_ALL" --brokers 1,2,3 --topics "$SPREAD,$OTHER$topic" --all-led \
    --releads "$victim" --releads-from "$CWORK/meta.before.$victim.json" --since "$t_restart"
  read_back "$label: all $N_RECORDS records of $SPREAD via node $victim" confluent "${ADDR[$victim]}"
}

# failover_down LABEL VICTIM TOPIC SURVIVORS T_KILL: while VICTIM is down, TOPIC must be
# creatable through the survivors within 10 s and they must agree with VICTIM fenced.
failover_down() {
  local label="$1" victim="$2" topic="$3" survivors="$4" t_kill="$5" out rc secs
  out="$(tool create-until "$survivors" "$topic" --partitions 3 --since "$t_kill" --timeout 30 2>&1)"; rc=$?
  out="$(tail -n 1 <<<"$out")"
  secs="${out%% *}"
  if [ "$rc" -eq 0 ] && [[ "$out" == *" ok after "* ]] && awk -v s="$secs" 'BEGIN { exit !(s <= 10) }'; then
    pass "$label: CreateTopics($topic) through the survivors succeeded ${secs}s after the kill ($out)"
  else
    fail "$label: CreateTopics($topic) through the survivors within 10s of the kill: $out"
  fi
  figure "$label: CreateTopics ok after kill: ${secs}s"

  local others_ids; others_ids="$(others "$victim" | tr ' ' ',' | sed 's/,$//')"
  agree "$label: survivors agree, node $victim fenced (session timeout ${SESSION_TIMEOUT_MS} ms + 7 s)" \
    "$((SESSION_TIMEOUT_MS / 1000 + 7))" --nodes "$survivors" --brokers "$others_ids" \
    --topics "$SPREAD,$OTHER,$topic" --since "$t_kill"
}

# controller_id: the controller every node names in its own DescribeCluster answer (sets CTL_ID,
# empty when they disagree or name none: a FAIL).
controller_id() {
  local out
  CTL_ID=""
  if out="$(tool controller "$BOOTSTRAP_ALL")"; then
    CTL_ID="${out#controller=}"; CTL_ID="${CTL_ID%% *}"
  fi
  if [[ "$CTL_ID" =~ ^[123]$ ]]; then
    pass "active controller: $out"
  else
    fail "no agreed controller among 1..3: $out"; CTL_ID=""
  fi
}

step "e. SIGKILL the active controller"
controller_id
java_ctl="$(awk '$1 == "controller" { print $2 }' "$CWORK/admin.out")"
[ -n "$CTL_ID" ] && [ "$java_ctl" != "$CTL_ID" ] &&
  echo "note: Java describeCluster in step b named controller ${java_ctl:-none}, now it is $CTL_ID"
[ -n "$CTL_ID" ] && failover "e (controller $CTL_ID)" "$CTL_ID" cluster-during-e

step "f. SIGKILL a node that is not the controller"
controller_id
if [ -n "$CTL_ID" ]; then
  ctl_id="$CTL_ID"
  victim="$(others "$ctl_id" | cut -d' ' -f1)"
  echo "killing node $victim, not the controller"
  failover "f (non-controller $victim)" "$victim" cluster-during-f
fi

step "g. SIGKILL a node that is not the controller and restart it at once"
controller_id
if [ -n "$CTL_ID" ]; then
  victim="$(others "$CTL_ID" | awk '{ print $NF }')"
  echo "killing node $victim, not the controller, and restarting it before its session times out"
  failover "g (quick restart of $victim)" "$victim" "" quick
fi

step "i. Kafka's kafka-reassign-partitions and kafka-leader-election"
# A partition on nodes 1 and 2 moves to 2 and 3 with Kafka 4.3's own tool (a throttle set and
# cleared on the way, as the tool does): node 3 copies the data, node 1 lets go of it.
ktool() { KAFKA_TOOL_TIMEOUT=60 bash "$ROOT/scripts/kafka-tool.sh" "$@" 2>&1; }
out="$(ktool kafka-topics --bootstrap-server "$BOOTSTRAP_ALL" --create --topic moved --replica-assignment 1:2)"
grep -q "Created topic moved" <<<"$out" || fail "i: kafka-topics --create --replica-assignment 1:2: $out"
seq 1 30 | sed 's/^/moved-/' | kc -b "$BOOTSTRAP_ALL" -P -t moved -X request.required.acks=-1 2>&1
echo '{"version":1,"partitions":[{"topic":"moved","partition":0,"replicas":[2,3]}]}' >"$CWORK/reassign.json"
out="$(ktool kafka-reassign-partitions --bootstrap-server "$BOOTSTRAP_ALL" \
  --reassignment-json-file "$CWORK/reassign.json" --execute --throttle 50000000)"
if grep -q "Successfully started partition reassignment for moved-0" <<<"$out"; then
  pass "i: kafka-reassign-partitions --execute started moving moved-0 to [2, 3]"
else
  fail "i: kafka-reassign-partitions --execute: $out"
fi
done_=""
for _ in $(seq 1 30); do
  out="$(ktool kafka-reassign-partitions --bootstrap-server "$BOOTSTRAP_ALL" \
    --reassignment-json-file "$CWORK/reassign.json" --verify)"
  grep -q "Reassignment of partition moved-0 is completed" <<<"$out" && { done_=1; break; }
  sleep 1
done
if [ -n "$done_" ]; then pass "i: kafka-reassign-partitions --verify: completed, throttles cleared"
else fail "i: kafka-reassign-partitions --verify: $out"; fi
out="$(ktool kafka-topics --bootstrap-server "$BOOTSTRAP_ALL" --describe --topic moved)"
if grep -q "Replicas: 2,3" <<<"$out"; then pass "i: kafka-topics --describe shows replicas 2,3"
else fail "i: kafka-topics --describe: $out"; fi
got="$(kc -b "$BOOTSTRAP_ALL" -C -t moved -o beginning -e 2>/dev/null | grep -c '^moved-')"
if [ "$got" = 30 ]; then pass "i: the 30 records are read back after the move"
else fail "i: read back $got of 30 records after the move"; fi
out="$(ktool kafka-leader-election --bootstrap-server "$BOOTSTRAP_ALL" --election-type PREFERRED --all-topic-partitions)"
if [ $? -eq 0 ]; then pass "i: kafka-leader-election --election-type PREFERRED --all-topic-partitions"
else fail "i: kafka-leader-election: $out"; fi

step "h. dedicated roles: fjord dev-cluster --nodes 5 --controllers 3"
# Three controllers (process.roles=controller) and two brokers (process.roles=broker) that
# follow the metadata log as observers; Kafka's kafka-metadata-quorum must list them so.
cluster_stop
dc_base=""
for _ in $(seq 1 50); do
  b=$((20000 + (RANDOM % 2000) * 6)) ok=1
  for i in 0 1 2 3 4 100 101 102 103 104; do port_free $((b + i)) || { ok=0; break; }; done
  [ "$ok" = 1 ] && { dc_base="$b"; break; }
done
if [ -z "$dc_base" ]; then
  fail "h: no free ports for the dev cluster"
else
  env -u FJORD_CACHE -u FJORD_BIN "$FJORD_BIN" dev-cluster --nodes 5 --controllers 3 \
    --base-port "$dc_base" --data-dir "$CWORK/dev" -o "broker.session.timeout.ms=$SESSION_TIMEOUT_MS" \
    -o "broker.heartbeat.interval.ms=$HEARTBEAT_MS" >"$CWORK/dev.out" 2>"$CWORK/dev.log" &
  dc_pid=$!
  for _ in $(seq 1 300); do grep -q '^bootstrap:' "$CWORK/dev.out" && break; sleep 0.1; done
  dc_boot="$(sed -n 's/^bootstrap: //p' "$CWORK/dev.out")"
  if [ "$dc_boot" = "127.0.0.1:$((dc_base + 3)),127.0.0.1:$((dc_base + 4))" ]; then
    pass "h: dev-cluster printed the two brokers' bootstrap $dc_boot"
  else
    fail "h: dev-cluster bootstrap: '${dc_boot}' ($(tail -n 5 "$CWORK/dev.log"))"
  fi
  listed="$(kc -b "$dc_boot" -L 2>&1 | awk '$1 == "broker" { print $2 }' | sort | tr '\n' ' ')"
  if [ "$listed" = "4 5 " ]; then pass "h: kcat -L lists brokers 4 and 5 only"
  else fail "h: kcat -L brokers: '$listed'"; fi
  q=""
  for _ in $(seq 1 20); do
    q="$(KAFKA_TOOL_TIMEOUT=60 bash "$ROOT/scripts/kafka-tool.sh" kafka-metadata-quorum \
      --bootstrap-server "$dc_boot" describe --status 2>&1)"
    grep -q 'CurrentObservers:.*"id": 4.*"id": 5' <<<"$q" && break
    sleep 0.5
  done
  if grep -q 'CurrentVoters:.*"id": 1.*"id": 2.*"id": 3' <<<"$q" &&
     grep -q 'CurrentObservers:.*"id": 4.*"id": 5' <<<"$q"; then
    pass "h: kafka-metadata-quorum: voters 1, 2, 3 and observers 4, 5"
  else
    fail "h: kafka-metadata-quorum describe --status: $q"
  fi
  seq 1 20 | sed 's/^/dedicated-/' | kc -b "$dc_boot" -P -t dedicated -X topic.metadata.refresh.interval.ms=500 2>&1
  got="$(kc -b "$dc_boot" -C -t dedicated -o beginning -e -c 20 2>/dev/null | sort | uniq | wc -l)"
  if [ "$got" = 20 ]; then pass "h: kcat produced 20 records to an auto-created topic and read them back"
  else fail "h: kcat read back $got of 20 records"; fi
  kill -INT "$dc_pid"
  if wait "$dc_pid"; then pass "h: dev-cluster stopped on Ctrl-C with exit 0"
  else fail "h: dev-cluster exit $? after Ctrl-C ($(tail -n 5 "$CWORK/dev.log"))"; fi
fi
