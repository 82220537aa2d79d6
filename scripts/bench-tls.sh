#!/usr/bin/env bash
# The cost of TLS + SASL: produce and consume throughput over a SASL_SSL listener beside a
# PLAINTEXT one, for Fjord and for Apache Kafka 4.3.0, in the same run on this machine.
#
# Each broker (Fjord, then Kafka; one at a time, each on a fresh data dir) gets two
# listeners on 127.0.0.1: PLAINTEXT, and SASL_SSL with mechanism PLAIN (user bench, from the
# listener's JAAS setting, as Kafka's PlainLoginModule takes it) and a PEM key store (a
# PKCS#8 key and a certificate signed by a CA made here with compat-tests/certs.sh). Both
# brokers get the same settings: Fjord as -o overrides, Kafka through `scripts/kafka-ref.sh
# prepare --stock --override ...` (its defaults and stock JVM options, heap TLS_KAFKA_HEAP).
# kafka-ref.sh keeps its PLAINTEXT inter-broker listener and CONTROLLER listener; the
# overrides only restate `listeners`, `advertised.listeners`, the protocol map and the voter
# with ports picked here, so that the SASL_SSL listener can be added.
# Per listener, with the same fjord-bench load generator (scripts/bench, librdkafka with
# OpenSSL) and the same parameters: an unreported warm-up (TLS_WARMUP records produced and
# consumed, so Kafka's JIT has compiled both paths), then TLS_RECORDS x 1 KiB records to a
# fresh 6-partition topic with acks=all (linger.ms=5, batch.size=1000000, no compression,
# as in scripts/bench.sh), then a consume of that whole topic (manual assignment, from the
# start). One topic per listener. The client pays for TLS too: it shares the 2 cores with
# the broker, as in every figure of scripts/bench.sh.
#
# Prints a comparison table: MB/s (values; MB = 10^6 bytes) and records/s of produce and
# consume, the producer's ack latency and the broker's CPU per GB, with SASL_SSL/PLAINTEXT
# per broker and Fjord/Kafka per listener; then per phase its wall time, broker / load
# generator / other CPU (the machine is shared: a busy neighbour shows there), and the TLS
# version and cipher each broker negotiates with OpenSSL (`openssl s_client`, the library
# librdkafka uses).
# The report is also kept in target/bench/last-tls-results.md.
#
# Usage (by hand; not part of scripts/test.sh):
#   bash scripts/bench-tls.sh
# It takes /tmp/fjord-cargo.lock itself around the measured part (brokers and load), so no
# cargo build overlaps a measurement; do not wrap it in `flock /tmp/fjord-cargo.lock`, it
# would wait on itself. It builds fjord-bench (and target/release/fjord if missing) first,
# holding the lock only for the build. About 4 minutes on the project's 2-core VM at the
# defaults once built; it writes about 11 GB (page cache warm-up, then 5.5 GB per broker).
# Environment:
#   TLS_RECORDS=2500000   1 KiB records produced (then consumed) per listener and broker:
#                         2.56 GB of values per topic; a produce phase then takes 5-20 s here
#   TLS_WARMUP=200000     unreported warm-up records per listener (0: none)
#   TLS_BROKERS="fjord kafka"  which brokers, in this order
#   TLS_KAFKA_HEAP=1g     Kafka's heap (-Xms = -Xmx, as kafka-server-start.sh)
#   TLS_PHASE_TIMEOUT=240 seconds one step (a broker start, a produce, a consume) may take
#   TLS_TOTAL_TIMEOUT=900 seconds the measured part may take (no step starts past it)
#   TLS_LOCK_WAIT=3600    seconds to wait for /tmp/fjord-cargo.lock
#   TLS_WARM_GB=N         GiB written to and deleted from the page cache before the brokers
#                         (default: what the run writes): on this VM guest RAM is backed on
#                         first touch, which would otherwise slow the first broker only
#   TLS_QUIET_BUDGET=120  seconds in all the script may wait, before a phase, for the rest of
#                         the machine to use less than half a core (0: never wait)
#   TLS_BUILD=0           do not run cargo; use target/release/fjord and target/bench's
#                         fjord-bench as they are
#   TLS_KEEP=1            keep the work directory (broker logs, raw outputs)
#   FJORD_CACHE=/path     where the Kafka jars are (default .cache), as for the tests
# Exit status: non-zero if a step failed (the table is still printed, with n/a).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${TLS_RECORDS:-2500000}
WARM_N=${TLS_WARMUP:-200000}
read -r -a BROKERS <<<"${TLS_BROKERS:-fjord kafka}"
KAFKA_HEAP=${TLS_KAFKA_HEAP:-1g}
PHASE_TIMEOUT=${TLS_PHASE_TIMEOUT:-240}
TOTAL_TIMEOUT=${TLS_TOTAL_TIMEOUT:-900}
LOCK_WAIT=${TLS_LOCK_WAIT:-3600}
QUIET_BUDGET_S=${TLS_QUIET_BUDGET:-120}
LOCK=/tmp/fjord-cargo.lock
SIZE=1024
PARTITIONS=6
LISTENERS=(PLAINTEXT SASL_SSL)
FJORD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/fjord
BENCH_TARGET=$ROOT/target/bench
BENCH_BIN=$BENCH_TARGET/release/fjord-bench
KAFKA_REF=$ROOT/scripts/kafka-ref.sh
SASL_USER=bench
SASL_PASSWORD=bench-secret

