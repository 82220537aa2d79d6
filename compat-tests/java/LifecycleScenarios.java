import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Log lifecycle through the real Java client (kafka-clients 4.3.0), one scenario per JVM, all
 * against one broker that compat-tests/java-lifecycle.sh started with
 * log.retention.check.interval.ms=1000 and log.cleaner.backoff.ms=1000:
 * <pre>
 *   configs            incrementalAlterConfigs SET / APPEND / SUBTRACT / DELETE on a topic, describeConfigs
 *                      with sources and synonyms, invalid values and unknown keys refused, validateOnly;
 *                      cluster-default (BROKER "") and per-broker log.retention.ms seen by a topic, and
 *                      the cluster default actually trimming a topic without an override
 *   retention-fill     a 1-partition topic (default retention) gets ~16 MB of records stamped 1 hour ago,
 *                      then a few fresh ones (the runner measures du after this) ...
 *   retention          ... retention.ms is set to 10 minutes live: the old records go, the fresh stay;
 *                      consumers at a deleted offset with auto.offset.reset=earliest / none;
 *                      a topic created with retention.ms=5000; retention.bytes
 *   compaction-fill    compacted topics (producer codec none, gzip, snappy, lz4, zstd), each with 10
 *                      versions of 1000 keys (some ending in old tombstones)
 *                      and a one-record head, held uncompacted by min.compaction.lag.ms=1h ...
 *   compaction         ... min.compaction.lag.ms is deleted: the cleaner leaves exactly the latest value of
 *                      every live key, describeLogDirs shows the partition shrink; a second round of updates
 *                      is compacted too; keyless records are refused
 *   delete-records     deleteRecords -> lowWatermark, earliest offsets, consumers, out-of-range requests
 *   offsets-for-times  offsetsForTimes / listOffsets(forTimestamp, maxTimestamp) on plain and gzip batches,
 *                      after deleteRecords, and on a LogAppendTime topic
 *   timestamp-bounds   message.timestamp.after.max.ms (Kafka 4 default: 1 hour) and before.max.ms refuse
 *                      CreateTime records outside the window with INVALID_TIMESTAMP (KIP-937); a batch
 *                      stamped far in the future would otherwise escape retention.ms
 *   after-restart      (the runner restarted the broker) log starts, compacted contents and configs persisted
 * </pre>
 * Usage: {@code java LifecycleScenarios SCENARIO BOOTSTRAP}. Exits non-zero if a check failed.
 * Every wait is bounded (30 s per wait for the retention task or the cleaner, which both run every
 * second here); the runner bounds each JVM as well.
 */
public final class LifecycleScenarios {
    static final String T_CONFIGS = "lc-configs";
    static final String T_CONFIGS_DEFAULT = "lc-configs-default";
    static final String T_RET_SHORT = "lc-retention-short";
    static final String T_RET_BULK = "lc-retention-bulk";
    static final String T_RET_BYTES = "lc-retention-bytes";
    static final String T_COMPACT = "lc-compact";
    static final String T_DELETE = "lc-delete-records";
    static final String T_TIMES = "lc-times";
    static final String T_TIMES_GZIP = "lc-times-gzip";
    static final String T_APPEND_TIME = "lc-log-append-time";

    static final long HOUR = 3_600_000L;
    /** Kafka's built-in default of retention.ms / log.retention.ms (7 days). */
    static final String DEFAULT_RETENTION = "604800000";

    static final int BULK_OLD = 40_000;
    static final int BULK_FRESH = 50;
    static final int BULK_VALUE_BYTES = 400;
    static final long BULK_RETENTION_MS = 600_000;

    static final int KEYS = 1000;
    static final int VERSIONS = 10;
    static final int COMPACT_VALUE_BYTES = 200;
    /** Keys whose last version (v9) is a tombstone written with a timestamp 1 hour old. */
    static boolean endsDeleted(int k) {
        return k % 10 == 3;
    }
    /** Keys deleted at v5 (fresh tombstone) and written again from v6 on: live in the end. */
    static boolean deletedThenRevived(int k) {
        return k % 10 == 7;
    }
    /** Keys updated once more (v10) in the compaction scenario's second round. */
    static final int SECOND_ROUND_KEYS = 100;

    static final long RETENTION_WAIT_MS = 30_000;
    static final long COMPACTION_WAIT_MS = 30_000;

    final String bootstrap;
    final Checks c;
    int nodeId = -1;

