#!/usr/bin/env bash
# SASL/SCRAM, OAUTHBEARER and re-authentication (issue 14) through real clients and Kafka's
# own tools, on one broker with
#   SASL_PLAINTEXT  PLAIN (the admin user, from the JAAS setting), SCRAM-SHA-256, SCRAM-SHA-512,
#                   OAUTHBEARER with Kafka's unsecured tokens; sessions last 3 s
#                   (connections.max.reauth.ms, KIP-368);
#   SASL_SSL        the same over TLS (certificates made here by openssl), OAUTHBEARER with
#                   signed JWTs checked against a JWKS file (RS256 tokens signed here).
# Users are managed with `kafka-configs --entity-type users` (AlterUserScramCredentials,
# DescribeUserScramCredentials); kcat, confluent-kafka, kafka-python, aiokafka and Kafka's
# console tools (Java) authenticate with SCRAM; a wrong password, an unknown user, a mechanism
# the user has no credential for and a deleted credential are refused; credentials survive a
# restart. Then the same broker restarts with Kafka's StandardAuthorizer (super.users=User:admin):
# kafka-acls adds, lists and removes ACLs; producers, consumers and admin tools get exactly
# what the ACLs allow (deny wins, prefixed patterns, groups, the cluster), and the ACLs
# survive a restart. Every check prints PASS/FAIL; exits non-zero if anything failed. KEEP_WORK=1 keeps
# the dir.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e

PASSED=0 FAILED=0
pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
step() { echo; echo "== $*"; }
kc() { timeout --kill-after=5 20 kcat "$@"; }
ktool() { KAFKA_TOOL_TIMEOUT=60 bash "$ROOT/scripts/kafka-tool.sh" "$@"; }

if ! command -v kcat >/dev/null; then echo "kcat not found: run scripts/setup-kcat.sh"; exit 2; fi
if ! command -v openssl >/dev/null; then echo "openssl not found"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi
if [ ! -x "$VENV/bin/python" ]; then echo "no venv at $VENV (scripts/setup-python.sh)"; exit 2; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-auth.XXXXXX")"
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
  echo "auth: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
trap 'finish; exit $?' EXIT

