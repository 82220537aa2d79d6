#!/usr/bin/env bash
# Side-by-side benchmark of Fjord and Apache Kafka 4.3.0 on this machine.
#
# Builds the broker and scripts/bench (fjord-bench, a librdkafka load generator), measures
# the machine's loopback TCP, page cache and sequential disk write speed, then runs the same
# phases against each broker in turn, with the same fjord-bench binary and parameters, one
# broker at a time (the other is not running), each on a fresh data dir in the same work
# directory (same disk):
#   - start-up: spawn -> first accepted TCP connection and -> first Metadata answer to a
#     librdkafka client, measured the same way for both (the probe runs before the spawn and
#     polls every millisecond). Kafka's storage is formatted first (kafka-storage format, a
#     JVM start of its own), timed separately and not part of its start-up figure.
#   - idle RSS IDLE_SETTLE_S seconds after the first Metadata answer (/proc/PID/status VmRSS
#     of the broker process: the JVM for Kafka);
#   - a warm-up that is not reported (produce and consume 300k x 1 KiB and 300k x 100 B
#     records, at least 100k each), so Kafka's JIT has compiled the hot paths;
#   - produce 1 KiB and 100 B records with acks=1 and acks=all, each followed by a consume of
#     the whole topic; then du of the data dir against the value bytes produced so far;
#   - ack (send -> delivery report) and end-to-end (send -> consumed) latency of 1 KiB
#     records at fixed rates (20k and 100k msg/s) and at half of that broker's own measured
#     1 KiB acks=1 maximum, each with acks=1 and acks=all; the broker that runs second also
#     at the first one's half-max rate, so one pair of rows compares the same load;
#   - peak RSS (VmHWM, reset before each phase) over all of it, broker CPU per phase, and the
#     SIGTERM shutdown time.
# For Fjord only, it then restarts Fjord on the data just written with a flush before every
# ack and measures the restart time and produce throughput with flushing; that run feeds the
# Fjord targets table (the project's performance targets), printed after the comparison.
#
# Kafka runs from the jars of scripts/setup-kafka.sh via `scripts/kafka-ref.sh prepare --stock`
# and `launch`: Kafka's built-in defaults except what a single loopback KRaft node needs
# (roles, node id, voters, listeners, log dir, replication factor / min ISR 1 of the internal
# topics), and the JVM options of Kafka's own kafka-server-start.sh with the heap
# BENCH_KAFKA_HEAP (default 1g, i.e. the script's -Xmx1G -Xms1G). The effective
# server.properties and JVM options are printed with the results.
#
# Every step has a time limit and the whole run another (BENCH_TOTAL_TIMEOUT); on any exit
# the brokers are stopped and the work directory removed. The machine is shared: before each
# phase the script waits, within a budget, until the rest of the machine is nearly idle, and
# it records for every phase the load average before and after and the CPU time everything
# other than broker and load generator used meanwhile, so a busy neighbour shows.
#
# Usage (on this shared machine, under the build lock and the heavy-work lock, so no build
# or test overlaps a measurement):
#   flock /tmp/fjord-heavy.lock flock /tmp/fjord-cargo.lock bash scripts/bench.sh
#   At BENCH_SCALE=1 the whole run takes about 6 minutes on the project's 2-core VM once the
#   binaries are built (the first librdkafka build takes a few minutes with -j 1). Per broker
#   it writes about 3.6 GB of record values in fixed-count phases (the 1 KiB acks=1 topic
#   alone is 2 GB; the consume figure reads it), plus the e2e phases: 10 s each, i.e.
#   2 x 0.2 GB and 2 x 1 GB at the two fixed rates, 2 x 10 s at half the broker's max and,
#   for the second broker, 2 x 10 s at the first one's half max; Fjord's flush run 0.5 GB
#   more. The page cache warm-up writes and deletes 14 GiB first. BENCH_SCALE=0.1 takes
#   about 2.5 minutes.
# Environment:
#   BENCH_SCALE=0.1        scale every record count, the disk reference and warm-up sizes
#                          and the e2e duration (default 1; e2e phases last at least 3 s)
#   BENCH_BROKERS="fjord"  which brokers, in this order (default "kafka fjord"); the
#                          comparison table then shows n/a for the missing one
#   BENCH_KAFKA_HEAP=1g    Kafka's heap, -Xms and -Xmx (default 1g, Kafka's own default)
#   BENCH_RATES="20000 100000"  the fixed e2e rates, msg/s (half the max is always added)
#   BENCH_JOBS=1           cargo -j for both builds (default 1: the machine is shared)
#   BENCH_BUILD=0          do not run cargo; use the binaries already built (fjord in
#                          ${CARGO_TARGET_DIR:-target}/release, fjord-bench in target/bench)
#   FJORD_CACHE=/path      where the Kafka jars are (default .cache), as for the tests
#   BENCH_FSYNC=1          start Fjord's first run with --log-flush-interval-messages 1 too
#                          (the restarted Fjord always runs with it)
#   BENCH_KEEP=1           keep the work directory (data dirs, logs) instead of deleting it
#   BENCH_TMPDIR=/path     where the work directory goes (default /tmp); the disk reference
#                          and both brokers' data dirs are there, so put it on the disk you
#                          care about
#   BENCH_PHASE_TIMEOUT=600  seconds any single benchmark step may take
#   BENCH_TOTAL_TIMEOUT=5400 seconds the whole script may take, builds included
#   BENCH_WARM_GB=14       GiB written and deleted before the phases so the page cache is
#                          backed by the hypervisor (default 14 x BENCH_SCALE; 0 = cold VM)
#   BENCH_QUIET_CORES=0.5  before a phase, wait until the machine uses less than this many
#                          cores (1 s sample, our idle broker included) ...
#   BENCH_QUIET_BUDGET=300 ... but wait at most this many seconds over the whole run
#                          (0: never wait; the busy figure is still recorded)
#   BENCH_NOISY_CORES=0.25 a measured phase during which everything else used more than
#                          this many cores on average is run once more, and the less
#                          disturbed run is reported (BENCH_RETRY_DISTURBED=0: never)
#
# Exit status: 0 when every step ran, whatever the figures (a target that is not met does
# not fail the run); non-zero if a step failed (build, broker start/stop, a benchmark run
# erroring or timing out). Steps after a failed benchmark still run so one bad phase does
# not hide the others.
#
# The benchmarks talk to 127.0.0.1 only (installing a missing tool uses apt, as set up on
# the machine). The tables are printed to stdout and kept in target/bench/last-results.md;
# the broker logs in target/bench/last-broker.log (Fjord, both runs) and
# target/bench/last-kafka.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCALE=${BENCH_SCALE:-1}
JOBS=${BENCH_JOBS:-1}
PHASE_TIMEOUT=${BENCH_PHASE_TIMEOUT:-600}
TOTAL_TIMEOUT=${BENCH_TOTAL_TIMEOUT:-5400}
read -r -a BROKERS <<<"${BENCH_BROKERS:-kafka fjord}"
KAFKA_HEAP=${BENCH_KAFKA_HEAP:-1g}
read -r -a FIXED_RATES <<<"${BENCH_RATES:-20000 100000}"
PARTITIONS=6
IDLE_SETTLE_S=5
BENCH_TARGET=$ROOT/target/bench
BENCH_BIN=$BENCH_TARGET/release/fjord-bench
FJORD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/fjord
KAFKA_REF=$ROOT/scripts/kafka-ref.sh

log() { printf '\n== %s  %s   [load %s]\n' "$(date -u +%H:%M:%S)" "$*" "$(loadavg)" >&2; }
warn() { printf 'bench.sh: %s\n' "$*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

for b in "${BROKERS[@]}"; do
  case $b in kafka | fjord) ;; *) warn "BENCH_BROKERS: unknown broker '$b' (kafka, fjord)"; exit 2 ;; esac
done
has_broker() { local b; for b in "${BROKERS[@]}"; do [ "$b" = "$1" ] && return 0; done; return 1; }

# Floating-point helpers; bash only does integers.
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
scaled() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s + 0.5); if (v < 1) v = 1; print v }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.1f%%", 100 * a / b }'; }

