#!/usr/bin/env bash
# Fjord benchmark: builds the broker and scripts/bench (fjord-bench, a librdkafka client),
# starts a broker on a fresh data directory and measures startup time, memory, CPU,
# produce/consume throughput, produce and end-to-end latency and disk usage; then stops it,
# restarts it on the same (now multi-GB) data directory with a flush before every ack, and
# measures the restart time and produce throughput with flushing. The same run measures the
# machine's loopback TCP and sequential disk write speed, so every figure can be read as a
# fraction of what the hardware allows; absolute numbers from a shared 2-core box mean
# little on their own. A second table checks every performance target of the project
# against its measured figure.
#
# Usage: scripts/bench.sh
#   At BENCH_SCALE=1 the measuring takes about 2 minutes on a quiet 2-core machine (plus
#   the builds; the first librdkafka build takes a few minutes with -j 1). It writes about
#   4.2 GB of record values in fixed-count phases (3.7 GB before the restart: the 1 KiB
#   acks=1 topic alone is 2 GB, so the consume target reads a 2 GB topic; 0.5 GB in the
#   flush run after it), plus the two e2e phases: 2 x 10 s at half the measured 1 KiB
#   produce rate, i.e. about 1 GB per 100 MB/s of that rate. The disk reference writes and
#   deletes another 1 GiB first. Everything goes to the work directory below.
# Environment:
#   BENCH_SCALE=0.1        scale every record count, the disk reference size and the e2e
#                          duration (default 1)
#   BENCH_JOBS=1           cargo -j for both builds (default 1: the machine is shared)
#   BENCH_FSYNC=1          start the first broker with --log-flush-interval-messages 1 too
#                          (the restarted broker always runs with it)
#   BENCH_KEEP=1           keep the work directory (data dir, logs) instead of deleting it
#   BENCH_TMPDIR=/path     where the work directory goes (default /tmp); the disk reference
#                          is measured there too, so put it on the disk you care about
#   BENCH_PHASE_TIMEOUT=600  seconds any single benchmark step may take
#   BENCH_WARM_GB=14       GiB written and deleted before the phases so the page cache is
#                          backed by the hypervisor (default 14 x BENCH_SCALE; 0 = cold VM)
#
# Exit status: 0 when every step ran, whatever the figures (a target that is not met does
# not fail the run); non-zero if a step failed (build, broker start/stop, a benchmark run
# erroring or timing out). Steps after a failed benchmark still run so one bad phase does
# not hide the others.
#
# The benchmarks talk to 127.0.0.1 only (installing a missing tool uses apt, as set up on
# the machine). Both markdown tables are printed to stdout and kept in
# target/bench/last-results.md; the broker log (both runs) is kept in
# target/bench/last-broker.log.
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

# The 1 KiB acks=1 topic is the one the consume target reads: 2 GB at scale 1. The other
# phases are smaller to keep the run short.
N_1K_ACKS1=$(scaled 2000000)
N_1K_ACKSALL=$(scaled 1000000)
N_100=$(scaled 3000000)
N_FLUSH=$(scaled 500000)
E2E_SECS=$(awk -v s="$SCALE" 'BEGIN { d = 10 * s; if (d < 3) d = 3; print d }')
# The e2e phases run at half the measured produce-1024-1 rate (the latency targets are
# stated at half the maximum throughput); this is only used when that phase failed.
E2E_FALLBACK_RATE=20000
E2E_LINGER_MS=5
# Disk reference size in MiB; below 64 MiB the figure is mostly page cache and noise.
DISK_MIB=$(awk -v s="$SCALE" 'BEGIN { v = int(1024 * s + 0.5); if (v < 64) v = 64; print v }')

# The project's performance targets (2 cores, client on the same cores). MB = 10^6 bytes,
# as in every MB/s figure here; RSS limits are read as MiB.
T_PRODUCE_1K_ACKS1_MBPS=500
T_PRODUCE_1K_ACKSALL_MBPS=400
T_PRODUCE_100_RPS=1000000
T_CONSUME_MBPS=1000
T_PRODUCE_P99_MS=5
T_E2E_P99_MS=10
T_FLUSH_MBPS=150
T_RESTART_MS=1000
T_STARTUP_MS=50
T_IDLE_RSS_MIB=20
T_PEAK_RSS_MIB=256
T_DISK_RATIO=1.1

