#!/usr/bin/env bash
# TLS listeners (issue 14, first part) through real clients, with certificates made here by
# openssl: one broker with four listeners,
#   PLAINTEXT  plaintext;
#   SSL        server key and chain in one PEM file (ssl.keystore.type=PEM);
#   P12        server key store in PKCS12 (ssl.keystore.location + password);
#   MTLS       mutual TLS (listener.name.mtls.ssl.client.auth=required, a PEM trust store,
#              ssl.principal.mapping.rules taking the CN);
#   SASL_PLAINTEXT and SASL_SSL  SASL/PLAIN with users in the listeners' JAAS settings.
# SASL checks: kcat, confluent-kafka, kafka-python, aiokafka and Kafka's console tools authenticate
# with PLAIN over SASL_PLAINTEXT and SASL_SSL; a wrong password, an unknown user, a disabled
# mechanism and a request before authentication are refused (connection closed, logged).
# TLS checks: kcat (librdkafka) produce/consume over SSL and P12; confluent-kafka over SSL;
# Kafka's console producer and consumer (Java) over SSL with a PEM trust store and over
# MTLS with a PKCS12 client key store; kcat with a trusted client certificate on MTLS;
# refused: no client certificate, an untrusted one, a plaintext client on the TLS port, a
# TLS client on the plaintext port (each a clean close, the broker serving on); a renewed
# server certificate is served without a restart.
# Every check prints PASS/FAIL; exits non-zero if anything failed. KEEP_WORK=1 keeps the dir.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e

PASSED=0 FAILED=0
pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
step() { echo; echo "== $*"; }
kc() { timeout --kill-after=5 20 kcat "$@"; }

