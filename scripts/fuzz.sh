#!/usr/bin/env bash
# Time-bounded fuzzing of Fjord's untrusted-input paths with cargo-fuzz (libFuzzer).
#
# Usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  libFuzzer -max_total_time for each target (default 60)
#   TARGET              any of fuzz/fuzz_targets/*.rs (default: all of them)
#
# For each target: the committed seed corpus fuzz/corpus/<target>/ (captured from real client
# traffic, see fuzz/capture-corpus.sh) is copied to a temporary working corpus, so a run never
# modifies the repository, and the target runs for the given time with bounded memory. Inputs
# under fuzz/regressions/<target>/ (ones that failed before) are first replayed one by one. Exits
# non-zero if any target found a crash, panic, leak, timeout or out-of-memory input, after
# printing the reproducer's path, its bytes and the command that replays it.
#
# Toolchain: nightly with AddressSanitizer (and LeakSanitizer) when a nightly is installed;
# otherwise the stable toolchain with RUSTC_BOOTSTRAP=1 and --sanitizer none (panics, aborts,
# timeouts and RSS blow-ups are still caught; leaks and single huge mallocs are not).
#
# Environment:
#   FUZZ_TOOLCHAIN       force "nightly" or "stable"
#   FUZZ_RSS_LIMIT_MB    -rss_limit_mb (default 2048)
#   FUZZ_MALLOC_LIMIT_MB -malloc_limit_mb (default = FUZZ_RSS_LIMIT_MB; see below)
#   FUZZ_TIMEOUT         -timeout, seconds for one input (default 10)
#   FUZZ_WORK            working directory (default: a new temp dir, kept when a target fails)
#   FUZZ_EXTRA_ARGS      more libFuzzer flags, e.g. "-max_len=65536"
#   FUZZ_KEEP_GOING=1    fork mode (-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1):
#                        keep fuzzing past a finding to collect every distinct one in the time
#   CARGO_BUILD_JOBS     as for cargo (set it to 1 on a shared machine)
#
# About -malloc_limit_mb: libFuzzer sees single allocations only through sanitizer malloc hooks
# (so not at all with --sanitizer none), and the fjord crate's global allocator
# (src/alloc.rs) sends every block of 1 GiB or more to mmap(MAP_NORESERVE), around malloc and
# so around the hook. A limit at or above 1024 MiB therefore never fires; a lower one flags
# single mallocs of [limit, 1 GiB) -- address space that kafka-protocol reserves from a
# wire-supplied array length before it finds the frame too short, lazily mapped and never
# touched. Real memory growth is what -rss_limit_mb catches.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

