import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.LongSerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The Kafka Streams application of compat-tests/java-streams.sh, and the tools around it. Modes:
 * <pre>
 *   setup BOOTSTRAP WORKDIR        creates the input topic and both runs' output topics (one partition
 *                                  each, retention.ms=-1), produces the input (N records, fixed seed,
 *                                  explicit timestamps) and writes the model's expected output to
 *                                  WORKDIR/model.&lt;output&gt; in the dump format
 *   app BOOTSTRAP APP_ID STATE_DIR RUN PAUSE_AT TXN_TIMEOUT_MS
 *                                  runs the topology (outputs &lt;output&gt;-RUN) until SIGTERM; with
 *                                  PAUSE_AT &gt;= 0 it blocks its stream thread, inside an open
 *                                  transaction, right after forwarding its PAUSE_ATth total (counted
 *                                  in this process), and prints PAUSED, so the script can SIGKILL it
 *                                  there; TXN_TIMEOUT_MS &gt; 0 sets the producer's transaction.timeout.ms
 *   stable BOOTSTRAP TIMEOUT_S TOPIC...
 *                                  waits until no transaction is open on any partition of the topics
 *                                  (read_committed end offset = read_uncommitted end offset); exit 3
 *                                  if that did not happen within TIMEOUT_S
 *   dump BOOTSTRAP TOPIC FILE ISOLATION MIN_RECORDS TIMEOUT_S
 *                                  reads every partition of TOPIC from the beginning with the given
 *                                  isolation level until it holds at least MIN_RECORDS and is at the
 *                                  end offset (for read_committed: the last stable offset); writes
 *                                  the dump format; exit 3 if that did not happen within TIMEOUT_S
 * </pre>
 * Topology: purchases (key user id, value amount) -&gt; selectKey(region of the user) -&gt;
 * repartition (topic APP_ID-by-region-repartition, 1 partition) -&gt; groupByKey, then
 * (a) aggregate: running sum per region, KTable backed by store region-totals with a changelog
 *     topic, every update to region-totals-RUN;
 * (b) windowedBy(1 min tumbling, 30 s grace).count(): store region-minute-counts with a windowed
 *     changelog, every update to region-minute-counts-RUN keyed "region@windowStart".
 * statestore.cache.max.bytes=0, so every update is forwarded, and every topic has one partition,
 * so the whole output stream (not just the last value per key) is a function of the input order.
 * Dump format, one record per line: partition, key hex, value hex, timestamp, key text, value as
 * a long (or "-" if not 8 bytes); tab-separated.
 */
public final class StreamsCompat {
    static final String INPUT = "purchases";
    static final String TOTALS = "region-totals";
    static final String WINDOWED = "region-minute-counts";
    static final String[] RUNS = {"a", "k"};
    static final int RECORDS = 3000;
    static final long SEED = 20260101L;
    static final int USERS = 50;
    static final String[] REGIONS = {"north", "south", "east", "west", "central"};
    /** 2026-01-01T00:00:00Z; records are 400 ms apart, 3000 of them span 20 minutes. */
    static final long BASE_TS = 1_767_225_600_000L;
    static final long STEP_MS = 400;
    /** One record in ten is late by up to this much: always within the grace period, so none is dropped. */
    static final long MAX_LATENESS_MS = 20_000;
    static final Duration WINDOW = Duration.ofMinutes(1);
    static final Duration GRACE = Duration.ofSeconds(30);

    public static void main(String[] args) throws Exception {
        if (args.length == 0) usage();
        switch (args[0]) {
            case "setup" -> {
                if (args.length != 3) usage();
                setup(args[1], Path.of(args[2]));
            }
            case "app" -> {
                if (args.length != 7) usage();
                app(args[1], args[2], args[3], args[4], Long.parseLong(args[5]), Long.parseLong(args[6]));
            }
            case "stable" -> {
                if (args.length < 4) usage();
                System.exit(stable(args[1], Long.parseLong(args[2]), List.of(args).subList(3, args.length)));
            }
            case "dump" -> {
                if (args.length != 7) usage();
                System.exit(dump(args[1], args[2], Path.of(args[3]), args[4], Long.parseLong(args[5]),
                    Long.parseLong(args[6])));
            }
            default -> usage();
        }
    }

