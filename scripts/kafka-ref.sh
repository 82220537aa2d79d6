#!/usr/bin/env bash
# Runs the real Apache Kafka 4.3.0 (from the Maven-resolved jars of scripts/setup-kafka.sh) in
# KRaft mode on loopback, as a reference to compare Fjord against:
#   scripts/kafka-ref.sh start [--nodes N] [--stock] [--override key=value]...
#   scripts/kafka-ref.sh prepare [--nodes N] [--stock] [--override key=value]...
#   scripts/kafka-ref.sh launch [--node N]
#   scripts/kafka-ref.sh status
#   scripts/kafka-ref.sh stop
# start: N (default 1) combined broker+controller nodes with static voters, in a throwaway dir;
#   prints the settings and a final line `bootstrap: 127.0.0.1:PORT[,...]` once every broker
#   answers ApiVersions and is registered. stop kills the nodes and removes the dir.
# prepare + launch: start in two steps, for timing a start-up (scripts/bench.sh): prepare
#   writes the configs and formats the storage (`kafka-storage format`), printing
#   `format_ms: N` and `bootstrap: ...`; launch spawns the prepared nodes and returns at once,
#   printing `spawned_unix_us: N` (wall clock just before the first spawn, in the unit of
#   bash's $EPOCHREALTIME) and `pid: N` per node, without waiting for them to answer.
#   launch --node N spawns only node N of a cluster whose other nodes may be running: for
#   restarting one node after a SIGKILL (scripts/cluster-failover.sh --kafka).
# --stock: Kafka's defaults everywhere except what one loopback KRaft node cannot do without
#   (roles, node id, voters, listeners, log dir, replication factor and min ISR 1 of the
#   internal topics), and the JVM options of Kafka's bin/kafka-server-start.sh and
#   kafka-run-class.sh (-Xms = -Xmx = the heap, G1 with MaxGCPauseMillis=20 and IHOP 35,
#   ExplicitGCInvokesConcurrent, a GC log, the local JMX agent). Without it, a test-friendly setup: no initial
#   rebalance delay, -Xmx only, no GC log.
# Env:
#   KAFKA_REF_DIR       state dir (default ${TMPDIR:-/tmp}/fjord-kafka-ref); holds node*/ with
#                       server.properties, data/, server.log and kafka.pid, plus the file bootstrap
#   KAFKA_REF_PORT      broker port of node 1, node i gets PORT+i-1 (default: free ports)
#   KAFKA_REF_HEAP      max heap per node (default 1g; with --stock also the initial heap, as
#                       kafka-server-start.sh's -Xmx1G -Xms1G)
#   KAFKA_REF_TIMEOUT   seconds start waits for the cluster to answer (default 120)
#   KAFKA_REF_LOG_LEVEL broker log level (default info)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FJORD_CACHE:-$ROOT/.cache}"
LIBS="$CACHE/kafka-4.3.0/libs"
DIR="${KAFKA_REF_DIR:-${TMPDIR:-/tmp}/fjord-kafka-ref}"
MARK="$DIR/.fjord-kafka-ref"   # stop deletes DIR only when this is there: never someone else's dir
HEAP="${KAFKA_REF_HEAP:-1g}"
START_TIMEOUT="${KAFKA_REF_TIMEOUT:-120}"
STOP_TIMEOUT=30
TIMING=1 # prepare and launch print format_ms / spawned_unix_us; start does not

log() { echo "kafka-ref: $*"; }
die() { echo "kafka-ref: ERROR: $*" >&2; exit 1; }

# node_dirs: the node directories of the running (or last) cluster, in node order.
node_dirs() { compgen -G "$DIR/node*" | sort -V || true; }