source "$(dirname "${BASH_SOURCE[0]}")/certs.sh"
ca ca
leaf server ca "/CN=fjord-server" "IP:127.0.0.1,DNS:localhost"
if [ ! -s "$C/server.pem" ]; then echo "openssl could not make the certificates:"; cat "$WORK/openssl.log"; exit 2; fi
cat "$C/server.key" "$C/server.pem" >"$C/server-keystore.pem"
# The token issuer's RSA key and its JWKS (n from openssl, e = 65537).
openssl genrsa -out "$C/issuer.key" 2048 2>>"$WORK/openssl.log"
openssl genrsa -out "$C/rogue-issuer.key" 2048 2>>"$WORK/openssl.log"
python3 - "$C/issuer.key" "$WORK/jwks.json" <<'EOF'
import base64, json, subprocess, sys
mod = subprocess.run(["openssl", "rsa", "-in", sys.argv[1], "-noout", "-modulus"], capture_output=True, text=True, check=True).stdout
n = bytes.fromhex(mod.strip().split("=", 1)[1])
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
json.dump({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": b64(n), "e": "AQAB"}]}, open(sys.argv[2], "w"))
EOF
# token.py KIND SUB EXP-OFFSET [AUD] [KEY]: an unsecured (none) or RS256 JWT.
cat >"$WORK/token.py" <<'EOF'
import base64, json, subprocess, sys, time
kind, sub, off = sys.argv[1], sys.argv[2], int(sys.argv[3])
aud = sys.argv[4] if len(sys.argv) > 4 else "fjord"
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
claims = {"sub": sub, "iat": now - 5, "exp": now + off, "scope": "kafka"}
if kind == "none":
    print(b64(json.dumps({"alg": "none"}).encode()) + "." + b64(json.dumps(claims).encode()) + ".")
else:
    claims.update(aud=aud, iss="https://issuer.test")
    signing = b64(json.dumps({"alg": "RS256", "kid": "k1", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sys.argv[5]], input=signing.encode(), capture_output=True, check=True).stdout
    print(signing + "." + b64(sig))
EOF

P_SASL="$(free_port)" P_SASL_SSL="$(free_port)"
JAAS='org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";'
start() { # [extra -o settings...]
  env -u FJORD_CACHE -u FJORD_BIN RUST_LOG="${RUST_LOG:-info,fjord::security=debug}" "$FJORD_BIN" --log-dirs "$WORK/data" \
    -o "listeners=SASL_PLAINTEXT://127.0.0.1:$P_SASL,SASL_SSL://127.0.0.1:$P_SASL_SSL" \
    -o "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER" \
    -o "listener.name.sasl_plaintext.connections.max.reauth.ms=3000" \
    -o "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler" \
    -o "listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.jwks.endpoint.url=file://$WORK/jwks.json" \
    -o "sasl.oauthbearer.expected.audience=fjord" -o "sasl.oauthbearer.expected.issuer=https://issuer.test" \
    -o "listener.name.sasl_plaintext.plain.sasl.jaas.config=$JAAS" \
    -o "listener.name.sasl_ssl.plain.sasl.jaas.config=$JAAS" \
    -o "ssl.keystore.type=PEM" -o "ssl.keystore.location=$C/server-keystore.pem" \
    -o "num.partitions=1" "$@" >>"$WORK/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$P_SASL_SSL") 2>/dev/null && return 0
    kill -0 "$BROKER_PID" 2>/dev/null || { echo "broker died:"; tail -30 "$WORK/broker.log"; exit 1; }
    sleep 0.1
  done
}
start

cat >"$WORK/admin.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret";
EOF
configs() { ktool kafka-configs --bootstrap-server "127.0.0.1:$P_SASL" --command-config "$WORK/admin.properties" "$@"; }

step "kafka-configs manages SCRAM users"
out="$(configs --alter --entity-type users --entity-name alice \
  --add-config 'SCRAM-SHA-256=[iterations=8192,password=alice-secret],SCRAM-SHA-512=[password=alice-secret]' 2>&1)"
grep -q "Completed updating config for user alice" <<<"$out" && pass "kafka-configs adds alice (SCRAM-SHA-256 and -512)" \
  || fail "kafka-configs add alice: $(tail -3 <<<"$out")"
out="$(configs --alter --entity-type users --entity-name bob --add-config 'SCRAM-SHA-256=[password=bob-secret]' 2>&1)"
grep -q "Completed updating config for user bob" <<<"$out" && pass "kafka-configs adds bob (SCRAM-SHA-256)" \
  || fail "kafka-configs add bob: $(tail -3 <<<"$out")"
out="$(configs --describe --entity-type users --entity-name alice 2>&1)"
grep -q "SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096" <<<"$out" \
  && pass "kafka-configs describes alice's mechanisms and iterations, no secret" \
  || fail "kafka-configs describe alice: $(tail -3 <<<"$out")"
out="$(configs --describe --entity-type users 2>&1)"
grep -q "user-principal 'bob' are SCRAM-SHA-256=iterations=4096" <<<"$out" && pass "kafka-configs describes every user" \
  || fail "kafka-configs describe all: $(tail -3 <<<"$out")"
out="$(configs --alter --entity-type users --entity-name carol --add-config 'SCRAM-SHA-256=[iterations=20000,password=x]' 2>&1)"
grep -qi "Too many iterations" <<<"$out" && pass "an iteration count over 16384 is refused by the broker (UNACCEPTABLE_CREDENTIAL)" \
  || fail "iterations=20000: $(tail -2 <<<"$out")"
out="$(configs --alter --entity-type users --entity-name carol --delete-config 'SCRAM-SHA-256' 2>&1)"
grep -qi "does not exist" <<<"$out" && pass "deleting a credential that does not exist is refused (RESOURCE_NOT_FOUND)" \
  || fail "delete missing: $(tail -2 <<<"$out")"

step "clients authenticate with SCRAM"
scram() { # MECH USER PASSWORD [ssl]
  local a=(-X "sasl.mechanisms=$1" -X "sasl.username=$2" -X "sasl.password=$3")
  if [ "${4:-}" = ssl ]; then echo -X security.protocol=sasl_ssl -X "ssl.ca.location=$C/ca.pem" "${a[@]}"
  else echo -X security.protocol=sasl_plaintext "${a[@]}"; fi
}
# shellcheck disable=SC2046
seq 1 20 | sed 's/^/scram-/' | kc -P -b "127.0.0.1:$P_SASL_SSL" $(scram SCRAM-SHA-256 alice alice-secret ssl) -t scram-kcat 2>"$WORK/kcat.err"
# shellcheck disable=SC2046
got="$(kc -C -b "127.0.0.1:$P_SASL_SSL" $(scram SCRAM-SHA-512 alice alice-secret ssl) -t scram-kcat -o beginning -e 2>>"$WORK/kcat.err" | grep -c '^scram-')"
[ "$got" = 20 ] && pass "kcat: SCRAM-SHA-256 produce, SCRAM-SHA-512 consume over SASL_SSL (20 records)" \
  || fail "kcat SCRAM: read $got of 20 ($(tail -2 "$WORK/kcat.err" | tr '\n' ' '))"
grep -q 'mechanism=SCRAM-SHA-512 user=alice' "$WORK/broker.log" && pass "the broker logs alice's SCRAM-SHA-512 authentication" \
  || fail "no SCRAM-SHA-512 authentication of alice in the log"

out="$(timeout 120 "$VENV/bin/python" - "127.0.0.1:$P_SASL" "127.0.0.1:$P_SASL_SSL" "$C/ca.pem" <<'EOF' 2>&1
import asyncio, ssl, sys
plain, sasl_ssl, ca = sys.argv[1:4]
from confluent_kafka import Producer, Consumer
conf = {"bootstrap.servers": sasl_ssl, "security.protocol": "SASL_SSL", "ssl.ca.location": ca,
        "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "bob", "sasl.password": "bob-secret"}
p = Producer(conf)
for i in range(30):
    p.produce("scram-ck", value=f"ck-{i}".encode())
assert p.flush(20) == 0, "undelivered"
c = Consumer(dict(conf, **{"group.id": "scram-ck", "auto.offset.reset": "earliest"}))
c.subscribe(["scram-ck"])
got = []
for _ in range(200):
    m = c.poll(0.2)
    if m is not None and m.error() is None:
        got.append(m.value())
    if len(got) == 30:
        break
c.close()
print("confluent-kafka SCRAM-SHA-256 read", len(got))

from kafka import KafkaProducer, KafkaConsumer
ctx = ssl.create_default_context(cafile=ca)
kw = dict(bootstrap_servers=sasl_ssl, security_protocol="SASL_SSL", ssl_context=ctx,
          sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice", sasl_plain_password="alice-secret")
kp = KafkaProducer(**kw)
for i in range(10):
    kp.send("scram-kp", f"kp-{i}".encode())
kp.flush(20)
kp.close()
kcons = KafkaConsumer("scram-kp", auto_offset_reset="earliest", consumer_timeout_ms=8000, **kw)
print("kafka-python SCRAM-SHA-512 read", sum(1 for _ in kcons))
kcons.close()
try:
    KafkaProducer(**dict(kw, sasl_plain_password="wrong", api_version_auto_timeout_ms=5000)).close()
    print("kafka-python wrong password: ACCEPTED")
except Exception as e:
    print("kafka-python wrong password refused:", type(e).__name__)

from aiokafka import AIOKafkaProducer, AIOKafkaConsumer
async def aio():
    kw = dict(bootstrap_servers=sasl_ssl, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256",
              sasl_plain_username="alice", sasl_plain_password="alice-secret",
              ssl_context=ssl.create_default_context(cafile=ca))
    p = AIOKafkaProducer(**kw)
    await p.start()
    try:
        for i in range(10):
            await p.send_and_wait("scram-aio", f"aio-{i}".encode())
    finally:
        await p.stop()
    c = AIOKafkaConsumer("scram-aio", auto_offset_reset="earliest", **kw)
    await c.start()
    got = []
    try:
        while len(got) < 10:
            batch = await asyncio.wait_for(c.getmany(timeout_ms=1000), 20)
            for msgs in batch.values():
                got += msgs
    finally:
        await c.stop()
    print("aiokafka SCRAM-SHA-256 read", len(got))
asyncio.run(aio())
EOF
)"
grep -q "confluent-kafka SCRAM-SHA-256 read 30" <<<"$out" && pass "confluent-kafka with SCRAM-SHA-256 over SASL_SSL: 30 records, group" \
  || fail "confluent-kafka SCRAM: $(tail -3 <<<"$out")"
grep -q "kafka-python SCRAM-SHA-512 read 10" <<<"$out" && pass "kafka-python with SCRAM-SHA-512 over SASL_SSL: 10 records" \
  || fail "kafka-python SCRAM: $(tail -3 <<<"$out")"
grep -q "kafka-python wrong password refused" <<<"$out" && pass "kafka-python with a wrong SCRAM password is refused" \
  || fail "kafka-python wrong password: $(tail -3 <<<"$out")"
grep -q "aiokafka SCRAM-SHA-256 read 10" <<<"$out" && pass "aiokafka with SCRAM-SHA-256 over SASL_SSL: 10 records" \
  || fail "aiokafka SCRAM: $(tail -3 <<<"$out")"

cat >"$WORK/java-scram.properties" <<EOF
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=$C/ca.pem
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";
EOF
seq 1 10 | sed 's/^/java-scram-/' | ktool kafka-console-producer --bootstrap-server "127.0.0.1:$P_SASL_SSL" \
  --topic scram-java --command-config "$WORK/java-scram.properties" >"$WORK/java.out" 2>&1
got="$(ktool kafka-console-consumer --bootstrap-server "127.0.0.1:$P_SASL_SSL" --topic scram-java --group scram-java \
  --from-beginning --max-messages 10 --timeout-ms 30000 --command-config "$WORK/java-scram.properties" 2>>"$WORK/java.out" \
  | grep -c '^java-scram-')"
[ "$got" = 10 ] && pass "Java console producer and consumer with SCRAM-SHA-512 over SASL_SSL: 10 records" \
  || fail "Java SCRAM: read $got of 10 ($(grep -iE 'error|exception' "$WORK/java.out" | head -3 | tr '\n' ' '))"

step "SCRAM refusals"
refused() { # DESCRIPTION kcat-args...
  local what="$1"; shift
  local out
  out="$(kc -L -b "127.0.0.1:$P_SASL" -m 5 "$@" 2>&1)"
  if grep -qi 'Authentication failed' <<<"$out"; then pass "$what: SASL authentication failed"
  else fail "$what: $(tail -2 <<<"$out")"; fi
}
# shellcheck disable=SC2046
refused "kcat with a wrong SCRAM password" $(scram SCRAM-SHA-256 alice wrong)
# shellcheck disable=SC2046
refused "kcat as an unknown SCRAM user" $(scram SCRAM-SHA-256 nobody x)
# shellcheck disable=SC2046
refused "bob with SCRAM-SHA-512 (he has only a SCRAM-SHA-256 credential)" $(scram SCRAM-SHA-512 bob bob-secret)
out="$(configs --alter --entity-type users --entity-name alice --delete-config 'SCRAM-SHA-512' 2>&1)"
grep -q "Completed updating config for user alice" <<<"$out" && pass "kafka-configs deletes alice's SCRAM-SHA-512 credential" \
  || fail "delete alice 512: $(tail -2 <<<"$out")"
# shellcheck disable=SC2046
refused "alice with the deleted SCRAM-SHA-512 credential" $(scram SCRAM-SHA-512 alice alice-secret)
if ! grep -qE 'alice-secret|bob-secret' "$WORK/broker.log"; then pass "no password in the broker log"
else fail "a password is in the broker log"; fi

step "OAUTHBEARER: unsecured tokens (SASL_PLAINTEXT) and signed JWTs (SASL_SSL)"
OAUTH_ARGS=(-X security.protocol=sasl_plaintext -X sasl.mechanisms=OAUTHBEARER -X enable.sasl.oauthbearer.unsecure.jwt=true -X "sasl.oauthbearer.config=principal=carol")
seq 1 10 | sed 's/^/oauth-/' | kc -P -b "127.0.0.1:$P_SASL" "${OAUTH_ARGS[@]}" -t oauth-kcat 2>"$WORK/kcat-oauth.err"
got="$(kc -C -b "127.0.0.1:$P_SASL" "${OAUTH_ARGS[@]}" -t oauth-kcat -o beginning -e 2>>"$WORK/kcat-oauth.err" | grep -c '^oauth-')"
[ "$got" = 10 ] && grep -q 'mechanism=OAUTHBEARER user=carol' "$WORK/broker.log" \
  && pass "kcat with an unsecured OAUTHBEARER token (principal carol): 10 records" \
  || fail "kcat OAUTHBEARER: read $got of 10 ($(tail -2 "$WORK/kcat-oauth.err" | tr '\n' ' '))"
cat >"$WORK/java-oauth.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=OAUTHBEARER
sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="dave";
EOF
seq 1 5 | ktool kafka-console-producer --bootstrap-server "127.0.0.1:$P_SASL" --topic oauth-java \
  --command-config "$WORK/java-oauth.properties" >"$WORK/java-oauth.out" 2>&1
got="$(ktool kafka-console-consumer --bootstrap-server "127.0.0.1:$P_SASL" --topic oauth-java --from-beginning \
  --max-messages 5 --timeout-ms 30000 --command-config "$WORK/java-oauth.properties" 2>>"$WORK/java-oauth.out" | grep -c .)"
[ "$got" = 5 ] && grep -q 'mechanism=OAUTHBEARER user=dave' "$WORK/broker.log" \
  && pass "Java console tools with Kafka's unsecured OAUTHBEARER login (sub dave): 5 records" \
  || fail "Java OAUTHBEARER: read $got of 5 ($(grep -iE 'error|exception' "$WORK/java-oauth.out" | head -3 | tr '\n' ' '))"
out="$(timeout 120 "$VENV/bin/python" - "127.0.0.1:$P_SASL" "127.0.0.1:$P_SASL_SSL" "$C" "$WORK/token.py" <<'EOF' 2>&1
import subprocess, sys, time
from confluent_kafka import Producer
plain, sasl_ssl, certs, token_py = sys.argv[1:5]
def token(*args):
    return subprocess.run([sys.executable, token_py, *args], capture_output=True, text=True, check=True).stdout.strip()
def attempt(name, bootstrap, ssl, tok):
    conf = {"bootstrap.servers": bootstrap, "sasl.mechanisms": "OAUTHBEARER",
            "security.protocol": "SASL_SSL" if ssl else "SASL_PLAINTEXT",
            "oauth_cb": lambda _cfg: (tok, time.time() + 3600), "message.timeout.ms": 6000}
    if ssl:
        conf["ssl.ca.location"] = certs + "/ca.pem"
    errors, delivered = [], []
    conf["error_cb"] = lambda e: errors.append(str(e))
    p = Producer(conf)
    p.produce("oauth-py", value=name.encode(), on_delivery=lambda err, _m: delivered.append(err is None))
    p.flush(8)
    auth_err = any("Authentication" in e or "SASL" in e for e in errors)
    print(name, "delivered" if delivered == [True] else "undelivered", "auth-error" if auth_err else "")
attempt("signed-good", sasl_ssl, True, token("rs256", "erin", "3600", "fjord", certs + "/issuer.key"))
attempt("signed-wrong-audience", sasl_ssl, True, token("rs256", "erin", "3600", "other", certs + "/issuer.key"))
attempt("signed-by-another-key", sasl_ssl, True, token("rs256", "erin", "3600", "fjord", certs + "/rogue-issuer.key"))
attempt("unsecured-on-signed-listener", sasl_ssl, True, token("none", "erin", "3600"))
attempt("unsecured-expired", plain, False, token("none", "erin", "-60"))
EOF
)"
grep -q "^signed-good delivered" <<<"$out" && grep -q 'mechanism=OAUTHBEARER user=erin' "$WORK/broker.log" \
  && pass "confluent-kafka with an RS256 JWT checked against the JWKS file (sub erin)" \
  || fail "signed JWT: $out"
for bad in signed-wrong-audience signed-by-another-key unsecured-on-signed-listener unsecured-expired; do
  grep -q "^$bad undelivered auth-error" <<<"$out" && pass "OAUTHBEARER refuses: $bad" || fail "OAUTHBEARER $bad: $(grep "^$bad" <<<"$out")"
done

step "re-authentication (KIP-368): sessions of 3 s on SASL_PLAINTEXT"
out="$(timeout 60 "$VENV/bin/python" - "127.0.0.1:$P_SASL" <<'EOF' 2>&1
import sys, time
from confluent_kafka import Producer
from kafka import KafkaProducer
bs = sys.argv[1]
p = Producer({"bootstrap.servers": bs, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-256",
              "sasl.username": "alice", "sasl.password": "alice-secret"})
kp = KafkaProducer(bootstrap_servers=bs, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                   sasl_plain_username="bob", sasl_plain_password="bob-secret")
ok = kok = 0
for i in range(16):
    p.produce("reauth", value=b"ck")
    ok += p.flush(10) == 0
    try:
        kp.send("reauth", b"kp").get(10)
        kok += 1
    except Exception as e:
        print("kafka-python send failed:", type(e).__name__)
    time.sleep(0.5)
p.flush(10)
kp.close()
print("confluent-kafka delivered", ok, "kafka-python delivered", kok)
EOF
)"
grep -q "confluent-kafka delivered 16 kafka-python delivered 16" <<<"$out" \
  && pass "producers keep working across 8 s of 3 s sessions (both re-authenticate)" \
  || fail "re-authentication run: $(tail -3 <<<"$out")"
n="$(grep -c 'SASL re-authentication succeeded.*user=alice' "$WORK/broker.log")"
[ "$n" -ge 1 ] && pass "librdkafka re-authenticated on its connection ($n times)" || fail "no re-authentication by librdkafka in the log"
n="$(grep -c 'SASL re-authentication succeeded.*user=bob' "$WORK/broker.log")"
[ "$n" -ge 1 ] && pass "kafka-python re-authenticated on its connection ($n times)" || fail "no re-authentication by kafka-python in the log"
grep -q 'lifetime_ms=3000' "$WORK/broker.log" && pass "SaslAuthenticate tells clients their 3000 ms session lifetime" \
  || fail "no 3000 ms session lifetime logged"

step "credentials survive a restart"
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null; BROKER_PID=""
start
# shellcheck disable=SC2046
if kc -L -b "127.0.0.1:$P_SASL" -m 10 $(scram SCRAM-SHA-256 alice alice-secret) >/dev/null 2>&1; then
  pass "alice authenticates with SCRAM-SHA-256 after a restart"
else fail "alice after the restart"; fi
out="$(configs --describe --entity-type users --entity-name alice 2>&1)"
grep -q "are SCRAM-SHA-256=iterations=8192$" <<<"$out" && pass "after the restart alice has only SCRAM-SHA-256" \
  || fail "describe after restart: $(tail -2 <<<"$out")"

step "ACLs: the broker restarts with StandardAuthorizer, super.users=User:admin"
AUTHZ=(-o "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" -o "super.users=User:admin")
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null; BROKER_PID=""
start "${AUTHZ[@]}"
acls() { ktool kafka-acls --bootstrap-server "127.0.0.1:$P_SASL" --command-config "$WORK/admin.properties" "$@"; }
cat >"$WORK/alice.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-256
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";
EOF
cat >"$WORK/bob.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-256
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="bob-secret";
EOF
ALICE=(-X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=alice -X sasl.password=alice-secret)
BOB=(-X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=bob -X sasl.password=bob-secret)
out="$(echo denied | kc -P -b "127.0.0.1:$P_SASL" "${ALICE[@]}" -t acl-data 2>&1)"
grep -qi "authoriz" <<<"$out" && pass "without an ACL alice may not produce (deny by default)" || fail "alice without ACLs: $(tail -2 <<<"$out")"
out="$(acls --add --allow-principal User:alice --producer --topic acl- --resource-pattern-type prefixed 2>&1)"
grep -q "Adding ACLs for resource" <<<"$out" && pass "kafka-acls --add --producer (prefixed acl-) for alice" || fail "kafka-acls add producer: $(tail -3 <<<"$out")"
out="$(acls --add --allow-principal User:bob --consumer --topic acl-data --group acl-group 2>&1)"
grep -q "Adding ACLs for resource" <<<"$out" && pass "kafka-acls --add --consumer (topic acl-data, group acl-group) for bob" || fail "kafka-acls add consumer: $(tail -3 <<<"$out")"
out="$(acls --list 2>&1)"
if grep -q "principal=User:alice, host=\*, operation=WRITE, permissionType=ALLOW" <<<"$out" \
  && grep -q "name=acl-, patternType=PREFIXED" <<<"$out" && grep -q "name=acl-group, patternType=LITERAL" <<<"$out"; then
  pass "kafka-acls --list shows the bindings"
else fail "kafka-acls --list: $(head -20 <<<"$out")"; fi
seq 1 10 | sed 's/^/acl-/' | ktool kafka-console-producer --bootstrap-server "127.0.0.1:$P_SASL" --topic acl-data \
  --command-config "$WORK/alice.properties" >"$WORK/acl-producer.out" 2>&1
got="$(ktool kafka-console-consumer --bootstrap-server "127.0.0.1:$P_SASL" --topic acl-data --group acl-group \
  --from-beginning --max-messages 10 --timeout-ms 30000 --command-config "$WORK/bob.properties" 2>"$WORK/acl-consumer.out" | grep -c '^acl-')"
[ "$got" = 10 ] && pass "alice's idempotent Java producer writes (auto-created topic), bob's Java consumer reads in his group: 10 records" \
  || fail "ACL produce/consume: read $got of 10 ($(grep -iE 'error|exception' "$WORK/acl-producer.out" "$WORK/acl-consumer.out" | head -3 | tr '\n' ' '))"
out="$(echo x | kc -P -b "127.0.0.1:$P_SASL" "${BOB[@]}" -t acl-data 2>&1)"
grep -qi "authoriz" <<<"$out" && pass "bob may not produce to acl-data (TOPIC_AUTHORIZATION_FAILED)" || fail "bob produce: $(tail -2 <<<"$out")"
out="$(ktool kafka-console-consumer --bootstrap-server "127.0.0.1:$P_SASL" --topic acl-data --group other-group \
  --from-beginning --max-messages 1 --timeout-ms 15000 --command-config "$WORK/bob.properties" 2>&1)"
grep -q "GroupAuthorizationException" <<<"$out" && pass "bob may not use group other-group (GROUP_AUTHORIZATION_FAILED)" \
  || fail "bob other group: $(grep -iE 'exception' <<<"$out" | head -2)"
out="$(ktool kafka-topics --bootstrap-server "127.0.0.1:$P_SASL" --command-config "$WORK/bob.properties" --list 2>&1)"
if [ "$(grep -v '^$' <<<"$out")" = "acl-data" ]; then pass "kafka-topics --list as bob shows only acl-data (Metadata hides the rest)"
else fail "bob's topic list: $(head -5 <<<"$out" | tr '\n' ' ')"; fi
out="$(ktool kafka-configs --bootstrap-server "127.0.0.1:$P_SASL" --command-config "$WORK/alice.properties" --alter \
  --entity-type users --entity-name mallory --add-config 'SCRAM-SHA-256=[password=x]' 2>&1)"
grep -q "ClusterAuthorizationException" <<<"$out" && pass "alice may not add SCRAM users (CLUSTER_AUTHORIZATION_FAILED)" \
  || fail "alice kafka-configs: $(grep -i exception <<<"$out" | head -2)"
out="$(ktool kafka-acls --bootstrap-server "127.0.0.1:$P_SASL" --command-config "$WORK/alice.properties" --list 2>&1)"
grep -q "ClusterAuthorizationException" <<<"$out" && pass "alice may not list ACLs" || fail "alice kafka-acls --list: $(grep -i exception <<<"$out" | head -2)"
acls --add --deny-principal User:bob --operation Read --topic acl-data >/dev/null 2>&1
got="$(kc -C -b "127.0.0.1:$P_SASL" "${BOB[@]}" -t acl-data -o beginning -e 2>"$WORK/kcat-deny.err" | grep -c '^acl-')"
[ "$got" = 0 ] && grep -qi "authoriz" "$WORK/kcat-deny.err" && pass "a DENY for bob's READ wins over his ALLOW" \
  || fail "deny wins: read $got ($(tail -2 "$WORK/kcat-deny.err" | tr '\n' ' '))"
out="$(acls --remove --force --deny-principal User:bob --operation Read --topic acl-data 2>&1)"
got="$(kc -C -b "127.0.0.1:$P_SASL" "${BOB[@]}" -t acl-data -o beginning -e 2>/dev/null | grep -c '^acl-')"
[ "$got" = 10 ] && pass "kafka-acls --remove: bob reads again (10 records)" || fail "after remove: read $got ($(tail -2 <<<"$out"))"

step "ACLs survive a restart"
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null; BROKER_PID=""
start "${AUTHZ[@]}"
out="$(acls --list --topic acl-data 2>&1)"
grep -q "User:bob" <<<"$out" && ! grep -q "DENY" <<<"$out" && pass "after a restart the ACLs are the same" || fail "ACLs after restart: $(head -8 <<<"$out")"
got="$(kc -C -b "127.0.0.1:$P_SASL" "${BOB[@]}" -t acl-data -o beginning -e 2>/dev/null | grep -c '^acl-')"
[ "$got" = 10 ] && pass "bob reads after the restart" || fail "bob after restart: read $got"
