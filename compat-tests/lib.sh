#!/usr/bin/env bash
# Shared helpers for compat scenarios: start, stop and restart a Fjord broker on a free
# loopback port with its own data dir. Source this file; it never installs anything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FJORD_BIN="${FJORD_BIN:-$ROOT/target/release/fjord}"
CACHE="${FJORD_CACHE:-$ROOT/.cache}"
VENV="$CACHE/venv"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_broker DATA_DIR [extra fjord args...]
# Sets BROKER_PID, BROKER_PORT, BOOTSTRAP. Reuses BROKER_PORT if already set (for restarts).
start_broker() {
  local dir="$1"; shift
  BROKER_PORT="${BROKER_PORT:-$(free_port)}"
  BOOTSTRAP="127.0.0.1:$BROKER_PORT"
  BROKER_LOG="$dir.log"
  # The harness variables are not broker settings; the broker rejects unknown FJORD_* names.
  env -u FJORD_CACHE -u FJORD_BIN RUST_LOG="${RUST_LOG:-info}" "$FJORD_BIN" \
    --listeners "PLAINTEXT://127.0.0.1:$BROKER_PORT" --log-dirs "$dir" "$@" >>"$BROKER_LOG" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then return 0; fi
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then echo "broker died; log:"; tail -50 "$BROKER_LOG"; return 1; fi
    sleep 0.1
  done
  echo "broker did not start listening on $BOOTSTRAP"; tail -50 "$BROKER_LOG"; return 1
}

# stop_broker [SIGNAL]: graceful (TERM) by default; waits for exit (bounded).
stop_broker() {
  local sig="${1:-TERM}"
  [ -n "${BROKER_PID:-}" ] || return 0
  kill "-$sig" "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$BROKER_PID" 2>/dev/null || { wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=; return 0; }
    sleep 0.1
  done
  echo "broker did not stop within 10s; killing"; kill -9 "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=
  return 1
}

# restart_broker DATA_DIR [extra args]: graceful stop then start on the same port and dir.
restart_broker() { stop_broker TERM; start_broker "$@"; }