warn() { printf 'bench-tls.sh: %s\n' "$*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
log() { printf '\n== %s  %s   [load %s]\n' "$(date -u +%H:%M:%S)" "$*" "$(loadavg)" >&2; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

for b in "${BROKERS[@]}"; do
  case $b in kafka | fjord) ;; *) warn "TLS_BROKERS: unknown broker '$b' (fjord, kafka)"; exit 2 ;; esac
done
for c in python3 openssl; do command -v "$c" >/dev/null || { warn "$c is required"; exit 1; }; done
case " ${BROKERS[*]} " in *" kafka "*) command -v java >/dev/null || { warn "java is required for Kafka (or TLS_BROKERS=fjord)"; exit 1; } ;; esac

FAILED=()
fail() { FAILED+=("$1"); warn "FAILED: $1"; }
# bg_wait CMD...: run CMD in the background and wait for it, so a signal is handled at once
# (timeout puts its command in a process group of its own: ^C does not reach it).
CHILD=
bg_wait() {
  local rc=0
  "$@" &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=
  return "$rc"
}
# Until the work dir exists there is only a build or set-up step to stop (cleanup below).
trap '[ -z "$CHILD" ] || kill -TERM "$CHILD" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# Builds, each under the build lock for its own duration only. fjord-bench needs
# librdkafka with OpenSSL (scripts/bench/Cargo.toml enables rdkafka's "ssl" feature).
START_S=$SECONDS
if [ "${TLS_BUILD:-1}" = 1 ]; then
  if [ ! -x "$FJORD_BIN" ]; then
    log "building fjord (release)"
    bg_wait timeout 3600 flock -w "$LOCK_WAIT" "$LOCK" nice -n 10 cargo build --release \
      --manifest-path "$ROOT/Cargo.toml" --bin fjord ||
      { warn "fjord build failed"; exit 1; }
  fi
  log "building fjord-bench (a no-op when up to date; librdkafka takes a few minutes the first time)"
  bg_wait timeout 3600 flock -w "$LOCK_WAIT" "$LOCK" nice -n 10 cargo build --release -j 1 \
    --manifest-path "$ROOT/scripts/bench/Cargo.toml" --target-dir "$BENCH_TARGET" ||
    { warn "fjord-bench build failed"; exit 1; }
fi
for f in "$FJORD_BIN" "$BENCH_BIN"; do [ -x "$f" ] || { warn "$f is missing (drop TLS_BUILD=0)"; exit 1; }; done
case " ${BROKERS[*]} " in
  *" kafka "*) KAFKA_CLIENT_VERSIONS='' bg_wait timeout 1800 bash "$ROOT/scripts/setup-kafka.sh" >&2 ||
    { warn "setup-kafka.sh failed"; exit 1; } ;;