# pid_of NODE_DIR: the node's JVM pid, only if that process is alive and really is this node
# (a pid file can outlive its process, and the pid be reused).
pid_of() {
  local pid
  pid="$(cat "$1/kafka.pid" 2>/dev/null)" || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  grep -qF "$1/server.properties" "/proc/$pid/cmdline" 2>/dev/null || return 1
  # A zombie still answers kill -0; it is dead for our purposes.
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports N: N distinct free loopback ports (all sockets held until every port is picked).
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

cmd_stop() {
  local d pid pids=() deadline
  if [ ! -e "$MARK" ]; then
    [ -e "$DIR" ] && die "$DIR exists but was not made by kafka-ref.sh; not touching it"
    log "not running ($DIR absent)"
    return 0
  fi
  for d in $(node_dirs); do
    if pid="$(pid_of "$d")"; then pids+=("$pid"); fi
  done
  if [ "${#pids[@]}" -gt 0 ]; then
    log "stopping pids ${pids[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # All nodes at once: the cluster is thrown away, so a controlled shutdown that waits for a
    # quorum which is stopping too is not worth waiting out; SIGKILL after STOP_TIMEOUT.
    deadline=$((SECONDS + STOP_TIMEOUT))
    while [ $SECONDS -lt $deadline ] && any_alive; do sleep 0.2; done
    if any_alive; then
      log "still running after ${STOP_TIMEOUT}s; SIGKILL"
      for d in $(node_dirs); do
        if pid="$(pid_of "$d")"; then kill -KILL "$pid" 2>/dev/null || true; fi
      done
      deadline=$((SECONDS + 10))
      while [ $SECONDS -lt $deadline ] && any_alive; do sleep 0.2; done
      any_alive && die "nodes survived SIGKILL; $DIR kept"
    fi
  fi
  rm -rf "$DIR"
  log "stopped; removed $DIR"
}

any_alive() {
  local d
  for d in $(node_dirs); do pid_of "$d" >/dev/null && return 0; done
  return 1
}

cmd_status() {
  local d pid port rc=0
  [ -e "$MARK" ] || { log "not running ($DIR absent)"; return 1; }
  for d in $(node_dirs); do
    port="$(cat "$d/broker.port")"
    if pid="$(pid_of "$d")"; then
      if port_open "$port"; then log "$(basename "$d"): pid $pid, broker 127.0.0.1:$port listening"
      else log "$(basename "$d"): pid $pid, broker 127.0.0.1:$port not listening"; rc=1; fi
    else
      log "$(basename "$d"): not running (log: $d/server.log)"; rc=1
    fi
  done
  echo "bootstrap: $(cat "$DIR/bootstrap")"
  return $rc
}

# write_config NODE_ID BROKER_PORT CONTROLLER_PORT VOTERS NODES NODE_DIR STOCK OVERRIDES...
write_config() {
  local id="$1" bport="$2" cport="$3" voters="$4" n="$5" d="$6" stock="$7"; shift 7
  # Internal topics replicated as widely as the cluster allows, min ISR 2 when there are 3,
  # the way a production cluster would be set up; on one node everything must be 1.
  local rf=$((n < 3 ? n : 3)) isr=$((n < 3 ? 1 : 2))
  cat >"$d/server.properties" <<EOF
# Written by scripts/kafka-ref.sh
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
EOF
  # As in Kafka's shipped config/server.properties: no 3 s wait before a new group's first
  # rebalance. Not a built-in default, so --stock leaves it out.
  [ "$stock" = 1 ] || echo "group.initial.rebalance.delay.ms=0" >>"$d/server.properties"
  local kv
  for kv in "$@"; do echo "$kv" >>"$d/server.properties"; done
}

# cluster_ready BOOTSTRAP N: every broker answers ApiVersions and is in the metadata.
cluster_ready() {
  local out
  out="$(KAFKA_TOOL_TIMEOUT=30 bash "$ROOT/scripts/kafka-tool.sh" kafka-broker-api-versions \
    --bootstrap-server "$1" 2>/dev/null)" || return 1
  [ "$(grep -c '(id: ' <<<"$out")" -ge "$2" ]
}

# start_failed: shows the end of each node's log (the dir is about to go), then stops everything.
start_failed() {
  local d
  echo "kafka-ref: start failed; cleaning up" >&2
  for d in $(node_dirs); do
    [ -s "$d/server.log" ] || continue
    echo "--- last lines of $(basename "$d")/server.log" >&2
    tail -n 20 "$d/server.log" | cut -c1-300 >&2
  done
  cmd_stop >&2
}

# cmd_prepare [--nodes N] [--stock] [--override key=value]...: the dir, configs and formatted
# storage of every node, and in $DIR/java.args the JVM's arguments; nothing runs afterwards.
cmd_prepare() {
  local nodes=1 stock=0 overrides=() ports i d cid voters="" bootstrap="" pids=() t0
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) nodes="${2:?--nodes needs a number}"; shift 2 ;;
      --stock) stock=1; shift ;;
      --override) overrides+=("${2:?--override needs key=value}"); shift 2 ;;
      *) die "unknown option '$1'" ;;
    esac
  done
  [[ "$nodes" =~ ^[1-9][0-9]?$ ]] || die "--nodes must be 1..99"

  if [ -e "$MARK" ]; then
    any_alive && die "already running in $DIR (scripts/kafka-ref.sh stop first)"
    log "removing stale $DIR"
    rm -rf "$DIR"
  fi
  [ -e "$DIR" ] && die "$DIR exists and was not made by kafka-ref.sh; set KAFKA_REF_DIR"

  if [ ! -f "$CACHE/kafka-4.3.0/.resolved" ]; then
    FJORD_CACHE="$CACHE" KAFKA_CLIENT_VERSIONS='' bash "$ROOT/scripts/setup-kafka.sh"
  fi

  mkdir -p "$DIR"
  touch "$MARK"
  # From here on a failed or interrupted start leaves nothing behind (die exits, hence EXIT).
  READY=0
  trap '[ "$READY" = 1 ] || start_failed' EXIT
  trap 'exit 130' INT TERM

  # Controller ports are always free ones; broker ports too unless KAFKA_REF_PORT fixes them.
  read -r -a ports <<<"$(free_ports $((2 * nodes)))"
  local bports=() cports=()
  for ((i = 1; i <= nodes; i++)); do
    if [ -n "${KAFKA_REF_PORT:-}" ]; then bports+=($((KAFKA_REF_PORT + i - 1)))
    else bports+=("${ports[$((2 * i - 2))]}"); fi
    cports+=("${ports[$((2 * i - 1))]}")
    voters+="${voters:+,}$i@127.0.0.1:${cports[$((i - 1))]}"
    bootstrap+="${bootstrap:+,}127.0.0.1:${bports[$((i - 1))]}"
  done
  echo "$bootstrap" >"$DIR/bootstrap"
  # A fixed port someone else holds would pass the readiness checks below by answering them.
  for i in "${bports[@]}"; do
    port_open "$i" && die "port $i is already in use"
  done

  # Kafka's cluster id: 16 random bytes, base64url without padding (what `kafka-storage
  # random-uuid` prints), minus one JVM start. Kafka never hands out ids starting with '-'.
  cid="$(python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    if not s.startswith("-"): print(s); break')"

  # The JVM's arguments, one per line; launch reads them back. @NODE@ is the node's dir.
  if [ "$stock" = 1 ]; then
    # bin/kafka-server-start.sh (KAFKA_HEAP_OPTS, -loggc) and kafka-run-class.sh
    # (KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_JMX_OPTS) as shipped; the log4j2 config is ours (stdout to server.log).
    printf '%s\n' "-Xmx$HEAP" "-Xms$HEAP" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 \
      -Djava.awt.headless=true "-Xlog:gc*:file=@NODE@/kafkaServer-gc.log:time,tags:filecount=10,filesize=100M" \
      -Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.authenticate=false \
      -Dcom.sun.management.jmxremote.ssl=false >"$DIR/java.args"
  else
    printf '%s\n' "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true >"$DIR/java.args"
  fi

  log "Apache Kafka 4.3.0, KRaft, $nodes combined broker+controller node(s), cluster id $cid"
  log "dir $DIR, heap $HEAP per node$([ "$stock" = 1 ] && echo ' (-Xms = -Xmx), stock settings'), jars $LIBS"
  for ((i = 1; i <= nodes; i++)); do
    d="$DIR/node$i"
    mkdir -p "$d"
    echo "${bports[$((i - 1))]}" >"$d/broker.port"
    write_config "$i" "${bports[$((i - 1))]}" "${cports[$((i - 1))]}" "$voters" "$nodes" "$d" "$stock" ${overrides[@]+"${overrides[@]}"}
    log "node $i: broker 127.0.0.1:${bports[$((i - 1))]}, controller 127.0.0.1:${cports[$((i - 1))]}, config $d/server.properties"
  done
  [ "${#overrides[@]}" -eq 0 ] || log "overrides: ${overrides[*]}"

  # Format every node's log dir (what `kafka-storage format` does), in parallel: each is a JVM start.
  t0=$EPOCHREALTIME
  for ((i = 1; i <= nodes; i++)); do
    d="$DIR/node$i"
    KAFKA_TOOL_TIMEOUT=60 bash "$ROOT/scripts/kafka-tool.sh" kafka-storage format \
      --config "$d/server.properties" --cluster-id "$cid" >"$d/format.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 1; i <= nodes; i++)); do
    if ! wait "${pids[$((i - 1))]}"; then
      kill "${pids[@]}" 2>/dev/null || true
      cat "$DIR/node$i/format.log" >&2
      die "formatting node $i failed"
    fi
  done
  READY=1
  [ "$TIMING" = 1 ] || return 0
  echo "format_ms: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')"
  echo "bootstrap: $bootstrap"
}

