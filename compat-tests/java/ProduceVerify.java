import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;

/**
 * Scenarios (b) and (c): produce a large keyed data set with a stock idempotent producer, then read
 * it back with a group-less consumer and compare every field of every record.
 *
 * <p>Usage: {@code java ProduceVerify produce|verify BOOTSTRAP CODEC SEED TS_BASE}
 *
 * <p>produce and verify are separate processes so the runner can restart the broker between
 * them and verify again. Nothing is stored between the two: both regenerate the same records
 * from (CODEC, SEED, TS_BASE). Expected partitions come from the client's own keyed-partitioning
 * rule and expected offsets are 0..n-1 per partition in send order; produce mode asserts both
 * against the producer's RecordMetadata, so verify mode can rely on them.
 *
 * <p>System properties: fjord.records (default 100000), fjord.verify.timeout.s (default 180).
 */
public final class ProduceVerify {
    static final int PARTITIONS = 6;
    /** Mismatch details printed per field; the rest are only counted, to keep output readable. */
    static final int MAX_DETAILS = 5;

    /** One record as sent: the partition is derived, the offset is its index within the partition. */
    record Rec(int index, int partition, byte[] key, byte[] value, Header[] headers, long timestamp) {}

    public static void main(String[] args) throws Exception {
        if (args.length != 5 || !(args[0].equals("produce") || args[0].equals("verify"))) {
            System.err.println("usage: ProduceVerify produce|verify BOOTSTRAP CODEC SEED TS_BASE");
            System.exit(2);
        }
        String mode = args[0];
        String bootstrap = args[1];
        String codec = args[2];
        long seed = Long.parseLong(args[3]);
        long tsBase = Long.parseLong(args[4]);
        int n = Integer.getInteger("fjord.records", 100_000);
        String topic = "compat-pv-" + codec;

        Checks c = new Checks(mode + "-" + codec);
        List<Rec> recs = generate(codec, seed, tsBase, n);
        System.out.println("[" + mode + "-" + codec + "] topic " + topic + ": " + n + " records, " + PARTITIONS
                + " partitions, seed " + seed + ", ts base " + tsBase);
        if (mode.equals("produce")) {
            c.step("create topic", () -> createTopic(bootstrap, topic, c));
            c.step("produce", () -> produce(bootstrap, topic, codec, recs, c));
        } else {
            c.step("consume and compare", () -> verify(bootstrap, topic, recs, c));
        }
        System.exit(c.finish());
    }