    LifecycleScenarios(String scenario, String bootstrap) {
        this.bootstrap = bootstrap;
        this.c = new Checks(scenario);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: LifecycleScenarios SCENARIO BOOTSTRAP");
            System.exit(2);
        }
        LifecycleScenarios s = new LifecycleScenarios(args[0], args[1]);
        try (Admin admin = s.admin()) {
            s.nodeId = admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).iterator().next().id();
            switch (args[0]) {
                case "configs" -> s.configs(admin);
                case "retention-fill" -> s.retentionFill(admin);
                case "retention" -> s.retention(admin);
                case "compaction-fill" -> s.compactionFill(admin);
                case "compaction" -> s.compaction(admin);
                case "delete-records" -> s.deleteRecords(admin);
                case "offsets-for-times" -> s.offsetsForTimes(admin);
                case "timestamp-bounds" -> s.timestampBounds(admin);
                case "after-restart" -> s.afterRestart(admin);
                default -> {
                    System.err.println("unknown scenario " + args[0]);
                    System.exit(2);
                }
            }
        }
        System.exit(s.c.finish());
    }

    // ---------------------------------------------------------------------------------------
    // clients and small helpers

    Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(p);
    }

    KafkaProducer<String, String> producer(String... extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        for (int i = 0; i + 1 < extra.length; i += 2) {
            p.put(extra[i], extra[i + 1]);
        }
        return new KafkaProducer<>(p);
    }

    KafkaConsumer<String, String> consumer(String reset) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, reset);
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return new KafkaConsumer<>(p);
    }

    static long now() {
        return System.currentTimeMillis();
    }

    static String ms(long startNanos) {
        return (System.nanoTime() - startNanos) / 1_000_000 + " ms";
    }

    void createTopic(Admin admin, String name, int partitions, Map<String, String> configs) throws Exception {
        NewTopic t = new NewTopic(name, Optional.of(partitions), Optional.empty()).configs(configs);
        admin.createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
        c.info("created " + name + " (" + partitions + " partition(s)" + (configs.isEmpty() ? "" : ", " + configs) + ")");
    }

    static ConfigResource topicRes(String name) {
        return new ConfigResource(ConfigResource.Type.TOPIC, name);
    }

    static final ConfigResource CLUSTER_DEFAULT = new ConfigResource(ConfigResource.Type.BROKER, "");

    ConfigResource thisBroker() {
        return new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(nodeId));
    }

    static AlterConfigOp op(String key, String value, AlterConfigOp.OpType type) {
        return new AlterConfigOp(new ConfigEntry(key, value), type);
    }

    void alter(Admin admin, ConfigResource res, AlterConfigOp... ops) throws Exception {
        admin.incrementalAlterConfigs(Map.of(res, List.of(ops))).all().get(30, TimeUnit.SECONDS);
    }

    Config describe(Admin admin, ConfigResource res) throws Exception {
        return admin.describeConfigs(List.of(res), new DescribeConfigsOptions().includeSynonyms(true))
                .all().get(30, TimeUnit.SECONDS).get(res);
    }

    static String show(ConfigEntry e) {
        if (e == null) {
            return "(absent)";
        }
        StringBuilder sb = new StringBuilder(e.name() + "=" + e.value() + " [" + e.source() + "] synonyms:");
        for (ConfigEntry.ConfigSynonym s : e.synonyms()) {
            sb.append(' ').append(s.name()).append('=').append(s.value()).append('[').append(s.source()).append(']');
        }
        return sb.toString();
    }

    /** Checks value and source of one entry, and that its first synonym is the entry itself. */
    void checkEntry(Config cfg, String key, String value, ConfigEntry.ConfigSource source, String what) {
        ConfigEntry e = cfg == null ? null : cfg.get(key);
        c.info(what + ": " + show(e));
        c.checkEq(value, e == null ? null : e.value(), what + ": " + key + " value");
        c.checkEq(source, e == null ? null : e.source(), what + ": " + key + " source");
        if (e != null) {
            List<ConfigEntry.ConfigSynonym> syn = e.synonyms();
            // As Kafka lists them (checked against it by tests/differential and
            // compat-tests/kafka-tools.sh): retention.ms's broker setting log.retention.ms has
            // a null default (log.retention.hours holds it), so with no broker layer set it
            // has no default synonym, and its default value comes with no synonym at all.
            boolean nullDefault = key.equals("retention.ms");
            boolean brokerLayer = syn.stream().anyMatch(s -> s.name().startsWith("log.retention.")
                    && s.source() != ConfigEntry.ConfigSource.DEFAULT_CONFIG);
            boolean expectDefault = !nullDefault || brokerLayer;
            if (!nullDefault || source != ConfigEntry.ConfigSource.DEFAULT_CONFIG) {
                c.check(!syn.isEmpty(), what + ": " + key + " has synonyms (includeSynonyms)");
            } else {
                c.check(syn.isEmpty(), what + ": " + key + " at its default has no synonyms, as in Kafka (" + syn + ")");
            }
            if (!syn.isEmpty()) {
                ConfigEntry.ConfigSynonym first = syn.get(0);
                c.check(first.value().equals(value) && first.source() == source,
                        what + ": first synonym carries the effective value and source (" + first + ")");
                ConfigEntry.ConfigSynonym last = syn.get(syn.size() - 1);
                c.check((last.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG) == expectDefault,
                        what + ": last synonym is " + (expectDefault ? "" : "not ") + "a DEFAULT_CONFIG (" + last + ")");
            }
        }
    }

    boolean hasSynonym(ConfigEntry e, String name, String value, ConfigEntry.ConfigSource source) {
        return e != null && e.synonyms().stream()
                .anyMatch(s -> s.name().equals(name) && value.equals(s.value()) && s.source() == source);
    }

    /** The size describeLogDirs reports for one partition (-1 if it is not reported). */
    long partitionSize(Admin admin, TopicPartition tp) throws Exception {
        Map<Integer, Map<String, LogDirDescription>> all =
                admin.describeLogDirs(List.of(nodeId)).allDescriptions().get(30, TimeUnit.SECONDS);
        long size = -1;
        for (Map<String, LogDirDescription> dirs : all.values()) {
            for (LogDirDescription d : dirs.values()) {
                ReplicaInfo r = d.replicaInfos().get(tp);
                if (r != null) {
                    size = Math.max(size, 0) + r.size();
                }
            }
        }
        return size;
    }

    long earliest(Admin admin, TopicPartition tp) throws Exception {
        return admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp).get(30, TimeUnit.SECONDS).offset();
    }

    long latest(Admin admin, TopicPartition tp) throws Exception {
        return admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get(30, TimeUnit.SECONDS).offset();
    }

    interface Probe<T> {
        T get() throws Exception;
    }

    /** Result of a bounded wait: whether the condition held, the last value seen, the time taken. */
    record Waited<T>(boolean ok, T last, long millis) {
    }

    /** Polls {@code probe} every 500 ms until {@code done} holds or {@code timeoutMs} passes; never throws. */
    <T> Waited<T> waitFor(String what, long timeoutMs, Probe<T> probe, Predicate<T> done) throws InterruptedException {
        long start = System.nanoTime();
        T last = null;
        String err = null;
        while (true) {
            try {
                last = probe.get();
                err = null;
                if (done.test(last)) {
                    long took = (System.nanoTime() - start) / 1_000_000;
                    c.info(what + ": reached after " + took + " ms");
                    return new Waited<>(true, last, took);
                }
            } catch (Exception e) {
                err = Checks.describe(e);
            }
            long took = (System.nanoTime() - start) / 1_000_000;
            if (took > timeoutMs) {
                c.info(what + ": NOT reached within " + timeoutMs + " ms; last value " + last + (err == null ? "" : ", last error " + err));
                return new Waited<>(false, last, took);
            }
            Thread.sleep(500);
        }
    }

    /** Reads a partition from its earliest offset up to the end offset seen at the start (bounded). */
    List<ConsumerRecord<String, String>> readAll(KafkaConsumer<String, String> consumer, TopicPartition tp, long timeoutMs) {
        consumer.assign(List.of(tp));
        long end = consumer.endOffsets(List.of(tp)).get(tp);
        consumer.seekToBeginning(List.of(tp));
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (consumer.position(tp) < end && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                out.add(r);
            }
        }
        return out;
    }

    /** Polls until {@code n} records arrived or the time is up. */
    List<ConsumerRecord<String, String>> pollN(KafkaConsumer<String, String> consumer, int n, long timeoutMs) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (out.size() < n && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                out.add(r);
            }
        }
        return out;
    }

    static String padded(String prefix, int len, Random rnd) {
        StringBuilder sb = new StringBuilder(prefix);
        while (sb.length() < len) {
            sb.append((char) ('a' + rnd.nextInt(26)));
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------------------------------
    // configs

    void configs(Admin admin) throws Exception {
        ConfigResource res = topicRes(T_CONFIGS);
        c.step("create " + T_CONFIGS + " and describe its defaults", () -> {
            createTopic(admin, T_CONFIGS, 1, Map.of());
            Config cfg = describe(admin, res);
            checkEntry(cfg, "retention.ms", DEFAULT_RETENTION, ConfigEntry.ConfigSource.DEFAULT_CONFIG, "no override");
            ConfigEntry e = cfg.get("retention.ms");
            c.check(!hasSynonym(e, "log.retention.ms", DEFAULT_RETENTION, ConfigEntry.ConfigSource.DEFAULT_CONFIG),
                    "retention.ms lists no default log.retention.ms synonym (null in Kafka)");
            checkEntry(cfg, "cleanup.policy", "delete", ConfigEntry.ConfigSource.DEFAULT_CONFIG, "no override");
        });

        c.step("SET retention.ms=123456", () -> {
            alter(admin, res, op("retention.ms", "123456", AlterConfigOp.OpType.SET));
            Config cfg = describe(admin, res);
            checkEntry(cfg, "retention.ms", "123456", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "after SET");
            ConfigEntry e = cfg.get("retention.ms");
            c.check(hasSynonym(e, "retention.ms", "123456", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG)
                    && e.synonyms().size() == 1,
                    "synonyms: the topic override only, as Kafka lists it (" + e.synonyms() + ")");
            checkEntry(cfg, "cleanup.policy", "delete", ConfigEntry.ConfigSource.DEFAULT_CONFIG, "untouched key");
        });

        c.step("APPEND cleanup.policy=compact", () -> {
            alter(admin, res, op("cleanup.policy", "compact", AlterConfigOp.OpType.APPEND));
            checkEntry(describe(admin, res), "cleanup.policy", "delete,compact",
                    ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "after APPEND");
            // Appending an item already present changes nothing.
            alter(admin, res, op("cleanup.policy", "compact", AlterConfigOp.OpType.APPEND));
            c.checkEq("delete,compact", describe(admin, res).get("cleanup.policy").value(), "APPEND of a present item");
        });

        c.step("SUBTRACT cleanup.policy=delete", () -> {
            alter(admin, res, op("cleanup.policy", "delete", AlterConfigOp.OpType.SUBTRACT));
            checkEntry(describe(admin, res), "cleanup.policy", "compact",
                    ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "after SUBTRACT");
        });

        c.step("several operations in one request, and validateOnly", () -> {
            alter(admin, res, op("retention.ms", "7200000", AlterConfigOp.OpType.SET),
                    op("min.cleanable.dirty.ratio", "0.25", AlterConfigOp.OpType.SET),
                    op("cleanup.policy", "delete", AlterConfigOp.OpType.APPEND));
            Config cfg = describe(admin, res);
            c.checkEq("7200000", cfg.get("retention.ms").value(), "retention.ms");
            c.checkEq("0.25", cfg.get("min.cleanable.dirty.ratio").value(), "min.cleanable.dirty.ratio");
            c.checkEq("compact,delete", cfg.get("cleanup.policy").value(), "cleanup.policy");
            admin.incrementalAlterConfigs(Map.of(res, List.of(op("retention.ms", "777", AlterConfigOp.OpType.SET))),
                    new AlterConfigsOptions().validateOnly(true)).all().get(30, TimeUnit.SECONDS);
            c.checkEq("7200000", describe(admin, res).get("retention.ms").value(),
                    "validateOnly SET accepted but not applied: retention.ms");
        });

        c.step("invalid values are refused, naming the value, and change nothing", () -> {
            for (String[] bad : new String[][] {
                    {"retention.ms", "soon"}, {"retention.ms", "-5"}, {"cleanup.policy", "keep"},
                    {"min.cleanable.dirty.ratio", "1.5"}, {"message.timestamp.type", "WallClock"}}) {
                try {
                    alter(admin, res, op(bad[0], bad[1], AlterConfigOp.OpType.SET));
                    c.fail("SET " + bad[0] + "=" + bad[1] + " was accepted");
                } catch (Exception e) {
                    Throwable t = Checks.unwrap(e);
                    c.check(t instanceof InvalidConfigurationException,
                            "SET " + bad[0] + "=" + bad[1] + " -> " + Checks.describe(t));
                    c.check(t.getMessage() != null && t.getMessage().contains(bad[1]),
                            "the error message names the value '" + bad[1] + "'");
                }
            }
            // A request with one good and one bad change is refused as a whole.
            try {
                alter(admin, res, op("retention.ms", "1000", AlterConfigOp.OpType.SET),
                        op("cleanup.policy", "keep", AlterConfigOp.OpType.SET));
                c.fail("a request mixing a valid and an invalid change was accepted");
            } catch (Exception e) {
                c.check(Checks.unwrap(e) instanceof InvalidConfigurationException,
                        "mixed valid + invalid change -> " + Checks.describe(e));
            }
            Config cfg = describe(admin, res);
            c.checkEq("7200000", cfg.get("retention.ms").value(), "retention.ms unchanged after the refused requests");
            c.checkEq("compact,delete", cfg.get("cleanup.policy").value(), "cleanup.policy unchanged");
        });

        c.step("unknown keys and topics are refused", () -> {
            try {
                alter(admin, res, op("no.such.config", "1", AlterConfigOp.OpType.SET));
                c.fail("SET no.such.config was accepted");
            } catch (Exception e) {
                Throwable t = Checks.unwrap(e);
                c.check(t instanceof InvalidConfigurationException, "SET no.such.config -> " + Checks.describe(t));
                c.check(t.getMessage() != null && t.getMessage().contains("no.such.config"),
                        "the error message names the key");
            }
            c.check(describe(admin, res).get("no.such.config") == null, "no.such.config does not appear in describeConfigs");
            c.expectThrows(InvalidConfigurationException.class, "APPEND on a non-list config (retention.ms)",
                    () -> alter(admin, res, op("retention.ms", "5", AlterConfigOp.OpType.APPEND)));
            c.expectThrows(UnknownTopicOrPartitionException.class, "SET on a topic that does not exist",
                    () -> alter(admin, topicRes("lc-no-such-topic"), op("retention.ms", "1000", AlterConfigOp.OpType.SET)));
        });

        c.step("DELETE restores the defaults", () -> {
            alter(admin, res, op("retention.ms", "", AlterConfigOp.OpType.DELETE),
                    op("cleanup.policy", "", AlterConfigOp.OpType.DELETE),
                    op("min.cleanable.dirty.ratio", "", AlterConfigOp.OpType.DELETE));
            Config cfg = describe(admin, res);
            checkEntry(cfg, "retention.ms", DEFAULT_RETENTION, ConfigEntry.ConfigSource.DEFAULT_CONFIG, "after DELETE");
            checkEntry(cfg, "cleanup.policy", "delete", ConfigEntry.ConfigSource.DEFAULT_CONFIG, "after DELETE");
            checkEntry(cfg, "min.cleanable.dirty.ratio", "0.5", ConfigEntry.ConfigSource.DEFAULT_CONFIG, "after DELETE");
            // DELETE of a key that has no override is a no-op, not an error (as in Kafka).
            alter(admin, res, op("retention.ms", "", AlterConfigOp.OpType.DELETE));
            c.check(true, "DELETE of a key without an override accepted");
        });

        // The broker-wide layers. Whatever happens, they are removed again at the end: later
        // scenarios share this broker and rely on the 7-day default.
        TopicPartition dtp = new TopicPartition(T_CONFIGS_DEFAULT, 0);
        try {
            c.step("cluster default log.retention.ms (BROKER \"\") seen by topics without an override", () -> {
                createTopic(admin, T_CONFIGS_DEFAULT, 1, Map.of());
                alter(admin, res, op("retention.ms", "3000000", AlterConfigOp.OpType.SET));
                // Records 1 hour old and fresh ones, in separate batches.
                try (KafkaProducer<String, String> p = producer()) {
                    long old = now() - HOUR;
                    for (int i = 0; i < 100; i++) {
                        p.send(new ProducerRecord<>(T_CONFIGS_DEFAULT, 0, old + i, "old-" + i, "old value " + i));
                    }
                    p.flush();
                    for (int i = 0; i < 10; i++) {
                        p.send(new ProducerRecord<>(T_CONFIGS_DEFAULT, 0, null, "fresh-" + i, "fresh value " + i));
                    }
                    p.flush();
                }
                c.checkEq(0L, earliest(admin, dtp), "earliest offset before the change (7-day default)");

                alter(admin, CLUSTER_DEFAULT, op("log.retention.ms", "600000", AlterConfigOp.OpType.SET));
                Config cfg = describe(admin, topicRes(T_CONFIGS_DEFAULT));
                checkEntry(cfg, "retention.ms", "600000", ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, "cluster default");
                c.check(hasSynonym(cfg.get("retention.ms"), "log.retention.ms", "600000",
                        ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
                        "synonym log.retention.ms=600000 [DYNAMIC_DEFAULT_BROKER_CONFIG]");
                checkEntry(describe(admin, res), "retention.ms", "3000000",
                        ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "topic with its own override");
                Config clusterCfg = describe(admin, CLUSTER_DEFAULT);
                long notDynamicDefault = clusterCfg.entries().stream()
                        .filter(x -> x.source() != ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG).count();
                // Kafka answers the default resource with the dynamic cluster defaults only.
                c.info("describeConfigs(BROKER \"\") returned " + clusterCfg.entries().size() + " entries, "
                        + notDynamicDefault + " of them not DYNAMIC_DEFAULT_BROKER_CONFIG (Kafka returns only the dynamic defaults)");
                ConfigEntry be = clusterCfg.get("log.retention.ms");
                c.info("BROKER \"\": " + show(be));
                c.checkEq(ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, be == null ? null : be.source(),
                        "describeConfigs(BROKER \"\") log.retention.ms source");
                ConfigEntry bn = describe(admin, thisBroker()).get("log.retention.ms");
                c.info("BROKER \"" + nodeId + "\": " + show(bn));
                c.checkEq("600000", bn == null ? null : bn.value(), "describeConfigs(BROKER " + nodeId + ") log.retention.ms");
            });

            c.step("the cluster default trims a topic without an override", () -> {
                Waited<Long> w = waitFor("earliest offset of " + T_CONFIGS_DEFAULT + " reaches 100", RETENTION_WAIT_MS,
                        () -> earliest(admin, dtp), v -> v >= 100);
                c.checkEq(100L, w.last(), "earliest offset: the old records went, the fresh stayed");
                c.checkEq(110L, latest(admin, dtp), "end offset unchanged");
            });

            c.step("per-broker log.retention.ms (BROKER \"" + nodeId + "\") wins over the cluster default", () -> {
                alter(admin, thisBroker(), op("log.retention.ms", "900000", AlterConfigOp.OpType.SET));
                Config cfg = describe(admin, topicRes(T_CONFIGS_DEFAULT));
                checkEntry(cfg, "retention.ms", "900000", ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG, "per-broker");
                ConfigEntry e = cfg.get("retention.ms");
                c.check(hasSynonym(e, "log.retention.ms", "600000", ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
                        "the cluster default is still listed among the synonyms");
            });

            c.step("invalid and unknown broker configs are refused", () -> {
                try {
                    alter(admin, CLUSTER_DEFAULT, op("log.retention.ms", "abc", AlterConfigOp.OpType.SET));
                    c.fail("BROKER \"\" SET log.retention.ms=abc was accepted");
                } catch (Exception e) {
                    Throwable t = Checks.unwrap(e);
                    // Kafka 4.3 answers INVALID_REQUEST "Invalid value abc for configuration
                    // log.retention.ms: Not a number of type LONG" (checked with kafka-configs).
                    c.check(t instanceof InvalidRequestException, "SET log.retention.ms=abc -> " + Checks.describe(t));
                    c.check(t.getMessage() != null && t.getMessage().contains("abc"), "the error message names the value");
                }
                try {
                    alter(admin, CLUSTER_DEFAULT, op("no.such.broker.config", "1", AlterConfigOp.OpType.SET));
                    c.fail("BROKER \"\" SET no.such.broker.config was accepted");
                } catch (Exception e) {
                    Throwable t = Checks.unwrap(e);
                    // Kafka answers INVALID_CONFIG or INVALID_REQUEST depending on the path; either refuses.
                    c.check(t instanceof InvalidConfigurationException || t instanceof InvalidRequestException,
                            "SET no.such.broker.config -> " + Checks.describe(t));
                }
            });
        } finally {
            c.step("DELETE the broker-level overrides", () -> {
                alter(admin, thisBroker(), op("log.retention.ms", "", AlterConfigOp.OpType.DELETE));
                alter(admin, CLUSTER_DEFAULT, op("log.retention.ms", "", AlterConfigOp.OpType.DELETE));
                checkEntry(describe(admin, topicRes(T_CONFIGS_DEFAULT)), "retention.ms", DEFAULT_RETENTION,
                        ConfigEntry.ConfigSource.DEFAULT_CONFIG, "after deleting both broker layers");
            });
        }
    }

    // ---------------------------------------------------------------------------------------
    // retention

    void retentionFill(Admin admin) throws Exception {
        TopicPartition tp = new TopicPartition(T_RET_BULK, 0);
        c.step("fill " + T_RET_BULK + " with " + BULK_OLD + " records 1 hour old, then " + BULK_FRESH + " fresh", () -> {
            createTopic(admin, T_RET_BULK, 1, Map.of());
            Random rnd = new Random(7);
            long start = System.nanoTime();
            try (KafkaProducer<String, String> p = producer(ProducerConfig.BATCH_SIZE_CONFIG, "65536",
                    ProducerConfig.LINGER_MS_CONFIG, "20")) {
                long old = now() - HOUR;
                for (int i = 0; i < BULK_OLD; i++) {
                    p.send(new ProducerRecord<>(T_RET_BULK, 0, old + i / 100, "old-" + i, padded("old " + i + " ", BULK_VALUE_BYTES, rnd)));
                }
                p.flush();
                for (int i = 0; i < BULK_FRESH; i++) {
                    p.send(new ProducerRecord<>(T_RET_BULK, 0, null, "fresh-" + i, "fresh value " + i));
                }
                p.flush();
            }
            c.info("produced in " + ms(start));
            c.checkEq(0L, earliest(admin, tp), "earliest offset (7-day default retention keeps the old records)");
            c.checkEq((long) BULK_OLD + BULK_FRESH, latest(admin, tp), "end offset");
            long size = partitionSize(admin, tp);
            c.info("describeLogDirs: " + tp + " size " + size + " bytes");
            c.check(size >= (long) BULK_OLD * BULK_VALUE_BYTES, "partition size covers the records written (" + size + " bytes)");
            for (Map<String, LogDirDescription> dirs : admin.describeLogDirs(List.of(nodeId)).allDescriptions()
                    .get(30, TimeUnit.SECONDS).values()) {
                for (Map.Entry<String, LogDirDescription> d : dirs.entrySet()) {
                    LogDirDescription ld = d.getValue();
                    c.info("describeLogDirs: dir " + d.getKey() + ", " + ld.replicaInfos().size() + " partitions, total "
                            + ld.totalBytes() + ", usable " + ld.usableBytes() + ", error " + ld.error());
                    c.check(ld.error() == null, "log dir without error");
                    c.check(ld.totalBytes().isPresent() && ld.usableBytes().isPresent()
                            && ld.usableBytes().getAsLong() <= ld.totalBytes().getAsLong(),
                            "total and usable bytes reported (DescribeLogDirs v4), usable <= total");
                }
            }
        });
    }

    void retention(Admin admin) throws Exception {
        c.step("a topic created with retention.ms=5000: old records go at once, the rest 5 s after writing", () -> {
            TopicPartition tp = new TopicPartition(T_RET_SHORT, 0);
            createTopic(admin, T_RET_SHORT, 1, Map.of("retention.ms", "5000"));
            long wroteFresh;
            try (KafkaProducer<String, String> p = producer()) {
                long old = now() - HOUR;
                for (int i = 0; i < 500; i++) {
                    p.send(new ProducerRecord<>(T_RET_SHORT, 0, old + i, "old-" + i, "old " + i));
                }
                p.flush();
                for (int i = 0; i < 20; i++) {
                    p.send(new ProducerRecord<>(T_RET_SHORT, 0, null, "fresh-" + i, "fresh " + i));
                }
                p.flush();
                wroteFresh = now();
            }
            try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                consumer.assign(List.of(tp));
                Waited<Long> w = waitFor("beginningOffsets of " + T_RET_SHORT + " >= 500", RETENTION_WAIT_MS,
                        () -> consumer.beginningOffsets(List.of(tp)).get(tp), v -> v >= 500);
                c.check(w.ok(), "the earliest offset advanced past the 500 old records (now " + w.last() + ")");
                w = waitFor("beginningOffsets of " + T_RET_SHORT + " == 520 (fresh records 5 s old)", RETENTION_WAIT_MS,
                        () -> consumer.beginningOffsets(List.of(tp)).get(tp), v -> v == 520);
                c.check(w.ok(), "all records expired; earliest offset " + w.last()
                        + " (" + (now() - wroteFresh) + " ms after the fresh records were written)");
                c.checkEq(520L, consumer.endOffsets(List.of(tp)).get(tp), "end offset unchanged");
                // A consumer positioned at a deleted offset resets to the (empty) log start and keeps going.
                consumer.seek(tp, 0);
                List<ConsumerRecord<String, String>> none = pollN(consumer, 1, 3000);
                c.checkEq(0, none.size(), "records read from an expired log");
                c.checkEq(520L, consumer.position(tp), "position after the reset");
                try (KafkaProducer<String, String> p = producer()) {
                    for (int i = 0; i < 5; i++) {
                        p.send(new ProducerRecord<>(T_RET_SHORT, 0, null, "late-" + i, "late " + i));
                    }
                    p.flush();
                }
                List<ConsumerRecord<String, String>> late = pollN(consumer, 5, 15_000);
                c.checkEq(5, late.size(), "records produced afterwards are read");
                if (!late.isEmpty()) {
                    c.checkEq(520L, late.get(0).offset(), "first new offset");
                }
            }
        });

        TopicPartition tp = new TopicPartition(T_RET_BULK, 0);
        c.step("retention.ms=" + BULK_RETENTION_MS + " set live on " + T_RET_BULK + ": records 1 hour old go", () -> {
            long before = partitionSize(admin, tp);
            c.info("describeLogDirs before: " + before + " bytes");
            alter(admin, topicRes(T_RET_BULK), op("retention.ms", String.valueOf(BULK_RETENTION_MS), AlterConfigOp.OpType.SET));
            try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                consumer.assign(List.of(tp));
                Waited<Long> w = waitFor("beginningOffsets of " + T_RET_BULK + " == " + BULK_OLD, RETENTION_WAIT_MS,
                        () -> consumer.beginningOffsets(List.of(tp)).get(tp), v -> v >= BULK_OLD);
                c.checkEq((long) BULK_OLD, w.last(), "earliest offset = first fresh record");
                c.checkEq((long) BULK_OLD + BULK_FRESH, consumer.endOffsets(List.of(tp)).get(tp), "end offset unchanged");
            }
            long after = partitionSize(admin, tp);
            c.info("describeLogDirs after: " + after + " bytes (" + before + " before)");
            c.check(after >= 0 && after < before / 50, "describeLogDirs partition size fell from " + before + " to " + after);
        });

        c.step("auto.offset.reset=earliest at a deleted offset: reads only the retained records, keeps working", () -> {
            try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                consumer.assign(List.of(tp));
                consumer.seek(tp, 0);
                List<ConsumerRecord<String, String>> got = pollN(consumer, BULK_FRESH, 30_000);
                c.checkEq(BULK_FRESH, got.size(), "records read");
                boolean exact = got.size() == BULK_FRESH;
                for (int i = 0; i < got.size() && exact; i++) {
                    ConsumerRecord<String, String> r = got.get(i);
                    exact = r.offset() == BULK_OLD + i && r.key().equals("fresh-" + i) && r.value().equals("fresh value " + i);
                }
                c.check(exact, "exactly the fresh records, in order, at offsets " + BULK_OLD + ".." + (BULK_OLD + BULK_FRESH - 1)
                        + (got.isEmpty() ? "" : " (first: " + got.get(0).offset() + " " + got.get(0).key() + ")"));
                c.check(got.stream().noneMatch(r -> r.key().startsWith("old-")), "no deleted record is returned");
                try (KafkaProducer<String, String> p = producer()) {
                    for (int i = 0; i < 10; i++) {
                        p.send(new ProducerRecord<>(T_RET_BULK, 0, null, "more-" + i, "more " + i));
                    }
                    p.flush();
                }
                List<ConsumerRecord<String, String>> more = pollN(consumer, 10, 15_000);
                c.checkEq(10, more.size(), "the same consumer reads records produced afterwards");
                if (!more.isEmpty()) {
                    c.checkEq((long) BULK_OLD + BULK_FRESH, more.get(0).offset(), "their first offset");
                }
            }
        });

        c.step("auto.offset.reset=none at a deleted offset: OffsetOutOfRangeException", () -> {
            try (KafkaConsumer<String, String> consumer = consumer("none")) {
                consumer.assign(List.of(tp));
                consumer.seek(tp, 5);
                Throwable thrown = null;
                int polled = 0;
                long deadline = System.nanoTime() + 20_000_000_000L;
                while (thrown == null && System.nanoTime() < deadline) {
                    try {
                        polled += consumer.poll(Duration.ofMillis(200)).count();
                    } catch (Exception e) {
                        thrown = e;
                    }
                }
                c.check(thrown instanceof org.apache.kafka.clients.consumer.OffsetOutOfRangeException,
                        "poll threw " + (thrown == null ? "nothing within 20 s" : Checks.describe(thrown)));
                if (thrown instanceof org.apache.kafka.clients.consumer.OffsetOutOfRangeException oor) {
                    c.checkEq(Map.of(tp, 5L), oor.offsetOutOfRangePartitions(), "out-of-range partitions and offsets");
                }
                c.checkEq(0, polled, "records returned before the exception");
                // Seeking to the beginning makes it usable again.
                consumer.seekToBeginning(List.of(tp));
                List<ConsumerRecord<String, String>> got = pollN(consumer, 1, 15_000);
                c.check(!got.isEmpty() && got.get(0).offset() == BULK_OLD,
                        "after seekToBeginning it reads from offset " + BULK_OLD + (got.isEmpty() ? " (read nothing)" : " (read " + got.get(0).offset() + ")"));
            }
        });

        c.step("retention.bytes keeps the partition just above the limit, batch by batch", () -> {
            TopicPartition btp = new TopicPartition(T_RET_BYTES, 0);
            createTopic(admin, T_RET_BYTES, 1, Map.of());
            Random rnd = new Random(11);
            try (KafkaProducer<String, String> p = producer()) {
                for (int i = 0; i < 20; i++) {
                    p.send(new ProducerRecord<>(T_RET_BYTES, 0, null, String.format("b-%02d", i), padded("", 10_000, rnd)));
                    p.flush(); // one record per batch: equal batches
                }
            }
            long before = partitionSize(admin, btp);
            long batch = before / 20;
            long limit = batch * 11 / 2; // 5.5 batches: 6 must stay (Kafka deletes a unit only if what is left still reaches the limit)
            c.info("describeLogDirs: 20 batches, " + before + " bytes; retention.bytes=" + limit);
            alter(admin, topicRes(T_RET_BYTES), op("retention.bytes", String.valueOf(limit), AlterConfigOp.OpType.SET));
            Waited<Long> w = waitFor("earliest offset of " + T_RET_BYTES + " == 14", RETENTION_WAIT_MS,
                    () -> earliest(admin, btp), v -> v >= 14);
            c.checkEq(14L, w.last(), "earliest offset (6 newest batches kept)");
            Thread.sleep(2500); // two more retention passes must not remove anything else
            c.checkEq(14L, earliest(admin, btp), "earliest offset stable");
            long after = partitionSize(admin, btp);
            c.check(after >= limit && after < limit + batch, "partition size " + after + " within [" + limit + ", " + (limit + batch) + ")");
        });
    }

    // ---------------------------------------------------------------------------------------
    // compaction

    static String key(int k) {
        return String.format("key-%04d", k);
    }

    /** The value of version v of key k (null = tombstone), as compactionFill writes it. */
    static String value(int k, int v) {
        if (v == VERSIONS - 1 && endsDeleted(k)) {
            return null;
        }
        if (v == 5 && deletedThenRevived(k)) {
            return null;
        }
        String prefix = key(k) + " v" + v + " ";
        StringBuilder sb = new StringBuilder(prefix);
        while (sb.length() < COMPACT_VALUE_BYTES) {
            sb.append((char) ('a' + (k * 31 + v * 7 + sb.length()) % 26));
        }
        return sb.toString();
    }

    /** Key -> (value, offset) that must remain after compaction of the first round. */
    static Map<String, Map.Entry<String, Long>> expectedAfterFirstRound() {
        Map<String, Map.Entry<String, Long>> m = new TreeMap<>();
        for (int k = 0; k < KEYS; k++) {
            if (!endsDeleted(k)) {
                m.put(key(k), Map.entry(value(k, VERSIONS - 1), (long) (VERSIONS - 1) * KEYS + k));
            }
        }
        m.put("head", Map.entry("head 1", (long) VERSIONS * KEYS));
        return m;
    }

    static String secondRoundValue(int k) {
        return key(k) + " v" + VERSIONS + " second round";
    }

    /**
     * After the second round: keys 0..99 rewritten at offsets 10001..10100, "head" rewritten at
     * 10101 (so "head 1" at 10000 goes), and a new one-record head "tail" at 10102. As in Kafka,
     * whose cleaner builds its key map only below the active segment, a key's newer version in
     * the uncleanable head does not remove its older versions: hence the separate "tail" key.
     */
    static Map<String, Map.Entry<String, Long>> expectedAfterSecondRound() {
        Map<String, Map.Entry<String, Long>> m = expectedAfterFirstRound();
        long base = (long) VERSIONS * KEYS + 1;
        for (int k = 0; k < SECOND_ROUND_KEYS; k++) {
            m.put(key(k), Map.entry(secondRoundValue(k), base + k));
        }
        m.put("head", Map.entry("head 2", base + SECOND_ROUND_KEYS));
        m.put("tail", Map.entry("tail", base + SECOND_ROUND_KEYS + 1));
        return m;
    }

    /** Why the records read are not exactly {@code expected} (null when they are). */
    static String compactionProblem(List<ConsumerRecord<String, String>> recs, Map<String, Map.Entry<String, Long>> expected) {
        Map<String, Integer> count = new HashMap<>();
        List<String> problems = new ArrayList<>();
        for (ConsumerRecord<String, String> r : recs) {
            count.merge(r.key(), 1, Integer::sum);
            Map.Entry<String, Long> want = expected.get(r.key());
            if (want == null) {
                if (problems.size() < 5) {
                    problems.add("deleted key " + r.key() + " present at offset " + r.offset()
                            + (r.value() == null ? " (tombstone)" : ""));
                }
            } else if (!want.getKey().equals(r.value()) || want.getValue() != r.offset()) {
                if (problems.size() < 5) {
                    problems.add(r.key() + " at offset " + r.offset() + " = "
                            + (r.value() == null ? "null" : r.value().substring(0, Math.min(16, r.value().length())))
                            + " (want offset " + want.getValue() + ")");
                }
            }
        }
        long dups = count.values().stream().filter(n -> n > 1).count();
        long missing = expected.keySet().stream().filter(k -> !count.containsKey(k)).count();
        if (problems.isEmpty() && dups == 0 && missing == 0 && recs.size() == expected.size()) {
            return null;
        }
        return recs.size() + " records (want " + expected.size() + "), " + dups + " keys more than once, "
                + missing + " keys missing; " + problems;
    }

    /** Producer codecs of the compacted topics: the cleaner rewrites batches in their own codec. */
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};

    static String compactTopic(String codec) {
        return codec.equals("none") ? T_COMPACT : T_COMPACT + "-" + codec;
    }

    void compactionFill(Admin admin) throws Exception {
        Map<String, Long> sizes = new LinkedHashMap<>();
        for (String codec : CODECS) {
            String topic = compactTopic(codec);
            TopicPartition tp = new TopicPartition(topic, 0);
            c.step("fill " + topic + " (" + codec + "): " + VERSIONS + " versions of " + KEYS + " keys, held back by min.compaction.lag.ms", () -> {
                Map<String, String> cfg = new LinkedHashMap<>();
                cfg.put("cleanup.policy", "compact");
                cfg.put("min.cleanable.dirty.ratio", "0.01");
                cfg.put("delete.retention.ms", "1000");
                cfg.put("min.compaction.lag.ms", String.valueOf(HOUR));
                createTopic(admin, topic, 1, cfg);
                long start = System.nanoTime();
                try (KafkaProducer<String, String> p = producer(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec)) {
                    long old = now() - HOUR;
                    for (int v = 0; v < VERSIONS; v++) {
                        for (int k = 0; k < KEYS; k++) {
                            String val = value(k, v);
                            // The final tombstones carry a timestamp 1 hour old, well past delete.retention.ms.
                            Long ts = (val == null && v == VERSIONS - 1) ? Long.valueOf(old + k) : null;
                            p.send(new ProducerRecord<>(topic, 0, ts, key(k), val));
                        }
                        p.flush(); // every version ends a batch: several producer batches per version
                    }
                    // The head: one fresh record alone in the last batch.
                    RecordMetadata md = p.send(new ProducerRecord<>(topic, 0, "head", "head 1")).get(30, TimeUnit.SECONDS);
                    c.checkEq((long) VERSIONS * KEYS, md.offset(), "offset of the head record");
                }
                c.info("produced " + (VERSIONS * KEYS + 1) + " records in " + ms(start));
                long size = partitionSize(admin, tp);
                sizes.put(topic, size);
                c.info("describeLogDirs: " + tp + " size " + size + " bytes");
                if (codec.equals("none")) {
                    c.check(size >= (long) VERSIONS * KEYS * COMPACT_VALUE_BYTES * 8 / 10, "partition size covers all versions (" + size + ")");
                } else {
                    c.check(size > 0, "partition size reported (" + size + ")");
                }
            });
        }
        // Several cleaner passes (log.cleaner.backoff.ms=1000) must leave records younger than
        // min.compaction.lag.ms alone.
        c.step("min.compaction.lag.ms=1h holds the cleaner back (4 s, ~4 cleaner passes)", () -> {
            Thread.sleep(4000);
            for (String codec : CODECS) {
                String topic = compactTopic(codec);
                TopicPartition tp = new TopicPartition(topic, 0);
                try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                    List<ConsumerRecord<String, String>> all = readAll(consumer, tp, 30_000);
                    c.checkEq(VERSIONS * KEYS + 1, all.size(), topic + ": records readable");
                }
                c.checkEq(sizes.get(topic), partitionSize(admin, tp), topic + ": partition size unchanged");
            }
        });
    }

    void compaction(Admin admin) throws Exception {
        for (String codec : CODECS) {
            String topic = compactTopic(codec);
            TopicPartition tp = new TopicPartition(topic, 0);
            int failuresBefore = c.failures();
            c.step(topic + " (" + codec + "): DELETE min.compaction.lag.ms, the cleaner keeps the latest value of every live key", () -> {
                long before = partitionSize(admin, tp);
                c.info("describeLogDirs before: " + before + " bytes");
                alter(admin, topicRes(topic), op("min.compaction.lag.ms", "", AlterConfigOp.OpType.DELETE));
                Map<String, Map.Entry<String, Long>> expected = expectedAfterFirstRound();
                int[] reads = {0};
                try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                    Waited<String> w = waitFor("compacted contents of " + topic, COMPACTION_WAIT_MS, () -> {
                        reads[0]++;
                        String problem = compactionProblem(readAll(consumer, tp, 20_000), expected);
                        return problem == null ? "exact" : problem;
                    }, "exact"::equals);
                    c.check(w.ok(), "reading from the beginning returns exactly " + expected.size()
                            + " records: the latest value of each of the " + (expected.size() - 1)
                            + " live keys at its original offset, plus the head (" + reads[0] + " reads; last: " + w.last() + ")");
                    c.checkEq(0L, consumer.beginningOffsets(List.of(tp)).get(tp), "earliest offset stays 0");
                    c.checkEq((long) VERSIONS * KEYS + 1, consumer.endOffsets(List.of(tp)).get(tp), "end offset unchanged");
                }
                long after = partitionSize(admin, tp);
                c.info("describeLogDirs after: " + after + " bytes (" + before + " before, "
                        + String.format("%.1f%%", 100.0 * after / Math.max(1, before)) + ")");
                c.check(after >= 0 && after < before / 3, "describeLogDirs partition size fell from " + before + " to " + after);
            });

            if (c.failures() > failuresBefore) {
                c.info(topic + ": second round skipped (the first did not compact)");
                continue;
            }
            c.step(topic + ": a second round of updates is compacted too", () -> {
                try (KafkaProducer<String, String> p = producer(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec)) {
                    for (int k = 0; k < SECOND_ROUND_KEYS; k++) {
                        p.send(new ProducerRecord<>(topic, 0, key(k), secondRoundValue(k)));
                    }
                    p.send(new ProducerRecord<>(topic, 0, "head", "head 2"));
                    p.flush();
                    p.send(new ProducerRecord<>(topic, 0, "tail", "tail")).get(30, TimeUnit.SECONDS);
                }
                Map<String, Map.Entry<String, Long>> expected = expectedAfterSecondRound();
                try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                    Waited<String> w = waitFor("second compaction of " + topic, COMPACTION_WAIT_MS, () -> {
                        String problem = compactionProblem(readAll(consumer, tp, 20_000), expected);
                        return problem == null ? "exact" : problem;
                    }, "exact"::equals);
                    c.check(w.ok(), "exactly " + expected.size() + " records after the second round (key-0003 revived, \"head 1\" superseded; last: " + w.last() + ")");
                }
                c.info("describeLogDirs after the second round: " + partitionSize(admin, tp) + " bytes");
            });
        }

        c.step("keyless records are refused on a compacted topic", () -> {
            try (KafkaProducer<String, String> p = producer(ProducerConfig.RETRIES_CONFIG, "0",
                    ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false")) {
                Future<RecordMetadata> f = p.send(new ProducerRecord<>(T_COMPACT, 0, null, "no key"));
                try {
                    RecordMetadata md = f.get(30, TimeUnit.SECONDS);
                    c.fail("a keyless record was stored at offset " + md.offset());
                } catch (Exception e) {
                    Throwable t = Checks.unwrap(e);
                    c.check(t instanceof InvalidRecordException, "keyless send -> " + Checks.describe(t));
                }
            }
        });
    }

    // ---------------------------------------------------------------------------------------
    // DeleteRecords

    void deleteRecords(Admin admin) throws Exception {
        TopicPartition p0 = new TopicPartition(T_DELETE, 0);
        TopicPartition p1 = new TopicPartition(T_DELETE, 1);
        long[] size0 = new long[1];
        c.step("produce 100 records to partition 0 and 50 to partition 1 (batches of 10)", () -> {
            createTopic(admin, T_DELETE, 2, Map.of());
            try (KafkaProducer<String, String> p = producer()) {
                for (int i = 0; i < 100; i++) {
                    p.send(new ProducerRecord<>(T_DELETE, 0, "k" + i, "p0 value " + i));
                    if (i < 50) {
                        p.send(new ProducerRecord<>(T_DELETE, 1, "k" + i, "p1 value " + i));
                    }
                    if (i % 10 == 9) {
                        p.flush();
                    }
                }
                p.flush();
            }
            c.checkEq(100L, latest(admin, p0), "end offset p0");
            c.checkEq(50L, latest(admin, p1), "end offset p1");
            size0[0] = partitionSize(admin, p0);
            c.info("describeLogDirs p0 " + size0[0] + " bytes, p1 " + partitionSize(admin, p1) + " bytes");
        });

        c.step("deleteRecords p0 before 40, p1 before 50 (all)", () -> {
            Map<TopicPartition, RecordsToDelete> req = Map.of(p0, RecordsToDelete.beforeOffset(40), p1, RecordsToDelete.beforeOffset(50));
            var lw = admin.deleteRecords(req).lowWatermarks();
            c.checkEq(40L, lw.get(p0).get(30, TimeUnit.SECONDS).lowWatermark(), "lowWatermark p0");
            c.checkEq(50L, lw.get(p1).get(30, TimeUnit.SECONDS).lowWatermark(), "lowWatermark p1");
            try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                consumer.assign(List.of(p0, p1));
                Map<TopicPartition, Long> b = consumer.beginningOffsets(List.of(p0, p1));
                c.checkEq(40L, b.get(p0), "beginningOffsets p0");
                c.checkEq(50L, b.get(p1), "beginningOffsets p1");
                c.checkEq(Map.of(p0, 100L, p1, 50L), consumer.endOffsets(List.of(p0, p1)), "endOffsets unchanged");
                consumer.assign(List.of(p0));
                consumer.seekToBeginning(List.of(p0));
                List<ConsumerRecord<String, String>> got = pollN(consumer, 60, 30_000);
                c.checkEq(60, got.size(), "records read from p0");
                c.check(!got.isEmpty() && got.get(0).offset() == 40 && got.get(0).value().equals("p0 value 40"),
                        "first record read is offset 40" + (got.isEmpty() ? "" : " (" + got.get(0).offset() + ")"));
            }
            long after0 = partitionSize(admin, p0);
            long after1 = partitionSize(admin, p1);
            c.info("describeLogDirs p0 " + after0 + " bytes (" + size0[0] + " before), p1 " + after1 + " bytes");
            c.check(after0 < size0[0] && after0 > 0, "p0 size fell (whole batches before offset 40 dropped)");
            c.checkEq(0L, after1, "p1 size after deleting everything");
        });

        c.step("deleteRecords below the current low watermark keeps it; beyond the end is refused", () -> {
            c.checkEq(40L, admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(25))).lowWatermarks().get(p0)
                    .get(30, TimeUnit.SECONDS).lowWatermark(), "lowWatermark after deleting before 25");
            c.expectThrows(org.apache.kafka.common.errors.OffsetOutOfRangeException.class, "deleteRecords before 101 (end is 100)",
                    () -> admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(101))).lowWatermarks().get(p0).get(30, TimeUnit.SECONDS));
            // (Not checked here: for an unknown topic the Java admin keeps retrying the metadata
            // lookup until its timeout, as it does against Kafka; test_lifecycle.py checks it.)
            c.checkEq(40L, earliest(admin, p0), "earliest p0 still 40");
        });

        c.step("deleteRecords mid-batch (offset 65) and up to the end", () -> {
            c.checkEq(65L, admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(65))).lowWatermarks().get(p0)
                    .get(30, TimeUnit.SECONDS).lowWatermark(), "lowWatermark p0");
            try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                consumer.assign(List.of(p0));
                consumer.seekToBeginning(List.of(p0));
                List<ConsumerRecord<String, String>> got = pollN(consumer, 35, 30_000);
                c.check(got.size() == 35 && got.get(0).offset() == 65,
                        "reading from the beginning starts at 65 even inside a batch (" + got.size() + " records"
                                + (got.isEmpty() ? ")" : ", first " + got.get(0).offset() + ")"));
            }
            c.checkEq(100L, admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(100))).lowWatermarks().get(p0)
                    .get(30, TimeUnit.SECONDS).lowWatermark(), "lowWatermark after deleting up to the end");
            c.checkEq(100L, earliest(admin, p0), "earliest p0");
            try (KafkaProducer<String, String> p = producer()) {
                c.checkEq(100L, p.send(new ProducerRecord<>(T_DELETE, 0, "after", "after delete")).get(30, TimeUnit.SECONDS).offset(),
                        "the next record produced gets offset 100");
            }
        });

        c.step("an idempotent producer keeps going after everything it wrote was deleted", () -> {
            TopicPartition tp = new TopicPartition(T_DELETE, 1); // emptied above (log start 50 = end)
            try (KafkaProducer<String, String> p = producer()) {
                long first = p.send(new ProducerRecord<>(T_DELETE, 1, "idem", "one")).get(30, TimeUnit.SECONDS).offset();
                c.checkEq(50L, first, "first offset");
                c.checkEq(51L, admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(51))).lowWatermarks().get(tp)
                        .get(30, TimeUnit.SECONDS).lowWatermark(), "lowWatermark after deleting the producer's only batch");
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (int i = 0; i < 5; i++) {
                    fs.add(p.send(new ProducerRecord<>(T_DELETE, 1, "idem", "more " + i)));
                }
                List<Long> offsets = new ArrayList<>();
                for (Future<RecordMetadata> f : fs) {
                    offsets.add(f.get(30, TimeUnit.SECONDS).offset());
                }
                c.checkEq(List.of(51L, 52L, 53L, 54L, 55L), offsets, "offsets of the same producer's next records");
            }
        });
    }

    // ---------------------------------------------------------------------------------------
    // offsetsForTimes

    void offsetsForTimes(Admin admin) throws Exception {
        long base = (now() - 10 * 60_000L) / 1000 * 1000;
        for (String[] t : new String[][] {{T_TIMES, "none"}, {T_TIMES_GZIP, "gzip"}}) {
            String topic = t[0];
            TopicPartition tp = new TopicPartition(topic, 0);
            c.step(topic + " (" + t[1] + "): 30 records 1 s apart, 5 per batch", () -> {
                createTopic(admin, topic, 1, Map.of());
                try (KafkaProducer<String, String> p = producer(ProducerConfig.COMPRESSION_TYPE_CONFIG, t[1])) {
                    for (int i = 0; i < 30; i++) {
                        p.send(new ProducerRecord<>(topic, 0, base + i * 1000L, "t" + i, "at +" + i + "s"));
                        if (i % 5 == 4) {
                            p.flush();
                        }
                    }
                }
                try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                    consumer.assign(List.of(tp));
                    Map<Long, Long> cases = new LinkedHashMap<>();
                    cases.put(0L, 0L);
                    cases.put(base - 60_000, 0L);
                    cases.put(base, 0L);
                    cases.put(base + 1, 1L);
                    cases.put(base + 7000, 7L);
                    cases.put(base + 7500, 8L);
                    cases.put(base + 10_000, 10L); // first record of a batch
                    cases.put(base + 14_000, 14L); // last record of a batch
                    cases.put(base + 29_000, 29L);
                    cases.put(base + 29_001, null);
                    cases.put(now() + HOUR, null);
                    Map<TopicPartition, Long> query = new HashMap<>();
                    for (Map.Entry<Long, Long> e : cases.entrySet()) {
                        query.put(tp, e.getKey());
                        OffsetAndTimestamp got = consumer.offsetsForTimes(query, Duration.ofSeconds(30)).get(tp);
                        String label = "offsetsForTimes(" + (e.getKey() >= base - 60_000 ? "base" + signed(e.getKey() - base) : String.valueOf(e.getKey())) + ")";
                        if (e.getValue() == null) {
                            c.check(got == null, label + " = null" + (got == null ? "" : ", got " + got));
                        } else {
                            long wantTs = base + e.getValue() * 1000;
                            c.check(got != null && got.offset() == e.getValue() && got.timestamp() == wantTs,
                                    label + " = offset " + e.getValue() + " ts base" + signed(wantTs - base) + (got == null ? ", got null"
                                            : got.offset() == e.getValue() && got.timestamp() == wantTs ? "" : ", got " + got.offset() + " ts " + got.timestamp()));
                        }
                    }
                }
                var r = admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 12_500))).partitionResult(tp).get(30, TimeUnit.SECONDS);
                c.check(r.offset() == 13 && r.timestamp() == base + 13_000, "admin listOffsets(forTimestamp base+12500) = 13 (" + r + ")");
                r = admin.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).partitionResult(tp).get(30, TimeUnit.SECONDS);
                c.check(r.offset() == 29 && r.timestamp() == base + 29_000, "admin listOffsets(maxTimestamp) = 29 (" + r + ")");
            });

            c.step(topic + ": offsetsForTimes after deleteRecords before 12", () -> {
                admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(12))).all().get(30, TimeUnit.SECONDS);
                try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                    consumer.assign(List.of(tp));
                    OffsetAndTimestamp got = consumer.offsetsForTimes(Map.of(tp, base), Duration.ofSeconds(30)).get(tp);
                    c.check(got != null && got.offset() == 12 && got.timestamp() == base + 12_000,
                            "offsetsForTimes(base) = 12, the new log start (" + got + ")");
                    got = consumer.offsetsForTimes(Map.of(tp, base + 20_000), Duration.ofSeconds(30)).get(tp);
                    c.check(got != null && got.offset() == 20, "offsetsForTimes(base+20000) = 20 (" + got + ")");
                }
            });
        }

        c.step(T_APPEND_TIME + ": message.timestamp.type=LogAppendTime", () -> {
            TopicPartition tp = new TopicPartition(T_APPEND_TIME, 0);
            createTopic(admin, T_APPEND_TIME, 1, Map.of("message.timestamp.type", "LogAppendTime"));
            long before = now();
            List<RecordMetadata> mds = new ArrayList<>();
            try (KafkaProducer<String, String> p = producer()) {
                for (int i = 0; i < 5; i++) {
                    mds.add(p.send(new ProducerRecord<>(T_APPEND_TIME, 0, base, "a" + i, "append " + i)).get(30, TimeUnit.SECONDS));
                }
            }
            long after = now();
            c.check(mds.stream().allMatch(m -> m.timestamp() >= before - 1000 && m.timestamp() <= after + 1000),
                    "produce responses carry the broker's append time, not the producer's (" + mds.get(0).timestamp() + ")");
            try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                List<ConsumerRecord<String, String>> got = readAll(consumer, tp, 30_000);
                c.checkEq(5, got.size(), "records read");
                c.check(got.stream().allMatch(r -> r.timestampType() == TimestampType.LOG_APPEND_TIME),
                        "timestampType LOG_APPEND_TIME" + (got.isEmpty() ? "" : " (" + got.get(0).timestampType() + ")"));
                c.check(got.stream().allMatch(r -> r.timestamp() >= before - 1000 && r.timestamp() <= after + 1000),
                        "timestamps within the produce window" + (got.isEmpty() ? "" : " (" + got.get(0).timestamp() + ", window " + before + ".." + after + ")"));
                OffsetAndTimestamp o = consumer.offsetsForTimes(Map.of(tp, base), Duration.ofSeconds(30)).get(tp);
                c.check(o != null && o.offset() == 0, "offsetsForTimes(the producer's timestamp, 10 min ago) = 0 (" + o + ")");
                o = consumer.offsetsForTimes(Map.of(tp, after + 60_000), Duration.ofSeconds(30)).get(tp);
                c.check(o == null, "offsetsForTimes(1 min after the last append) = null (" + o + ")");
            }
        });
    }

    // ---------------------------------------------------------------------------------------
    // timestamp bounds (KIP-937)

    /** Sends one record in its own batch; returns "stored at N" or the exception's description. */
    String sendOne(String topic, long ts) {
        try (KafkaProducer<String, String> p = producer(ProducerConfig.RETRIES_CONFIG, "0",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false")) {
            return "stored at " + p.send(new ProducerRecord<>(topic, 0, ts, "k", "v")).get(30, TimeUnit.SECONDS).offset();
        } catch (Exception e) {
            return Checks.describe(e);
        }
    }

    void timestampBounds(Admin admin) throws Exception {
        c.step("default topic: CreateTime more than 1 hour ahead is refused, any past time accepted", () -> {
            createTopic(admin, "lc-ts-default", 1, Map.of());
            checkEntry(describe(admin, topicRes("lc-ts-default")), "message.timestamp.after.max.ms", "3600000",
                    ConfigEntry.ConfigSource.DEFAULT_CONFIG, "advertised default");
            String r = sendOne("lc-ts-default", now() + 2 * HOUR);
            c.check(r.startsWith("InvalidTimestampException"), "timestamp now + 2 h -> " + r);
            r = sendOne("lc-ts-default", now() + 60_000);
            c.check(r.startsWith("stored"), "timestamp now + 1 min -> " + r);
            r = sendOne("lc-ts-default", now() - 30L * 24 * HOUR);
            c.check(r.startsWith("stored"), "timestamp now - 30 days -> " + r);
        });
        c.step("message.timestamp.before.max.ms=60000: a record 1 hour old is refused", () -> {
            createTopic(admin, "lc-ts-before", 1, Map.of("message.timestamp.before.max.ms", "60000"));
            String r = sendOne("lc-ts-before", now() - HOUR);
            c.check(r.startsWith("InvalidTimestampException"), "timestamp now - 1 h -> " + r);
            r = sendOne("lc-ts-before", now());
            c.check(r.startsWith("stored"), "timestamp now -> " + r);
        });
        c.step("LogAppendTime topics ignore the bounds", () -> {
            createTopic(admin, "lc-ts-append", 1, Map.of("message.timestamp.type", "LogAppendTime"));
            String r = sendOne("lc-ts-append", now() + 2 * HOUR);
            c.check(r.startsWith("stored"), "timestamp now + 2 h on a LogAppendTime topic -> " + r);
        });
    }

    static String signed(long d) {
        return d >= 0 ? "+" + d : String.valueOf(d);
    }

    // ---------------------------------------------------------------------------------------
    // after a broker restart

    void afterRestart(Admin admin) throws Exception {
        c.step("log start offsets survive the restart", () -> {
            c.checkEq((long) BULK_OLD, earliest(admin, new TopicPartition(T_RET_BULK, 0)), "earliest " + T_RET_BULK);
            c.checkEq(14L, earliest(admin, new TopicPartition(T_RET_BYTES, 0)), "earliest " + T_RET_BYTES);
            c.checkEq(100L, earliest(admin, new TopicPartition(T_DELETE, 0)), "earliest " + T_DELETE + "-0");
            c.checkEq(51L, earliest(admin, new TopicPartition(T_DELETE, 1)), "earliest " + T_DELETE + "-1");
            c.checkEq(12L, earliest(admin, new TopicPartition(T_TIMES, 0)), "earliest " + T_TIMES);
        });
        c.step("topic configs survive the restart", () -> {
            checkEntry(describe(admin, topicRes(T_RET_BULK)), "retention.ms", String.valueOf(BULK_RETENTION_MS),
                    ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, T_RET_BULK);
            Config cc = describe(admin, topicRes(T_COMPACT));
            checkEntry(cc, "cleanup.policy", "compact", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, T_COMPACT);
            checkEntry(cc, "min.compaction.lag.ms", "0", ConfigEntry.ConfigSource.DEFAULT_CONFIG, T_COMPACT + " (deleted override)");
            checkEntry(describe(admin, topicRes(T_CONFIGS_DEFAULT)), "retention.ms", DEFAULT_RETENTION,
                    ConfigEntry.ConfigSource.DEFAULT_CONFIG, T_CONFIGS_DEFAULT + " (broker layers deleted)");
        });
        c.step("the compacted topics read back exactly as compacted", () -> {
            for (String codec : CODECS) {
                TopicPartition tp = new TopicPartition(compactTopic(codec), 0);
                try (KafkaConsumer<String, String> consumer = consumer("earliest")) {
                    String problem = compactionProblem(readAll(consumer, tp, 30_000), expectedAfterSecondRound());
                    c.check(problem == null, tp + ": compacted contents after restart" + (problem == null ? "" : ": " + problem));
                }
                c.info("describeLogDirs " + tp + ": " + partitionSize(admin, tp) + " bytes");
            }
        });
        c.step("retention keeps working after the restart", () -> {
            TopicPartition tp = new TopicPartition(T_RET_BULK, 0);
            long end = latest(admin, tp);
            alter(admin, topicRes(T_RET_BULK), op("retention.bytes", "0", AlterConfigOp.OpType.SET));
            Waited<Long> w = waitFor("earliest offset of " + T_RET_BULK + " == end (" + end + ") with retention.bytes=0",
                    RETENTION_WAIT_MS, () -> earliest(admin, tp), v -> v >= end);
            c.checkEq(end, w.last(), "earliest offset with retention.bytes=0");
            c.checkEq(0L, partitionSize(admin, tp), "partition size");
        });
    }
}