SECS="${1:-60}"
if [ $# -gt 0 ]; then shift; fi
if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  TARGETS=()
  for f in fuzz/fuzz_targets/*.rs; do TARGETS+=("$(basename "$f" .rs)"); done
fi
RSS_MB="${FUZZ_RSS_LIMIT_MB:-2048}"
MALLOC_MB="${FUZZ_MALLOC_LIMIT_MB:-$RSS_MB}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
read -r -a EXTRA <<<"${FUZZ_EXTRA_ARGS:-}"
if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
  EXTRA+=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
fi

say() { echo "fuzz.sh: $*"; }

# ---------------------------------------------------------------- cargo-fuzz
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
say "$(cargo fuzz --version)"

# ---------------------------------------------------------------- toolchain
TC="${FUZZ_TOOLCHAIN:-}"
if [ -z "$TC" ]; then
  if cargo +nightly --version >/dev/null 2>&1; then TC=nightly; else TC=stable; fi
fi
if [ "$TC" = nightly ]; then
  CARGO=(cargo +nightly)
  SANITIZER=address
else
  # cargo-fuzz passes nightly-only flags; RUSTC_BOOTSTRAP lets stable accept them. No
  # sanitizer: -Zsanitizer needs a nightly's sanitizer runtimes.
  export RUSTC_BOOTSTRAP=1
  CARGO=(cargo)
  SANITIZER=none
fi
say "toolchain: $("${CARGO[@]}" --version 2>/dev/null | head -1) ($TC), sanitizer: $SANITIZER"
BUILD_FLAGS=(--sanitizer "$SANITIZER" --debug-assertions --fuzz-dir "$ROOT/fuzz")
# The fallback builds with other flags: its own target dir, so switching does not rebuild both.
if [ "$TC" != nightly ]; then BUILD_FLAGS+=(--target-dir "$ROOT/fuzz/target/stable-fallback"); fi

HOST="$(rustc -vV | sed -n 's/^host: //p')"
TARGET_DIR="$ROOT/fuzz/target"
if [ "$TC" != nightly ]; then TARGET_DIR="$ROOT/fuzz/target/stable-fallback"; fi

# ---------------------------------------------------------------- build
say "building targets: ${TARGETS[*]}"
for t in "${TARGETS[@]}"; do
  "${CARGO[@]}" fuzz build "${BUILD_FLAGS[@]}" "$t"
done

# ---------------------------------------------------------------- run
WORK="${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/fjord-fuzz.XXXXXX")}"
mkdir -p "$WORK"
say "working dir $WORK; ${SECS}s per target, -rss_limit_mb=$RSS_MB -malloc_limit_mb=$MALLOC_MB -timeout=$TIMEOUT"

count_files() { find "$1" -type f | wc -l | tr -d ' '; }
# Greps that find nothing must not stop the script (set -e, pipefail).
last_stat() { # last_stat LOG REGEX: cov/ft/corp of the last libFuzzer status line matching REGEX
  { grep -E "$2" "$1" | tail -1 | grep -oE '(cov|ft): [0-9]+|corp: [0-9]+(/[0-9]+[a-zA-Z]*)?' | tr '\n' ' '; } || true
}
first_match() { { grep -oE "$1" "$2" | head -1; } || true; }
# signature OUTPUT: what a failing input hit (error kind or panic site, message, innermost fjord frame).
signature() {
  { grep -m1 -oE 'panicked at [^ ]+|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer): [a-zA-Z -]+' <<<"$1" || true
    grep -m1 -A1 'panicked at' <<<"$1" | tail -1 | cut -c1-160 || true
    grep -m1 -oE 'at \./src/[^ ]+' <<<"$1" || true; } | tr '\n' ' '
}

failed=()
summary=()
regressions_failed=()
for t in "${TARGETS[@]}"; do
  corpus="$WORK/corpus/$t"
  art="$WORK/artifacts/$t"
  log="$WORK/$t.log"
  mkdir -p "$corpus" "$art"
  if [ -d "fuzz/corpus/$t" ]; then cp -R "fuzz/corpus/$t/." "$corpus/"; fi
  seeds="$(count_files "$corpus")"
  bin="$TARGET_DIR/$HOST/release/$t"
  # Inputs that once failed (fuzz/regressions/<target>/): each must now pass on its own.
  if [ -d "fuzz/regressions/$t" ]; then
    for r in "fuzz/regressions/$t"/*; do
      [ -f "$r" ] || continue
      if out="$(timeout 300 "$bin" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$MALLOC_MB" -timeout="$TIMEOUT" "$r" 2>&1)"; then
        say "regression $r: passes"
      else
        say "!!! regression $r still fails: $(signature "$out")"
        regressions_failed+=("$r")
      fi
    done
  fi
  say "=== $t: ${SECS}s, $seeds seed inputs"
  rc=0
  "${CARGO[@]}" fuzz run "${BUILD_FLAGS[@]}" "$t" "$corpus" -- \
    -max_total_time="$SECS" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$MALLOC_MB" \
    -timeout="$TIMEOUT" -artifact_prefix="$art/" -print_final_stats=1 "${EXTRA[@]}" \
    >"$log" 2>&1 || rc=$?
  # Executions: the final stats (normal mode), else the last status line's #N (fork mode).
  execs="$(first_match 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)"
  [ -n "$execs" ] || execs="$({ grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#'; } || true)"
  rate="$(first_match 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)"
  after="$(count_files "$corpus")"
  line="$t: ${execs:-?} execs (${rate:-?}/s), corpus $seeds -> $after files; start [$(last_stat "$log" '^#[0-9]+[[:space:]]+INITED')] end [$(last_stat "$log" '^#[0-9]+:?[[:space:]]')]"
  mapfile -t findings < <(find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  if [ "$rc" -ne 0 ] || [ ${#findings[@]} -ne 0 ]; then
    kind="$(first_match 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer): [a-zA-Z -]+|panicked at [^:]+:[0-9]+:[0-9]+' "$log")"
    # The innermost frame in the fjord crate itself (backtrace lines "at ./src/...").
    where="$(first_match 'at \./src/[^ ]+:[0-9]+:[0-9]+' "$log" | sed 's/^at //')"
    kind="${kind}${where:+ (fjord: $where)}"
    say "!!! $t FAILED (exit $rc): ${kind:-see log}"
    echo "----- $log (first error: message and stack, bounded)"
    { awk '/panicked at|==[0-9]+==ERROR|ERROR: libFuzzer|^thread .* panicked/{p=1} p' "$log" | head -60; } || true
    echo "-----"
    if [ ${#findings[@]} -eq 0 ]; then
      say "no reproducer file found; full log in $log"
    fi
    # Replay each reproducer and group them by what they hit (panic site and innermost fjord
    # frame, or the libFuzzer/sanitizer error kind); show the smallest input of each group.
    declare -A smallest=() count=()
    for repro in "${findings[@]}"; do
      out="$(timeout 120 "$bin" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$MALLOC_MB" "$repro" 2>&1 || true)"
      sig="$(signature "$out")"
      [ -n "${sig// /}" ] || sig="$(basename "$repro" | cut -d- -f1) (did not reproduce alone)"
      count[$sig]=$(( ${count[$sig]:-0} + 1 ))
      if [ -z "${smallest[$sig]:-}" ] || [ "$(wc -c <"$repro")" -lt "$(wc -c <"${smallest[$sig]}")" ]; then
        smallest[$sig]="$repro"
      fi
    done
    for sig in "${!count[@]}"; do
      repro="${smallest[$sig]}"
      say "finding x${count[$sig]}: $sig"
      say "  smallest reproducer: $repro ($(wc -c <"$repro") bytes)"
      { od -A d -t x1 "$repro" | head -12; } || true
      say "  replay: ${CARGO[*]} fuzz run ${BUILD_FLAGS[*]} $t $repro"
    done
    unset smallest count
    failed+=("$t")
    line="$line  FAILED: ${kind:-exit $rc}, ${#findings[@]} reproducer(s) in $art"
  fi
  summary+=("$line")
done

echo
say "summary"
for l in "${summary[@]}"; do echo "  $l"; done
for r in "${regressions_failed[@]}"; do echo "  regression still failing: $r"; done
if [ ${#failed[@]} -ne 0 ] || [ ${#regressions_failed[@]} -ne 0 ]; then
  say "FAILED targets: ${failed[*]:-none}; failing regressions: ${#regressions_failed[@]} (logs, corpora and reproducers in $WORK)"
  declare -A bad=()
  for t in "${failed[@]}"; do bad[$t]=1; done
  for r in "${regressions_failed[@]}"; do bad[$(basename "$(dirname "$r")")]=1; done
  echo "fuzz: $(( ${#TARGETS[@]} - ${#bad[@]} )) passed, ${#bad[@]} failed"
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} passed, 0 failed"
if [ -z "${FUZZ_WORK:-}" ]; then rm -rf "$WORK"; fi