FAILED=()
fail() { FAILED+=("$1"); warn "FAILED: $1"; }

# ---------------------------------------------------------------------------------------
# Tools. librdkafka builds from source with its own ./configure + make: it needs a C
# compiler, make, pkg-config and zlib headers, not cmake. iperf3 gives the loopback
# reference; without it a short python socket test stands in. fio gives the disk
# reference; without it dd stands in.
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
if ! command -v fio >/dev/null; then
  warn "installing fio (disk reference)"
  apt_install fio || warn "fio unavailable; falling back to dd"
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

# Page cache references. On this kind of VM the hypervisor backs guest RAM only when it is
# first touched, and that costs the guest ~2.5 s of kernel CPU per GB: dd into never-used
# page cache runs at ~390 MB/s, the same dd once those pages were used before at ~5 GB/s.
# Every byte a broker accepts lands in the page cache, so on a cold VM that first touch,
# not the broker, caps produce (Kafka or any other broker alike). Measure the cold figure,
# then write and delete a file as large as everything the run will produce, so the phases
# measure the broker; both figures are printed. BENCH_WARM_GB=0 skips the warm-up.
pagecache_write() { # MiB -> MB/s of a buffered dd write (no fsync), file deleted after
  local f=$WORK/pagecache.tmp t0 t1
  t0=$EPOCHREALTIME
  dd if=/dev/zero of="$f" bs=1M count="$1" status=none
  t1=$EPOCHREALTIME
  rm -f "$f"
  printf '%.1f' "$(calc "$1 * 1048576 / ($t1 - $t0) / 1e6")"
}
log "reference: page cache write, cold"
PAGECACHE_COLD_MBPS=$(pagecache_write 1024) || PAGECACHE_COLD_MBPS=
warn "page cache, cold (first touch of guest RAM): ${PAGECACHE_COLD_MBPS:-?} MB/s"
WARM_GB=${BENCH_WARM_GB:-$(awk -v s="$SCALE" 'BEGIN { v = int(14 * s + 0.999); if (v < 1) v = 1; print v }')}
PAGECACHE_WARM_MBPS=
if [ "$WARM_GB" -gt 0 ]; then
  log "warming the page cache: writing and deleting $WARM_GB GiB"
  pagecache_write $((WARM_GB * 1024)) >/dev/null || warn "page cache warm-up failed"
  PAGECACHE_WARM_MBPS=$(pagecache_write 1024) || PAGECACHE_WARM_MBPS=
  warn "page cache, warm: ${PAGECACHE_WARM_MBPS:-?} MB/s"
fi

log "reference: sequential disk write"
# Buffered 1 MiB writes and one fsync at the end, which is how the broker writes its
# segments too; the fsync is inside the timed part, so this is a disk figure, not a
# page-cache one. No preallocation: segments grow by appending.
DISK_MBPS=
DISK_HOW=
if command -v fio >/dev/null; then
  if json=$(timeout "$PHASE_TIMEOUT" fio --name=seqwrite --filename="$WORK/fio.tmp" --rw=write \
    --bs=1M --size="${DISK_MIB}M" --ioengine=psync --fallocate=none --end_fsync=1 \
    --output-format=json 2>"$WORK/fio.err"); then
    # fio may print notes before the JSON document; parse from its first brace.
    DISK_MBPS=$(printf '%s' "$json" | python3 -c 'import json, sys
s = sys.stdin.read()
print("%.1f" % (json.loads(s[s.index("{"):])["jobs"][0]["write"]["bw_bytes"] / 1e6))') || DISK_MBPS=
    DISK_HOW="fio, 1 MiB sequential writes, $DISK_MIB MiB, fsync at end"
  else
    warn "fio failed; falling back to dd: $(tail -n 3 "$WORK/fio.err" 2>/dev/null)"
  fi
  rm -f "$WORK/fio.tmp"
fi
if [ -z "$DISK_MBPS" ]; then
  ddfile=$WORK/dd.tmp
  DISK_HOW="dd bs=1M count=$DISK_MIB oflag=direct"
  t0=$EPOCHREALTIME
  if ! timeout "$PHASE_TIMEOUT" dd if=/dev/zero of="$ddfile" bs=1M count="$DISK_MIB" oflag=direct conv=fsync status=none 2>/dev/null; then
    # Some filesystems (tmpfs, some overlays) refuse O_DIRECT; fsync at the end still makes
    # the figure a disk figure rather than a page-cache one.
    DISK_HOW="dd bs=1M count=$DISK_MIB conv=fsync"
    t0=$EPOCHREALTIME
    timeout "$PHASE_TIMEOUT" dd if=/dev/zero of="$ddfile" bs=1M count="$DISK_MIB" conv=fsync status=none ||
      fail "disk reference"
  fi
  t1=$EPOCHREALTIME
  rm -f "$ddfile"
  DISK_MBPS=$(printf '%.1f' "$(calc "$DISK_MIB * 1048576 / ($t1 - $t0) / 1e6")")
fi
warn "disk: $DISK_MBPS MB/s ($DISK_HOW, on $(df -P "$WORK" | awk 'NR == 2 { print $1 }'))"

# ---------------------------------------------------------------------------------------
declare -A R # results: R[phase.key]=value
PHASES=()

proc_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$BPID/status"; }
CLK_TCK=$(getconf CLK_TCK)
cpu_secs() { # utime + stime of the broker, fields 14 and 15 of /proc/PID/stat
  local stat rest
  stat=$(<"/proc/$BPID/stat")
  rest=${stat##*) } # the command name may contain spaces; skip past it
  read -r -a f <<<"$rest"
  calc "(${f[11]} + ${f[12]}) / $CLK_TCK"
}
disk_bytes() { du -sB1 "$DATA" | awk '{ print $1 }'; }
us_to_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) / 1000 }'; }

