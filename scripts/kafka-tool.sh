#!/usr/bin/env bash
# Runs one of Apache Kafka 4.3.0's command-line tools from the Maven-resolved jars
# (scripts/setup-kafka.sh), by its bin/ name or by main class, against any broker (Fjord or the
# reference Kafka of scripts/kafka-ref.sh):
#   scripts/kafka-tool.sh kafka-topics --bootstrap-server 127.0.0.1:9092 --list
#   scripts/kafka-tool.sh org.apache.kafka.tools.GetOffsetShell --help     (any main class)
#   scripts/kafka-tool.sh --list                                           (the names it knows)
# Env:
#   KAFKA_TOOL_HEAP       max heap (default 256m; 512m for the perf tests, as Kafka's bin/ does)
#   KAFKA_TOOL_LOG_LEVEL  log level on stderr (default warn)
#   KAFKA_TOOL_OPTS       extra JVM flags, split on spaces
#   KAFKA_TOOL_TIMEOUT    seconds after which the tool is stopped (default: none, since a console
#                         consumer is meant to run until interrupted)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FJORD_CACHE:-$ROOT/.cache}"
KAFKA_DIR="$CACHE/kafka-4.3.0"

# bin/ name -> main class in Kafka 4.3.0, read off the jars (most tools moved from kafka.* in
# kafka_2.13 to org.apache.kafka.tools in kafka-tools; kafka-configs and kafka-storage have not).
TOOLS='
kafka-topics                     org.apache.kafka.tools.TopicCommand
kafka-configs                    kafka.admin.ConfigCommand
kafka-console-producer           org.apache.kafka.tools.ConsoleProducer
kafka-console-consumer           org.apache.kafka.tools.consumer.ConsoleConsumer
kafka-console-share-consumer     org.apache.kafka.tools.consumer.ConsoleShareConsumer
kafka-consumer-groups            org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
kafka-share-groups               org.apache.kafka.tools.consumer.group.ShareGroupCommand
kafka-streams-groups             org.apache.kafka.tools.streams.StreamsGroupCommand
kafka-groups                     org.apache.kafka.tools.GroupsCommand
kafka-get-offsets                org.apache.kafka.tools.GetOffsetShell
kafka-delete-records             org.apache.kafka.tools.DeleteRecordsCommand
kafka-transactions               org.apache.kafka.tools.TransactionsCommand
kafka-log-dirs                   org.apache.kafka.tools.LogDirsCommand
kafka-features                   org.apache.kafka.tools.FeatureCommand
kafka-producer-perf-test         org.apache.kafka.tools.ProducerPerformance
kafka-consumer-perf-test         org.apache.kafka.tools.ConsumerPerformance
kafka-e2e-latency                org.apache.kafka.tools.EndToEndLatency
kafka-metadata-quorum            org.apache.kafka.tools.MetadataQuorumCommand
kafka-leader-election            org.apache.kafka.tools.LeaderElectionCommand
kafka-reassign-partitions        org.apache.kafka.tools.reassign.ReassignPartitionsCommand
kafka-broker-api-versions        org.apache.kafka.tools.BrokerApiVersionsCommand
kafka-acls                       org.apache.kafka.tools.AclCommand
kafka-cluster                    org.apache.kafka.tools.ClusterTool
kafka-client-metrics             org.apache.kafka.tools.ClientMetricsCommand
kafka-delegation-tokens          org.apache.kafka.tools.DelegationTokenCommand
kafka-dump-log                   org.apache.kafka.tools.DumpLogSegments
kafka-verifiable-producer        org.apache.kafka.tools.VerifiableProducer
kafka-verifiable-consumer        org.apache.kafka.tools.VerifiableConsumer
kafka-streams-application-reset  org.apache.kafka.tools.StreamsResetter
kafka-storage                    kafka.tools.StorageTool
'

usage() {
  echo "usage: $0 NAME|MAIN_CLASS [ARGS...]   ($0 --list shows the names)" >&2
  exit 2
}

[ $# -ge 1 ] || usage
case "$1" in
  -h|--help) usage ;;
  --list) awk 'NF == 2 { printf "%-34s %s\n", $1, $2 }' <<<"$TOOLS"; exit 0 ;;
esac

name="${1%.sh}"
shift
class="$(awk -v n="$name" 'NF == 2 && $1 == n { print $2 }' <<<"$TOOLS")"
if [ -z "$class" ]; then
  # Anything with a dot is taken as a main class, as kafka-run-class.sh would.
  case "$name" in
    *.*) class="$name" ;;
    *) echo "kafka-tool: unknown tool '$name'; known names:" >&2; awk 'NF == 2 { print "  " $1 }' <<<"$TOOLS" >&2; exit 2 ;;
  esac
fi

if [ ! -f "$KAFKA_DIR/.resolved" ]; then
  # Resolve only the Kafka install (no extra clients); its messages go to stderr so this tool's
  # stdout stays the tool's own.
  FJORD_CACHE="$CACHE" KAFKA_CLIENT_VERSIONS= bash "$ROOT/scripts/setup-kafka.sh" >&2
fi

# Light JVM for a short-lived tool: serial GC and C1 only start fastest on 2 cores. The perf tools
# keep the full JIT and a bigger heap, since C1-only code would understate the client.
case "$class" in
  *Performance|*EndToEndLatency) jvm=("-Xmx${KAFKA_TOOL_HEAP:-512m}" -XX:+UseSerialGC) ;;
  *) jvm=("-Xmx${KAFKA_TOOL_HEAP:-256m}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1) ;;
esac
# shellcheck disable=SC2206  # KAFKA_TOOL_OPTS is a space-separated flag list by design
# No hsperfdata file: with many short-lived JVMs a reused pid finds the file of an exiting JVM
# locked and the JVM prints a warning into the tool's output.
jvm+=(-XX:-UsePerfData -Djava.awt.headless=true "-Dlog4j2.configurationFile=$ROOT/compat-tests/kafka-dist/tools-log4j2.properties"
      ${KAFKA_TOOL_OPTS:-})

# The whole libs/ on the classpath, as bin/kafka-run-class.sh has it: the tools need the broker's
# and Connect's classes in places (kafka-configs lives in kafka_2.13).
cmd=(java "${jvm[@]}" -cp "$KAFKA_DIR/libs/*" "$class" "$@")
if [ -n "${KAFKA_TOOL_TIMEOUT:-}" ]; then
  # --foreground so an interactive console producer can still read the terminal.
  exec timeout --foreground "$KAFKA_TOOL_TIMEOUT" "${cmd[@]}"
fi
exec "${cmd[@]}"