    /**
     * Deterministic data set. A single sequential RNG keeps it reproducible as long as the
     * generation order never changes. Values mix compressible text with random bytes so every
     * codec has real work to do, and a few edge cases are sprinkled in: null values (tombstones),
     * empty values, null header values, and timestamps that go backwards within a batch (negative
     * timestamp deltas in the v2 record format).
     */
    static List<Rec> generate(String codec, long seed, long tsBase, int n) {
        SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + codec.hashCode());
        String[] words = {"alpha", "bravo", "charlie", "delta", "echo", "fjord", "kafka", "broker", "record", "batch"};
        List<Rec> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            byte[] key = ("key-" + i + "-" + rnd.nextInt(1_000_000)).getBytes(StandardCharsets.UTF_8);
            byte[] value;
            if (i % 1000 == 999) {
                value = null;
            } else if (i % 997 == 0) {
                value = new byte[0];
            } else {
                StringBuilder sb = new StringBuilder("value ").append(i);
                int nWords = rnd.nextInt(40);
                for (int w = 0; w < nWords; w++) sb.append(' ').append(words[rnd.nextInt(words.length)]);
                byte[] text = sb.toString().getBytes(StandardCharsets.UTF_8);
                byte[] noise = new byte[rnd.nextInt(17)];
                for (int b = 0; b < noise.length; b++) noise[b] = (byte) rnd.nextInt(256);
                value = Arrays.copyOf(text, text.length + noise.length);
                System.arraycopy(noise, 0, value, text.length, noise.length);
            }
            byte[] blob = null;
            if (i % 500 != 250) {
                blob = new byte[8 + rnd.nextInt(17)];
                for (int b = 0; b < blob.length; b++) blob[b] = (byte) rnd.nextInt(256);
            }
            Header[] headers = {
                new RecordHeader("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8)),
                new RecordHeader("blob", blob),
            };
            // Within the hour before TS_BASE: old enough for any after.max.ms check, recent enough
            // that default time retention cannot delete it between produce and verify.
            long ts = tsBase - rnd.nextLong(3_600_000L);
            // The producer's rule for keyed records when no partition is given (BuiltInPartitioner).
            int partition = Utils.toPositive(Utils.murmur2(key)) % PARTITIONS;
            out.add(new Rec(i, partition, key, value, headers, ts));
        }
        return out;
    }

    static void createTopic(String bootstrap, String topic, Checks c) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get(30, TimeUnit.SECONDS);
            c.check(true, "created " + topic + " with " + PARTITIONS + " partitions");
        }
    }

    static void produce(String bootstrap, String topic, String codec, List<Rec> recs, Checks c) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        // Everything else is left at the client's defaults on purpose; assert the two that matter.
        ProducerConfig effective = new ProducerConfig(p);
        c.check(effective.getBoolean(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG), "producer default enable.idempotence=true");
        String acks = effective.getString(ProducerConfig.ACKS_CONFIG);
        c.check(acks.equals("all") || acks.equals("-1"), "producer default acks=all (" + acks + ")");

        int n = recs.size();
        int[] mdPartition = new int[n];
        long[] mdOffset = new long[n];
        long[] mdTimestamp = new long[n];
        Arrays.fill(mdPartition, -1);
        Arrays.fill(mdOffset, -1);
        ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
        AtomicInteger errorCount = new AtomicInteger();

        long start = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (Rec r : recs) {
                final int i = r.index();
                // Partition left null so the client's keyed partitioner chooses, as in real use.
                ProducerRecord<byte[], byte[]> pr = new ProducerRecord<>(
                        topic, null, r.timestamp(), r.key(), r.value(), Arrays.asList(r.headers()));
                producer.send(pr, (md, ex) -> {
                    if (ex != null) {
                        if (errorCount.incrementAndGet() <= MAX_DETAILS) errors.add("record " + i + ": " + Checks.describe(ex));
                        return;
                    }
                    mdPartition[i] = md.partition();
                    mdOffset[i] = md.offset();
                    mdTimestamp[i] = md.timestamp();
                });
            }
            producer.flush();
            // Against a healthy local broker a stock producer never needs to retry. A retry means
            // some produce request was answered with an error (the client logs each one as a WARN),
            // even if the data ends up correct thanks to idempotence.
            for (String name : List.of("record-retry-total", "record-error-total")) {
                double v = metric(producer, name);
                c.check(v == 0.0, "producer " + name + " = " + (long) v + (Double.isNaN(v) ? " (metric missing)" : ""));
            }
        }
        double secs = (System.nanoTime() - start) / 1e9;
        c.info(String.format("sent %d records in %.1f s (%.0f rec/s)", n, secs, n / secs));
        c.check(errorCount.get() == 0, "all sends acknowledged without error (" + errorCount.get() + " errors)");
        errors.forEach(e -> c.info("send error: " + e));

        // Send callbacks run on the producer I/O thread; close() above joined it, so the arrays are
        // safely published here.
        int[] nextOffset = new int[PARTITIONS];
        int badPartition = 0, badOffset = 0, badTimestamp = 0;
        List<String> details = new ArrayList<>();
        for (Rec r : recs) {
            int i = r.index();
            if (mdPartition[i] == -1) continue; // already counted as a send error
            if (mdPartition[i] != r.partition()) {
                if (badPartition++ < MAX_DETAILS) details.add("record " + i + " partition " + mdPartition[i] + ", expected " + r.partition());
                continue;
            }
            long expectedOffset = nextOffset[r.partition()]++;
            if (mdOffset[i] != expectedOffset && badOffset++ < MAX_DETAILS) {
                details.add("record " + i + " offset " + mdOffset[i] + " in p" + r.partition() + ", expected " + expectedOffset);
            }
            if (mdTimestamp[i] != r.timestamp() && badTimestamp++ < MAX_DETAILS) {
                details.add("record " + i + " metadata timestamp " + mdTimestamp[i] + ", expected " + r.timestamp());
            }
        }
        c.check(badPartition == 0, "RecordMetadata partition equals the keyed-partitioner choice (" + badPartition + " mismatches)");
        c.check(badOffset == 0, "RecordMetadata offsets are 0..n-1 per partition in send order (" + badOffset + " mismatches)");
        c.check(badTimestamp == 0, "RecordMetadata timestamp equals the CreateTime sent (" + badTimestamp + " mismatches)");
        details.forEach(d -> c.info(d));
        c.info("records per partition: " + Arrays.toString(nextOffset));
    }

    /** A cumulative producer-level metric (group producer-metrics); NaN if the client lacks it. */
    static double metric(KafkaProducer<?, ?> producer, String name) {
        for (Map.Entry<MetricName, ? extends Metric> e : producer.metrics().entrySet()) {
            MetricName m = e.getKey();
            if (m.group().equals("producer-metrics") && m.name().equals(name)) {
                return ((Number) e.getValue().metricValue()).doubleValue();
            }
        }
        return Double.NaN;
    }

    static void verify(String bootstrap, String topic, List<Rec> recs, Checks c) throws Exception {
        List<List<Rec>> expected = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) expected.add(new ArrayList<>());
        for (Rec r : recs) expected.get(r.partition()).add(r);

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        // No group.id: plain assign() with no coordinator involvement, and nothing to commit.
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        // A missing topic must stay missing (e.g. lost across a restart), not be auto-created empty.
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");

        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < PARTITIONS; i++) tps.add(new TopicPartition(topic, i));
        long timeoutS = Long.getLong("fjord.verify.timeout.s", 180);

        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            // Fail fast and clearly if the topic is gone, instead of timing out in ListOffsets.
            List<PartitionInfo> parts = consumer.partitionsFor(topic, Duration.ofSeconds(30));
            if (!c.checkEq(PARTITIONS, parts == null ? 0 : parts.size(), "partitions of " + topic + " in metadata")) {
                return;
            }
            // Assign before asking for offsets: the client warns about listing unassigned partitions.
            consumer.assign(tps);
            Map<TopicPartition, Long> begin = consumer.beginningOffsets(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps);
            for (TopicPartition tp : tps) {
                c.checkEq(0L, begin.get(tp), "beginning offset of " + tp);
                c.checkEq((long) expected.get(tp.partition()).size(), end.get(tp), "end offset of " + tp);
            }

            consumer.seekToBeginning(tps);

            int[] pos = new int[PARTITIONS];
            int total = recs.size(), seen = 0, extra = 0;
            Map<String, Integer> bad = new HashMap<>();
            List<String> details = new ArrayList<>();
            long start = System.nanoTime();
            long deadline = start + TimeUnit.SECONDS.toNanos(timeoutS);
            // Keep polling until every record arrived; then one more short poll to catch extras.
            boolean done = false;
            while (System.nanoTime() < deadline) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(done ? 1000 : 500));
                for (ConsumerRecord<byte[], byte[]> got : batch) {
                    int part = got.partition();
                    List<Rec> exp = expected.get(part);
                    if (pos[part] >= exp.size()) {
                        if (extra++ < MAX_DETAILS) details.add("unexpected extra record p" + part + "@" + got.offset());
                        continue;
                    }
                    Rec want = exp.get(pos[part]);
                    compare(want, pos[part], got, bad, details);
                    pos[part]++;
                    seen++;
                }
                if (done) break;
                done = seen == total;
            }
            double secs = (System.nanoTime() - start) / 1e9;
            c.info(String.format("consumed %d of %d records in %.1f s", seen, total, secs));
            for (int i = 0; i < PARTITIONS; i++) {
                c.checkEq(expected.get(i).size(), pos[i], "records read from partition " + i);
            }
            c.checkEq(0, extra, "records beyond the expected ones");
            for (String field : List.of("offset", "key", "value", "headers", "timestamp", "timestampType")) {
                int count = bad.getOrDefault(field, 0);
                c.check(count == 0, "every record's " + field + " matches (" + count + " mismatches)");
            }
            details.forEach(d -> c.info(d));
        }
    }

    /** Records per-field mismatches; {@code index} is the record's expected position (= offset). */
    static void compare(Rec want, int index, ConsumerRecord<byte[], byte[]> got, Map<String, Integer> bad, List<String> details) {
        String where = "p" + got.partition() + "@" + got.offset() + " (record " + want.index() + ")";
        if (got.offset() != index) mismatch("offset", where + " expected offset " + index, bad, details);
        if (!Arrays.equals(want.key(), got.key())) mismatch("key", where + " key " + show(got.key()) + ", expected " + show(want.key()), bad, details);
        if (!Arrays.equals(want.value(), got.value())) mismatch("value", where + " value " + show(got.value()) + ", expected " + show(want.value()), bad, details);
        Header[] gh = got.headers().toArray();
        boolean headersOk = gh.length == want.headers().length;
        for (int h = 0; headersOk && h < gh.length; h++) {
            headersOk = gh[h].key().equals(want.headers()[h].key()) && Arrays.equals(gh[h].value(), want.headers()[h].value());
        }
        if (!headersOk) mismatch("headers", where + " headers " + showHeaders(gh) + ", expected " + showHeaders(want.headers()), bad, details);
        if (got.timestamp() != want.timestamp()) mismatch("timestamp", where + " timestamp " + got.timestamp() + ", expected " + want.timestamp(), bad, details);
        if (got.timestampType() != TimestampType.CREATE_TIME) mismatch("timestampType", where + " timestampType " + got.timestampType(), bad, details);
    }

    static void mismatch(String field, String detail, Map<String, Integer> bad, List<String> details) {
        if (bad.merge(field, 1, Integer::sum) <= MAX_DETAILS) details.add(detail);
    }

    static String show(byte[] b) {
        if (b == null) return "null";
        String s = new String(b, 0, Math.min(b.length, 40), StandardCharsets.UTF_8);
        return "[" + b.length + " bytes] \"" + s.replaceAll("[^\\x20-\\x7e]", "?") + (b.length > 40 ? "...\"" : "\"");
    }

    static String showHeaders(Header[] hs) {
        StringBuilder sb = new StringBuilder("{");
        for (Header h : hs) sb.append(h.key()).append('=').append(show(h.value())).append(", ");
        return sb.append('}').toString();
    }
}