# start_broker NAME TIMEOUT_S [broker flags...]: spawn fjord on $DATA, listening on a fresh
# port, and time it with `fjord-bench ready`. The probe is started first and the broker
# only once the probe is polling, so the probe's own start-up (a librdkafka client, ~10 ms)
# is not charged to the broker; it polls every millisecond. Sets BPID and PORT, and
# R[NAME.tcp_ms] / R[NAME.metadata_ms]: spawn -> first accepted TCP connection and
# spawn -> first Metadata answer to a librdkafka client. Returns non-zero if the broker
# did not answer within TIMEOUT_S (the broker may still be running then).
start_broker() {
  local name=$1 limit=$2 out=$WORK/$1.out t0 rpid rc=0 i
  shift 2
  PORT=$(free_port)
  timeout -s KILL $((limit + 30)) "$BENCH_BIN" --brokers "127.0.0.1:$PORT" --timeout-secs "$limit" \
    ready >"$out" 2>"$WORK/$name.err" &
  rpid=$!
  for ((i = 0; i < 3000; i++)); do
    grep -q '^ready.probing_unix_us=' "$out" 2>/dev/null && break
    kill -0 "$rpid" 2>/dev/null || break
    sleep 0.01
  done
  t0=${EPOCHREALTIME/./}
  "$FJORD_BIN" --listeners "PLAINTEXT://127.0.0.1:$PORT" --log-dirs "$DATA" "$@" >>"$BLOG" 2>&1 &
  BPID=$!
  # A broker that exits during start-up ends the wait at once instead of at the timeout.
  while kill -0 "$rpid" 2>/dev/null; do
    if ! kill -0 "$BPID" 2>/dev/null; then
      kill "$rpid" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  wait "$rpid" || rc=$?
  while IFS='=' read -r k v; do R[$name.$k]=$v; done <"$out"
  if [ "$rc" != 0 ] || [ -z "${R[$name.ready.metadata_unix_us]:-}" ]; then
    R[$name.failed]=1
    warn "$name: no Metadata answer from the broker: $(head -n 3 "$WORK/$name.err")"
    return 1
  fi
  R[$name.tcp_ms]=$(us_to_ms "${R[$name.ready.tcp_unix_us]}" "$t0")
  R[$name.metadata_ms]=$(us_to_ms "${R[$name.ready.metadata_unix_us]}" "$t0")
  R[$name.topics]=${R[$name.ready.topics]:-}
}