if ! command -v kcat >/dev/null; then echo "kcat not found: run scripts/setup-kcat.sh"; exit 2; fi
if ! command -v openssl >/dev/null; then echo "openssl not found"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-tls.XXXXXX")"
C="$WORK/certs"
mkdir -p "$C"
BROKER_PID=""
finish() {
  [ -n "$BROKER_PID" ] && kill -TERM "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
  echo
  if [ "$FAILED" -ne 0 ]; then
    echo "--- broker log tail"; tail -40 "$WORK/broker.log" 2>/dev/null
    echo "--- work dir kept: $WORK"
  elif [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  echo "tls: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
trap 'finish; exit $?' EXIT

# --- certificates: a CA, the server (127.0.0.1 and localhost), a client, and a client of
# another CA that the broker does not trust.
source "$(dirname "${BASH_SOURCE[0]}")/certs.sh"
ca ca
ca rogue-ca
leaf server ca "/CN=fjord-server" "IP:127.0.0.1,DNS:localhost"
leaf client ca "/O=Acme/OU=eng/CN=alice"
leaf rogue rogue-ca "/CN=mallory"
cat "$C/server.key" "$C/server.pem" >"$C/server-keystore.pem"
ossl pkcs12 -export -in "$C/server.pem" -inkey "$C/server.key" -passout pass:p12secret \
  -out "$C/server.p12"
ossl pkcs12 -export -in "$C/client.pem" -inkey "$C/client.key" -passout pass:clientsecret \
  -out "$C/client.p12"
if [ ! -s "$C/server.p12" ] || [ ! -s "$C/client.p12" ]; then
  echo "openssl could not make the certificates:"; cat "$WORK/openssl.log"; exit 2
fi

P_PLAIN="$(free_port)" P_SSL="$(free_port)" P_P12="$(free_port)" P_MTLS="$(free_port)"
P_SASL="$(free_port)" P_SASL_SSL="$(free_port)"
JAAS='org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
# fjord::server and fjord::security at debug log each client's principal or SASL user.
env -u FJORD_CACHE -u FJORD_BIN RUST_LOG="${RUST_LOG:-info,fjord::server=debug,fjord::security=debug}" "$FJORD_BIN" --log-dirs "$WORK/data" \
  -o "listeners=PLAINTEXT://127.0.0.1:$P_PLAIN,SSL://127.0.0.1:$P_SSL,P12://127.0.0.1:$P_P12,MTLS://127.0.0.1:$P_MTLS,SASL_PLAINTEXT://127.0.0.1:$P_SASL,SASL_SSL://127.0.0.1:$P_SASL_SSL" \
  -o "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,P12:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL" \
  -o "sasl.enabled.mechanisms=PLAIN" \
  -o "listener.name.sasl_plaintext.plain.sasl.jaas.config=$JAAS" \
  -o "listener.name.sasl_ssl.plain.sasl.jaas.config=$JAAS" \
  -o "ssl.keystore.type=PEM" -o "ssl.keystore.location=$C/server-keystore.pem" \
  -o "listener.name.p12.ssl.keystore.type=PKCS12" \
  -o "listener.name.p12.ssl.keystore.location=$C/server.p12" \
  -o "listener.name.p12.ssl.keystore.password=p12secret" \
  -o "listener.name.mtls.ssl.client.auth=required" \
  -o "listener.name.mtls.ssl.truststore.type=PEM" \
  -o "listener.name.mtls.ssl.truststore.location=$C/ca.pem" \
  -o 'listener.name.mtls.ssl.principal.mapping.rules=RULE:^CN=([^,]*),.*$/$1/L,DEFAULT' \
  -o "num.partitions=1" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$P_SASL_SSL") 2>/dev/null && break
  kill -0 "$BROKER_PID" 2>/dev/null || { echo "broker died:"; tail -30 "$WORK/broker.log"; exit 1; }
  sleep 0.1
done

SSL_ARGS=(-X security.protocol=ssl -X "ssl.ca.location=$C/ca.pem")
MTLS_ARGS=("${SSL_ARGS[@]}" -X "ssl.certificate.location=$C/client.pem" -X "ssl.key.location=$C/client.key")

step "kcat over SSL (PEM key store) and P12 (PKCS12 key store)"
for l in SSL:$P_SSL P12:$P_P12; do
  name="${l%%:*}" port="${l#*:}"
  seq 1 20 | sed "s/^/$name-/" | kc -P -b "127.0.0.1:$port" "${SSL_ARGS[@]}" -t "tls-$name" 2>"$WORK/kcat-$name.err"
  got="$(kc -C -b "127.0.0.1:$port" "${SSL_ARGS[@]}" -t "tls-$name" -o beginning -e 2>>"$WORK/kcat-$name.err" | grep -c "^$name-")"
  if [ "$got" = 20 ]; then pass "kcat over $name: 20 records produced and read back"
  else fail "kcat over $name: read $got of 20 ($(tail -3 "$WORK/kcat-$name.err" | tr '\n' ' '))"; fi
done
# The SSL listener's records through the plaintext one: the same log.
got="$(kc -C -b "127.0.0.1:$P_PLAIN" -t tls-SSL -o beginning -e 2>/dev/null | grep -c '^SSL-')"
[ "$got" = 20 ] && pass "the records written over TLS read over PLAINTEXT" || fail "PLAINTEXT read $got of 20"
meta="$(kc -L -b "127.0.0.1:$P_SSL" "${SSL_ARGS[@]}" 2>/dev/null | grep -m1 'broker ')"
if grep -q "127.0.0.1:$P_SSL" <<<"$meta"; then pass "Metadata over SSL advertises the SSL listener ($meta)"
else fail "Metadata over SSL: $meta"; fi

step "confluent-kafka (librdkafka in Python) over SSL"
if [ -x "$VENV/bin/python" ]; then
  out="$(timeout 60 "$VENV/bin/python" - "127.0.0.1:$P_SSL" "$C/ca.pem" <<'EOF' 2>&1
import sys
from confluent_kafka import Producer, Consumer
conf = {"bootstrap.servers": sys.argv[1], "security.protocol": "SSL", "ssl.ca.location": sys.argv[2]}
p = Producer(conf)
for i in range(50):
    p.produce("tls-py", value=f"py-{i}".encode())
assert p.flush(20) == 0, "undelivered"
c = Consumer(dict(conf, **{"group.id": "tls-py", "auto.offset.reset": "earliest"}))
c.subscribe(["tls-py"])
got = []
for _ in range(200):
    m = c.poll(0.2)
    if m is not None and m.error() is None:
        got.append(m.value().decode())
    if len(got) == 50:
        break
c.commit(asynchronous=False)
c.close()
print("read", len(got), "in order" if got == [f"py-{i}" for i in range(50)] else "OUT OF ORDER")
EOF
)"
  if grep -q "read 50 in order" <<<"$out"; then pass "confluent-kafka over SSL: 50 records, group commit"
  else fail "confluent-kafka over SSL: $out"; fi
else
  fail "no venv at $VENV (scripts/setup-python.sh)"
fi

step "Kafka's console tools (Java) over SSL and mutual TLS"
cat >"$WORK/java-ssl.properties" <<EOF
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$C/ca.pem
EOF
cat >"$WORK/java-mtls.properties" <<EOF
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$C/ca.pem
ssl.keystore.type=PKCS12
ssl.keystore.location=$C/client.p12
ssl.keystore.password=clientsecret
EOF
ktool() { KAFKA_TOOL_TIMEOUT=60 bash "$ROOT/scripts/kafka-tool.sh" "$@"; }
for l in SSL:$P_SSL:java-ssl MTLS:$P_MTLS:java-mtls; do
  IFS=: read -r name port props <<<"$l"
  seq 1 10 | sed "s/^/java-$name-/" | ktool kafka-console-producer --bootstrap-server "127.0.0.1:$port" \
    --topic "tls-java-$name" --command-config "$WORK/$props.properties" >"$WORK/java-$name.out" 2>&1
  got="$(ktool kafka-console-consumer --bootstrap-server "127.0.0.1:$port" --topic "tls-java-$name" \
    --from-beginning --max-messages 10 --timeout-ms 30000 --command-config "$WORK/$props.properties" 2>>"$WORK/java-$name.out" \
    | grep -c "^java-$name-")"
  if [ "$got" = 10 ]; then pass "Java console producer and consumer over $name: 10 records"
  else fail "Java over $name: read $got of 10 ($(grep -iE 'error|exception' "$WORK/java-$name.out" | head -3 | tr '\n' ' '))"; fi
done

step "mutual TLS: who may connect"
echo mtls-1 | kc -P -b "127.0.0.1:$P_MTLS" "${MTLS_ARGS[@]}" -t tls-mtls 2>"$WORK/kcat-mtls.err"
got="$(kc -C -b "127.0.0.1:$P_MTLS" "${MTLS_ARGS[@]}" -t tls-mtls -o beginning -e 2>>"$WORK/kcat-mtls.err" | grep -c '^mtls-1')"
[ "$got" = 1 ] && pass "kcat with a trusted client certificate on MTLS" || fail "kcat on MTLS read $got ($(tail -2 "$WORK/kcat-mtls.err" | tr '\n' ' '))"
# The principal mapping rule lower-cases the CN of O=Acme/OU=eng/CN=alice.
if grep -q 'listener=MTLS principal=User:alice' "$WORK/broker.log"; then
  pass "the client certificate's principal is User:alice (ssl.principal.mapping.rules)"
else fail "no connection with principal User:alice in the log"; fi
refused() { # DESCRIPTION kcat-args...
  local what="$1"; shift
  if kc -L -b "127.0.0.1:$P_MTLS" -m 5 "$@" >"$WORK/refused.out" 2>&1; then
    fail "$what: the broker answered"
  else
    pass "$what: refused"
  fi
}
refused "no client certificate on MTLS" "${SSL_ARGS[@]}"
refused "a client certificate of an untrusted CA on MTLS" "${SSL_ARGS[@]}" \
  -X "ssl.certificate.location=$C/rogue.pem" -X "ssl.key.location=$C/rogue.key"
if grep -q "TLS handshake failed" "$WORK/broker.log"; then pass "the refusals are logged (TLS handshake failed)"
else fail "no log line for the refused handshakes"; fi

step "the wrong protocol on each port: a clean close, the broker unaffected"
if kc -L -b "127.0.0.1:$P_SSL" -m 5 >/dev/null 2>&1; then fail "a plaintext client got an answer on the SSL port"
else pass "a plaintext client on the SSL port gets no answer"; fi
out="$(timeout 10 openssl s_client -connect "127.0.0.1:$P_PLAIN" </dev/null 2>&1)"
if grep -qiE 'handshake failure|unexpected eof|errno|no peer certificate|wrong version' <<<"$out"; then
  pass "a TLS client on the PLAINTEXT port is closed"
else fail "TLS on PLAINTEXT: $(head -3 <<<"$out")"; fi
head -c 4096 /dev/urandom | timeout 5 bash -c "cat >/dev/tcp/127.0.0.1/$P_SSL" 2>/dev/null
kill -0 "$BROKER_PID" 2>/dev/null && kc -L -b "127.0.0.1:$P_SSL" "${SSL_ARGS[@]}" -m 5 >/dev/null 2>&1 \
  && pass "after garbage on the SSL port the broker still serves TLS" \
  || fail "the broker stopped serving after garbage"

step "a renewed server certificate is served without a restart"
leaf server2 ca "/CN=fjord-server-renewed" "IP:127.0.0.1,DNS:localhost"
cat "$C/server2.key" "$C/server2.pem" >"$C/server-keystore.pem.new"
mv "$C/server-keystore.pem.new" "$C/server-keystore.pem"
renewed=""
for _ in $(seq 1 30); do
  if timeout 5 openssl s_client -connect "127.0.0.1:$P_SSL" -CAfile "$C/ca.pem" </dev/null 2>/dev/null \
    | grep -q 'CN *= *fjord-server-renewed'; then renewed=1; break; fi
  sleep 1
done
[ -n "$renewed" ] && pass "the SSL listener serves the renewed certificate" || fail "the renewed certificate was not picked up"
got="$(kc -C -b "127.0.0.1:$P_SSL" "${SSL_ARGS[@]}" -t tls-SSL -o beginning -e 2>/dev/null | grep -c '^SSL-')"
[ "$got" = 20 ] && pass "kcat over SSL after the renewal" || fail "kcat after the renewal read $got of 20"

step "SASL/PLAIN over SASL_PLAINTEXT and SASL_SSL"
SASL_ARGS=(-X security.protocol=sasl_plaintext -X sasl.mechanisms=PLAIN -X sasl.username=alice -X sasl.password=alice-secret)
SASL_SSL_ARGS=(-X security.protocol=sasl_ssl -X "ssl.ca.location=$C/ca.pem" -X sasl.mechanisms=PLAIN -X sasl.username=alice -X sasl.password=alice-secret)
for l in SASL_PLAINTEXT:$P_SASL SASL_SSL:$P_SASL_SSL; do
  name="${l%%:*}" port="${l#*:}"
  if [ "$name" = SASL_SSL ]; then args=("${SASL_SSL_ARGS[@]}"); else args=("${SASL_ARGS[@]}"); fi
  seq 1 20 | sed "s/^/$name-/" | kc -P -b "127.0.0.1:$port" "${args[@]}" -t "sasl-$name" 2>"$WORK/kcat-$name.err"
  got="$(kc -C -b "127.0.0.1:$port" "${args[@]}" -t "sasl-$name" -o beginning -e 2>>"$WORK/kcat-$name.err" | grep -c "^$name-")"
  if [ "$got" = 20 ]; then pass "kcat with SASL/PLAIN over $name: 20 records produced and read back"
  else fail "kcat over $name: read $got of 20 ($(tail -3 "$WORK/kcat-$name.err" | tr '\n' ' '))"; fi
done
if grep -q 'mechanism=PLAIN user=alice' "$WORK/broker.log"; then pass "the broker logs user alice's authentication"
else fail "no SASL authentication of alice in the log"; fi

if [ -x "$VENV/bin/python" ]; then
  out="$(timeout 90 "$VENV/bin/python" - "127.0.0.1:$P_SASL" "127.0.0.1:$P_SASL_SSL" "$C/ca.pem" <<'EOF' 2>&1
import sys, ssl
from confluent_kafka import Producer, Consumer
plain, sasl_ssl, ca = sys.argv[1:4]
conf = {"bootstrap.servers": sasl_ssl, "security.protocol": "SASL_SSL", "ssl.ca.location": ca,
        "sasl.mechanisms": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret"}
p = Producer(conf)
for i in range(30):
    p.produce("sasl-py", value=f"py-{i}".encode())
assert p.flush(20) == 0, "undelivered"
c = Consumer(dict(conf, **{"group.id": "sasl-py", "auto.offset.reset": "earliest"}))
c.subscribe(["sasl-py"])
got = []
for _ in range(200):
    m = c.poll(0.2)
    if m is not None and m.error() is None:
        got.append(m.value().decode())
    if len(got) == 30:
        break
c.close()
print("confluent-kafka SASL_SSL read", len(got))

from kafka import KafkaProducer, KafkaConsumer
ctx = ssl.create_default_context(cafile=ca)
for proto, bs, extra in (("SASL_PLAINTEXT", plain, {}), ("SASL_SSL", sasl_ssl, {"ssl_context": ctx})):
    kw = dict(bootstrap_servers=bs, security_protocol=proto, sasl_mechanism="PLAIN",
              sasl_plain_username="alice", sasl_plain_password="alice-secret", **extra)
    kp = KafkaProducer(**kw)
    for i in range(10):
        kp.send(f"sasl-kp-{proto}", f"kp-{i}".encode())
    kp.flush(20)
    kp.close()
    kc = KafkaConsumer(f"sasl-kp-{proto}", auto_offset_reset="earliest", consumer_timeout_ms=8000, **kw)
    n = sum(1 for m in kc if m.value.startswith(b"kp-"))
    kc.close()
    print("kafka-python", proto, "read", n)
try:
    bad = KafkaProducer(bootstrap_servers=plain, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                        sasl_plain_username="alice", sasl_plain_password="wrong", api_version_auto_timeout_ms=5000)
    bad.close()
    print("kafka-python wrong password: ACCEPTED")
except Exception as e:
    print("kafka-python wrong password refused:", type(e).__name__)
EOF
)"
  grep -q "confluent-kafka SASL_SSL read 30" <<<"$out" && pass "confluent-kafka with SASL/PLAIN over SASL_SSL: 30 records, group" \
    || fail "confluent-kafka SASL_SSL: $out"
  for proto in SASL_PLAINTEXT SASL_SSL; do
    grep -q "kafka-python $proto read 10" <<<"$out" && pass "kafka-python with SASL/PLAIN over $proto: 10 records" \
      || fail "kafka-python $proto: $(tail -5 <<<"$out")"
  done
  grep -q "kafka-python wrong password refused" <<<"$out" && pass "kafka-python with a wrong password is refused" \
    || fail "kafka-python wrong password: $(tail -3 <<<"$out")"
else
  fail "no venv at $VENV (scripts/setup-python.sh)"
fi

if [ -x "$VENV/bin/python" ]; then
  out="$(timeout 90 "$VENV/bin/python" - "127.0.0.1:$P_SASL_SSL" "$C/ca.pem" <<'EOF' 2>&1
import asyncio, ssl, sys
from aiokafka import AIOKafkaProducer, AIOKafkaConsumer
bs, ca = sys.argv[1:3]
async def main():
    kw = dict(bootstrap_servers=bs, security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
              sasl_plain_username="alice", sasl_plain_password="alice-secret",
              ssl_context=ssl.create_default_context(cafile=ca))
    p = AIOKafkaProducer(**kw)
    await p.start()
    try:
        for i in range(10):
            await p.send_and_wait("sasl-aio", f"aio-{i}".encode())
    finally:
        await p.stop()
    c = AIOKafkaConsumer("sasl-aio", auto_offset_reset="earliest", **kw)
    await c.start()
    got = []
    try:
        while len(got) < 10:
            batch = await asyncio.wait_for(c.getmany(timeout_ms=1000), 20)
            for msgs in batch.values():
                got += [m.value for m in msgs]
    finally:
        await c.stop()
    print("aiokafka SASL_SSL read", len(got))
asyncio.run(main())
EOF
)"
  grep -q "aiokafka SASL_SSL read 10" <<<"$out" && pass "aiokafka with SASL/PLAIN over SASL_SSL: 10 records" \
    || fail "aiokafka SASL_SSL: $(tail -5 <<<"$out")"