# cmd_launch [--node N]: spawn every prepared node (or only node N) and return; nothing waits
# for them to answer.
cmd_launch() {
  local d args=() t0="" dirs
  [ -e "$MARK" ] && [ -f "$DIR/java.args" ] || die "nothing prepared in $DIR (scripts/kafka-ref.sh prepare first)"
  if [ "${1:-}" = --node ]; then
    dirs="$DIR/node${2:?--node needs a number}"
    [ -f "$dirs/server.properties" ] || die "no node ${2} in $DIR"
    pid_of "$dirs" >/dev/null && die "node ${2} is already running"
  else
    [ $# -eq 0 ] || die "unknown option '$1'"
    dirs="$(node_dirs)"
    any_alive && die "already running in $DIR"
  fi
  for d in $dirs; do
    mapfile -t args <"$DIR/java.args"
    args=("${args[@]//@NODE@/$d}")
    [ -n "$t0" ] || t0=${EPOCHREALTIME/./}
    # nohup and no terminal: the nodes outlive this script and its shell; stop finds them by pid.
    # Appended to: a node restarted with --node keeps what it logged before.
    KAFKA_REF_LOG_LEVEL="${KAFKA_REF_LOG_LEVEL:-info}" nohup java "${args[@]}" \
      "-Dlog4j2.configurationFile=$ROOT/compat-tests/kafka-dist/server-log4j2.properties" \
      -cp "$LIBS/*" kafka.Kafka "$d/server.properties" </dev/null >>"$d/server.log" 2>&1 &
    echo $! >"$d/kafka.pid"
    log "node ${d##*node}: pid $!, log $d/server.log"
  done
  [ "$TIMING" = 1 ] || return 0
  echo "spawned_unix_us: $t0"
  for d in $dirs; do echo "pid: $(cat "$d/kafka.pid")"; done
}

cmd_start() {
  local nodes d deadline start_s bootstrap
  TIMING=0
  cmd_prepare "$@" # sets the EXIT trap that cleans up after a failed start
  READY=0
  start_s=$SECONDS
  cmd_launch
  nodes=$(node_dirs | wc -l)

  # Bounded wait: first every broker port (cheap), then one ApiVersions round trip that sees
  # all N brokers registered (a JVM start per try).
  bootstrap="$(cat "$DIR/bootstrap")"
  deadline=$((SECONDS + START_TIMEOUT))
  for d in $(node_dirs); do
    until port_open "$(cat "$d/broker.port")"; do
      pid_of "$d" >/dev/null || die "$(basename "$d") exited during start-up"
      [ $SECONDS -lt $deadline ] || die "$(basename "$d") not listening after ${START_TIMEOUT}s"
      sleep 0.2
    done
  done
  until cluster_ready "$bootstrap" "$nodes"; do
    [ $SECONDS -lt $deadline ] || die "cluster not ready after ${START_TIMEOUT}s"
    any_alive || die "nodes exited during start-up"
    sleep 1
  done
  READY=1
  log "ready in $((SECONDS - start_s)) s"
  echo "bootstrap: $bootstrap"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  prepare) shift; cmd_prepare "$@" ;;
  launch) shift; cmd_launch "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|prepare [--nodes N] [--stock] [--override key=value]... | launch [--node N] | status | stop" >&2; exit 2 ;;
esac
