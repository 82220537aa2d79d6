#!/usr/bin/env bash
# Fjord benchmark: builds the broker and scripts/bench (fjord-bench, a librdkafka client),
# starts a broker on a fresh data directory and measures startup time, memory, CPU,
# produce/consume throughput, produce and end-to-end latency and disk usage. The same run
# measures the machine's loopback TCP and sequential disk write speed, so every figure can
# be read as a fraction of what the hardware allows; absolute numbers from a shared 2-core
# box mean little on their own.
#
# Usage: scripts/bench.sh
#   At BENCH_SCALE=1 the measuring takes about 1-2 minutes on a quiet 2-core machine (plus
#   the builds; the first librdkafka build takes a few minutes with -j 1). It writes about
#   3.2 GB to the data directory, and the broker's RSS currently grows to about 2.6 GiB.
# Environment:
#   BENCH_SCALE=0.1        scale every record count and the e2e duration (default 1)
#   BENCH_JOBS=1           cargo -j for both builds (default 1: the machine is shared)
#   BENCH_FSYNC=1          start the broker with --log-flush-interval-messages 1
#   BENCH_KEEP=1           keep the work directory (data dir, logs) instead of deleting it
#   BENCH_TMPDIR=/path     where the work directory goes (default /tmp); the disk reference
#                          is measured there too, so put it on the disk you care about
#   BENCH_PHASE_TIMEOUT=600  seconds any single benchmark step may take
#
# Exit status: 0 when every step ran, whatever the figures; non-zero if a step failed
# (build, broker start/stop, a benchmark run erroring or timing out). Steps after a failed
# benchmark still run so one bad phase does not hide the others.
#
# Everything talks to 127.0.0.1 only. The final markdown table is printed to stdout and
# kept in target/bench/last-results.md; the broker log is kept in target/bench/last-broker.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCALE=${BENCH_SCALE:-1}
JOBS=${BENCH_JOBS:-1}
PHASE_TIMEOUT=${BENCH_PHASE_TIMEOUT:-600}
PARTITIONS=6
BENCH_TARGET=$ROOT/target/bench
BENCH_BIN=$BENCH_TARGET/release/fjord-bench
FJORD_BIN=$ROOT/target/release/fjord

log() { printf '\n== %s  %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
warn() { printf 'bench.sh: %s\n' "$*" >&2; }

# Floating-point helpers; bash only does integers.
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
scaled() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s + 0.5); if (v < 1) v = 1; print v }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.1f%%", 100 * a / b }'; }

N_1K=$(scaled 1000000)
N_100=$(scaled 3000000)
E2E_RATE=20000
E2E_SECS=$(awk -v s="$SCALE" 'BEGIN { d = 10 * s; if (d < 3) d = 3; print d }')

FAILED=()
fail() { FAILED+=("$1"); warn "FAILED: $1"; }

# ---------------------------------------------------------------------------------------
# Tools. librdkafka builds from source with its own ./configure + make: it needs a C
# compiler, make, pkg-config and zlib headers, not cmake. iperf3 gives the loopback
# reference; without it a short python socket test stands in.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  # Try the existing package lists first: a full update is slow and usually unnecessary.
  $sudo apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q "$@" >/dev/null 2>&1; }
}

