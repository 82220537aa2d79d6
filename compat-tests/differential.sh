#!/usr/bin/env bash
# Differential protocol tests: tests/differential sends the same requests to a reference
# Apache Kafka 4.3.0 (started here with scripts/kafka-ref.sh, in its own throwaway dir) and
# to an in-process Fjord, and compares the decoded responses field by field. Differences
# that are on purpose are listed with their reason in tests/differential/main.rs (KNOWN)
# and in README.md; any other difference fails.
#
# Needs: the Kafka jars (scripts/setup-kafka.sh) and cargo. Env: FJORD_CACHE as elsewhere.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KAFKA_REF_DIR="$(mktemp -d "${TMPDIR:-/tmp}/fjord-diff-kafka.XXXXXX")"
rmdir "$KAFKA_REF_DIR"
stop() { bash "$ROOT/scripts/kafka-ref.sh" stop >/dev/null 2>&1 || true; }
trap stop EXIT

out="$(bash "$ROOT/scripts/kafka-ref.sh" start 2>&1)" || { echo "$out"; echo "differential: reference Kafka did not start"; exit 2; }
bootstrap="$(echo "$out" | awk '/^bootstrap:/ {print $2}')"
echo "differential: reference Kafka at $bootstrap"
cd "$ROOT"
KAFKA_REF_BOOTSTRAP="$bootstrap" timeout 900 cargo test --release --locked --test differential -- --ignored --nocapture