# The 1 KiB acks=1 topic is the one the consume target reads: 2 GB at scale 1. The other
# phases are smaller to keep the run short.
N_1K_ACKS1=$(scaled 2000000)
N_1K_ACKSALL=$(scaled 1000000)
N_100=$(scaled 3000000)
N_FLUSH=$(scaled 500000)
# Warm-up records per size, at least 100,000 so a JVM's JIT has seen the hot paths.
N_WARM=$(awk -v s="$SCALE" 'BEGIN { v = int(300000 * s + 0.5); if (v < 100000) v = 100000; print v }')
E2E_SECS=$(awk -v s="$SCALE" 'BEGIN { d = 10 * s; if (d < 3) d = 3; print d }')
# The half-max e2e phases run at half the broker's measured produce-1024-1 rate (the latency
# targets are stated at half the maximum throughput); this is only used when that failed.
E2E_FALLBACK_RATE=20000
# The throughput phases' linger.ms, for every e2e phase too.
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
# compiler, make, pkg-config, zlib and OpenSSL headers (fjord-bench's TLS), not cmake. iperf3 gives the loopback
# reference; without it a short python socket test stands in. fio gives the disk
# reference; without it dd stands in. Kafka needs java (17+) and its jars, which
# kafka-ref.sh resolves through scripts/setup-kafka.sh if they are missing.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  # Try the existing package lists first: a full update is slow and usually unnecessary.
  $sudo apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q "$@" >/dev/null 2>&1; }
}

START_S=$SECONDS
LOAD_AT_START=$(loadavg)
log "checking tools"
missing=()
for c in cc c++ make pkg-config; do command -v "$c" >/dev/null || missing+=(build-essential pkg-config); done
dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
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
if has_broker kafka; then
  command -v java >/dev/null || { warn "java is required for the Kafka run (or BENCH_BROKERS=fjord)"; exit 1; }
  JAVA_VERSION=$(java -version 2>&1 | head -n 1)
fi

# ---------------------------------------------------------------------------------------
# Cleanup and the overall time limit. Children that can outlive a step (the load generator,
# a broker, the watchdog) are tracked by pid and stopped here, whatever ends the script.
mkdir -p "${BENCH_TMPDIR:-/tmp}" "$BENCH_TARGET"
WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/fjord-bench.XXXXXX")
BLOG=$WORK/broker.log
KDIR=$WORK/kafka
BPID=
CHILD=
IPERF_PID=
WATCHDOG=

# alive PID: the process exists and is not a zombie.
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -z "$WATCHDOG" ] || kill "$WATCHDOG" 2>/dev/null || true
  for p in "$CHILD" "$IPERF_PID"; do [ -z "$p" ] || kill -KILL "$p" 2>/dev/null || true; done
  if alive "$BPID"; then
    kill -TERM "$BPID" 2>/dev/null || true
    for _ in $(seq 100); do alive "$BPID" || break; sleep 0.1; done
    kill -KILL "$BPID" 2>/dev/null || true
  fi
  if [ -e "$KDIR" ]; then
    cp "$KDIR/node1/server.log" "$BENCH_TARGET/last-kafka.log" 2>/dev/null || true
    KAFKA_REF_DIR=$KDIR timeout 60 bash "$KAFKA_REF" stop >/dev/null 2>&1 || warn "kafka-ref.sh stop failed for $KDIR"
  fi
  [ -f "$BLOG" ] && cp "$BLOG" "$BENCH_TARGET/last-broker.log" 2>/dev/null
  if [ "${BENCH_KEEP:-0}" = 1 ]; then warn "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'warn "interrupted"; exit 130' INT TERM
# The watchdog TERMs this script; the trap above then runs as soon as the current wait ends
# (steps run in the background and are waited for, so that is at once).
(
  trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$TOTAL_TIMEOUT" &
  s=$!
  wait "$s"
  echo "bench.sh: total time limit of $TOTAL_TIMEOUT s reached; stopping" >&2
  kill -TERM $$ 2>/dev/null
) </dev/null >/dev/null &
WATCHDOG=$!

# bg_wait CMD...: run CMD in the background and wait for it, so a signal is handled at once.
bg_wait() {
  local rc=0
  "$@" &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=
  return "$rc"
}

# ---------------------------------------------------------------------------------------
if [ "${BENCH_BUILD:-1}" = 1 ]; then
  log "building fjord (release) and fjord-bench"
  (cd "$ROOT" && nice -n 10 cargo build --release -j "$JOBS" --bin fjord) || { warn "fjord build failed"; exit 1; }
  nice -n 10 cargo build --release -j "$JOBS" --manifest-path "$ROOT/scripts/bench/Cargo.toml" \
    --target-dir "$BENCH_TARGET" || { warn "fjord-bench build failed"; exit 1; }
fi
for f in "$FJORD_BIN" "$BENCH_BIN"; do [ -x "$f" ] || { warn "$f is missing (build it, or drop BENCH_BUILD=0)"; exit 1; }; done
# Kafka's jars; a no-op when they are there.
if has_broker kafka; then
  KAFKA_CLIENT_VERSIONS='' bash "$ROOT/scripts/setup-kafka.sh" >&2 || { warn "setup-kafka.sh failed"; exit 1; }
fi

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
# Broker control, shared by both brokers. B is the broker of the current run (kafka or
# fjord), BPID its process (the JVM for Kafka), PORT its listener, DATA its data dir.
declare -A R # results: R[BROKER.PHASE.KEY]=value
declare -A PHASE_LIST # R-style list of phase names per broker, in order
B=
PORT=
DATA=

proc_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$BPID/status" 2>/dev/null; }
CLK_TCK=$(getconf CLK_TCK)
cpu_secs() { # utime + stime of the broker, fields 14 and 15 of /proc/PID/stat
  local stat rest
  stat=$(<"/proc/$BPID/stat")
  rest=${stat##*) } # the command name may contain spaces; skip past it
  read -r -a f <<<"$rest"
  calc "(${f[11]} + ${f[12]}) / $CLK_TCK"
}
# CPU seconds the whole machine spent busy (user, nice, system, irq, softirq), over all
# cores; steal is left out. Interrupt and softirq time is in because, with tick-based
# accounting, a tick that lands in a softirq (loopback networking runs there) is counted as
# softirq in /proc/stat but also charged to the stime of the process it interrupted: without
# it, broker + load generator CPU exceeded the machine's and "other" always came out 0.
machine_busy_secs() {
  awk -v t="$CLK_TCK" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / t; exit }' /proc/stat
}

# quiet_gate: the machine is shared; before a phase, wait (at most QUIET_BUDGET_S over the
# whole run) until everything on it uses less than QUIET_CORES cores over a 1 s sample.
# Our broker is idle then and the load generator not started, so what shows is mostly other
# people's work. Sets GATE_WAITED (s) and GATE_BUSY (cores in the last sample).
QUIET_CORES=${BENCH_QUIET_CORES:-0.5}
QUIET_BUDGET_S=${BENCH_QUIET_BUDGET:-300}
QUIET_SPENT_S=0
quiet_gate() {
  local m0 m1 n=0
  while :; do
    m0=$(machine_busy_secs)
    sleep 1
    m1=$(machine_busy_secs)
    GATE_BUSY=$(awk -v a="$m0" -v b="$m1" 'BEGIN { printf "%.2f", b - a }')
    awk -v b="$GATE_BUSY" -v q="$QUIET_CORES" 'BEGIN { exit !(b < q) }' && break
    if [ "$QUIET_SPENT_S" -ge "$QUIET_BUDGET_S" ]; then
      warn "machine busy (${GATE_BUSY} cores in use); quiet-wait budget of ${QUIET_BUDGET_S} s spent, going on"
      break
    fi
    [ "$n" -gt 0 ] || warn "machine busy (${GATE_BUSY} cores in use); waiting for it to calm down"
    n=$((n + 1))
    sleep 2
    QUIET_SPENT_S=$((QUIET_SPENT_S + 3))
  done
  GATE_WAITED=$((n * 3))
}
disk_bytes() { du -sB1 "$DATA" | awk '{ print $1 }'; }
us_to_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) / 1000 }'; }