log "checking tools"
missing=()
for c in cc c++ make pkg-config; do command -v "$c" >/dev/null || missing+=(build-essential pkg-config); done
dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
if [ ${#missing[@]} -gt 0 ]; then
  warn "installing build dependencies for librdkafka: ${missing[*]}"
  apt_install "${missing[@]}" || { warn "apt-get install ${missing[*]} failed"; exit 1; }
fi
if ! command -v iperf3 >/dev/null; then
  warn "installing iperf3 (loopback reference)"
  apt_install iperf3 || warn "iperf3 unavailable; falling back to a python socket test"
fi
command -v python3 >/dev/null || { warn "python3 is required (free port, JSON, socket test)"; exit 1; }

# ---------------------------------------------------------------------------------------
log "building fjord (release) and fjord-bench"
(cd "$ROOT" && nice -n 10 cargo build --release -j "$JOBS" --bin fjord) || { warn "fjord build failed"; exit 1; }
nice -n 10 cargo build --release -j "$JOBS" --manifest-path "$ROOT/scripts/bench/Cargo.toml" \
  --target-dir "$BENCH_TARGET" || { warn "fjord-bench build failed"; exit 1; }

# ---------------------------------------------------------------------------------------
mkdir -p "${BENCH_TMPDIR:-/tmp}"
WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/fjord-bench.XXXXXX")
DATA=$WORK/data
BLOG=$WORK/broker.log
BPID=
IPERF_PID=

cleanup() {
  local rc=$?
  if [ -n "$IPERF_PID" ]; then kill "$IPERF_PID" 2>/dev/null || true; fi
  if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
    kill -TERM "$BPID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BPID" 2>/dev/null || true
  fi
  [ -f "$BLOG" ] && cp "$BLOG" "$BENCH_TARGET/last-broker.log" 2>/dev/null
  if [ "${BENCH_KEEP:-0}" = 1 ]; then warn "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Connect with bash's /dev/tcp: no fork per attempt, so the poll loop itself adds little.
can_connect() { { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null && exec 3>&- 3<&-; }

wait_port() { # port timeout_s [pid]
  local deadline
  deadline=$(calc "$EPOCHREALTIME + $2")
  until can_connect "$1"; do
    [ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || return 1
    awk -v d="$deadline" -v n="$EPOCHREALTIME" 'BEGIN { exit !(n > d) }' && return 1
    sleep 0.001
  done
}

# Wait until something listens on 127.0.0.1:port, without connecting to it.
wait_listening() { # port timeout_s
  local hexport i
  hexport=$(printf ':%04X' "$1")
  for ((i = 0; i < $2 * 100; i++)); do
    awk -v p="$hexport" '$4 == "0A" && $2 ~ p "$" { found = 1 } END { exit !found }' /proc/net/tcp && return 0
    sleep 0.01
  done
  return 1
}

# ---------------------------------------------------------------------------------------
# Machine reference figures.
log "reference: loopback TCP throughput"
LOOPBACK_MBPS=
LOOPBACK_HOW=
if command -v iperf3 >/dev/null; then
  port=$(free_port)
  iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  IPERF_PID=$!
  # No probe connection here: a one-off (-1) iperf3 server would take it for the test.
  if wait_listening "$port" 10 &&
    json=$(timeout 60 iperf3 -c 127.0.0.1 -p "$port" -t 5 -J); then
    LOOPBACK_MBPS=$(printf '%s' "$json" |
      python3 -c 'import json, sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 8e6))') ||
      LOOPBACK_MBPS=
    LOOPBACK_HOW="iperf3, 1 stream, 5 s"
  fi
  kill "$IPERF_PID" 2>/dev/null || true
  wait "$IPERF_PID" 2>/dev/null || true
  IPERF_PID=
fi
if [ -z "$LOOPBACK_MBPS" ]; then
  # Fallback: one sender thread, 2 GiB in 1 MiB writes to a reader thread.
  LOOPBACK_MBPS=$(timeout 120 python3 - <<'EOF'
import socket, threading, time
N, CH = 2048, bytearray(1 << 20)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def sink():
    c, _ = srv.accept()
    while c.recv_into(bytearray(1 << 20)): pass
t = threading.Thread(target=sink); t.start()
s = socket.create_connection(srv.getsockname()); t0 = time.time()
for _ in range(N): s.sendall(CH)
s.close(); t.join()
print("%.1f" % (N * len(CH) / (time.time() - t0) / 1e6))
EOF
  ) || { fail "loopback reference"; LOOPBACK_MBPS=; }
  LOOPBACK_HOW="python socket test, 2 GiB"
fi
warn "loopback: ${LOOPBACK_MBPS:-?} MB/s ($LOOPBACK_HOW)"

log "reference: sequential disk write"
DISK_MBPS=
DISK_HOW="dd bs=1M count=1024 oflag=direct"
ddfile=$WORK/dd.tmp
t0=$EPOCHREALTIME
if ! dd if=/dev/zero of="$ddfile" bs=1M count=1024 oflag=direct conv=fsync status=none 2>/dev/null; then
  # Some filesystems (tmpfs, some overlays) refuse O_DIRECT; fsync at the end still makes
  # the figure a disk figure rather than a page-cache one.
  DISK_HOW="dd bs=1M count=1024 conv=fsync"
  t0=$EPOCHREALTIME
  dd if=/dev/zero of="$ddfile" bs=1M count=1024 conv=fsync status=none || fail "disk reference"
fi
t1=$EPOCHREALTIME
rm -f "$ddfile"
DISK_MBPS=$(calc "1073741824 / ($t1 - $t0) / 1e6")
DISK_MBPS=$(printf '%.1f' "$DISK_MBPS")
warn "disk: $DISK_MBPS MB/s ($DISK_HOW, on $(df -P "$WORK" | awk 'NR == 2 { print $1 }'))"

# ---------------------------------------------------------------------------------------
log "starting fjord on a fresh data directory"
mkdir -p "$DATA"
PORT=$(free_port)
BROKER_ARGS=(--listeners "PLAINTEXT://127.0.0.1:$PORT" --log-dirs "$DATA")
[ "${BENCH_FSYNC:-0}" = 1 ] && BROKER_ARGS+=(--log-flush-interval-messages 1)
t0=$EPOCHREALTIME
"$FJORD_BIN" "${BROKER_ARGS[@]}" >"$BLOG" 2>&1 &
BPID=$!
if ! wait_port "$PORT" 30 "$BPID"; then
  warn "broker did not accept connections within 30 s; log:"
  cat "$BLOG" >&2
  exit 1
fi
t1=$EPOCHREALTIME
STARTUP_MS=$(printf '%.1f' "$(calc "($t1 - $t0) * 1000")")
sleep 1 # let startup allocations settle before calling it idle
proc_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$BPID/status"; }
IDLE_RSS_KB=$(proc_kb VmRSS)
warn "startup ${STARTUP_MS} ms, idle RSS $((IDLE_RSS_KB / 1024)) MiB"

CLK_TCK=$(getconf CLK_TCK)
cpu_secs() { # utime + stime of the broker, fields 14 and 15 of /proc/PID/stat
  local stat rest
  stat=$(<"/proc/$BPID/stat")
  rest=${stat##*) } # the command name may contain spaces; skip past it
  read -r -a f <<<"$rest"
  calc "(${f[11]} + ${f[12]}) / $CLK_TCK"
}
disk_bytes() { du -sB1 "$DATA" | awk '{ print $1 }'; }

declare -A R # results: R[phase.key]=value
PHASES=()
# run_phase NAME fjord-bench-args...: one benchmark step with the broker's CPU time and
# peak RSS over exactly that step. Writing 5 to clear_refs resets VmHWM (Linux >= 4.0),
# so VmHWM afterwards is the peak during the step, with no sampling gaps.
run_phase() {
  local name=$1
  shift
  PHASES+=("$name")
  echo 5 >"/proc/$BPID/clear_refs" 2>/dev/null || true
  local c0 c1 out=$WORK/$name.out
  c0=$(cpu_secs)
  log "$name: fjord-bench $*"
  if ! timeout -s KILL $((PHASE_TIMEOUT + 30)) "$BENCH_BIN" --brokers "127.0.0.1:$PORT" \
    --timeout-secs "$PHASE_TIMEOUT" "$@" >"$out"; then
    fail "$name"
    R[$name.failed]=1
  fi
  while IFS='=' read -r k v; do R[$name.$k]=$v; done <"$out"
  if ! kill -0 "$BPID" 2>/dev/null; then
    fail "broker died during $name"
    tail -n 50 "$BLOG" >&2
    BPID=
    exit 1
  fi
  c1=$(cpu_secs)
  R[$name.cpu_s]=$(printf '%.1f' "$(calc "$c1 - $c0")")
  R[$name.peak_rss_mib]=$(($(proc_kb VmHWM) / 1024))
}

# ---------------------------------------------------------------------------------------
PRODUCED_BYTES=0
for acks in 1 all; do
  for size in 1024 100; do
    n=$N_1K
    [ "$size" = 100 ] && n=$N_100
    topic=bench-${size}b-acks-$acks
    run_phase "produce-$size-$acks" produce --topic "$topic" -n "$n" -s "$size" -k "$PARTITIONS" --acks "$acks"
    PRODUCED_BYTES=$((PRODUCED_BYTES + ${R[produce-$size-$acks.produce.bytes]:-0}))
    run_phase "consume-$size-$acks" consume --topic "$topic"
  done
done
for acks in 1 all; do
  run_phase "e2e-$acks" e2e --topic "bench-e2e-acks-$acks" -k "$PARTITIONS" --rate "$E2E_RATE" \
    --duration-secs "$E2E_SECS" -s 1024 --acks "$acks"
  PRODUCED_BYTES=$((PRODUCED_BYTES + ${R[e2e-$acks.e2e.sent]:-0} * 1024))
done

DISK_USED=$(disk_bytes)
PEAK_RSS_KB=0
for p in "${PHASES[@]}"; do
  v=$((${R[$p.peak_rss_mib]:-0} * 1024))
  [ "$v" -gt "$PEAK_RSS_KB" ] && PEAK_RSS_KB=$v
done
TOTAL_CPU=$(cpu_secs)

log "stopping fjord (SIGTERM)"
t0=$EPOCHREALTIME
kill -TERM "$BPID"
STOP_RC=
for _ in $(seq 300); do
  if ! kill -0 "$BPID" 2>/dev/null; then
    wait "$BPID" && STOP_RC=0 || STOP_RC=$?
    break
  fi
  sleep 0.1
done
t1=$EPOCHREALTIME
if [ -z "$STOP_RC" ]; then
  fail "broker ignored SIGTERM for 30 s; killed"
  kill -KILL "$BPID" 2>/dev/null || true
  STOP_MS="> 30000"
else
  STOP_MS=$(printf '%.0f' "$(calc "($t1 - $t0) * 1000")")
  [ "$STOP_RC" = 0 ] || fail "broker exited with status $STOP_RC after SIGTERM"
fi
BPID=
DISK_USED_AFTER_STOP=$(disk_bytes)

# The broker log: errors, warnings and panics are anomalies worth a look even when every
# benchmark succeeded.
LOG_PROBLEMS=$(grep -ciE ' (ERROR|WARN) |panic' "$BLOG" || true)
if [ "$LOG_PROBLEMS" -gt 0 ]; then
  warn "broker log has $LOG_PROBLEMS error/warning lines; first ones:"
  grep -iE ' (ERROR|WARN) |panic' "$BLOG" | head -n 20 >&2
fi

# ---------------------------------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# Thousands separators via sed: mawk (Debian's default awk) lacks printf's ' flag.
num() { [ -z "$1" ] && { echo n/a; return; }; printf '%.0f' "$1" | sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta'; }
val() { local v=${R[$1]:-}; echo "${v:-n/a}"; }
status() { [ "${R[$1.failed]:-0}" = 1 ] && echo " **FAILED**" || true; }
label_size() { [ "$1" = 1024 ] && echo "1 KiB" || echo "$1 B"; }

{
  echo
  echo "Fjord benchmark — $(date -u +%Y-%m-%d), $(nproc) cores, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), BENCH_SCALE=$SCALE$([ "${BENCH_FSYNC:-0}" = 1 ] && echo ', fsync per message'), $PARTITIONS partitions, linger.ms=5, batch.size=1000000, no compression, client and broker on the same host"
  echo
  echo "| Figure | Value | vs machine reference | Latency p50 / p99 (ms) | Broker CPU (s) | Client CPU (s) | Broker peak RSS (MiB) |"
  echo "|---|---|---|---|---|---|---|"
  echo "| Reference: loopback TCP ($LOOPBACK_HOW) | ${LOOPBACK_MBPS:-n/a} MB/s | 100% | | | | |"
  echo "| Reference: sequential disk write ($DISK_HOW) | $DISK_MBPS MB/s | 100% | | | | |"
  echo "| Startup: process start to first accepted TCP connection | $STARTUP_MS ms | | | | | |"
  echo "| Idle RSS after start | $(mib $((IDLE_RSS_KB * 1024))) MiB | | | | | |"
  for acks in 1 all; do
    for size in 1024 100; do
      p=produce-$size-$acks
      echo "| Produce $(label_size $size), acks=$acks, $(num "$(val $p.produce.records)") records$(status $p) | $(num "$(val $p.produce.records_per_s)") rec/s, $(val $p.produce.mb_per_s) MB/s | $(pct "$(val $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback, $(pct "$(val $p.produce.mb_per_s)" "$DISK_MBPS") of disk | $(val $p.produce.lat_p50_ms) / $(val $p.produce.lat_p99_ms) | $(val $p.cpu_s) | $(val $p.produce.client_cpu_s) | $(val $p.peak_rss_mib) |"
      p=consume-$size-$acks
      echo "| Consume $(label_size $size) (acks=$acks topic), $(num "$(val $p.consume.records)") records$(status $p) | $(num "$(val $p.consume.records_per_s)") rec/s, $(val $p.consume.mb_per_s) MB/s | $(pct "$(val $p.consume.mb_per_s)" "$LOOPBACK_MBPS") of loopback | | $(val $p.cpu_s) | $(val $p.consume.client_cpu_s) | $(val $p.peak_rss_mib) |"
    done
  done
  for acks in 1 all; do
    p=e2e-$acks
    echo "| End-to-end latency, acks=$acks, $(num "$(val $p.e2e.achieved_rate)") msg/s x 1 KiB for ${E2E_SECS} s$(status $p) | $(num "$(val $p.e2e.received)") of $(num "$(val $p.e2e.sent)") received | | $(val $p.e2e.lat_p50_ms) / $(val $p.e2e.lat_p99_ms) (ack $(val $p.e2e.ack_p50_ms) / $(val $p.e2e.ack_p99_ms)) | $(val $p.cpu_s) | $(val $p.e2e.client_cpu_s) | $(val $p.peak_rss_mib) |"
  done
  echo "| Disk usage of data dir (before / after shutdown) vs bytes produced | $(mib "$DISK_USED") / $(mib "$DISK_USED_AFTER_STOP") MiB for $(mib "$PRODUCED_BYTES") MiB of values | $(awk -v a="$DISK_USED_AFTER_STOP" -v b="$PRODUCED_BYTES" 'BEGIN { if (b > 0) printf "%.2fx of produced", a / b; else print "n/a" }') | | | | |"
  echo "| Broker totals over the whole run | CPU $(printf '%.1f' "$TOTAL_CPU") s | | | $(printf '%.1f' "$TOTAL_CPU") | | $(mib $((PEAK_RSS_KB * 1024))) |"
  echo "| Shutdown on SIGTERM | $STOP_MS ms, exit status ${STOP_RC:-killed} | | | | | |"
  echo "| Broker log error/warning/panic lines | $LOG_PROBLEMS | | | | | |"
} | tee "$BENCH_TARGET/last-results.md"

if [ ${#FAILED[@]} -gt 0 ]; then
  warn "failed steps: ${FAILED[*]}"
  exit 1
fi
exit 0
