#!/usr/bin/env bash
# A three-node cluster with no plaintext port (issue 14, item 4): every node's broker listener
# is SASL_SSL (PLAIN and SCRAM-SHA-512 for clients), the brokers replicate and send
# transaction markers to each other over it (inter.broker.listener.name=SASL_SSL,
# sasl.mechanism.inter.broker.protocol=PLAIN, as User:broker), and the metadata quorum runs
# on a CONTROLLER listener that is
#   a. SSL with mutual TLS (ssl.client.auth=required; the nodes' certificate subject is a
#      super user), then, after a restart of all three on the same data,
#   b. SASL_SSL with PLAIN (sasl.mechanism.controller.protocol=PLAIN, as User:controller).
# StandardAuthorizer is on throughout (super.users: the nodes' principals and admin). Checks:
# the cluster forms; a topic of replication factor 3 with min.insync.replicas=3 takes acks=all
# writes (only possible when both followers fetch over SASL_SSL) and shows every replica in
# sync; a transaction spanning partitions led by different brokers commits (markers over
# SASL_SSL) and read_committed sees it; a TLS client without a certificate, one whose subject
# is no super user, and plaintext bytes are refused at the controller port, the nodes
# unaffected; after the restart with SASL on the quorum, everything is still there and new
# acks=all writes succeed; a node restarted with a wrong inter-broker password says why it
# cannot follow, and follows again once the password is right. Every check prints PASS/FAIL;
# exits non-zero if anything failed.
# KEEP_WORK=1 keeps the work dir.
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"
set +e

PASSED=0 FAILED=0
pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
step() { echo; echo "== $*"; }
kc() { timeout --kill-after=5 30 kcat "$@"; }
ktool() { KAFKA_TOOL_TIMEOUT=60 bash "$ROOT/scripts/kafka-tool.sh" "$@"; }

if ! command -v kcat >/dev/null; then echo "kcat not found: run scripts/setup-kcat.sh"; exit 2; fi
if ! command -v openssl >/dev/null; then echo "openssl not found"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi
if [ ! -x "$VENV/bin/python" ]; then echo "no venv at $VENV (scripts/setup-python.sh)"; exit 2; fi

CWORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-cluster-secure.XXXXXX")"
WORK="$CWORK"
C="$CWORK/certs"
mkdir -p "$C"
finish() {
  cluster_stop
  echo
  if [ "$FAILED" -ne 0 ]; then
    for n in "${NODES[@]}"; do node_log_tail "$n" 25; done
    echo "--- work dir kept: $CWORK"
  elif [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work dir kept: $CWORK"
  else
    rm -rf "$CWORK"
  fi
  echo "cluster-secure: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
trap 'finish; exit $?' EXIT

source "$(dirname "${BASH_SOURCE[0]}")/certs.sh"
ca ca
ca rogue-ca
leaf node ca "/CN=fjord-node" "IP:127.0.0.1,DNS:localhost"
leaf stranger ca "/CN=stranger"
leaf rogue rogue-ca "/CN=fjord-node"
if [ ! -s "$C/node.pem" ]; then echo "openssl could not make the certificates:"; cat "$CWORK/openssl.log"; exit 2; fi
cat "$C/node.key" "$C/node.pem" >"$C/node-keystore.pem"

cluster_pick_ports || exit 2
BOOT="$BOOTSTRAP_ALL"
PLAIN_JAAS='org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret" user_broker="broker-secret" user_admin="admin-secret";'
CLUSTER_BROKER_LISTENER=SASL_SSL
COMMON=(
  "inter.broker.listener.name=SASL_SSL"
  "sasl.mechanism.inter.broker.protocol=PLAIN"
  "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512"
  "listener.name.sasl_ssl.plain.sasl.jaas.config=$PLAIN_JAAS"
  "ssl.keystore.type=PEM" "ssl.keystore.location=$C/node-keystore.pem"
  "ssl.truststore.type=PEM" "ssl.truststore.location=$C/ca.pem"
  "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
  "super.users=User:broker;User:controller;User:CN=fjord-node;User:admin"
  "num.partitions=3" "default.replication.factor=3" "replica.lag.time.max.ms=4000"
)
MTLS=(
  "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL"
  "listener.name.controller.ssl.client.auth=required"
)
SASL_CONTROLLER=(
  "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL"
  "sasl.mechanism.controller.protocol=PLAIN"
  "listener.name.controller.sasl.enabled.mechanisms=PLAIN"
  "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"controller\" password=\"controller-secret\" user_controller=\"controller-secret\";"
)
ADMIN=(-X security.protocol=sasl_ssl -X "ssl.ca.location=$C/ca.pem" -X sasl.mechanisms=PLAIN
  -X sasl.username=admin -X sasl.password=admin-secret)
cat >"$CWORK/admin.properties" <<EOF
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=$C/ca.pem
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret";
EOF

# in_sync TOPIC: every partition of TOPIC has three replicas in sync (kafka-topics --describe).
in_sync() {
  local out
  out="$(ktool kafka-topics --bootstrap-server "$BOOT" --command-config "$CWORK/admin.properties" \
    --describe --topic "$1" 2>&1)"
  [ "$(grep -cE 'Isr: [1-3],[1-3],[1-3]' <<<"$out")" = 3 ]
}

# out_of_sync_3 TOPIC: the describe lists TOPIC's three partitions and some ISR lacks node 3.
out_of_sync_3() {
  local isrs
  isrs="$(ktool kafka-topics --bootstrap-server "$BOOT" --command-config "$CWORK/admin.properties" \
    --describe --topic "$1" 2>&1 | grep -oE 'Isr: [0-9,]+')"
  [ "$(grep -c . <<<"$isrs")" = 3 ] && grep -qv 3 <<<"$isrs"
}

step "a. SASL_SSL brokers, the quorum on SSL with mutual TLS"
CLUSTER_EXTRA=("${COMMON[@]}" "${MTLS[@]}")
for n in "${NODES[@]}"; do node_start "$n"; done
if node_wait_started 60 1 2 3; then pass "three nodes with no plaintext listener form a cluster"
else fail "the cluster did not start"; exit 1; fi
out=""
for _ in $(seq 1 60); do
  out="$(kc -L -b "$BOOT" "${ADMIN[@]}" 2>&1)"
  grep -q "3 brokers" <<<"$out" && break
  sleep 0.5
done
grep -q "3 brokers" <<<"$out" && pass "kcat (SASL_SSL, PLAIN) sees three brokers" || fail "kcat -L: $(head -5 <<<"$out")"

out="$(ktool kafka-topics --bootstrap-server "$BOOT" --command-config "$CWORK/admin.properties" --create \
  --topic secure --partitions 3 --replication-factor 3 --config min.insync.replicas=3 2>&1)"
grep -q "Created topic secure" <<<"$out" && pass "kafka-topics creates an RF 3 topic with min.insync.replicas=3" \
  || fail "create: $(tail -3 <<<"$out")"
seq 1 300 | sed 's/^/secure-/' | kc -P -b "$BOOT" "${ADMIN[@]}" -X acks=all -t secure 2>"$CWORK/produce.err"
got="$(kc -C -b "$BOOT" "${ADMIN[@]}" -t secure -o beginning -e 2>/dev/null | grep -c '^secure-')"
[ "$got" = 300 ] && pass "300 records written with acks=all and min.insync.replicas=3 (followers fetch over SASL_SSL)" \
  || fail "acks=all: read $got of 300 ($(tail -2 "$CWORK/produce.err" | tr '\n' ' '))"
ok=0
for _ in $(seq 1 20); do in_sync secure && { ok=1; break; }; sleep 1; done
[ "$ok" = 1 ] && pass "every partition has all three replicas in sync" || fail "ISR not full"

out="$(timeout 120 "$VENV/bin/python" - "$BOOT" "$C/ca.pem" <<'EOF' 2>&1
import sys
from confluent_kafka import Consumer, Producer
boot, ca = sys.argv[1:3]
sec = {"bootstrap.servers": boot, "security.protocol": "SASL_SSL", "ssl.ca.location": ca,
       "sasl.mechanisms": "PLAIN", "sasl.username": "admin", "sasl.password": "admin-secret"}
p = Producer(dict(sec, **{"transactional.id": "secure-txn"}))
p.init_transactions(30)
p.begin_transaction()
for i in range(30):
    p.produce("secure", value=b"txn-%d" % i, partition=i % 3)
p.commit_transaction(30)
p.begin_transaction()
for i in range(5):
    p.produce("secure", value=b"aborted-%d" % i, partition=i % 3)
p.abort_transaction(30)
c = Consumer(dict(sec, **{"group.id": "secure-read", "auto.offset.reset": "earliest",
                          "isolation.level": "read_committed"}))
c.subscribe(["secure"])
seen, idle = [], 0
while idle < 10:
    m = c.poll(1.0)
    if m is None:
        idle += 1
        continue
    if m.error():
        continue
    idle = 0
    seen.append(m.value())
c.close()
print("committed", sum(v.startswith(b"txn-") for v in seen), "aborted", sum(v.startswith(b"aborted-") for v in seen))
EOF
)"
grep -q "committed 30 aborted 0" <<<"$out" \
  && pass "a transaction over three leaders commits, an aborted one stays invisible (markers over SASL_SSL)" \
  || fail "transactions: $(tail -3 <<<"$out")"

QP="${QPORT[1]}"
# refused_since MARK REASON: node 1 logged a refused quorum connection with REASON after line MARK.
refused_since() {
  for _ in $(seq 1 20); do
    tail -n "+$(($1 + 1))" "$CWORK/node1.log" | grep "metadata quorum: connection refused" | grep -q "$2" && return 0
    sleep 0.25
  done
  return 1
}
mark="$(wc -l <"$CWORK/node1.log")"
timeout 10 openssl s_client -connect "127.0.0.1:$QP" -CAfile "$C/ca.pem" </dev/null >/dev/null 2>&1
refused_since "$mark" "peer sent no certificates" && pass "a TLS client without a certificate is refused at the controller port" \
  || fail "no certificate: not refused for want of a certificate"
printf 'not tls\n' | timeout 5 openssl s_client -connect "127.0.0.1:$QP" -CAfile "$C/ca.pem" \
  -cert "$C/stranger.pem" -key "$C/stranger.key" >/dev/null 2>&1
sleep 0.5
grep -q "User:CN=stranger is not in super.users" "$CWORK/node1.log" \
  && pass "a certificate the CA signed whose subject is no super user is refused" \
  || fail "stranger: not refused"
mark="$(wc -l <"$CWORK/node1.log")"
timeout 5 openssl s_client -connect "127.0.0.1:$QP" -CAfile "$C/ca.pem" \
  -cert "$C/rogue.pem" -key "$C/rogue.key" </dev/null >/dev/null 2>&1
refused_since "$mark" "UnknownIssuer" && pass "a certificate of an untrusted CA (with a super user's subject) is refused" \
  || fail "rogue CA: not refused as an unknown issuer"
mark="$(wc -l <"$CWORK/node1.log")"
printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 bash -c "cat >/dev/tcp/127.0.0.1/$QP" 2>/dev/null
refused_since "$mark" "InvalidContentType" && pass "plaintext bytes at the controller port are refused" \
  || fail "plaintext bytes: not refused"
out="$(kc -L -b "$BOOT" "${ADMIN[@]}" 2>&1)"
if grep -q "3 brokers" <<<"$out" && node_alive 1 && node_alive 2 && node_alive 3; then
  pass "the hostile connections leave the cluster unaffected"
else fail "after hostile connections: $(head -3 <<<"$out")"; fi

step "b. all three restarted with SASL_SSL (PLAIN) on the quorum"
cluster_stop
CLUSTER_EXTRA=("${COMMON[@]}" "${SASL_CONTROLLER[@]}")
for n in "${NODES[@]}"; do node_start "$n"; done
if node_wait_started 60 1 2 3; then pass "the cluster starts again with SASL on the controller listener"
else fail "the cluster did not restart"; exit 1; fi
got=0
for _ in $(seq 1 30); do
  got="$(kc -C -b "$BOOT" "${ADMIN[@]}" -t secure -o beginning -e 2>/dev/null | grep -c '^secure-')"
  [ "$got" = 300 ] && break
  sleep 1
done
[ "$got" = 300 ] && pass "the 300 records are all there after the restart" || fail "after restart: read $got of 300"
seq 1 100 | sed 's/^/again-/' | kc -P -b "$BOOT" "${ADMIN[@]}" -X acks=all -t secure 2>"$CWORK/produce2.err"
got="$(kc -C -b "$BOOT" "${ADMIN[@]}" -t secure -o beginning -e 2>/dev/null | grep -c '^again-')"
[ "$got" = 100 ] && pass "100 more acks=all records with min.insync.replicas=3 after the restart" \
  || fail "acks=all after restart: read $got of 100 ($(tail -2 "$CWORK/produce2.err" | tr '\n' ' '))"
ok=0
for _ in $(seq 1 20); do in_sync secure && { ok=1; break; }; sleep 1; done
[ "$ok" = 1 ] && pass "every replica is back in sync" || fail "ISR not full after the restart"
# A status request (the quorum's own framing: length, then JSON) over TLS with no SASL first.
mark="$(wc -l <"$CWORK/node1.log")"
printf '\x00\x00\x00\x08"Status"' | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$QP" \
  -CAfile "$C/ca.pem" >/dev/null 2>&1
refused_since "$mark" "a request before authentication" \
  && pass "a request before SASL authentication on the quorum is refused" \
  || fail "unauthenticated quorum request: not refused"

step "c. a node with the wrong inter-broker password"
node_kill 3 TERM >/dev/null
WRONG_JAAS="${PLAIN_JAAS/password=\"broker-secret\"/password=\"wrong\"}"
CLUSTER_EXTRA=("${COMMON[@]/#listener.name.sasl_ssl.plain.sasl.jaas.config=*/listener.name.sasl_ssl.plain.sasl.jaas.config=$WRONG_JAAS}" "${SASL_CONTROLLER[@]}")
node_start 3
node_wait_started 60 3 || fail "node 3 did not restart"
seq 1 20 | sed 's/^/wrong-/' | kc -P -b "$(addrs 1 2)" "${ADMIN[@]}" -X acks=1 -t secure 2>/dev/null
ok=0
for _ in $(seq 1 30); do
  tail -n "+$((LOG_MARK[3] + 1))" "$CWORK/node3.log" | grep -qE "refused this follower's connection.*PLAIN authentication.*refused" && { ok=1; break; }
  sleep 0.5
done
[ "$ok" = 1 ] && pass "the node logs that the leaders refuse its connection (PLAIN authentication failed)" \
  || fail "no warning about the refused inter-broker authentication"
ok=0
for _ in $(seq 1 30); do out_of_sync_3 secure && { ok=1; break; }; sleep 1; done
[ "$ok" = 1 ] && pass "node 3 drops out of the ISR (replica.lag.time.max.ms=4000): it really cannot fetch" \
  || fail "node 3 stayed in the ISR with a wrong password"
node_kill 3 TERM >/dev/null
CLUSTER_EXTRA=("${COMMON[@]}" "${SASL_CONTROLLER[@]}")
node_start 3
node_wait_started 60 3 || fail "node 3 did not restart"
ok=0
for _ in $(seq 1 30); do in_sync secure && { ok=1; break; }; sleep 1; done
[ "$ok" = 1 ] && pass "with the right password it catches up: every replica in sync again" || fail "ISR not full after the fix"
