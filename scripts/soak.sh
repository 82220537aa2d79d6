#!/usr/bin/env bash
# Soak test: 8 keyed producers (confluent-kafka, kafka-python, aiokafka; several codecs),
# two consumer groups (classic with member churn, KIP-848), two assign() consumers and a
# periodic admin client against one broker; then checks that every acknowledged record was
# consumed by each group and read intact by the assign() consumers, with zero client errors.
# Reports broker RSS (after warm-up, end, peak), CPU and throughput. Details in scripts/soak.py.
#
# Usage: scripts/soak.sh [--minutes M] [--rate R] [--value-bytes B] [--partitions P]
#                        [--churn S] [--broker-args "..."]
#   --minutes: production time (default 1, the CI form; 10 by hand). The whole run takes
#   that plus about 30-60 s (start-up, drain, verification).
# Env: SOAK_TIMEOUT bounds the whole run (seconds, default: minutes*60 + 600);
#      KEEP_WORK=1 keeps the data dir, broker log and per-client results even on success;
#      FJORD_BIN / FJORD_CACHE as in compat-tests/lib.sh.
#
# scripts/soak.sh --ids [--minutes M] [--expiration-ms MS] [--broker-expiration-ms MS] [...]:
# the id-churn form (scripts/soak_ids.py; --minutes 1.5 is the CI form, about 100 s in all):
# NEW idempotent producer ids and transactional ids all the time (librdkafka clients with
# transactions and aborts, plus a raw-protocol storm of 150 new ids/s), expirations at 5 s,
# read_committed readers; fails if the median broker RSS of the last 15% of the load exceeds
# that of 35-50% by more than 14 MiB, if the broker still lists expired ids (ListTransactions,
# DescribeProducers) or InitProducerId still knows them, or if a reader misses a committed
# record or sees an aborted one.
# Exit status: 0 pass, 1 errors or missing records, 2 the run itself failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../compat-tests/lib.sh"

if [ ! -x "$VENV/bin/python" ]; then echo "no venv at $VENV: run scripts/setup-python.sh"; exit 2; fi
if [ ! -x "$FJORD_BIN" ]; then echo "broker binary $FJORD_BIN not built"; exit 2; fi

minutes=1
script=soak.py
work_name=fjord-soak
args=()
for a in "$@"; do
  if [ "$a" = --ids ]; then script=soak_ids.py; work_name=fjord-soak-ids; else args+=("$a"); fi
done
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --minutes) minutes="${args[$((i + 1))]:-1}" ;;
    --minutes=*) minutes="${args[$i]#--minutes=}" ;;
  esac
done
timeout_s="${SOAK_TIMEOUT:-$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 + 600 }')}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/$work_name.XXXXXX")"
rc=1
finish() {
  if [ -f "$WORK/data.pid" ]; then
    "$VENV/bin/python" -c 'import sys; sys.path.insert(0, sys.argv[1]); import harness; harness.kill_leftover(sys.argv[2])' \
      "$ROOT/scripts" "$WORK/data.pid" || true
  fi
  if [ "$rc" -ne 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "--- work dir kept: $WORK (broker log $WORK/data.log, client results $WORK/data.results/)"
    if [ "$rc" -ne 0 ]; then
      echo "--- broker log: warnings/errors (last 30)"
      grep -a -E 'WARN|ERROR|panic' "$WORK/data.log" 2>/dev/null | tail -30 || true
    fi
  else
    rm -rf "$WORK"
  fi
}
trap finish EXIT

set +e
PYTHONDONTWRITEBYTECODE=1 timeout --kill-after=20 "$timeout_s" \
  "$VENV/bin/python" -u "$ROOT/scripts/$script" \
  --broker-bin "$FJORD_BIN" --data-dir "$WORK/data" --json "$WORK/summary.json" ${args[@]+"${args[@]}"}
rc=$?
set -e
[ "$rc" -eq 124 ] && echo "$script killed after ${timeout_s}s"
exit "$rc"