# stop_broker NAME: SIGTERM, then up to 30 s for a clean exit; sets R[NAME.stop_ms] and
# R[NAME.stop_rc]. A broker that already died is left alone.
stop_broker() {
  local name=$1 t0 t1 rc=
  if [ -z "$BPID" ]; then
    R[$name.stop_ms]="n/a (broker had died)"
    return
  fi
  t0=$EPOCHREALTIME
  kill -TERM "$BPID" 2>/dev/null || true # it may have exited just now; wait tells
  for _ in $(seq 300); do
    if ! kill -0 "$BPID" 2>/dev/null; then
      wait "$BPID" && rc=0 || rc=$?
      break
    fi
    sleep 0.1
  done
  t1=$EPOCHREALTIME
  if [ -z "$rc" ]; then
    fail "$name: broker ignored SIGTERM for 30 s; killed"
    kill -KILL "$BPID" 2>/dev/null || true
    R[$name.stop_ms]="> 30000"
    R[$name.stop_rc]=killed
  else
    R[$name.stop_ms]=$(printf '%.0f' "$(calc "($t1 - $t0) * 1000")")
    R[$name.stop_rc]=$rc
    [ "$rc" = 0 ] || fail "$name: broker exited with status $rc after SIGTERM"
  fi
  BPID=
}

log "starting fjord on a fresh data directory"
mkdir -p "$DATA"
BROKER_FLAGS=()
[ "${BENCH_FSYNC:-0}" = 1 ] && BROKER_FLAGS+=(--log-flush-interval-messages 1)
if ! start_broker start 30 "${BROKER_FLAGS[@]}"; then
  warn "broker did not answer within 30 s; log:"
  cat "$BLOG" >&2
  exit 1
fi
STARTUP_MS=${R[start.tcp_ms]}
sleep 1 # let startup allocations settle before calling it idle
IDLE_RSS_KB=$(proc_kb VmRSS)
R[start.peak_rss_kb]=$(proc_kb VmHWM)
warn "startup ${STARTUP_MS} ms to TCP accept, ${R[start.metadata_ms]} ms to Metadata; idle RSS $((IDLE_RSS_KB / 1024)) MiB"

# run_phase NAME fjord-bench-args...: one benchmark step with the broker's CPU time and
# peak RSS over exactly that step. Writing 5 to clear_refs resets VmHWM (Linux >= 4.0),
# so VmHWM afterwards is the peak during the step, with no sampling gaps. If the broker
# dies, the step fails, BPID is cleared and later steps on that broker fail at once, so
# the report still comes out.
run_phase() {
  local name=$1
  shift
  PHASES+=("$name")
  if [ -z "$BPID" ]; then
    fail "$name (broker not running)"
    R[$name.failed]=1
    return
  fi
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
    R[$name.failed]=1
    tail -n 50 "$BLOG" >&2
    wait "$BPID" 2>/dev/null || true
    BPID=
    return
  fi
  c1=$(cpu_secs)
  R[$name.cpu_s]=$(printf '%.1f' "$(calc "$c1 - $c0")")
  R[$name.peak_rss_kb]=$(proc_kb VmHWM)
  R[$name.peak_rss_mib]=$((${R[$name.peak_rss_kb]:-0} / 1024))
}

# ---------------------------------------------------------------------------------------
PRODUCED_BYTES=0
for acks in 1 all; do
  for size in 1024 100; do
    n=$N_100
    if [ "$size" = 1024 ]; then
      n=$N_1K_ACKSALL
      [ "$acks" = all ] || n=$N_1K_ACKS1
    fi
    topic=bench-${size}b-acks-$acks
    # Each throughput phase starts with no dirty page cache: the kernel throttles writers
    # to the disk's speed once several GB are dirty, and that backlog is the earlier
    # phases' (sustained produce above the disk reference is not possible on any broker).
    sync
    run_phase "produce-$size-$acks" produce --topic "$topic" -n "$n" -s "$size" -k "$PARTITIONS" --acks "$acks"
    PRODUCED_BYTES=$((PRODUCED_BYTES + ${R[produce-$size-$acks.produce.bytes]:-0}))
    run_phase "consume-$size-$acks" consume --topic "$topic"
  done
done