fi

cat >"$WORK/java-sasl.properties" <<EOF
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=$C/ca.pem
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";
EOF
seq 1 10 | sed "s/^/java-sasl-/" | ktool kafka-console-producer --bootstrap-server "127.0.0.1:$P_SASL_SSL" \
  --topic sasl-java --command-config "$WORK/java-sasl.properties" >"$WORK/java-sasl.out" 2>&1
got="$(ktool kafka-console-consumer --bootstrap-server "127.0.0.1:$P_SASL_SSL" --topic sasl-java \
  --from-beginning --max-messages 10 --timeout-ms 30000 --command-config "$WORK/java-sasl.properties" 2>>"$WORK/java-sasl.out" \
  | grep -c '^java-sasl-')"
if [ "$got" = 10 ]; then pass "Java console producer and consumer with SASL/PLAIN over SASL_SSL: 10 records"
else fail "Java SASL_SSL: read $got of 10 ($(grep -iE 'error|exception' "$WORK/java-sasl.out" | head -3 | tr '\n' ' '))"; fi

step "SASL refusals"
out="$(kc -L -b "127.0.0.1:$P_SASL" -m 5 -X security.protocol=sasl_plaintext -X sasl.mechanisms=PLAIN \
  -X sasl.username=alice -X sasl.password=wrong 2>&1)"