# start_broker NAME TIMEOUT_S [fjord flags...]: spawn broker $B, listening on PORT, and time
# it with `fjord-bench ready`. The probe is started first and the broker only once the probe
# is polling, so the probe's own start-up (a librdkafka client, ~10 ms) is not charged to
# the broker; it polls every millisecond. Fjord is spawned here; Kafka by
# `kafka-ref.sh launch`, which notes the wall clock just before it spawns the JVM (its
# storage was formatted before, by prepare). Sets BPID and R[B.NAME.tcp_ms] /
# R[B.NAME.metadata_ms]: spawn -> first accepted TCP connection and spawn -> first
# Metadata answer to a librdkafka client. Returns non-zero if the broker did not answer
# within TIMEOUT_S (the broker may still be running then).
start_broker() {
  local name=$1 limit=$2 out=$WORK/$B.$1.ready t0 rpid rc=0 i k v lb
  shift 2
  quiet_gate
  R[$B.$name.quiet_wait_s]=$GATE_WAITED
  R[$B.$name.busy_before]=$GATE_BUSY
  lb=$(loadavg)
  timeout -s KILL $((limit + 30)) "$BENCH_BIN" --brokers "127.0.0.1:$PORT" --timeout-secs "$limit" \
    ready >"$out" 2>"$out.err" &
  rpid=$!
  CHILD=$rpid
  for ((i = 0; i < 3000; i++)); do
    grep -q '^ready.probing_unix_us=' "$out" 2>/dev/null && break
    kill -0 "$rpid" 2>/dev/null || break
    sleep 0.01
  done
  if [ "$B" = fjord ]; then
    t0=${EPOCHREALTIME/./}
    # Fjord reads FJORD_* variables as settings and rejects unknown ones: the harness's own
    # (FJORD_CACHE, FJORD_BIN) are not for it.
    env -u FJORD_CACHE -u FJORD_BIN "$FJORD_BIN" --listeners "PLAINTEXT://127.0.0.1:$PORT" --log-dirs "$DATA" "$@" >>"$BLOG" 2>&1 &
    BPID=$!
  else
    if ! KAFKA_REF_DIR=$KDIR bash "$KAFKA_REF" launch >"$WORK/kafka.launch" 2>&1; then
      cat "$WORK/kafka.launch" >&2
    fi
    t0=$(awk -F': ' '$1 == "spawned_unix_us" { print $2 }' "$WORK/kafka.launch")
    BPID=$(awk -F': ' '$1 == "pid" { print $2; exit }' "$WORK/kafka.launch")
  fi
  # A broker that exits during start-up ends the wait at once instead of at the timeout.
  while kill -0 "$rpid" 2>/dev/null; do
    if ! alive "$BPID"; then
      kill "$rpid" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  wait "$rpid" || rc=$?
  CHILD=
  while IFS='=' read -r k v; do R[$B.$name.$k]=$v; done <"$out"
  R[$B.$name.load_before]=$lb
  R[$B.$name.load_after]=$(loadavg)
  if [ "$rc" != 0 ] || [ -z "$t0" ] || [ -z "${R[$B.$name.ready.metadata_unix_us]:-}" ]; then
    R[$B.$name.failed]=1
    warn "$B $name: no Metadata answer from the broker: $(head -n 3 "$out.err")"
    return 1
  fi
  R[$B.$name.tcp_ms]=$(us_to_ms "${R[$B.$name.ready.tcp_unix_us]}" "$t0")
  R[$B.$name.metadata_ms]=$(us_to_ms "${R[$B.$name.ready.metadata_unix_us]}" "$t0")
  R[$B.$name.topics]=${R[$B.$name.ready.topics]:-}
}

# stop_broker NAME: SIGTERM, then up to 60 s for a clean exit; sets R[B.NAME.stop_ms] and
# R[B.NAME.stop_rc] (Kafka's JVM is not this shell's child: no exit status). A broker that
# already died is left alone.
stop_broker() {
  local name=$1 t0 t1 rc='' gone=0
  if [ -z "$BPID" ]; then
    R[$B.$name.stop_ms]="n/a (broker had died)"
    return
  fi
  t0=$EPOCHREALTIME
  kill -TERM "$BPID" 2>/dev/null || true # it may have exited just now; wait tells
  for _ in $(seq 600); do
    if ! alive "$BPID"; then gone=1; break; fi
    sleep 0.1
  done
  t1=$EPOCHREALTIME
  if [ "$B" = fjord ] && [ "$gone" = 1 ]; then wait "$BPID" && rc=0 || rc=$?; fi
  [ "$B" = fjord ] || rc=n/a
  if [ "$gone" = 0 ]; then
    fail "$B $name: broker ignored SIGTERM for 60 s; killed"
    kill -KILL "$BPID" 2>/dev/null || true
    R[$B.$name.stop_ms]="> 60000"
    R[$B.$name.stop_rc]=killed
  else
    R[$B.$name.stop_ms]=$(printf '%.0f' "$(calc "($t1 - $t0) * 1000")")
    R[$B.$name.stop_rc]=$rc
    case $rc in 0 | n/a) ;; *) fail "$B $name: broker exited with status $rc after SIGTERM" ;; esac
  fi
  BPID=
}

# run_phase NAME fjord-bench-args...: one benchmark step with the broker's CPU time and
# peak RSS over exactly that step. Writing 5 to clear_refs resets VmHWM (Linux >= 4.0),
# so VmHWM afterwards is the peak during the step, with no sampling gaps. Also notes the
# load average before and after, and the CPU time everything else on the machine used
# meanwhile (machine busy time minus broker minus load generator). If the broker dies, the
# step fails, BPID is cleared and later steps on that broker fail at once, so the report
# still comes out.
run_phase() {
  local name=$1 key rc=0
  shift
  PHASE_LIST[$B]+=" $name"
  if [ -z "$BPID" ]; then
    fail "$B $name (broker not running)"
    R[$B.$name.failed]=1
    return
  fi
  quiet_gate
  R[$B.$name.quiet_wait_s]=$GATE_WAITED
  R[$B.$name.busy_before]=$GATE_BUSY
  echo 5 >"/proc/$BPID/clear_refs" 2>/dev/null || true
  local c0 c1 m0 m1 t0 t1 out=$WORK/$B.$name.out
  log "$B $name: fjord-bench $*"
  R[$B.$name.load_before]=$(loadavg)
  c0=$(cpu_secs)
  m0=$(machine_busy_secs)
  t0=$EPOCHREALTIME
  bg_wait timeout -s KILL $((PHASE_TIMEOUT + 30)) "$BENCH_BIN" --brokers "127.0.0.1:$PORT" \
    --timeout-secs "$PHASE_TIMEOUT" "$@" >"$out" || rc=$?
  t1=$EPOCHREALTIME
  m1=$(machine_busy_secs)
  R[$B.$name.load_after]=$(loadavg)
  R[$B.$name.wall_s]=$(printf '%.1f' "$(calc "$t1 - $t0")")
  if [ "$rc" != 0 ]; then
    fail "$B $name"
    R[$B.$name.failed]=1
  fi
  while IFS='=' read -r key v; do R[$B.$name.$key]=$v; done <"$out"
  if ! alive "$BPID"; then
    fail "$B broker died during $name"
    R[$B.$name.failed]=1
    if [ "$B" = fjord ]; then tail -n 50 "$BLOG" >&2; wait "$BPID" 2>/dev/null || true
    else tail -n 50 "$KDIR/node1/server.log" >&2; fi
    BPID=
    return
  fi
  c1=$(cpu_secs)
  R[$B.$name.cpu_s]=$(printf '%.1f' "$(calc "$c1 - $c0")")
  R[$B.$name.peak_rss_kb]=$(proc_kb VmHWM)
  R[$B.$name.peak_rss_mib]=$((${R[$B.$name.peak_rss_kb]:-0} / 1024))
  local client=
  for key in produce e2e consume; do client=${client:-${R[$B.$name.$key.client_cpu_s]:-}}; done
  R[$B.$name.other_cpu_s]=$(awk -v m="$(calc "$m1 - $m0")" -v b="${R[$B.$name.cpu_s]}" -v c="${client:-0}" \
    'BEGIN { v = m - b - c; if (v < 0) v = 0; printf "%.1f", v }')
  warn "$B $name: ${R[$B.$name.wall_s]} s; broker CPU ${R[$B.$name.cpu_s]} s, load generator ${client:-?} s, everything else ${R[$B.$name.other_cpu_s]} s; load ${R[$B.$name.load_before]} -> ${R[$B.$name.load_after]}"
}