# Latency targets are stated at half the maximum throughput: take half the 1 KiB acks=1
# produce rate just measured, for both e2e phases.
E2E_RATE=$E2E_FALLBACK_RATE
E2E_RATE_NOTE="fallback rate: produce-1024-1 gave no figure"
max_rps=${R[produce-1024-1.produce.records_per_s]:-}
if [ "${R[produce-1024-1.failed]:-0}" != 1 ] && awk -v r="$max_rps" 'BEGIN { exit !(r + 0 >= 2) }'; then
  E2E_RATE=$(awk -v r="$max_rps" 'BEGIN { printf "%.0f", r / 2 }')
  E2E_RATE_NOTE="half of produce-1024-1's $max_rps rec/s"
fi
warn "e2e rate: $E2E_RATE msg/s ($E2E_RATE_NOTE)"
# The latency targets hold at half the maximum rate, measured with the throughput phases'
# linger.ms=5 (at that rate the client, on the same two cores, cannot keep up with smaller
# batches: with linger.ms=1 its queue backs up and the latency is its own). A third run
# at a quarter of the maximum with linger.ms=1 shows the latency when the cores are not
# saturated. Before each, the kernel writes back what earlier phases left dirty in the
# page cache, or the phase measures writeback throttling of data written earlier.
E2E_LOW_RATE=$(awk -v r="$E2E_RATE" 'BEGIN { printf "%.0f", r / 2 }')
for spec in "1 $E2E_RATE $E2E_LINGER_MS e2e-1" "all $E2E_RATE $E2E_LINGER_MS e2e-all" \
  "1 $E2E_LOW_RATE 1 e2e-1-quarter"; do
  read -r acks rate linger name <<<"$spec"
  sync
  run_phase "$name" e2e --topic "bench-$name" -k "$PARTITIONS" --rate "$rate" \
    --duration-secs "$E2E_SECS" -s 1024 --acks "$acks" --linger-ms "$linger"
  R[$name.linger]=$linger
  R[$name.acks]=$acks
  R[$name.rate]=$rate
  PRODUCED_BYTES=$((PRODUCED_BYTES + ${R[$name.e2e.sent]:-0} * 1024))
done

DISK_USED=$(disk_bytes)
TOTAL_CPU=n/a
[ -z "$BPID" ] || TOTAL_CPU=$(printf '%.1f' "$(cpu_secs)")

log "stopping fjord (SIGTERM)"
stop_broker stop
DISK_USED_AFTER_STOP=$(disk_bytes)

# ---------------------------------------------------------------------------------------
# Restart on the data just written, now with a flush before every ack: the restart time
# with GBs on disk, then produce throughput when every ack waits for a flush.
log "restarting fjord on the same data directory with --log-flush-interval-messages 1"
printf '\n===== bench.sh: restart on the same data directory =====\n' >>"$BLOG"
RESTART_CPU=n/a
if start_broker restart "$PHASE_TIMEOUT" --log-flush-interval-messages 1; then
  warn "restart: ${R[restart.tcp_ms]} ms to TCP accept, ${R[restart.metadata_ms]} ms to Metadata (${R[restart.topics]:-?} topics)"
  sleep 1
  R[restart.idle_rss_kb]=$(proc_kb VmRSS)
  # Not reset before: this is the peak over the whole start-up, recovery included.
  R[restart.peak_rss_kb]=$(proc_kb VmHWM)
  R[restart.cpu_s]=$(printf '%.1f' "$(cpu_secs)")
  sync
  run_phase produce-1024-all-flush produce --topic bench-1024b-acks-all-flush -n "$N_FLUSH" -s 1024 \
    -k "$PARTITIONS" --acks all
  [ -z "$BPID" ] || RESTART_CPU=$(printf '%.1f' "$(cpu_secs)")
else
  fail "restart on existing data"
  tail -n 20 "$BLOG" >&2
  R[produce-1024-all-flush.failed]=1
fi
FLUSH_BYTES=${R[produce-1024-all-flush.produce.bytes]:-0}
if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
  log "stopping fjord again (SIGTERM)"
  stop_broker stop2
else
  BPID=
  R[stop2.stop_ms]="n/a (not running)"
fi
DISK_FINAL=$(disk_bytes)
PRODUCED_TOTAL=$((PRODUCED_BYTES + FLUSH_BYTES))

# Peak RSS over both broker processes: every phase, the first start and the whole restart.
PEAK_RSS_KB=0
for p in start restart "${PHASES[@]}"; do
  v=${R[$p.peak_rss_kb]:-0}
  [ "$v" -gt "$PEAK_RSS_KB" ] && PEAK_RSS_KB=$v