if grep -qi 'Authentication failed' <<<"$out"; then pass "kcat with a wrong password: SASL authentication failed"
else fail "kcat wrong password: $(tail -2 <<<"$out")"; fi
out="$(kc -L -b "127.0.0.1:$P_SASL" -m 5 -X security.protocol=sasl_plaintext -X sasl.mechanisms=PLAIN \
  -X sasl.username=nobody -X sasl.password=x 2>&1)"
if grep -qi 'Authentication failed' <<<"$out"; then pass "kcat as an unknown user: SASL authentication failed"
else fail "kcat unknown user: $(tail -2 <<<"$out")"; fi
if grep -q 'SASL authentication failed; closing connection' "$WORK/broker.log" && ! grep -q 'wrong' "$WORK/broker.log"; then
  pass "failures are logged, the password never"
else fail "SASL failure log lines"; fi
# A Metadata request with no authentication first: the connection is closed.
if kc -L -b "127.0.0.1:$P_SASL" -m 5 >/dev/null 2>&1; then fail "a client that skips SASL got metadata"
else pass "a client that skips SASL gets nothing"; fi
out="$(kc -L -b "127.0.0.1:$P_SASL" -m 5 -X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-256 \
  -X sasl.username=alice -X sasl.password=alice-secret 2>&1)"
if grep -qiE 'unsupported sasl mechanism|not supported|mechanism' <<<"$out"; then pass "a mechanism that is not enabled is refused"
else fail "disabled mechanism: $(tail -2 <<<"$out")"; fi
kill -0 "$BROKER_PID" 2>/dev/null && kc -L -b "127.0.0.1:$P_SASL" "${SASL_ARGS[@]}" -m 5 >/dev/null 2>&1 \
  && pass "after the refusals the broker still serves SASL" || fail "the broker stopped serving SASL"
