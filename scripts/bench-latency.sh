#!/usr/bin/env bash
# Produce (ack) and end-to-end latency at a fixed rate, plus a short max-throughput produce,
# for one fjord binary or a before/after pair, back to back on the same machine.
#
# For each repetition and each binary (alternating, so drift on a shared machine hits both
# alike): start the broker on a fresh data directory, run fjord-bench's e2e phase at a
# fixed rate with acks=1 and then acks=all (a fixed-rate producer plus a consumer on a new
# 6-partition topic; ack = send -> delivery report, e2e = send -> consumed), then a produce
# of LAT_TPUT_N records as fast as the client can (acks=1) for MB/s; stop the broker and
# delete its data. Prints one markdown table (median of the repetitions, with min-max) and
# stops by itself: every step has a time limit.
#
# Usage:
#   scripts/bench-latency.sh                         # target/release/fjord alone
#   scripts/bench-latency.sh AFTER_BIN               # that binary alone
#   scripts/bench-latency.sh BEFORE_BIN AFTER_BIN    # the comparison
# Run it under the shared build lock so no build overlaps it (the figures would be noise):
#   flock /tmp/fjord-cargo.lock scripts/bench-latency.sh /tmp/fjord-before target/release/fjord
# fjord-bench (scripts/bench, librdkafka) is built into target/bench if it is missing.
#
# Environment:
#   LAT_RATE=100000   messages per second of the e2e phases
#   LAT_SECS=20       sending time of each e2e phase, seconds
#   LAT_REPS=3        repetitions
#   LAT_SIZE=1024     value size in bytes
#   LAT_LINGER=5      the producer's linger.ms (bench.sh uses 5 too)
#   LAT_TPUT_N=1000000  records of the throughput phase (0 skips it)
#   LAT_WARM_GB=6     GiB written to and deleted from the page cache first: on this kind of
#                     VM guest RAM is backed on first touch, which would otherwise make the
#                     first runs pay for it (see README, Performance); 0 skips it
#   LAT_KEEP=1        keep the work directory (broker logs, raw outputs)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATE=${LAT_RATE:-100000}
SECS=${LAT_SECS:-20}
REPS=${LAT_REPS:-3}
SIZE=${LAT_SIZE:-1024}
LINGER=${LAT_LINGER:-5}
TPUT_N=${LAT_TPUT_N:-1000000}
PARTITIONS=6
BENCH_BIN=$ROOT/target/bench/release/fjord-bench

warn() { printf 'bench-latency.sh: %s\n' "$*" >&2; }

case $# in
  0) LABELS=(current); BINS=("$ROOT/target/release/fjord") ;;
  1) LABELS=(current); BINS=("$1") ;;
  2) LABELS=(before after); BINS=("$1" "$2") ;;
  *) warn "usage: $0 [[BEFORE_BIN] AFTER_BIN]"; exit 2 ;;
esac
for b in "${BINS[@]}"; do
  [ -x "$b" ] || { warn "not an executable: $b"; exit 2; }
done
command -v python3 >/dev/null || { warn "python3 is required"; exit 1; }