    static void usage() {
        System.err.println("usage: StreamsCompat setup BOOTSTRAP WORKDIR"
            + " | app BOOTSTRAP APP_ID STATE_DIR RUN PAUSE_AT TXN_TIMEOUT_MS"
            + " | stable BOOTSTRAP TIMEOUT_S TOPIC..."
            + " | dump BOOTSTRAP TOPIC FILE read_committed|read_uncommitted MIN_RECORDS TIMEOUT_S");
        System.exit(2);
    }

    static String userId(int i) {
        return String.format("user-%02d", i);
    }

    /** The new key: users are spread over the regions by their number. */
    static String region(String userId) {
        return REGIONS[Integer.parseInt(userId.substring(5)) % REGIONS.length];
    }

    record Input(String user, long amount, long timestamp) {}

    /** The input, deterministic: java.util.Random's sequence is fixed by its specification. */
    static List<Input> input() {
        Random rnd = new Random(SEED);
        List<Input> out = new ArrayList<>(RECORDS);
        for (int i = 0; i < RECORDS; i++) {
            String user = userId(rnd.nextInt(USERS));
            long amount = 1 + rnd.nextInt(500);
            long late = rnd.nextInt(10) == 0 ? 1 + rnd.nextInt((int) MAX_LATENESS_MS) : 0;
            out.add(new Input(user, amount, BASE_TS + i * STEP_MS - late));
        }
        return out;
    }

    static String windowedKey(String region, long windowStart) {
        return region + "@" + Instant.ofEpochMilli(windowStart);
    }

    // ---------------------------------------------------------------------------------------- setup

