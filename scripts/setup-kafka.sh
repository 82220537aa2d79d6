#!/usr/bin/env bash
# Resolves Apache Kafka from Maven Central into ${FJORD_CACHE:-<repo>/.cache}:
#   kafka-4.3.0/libs           broker, CLI tools, Streams, Connect and a log4j2 backend, as named by
#                              compat-tests/kafka-dist/pom.xml (the jars of the release tarball's libs/)
#   kafka-clients-V/libs       kafka-clients V with its runtime deps (compat-tests/kafka-dist/clients-pom.xml),
#                              for each V in KAFKA_CLIENT_VERSIONS (unset: 4.4.0, the newest release;
#                              empty: none)
#   m2/                        Maven's local repository, so nothing lands in ~/.m2
# Used by compat-tests/java-common.sh (client jars) and scripts/kafka-ref.sh / kafka-tool.sh.
#
# Idempotent: each libs dir gets a stamp holding the hash of its pom and the version asked for;
# while it matches, nothing runs (not even Maven, whose start-up alone takes seconds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FJORD_CACHE:-$ROOT/.cache}"
POMS="$ROOT/compat-tests/kafka-dist"
KAFKA_VERSION=4.3.0
CLIENT_VERSIONS="${KAFKA_CLIENT_VERSIONS-4.4.0}"
MVN_TIMEOUT=900

# resolve POM DEST [-Dprop=value...]: copies POM's runtime dependency closure into DEST/libs.
resolve() {
  local pom="$1" dest="$2"; shift 2
  local stamp="$dest/.resolved" want start
  want="$(sha256sum "$pom" | cut -d' ' -f1) $*"
  if [ -d "$dest/libs" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
    echo "setup-kafka: $dest/libs up to date ($(ls "$dest/libs" | wc -l) jars)"
    return 0
  fi
  ensure_mvn
  # Resolve into a fresh side directory and swap it in: copy-dependencies never deletes, so a
  # dropped or upgraded dependency would otherwise leave its old jar on every classpath.
  rm -rf "$dest/libs.tmp" "$stamp"
  mkdir -p "$dest"
  echo "setup-kafka: resolving $(basename "$pom") $* from Maven Central into $dest/libs"
  start=$SECONDS
  # Output goes to a log shown only on failure: Debian's Maven 3.8 prints stray colour codes even
  # with -q -B, and a successful resolve has nothing to say.
  if ! timeout "$MVN_TIMEOUT" mvn -B -q -ntp -f "$pom" "-Dmaven.repo.local=$CACHE/m2" "$@" \
      dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$dest/libs.tmp" \
      >"$dest/mvn.log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$dest/mvn.log" | tail -n 40 >&2
    echo "setup-kafka: ERROR: mvn failed (or timed out after ${MVN_TIMEOUT}s); full log in $dest/mvn.log" >&2
    exit 1
  fi
  rm -rf "$dest/libs" "$dest/mvn.log"
  mv "$dest/libs.tmp" "$dest/libs"
  echo "$want" >"$stamp"
  echo "setup-kafka: installed $(ls "$dest/libs" | wc -l) jars ($(du -sh "$dest/libs" | cut -f1)) in $((SECONDS - start)) s:"
  ls "$dest/libs" | paste -sd' ' | fold -s -w 100 | sed 's/^/  /'
}

# Maven ships with the project's machines; install Debian's package only where it is missing.
ensure_mvn() {
  command -v mvn >/dev/null 2>&1 && return 0
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q maven || { $sudo apt-get update -q && $sudo apt-get install -y -q maven; }
}

resolve "$POMS/pom.xml" "$CACHE/kafka-$KAFKA_VERSION"
for v in $CLIENT_VERSIONS; do
  # 4.3.0 is already in the full install above; java-common.sh takes it from there.
  [ "$v" = "$KAFKA_VERSION" ] && continue
  resolve "$POMS/clients-pom.xml" "$CACHE/kafka-clients-$v" "-Dkafka.clients.version=$v"
done