# A phase is disturbed when everything else on the machine used more than NOISY_CORES
# cores on average while it ran.
NOISY_CORES=${BENCH_NOISY_CORES:-0.25}
disturbed() {
  [ "${R[$B.$1.failed]:-0}" != 1 ] || return 1
  awk -v o="${R[$B.$1.other_cpu_s]:-0}" -v w="${R[$B.$1.wall_s]:-0}" -v t="$NOISY_CORES" \
    'BEGIN { exit !(w > 0 && o / w > t) }'
}
others_share() { awk -v o="${R[$B.$1.other_cpu_s]:-0}" -v w="${R[$B.$1.wall_s]:-0}" 'BEGIN { printf "%.2f", (w > 0 ? o / w : 0) }'; }
written() { echo $((${R[$B.$1.produce.bytes]:-0} + ${R[$B.$1.e2e.sent]:-0} * 1024)); } # value bytes a phase wrote

# rename_phase FROM TO: move a phase's results and its place in the phase list.
rename_phase() {
  local k
  for k in "${!R[@]}"; do
    if [[ $k == "$B.$1."* ]]; then
      R[$B.$2.${k#"$B.$1."}]=${R[$k]}
      unset "R[$k]"
    fi
  done
  local l="${PHASE_LIST[$B]} " # " a b c "
  l=${l/" $1 "/" $2 "}
  PHASE_LIST[$B]=${l% }
}

# measure NAME TOPIC MODE ARGS...: run_phase NAME MODE --topic TOPIC ARGS...; if it was
# disturbed, run it once more (a writing phase on a fresh topic, TOPIC-again, after a sync)
# and keep the less disturbed run under NAME; the other one stays in the phase table as
# NAME~2 (or NAME~1), not in the results. Sets PHASE_TOPIC, the topic of the kept run, and
# PHASE_BYTES, the value bytes both runs wrote. BENCH_RETRY_DISTURBED=0 turns this off.
measure() {
  local name=$1 topic=$2 mode=$3 topic2
  shift 3
  run_phase "$name" "$mode" --topic "$topic" "$@"
  PHASE_TOPIC=$topic
  PHASE_BYTES=$(written "$name")
  [ "${BENCH_RETRY_DISTURBED:-1}" = 1 ] && disturbed "$name" || return 0
  warn "$B $name: disturbed (others used $(others_share "$name") cores on average); running it again"
  rename_phase "$name" "$name~1"
  topic2=$topic
  if [ "$mode" != consume ]; then
    topic2=$topic-again
    sync
  fi
  run_phase "$name" "$mode" --topic "$topic2" "$@"
  PHASE_BYTES=$((PHASE_BYTES + $(written "$name")))
  PHASE_TOPIC=$topic2
  if [ "${R[$B.$name.failed]:-0}" = 1 ] || awk -v a="$(others_share "$name~1")" -v b="$(others_share "$name")" 'BEGIN { exit !(a < b) }'; then
    if [ "${R[$B.$name~1.failed]:-0}" != 1 ]; then
      rename_phase "$name" "$name~2"
      rename_phase "$name~1" "$name"
      PHASE_TOPIC=$topic
    fi
  fi
  warn "$B $name: kept the run on $PHASE_TOPIC"
}

# ---------------------------------------------------------------------------------------
# One broker's whole run: start, throughput phases, disk, latency phases, stop.
run_broker() {
  B=$1
  local size acks n topic rate name max_rps spec
  log "===== $B ====="
  R[$B.produced_bytes]=0
  if [ "$B" = fjord ]; then
    DATA=$WORK/fjord/data
    mkdir -p "$DATA"
    PORT=$(free_port)
    local flags=()
    [ "${BENCH_FSYNC:-0}" = 1 ] && flags+=(--log-flush-interval-messages 1)
    R[$B.format_ms]="n/a"
    if ! start_broker start 30 ${flags[@]+"${flags[@]}"}; then
      fail "fjord start"
      tail -n 30 "$BLOG" >&2
      return
    fi
  else
    log "kafka: writing the config and formatting the storage (kafka-storage format)"
    if ! KAFKA_REF_DIR=$KDIR KAFKA_REF_HEAP=$KAFKA_HEAP bash "$KAFKA_REF" prepare --stock >"$WORK/kafka.prepare" 2>&1; then
      cat "$WORK/kafka.prepare" >&2
      fail "kafka prepare (config, storage format)"
      return
    fi
    R[$B.format_ms]=$(awk -F': ' '$1 == "format_ms" { print $2 }' "$WORK/kafka.prepare")
    PORT=$(awk -F': ' '$1 == "bootstrap" { sub(/.*:/, "", $2); print $2 }' "$WORK/kafka.prepare")
    DATA=$KDIR/node1/data
    KAFKA_CONFIG=$(grep -v '^#' "$KDIR/node1/server.properties" | paste -sd' ')
    KAFKA_JVM=$(paste -sd' ' "$KDIR/java.args" | sed "s|@NODE@|<node dir>|")
    if ! start_broker start 120; then
      fail "kafka start"
      tail -n 30 "$KDIR/node1/server.log" >&2
      return
    fi
  fi
  warn "$B: ${R[$B.start.tcp_ms]} ms to TCP accept, ${R[$B.start.metadata_ms]} ms to Metadata"
  # Idle: a few seconds after the first answer, so start-up work (Kafka's JIT, its first
  # metadata snapshot) has settled; both brokers get the same wait.
  sleep "$IDLE_SETTLE_S"
  R[$B.idle_rss_kb]=$(proc_kb VmRSS)
  R[$B.start.peak_rss_kb]=$(proc_kb VmHWM)
  R[$B.start.cpu_s]=$(printf '%.1f' "$(cpu_secs)")
  warn "$B idle RSS $((${R[$B.idle_rss_kb]:-0} / 1024)) MiB"

  # Warm-up, not reported: the same produce and fetch paths once, so the JVM has compiled
  # them before the measured phases (Fjord gets the same). Its bytes are on disk, so they
  # count as produced in the disk figure.
  for size in 1024 100; do
    sync
    run_phase "warmup-produce-$size" produce --topic "bench-warmup-$size" -n "$N_WARM" -s "$size" -k "$PARTITIONS" --acks 1
    R[$B.produced_bytes]=$((${R[$B.produced_bytes]} + ${R[$B.warmup-produce-$size.produce.bytes]:-0}))
    run_phase "warmup-consume-$size" consume --topic "bench-warmup-$size"
  done

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
      measure "produce-$size-$acks" "$topic" produce -n "$n" -s "$size" -k "$PARTITIONS" --acks "$acks"
      R[$B.produced_bytes]=$((${R[$B.produced_bytes]} + PHASE_BYTES))
      measure "consume-$size-$acks" "$PHASE_TOPIC" consume
    done
  done
  # Disk bytes per produced value byte, after the produce phases (before the e2e phases).
  R[$B.disk_bytes]=$(disk_bytes)
  R[$B.disk_produced]=${R[$B.produced_bytes]}

  # Latency: fixed rates, the same for both brokers, then half of this broker's own max
  # (its produce-1024-1 rate; the latency targets are stated at half the max throughput).
  # Every phase: a fresh 6-partition topic, 1 KiB records, linger.ms=5 (the throughput
  # phases' setting), a consumer reading it meanwhile; the first second is not counted.
  # Before each, the kernel writes back what earlier phases left dirty in the page cache, or
  # the phase measures writeback throttling of data written earlier.
  R[$B.half_rate]=$E2E_FALLBACK_RATE
  R[$B.half_note]="fallback rate: produce-1024-1 gave no figure"
  max_rps=${R[$B.produce-1024-1.produce.records_per_s]:-}
  if [ "${R[$B.produce-1024-1.failed]:-0}" != 1 ] && awk -v r="$max_rps" 'BEGIN { exit !(r + 0 >= 2) }'; then
    R[$B.half_rate]=$(awk -v r="$max_rps" 'BEGIN { printf "%.0f", r / 2 }')
    R[$B.half_note]="half of produce-1024-1's $max_rps rec/s"
    R[$B.half_measured]=1
  fi
  warn "$B half-max e2e rate: ${R[$B.half_rate]} msg/s (${R[$B.half_note]})"
  # The brokers' half-max rates differ, so the half-max rows compare latencies at different
  # loads. The broker that runs second is also measured at the first one's half-max rate:
  # the same load for both (phase e2e-peer-ACKS).
  local rates=("${FIXED_RATES[@]}" half) b2
  for b2 in kafka fjord; do
    if [ "$b2" != "$B" ] && [ "${R[$b2.half_measured]:-0}" = 1 ]; then
      R[$B.peer]=$b2
      rates+=(peer)
    fi
  done
  for rate in "${rates[@]}"; do
    for acks in 1 all; do
      name=e2e-$rate-$acks
      spec=$rate
      [ "$rate" = half ] && spec=${R[$B.half_rate]}
      [ "$rate" = peer ] && spec=${R[${R[$B.peer]}.half_rate]}
      sync
      measure "$name" "bench-$name" e2e -k "$PARTITIONS" --rate "$spec" \
        --duration-secs "$E2E_SECS" -s 1024 --acks "$acks" --linger-ms "$E2E_LINGER_MS"
      R[$B.$name.rate]=$spec
      R[$B.$name.acks]=$acks
      R[$B.produced_all]=$((${R[$B.produced_all]:-${R[$B.produced_bytes]}} + PHASE_BYTES))
    done
  done
  R[$B.disk_bytes_all]=$(disk_bytes)
  R[$B.total_cpu_s]=n/a
  [ -z "$BPID" ] || R[$B.total_cpu_s]=$(printf '%.1f' "$(cpu_secs)")

  log "$B: stopping (SIGTERM)"
  stop_broker stop
  R[$B.disk_bytes_after_stop]=$(disk_bytes)

  # Peak RSS over the whole run: start-up and every phase (VmHWM is reset per phase).
  local p m=${R[$B.start.peak_rss_kb]:-0}
  for p in ${PHASE_LIST[$B]}; do
    [ "${R[$B.$p.peak_rss_kb]:-0}" -gt "$m" ] && m=${R[$B.$p.peak_rss_kb]}
  done
  R[$B.peak_rss_kb]=$m

  if [ "$B" = fjord ]; then
    fjord_restart
  else
    # The log goes before the directory does.
    cp "$KDIR/node1/server.log" "$BENCH_TARGET/last-kafka.log" 2>/dev/null || true
    cp "$KDIR/node1/kafkaServer-gc.log" "$BENCH_TARGET/last-kafka-gc.log" 2>/dev/null || true
    R[$B.log_problems]=$(grep -cE '^\[[^]]*\] (ERROR|WARN) ' "$KDIR/node1/server.log" || true)
    KAFKA_REF_DIR=$KDIR timeout 90 bash "$KAFKA_REF" stop >/dev/null 2>&1 || fail "kafka-ref.sh stop"
  fi
  # The next broker starts with this one's data gone (and its page cache freed).
  rm -rf "$WORK/fjord" "$KDIR"
  sync
}

# Fjord only: restart on the data just written, now with a flush before every ack: the
# restart time with GBs on disk, then produce throughput when every ack waits for a flush.
fjord_restart() {
  log "restarting fjord on the same data directory with --log-flush-interval-messages 1"
  printf '\n===== bench.sh: restart on the same data directory =====\n' >>"$BLOG"
  R[fjord.restart_total_cpu_s]=n/a
  if start_broker restart "$PHASE_TIMEOUT" --log-flush-interval-messages 1; then
    warn "restart: ${R[fjord.restart.tcp_ms]} ms to TCP accept, ${R[fjord.restart.metadata_ms]} ms to Metadata (${R[fjord.restart.topics]:-?} topics)"
    sleep 1
    R[fjord.restart.idle_rss_kb]=$(proc_kb VmRSS)
    # Not reset before: this is the peak over the whole start-up, recovery included.
    R[fjord.restart.peak_rss_kb]=$(proc_kb VmHWM)
    R[fjord.restart.cpu_s]=$(printf '%.1f' "$(cpu_secs)")
    sync
    run_phase produce-1024-all-flush produce --topic bench-1024b-acks-all-flush -n "$N_FLUSH" -s 1024 \
      -k "$PARTITIONS" --acks all
    [ -z "$BPID" ] || R[fjord.restart_total_cpu_s]=$(printf '%.1f' "$(cpu_secs)")
  else
    fail "fjord restart on existing data"
    tail -n 20 "$BLOG" >&2
    R[fjord.produce-1024-all-flush.failed]=1
  fi
  if alive "$BPID"; then
    log "stopping fjord again (SIGTERM)"
    stop_broker stop2
  else
    BPID=
    R[fjord.stop2.stop_ms]="n/a (not running)"
  fi
  R[fjord.disk_final]=$(disk_bytes)
  R[fjord.produced_total]=$((${R[fjord.produced_all]:-0} + ${R[fjord.produce-1024-all-flush.produce.bytes]:-0}))
  R[fjord.log_problems]=$(grep -ciE ' (ERROR|WARN) |panic' "$BLOG" || true)
  if [ "${R[fjord.log_problems]}" -gt 0 ]; then
    warn "fjord log has ${R[fjord.log_problems]} error/warning lines; first ones:"
    grep -iE ' (ERROR|WARN) |panic' "$BLOG" | head -n 20 >&2
  fi
}

for b in "${BROKERS[@]}"; do
  run_broker "$b"
done
LOAD_AT_END=$(loadavg)

# ---------------------------------------------------------------------------------------
# Report.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# Thousands separators via sed: mawk (Debian's default awk) lacks printf's ' flag.
num() { case $1 in '' | n/a) echo n/a; return ;; esac; printf '%.0f' "$1" | sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta'; }
gb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ran() { [ -n "${R[$1.start.ready.probing_unix_us]:-}" ]; } # ran BROKER: it was started
# bv BROKER PHASE KEY: a phase's figure, FAILED, or n/a.
bv() {
  ran "$1" || { echo n/a; return; }
  [ "${R[$1.$2.failed]:-0}" = 1 ] && { echo FAILED; return; }
  local x=${R[$1.$2.$3]:-}
  echo "${x:-n/a}"
}
kib_mib() { case $1 in '' | n/a) echo n/a ;; *) mib $(($1 * 1024)) ;; esac; }
# ratio_cell KAFKA FJORD: Fjord/Kafka for each " / "-separated part (leading numbers only).
ratio_cell() {
  awk -v k="$1" -v f="$2" 'BEGIN {
    nk = split(k, a, " / "); nf = split(f, b, " / ")
    if (nk != nf) { print "n/a"; exit }
    for (i = 1; i <= nk; i++) {
      ok = (a[i] ~ /^[0-9.]+/) && (b[i] ~ /^[0-9.]+/) && a[i] + 0 > 0
      out = out (i > 1 ? " / " : "") (ok ? sprintf("%.2f", b[i] / a[i]) : "n/a")
    }
    print out }'
}
row() { echo "| $1 | $2 | $3 | $(ratio_cell "$2" "$3") |"; } # row LABEL KAFKA FJORD
# lat BROKER PHASE PREFIX: "p50 / p99" of e2e.PREFIX_p50_ms / _p99_ms, with a note when the
# load generator sent less than 95% of the asked rate (the latency is then partly its own).
lat() {
  local a b got
  a=$(bv "$1" "$2" "e2e.$3_p50_ms" | two)
  b=$(bv "$1" "$2" "e2e.$3_p99_ms" | two)
  got=$(bv "$1" "$2" e2e.achieved_rate)
  echo "$a / $b$(awk -v g="$got" -v w="${R[$1.$2.rate]:-0}" 'BEGIN { if (g ~ /^[0-9]/ && g + 0 < 0.95 * w) printf " (sent %.0f/s)", g }')"
}
cpu_per_gb() { # BROKER PHASE
  local c bytes
  c=$(bv "$1" "$2" cpu_s)
  bytes=${R[$1.$2.produce.bytes]:-0}
  case $c in n/a | FAILED) echo "$c"; return ;; esac
  awk -v c="$c" -v b="$bytes" 'BEGIN { if (b > 0) printf "%.2f", c / (b / 1e9); else print "n/a" }'
}
disk_ratio() { ran "$1" && ratio "${R[$1.disk_bytes]:-0}" "${R[$1.disk_produced]:-0}" || echo n/a; }
label_size() { [ "$1" = 1024 ] && echo "1 KiB" || echo "$1 B"; }
two() { awk '{ if ($1 ~ /^[0-9.]+$/) printf "%.2f\n", $1; else print }'; } # 2 decimals

