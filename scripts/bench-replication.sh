#!/usr/bin/env bash
# The cost of replication, Fjord beside Apache Kafka 4.3.0 (issue 12): three nodes of each on
# this machine (one cluster at a time, each node a combined broker+controller on loopback),
# driven by the same client, Kafka's own kafka-producer-perf-test (Java kafka-clients 4.3.0):
#   - 1 KiB records, as fast as the producer goes, to a 6-partition topic with replication
#     factor 1 (acks=1), and with replication factor 3 and min.insync.replicas=2 (acks=1 and
#     acks=all): throughput and the producer's send->ack latency;
#   - the same RF 3 acks=all topic at a fixed 20,000 records/s: latency percentiles.
# A warm-up run comes first (not reported), so Kafka's JIT has compiled the hot paths.
# Fjord runs as `fjord dev-cluster --nodes 3`, Kafka as `scripts/kafka-ref.sh start --nodes 3
# --stock` (its defaults, heap 1g per node). Both clusters write to the same disk; the
# machine is shared, so compare the ratios of one run, not figures across runs.
#
# Usage (under the heavy-work lock, so no build or test overlaps a measurement):
#   flock /tmp/fjord-heavy.lock bash scripts/bench-replication.sh
# Env: BENCH_RECORDS (default 500000), BENCH_RATE (default 20000),
#      BENCH_BROKERS (default "kafka fjord").
# Needs target/release/fjord and the Kafka jars (scripts/setup-kafka.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FJORD_BIN="${FJORD_BIN:-$ROOT/target/release/fjord}"
RECORDS="${BENCH_RECORDS:-500000}"
RATE="${BENCH_RATE:-20000}"
read -r -a BROKERS <<<"${BENCH_BROKERS:-kafka fjord}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fjord-bench-repl.XXXXXX")"
DC_PID=""
export KAFKA_REF_DIR="$WORK/kafka"

cleanup() {
  if [ -n "$DC_PID" ]; then kill -INT "$DC_PID" 2>/dev/null || true; wait "$DC_PID" 2>/dev/null || true; fi
  bash "$ROOT/scripts/kafka-ref.sh" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$FJORD_BIN" ] || { echo "no $FJORD_BIN: cargo build --release"; exit 2; }
bash "$ROOT/scripts/setup-kafka.sh" >/dev/null

tool() { KAFKA_TOOL_TIMEOUT=600 bash "$ROOT/scripts/kafka-tool.sh" "$@"; }

# perf TOPIC ACKS N THROUGHPUT: the perf tool's summary line.
perf() {
  KAFKA_TOOL_HEAP=512m tool kafka-producer-perf-test --topic "$1" --num-records "$3" \
    --record-size 1024 --throughput "$4" \
    --producer-props "bootstrap.servers=$BOOT" "acks=$2" linger.ms=5 batch.size=262144 \
    2>/dev/null | grep 'records sent' | tail -1
}

# fields LINE: "records/s MB/s avg-ms p50 p99" from a summary line.
fields() {
  sed -E 's/.* ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\), ([0-9.]+) ms avg latency.*, ([0-9]+) ms 50th, [0-9]+ ms 95th, ([0-9]+) ms 99th.*/\1 \2 \3 \4 \5/' <<<"$1"
}

declare -A R
for b in "${BROKERS[@]}"; do
  echo "== $b: starting three nodes"
  case "$b" in
    fjord)
      base=$((24000 + (RANDOM % 500) * 4))
      env -u FJORD_CACHE -u FJORD_BIN "$FJORD_BIN" dev-cluster --nodes 3 --base-port "$base" \
        --data-dir "$WORK/fjord" >"$WORK/dc.out" 2>"$WORK/dc.log" &
      DC_PID=$!
      for _ in $(seq 1 300); do grep -q '^bootstrap:' "$WORK/dc.out" && break; sleep 0.1; done
      BOOT="$(sed -n 's/^bootstrap: //p' "$WORK/dc.out")"
      ;;
    kafka)
      BOOT="$(bash "$ROOT/scripts/kafka-ref.sh" start --nodes 3 --stock | sed -n 's/^bootstrap: //p')"
      ;;
  esac
  [ -n "$BOOT" ] || { echo "$b did not start"; exit 1; }
  echo "bootstrap $BOOT"
  tool kafka-topics --bootstrap-server "$BOOT" --create --topic rf1 --partitions 6 \
    --replication-factor 1 >/dev/null
  tool kafka-topics --bootstrap-server "$BOOT" --create --topic rf3 --partitions 6 \
    --replication-factor 3 --config min.insync.replicas=2 >/dev/null
  tool kafka-topics --bootstrap-server "$BOOT" --create --topic warm --partitions 6 \
    --replication-factor 3 >/dev/null
  sleep 2
  echo "warm-up"
  perf warm all 200000 -1 >/dev/null
  for phase in "rf1 1" "rf3 1" "rf3 all"; do
    set -- $phase
    line="$(perf "$1" "$2" "$RECORDS" -1)"
    echo "$b $1 acks=$2: $line"
    R[$b.$1.$2]="$(fields "$line")"
  done
  line="$(perf rf3 all $((RATE * 10)) "$RATE")"
  echo "$b rf3 acks=all at $RATE/s: $line"
  R[$b.rate]="$(fields "$line")"
  case "$b" in
    fjord) kill -INT "$DC_PID"; wait "$DC_PID" || true; DC_PID="" ;;
    kafka) bash "$ROOT/scripts/kafka-ref.sh" stop >/dev/null ;;
  esac
done

echo
echo "replication cost: 3 nodes on one machine, 1 KiB records, kafka-producer-perf-test, $RECORDS records per phase"
printf '%-28s %14s %14s %8s\n' "phase" "kafka" "fjord" "ratio"
col() { awk -v i="$2" '{print $i}' <<<"${R[$1]:-}"; }
row() { # LABEL KEY FIELD UNIT
  local k f
  k="$(col "kafka.$2" "$3")" f="$(col "fjord.$2" "$3")"
  local ratio="-"
  if [ -n "$k" ] && [ -n "$f" ]; then ratio="$(awk -v a="$f" -v b="$k" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"; fi
  printf '%-28s %14s %14s %8s\n' "$1" "${k:-n/a} $4" "${f:-n/a} $4" "$ratio"
}
for key in "rf1.1" "rf3.1" "rf3.all"; do
  row "MB/s ${key/./ acks=}" "$key" 2 ""
done
for key in "rf1.1" "rf3.1" "rf3.all"; do
  row "p99 ms ${key/./ acks=}" "$key" 5 ""
done
row "p50 ms rf3 acks=all ${RATE}/s" rate 4 ""
row "p99 ms rf3 acks=all ${RATE}/s" rate 5 ""
echo "(ratio = fjord / kafka: above 1 is faster for MB/s, slower for latency)"