done

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

gb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
max_kb() { # max of R[PHASE.peak_rss_kb] over the given phases
  local p m=0
  for p in "$@"; do [ "${R[$p.peak_rss_kb]:-0}" -gt "$m" ] && m=${R[$p.peak_rss_kb]}; done
  echo "$m"
}
MAIN_PHASES=()
for p in "${PHASES[@]}"; do [ "$p" = produce-1024-all-flush ] || MAIN_PHASES+=("$p"); done
produce_row() { # phase label
  local p=$1
  echo "| $2, $(num "$(val $p.produce.records)") records$(status $p) | $(num "$(val $p.produce.records_per_s)") rec/s, $(val $p.produce.mb_per_s) MB/s | $(pct "$(val $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback, $(pct "$(val $p.produce.mb_per_s)" "$DISK_MBPS") of disk | $(val $p.produce.lat_p50_ms) / $(val $p.produce.lat_p99_ms) | $(val $p.cpu_s) | $(val $p.produce.client_cpu_s) | $(val $p.peak_rss_mib) |"
}
# verdict VALUE OP LIMIT [STEP]: met or NOT met; a failed step or a missing figure never
# counts as met.
verdict() {
  if [ -n "${4:-}" ] && [ "${R[$4.failed]:-0}" = 1 ]; then echo "**NOT met** (step failed)"; return; fi
  case $1 in '' | n/a) echo "**NOT met** (no figure)"; return ;; esac
  awk -v v="$1" -v op="$2" -v l="$3" \
    'BEGIN { ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print (ok ? "met" : "**NOT met**") }'
}
# Latency targets hold at half the maximum rate; say so when the e2e phase did not get
# there (client too slow to send it, or the fallback rate).
rate_note() { # e2e phase
  local got
  got=$(val "$1.e2e.achieved_rate")
  case $E2E_RATE_NOTE in fallback*) echo " ($E2E_RATE_NOTE)"; return ;; esac
  awk -v g="$got" -v w="$E2E_RATE" 'BEGIN { if (g != "n/a" && g + 0 < 0.95 * w) printf " (asked %d msg/s: load short of half the max)", w }'
}

