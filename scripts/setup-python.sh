#!/usr/bin/env bash
# Create (or reuse) the venv holding the Python Kafka clients used by compat-tests.
# Idempotent: a stamp file records the hash of requirements.txt, so re-running is a
# no-op until the pins change. Honours FJORD_CACHE like compat-tests/lib.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FJORD_CACHE:-$ROOT/.cache}"
VENV="$CACHE/venv"
REQS="$ROOT/compat-tests/python/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PYTHON="${PYTHON:-python3}"

want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$want" ]; then
  echo "setup-python: venv up to date at $VENV"
  exit 0
fi

# Rebuild from scratch rather than upgrade in place, so a pin that was dropped or a
# half-finished earlier install cannot linger in the venv.
rm -rf "$VENV"
mkdir -p "$CACHE"
"$PYTHON" -m venv "$VENV"

# --only-binary keeps installs fast and deterministic: no client is ever built from
# source (confluent-kafka would otherwise need librdkafka headers).
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet \
  --only-binary=:all: -r "$REQS"
"$VENV/bin/python" -c 'import kafka, confluent_kafka, aiokafka, pytest'
echo "$want" >"$STAMP"
echo "setup-python: installed $(grep -v -e '^#' -e '^$' "$REQS" | paste -sd' ') into $VENV"