if [ ! -x "$BENCH_BIN" ]; then
  warn "building fjord-bench (librdkafka; a few minutes the first time)"
  nice -n 10 cargo build --release -j 1 --manifest-path "$ROOT/scripts/bench/Cargo.toml" \
    --target-dir "$ROOT/target/bench" >&2 || { warn "fjord-bench build failed"; exit 1; }
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fjord-lat.XXXXXX")
BPID=
cleanup() {
  local rc=$?
  if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
    kill -TERM "$BPID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BPID" 2>/dev/null || true
  fi
  if [ "${LAT_KEEP:-0}" = 1 ]; then warn "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench OUT ARGS...: one fjord-bench run with a hard time limit; its key=value lines go to OUT.
bench() {
  local out=$1 limit=$((SECS * 4 + 120))
  shift
  timeout -s KILL $((limit + 30)) "$BENCH_BIN" --brokers "127.0.0.1:$PORT" --timeout-secs "$limit" \
    "$@" >"$out" 2>>"$WORK/bench.err" || warn "fjord-bench $1 failed (see $out)"
}

# run LABEL BIN REP: one broker, the three phases, stop.
run() {
  local label=$1 bin=$2 rep=$3 data=$WORK/data acks
  rm -rf "$data"
  mkdir -p "$data"
  PORT=$(free_port)
  "$bin" --listeners "PLAINTEXT://127.0.0.1:$PORT" --log-dirs "$data" >>"$WORK/$label.log" 2>&1 &
  BPID=$!
  if ! timeout -s KILL 60 "$BENCH_BIN" --brokers "127.0.0.1:$PORT" --timeout-secs 30 ready \
    >/dev/null 2>>"$WORK/bench.err"; then
    warn "$label: broker did not answer; log tail:"
    tail -n 20 "$WORK/$label.log" >&2
    exit 1
  fi
  for acks in 1 all; do
    sync # nothing left dirty by the previous phase
    warn "$label rep $rep: e2e acks=$acks, $RATE msg/s x $SIZE B for $SECS s"
    bench "$WORK/$label.$rep.e2e-$acks.out" e2e --topic "lat-$acks" -k "$PARTITIONS" --rate "$RATE" \
      --duration-secs "$SECS" -s "$SIZE" --acks "$acks" --linger-ms "$LINGER"
  done
  if [ "$TPUT_N" -gt 0 ]; then
    sync
    warn "$label rep $rep: produce $TPUT_N x $SIZE B, acks=1, as fast as possible"
    bench "$WORK/$label.$rep.tput.out" produce --topic tput -n "$TPUT_N" -s "$SIZE" \
      -k "$PARTITIONS" --acks 1 --linger-ms "$LINGER"
  fi
  kill -TERM "$BPID" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$BPID" 2>/dev/null || true
  wait "$BPID" 2>/dev/null || true
  BPID=
  rm -rf "$data"
}

WARM_GB=${LAT_WARM_GB:-6}
if [ "$WARM_GB" -gt 0 ]; then
  warn "warming the page cache: writing and deleting $WARM_GB GiB"
  dd if=/dev/zero of="$WORK/warm.tmp" bs=1M count=$((WARM_GB * 1024)) status=none
  rm -f "$WORK/warm.tmp"
fi

for rep in $(seq 1 "$REPS"); do
  for i in "${!LABELS[@]}"; do
    run "${LABELS[$i]}" "${BINS[$i]}" "$rep"
  done
done

{
  echo
  echo "fjord ack / end-to-end latency — $(date -u +%Y-%m-%d), $(nproc) cores, $RATE msg/s x $SIZE B," \
    "$PARTITIONS partitions, linger.ms=$LINGER, $SECS s per phase, median (min-max) of $REPS runs," \
    "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  for i in "${!LABELS[@]}"; do echo "${LABELS[$i]}: ${BINS[$i]}"; done
  echo
  python3 - "$WORK" "$REPS" "${LABELS[@]}" <<'EOF'
import sys, statistics
work, reps, labels = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def load(path):
    d = {}
    try:
        for line in open(path):
            k, _, v = line.strip().partition("=")
            d[k] = v
    except OSError:
        pass
    return d

def cell(label, phase, key, fmt="{:.2f}"):
    vals = []
    for r in range(1, reps + 1):
        v = load(f"{work}/{label}.{r}.{phase}.out").get(key)
        try:
            vals.append(float(v))
        except (TypeError, ValueError):
            pass
    if not vals:
        return "n/a"
    s = fmt.format(statistics.median(vals))
    if len(vals) > 1:
        s += " (" + fmt.format(min(vals)) + "-" + fmt.format(max(vals)) + ")"
    if len(vals) < reps:
        s += f" [{len(vals)}/{reps} runs]"
    return s

print("| binary | acks | achieved msg/s | ack p50 ms | ack p99 ms | e2e p50 ms | e2e p99 ms | e2e p99.9 ms |")
print("|---|---|---|---|---|---|---|---|")
for acks in ("1", "all"):
    for l in labels:
        p = f"e2e-{acks}"
        print(f"| {l} | {acks} | {cell(l, p, 'e2e.achieved_rate', '{:.0f}')} | {cell(l, p, 'e2e.ack_p50_ms')} "
              f"| {cell(l, p, 'e2e.ack_p99_ms')} | {cell(l, p, 'e2e.lat_p50_ms')} | {cell(l, p, 'e2e.lat_p99_ms')} "
              f"| {cell(l, p, 'e2e.lat_p999_ms')} |")
print()
print("| binary | produce acks=1, max rate: MB/s | rec/s | ack p99 ms |")
print("|---|---|---|---|")
for l in labels:
    print(f"| {l} | {cell(l, 'tput', 'produce.mb_per_s', '{:.1f}')} | {cell(l, 'tput', 'produce.records_per_s', '{:.0f}')} "
          f"| {cell(l, 'tput', 'produce.lat_p99_ms')} |")
EOF
}