{
  echo
  echo "Fjord benchmark — $(date -u +%Y-%m-%d), $(nproc) cores, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), BENCH_SCALE=$SCALE$([ "${BENCH_FSYNC:-0}" = 1 ] && echo ', fsync per message'), $PARTITIONS partitions, linger.ms=5, batch.size=1000000, no compression, client and broker on the same host"
  echo
  echo "| Figure | Value | vs machine reference | Latency p50 / p99 (ms) | Broker CPU (s) | Client CPU (s) | Broker peak RSS (MiB) |"
  echo "|---|---|---|---|---|---|---|"
  echo "| Reference: loopback TCP ($LOOPBACK_HOW) | ${LOOPBACK_MBPS:-n/a} MB/s | 100% | | | | |"
  echo "| Reference: sequential disk write ($DISK_HOW) | ${DISK_MBPS:-n/a} MB/s | 100% | | | | |"
  echo "| Reference: page cache write, cold (dd 1 GiB into never-used guest RAM) | ${PAGECACHE_COLD_MBPS:-n/a} MB/s | | | | | |"
  echo "| Reference: page cache write, warm (dd 1 GiB after writing and deleting $WARM_GB GiB) | ${PAGECACHE_WARM_MBPS:-n/a} MB/s | | | | | |"
  echo "| Startup on an empty data dir: spawn to first accepted TCP connection / first Metadata answer | $(val start.tcp_ms) / $(val start.metadata_ms) ms | | | | | |"
  echo "| Idle RSS after start | $(mib $((IDLE_RSS_KB * 1024))) MiB | | | | | |"
  for acks in 1 all; do
    for size in 1024 100; do
      produce_row "produce-$size-$acks" "Produce $(label_size $size), acks=$acks"
      p=consume-$size-$acks
      echo "| Consume $(label_size $size) (acks=$acks topic), $(num "$(val $p.consume.records)") records$(status $p) | $(num "$(val $p.consume.records_per_s)") rec/s, $(val $p.consume.mb_per_s) MB/s | $(pct "$(val $p.consume.mb_per_s)" "$LOOPBACK_MBPS") of loopback | | $(val $p.cpu_s) | $(val $p.consume.client_cpu_s) | $(val $p.peak_rss_mib) |"
    done
  done
  for p in e2e-1 e2e-all e2e-1-quarter; do
    echo "| End-to-end latency, acks=$(val $p.acks), $(num "$(val $p.e2e.achieved_rate)") msg/s x 1 KiB, linger.ms=$(val $p.linger), for ${E2E_SECS} s (asked $(num "$(val $p.rate)")$([ "$p" = e2e-1-quarter ] && echo ": a quarter of the max" || echo ": $E2E_RATE_NOTE"))$(status $p) | $(num "$(val $p.e2e.received)") of $(num "$(val $p.e2e.sent)") received | | $(val $p.e2e.lat_p50_ms) / $(val $p.e2e.lat_p99_ms) (ack $(val $p.e2e.ack_p50_ms) / $(val $p.e2e.ack_p99_ms)) | $(val $p.cpu_s) | $(val $p.e2e.client_cpu_s) | $(val $p.peak_rss_mib) |"
  done
  echo "| Disk usage of data dir (before / after shutdown) vs bytes produced | $(mib "$DISK_USED") / $(mib "$DISK_USED_AFTER_STOP") MiB for $(mib "$PRODUCED_BYTES") MiB of values | $(ratio "$DISK_USED_AFTER_STOP" "$PRODUCED_BYTES")x of produced | | | | |"
  echo "| Broker totals over the main run | CPU $TOTAL_CPU s | | | $TOTAL_CPU | | $(mib $(($(max_kb start "${MAIN_PHASES[@]}") * 1024))) |"
  echo "| Shutdown on SIGTERM after the main run | $(val stop.stop_ms) ms, exit status $(val stop.stop_rc) | | | | | |"
  echo "| Restart on the same data dir ($(mib "$DISK_USED_AFTER_STOP") MiB) with --log-flush-interval-messages 1: spawn to first accepted TCP connection / first Metadata answer ($(val restart.topics) topics listed)$(status restart) | $(val restart.tcp_ms) / $(val restart.metadata_ms) ms | | | $(val restart.cpu_s) (start-up + 1 s idle) | | $(mib $((${R[restart.peak_rss_kb]:-0} * 1024))) (start-up incl. recovery) |"
  echo "| Idle RSS after restart | $(mib $((${R[restart.idle_rss_kb]:-0} * 1024))) MiB | | | | | |"
  produce_row produce-1024-all-flush "Produce 1 KiB, acks=all, flush per message (restarted broker)"
  echo "| Disk usage after the flush run and second shutdown vs all bytes produced | $(mib "$DISK_FINAL") MiB for $(mib "$PRODUCED_TOTAL") MiB of values | $(ratio "$DISK_FINAL" "$PRODUCED_TOTAL")x of produced | | | | |"
  echo "| Restarted broker totals | CPU $RESTART_CPU s | | | $RESTART_CPU | | $(mib $(($(max_kb restart produce-1024-all-flush) * 1024))) |"
  echo "| Shutdown on SIGTERM after the flush run | $(val stop2.stop_ms) ms, exit status $(val stop2.stop_rc) | | | | | |"
  echo "| Broker log error/warning/panic lines (both runs) | $LOG_PROBLEMS | | | | | |"

  echo
  echo "Targets (2 cores, client on the same cores; MB = 10^6 bytes; RSS limits read as MiB)"
  echo
  echo "| Target | Required | Measured | Fraction of machine reference | Met? |"
  echo "|---|---|---|---|---|"
  p=produce-1024-1
  echo "| Produce 1 KiB records, $PARTITIONS partitions, acks=1 | ≥ $T_PRODUCE_1K_ACKS1_MBPS MB/s | $(val $p.produce.mb_per_s) MB/s | $(pct "$(val $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(val $p.produce.mb_per_s)" ">=" "$T_PRODUCE_1K_ACKS1_MBPS" $p) |"
  p=produce-1024-all
  echo "| Produce 1 KiB records, $PARTITIONS partitions, acks=all | ≥ $T_PRODUCE_1K_ACKSALL_MBPS MB/s | $(val $p.produce.mb_per_s) MB/s | $(pct "$(val $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(val $p.produce.mb_per_s)" ">=" "$T_PRODUCE_1K_ACKSALL_MBPS" $p) |"
  p=produce-100-1
  echo "| Produce 100 B records, $PARTITIONS partitions, acks=1 | ≥ $(num $T_PRODUCE_100_RPS) rec/s | $(num "$(val $p.produce.records_per_s)") rec/s ($(val $p.produce.mb_per_s) MB/s) | $(pct "$(val $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(val $p.produce.records_per_s)" ">=" "$T_PRODUCE_100_RPS" $p) |"
  p=consume-1024-1
  echo "| Consume from the start of a $(gb "${R[consume-1024-1.consume.bytes]:-0}") GB topic (1 KiB records) | ≥ $(num $T_CONSUME_MBPS) MB/s | $(val $p.consume.mb_per_s) MB/s | $(pct "$(val $p.consume.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(val $p.consume.mb_per_s)" ">=" "$T_CONSUME_MBPS" $p) |"
  for acks in 1 all; do
    p=e2e-$acks
    echo "| Produce (ack) latency p99 at half the max 1 KiB rate, acks=$acks | ≤ $T_PRODUCE_P99_MS ms | $(val $p.e2e.ack_p99_ms) ms at $(num "$(val $p.e2e.achieved_rate)") msg/s$(rate_note $p) | | $(verdict "$(val $p.e2e.ack_p99_ms)" "<=" "$T_PRODUCE_P99_MS" $p) |"
    echo "| End-to-end latency p99 at half the max 1 KiB rate, acks=$acks | ≤ $T_E2E_P99_MS ms | $(val $p.e2e.lat_p99_ms) ms at $(num "$(val $p.e2e.achieved_rate)") msg/s$(rate_note $p) | | $(verdict "$(val $p.e2e.lat_p99_ms)" "<=" "$T_E2E_P99_MS" $p) |"
  done
  p=produce-1024-all-flush
  echo "| Produce 1 KiB records, acks=all, --log-flush-interval-messages 1 | ≥ $T_FLUSH_MBPS MB/s | $(val $p.produce.mb_per_s) MB/s | $(pct "$(val $p.produce.mb_per_s)" "$DISK_MBPS") of disk, $(pct "$(val $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(val $p.produce.mb_per_s)" ">=" "$T_FLUSH_MBPS" $p) |"
  echo "| Restart on $(gb "$DISK_USED_AFTER_STOP") GB of data: spawn to first Metadata answer | ≤ $(num $T_RESTART_MS) ms | $(val restart.metadata_ms) ms (first TCP accept at $(val restart.tcp_ms) ms) | | $(verdict "$(val restart.metadata_ms)" "<=" "$T_RESTART_MS" restart) |"
  echo "| Startup on an empty data dir: spawn to first accepted connection | ≤ $T_STARTUP_MS ms | $(val start.tcp_ms) ms | | $(verdict "$(val start.tcp_ms)" "<=" "$T_STARTUP_MS") |"
  echo "| Broker RSS idle (after start) | ≤ $T_IDLE_RSS_MIB MiB | $(mib $((IDLE_RSS_KB * 1024))) MiB | | $(verdict "$(mib $((IDLE_RSS_KB * 1024)))" "<=" "$T_IDLE_RSS_MIB") |"
  echo "| Broker peak RSS (VmHWM) over all phases, both runs | ≤ $T_PEAK_RSS_MIB MiB | $(mib $((PEAK_RSS_KB * 1024))) MiB | | $(verdict "$(mib $((PEAK_RSS_KB * 1024)))" "<=" "$T_PEAK_RSS_MIB") |"
  echo "| Disk usage vs bytes produced (after both runs) | ≤ ${T_DISK_RATIO}x | $(ratio "$DISK_FINAL" "$PRODUCED_TOTAL")x ($(mib "$DISK_FINAL") MiB for $(mib "$PRODUCED_TOTAL") MiB) | | $(verdict "$(ratio "$DISK_FINAL" "$PRODUCED_TOTAL")" "<=" "$T_DISK_RATIO") |"
} | tee "$BENCH_TARGET/last-results.md"

if [ ${#FAILED[@]} -gt 0 ]; then
  warn "failed steps: ${FAILED[*]}"
  exit 1
fi
exit 0