esac
BUILD_S=$((SECONDS - START_S))

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fjord-tls.XXXXXX")
KDIR=$WORK/kafka
B= BPID=
declare -A R          # results: R[BROKER.LISTENER.PHASE.KEY]=value
declare -A PORT       # PORT[LISTENER] of the running broker

# On any exit: stop the broker that runs, Kafka's dir with it, and remove the work dir. The
# lock goes with this shell's file descriptor (brokers are started without it).
cleanup() {
  local rc=$?
  trap '' INT TERM # a second ^C must not cut the clean-up short
  [ -z "$CHILD" ] || kill -TERM "$CHILD" 2>/dev/null || true
  if [ "$B" = fjord ] && [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
    kill -TERM "$BPID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BPID" 2>/dev/null || true
  fi
  if [ -e "$KDIR" ]; then
    KAFKA_REF_DIR=$KDIR timeout 90 bash "$KAFKA_REF" stop >/dev/null 2>&1 || warn "kafka-ref.sh stop failed"
  fi
  if [ "${TLS_KEEP:-0}" = 1 ]; then warn "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# Certificates: a CA, and the brokers' key (PKCS#8 PEM, unencrypted: `openssl req -nodes`)
# and certificate for 127.0.0.1, concatenated as the PEM key store both brokers read.
C=$WORK/certs
mkdir -p "$C"
# shellcheck source=../compat-tests/certs.sh
source "$ROOT/compat-tests/certs.sh"
ca ca
leaf server ca "/CN=fjord-bench-tls" "IP:127.0.0.1,DNS:localhost"
[ -s "$C/server.pem" ] || { warn "openssl could not make the certificates:"; cat "$WORK/openssl.log" >&2; exit 1; }
cat "$C/server.key" "$C/server.pem" >"$C/server-keystore.pem"

JAAS="org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER=\"$SASL_PASSWORD\";"
# The SASL_SSL settings, the same for both brokers.
SECURITY=(
  "sasl.enabled.mechanisms=PLAIN"
  "listener.name.sasl_ssl.plain.sasl.jaas.config=$JAAS"
  "ssl.keystore.type=PEM"
  "ssl.keystore.location=$C/server-keystore.pem"
)
# client_args LISTENER: fjord-bench's -X settings for that listener, in CARGS.
client_args() {
  CARGS=()
  [ "$1" = SASL_SSL ] || return 0
  CARGS=(-X security.protocol=SASL_SSL -X sasl.mechanisms=PLAIN -X "sasl.username=$SASL_USER"
    -X "sasl.password=$SASL_PASSWORD" -X "ssl.ca.location=$C/ca.pem")
}

# free_ports N: N distinct free loopback ports.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# ---------------------------------------------------------------------------------------
# Time limits: no step runs past TOTAL_TIMEOUT seconds after the lock was taken.
DEADLINE=
step_limit() { # seconds the next step may take; fails when the run is out of time
  local left=$((DEADLINE - SECONDS))
  [ "$left" -ge 10 ] || { warn "out of time (TLS_TOTAL_TIMEOUT=$TOTAL_TIMEOUT)"; return 1; }
  echo $((left < PHASE_TIMEOUT ? left : PHASE_TIMEOUT))
}

alive() { [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$BPID/stat" 2>/dev/null)" != Z ]; }
CLK_TCK=$(getconf CLK_TCK)
broker_cpu() { # utime + stime of the broker process (the JVM for Kafka), seconds
  local stat rest f
  stat=$(<"/proc/$BPID/stat")
  rest=${stat##*) }
  read -r -a f <<<"$rest"
  calc "(${f[11]} + ${f[12]}) / $CLK_TCK"
}
machine_busy() { # CPU seconds the whole machine was busy (user nice system irq softirq)
  awk -v t="$CLK_TCK" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / t; exit }' /proc/stat
}
# quiet_gate: wait (within QUIET_BUDGET_S over the run) until the machine uses less than
# half a core over 1 s; our broker is idle then. Sets GATE_BUSY, the last sample in cores.
QUIET_SPENT_S=0
quiet_gate() {
  local m0 m1
  while :; do
    m0=$(machine_busy); sleep 1; m1=$(machine_busy)
    GATE_BUSY=$(awk -v a="$m0" -v b="$m1" 'BEGIN { printf "%.2f", b - a }')
    awk -v b="$GATE_BUSY" 'BEGIN { exit !(b < 0.5) }' && return 0
    if [ "$QUIET_SPENT_S" -ge "$QUIET_BUDGET_S" ]; then return 0; fi
    [ "$QUIET_SPENT_S" -gt 0 ] || warn "machine busy ($GATE_BUSY cores in use); waiting for it to calm down"
    sleep 2
    QUIET_SPENT_S=$((QUIET_SPENT_S + 3))
  done
}

# wait_ready LISTENER SECONDS: a librdkafka client with that listener's settings gets a
# Metadata answer (over SASL_SSL: TLS handshake and PLAIN authentication done).
wait_ready() {
  local lim
  lim=$(step_limit) || return 1
  [ "$2" -lt "$lim" ] && lim=$2
  client_args "$1"
  bg_wait timeout -s KILL $((lim + 15)) "$BENCH_BIN" --brokers "127.0.0.1:${PORT[$1]}" --timeout-secs "$lim" \
    "${CARGS[@]}" ready >/dev/null 2>>"$WORK/$B.ready.err"
}

# tls_info: the TLS version and cipher the broker's SASL_SSL listener agrees on with OpenSSL.
tls_info() {
  local out
  out=$(timeout 15 openssl s_client -connect "127.0.0.1:${PORT[SASL_SSL]}" -CAfile "$C/ca.pem" \
    -verify_return_error -brief </dev/null 2>&1) || true
  R[$B.tls]=$(awk -F': ' '/^Protocol version/ { p = $2 } /^Ciphersuite/ { c = $2 }
    END { if (p != "") printf "%s %s", p, c; else printf "n/a" }' <<<"$out")
  R[$B.tls_verify]=$(grep -m1 '^Verification' <<<"$out" || echo "Verification: n/a")
}

# run_phase LISTENER PHASE fjord-bench-args...: one load step against LISTENER of broker B,
# with the broker's, the load generator's and everybody else's CPU time over it.
run_phase() {
  local lis=$1 name=$2 k=$B.$1.$2 out=$WORK/$B.$1.$2.out rc=0 lim c0 c1 m0 m1 t0 t1 key v client
  shift 2
  if ! alive; then fail "$B $lis $name (broker not running)"; R[$k.failed]=1; return; fi
  lim=$(step_limit) || { fail "$B $lis $name (out of time)"; R[$k.failed]=1; return; }
  quiet_gate
  R[$k.busy_before]=$GATE_BUSY
  client_args "$lis"
  log "$B $lis $name: fjord-bench $*"
  R[$k.load_before]=$(loadavg)
  c0=$(broker_cpu); m0=$(machine_busy); t0=$EPOCHREALTIME
  bg_wait timeout -s KILL $((lim + 15)) "$BENCH_BIN" --brokers "127.0.0.1:${PORT[$lis]}" --timeout-secs "$lim" \
    "${CARGS[@]}" "$@" >"$out" 2>>"$WORK/$B.bench.err" || rc=$?
  t1=$EPOCHREALTIME; m1=$(machine_busy)
  R[$k.load_after]=$(loadavg)
  R[$k.wall_s]=$(printf '%.1f' "$(calc "$t1 - $t0")")
  while IFS='=' read -r key v; do R[$k.$key]=$v; done <"$out"
  if [ "$rc" != 0 ]; then
    fail "$B $lis $name (fjord-bench exit $rc: $(tail -n 2 "$WORK/$B.bench.err" | tr '\n' ' '))"
    R[$k.failed]=1
  fi
  if ! alive; then fail "$B died during $lis $name"; R[$k.failed]=1; BPID=; return; fi
  c1=$(broker_cpu)
  R[$k.cpu_s]=$(printf '%.2f' "$(calc "$c1 - $c0")")
  client=${R[$k.produce.client_cpu_s]:-${R[$k.consume.client_cpu_s]:-0}}
  R[$k.client_cpu_s]=$client
  R[$k.other_cpu_s]=$(awk -v m="$(calc "$m1 - $m0")" -v b="${R[$k.cpu_s]}" -v c="$client" \
    'BEGIN { v = m - b - c; if (v < 0) v = 0; printf "%.2f", v }')
  warn "$B $lis $name: ${R[$k.wall_s]} s; broker CPU ${R[$k.cpu_s]} s, load generator $client s, others ${R[$k.other_cpu_s]} s"
}

# start_fjord / start_kafka: the broker with its two listeners, on a fresh data dir; sets
# BPID and PORT, and returns once both listeners answer a Metadata request.
start_fjord() {
  local p
  read -r -a p <<<"$(free_ports 2)"
  PORT[PLAINTEXT]=${p[0]} PORT[SASL_SSL]=${p[1]}
  rm -rf "$WORK/fjord-data"
  mkdir -p "$WORK/fjord-data"
  FJORD_ARGS=(--log-dirs "$WORK/fjord-data"
    -o "listeners=PLAINTEXT://127.0.0.1:${PORT[PLAINTEXT]},SASL_SSL://127.0.0.1:${PORT[SASL_SSL]}"
    -o "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL")
  for kv in "${SECURITY[@]}"; do FJORD_ARGS+=(-o "$kv"); done
  # Fjord reads FJORD_* variables as settings: the harness's own are not for it. The lock's
  # descriptor is not passed on, so a broker that outlived us could not keep it.
  env -u FJORD_CACHE -u FJORD_BIN "$FJORD_BIN" "${FJORD_ARGS[@]}" >>"$WORK/fjord.log" 2>&1 {LOCK_FD}>&- &
  BPID=$!
}
start_kafka() {
  local p
  read -r -a p <<<"$(free_ports 3)"
  PORT[PLAINTEXT]=${p[0]} PORT[SASL_SSL]=${p[1]}
  local cport=${p[2]} overrides=() kv
  for kv in \
    "listeners=PLAINTEXT://127.0.0.1:${PORT[PLAINTEXT]},CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:${PORT[SASL_SSL]}" \
    "advertised.listeners=PLAINTEXT://127.0.0.1:${PORT[PLAINTEXT]},SASL_SSL://127.0.0.1:${PORT[SASL_SSL]}" \
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL" \
    "controller.quorum.voters=1@127.0.0.1:$cport" \
    "${SECURITY[@]}"; do
    overrides+=(--override "$kv")
  done
  local lim
  lim=$(step_limit) || return 1
  if ! KAFKA_REF_DIR=$KDIR KAFKA_REF_HEAP=$KAFKA_HEAP KAFKA_REF_PORT=${PORT[PLAINTEXT]} \
    bg_wait timeout "$lim" bash "$KAFKA_REF" prepare --stock "${overrides[@]}" >"$WORK/kafka.prepare" 2>&1; then
    cat "$WORK/kafka.prepare" >&2
    return 1
  fi
  KAFKA_CONFIG=$(grep -v '^#' "$KDIR/node1/server.properties" | sed 's/\(password\|user_[a-z]*\)="[^"]*"/\1="..."/')
  if ! KAFKA_REF_DIR=$KDIR timeout 60 bash "$KAFKA_REF" launch >"$WORK/kafka.launch" 2>&1 {LOCK_FD}>&-; then
    cat "$WORK/kafka.launch" >&2
    return 1
  fi
  BPID=$(awk -F': ' '$1 == "pid" { print $2; exit }' "$WORK/kafka.launch")
}
broker_log() { [ "$B" = fjord ] && echo "$WORK/fjord.log" || echo "$KDIR/node1/server.log"; }

stop_broker() {
  if [ "$B" = fjord ]; then
    if alive; then
      kill -TERM "$BPID" 2>/dev/null || true
      for _ in $(seq 600); do alive || break; sleep 0.1; done
      alive && { fail "fjord ignored SIGTERM for 60 s; killed"; kill -KILL "$BPID" 2>/dev/null || true; }
    fi
    wait "$BPID" 2>/dev/null || true
    rm -rf "$WORK/fjord-data"
  else
    KAFKA_REF_DIR=$KDIR timeout 90 bash "$KAFKA_REF" stop >/dev/null 2>&1 || fail "kafka-ref.sh stop"
  fi
  BPID=
}

# One broker's run: start, both listeners answering, then per listener the warm-up, the
# produce and the consume, then stop.
run_broker() {
  B=$1
  local lis topic
  log "===== $B: starting with PLAINTEXT and SASL_SSL listeners"
  if [ "$B" = fjord ]; then start_fjord; else start_kafka || { fail "kafka prepare/launch"; return; }; fi
  for lis in "${LISTENERS[@]}"; do
    if ! wait_ready "$lis" 120; then
      fail "$B: no Metadata answer on its $lis listener ($(tail -n 2 "$WORK/$B.ready.err" | tr '\n' ' '))"
      tail -n 30 "$(broker_log)" >&2
      stop_broker
      return
    fi
  done
  warn "$B: both listeners answer (PLAINTEXT 127.0.0.1:${PORT[PLAINTEXT]}, SASL_SSL 127.0.0.1:${PORT[SASL_SSL]})"
  tls_info
  warn "$B: SASL_SSL negotiates ${R[$B.tls]} (${R[$B.tls_verify]})"
  for lis in "${LISTENERS[@]}"; do
    topic=tls-bench-${lis,,}
    if [ "$WARM_N" -gt 0 ]; then
      run_phase "$lis" warmup-produce produce --topic "$topic-warmup" -n "$WARM_N" -s "$SIZE" -k "$PARTITIONS" --acks all
      run_phase "$lis" warmup-consume consume --topic "$topic-warmup"
    fi
    # No dirty page cache left from the phase before: the kernel would throttle this one.
    sync
    run_phase "$lis" produce produce --topic "$topic" -n "$N" -s "$SIZE" -k "$PARTITIONS" --acks all
    run_phase "$lis" consume consume --topic "$topic"
  done
  # Its ERROR/WARN lines, counted by message (timestamps, ports and ids left out), for the
  # report; Kafka's log goes with its dir at the stop.
  R[$B.log_problems]=$(grep -ciE '\b(ERROR|WARN|panic)\b' "$(broker_log)" || true)
  R[$B.log_summary]=$(grep -iE '\b(ERROR|WARN|panic)\b' "$(broker_log)" |
    sed -E 's/^[^ ]*Z +//; s/^\[[^]]*\] //; s/[0-9]+/N/g' | cut -c1-160 | sort | uniq -c | sort -rn | head -n 5 || true)
  log "$B: stopping"
  stop_broker
}

# ---------------------------------------------------------------------------------------
# The measured part, under the build lock.
exec {LOCK_FD}>>"$LOCK"
log "waiting for $LOCK (at most $LOCK_WAIT s)"
LOCK_T0=$SECONDS
flock -w "$LOCK_WAIT" "$LOCK_FD" || { warn "could not take $LOCK in $LOCK_WAIT s"; exit 1; }
LOCK_WAITED=$((SECONDS - LOCK_T0))
MEASURE_T0=$SECONDS
DEADLINE=$((SECONDS + TOTAL_TIMEOUT))
LOAD_AT_START=$(loadavg)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
FJORD_MTIME=$(date -u -r "$FJORD_BIN" '+%Y-%m-%d %H:%M UTC')

WARM_GB=${TLS_WARM_GB:-$(awk -v n="$N" -v w="$WARM_N" -v k="${#BROKERS[@]}" \
  'BEGIN { v = k * 2 * (n + w) * 1024 / 1073741824; printf "%d", (v == int(v)) ? v : int(v) + 1 }')}
if [ "$WARM_GB" -gt 0 ]; then
  log "warming the page cache: writing and deleting $WARM_GB GiB"
  timeout 300 dd if=/dev/zero of="$WORK/warm.tmp" bs=1M count=$((WARM_GB * 1024)) status=none ||
    warn "page cache warm-up failed"
  rm -f "$WORK/warm.tmp"
fi

for b in "${BROKERS[@]}"; do
  step_limit >/dev/null || { fail "$b (out of time)"; continue; }
  run_broker "$b"
done
MEASURE_S=$((SECONDS - MEASURE_T0))
exec {LOCK_FD}>&-

# ---------------------------------------------------------------------------------------
# Report.
val() { # BROKER LISTENER PHASE KEY: a figure, or n/a when the phase failed or is missing
  local k=$1.$2.$3
  [ "${R[$k.failed]:-0}" = 1 ] && { echo n/a; return; }
  echo "${R[$k.$4]:-n/a}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
cpu_per_gb() { # BROKER LISTENER PHASE: broker CPU seconds per GB of values moved
  local cpu bytes
  cpu=$(val "$1" "$2" "$3" cpu_s)
  bytes=$(val "$1" "$2" "$3" "$3.bytes")
  awk -v c="$cpu" -v b="$bytes" 'BEGIN { if (c == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", c / (b / 1e9) }'
}
num() { awk -v v="$1" 'BEGIN { if (v == "n/a" || v == "") { print "n/a"; exit } s = sprintf("%.0f", v); n = length(s); o = ""
  while (n > 3) { o = "," substr(s, n - 2, 3) o; s = substr(s, 1, n - 3); n -= 3 } print s o }'; }
# row LABEL FIGURE-FUNCTION [FORMAT]: one metric for the four runs and the four ratios.
row() {
  local label=$1 f=$2 fmt=${3:-plain} fp fs kp ks
  fp=$($f fjord PLAINTEXT) fs=$($f fjord SASL_SSL) kp=$($f kafka PLAINTEXT) ks=$($f kafka SASL_SSL)
  show() { [ "$fmt" = num ] && num "$1" || echo "$1"; }
  echo "| $label | $(show "$fp") | $(show "$fs") | $(ratio "$fs" "$fp") | $(show "$kp") | $(show "$ks") | $(ratio "$ks" "$kp") | $(ratio "$fp" "$kp") | $(ratio "$fs" "$ks") |"
}
produce_mbps() { val "$1" "$2" produce produce.mb_per_s; }
produce_rps() { val "$1" "$2" produce produce.records_per_s; }
consume_mbps() { val "$1" "$2" consume consume.mb_per_s; }
consume_rps() { val "$1" "$2" consume consume.records_per_s; }
ack_p50() { val "$1" "$2" produce produce.lat_p50_ms; }
ack_p99() { val "$1" "$2" produce produce.lat_p99_ms; }
produce_cpu() { cpu_per_gb "$1" "$2" produce; }
consume_cpu() { cpu_per_gb "$1" "$2" consume; }

ran() { case " ${BROKERS[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
{
  echo
  echo "TLS + SASL cost — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $COMMIT (fjord binary built $FJORD_MTIME)," \
    "$(num "$N") x 1 KiB records per listener, acks=all, $PARTITIONS partitions, linger.ms=5, batch.size=1000000," \
    "no compression, $(num "$WARM_N") warm-up records per listener first; client (fjord-bench, librdkafka $(sed -n '/^name = "rdkafka-sys"/{n;s/.*+\(.*\)"/\1/p}' "$ROOT/scripts/bench/Cargo.lock") with OpenSSL $(openssl version | cut -d' ' -f2)) and broker share the cores"
  echo "SASL_SSL: mechanism PLAIN (user $SASL_USER), server certificate RSA 2048 signed by a local CA, no client certificate." \
    "Negotiated (openssl s_client): Fjord $(ran fjord && echo "${R[fjord.tls]:-n/a}" || echo n/a), Kafka $(ran kafka && echo "${R[kafka.tls]:-n/a}" || echo n/a)."
  echo
  echo "| metric | Fjord PLAINTEXT | Fjord SASL_SSL | Fjord SASL_SSL/PLAINTEXT | Kafka PLAINTEXT | Kafka SASL_SSL | Kafka SASL_SSL/PLAINTEXT | Fjord/Kafka PLAINTEXT | Fjord/Kafka SASL_SSL |"
  echo "|---|---|---|---|---|---|---|---|---|"
  row "Produce 1 KiB, acks=all: MB/s" produce_mbps
  row "Produce 1 KiB, acks=all: records/s" produce_rps num
  row "Consume the whole topic: MB/s" consume_mbps
  row "Consume the whole topic: records/s" consume_rps num
  row "Produce ack latency p50, at full speed (mostly the client's queue): ms (lower is better)" ack_p50
  row "Produce ack latency p99, at full speed (mostly the client's queue): ms (lower is better)" ack_p99
  row "Broker CPU per GB produced: s (lower is better)" produce_cpu
  row "Broker CPU per GB consumed: s (lower is better)" consume_cpu
  echo
  echo "A ratio above 1 means the first figure is larger: better for MB/s and records/s, worse for latency and CPU."
  echo
  echo "| broker | listener | phase | wall s | busy before (cores) | load before -> after | broker CPU s | load generator CPU s | other CPU s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for b in "${BROKERS[@]}"; do
    for lis in "${LISTENERS[@]}"; do
      for p in warmup-produce warmup-consume produce consume; do
        k=$b.$lis.$p
        [ -n "${R[$k.wall_s]:-}${R[$k.failed]:-}" ] || continue
        echo "| $b | $lis | $p$([ "${R[$k.failed]:-0}" = 1 ] && echo ' **FAILED**') | ${R[$k.wall_s]:-n/a} | ${R[$k.busy_before]:-n/a} | ${R[$k.load_before]:-n/a} -> ${R[$k.load_after]:-n/a} | ${R[$k.cpu_s]:-n/a} | ${R[$k.client_cpu_s]:-n/a} | ${R[$k.other_cpu_s]:-n/a} |"
      done
    done
  done
  echo
  for b in "${BROKERS[@]}"; do
    echo "$b: ${R[$b.log_problems]:-n/a} ERROR/WARN/panic lines in its log$([ -n "${R[$b.log_summary]:-}" ] && echo ', most frequent:')"
    [ -z "${R[$b.log_summary]:-}" ] || echo "${R[$b.log_summary]}" | sed 's/^/    /'
  done
  if ran fjord; then echo "Fjord: $FJORD_BIN ${FJORD_ARGS[*]:-}" | sed 's/\(user_[a-z]*\)="[^"]*"/\1="..."/'; fi
  if ran kafka; then
    echo "Kafka 4.3.0 (scripts/kafka-ref.sh prepare --stock, heap $KAFKA_HEAP), server.properties (later lines win):"
    echo "${KAFKA_CONFIG:-n/a}" | sed 's/^/    /'
  fi
  echo
  echo "Load average at the start $LOAD_AT_START, at the end $(loadavg). Waited $LOCK_WAITED s for $LOCK;" \
    "measured part $MEASURE_S s (page cache warm-up of $WARM_GB GiB included), builds and checks $BUILD_S s, total $((SECONDS - START_S)) s."
} >"$WORK/report.md"
mkdir -p "$BENCH_TARGET"
tee "$BENCH_TARGET/last-tls-results.md" <"$WORK/report.md"

if [ ${#FAILED[@]} -gt 0 ]; then
  warn "failed steps: ${FAILED[*]}"
  exit 1
fi