DISK_DEV=$(df -P "${BENCH_TMPDIR:-/tmp}" | awk 'NR == 2 { print $1 }')
DISK_FS=$(df -PT "${BENCH_TMPDIR:-/tmp}" | awk 'NR == 2 { print $2 }')
DISK_SIZE=$(lsblk -dno SIZE "$DISK_DEV" 2>/dev/null | tr -d ' ' || true)
MACHINE="$(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(awk '/^SwapTotal/ { if ($2 == 0) print "no swap"; else printf "%.1f GiB swap", $2 / 1048576 }' /proc/meminfo), data dirs on $DISK_DEV (${DISK_SIZE:-?}, $DISK_FS), kernel $(uname -r)"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"

{
  echo
  echo "Fjord vs Apache Kafka 4.3.0 — $(date -u +%Y-%m-%d), commit $COMMIT, BENCH_SCALE=$SCALE, brokers run one at a time in the order: ${BROKERS[*]}"
  echo
  echo "Machine: $MACHINE. Load average (1/5/15 min) at the start $LOAD_AT_START, at the end $LOAD_AT_END."
  if has_broker kafka; then
    echo "Kafka: ${JAVA_VERSION:-java ?}; heap $KAFKA_HEAP (-Xms = -Xmx, as kafka-server-start.sh's default -Xmx1G -Xms1G); JVM options: ${KAFKA_JVM:-?}."
    echo "Kafka settings (everything else is Kafka's default): ${KAFKA_CONFIG:-?}"
  fi
  echo "Fjord: target/release/fjord with its defaults$([ "${BENCH_FSYNC:-0}" = 1 ] && echo ' and --log-flush-interval-messages 1')."
  echo "Load generator: fjord-bench (librdkafka), the same binary and parameters for both: $PARTITIONS partitions, linger.ms=5, batch.size=1000000, no compression, idempotence off, client and broker on the same cores. e2e phases: 1 KiB records for $E2E_SECS s each, first second not counted."
  echo "Machine references: loopback TCP ${LOOPBACK_MBPS:-n/a} MB/s ($LOOPBACK_HOW); sequential disk write ${DISK_MBPS:-n/a} MB/s ($DISK_HOW); page cache write ${PAGECACHE_COLD_MBPS:-n/a} MB/s cold, ${PAGECACHE_WARM_MBPS:-n/a} MB/s warm (after writing and deleting $WARM_GB GiB)."
  echo
  echo "| metric | Kafka | Fjord | Fjord/Kafka |"
  echo "|---|---|---|---|"
  for size in 1024 100; do
    for acks in 1 all; do
      p=produce-$size-$acks
      n=$N_100
      [ "$size" = 1024 ] && { [ "$acks" = 1 ] && n=$N_1K_ACKS1 || n=$N_1K_ACKSALL; }
      row "Produce $(label_size "$size"), acks=$acks, $(num "$n") records: MB/s (higher is better)" \
        "$(bv kafka $p produce.mb_per_s)" "$(bv fjord $p produce.mb_per_s)"
    done
  done
  for size in 1024 100; do
    p=consume-$size-1
    n=$N_100
    [ "$size" = 1024 ] && n=$N_1K_ACKS1
    row "Consume $(label_size "$size") records from the start, $(num "$n") records: MB/s (higher is better)" \
      "$(bv kafka $p consume.mb_per_s)" "$(bv fjord $p consume.mb_per_s)"
  done
  for rate in "${FIXED_RATES[@]}" half; do
    for acks in 1 all; do
      p=e2e-$rate-$acks
      if [ "$rate" = half ]; then
        what="half its own max (Kafka $(num "${R[kafka.half_rate]:-}"), Fjord $(num "${R[fjord.half_rate]:-}") msg/s)"
      else
        what="$(num "$rate") msg/s"
      fi
      row "Ack latency p50 / p99 at $what, acks=$acks: ms (lower is better)" "$(lat kafka $p ack)" "$(lat fjord $p ack)"
      row "End-to-end latency p50 / p99 at $what, acks=$acks: ms (lower is better)" "$(lat kafka $p lat)" "$(lat fjord $p lat)"
    done
  done
  # The same load for both: the second broker also ran at the first one's half-max rate.
  for b in kafka fjord; do
    peer=${R[$b.peer]:-}
    [ -n "$peer" ] || continue
    for acks in 1 all; do
      if [ "$b" = fjord ]; then pk=e2e-half-$acks pf=e2e-peer-$acks; else pk=e2e-peer-$acks pf=e2e-half-$acks; fi
      what="half of $([ "$peer" = kafka ] && echo Kafka || echo Fjord)'s max for both ($(num "${R[$peer.half_rate]:-}") msg/s)"
      row "Ack latency p50 / p99 at $what, acks=$acks: ms (lower is better)" "$(lat kafka "$pk" ack)" "$(lat fjord "$pf" ack)"
      row "End-to-end latency p50 / p99 at $what, acks=$acks: ms (lower is better)" "$(lat kafka "$pk" lat)" "$(lat fjord "$pf" lat)"
    done
  done
  row "Broker RSS idle, ${IDLE_SETTLE_S} s after the first Metadata answer: MiB (lower is better)" \
    "$(ran kafka && kib_mib "${R[kafka.idle_rss_kb]:-}" || echo n/a)" "$(ran fjord && kib_mib "${R[fjord.idle_rss_kb]:-}" || echo n/a)"
  row "Broker RSS peak (VmHWM over start-up and every phase above): MiB (lower is better)" \
    "$(ran kafka && kib_mib "${R[kafka.peak_rss_kb]:-}" || echo n/a)" "$(ran fjord && kib_mib "${R[fjord.peak_rss_kb]:-}" || echo n/a)"
  row "Start on an empty data dir: spawn to first Metadata answer: ms (lower is better)" "$(bv kafka start metadata_ms)" "$(bv fjord start metadata_ms)"
  row "Start on an empty data dir: spawn to first accepted TCP connection: ms (lower is better)" "$(bv kafka start tcp_ms)" "$(bv fjord start tcp_ms)"
  row "Storage format before the start (kafka-storage format, a JVM of its own; not in the start figure): ms" "$(ran kafka && echo "${R[kafka.format_ms]:-n/a}" || echo n/a)" "none needed"
  row "Disk bytes per produced value byte (du of the data dir after the produce phases; lower is better)" "$(disk_ratio kafka)" "$(disk_ratio fjord)"
  row "Broker CPU per GB produced, 1 KiB acks=1: s (lower is better)" "$(cpu_per_gb kafka produce-1024-1)" "$(cpu_per_gb fjord produce-1024-1)"
  row "Shutdown on SIGTERM after the run: ms (lower is better)" "$(bv kafka stop stop_ms)" "$(bv fjord stop stop_ms)"
  echo
  echo "Fjord/Kafka above 1 means Fjord's figure is larger: better for throughput, worse for latency, memory, time and disk."
  for b in kafka fjord; do
    ran "$b" || continue
    echo "$b: disk $(mib "${R[$b.disk_bytes]:-0}") MiB for $(mib "${R[$b.disk_produced]:-0}") MiB of values after the produce phases, $(mib "${R[$b.disk_bytes_all]:-0}") MiB for $(mib "${R[$b.produced_all]:-0}") MiB after the e2e phases too; $([ "${R[$b.log_problems]:-0}" -gt 0 ] && echo "${R[$b.log_problems]} ERROR/WARN lines in its log" || echo "no ERROR/WARN lines in its log")$([ "$b" = fjord ] && echo " (both runs)")."
  done

  # Every phase with the machine's state around it: the machine is shared.
  echo
  echo "Phases. A phase during which others used more than $NOISY_CORES cores on average is run once more and the less disturbed run is reported; the other is listed as NAME~N. Before each, the script waits (at most ${QUIET_BUDGET_S} s over the run; $QUIET_SPENT_S s used) until everything on the machine uses less than $QUIET_CORES cores over 1 s: \"busy before\" is that last sample, in cores. Load average: the 1-minute figure before -> after (it lags by a minute and counts this benchmark too). \"Other CPU\" is what all other processes and kernel threads used during the phase, in CPU seconds (softirq time that lands while a CPU is otherwise idle counts here too); the load generator and broker alone can keep both cores busy."
  echo
  echo "| broker | phase | wall s | busy before (cores) | load before -> after | broker CPU s | load generator CPU s | other CPU s |"
  echo "|---|---|---|---|---|---|---|---|"
  for b in "${BROKERS[@]}"; do
    ran "$b" || continue
    echo "| $b | start (to Metadata) | $(awk -v m="${R[$b.start.metadata_ms]:-0}" 'BEGIN { printf "%.3f", m / 1000 }') | ${R[$b.start.busy_before]:-n/a}$([ "${R[$b.start.quiet_wait_s]:-0}" -gt 0 ] && echo " (waited ${R[$b.start.quiet_wait_s]} s)") | ${R[$b.start.load_before]%% *} -> ${R[$b.start.load_after]%% *} | | | |"
    for p in ${PHASE_LIST[$b]:-}; do
      client=
      for key in produce e2e consume; do client=${client:-${R[$b.$p.$key.client_cpu_s]:-}}; done
      echo "| $b | $p$([ "${R[$b.$p.failed]:-0}" = 1 ] && echo ' **FAILED**')$([[ $p == *~* ]] && echo ' (disturbed or worse of two runs; not reported)') | ${R[$b.$p.wall_s]:-n/a} | ${R[$b.$p.busy_before]:-n/a}$([ "${R[$b.$p.quiet_wait_s]:-0}" -gt 0 ] && echo " (waited ${R[$b.$p.quiet_wait_s]} s)") | ${R[$b.$p.load_before]%% *} -> ${R[$b.$p.load_after]%% *} | ${R[$b.$p.cpu_s]:-n/a} | ${client:-n/a} | ${R[$b.$p.other_cpu_s]:-n/a} |"
    done
  done
} >"$WORK/compare.md"

