#!/usr/bin/env bash
# Shared by compat-tests/cluster.sh and scripts/cluster-failover.sh: a three-node Fjord cluster
# (every node a combined broker+controller, static quorum voters) on loopback. Source it after
# setting CWORK (the work dir: node data dirs and logs go there); it sources lib.sh.
#
#   cluster_pick_ports       PORT[n] / QPORT[n] (broker / controller port of node n), ADDR[n],
#                            VOTERS, BOOTSTRAP_ALL
#   node_start N             spawns node N (data $CWORK/nodeN, log appended to $CWORK/nodeN.log)
#   node_wait_started SECS N...  until each node logged "fjord started" since its last start
#   node_kill N [SIGNAL]     signals node N (default KILL) and waits for it to exit
#   cluster_stop             stops every node still running (TERM, then KILL)
#   others N                 the node numbers other than N
#
# Env: CLUSTER_SESSION_TIMEOUT_MS (default 3000) and CLUSTER_HEARTBEAT_MS (default 500) become
# broker.session.timeout.ms / broker.heartbeat.interval.ms; CLUSTER_EXTRA_OVERRIDES (k=v ...)
# adds settings to every node, as does the array CLUSTER_EXTRA (for values with spaces);
# CLUSTER_BROKER_LISTENER (default PLAINTEXT) names the broker listener.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES=(1 2 3)
SESSION_TIMEOUT_MS="${CLUSTER_SESSION_TIMEOUT_MS:-3000}"
HEARTBEAT_MS="${CLUSTER_HEARTBEAT_MS:-500}"
declare -A PORT QPORT ADDR NODE_PID NODE_WRAPPER LOG_MARK

# port_free PORT: nothing listens on it and it can be bound (no SO_REUSEADDR, so a port still
# in TIME_WAIT counts as taken too).
port_free() {
  python3 -c '
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1"
}

# Six consecutive ports from a random base below Linux's ephemeral range (32768 and up), so no
# outgoing connection is handed one of them between the check and the nodes binding them; two
# runs side by side pick different bases, and a taken port makes us pick again.
cluster_pick_ports() {
  local try base i ok
  for try in $(seq 1 50); do
    base=$((20000 + (RANDOM % 2000) * 6))
    ok=1
    for i in 0 1 2 3 4 5; do port_free $((base + i)) || { ok=0; break; }; done
    [ "$ok" = 1 ] && break
  done
  [ "$ok" = 1 ] || { echo "cluster-lib: no six free consecutive ports found in 50 tries" >&2; return 1; }
  VOTERS="" BOOTSTRAP_ALL=""
  for i in "${NODES[@]}"; do
    PORT[$i]=$((base + 2 * (i - 1)))
    QPORT[$i]=$((base + 2 * (i - 1) + 1))
    ADDR[$i]="127.0.0.1:${PORT[$i]}"
    VOTERS+="${VOTERS:+,}$i@127.0.0.1:${QPORT[$i]}"
    BOOTSTRAP_ALL+="${BOOTSTRAP_ALL:+,}${ADDR[$i]}"
  done
}

node_start() {
  local n="$1" o overrides=()
  local log="$CWORK/node$n.log"
  touch "$log"
  LOG_MARK[$n]=$(wc -l <"$log")
  for o in "node.id=$n" "process.roles=broker,controller" "controller.quorum.voters=$VOTERS" \
      "controller.listener.names=CONTROLLER" \
      "listeners=${CLUSTER_BROKER_LISTENER:-PLAINTEXT}://${ADDR[$n]},CONTROLLER://127.0.0.1:${QPORT[$n]}" \
      "broker.session.timeout.ms=$SESSION_TIMEOUT_MS" "broker.heartbeat.interval.ms=$HEARTBEAT_MS" \
      ${CLUSTER_EXTRA_OVERRIDES:-} ${CLUSTER_EXTRA[@]+"${CLUSTER_EXTRA[@]}"}; do
    overrides+=(--override "$o")
  done
  echo "=== node $n started at $(date +%T.%3N)" >>"$log"
  LOG_MARK[$n]=$((LOG_MARK[$n] + 1))
  rm -f "$CWORK/node$n.pid"
  # Through a subshell that waits for the node: bash reports a child killed by a signal
  # ("Killed") on the stderr of the shell that reaps it, which is then the node's log.
  # The harness variables are not broker settings; the broker rejects unknown FJORD_* names.
  (
    env -u FJORD_CACHE -u FJORD_BIN RUST_LOG="${RUST_LOG:-info}" "$FJORD_BIN" \
      --log-dirs "$CWORK/node$n" "${overrides[@]}" &
    echo $! >"$CWORK/node$n.pid"
    wait $!
  ) >>"$log" 2>&1 &
  NODE_WRAPPER[$n]=$!
  for _ in $(seq 1 100); do
    [ -s "$CWORK/node$n.pid" ] && break
    sleep 0.05
  done
  NODE_PID[$n]="$(cat "$CWORK/node$n.pid" 2>/dev/null)"
}

# node_started N: "fjord started" logged since node N's last start.
node_started() { tail -n "+$((LOG_MARK[$1] + 1))" "$CWORK/node$1.log" | grep -q "fjord started"; }
node_alive() { [ -n "${NODE_PID[$1]:-}" ] && kill -0 "${NODE_PID[$1]}" 2>/dev/null; }

node_wait_started() {
  local secs="$1" n pending; shift
  local deadline=$((SECONDS + secs))
  while :; do
    pending=()
    for n in "$@"; do
      node_started "$n" && continue
      if ! node_alive "$n"; then
        echo "node $n exited before it logged 'fjord started'; its log:"
        node_log_tail "$n" 30
        return 1
      fi
      pending+=("$n")
    done
    [ "${#pending[@]}" -eq 0 ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      echo "node(s) ${pending[*]} did not log 'fjord started' within ${secs}s"
      for n in "${pending[@]}"; do node_log_tail "$n" 20; done
      return 1
    fi
    sleep 0.1
  done
}

# node_log_tail N LINES: the end of node N's log, colour codes stripped, lines clipped.
node_log_tail() {
  echo "--- node $1 log ($CWORK/node$1.log), last $2 lines"
  tail -n "$2" "$CWORK/node$1.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-300
}

node_kill() {
  local n="$1" sig="${2:-KILL}" pid="${NODE_PID[$1]:-}" rc=0
  [ -n "$pid" ] || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "node $n (pid $pid) still running 10s after SIG$sig; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rc=1
  fi
  wait "${NODE_WRAPPER[$n]}" 2>/dev/null || true
  NODE_PID[$n]= NODE_WRAPPER[$n]=
  return $rc
}

cluster_stop() {
  local n
  for n in "${NODES[@]}"; do
    if node_alive "$n"; then kill -TERM "${NODE_PID[$n]}" 2>/dev/null || true; fi
  done
  for n in "${NODES[@]}"; do node_kill "$n" TERM >/dev/null || true; done
}

others() {
  local n
  for n in "${NODES[@]}"; do [ "$n" = "$1" ] || printf '%s ' "$n"; done
}

# addrs N...: their broker addresses, comma-separated.
addrs() {
  local n out=""
  for n in "$@"; do out+="${out:+,}${ADDR[$n]}"; done
  echo "$out"
}