    static void setup(String bootstrap, Path work) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(ap)) {
            // retention.ms=-1: the timestamps are fixed (2026-01-01), and a broker's default
            // 7-day time retention would otherwise delete these records as soon as it looks.
            Map<String, String> forever = Map.of("retention.ms", "-1");
            List<NewTopic> topics = new ArrayList<>();
            topics.add(new NewTopic(INPUT, 1, (short) 1).configs(forever));
            for (String run : RUNS) {
                topics.add(new NewTopic(TOTALS + "-" + run, 1, (short) 1).configs(forever));
                topics.add(new NewTopic(WINDOWED + "-" + run, 1, (short) 1).configs(forever));
            }
            admin.createTopics(topics).all().get(30, TimeUnit.SECONDS);
            System.out.println("created topics " + topics.stream().map(NewTopic::name).toList());
        }

        List<Input> in = input();
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, LongSerializer.class.getName());
        long lastOffset = -1;
        try (KafkaProducer<String, Long> producer = new KafkaProducer<>(pp)) {
            List<java.util.concurrent.Future<RecordMetadata>> acks = new ArrayList<>();
            for (Input r : in) {
                acks.add(producer.send(new ProducerRecord<>(INPUT, 0, r.timestamp(), r.user(), r.amount())));
            }
            producer.flush();
            for (java.util.concurrent.Future<RecordMetadata> f : acks) {
                RecordMetadata md = f.get(30, TimeUnit.SECONDS);
                if (md.offset() != lastOffset + 1) {
                    throw new IllegalStateException("input offsets not consecutive: " + md.offset() + " after " + lastOffset);
                }
                lastOffset = md.offset();
            }
        }
        System.out.println("produced " + in.size() + " records to " + INPUT + " (offsets 0.." + lastOffset
            + ", timestamps " + Instant.ofEpochMilli(BASE_TS) + " + up to 20 min)");

        // The model: what the topology must emit, record by record (no caching).
        Map<String, long[]> totals = new HashMap<>();   // region -> {sum, timestamp}
        Map<String, long[]> counts = new HashMap<>();   // region@window -> {count, timestamp}
        List<String> totalsOut = new ArrayList<>();
        List<String> windowedOut = new ArrayList<>();
        long window = WINDOW.toMillis();
        for (Input r : in) {
            String region = region(r.user());
            long[] t = totals.computeIfAbsent(region, k -> new long[] {0, Long.MIN_VALUE});
            t[0] += r.amount();
            t[1] = Math.max(t[1], r.timestamp());
            totalsOut.add(line(0, region.getBytes(StandardCharsets.UTF_8), longBytes(t[0]), t[1]));
            String wk = windowedKey(region, r.timestamp() - r.timestamp() % window);
            long[] c = counts.computeIfAbsent(wk, k -> new long[] {0, Long.MIN_VALUE});
            c[0] += 1;
            c[1] = Math.max(c[1], r.timestamp());
            windowedOut.add(line(0, wk.getBytes(StandardCharsets.UTF_8), longBytes(c[0]), c[1]));
        }
        Files.write(work.resolve("model." + TOTALS), totalsOut);
        Files.write(work.resolve("model." + WINDOWED), windowedOut);
        System.out.println("model: " + totalsOut.size() + " updates to " + TOTALS + " (" + totals.size() + " regions), "
            + windowedOut.size() + " updates to " + WINDOWED + " (" + counts.size() + " windows)");
    }

    static byte[] longBytes(long v) {
        return new LongSerializer().serialize(null, v);
    }

    static String line(int partition, byte[] key, byte[] value, long timestamp) {
        HexFormat hex = HexFormat.of();
        String keyText = key == null ? "<null>" : new String(key, StandardCharsets.UTF_8);
        String valueText = value != null && value.length == 8
            ? String.valueOf(java.nio.ByteBuffer.wrap(value).getLong()) : "-";
        return partition + "\t" + (key == null ? "<null>" : hex.formatHex(key)) + "\t"
            + (value == null ? "<null>" : hex.formatHex(value)) + "\t" + timestamp + "\t" + keyText + "\t" + valueText;
    }

    // ------------------------------------------------------------------------------------------ app

    static Topology topology(String run, long pauseAt) {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, Long> purchases = builder.stream(INPUT, Consumed.with(Serdes.String(), Serdes.Long()));
        KGroupedStream<String, Long> byRegion = purchases
            .selectKey((user, amount) -> region(user))
            .repartition(Repartitioned.<String, Long>as("by-region")
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()).withNumberOfPartitions(1))
            .groupByKey(Grouped.with(Serdes.String(), Serdes.Long()));

        KStream<String, Long> totals = byRegion
            .aggregate(() -> 0L, (region, amount, sum) -> sum + amount,
                Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("region-totals")
                    .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
            .toStream();
        totals.to(TOTALS + "-" + run, Produced.with(Serdes.String(), Serdes.Long()));
        // Added after the sink, so it runs after the sink has handed the record to the producer.
        AtomicLong forwarded = new AtomicLong();
        totals.foreach((region, sum) -> {
            long n = forwarded.incrementAndGet();
            if (n % 500 == 0) say("PROGRESS " + n);
            if (n == pauseAt) {
                // The transaction is open (this record and everything since the last commit were
                // sent in it), and the stream thread cannot commit while it is blocked here.
                say("PAUSED " + n);
                try {
                    Thread.sleep(120_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                say("pause over without a SIGKILL");
                Runtime.getRuntime().halt(3);
            }
        });

        byRegion
            .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, GRACE))
            .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("region-minute-counts")
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
            .toStream((wk, count) -> windowedKey(wk.key(), wk.window().start()))
            .to(WINDOWED + "-" + run, Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    static void app(String bootstrap, String appId, String stateDir, String run, long pauseAt, long txnTimeoutMs)
        throws Exception {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        // No record cache: every aggregate update is forwarded, so the output is the full
        // changelog of each aggregate and does not depend on when commits happen.
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        // The windowed store's changelog gets retention.ms = window retention + this; the
        // timestamps are fixed (2026-01-01), so keep it far beyond them, or the broker's time
        // retention could delete the changelog the restarted instance restores from.
        p.put(StreamsConfig.WINDOW_STORE_CHANGE_LOG_ADDITIONAL_RETENTION_MS_CONFIG, String.valueOf(100L * 365 * 86_400_000L));
        // Classic protocol (the Streams default): a SIGKILLed member leaves the group only when its
        // session expires; 6 s is the broker's minimum, so the restart does not wait out 45 s.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), "6000");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), "1500");
        if (txnTimeoutMs > 0) {
            p.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), String.valueOf(txnTimeoutMs));
        }

        Topology topology = topology(run, pauseAt);
        say("topology:\n" + topology.describe());
        KafkaStreams streams = new KafkaStreams(topology, p);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            say("STATE " + before + " -> " + now);
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) stopped.countDown();
        });
        streams.setUncaughtExceptionHandler(e -> {
            say("UNCAUGHT " + e);
            e.printStackTrace(System.out);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Thread hook = new Thread(() -> {
            say("SIGTERM: closing");
            boolean closed = streams.close(Duration.ofSeconds(30));
            say(closed ? "CLOSED" : "CLOSE TIMED OUT");
        });
        Runtime.getRuntime().addShutdownHook(hook);
        streams.start();
        stopped.await();
        KafkaStreams.State last = streams.state();
        if (last == KafkaStreams.State.ERROR) {
            say("the application failed (state ERROR)");
            Runtime.getRuntime().halt(1);
        }
    }

    static void say(String s) {
        System.out.println(s);
        System.out.flush();
    }

    // --------------------------------------------------------------------------------------- stable

    static int stable(String bootstrap, long timeoutS, List<String> topics) {
        Map<String, KafkaConsumer<byte[], byte[]>> consumers = new HashMap<>();
        long start = System.nanoTime(), deadline = start + timeoutS * 1_000_000_000L;
        String state = "";
        try {
            for (String iso : List.of("read_committed", "read_uncommitted")) {
                Properties cp = new Properties();
                cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, iso);
                cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
                cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
                consumers.put(iso, new KafkaConsumer<>(cp));
            }
            List<TopicPartition> tps = new ArrayList<>();
            for (String topic : topics) {
                for (PartitionInfo pi : consumers.get("read_committed").partitionsFor(topic, Duration.ofSeconds(30))) {
                    tps.add(new TopicPartition(topic, pi.partition()));
                }
            }
            while (System.nanoTime() < deadline) {
                Map<TopicPartition, Long> lso = consumers.get("read_committed").endOffsets(tps, Duration.ofSeconds(15));
                Map<TopicPartition, Long> hw = consumers.get("read_uncommitted").endOffsets(tps, Duration.ofSeconds(15));
                StringBuilder open = new StringBuilder();
                for (TopicPartition tp : tps) {
                    if (!lso.get(tp).equals(hw.get(tp))) {
                        open.append(' ').append(tp).append(" stable ").append(lso.get(tp)).append(" end ").append(hw.get(tp));
                    }
                }
                if (open.length() == 0) {
                    System.out.println("no open transaction on " + tps.size() + " partitions after "
                        + (System.nanoTime() - start) / 1_000_000 + " ms");
                    return 0;
                }
                state = open.toString();
                Thread.sleep(200);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            consumers.values().forEach(KafkaConsumer::close);
        }
        System.out.println("transactions still open after " + timeoutS + " s:" + state);
        return 3;
    }

    // ----------------------------------------------------------------------------------------- dump

    static int dump(String bootstrap, String topic, Path file, String isolation, long minRecords, long timeoutS)
        throws IOException {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        long deadline = System.nanoTime() + timeoutS * 1_000_000_000L;
        List<String> lines = new ArrayList<>();
        boolean done = false;
        String state = "";
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo pi : consumer.partitionsFor(topic, Duration.ofSeconds(30))) {
                tps.add(new TopicPartition(topic, pi.partition()));
            }
            tps.sort((x, y) -> Integer.compare(x.partition(), y.partition()));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<Integer, List<String>> byPartition = new HashMap<>();
            long count = 0;
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    byPartition.computeIfAbsent(r.partition(), k -> new ArrayList<>())
                        .add(line(r.partition(), r.key(), r.value(), r.timestamp()));
                    count++;
                }
                if (count < minRecords) continue;
                // endOffsets follows the isolation level: the last stable offset for read_committed.
                Map<TopicPartition, Long> end = consumer.endOffsets(tps, Duration.ofSeconds(15));
                boolean atEnd = true;
                StringBuilder sb = new StringBuilder();
                for (TopicPartition tp : tps) {
                    long pos = consumer.position(tp, Duration.ofSeconds(15));
                    sb.append(" p").append(tp.partition()).append(" position ").append(pos).append(" end ").append(end.get(tp));
                    if (pos < end.get(tp)) atEnd = false;
                }
                state = sb.toString();
                if (atEnd) {
                    done = true;
                    break;
                }
            }
            for (TopicPartition tp : tps) lines.addAll(byPartition.getOrDefault(tp.partition(), List.of()));
            if (!done) {
                state = count + " records read;" + state;
                for (TopicPartition tp : tps) {
                    state += " p" + tp.partition() + " position " + consumer.position(tp, Duration.ofSeconds(15));
                }
            }
        }
        Files.write(file, lines);
        if (!done) {
            System.out.println("dump " + topic + " (" + isolation + "): wanted at least " + minRecords
                + " records and the end offset within " + timeoutS + " s; " + state);
            return 3;
        }
        System.out.println("dump " + topic + " (" + isolation + "): " + lines.size() + " records;" + state);
        return 0;
    }
}