# Fjord's own detail and targets tables (the project's performance targets).
fv() { local x=${R[fjord.$1]:-}; echo "${x:-n/a}"; }
status() { [ "${R[fjord.$1.failed]:-0}" = 1 ] && echo " **FAILED**" || true; }
produce_row() { # phase label
  local p=$1
  echo "| $2, $(num "$(fv $p.produce.records)") records$(status $p) | $(num "$(fv $p.produce.records_per_s)") rec/s, $(fv $p.produce.mb_per_s) MB/s | $(pct "$(fv $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback, $(pct "$(fv $p.produce.mb_per_s)" "$DISK_MBPS") of disk | $(fv $p.produce.lat_p50_ms) / $(fv $p.produce.lat_p99_ms) | $(fv $p.cpu_s) | $(fv $p.produce.client_cpu_s) | $(fv $p.peak_rss_mib) |"
}
# verdict VALUE OP LIMIT [STEP]: met or NOT met; a failed step or a missing figure never
# counts as met.
verdict() {
  if [ -n "${4:-}" ] && [ "${R[fjord.$4.failed]:-0}" = 1 ]; then echo "**NOT met** (step failed)"; return; fi
  case $1 in '' | n/a) echo "**NOT met** (no figure)"; return ;; esac
  awk -v v="$1" -v op="$2" -v l="$3" \
    'BEGIN { ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print (ok ? "met" : "**NOT met**") }'
}
# Latency targets hold at half the maximum rate; say so when the e2e phase did not get
# there (client too slow to send it, or the fallback rate).
rate_note() { # e2e phase
  local got want=${R[fjord.half_rate]:-0}
  got=$(fv "$1.e2e.achieved_rate")
  case ${R[fjord.half_note]:-} in fallback*) echo " (${R[fjord.half_note]})"; return ;; esac
  awk -v g="$got" -v w="$want" 'BEGIN { if (g != "n/a" && g + 0 < 0.95 * w) printf " (asked %d msg/s: load short of half the max)", w }'
}

