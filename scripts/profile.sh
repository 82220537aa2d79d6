#!/usr/bin/env bash
# CPU profiles of the broker under produce and under fetch load, with perf (Debian package
# linux-perf): where the broker's time goes, as in the performance notes of the README.
#
# Usage: scripts/profile.sh [RECORDS]   (default 1,000,000 x 1 KiB, 6 partitions, acks=1)
# Starts a broker on a fresh temporary data dir, samples it with `perf record -g` while
# fjord-bench produces RECORDS records and then while it consumes them from the start, and
# prints for each phase the broker's CPU seconds, the split by thread and library, and the
# hottest symbols. The raw profiles stay in target/profile/{produce,fetch}.data for
# `perf report -i`. Builds what it needs (the broker, and fjord-bench as scripts/bench.sh
# does). Talks to 127.0.0.1 only; every step is time-bounded.
# Env: PROFILE_FREQ=1999 (samples/s), PROFILE_WARM_GB=3 (page cache warm-up, see bench.sh;
# 0 = none).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-1000000}
FREQ=${PROFILE_FREQ:-1999}
OUT=$ROOT/target/profile
BENCH_BIN=$ROOT/target/bench/release/fjord-bench
FJORD_BIN=$ROOT/target/release/fjord
mkdir -p "$OUT"

if ! command -v perf >/dev/null; then
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q linux-perf >/dev/null 2>&1 ||
    { echo "profile.sh: perf is missing and apt-get install linux-perf failed" >&2; exit 1; }
fi
(cd "$ROOT" && cargo build --release -q --bin fjord)
cargo build --release -q --manifest-path "$ROOT/scripts/bench/Cargo.toml" --target-dir "$ROOT/target/bench"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fjord-profile.XXXXXX")
BPID=
cleanup() {
  [ -n "$BPID" ] && kill -TERM "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

WARM_GB=${PROFILE_WARM_GB:-3}
if [ "$WARM_GB" -gt 0 ]; then
  # This VM backs guest RAM on first touch (see bench.sh); without a warm-up the produce
  # profile is dominated by the hypervisor's page faults, not by the broker.
  dd if=/dev/zero of="$WORK/warm" bs=1M count=$((WARM_GB * 1024)) status=none
  rm -f "$WORK/warm"
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$FJORD_BIN" --listeners "PLAINTEXT://127.0.0.1:$PORT" --log-dirs "$WORK/data" >"$WORK/broker.log" 2>&1 &
BPID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done

cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$BPID/stat"; }

# profile NAME fjord-bench-args...: samples the broker for the duration of one client run.
profile() {
  local name=$1 c0 c1 ppid
  shift
  sync
  c0=$(cpu)
  perf record -q -F "$FREQ" -g -p "$BPID" -o "$OUT/$name.data" >/dev/null 2>&1 &
  ppid=$!
  sleep 0.3
  timeout 600 "$BENCH_BIN" "$@" --brokers "127.0.0.1:$PORT" 2>/dev/null | grep -E 'mb_per_s|client_cpu_s' || true
  kill -INT "$ppid" 2>/dev/null || true
  wait "$ppid" 2>/dev/null || true
  c1=$(cpu)
  echo "$name: broker CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') s"
  echo "-- by thread and library"
  # (|| true: head closing the pipe early is not a failure)
  perf report -i "$OUT/$name.data" --no-children --sort comm,dso --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -n 8 || true
  echo "-- hottest symbols (self time)"
  perf report -i "$OUT/$name.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9]' | sed -E 's/[ -]+$//' | head -n 20 || true
  echo
}

echo "== produce: $N x 1 KiB, 6 partitions, acks=1"
profile produce produce --topic profile -n "$N" -s 1024 -k 6 --acks 1
echo "== fetch: consume the topic from the start"
profile fetch consume --topic profile
echo "profiles: $OUT/produce.data, $OUT/fetch.data (perf report -i FILE)"
