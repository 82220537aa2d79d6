#!/usr/bin/env bash
# The one command that runs every Fjord test on a fresh machine:
#   1. installs what the client scenarios need (kcat via apt-get, a Python venv with
#      kafka-python / confluent-kafka / aiokafka, Apache Kafka 4.3.0 and kafka-clients 4.4.0
#      from Maven Central),
#   2. builds the broker and runs the Rust unit and integration tests,
#   3. runs the compatibility scenarios through kcat, Python and Java clients, and Kafka's own
#      command-line tools side by side against Fjord and a reference Apache Kafka, then a
#      three-node Fjord cluster through the same clients.
# Everything installed lives in .cache/ (override with FJORD_CACHE) except the kcat package.
set -euo pipefail
cd "$(dirname "$0")/.."

export FJORD_CACHE="${FJORD_CACHE:-$PWD/.cache}"
mkdir -p "$FJORD_CACHE"

section() { echo; echo "################ $*"; }

section "setup: kcat, python venv, kafka jars"
bash scripts/setup-kcat.sh
bash scripts/setup-python.sh
bash scripts/setup-kafka.sh

section "build"
cargo build --release --locked

section "rust tests (unit + integration)"
cargo test --release --locked

failed=()
for scenario in kcat python java java-groups java-lifecycle java-txn differential kafka-tools java-streams connect tls auth; do
  section "compat: $scenario"
  if ! bash "compat-tests/$scenario.sh"; then
    failed+=("$scenario")
  fi
done
# The cheapest Java scenario once more with the newest released client, so what a newer client
# sends (request versions, defaults) is checked too, not only what 4.3.0 sends.
section "compat: java with kafka-clients 4.4.0"
KAFKA_CLIENT_VERSION=4.4.0 bash compat-tests/java.sh || failed+=("java-clients-4.4.0")
# Three nodes as one cluster, through kcat, Java, confluent-kafka and kafka-python, with the
# active controller and then another node SIGKILLed and restarted (about a minute).
section "compat: cluster (three nodes, SIGKILL of the controller and of another node)"
bash compat-tests/cluster.sh || failed+=("cluster")
# Three nodes with no plaintext port: SASL_SSL between brokers, the quorum on mutual TLS and
# then SASL_SSL, ACLs on (issue 14; about a minute).
section "compat: cluster-secure (inter-broker and controller traffic over TLS and SASL)"
bash compat-tests/cluster-secure.sh || failed+=("cluster-secure")

# Replication under faults (issues 12, 13), short form: one round of each fault (SIGKILL of a
# leader, a follower, the controller, the group's coordinator; SIGSTOP past the session
# timeout; a network partition; a rolling restart; the transaction coordinator of an
# exactly-once application; a leader of its output) under idempotent acks=all producers
# (librdkafka and Java kafka-clients), read_committed group consumers (librdkafka, Java
# classic and KIP-848) and a Java exactly_once_v2 consume-transform-produce application;
# nothing acknowledged may be lost, duplicated or reordered, no committed offset may go
# back, the application's output must hold every input exactly once.
# Long form: --rounds 10, by hand.
section "robustness: replication faults (three nodes, one round of each fault)"
bash scripts/fault-test.sh --java --eos || failed+=("fault-test")

# Robustness, short forms: 20 SIGKILL trials with flush-on-ack (no acknowledged record may
# be lost or duplicated), 10 SIGKILL trials under topic creation, offset commits and
# transactions (no acknowledged metadata may be lost), a one-minute soak of mixed traffic and
# a 90-second soak of new producer and transactional ids (broker RSS must stay flat, expired
# ids must be forgotten).
section "robustness: crash durability (20 SIGKILL trials)"
bash scripts/crash-test.sh --trials 20 || failed+=("crash-test")
section "robustness: metadata crash durability (10 SIGKILL trials)"
bash scripts/crash-test.sh --meta --trials 10 || failed+=("crash-test-meta")
section "robustness: soak (1 minute)"
bash scripts/soak.sh --minutes 1 || failed+=("soak")
section "robustness: id-churn soak (90 s)"
bash scripts/soak.sh --ids --minutes 1.5 || failed+=("soak-ids")
# Fuzzing (cargo-fuzz) is the long form, by hand: its build alone took 10 of the 60 minutes
# this command may take. Every committed seed and every input that once failed is replayed by
# tests/fuzz_replay.rs above; FJORD_FUZZ_SECONDS=N fuzzes each target for N s here as well.
if [ -n "${FJORD_FUZZ_SECONDS:-}" ]; then
  section "robustness: fuzzing (${FJORD_FUZZ_SECONDS} s per target)"
  bash scripts/fuzz.sh "$FJORD_FUZZ_SECONDS" || failed+=("fuzz")
fi

echo
if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all tests passed"