if ran fjord; then
  PEAK_BOTH_KB=${R[fjord.peak_rss_kb]:-0}
  for k in restart.peak_rss_kb produce-1024-all-flush.peak_rss_kb; do
    [ "${R[fjord.$k]:-0}" -gt "$PEAK_BOTH_KB" ] && PEAK_BOTH_KB=${R[fjord.$k]}
  done
  {
    echo
    echo "Fjord detail — $(date -u +%Y-%m-%d), $(nproc) cores, commit $COMMIT, BENCH_SCALE=$SCALE$([ "${BENCH_FSYNC:-0}" = 1 ] && echo ', fsync per message'), $PARTITIONS partitions, linger.ms=5, batch.size=1000000, no compression, client and broker on the same host"
    echo
    echo "| Figure | Value | vs machine reference | Latency p50 / p99 (ms) | Broker CPU (s) | Client CPU (s) | Broker peak RSS (MiB) |"
    echo "|---|---|---|---|---|---|---|"
    echo "| Reference: loopback TCP ($LOOPBACK_HOW) | ${LOOPBACK_MBPS:-n/a} MB/s | 100% | | | | |"
    echo "| Reference: sequential disk write ($DISK_HOW) | ${DISK_MBPS:-n/a} MB/s | 100% | | | | |"
    echo "| Reference: page cache write, cold (dd 1 GiB into never-used guest RAM) | ${PAGECACHE_COLD_MBPS:-n/a} MB/s | | | | | |"
    echo "| Reference: page cache write, warm (dd 1 GiB after writing and deleting $WARM_GB GiB) | ${PAGECACHE_WARM_MBPS:-n/a} MB/s | | | | | |"
    echo "| Startup on an empty data dir: spawn to first accepted TCP connection / first Metadata answer | $(fv start.tcp_ms) / $(fv start.metadata_ms) ms | | | | | |"
    echo "| Idle RSS ${IDLE_SETTLE_S} s after start | $(kib_mib "$(fv idle_rss_kb)") MiB | | | | | |"
    for acks in 1 all; do
      for size in 1024 100; do
        produce_row "produce-$size-$acks" "Produce $(label_size $size), acks=$acks"
        p=consume-$size-$acks
        echo "| Consume $(label_size $size) (acks=$acks topic), $(num "$(fv $p.consume.records)") records$(status $p) | $(num "$(fv $p.consume.records_per_s)") rec/s, $(fv $p.consume.mb_per_s) MB/s | $(pct "$(fv $p.consume.mb_per_s)" "$LOOPBACK_MBPS") of loopback | | $(fv $p.cpu_s) | $(fv $p.consume.client_cpu_s) | $(fv $p.peak_rss_mib) |"
      done
    done
    for rate in "${FIXED_RATES[@]}" half $([ -n "${R[fjord.peer]:-}" ] && echo peer); do
      for acks in 1 all; do
        p=e2e-$rate-$acks
        echo "| End-to-end latency, acks=$acks, $(num "$(fv $p.e2e.achieved_rate)") msg/s x 1 KiB, linger.ms=$E2E_LINGER_MS, for ${E2E_SECS} s (asked $(num "$(fv $p.rate)")$([ "$rate" = half ] && echo ": ${R[fjord.half_note]:-}"))$(status $p) | $(num "$(fv $p.e2e.received)") of $(num "$(fv $p.e2e.sent)") received | | $(fv $p.e2e.lat_p50_ms) / $(fv $p.e2e.lat_p99_ms) (ack $(fv $p.e2e.ack_p50_ms) / $(fv $p.e2e.ack_p99_ms)) | $(fv $p.cpu_s) | $(fv $p.e2e.client_cpu_s) | $(fv $p.peak_rss_mib) |"
      done
    done
    echo "| Disk usage of data dir (before / after shutdown) vs bytes produced | $(mib "$(fv disk_bytes_all)") / $(mib "$(fv disk_bytes_after_stop)") MiB for $(mib "$(fv produced_all)") MiB of values | $(ratio "$(fv disk_bytes_after_stop)" "$(fv produced_all)")x of produced | | | | |"
    echo "| Broker totals over the main run | CPU $(fv total_cpu_s) s | | | $(fv total_cpu_s) | | $(kib_mib "$(fv peak_rss_kb)") |"
    echo "| Shutdown on SIGTERM after the main run | $(fv stop.stop_ms) ms, exit status $(fv stop.stop_rc) | | | | | |"
    echo "| Restart on the same data dir ($(mib "$(fv disk_bytes_after_stop)") MiB) with --log-flush-interval-messages 1: spawn to first accepted TCP connection / first Metadata answer ($(fv restart.topics) topics listed)$(status restart) | $(fv restart.tcp_ms) / $(fv restart.metadata_ms) ms | | | $(fv restart.cpu_s) (start-up + 1 s idle) | | $(kib_mib "$(fv restart.peak_rss_kb)") (start-up incl. recovery) |"
    echo "| Idle RSS after restart | $(kib_mib "$(fv restart.idle_rss_kb)") MiB | | | | | |"
    produce_row produce-1024-all-flush "Produce 1 KiB, acks=all, flush per message (restarted broker)"
    echo "| Disk usage after the flush run and second shutdown vs all bytes produced | $(mib "$(fv disk_final)") MiB for $(mib "$(fv produced_total)") MiB of values | $(ratio "$(fv disk_final)" "$(fv produced_total)")x of produced | | | | |"
    echo "| Restarted broker totals | CPU $(fv restart_total_cpu_s) s | | | $(fv restart_total_cpu_s) | | |"
    echo "| Shutdown on SIGTERM after the flush run | $(fv stop2.stop_ms) ms, exit status $(fv stop2.stop_rc) | | | | | |"
    echo "| Broker log error/warning/panic lines (both runs) | $(fv log_problems) | | | | | |"

    echo
    echo "Fjord targets (2 cores, client on the same cores; MB = 10^6 bytes; RSS limits read as MiB)"
    echo
    echo "| Target | Required | Measured | Fraction of machine reference | Met? |"
    echo "|---|---|---|---|---|"
    p=produce-1024-1
    echo "| Produce 1 KiB records, $PARTITIONS partitions, acks=1 | ≥ $T_PRODUCE_1K_ACKS1_MBPS MB/s | $(fv $p.produce.mb_per_s) MB/s | $(pct "$(fv $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(fv $p.produce.mb_per_s)" ">=" "$T_PRODUCE_1K_ACKS1_MBPS" $p) |"
    p=produce-1024-all
    echo "| Produce 1 KiB records, $PARTITIONS partitions, acks=all | ≥ $T_PRODUCE_1K_ACKSALL_MBPS MB/s | $(fv $p.produce.mb_per_s) MB/s | $(pct "$(fv $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(fv $p.produce.mb_per_s)" ">=" "$T_PRODUCE_1K_ACKSALL_MBPS" $p) |"
    p=produce-100-1
    echo "| Produce 100 B records, $PARTITIONS partitions, acks=1 | ≥ $(num $T_PRODUCE_100_RPS) rec/s | $(num "$(fv $p.produce.records_per_s)") rec/s ($(fv $p.produce.mb_per_s) MB/s) | $(pct "$(fv $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(fv $p.produce.records_per_s)" ">=" "$T_PRODUCE_100_RPS" $p) |"
    p=consume-1024-1
    echo "| Consume from the start of a $(gb "${R[fjord.consume-1024-1.consume.bytes]:-0}") GB topic (1 KiB records) | ≥ $(num $T_CONSUME_MBPS) MB/s | $(fv $p.consume.mb_per_s) MB/s | $(pct "$(fv $p.consume.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(fv $p.consume.mb_per_s)" ">=" "$T_CONSUME_MBPS" $p) |"
    for acks in 1 all; do
      p=e2e-half-$acks
      echo "| Produce (ack) latency p99 at half the max 1 KiB rate, acks=$acks | ≤ $T_PRODUCE_P99_MS ms | $(fv $p.e2e.ack_p99_ms) ms at $(num "$(fv $p.e2e.achieved_rate)") msg/s$(rate_note $p) | | $(verdict "$(fv $p.e2e.ack_p99_ms)" "<=" "$T_PRODUCE_P99_MS" $p) |"
      echo "| End-to-end latency p99 at half the max 1 KiB rate, acks=$acks | ≤ $T_E2E_P99_MS ms | $(fv $p.e2e.lat_p99_ms) ms at $(num "$(fv $p.e2e.achieved_rate)") msg/s$(rate_note $p) | | $(verdict "$(fv $p.e2e.lat_p99_ms)" "<=" "$T_E2E_P99_MS" $p) |"
    done
    p=produce-1024-all-flush
    echo "| Produce 1 KiB records, acks=all, --log-flush-interval-messages 1 | ≥ $T_FLUSH_MBPS MB/s | $(fv $p.produce.mb_per_s) MB/s | $(pct "$(fv $p.produce.mb_per_s)" "$DISK_MBPS") of disk, $(pct "$(fv $p.produce.mb_per_s)" "$LOOPBACK_MBPS") of loopback | $(verdict "$(fv $p.produce.mb_per_s)" ">=" "$T_FLUSH_MBPS" $p) |"
    echo "| Restart on $(gb "$(fv disk_bytes_after_stop)") GB of data: spawn to first Metadata answer | ≤ $(num $T_RESTART_MS) ms | $(fv restart.metadata_ms) ms (first TCP accept at $(fv restart.tcp_ms) ms) | | $(verdict "$(fv restart.metadata_ms)" "<=" "$T_RESTART_MS" restart) |"
    echo "| Startup on an empty data dir: spawn to first accepted connection | ≤ $T_STARTUP_MS ms | $(fv start.tcp_ms) ms | | $(verdict "$(fv start.tcp_ms)" "<=" "$T_STARTUP_MS") |"
    echo "| Broker RSS idle (${IDLE_SETTLE_S} s after start) | ≤ $T_IDLE_RSS_MIB MiB | $(kib_mib "$(fv idle_rss_kb)") MiB | | $(verdict "$(kib_mib "$(fv idle_rss_kb)")" "<=" "$T_IDLE_RSS_MIB") |"
    echo "| Broker peak RSS (VmHWM) over all phases, both runs | ≤ $T_PEAK_RSS_MIB MiB | $(kib_mib "$PEAK_BOTH_KB") MiB | | $(verdict "$(kib_mib "$PEAK_BOTH_KB")" "<=" "$T_PEAK_RSS_MIB") |"
    echo "| Disk usage vs bytes produced (after both runs) | ≤ ${T_DISK_RATIO}x | $(ratio "$(fv disk_final)" "$(fv produced_total)")x ($(mib "$(fv disk_final)") MiB for $(mib "$(fv produced_total)") MiB) | | $(verdict "$(ratio "$(fv disk_final)" "$(fv produced_total)")" "<=" "$T_DISK_RATIO") |"
  } >>"$WORK/compare.md"
fi

printf '\nTotal time %d s.\n' $((SECONDS - START_S)) >>"$WORK/compare.md"
tee "$BENCH_TARGET/last-results.md" <"$WORK/compare.md"

if [ ${#FAILED[@]} -gt 0 ]; then
  warn "failed steps: ${FAILED[*]}"
  exit 1
fi
exit 0
