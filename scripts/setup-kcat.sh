#!/usr/bin/env bash
# Install kcat (librdkafka-based CLI) from Debian packages unless it is already on PATH.
set -euo pipefail

if command -v kcat >/dev/null 2>&1; then
  echo "setup-kcat: $(command -v kcat) already installed"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive

# Try without refreshing first: on a machine with fresh package lists this saves the
# slow update; on a fresh container the lists are empty, so fall back to update.
if ! $SUDO apt-get install -y -q kcat; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q kcat
fi
echo "setup-kcat: installed $(command -v kcat)"
