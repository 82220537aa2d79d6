import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.InvalidTxnTimeoutException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.TransactionalIdNotFoundException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Transactions through the real Java client (kafka-clients 4.3.0, default transaction protocol:
 * the broker finalizes transaction.version=2, so KIP-890 epoch bumps and implicit partition adds),
 * one scenario per JVM, all against one broker started by compat-tests/java-txn.sh:
 * <pre>
 *   interleave           20 transactions over 3 partitions alternating commit / abort; read_committed sees
 *                        exactly the committed records in order (also with one batch per fetch response),
 *                        read_uncommitted every data record and no control record; offsets leave one slot per
 *                        marker; seeks into aborted ranges; two transactional producers (gzip, zstd) and a plain
 *                        one interleaved record by record in one partition (all four commit/abort
 *                        combinations), LSO while both are open
 *   ctp                  consume-transform-produce app (TxnCtpApp) in a child JVM, SIGKILLed with a transaction
 *                        open (records and offsets sent), restarted with the same transactional.id: the output
 *                        has every committed input record exactly once, in input order; group offsets at the end
 *   fencing              a second instance's initTransactions, and Admin.fenceProducers, fence an open
 *                        transaction: the zombie's send / commit / sendOffsetsToTransaction fail, its records
 *                        stay invisible; a zombie fenced while idle gets PRODUCER_FENCED for its EndTxn while
 *                        the new instance's transaction is open, which stays untouched
 *   timeout              transaction.timeout.ms above the broker maximum is refused; a 5 s transaction left
 *                        open is aborted by the broker within ~10 s, unblocking the LSO; listTransactions
 *                        filters, describeTransactions, describeProducers before and after
 *   restart              (with the runner) a committed transaction and two open ones, broker restarted
 *                        mid-transaction: one is committed by the same producer afterwards, the other aborted
 *                        by a new instance's initTransactions
 *   verify-after-restart everything the earlier scenarios left in the logs, read again after the restart
 * </pre>
 * Usage: {@code java TxnScenarios SCENARIO BOOTSTRAP [READY_FILE RESTARTED_FILE]} (files: restart only).
 * Exits non-zero if a check failed. Every wait is bounded.
 */
public final class TxnScenarios {
    static final String T_INTERLEAVE = "txn-interleave";
    static final int IL_PARTS = 3, IL_TXNS = 20, IL_PER = 3;
    static final String T_OVERLAP = "txn-overlap";
    static final int OV_ROUNDS = 8, OV_PER = 4;
    static final String T_CTP_IN = "txn-ctp-in", T_CTP_OUT = "txn-ctp-out", CTP_GROUP = "txn-ctp-group", CTP_TXID = "txn-ctp-app";
    static final int CTP_PARTS = 3, CTP_TXNS = 30, CTP_PER_TXN = 60;
    static final String T_FENCE = "txn-fence";
    static final String T_TIMEOUT = "txn-timeout";
    static final String T_RESTART = "txn-restart";
    static final long READ_MS = 30_000;

    final String bootstrap;
    final Checks c;
    Admin admin;

    TxnScenarios(String scenario, String bootstrap) {
        this.bootstrap = bootstrap;
        this.c = new Checks(scenario);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: TxnScenarios SCENARIO BOOTSTRAP [READY_FILE RESTARTED_FILE]");
            System.exit(2);
        }
        TxnScenarios s = new TxnScenarios(args[0], args[1]);
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        try (Admin admin = Admin.create(ap)) {
            s.admin = admin;
            switch (args[0]) {
                case "interleave" -> s.interleave();
                case "ctp" -> s.ctp();
                case "fencing" -> s.fencing();
                case "timeout" -> s.timeout();
                case "restart" -> s.restart(Path.of(args[2]), Path.of(args[3]));
                case "verify-after-restart" -> s.verifyAfterRestart();
                default -> {
                    System.err.println("unknown scenario " + args[0]);
                    System.exit(2);
                }
            }
        }
        System.exit(s.c.finish());
    }

    // ---------------------------------------------------------------------------------------
    // Clients and reading

    Properties txProps(String txid) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, txid);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return p;
    }

    KafkaProducer<String, String> txProducer(String txid) {
        return new KafkaProducer<>(txProps(txid));
    }

    /** Idempotent, not transactional. */
    KafkaProducer<String, String> plainProducer(String clientId) {
        Properties p = txProps(clientId);
        p.remove(ProducerConfig.TRANSACTIONAL_ID_CONFIG);
        return new KafkaProducer<>(p);
    }

    KafkaConsumer<String, String> consumer(boolean readCommitted, String clientId) {
        return consumer(readCommitted, clientId, new Properties());
    }

    KafkaConsumer<String, String> consumer(boolean readCommitted, String clientId, Properties extra) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, readCommitted ? "read_committed" : "read_uncommitted");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    static String iso(boolean rc) {
        return rc ? "read_committed" : "read_uncommitted";
    }

    void createTopic(String topic, int partitions) throws Exception {
        try {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            if (!(Checks.unwrap(e) instanceof TopicExistsException)) throw e;
            c.info("topic " + topic + " already exists; reusing it");
        }
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (true) {
            try {
                int n = admin.describeTopics(List.of(topic)).allTopicNames().get(15, TimeUnit.SECONDS)
                        .get(topic).partitions().size();
                if (n == partitions) return;
            } catch (Exception e) {
                // not visible yet
            }
            if (System.nanoTime() > deadline) throw new IllegalStateException(topic + " not in metadata after 30 s");
            Thread.sleep(100);
        }
    }

    static List<TopicPartition> tps(String topic, int partitions) {
        List<TopicPartition> l = new ArrayList<>();
        for (int p = 0; p < partitions; p++) l.add(new TopicPartition(topic, p));
        return l;
    }

    /** What one consumer read from the beginning of every partition up to its end offsets. */
    static final class Read {
        final TreeMap<Integer, List<ConsumerRecord<String, String>>> records = new TreeMap<>();
        final TreeMap<Integer, Long> end = new TreeMap<>();
        final TreeMap<Integer, Long> position = new TreeMap<>();
        boolean complete;

        List<String> rows(int p) {
            return records.getOrDefault(p, List.of()).stream().map(r -> r.offset() + ":" + r.key()).collect(Collectors.toList());
        }

        List<String> keys(int p) {
            return records.getOrDefault(p, List.of()).stream().map(ConsumerRecord::key).collect(Collectors.toList());
        }

        int count() {
            return records.values().stream().mapToInt(List::size).sum();
        }
    }

    /**
     * Assigns every partition, seeks to the beginning and polls until each position reaches the
     * end offset (as this isolation level sees it, taken once at the start), then polls 300 ms
     * more so that anything past the end shows up too. Bounded by READ_MS.
     */
    Read readAll(String topic, int partitions, boolean readCommitted) {
        return readAll(topic, partitions, readCommitted, new Properties());
    }

    Read readAll(String topic, int partitions, boolean readCommitted, Properties extra) {
        Read r = new Read();
        try (KafkaConsumer<String, String> cons = consumer(readCommitted, "reader-" + iso(readCommitted), extra)) {
            List<TopicPartition> tps = tps(topic, partitions);
            cons.assign(tps);
            cons.seekToBeginning(tps);
            for (Map.Entry<TopicPartition, Long> e : cons.endOffsets(tps, Duration.ofSeconds(15)).entrySet()) {
                r.end.put(e.getKey().partition(), e.getValue());
            }
            long deadline = System.nanoTime() + READ_MS * 1_000_000L;
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> rec : cons.poll(Duration.ofMillis(200))) {
                    r.records.computeIfAbsent(rec.partition(), k -> new ArrayList<>()).add(rec);
                }
                boolean done = true;
                for (TopicPartition tp : tps) {
                    if (cons.position(tp, Duration.ofSeconds(15)) < r.end.get(tp.partition())) done = false;
                }
                if (done) {
                    r.complete = true;
                    break;
                }
            }
            for (ConsumerRecord<String, String> rec : cons.poll(Duration.ofMillis(300))) {
                r.records.computeIfAbsent(rec.partition(), k -> new ArrayList<>()).add(rec);
            }
            for (TopicPartition tp : tps) r.position.put(tp.partition(), cons.position(tp, Duration.ofSeconds(15)));
        }
        c.check(r.complete, iso(readCommitted) + " reader of " + topic + " reached end offsets " + r.end
                + " (positions " + r.position + ")");
        return r;
    }

    Map<Integer, Long> endOffsets(String topic, int partitions, boolean readCommitted) {
        try (KafkaConsumer<String, String> cons = consumer(readCommitted, "end-" + iso(readCommitted))) {
            cons.assign(tps(topic, partitions)); // else the client warns that it cannot cache the answer
            Map<Integer, Long> m = new TreeMap<>();
            for (Map.Entry<TopicPartition, Long> e : cons.endOffsets(tps(topic, partitions), Duration.ofSeconds(15)).entrySet()) {
                m.put(e.getKey().partition(), e.getValue());
            }
            return m;
        }
    }

    /** The first record a consumer returns after seeking to {@code offset}, or null if none within 10 s. */
    ConsumerRecord<String, String> firstAfterSeek(TopicPartition tp, long offset, boolean readCommitted) {
        try (KafkaConsumer<String, String> cons = consumer(readCommitted, "seeker")) {
            cons.assign(List.of(tp));
            cons.seek(tp, offset);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : cons.poll(Duration.ofMillis(200))) return r;
            }
            return null;
        }
    }

    TransactionDescription describeTxn(String txid) throws Exception {
        return admin.describeTransactions(List.of(txid)).description(txid).get(15, TimeUnit.SECONDS);
    }

    Set<String> listTxnIds(ListTransactionsOptions o) throws Exception {
        return admin.listTransactions(o).all().get(15, TimeUnit.SECONDS).stream()
                .map(TransactionListing::transactionalId).collect(Collectors.toSet());
    }

    List<ProducerState> producersOf(TopicPartition tp) throws Exception {
        return admin.describeProducers(List.of(tp)).partitionResult(tp).get(15, TimeUnit.SECONDS).activeProducers();
    }

    static boolean isFencing(Throwable t) {
        Throwable u = Checks.unwrap(t);
        return u instanceof ProducerFencedException || u instanceof InvalidProducerEpochException;
    }

    /** Runs body; returns the exception it threw (unwrapped), or null. */
    static Throwable thrown(Checks.Step body) {
        try {
            body.run();
            return null;
        } catch (Throwable t) {
            return Checks.unwrap(t);
        }
    }

    static String describeChain(Throwable t) {
        if (t == null) return "no exception";
        StringBuilder sb = new StringBuilder(Checks.describe(t));
        Throwable cause = t.getCause();
        for (int i = 0; cause != null && i < 3; i++, cause = cause.getCause()) {
            sb.append(" <- ").append(cause.getClass().getSimpleName()).append(": ").append(cause.getMessage());
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------------------------------
    // 1. interleave

    static String ilKey(int txn, int p, int j) {
        return String.format("t%02d-p%d-r%d", txn, p, j);
    }

    static boolean ilCommitted(int txn) {
        return txn % 2 == 0;
    }

    void interleave() {
        c.step("create " + T_INTERLEAVE + " (3 partitions) and " + T_OVERLAP + " (1 partition)", () -> {
            createTopic(T_INTERLEAVE, IL_PARTS);
            createTopic(T_OVERLAP, 1);
        });
        c.step(IL_TXNS + " transactions alternating commit/abort, " + IL_PER + " records per partition each", () -> {
            try (KafkaProducer<String, String> p = txProducer("txn-interleave-producer")) {
                p.initTransactions();
                List<String> badOffsets = new ArrayList<>();
                for (int i = 0; i < IL_TXNS; i++) {
                    p.beginTransaction();
                    List<Future<RecordMetadata>> fs = new ArrayList<>();
                    List<String> keys = new ArrayList<>();
                    for (int j = 0; j < IL_PER; j++) {
                        for (int part = 0; part < IL_PARTS; part++) {
                            fs.add(p.send(new ProducerRecord<>(T_INTERLEAVE, part, ilKey(i, part, j), ilCommitted(i) ? "commit" : "abort")));
                            keys.add(ilKey(i, part, j) + "@" + (i * (IL_PER + 1) + j));
                        }
                    }
                    // Flushed first so the aborted records really are in the log (abortTransaction
                    // would otherwise drop batches still in the accumulator).
                    p.flush();
                    for (int k = 0; k < fs.size(); k++) {
                        RecordMetadata md = fs.get(k).get(30, TimeUnit.SECONDS);
                        String want = keys.get(k);
                        long wantOffset = Long.parseLong(want.substring(want.indexOf('@') + 1));
                        if (md.offset() != wantOffset) badOffsets.add(want + " got " + md.partition() + "@" + md.offset());
                    }
                    if (ilCommitted(i)) p.commitTransaction();
                    else p.abortTransaction();
                }
                c.check(badOffsets.isEmpty(), "data offsets are 4*txn+j in every partition (one slot per transaction "
                        + "for its marker)" + (badOffsets.isEmpty() ? "" : ": " + badOffsets.subList(0, Math.min(5, badOffsets.size()))));
            }
        });
        c.step("read back " + T_INTERLEAVE, this::verifyInterleave);
        c.step("two transactional producers (gzip, zstd) and a plain one interleaved in one partition", this::overlap);
        c.step("read back " + T_OVERLAP, this::verifyOverlap);
    }

    void verifyInterleave() {
        long end = (long) IL_TXNS * (IL_PER + 1);
        Read rc = readAll(T_INTERLEAVE, IL_PARTS, true);
        Read ru = readAll(T_INTERLEAVE, IL_PARTS, false);
        for (int p = 0; p < IL_PARTS; p++) {
            List<String> wantRc = new ArrayList<>(), wantRu = new ArrayList<>();
            for (int i = 0; i < IL_TXNS; i++) {
                for (int j = 0; j < IL_PER; j++) {
                    String row = (i * (IL_PER + 1) + j) + ":" + ilKey(i, p, j);
                    wantRu.add(row);
                    if (ilCommitted(i)) wantRc.add(row);
                }
            }
            c.checkEq(end, rc.end.get(p), "partition " + p + " read_committed endOffset (LSO, no open transaction)");
            c.checkEq(end, ru.end.get(p), "partition " + p + " read_uncommitted endOffset (high watermark)");
            c.checkEq(end, rc.position.get(p), "partition " + p + " read_committed position after reading (past the last marker)");
            c.checkEq(end, ru.position.get(p), "partition " + p + " read_uncommitted position after reading");
            checkRows(wantRc, rc.rows(p), "partition " + p + " read_committed: exactly the committed records, in order");
            checkRows(wantRu, ru.rows(p), "partition " + p + " read_uncommitted: every data record (committed and aborted), no control record");
        }
        // One batch per fetch response: every fetch that returns part of an aborted transaction
        // must carry that transaction in its aborted list on its own.
        Properties small = new Properties();
        small.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, "1");
        small.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, "1");
        Read rcSmall = readAll(T_INTERLEAVE, IL_PARTS, true, small);
        for (int p = 0; p < IL_PARTS; p++) {
            checkRows(rc.rows(p), rcSmall.rows(p), "partition " + p + " read_committed with 1-byte fetches (one batch per response) reads the same");
        }
        boolean valuesOk = rc.records.values().stream().flatMap(List::stream).allMatch(r -> "commit".equals(r.value()));
        c.check(valuesOk, "read_committed returned only records whose value says commit");
        TopicPartition p0 = new TopicPartition(T_INTERLEAVE, 0);
        // Offsets 4..6 are aborted transaction 1, 7 its ABORT marker, 8 the first of transaction 2.
        ConsumerRecord<String, String> r = firstAfterSeek(p0, 5, true);
        c.checkEq("8:" + ilKey(2, 0, 0), r == null ? null : r.offset() + ":" + r.key(),
                "read_committed seek into the middle of an aborted transaction (offset 5) -> first record");
        r = firstAfterSeek(p0, 3, true);
        c.checkEq("8:" + ilKey(2, 0, 0), r == null ? null : r.offset() + ":" + r.key(),
                "read_committed seek to a COMMIT marker (offset 3) -> first record");
        r = firstAfterSeek(p0, 7, false);
        c.checkEq("8:" + ilKey(2, 0, 0), r == null ? null : r.offset() + ":" + r.key(),
                "read_uncommitted seek to an ABORT marker (offset 7) -> first record (the marker is not data)");
        r = firstAfterSeek(p0, 5, false);
        c.checkEq("5:" + ilKey(1, 0, 1), r == null ? null : r.offset() + ":" + r.key(),
                "read_uncommitted seek to offset 5 -> the aborted record there");
    }

    void checkRows(List<String> want, List<String> got, String what) {
        if (want.equals(got)) {
            c.check(true, what + " (" + got.size() + " records)");
            return;
        }
        int i = 0;
        while (i < want.size() && i < got.size() && want.get(i).equals(got.get(i))) i++;
        c.fail(what + ": expected " + want.size() + " records, got " + got.size() + "; first difference at #" + i
                + ": expected " + (i < want.size() ? want.get(i) : "<end>") + ", got " + (i < got.size() ? got.get(i) : "<end>"));
    }

    /** Round k: A and B each commit or abort; all four combinations occur (k % 4). */
    static boolean ovACommits(int k) {
        return (k & 1) == 0;
    }

    static boolean ovBCommits(int k) {
        return (k & 2) == 0;
    }

    /** Keys in log order and whether read_committed must show them. */
    static List<Map.Entry<String, Boolean>> overlapExpected() {
        List<Map.Entry<String, Boolean>> l = new ArrayList<>();
        for (int k = 0; k < OV_ROUNDS; k++) {
            for (int j = 0; j < OV_PER; j++) {
                l.add(Map.entry("A-" + k + "-" + j, ovACommits(k)));
                l.add(Map.entry("P-" + k + "-" + j, true));
                l.add(Map.entry("B-" + k + "-" + j, ovBCommits(k)));
            }
        }
        return l;
    }

    void overlap() throws Exception {
        Properties pa = txProps("txn-overlap-a"), pb = txProps("txn-overlap-b");
        pa.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "gzip");
        pb.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "zstd");
        try (KafkaProducer<String, String> a = new KafkaProducer<>(pa);
             KafkaProducer<String, String> b = new KafkaProducer<>(pb);
             KafkaProducer<String, String> plain = plainProducer("txn-overlap-plain")) {
            a.initTransactions();
            b.initTransactions();
            for (int k = 0; k < OV_ROUNDS; k++) {
                a.beginTransaction();
                b.beginTransaction();
                long firstA = -1;
                for (int j = 0; j < OV_PER; j++) {
                    // Synchronous sends: the log order is exactly A, P, B, A, P, B, ...
                    RecordMetadata md = a.send(new ProducerRecord<>(T_OVERLAP, 0, "A-" + k + "-" + j, ovACommits(k) ? "commit" : "abort")).get(30, TimeUnit.SECONDS);
                    if (j == 0) firstA = md.offset();
                    plain.send(new ProducerRecord<>(T_OVERLAP, 0, "P-" + k + "-" + j, "plain")).get(30, TimeUnit.SECONDS);
                    b.send(new ProducerRecord<>(T_OVERLAP, 0, "B-" + k + "-" + j, ovBCommits(k) ? "commit" : "abort")).get(30, TimeUnit.SECONDS);
                }
                if (k == 0) {
                    Map<Integer, Long> rcEnd = endOffsets(T_OVERLAP, 1, true), ruEnd = endOffsets(T_OVERLAP, 1, false);
                    c.checkEq(firstA, rcEnd.get(0), "with A and B open, read_committed endOffset = LSO = A's first offset");
                    c.checkEq((long) OV_PER * 3, ruEnd.get(0), "with A and B open, read_uncommitted endOffset = high watermark");
                }
                // Alternate which one ends first, so the LSO moves both ways.
                KafkaProducer<String, String> first = k % 2 == 0 ? a : b, second = k % 2 == 0 ? b : a;
                boolean firstCommits = k % 2 == 0 ? ovACommits(k) : ovBCommits(k);
                boolean secondCommits = k % 2 == 0 ? ovBCommits(k) : ovACommits(k);
                if (firstCommits) first.commitTransaction(); else first.abortTransaction();
                if (secondCommits) second.commitTransaction(); else second.abortTransaction();
            }
        }
        c.check(true, OV_ROUNDS + " rounds of interleaved transactions written");
    }

    void verifyOverlap() {
        List<Map.Entry<String, Boolean>> exp = overlapExpected();
        Read rc = readAll(T_OVERLAP, 1, true);
        Read ru = readAll(T_OVERLAP, 1, false);
        List<String> wantRu = exp.stream().map(Map.Entry::getKey).collect(Collectors.toList());
        List<String> wantRc = exp.stream().filter(Map.Entry::getValue).map(Map.Entry::getKey).collect(Collectors.toList());
        checkRows(wantRu, ru.keys(0), "read_uncommitted sees every data record of A, B and the plain producer in log order");
        checkRows(wantRc, rc.keys(0), "read_committed sees plain records and committed A/B records only, in log order");
        long end = (long) OV_ROUNDS * (OV_PER * 3 + 2);
        c.checkEq(end, ru.end.get(0), "high watermark = data records + 2 markers per round");
        c.checkEq(end, rc.end.get(0), "read_committed endOffset = high watermark once everything ended");
        c.checkEq(end, rc.position.get(0), "read_committed position reached the high watermark");
    }

    // ---------------------------------------------------------------------------------------
    // 2. consume-transform-produce with a SIGKILLed instance

    static String ctpKey(int txn, int i) {
        return String.format("in-%02d-%03d", txn, i);
    }

    static boolean ctpCommitted(int txn) {
        return txn % 5 != 3;
    }

    /** A TxnCtpApp child JVM, its stdout collected line by line. */
    final class Child implements AutoCloseable {
        final String name;
        final Process process;
        final List<String> lines = new CopyOnWriteArrayList<>();

        Child(String name, List<String> args) throws Exception {
            this.name = name;
            List<String> cmd = new ArrayList<>(List.of(System.getProperty("java.home") + "/bin/java", "-Xmx256m",
                    "-cp", System.getProperty("java.class.path")));
            String log4j = System.getProperty("log4j2.configurationFile");
            if (log4j != null) cmd.add("-Dlog4j2.configurationFile=" + log4j);
            cmd.add("TxnCtpApp");
            cmd.addAll(args);
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.redirectError(ProcessBuilder.Redirect.INHERIT);
            process = pb.start();
            Thread t = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        lines.add(line);
                        System.out.println("  child " + name + ": " + line);
                    }
                } catch (Exception e) {
                    // killed
                }
            }, "child-" + name);
            t.setDaemon(true);
            t.start();
        }

        Optional<String> waitFor(Predicate<String> p, long ms) throws InterruptedException {
            long deadline = System.nanoTime() + ms * 1_000_000L;
            while (System.nanoTime() < deadline) {
                for (String l : lines) if (p.test(l)) return Optional.of(l);
                if (!process.isAlive()) {
                    Thread.sleep(200); // let the reader drain the last lines
                    for (String l : lines) if (p.test(l)) return Optional.of(l);
                    return Optional.empty();
                }
                Thread.sleep(50);
            }
            return Optional.empty();
        }

        String lastCommitted() {
            String last = "none";
            for (String l : lines) if (l.startsWith("COMMITTED")) last = l;
            return last;
        }

        void kill() {
            process.destroyForcibly(); // SIGKILL on Linux
            try {
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        @Override
        public void close() {
            if (process.isAlive()) kill();
        }
    }

    void ctp() {
        c.step("create " + T_CTP_IN + " and " + T_CTP_OUT + " (" + CTP_PARTS + " partitions each)", () -> {
            createTopic(T_CTP_IN, CTP_PARTS);
            createTopic(T_CTP_OUT, CTP_PARTS);
        });
        c.step("input: " + CTP_TXNS + " transactions of " + CTP_PER_TXN + " records, every 5th aborted", () -> {
            try (KafkaProducer<String, String> p = txProducer("txn-ctp-input")) {
                p.initTransactions();
                for (int k = 0; k < CTP_TXNS; k++) {
                    p.beginTransaction();
                    for (int i = 0; i < CTP_PER_TXN; i++) {
                        p.send(new ProducerRecord<>(T_CTP_IN, i % CTP_PARTS, ctpKey(k, i), "v-" + k + "-" + i));
                    }
                    p.flush();
                    if (ctpCommitted(k)) p.commitTransaction(); else p.abortTransaction();
                }
            }
            c.check(true, "input written");
        });
        String appArgsStall = "8";
        c.step("app instance 1 (child JVM): SIGKILLed with a transaction open after " + appArgsStall + " commits", () -> {
            try (Child one = new Child("app-1", List.of(bootstrap, T_CTP_IN, T_CTP_OUT, CTP_GROUP, CTP_TXID,
                    String.valueOf(CTP_PARTS), appArgsStall, "20", "150"))) {
                Optional<String> stalled = one.waitFor(l -> l.startsWith("STALLED"), 120_000);
                if (!c.check(stalled.isPresent(), "instance 1 reached its open transaction (" + stalled.orElse("no STALLED line; alive=" + one.process.isAlive()) + ")")) {
                    return;
                }
                stalledRecords = Integer.parseInt(stalled.get().split(" ")[1]);
                c.info("instance 1 last progress: " + one.lastCommitted() + "; open transaction holds " + stalledRecords + " records");
                one.kill();
                c.check(!one.process.isAlive(), "instance 1 killed with SIGKILL");
            }
            TransactionDescription d = describeTxn(CTP_TXID);
            c.checkEq(TransactionState.ONGOING, d.state(), "describeTransactions(" + CTP_TXID + ") after the kill");
            c.check(d.topicPartitions().stream().anyMatch(tp -> tp.topic().equals(T_CTP_OUT)),
                    "the open transaction lists output partitions: " + d.topicPartitions());
            Map<Integer, Long> rcEnd = endOffsets(T_CTP_OUT, CTP_PARTS, true), ruEnd = endOffsets(T_CTP_OUT, CTP_PARTS, false);
            boolean blocked = false;
            for (int p = 0; p < CTP_PARTS; p++) if (rcEnd.get(p) < ruEnd.get(p)) blocked = true;
            c.check(blocked, "the zombie's open transaction holds back the output's LSO: read_committed ends " + rcEnd
                    + " vs high watermarks " + ruEnd);
        });
        c.step("app instance 2 (same transactional.id) finishes the input", () -> {
            try (Child two = new Child("app-2", List.of(bootstrap, T_CTP_IN, T_CTP_OUT, CTP_GROUP, CTP_TXID,
                    String.valueOf(CTP_PARTS), "-1", "0", "150"))) {
                Optional<String> done = two.waitFor(l -> l.startsWith("DONE"), 150_000);
                c.check(done.isPresent(), "instance 2 caught up (" + done.orElse("no DONE line; last " + two.lastCommitted()
                        + ", alive=" + two.process.isAlive()) + ")");
                two.process.waitFor(20, TimeUnit.SECONDS);
                c.checkEq(0, two.process.isAlive() ? null : two.process.exitValue(), "instance 2 exit code");
            }
        });
        c.step("output read back", () -> {
            verifyCtp();
            if (stalledRecords >= 0) {
                Read ru = readAll(T_CTP_OUT, CTP_PARTS, false);
                c.checkEq(expectedCtpOutputs() + stalledRecords, ru.count(),
                        "read_uncommitted output = committed outputs + the killed instance's aborted " + stalledRecords);
            }
            TransactionDescription d = describeTxn(CTP_TXID);
            c.checkEq(TransactionState.COMPLETE_COMMIT, d.state(), "describeTransactions(" + CTP_TXID + ") at the end");
        });
    }

    int stalledRecords = -1;

    static int expectedCtpOutputs() {
        int n = 0;
        for (int k = 0; k < CTP_TXNS; k++) if (ctpCommitted(k)) n += CTP_PER_TXN;
        return n;
    }

    void verifyCtp() throws Exception {
        Read in = readAll(T_CTP_IN, CTP_PARTS, true);
        Read out = readAll(T_CTP_OUT, CTP_PARTS, true);
        Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(CTP_GROUP)
                .partitionsToOffsetAndMetadata().get(15, TimeUnit.SECONDS);
        for (int p = 0; p < CTP_PARTS; p++) {
            List<String> wantIn = new ArrayList<>(), wantOut = new ArrayList<>();
            for (int k = 0; k < CTP_TXNS; k++) {
                if (!ctpCommitted(k)) continue;
                for (int i = 0; i < CTP_PER_TXN; i++) {
                    if (i % CTP_PARTS != p) continue;
                    wantIn.add(ctpKey(k, i) + "=v-" + k + "-" + i);
                    wantOut.add(ctpKey(k, i) + "=T(v-" + k + "-" + i + ")");
                }
            }
            List<String> gotIn = in.records.getOrDefault(p, List.of()).stream().map(r -> r.key() + "=" + r.value()).collect(Collectors.toList());
            List<String> gotOut = out.records.getOrDefault(p, List.of()).stream().map(r -> r.key() + "=" + r.value()).collect(Collectors.toList());
            checkRows(wantIn, gotIn, "input partition " + p + " read_committed = the committed input");
            checkRows(wantOut, gotOut, "output partition " + p + " read_committed: every committed input record transformed exactly once, in input order");
            List<ConsumerRecord<String, String>> inRecs = in.records.getOrDefault(p, List.of());
            long lastData = inRecs.isEmpty() ? -1 : inRecs.get(inRecs.size() - 1).offset();
            OffsetAndMetadata om = committed.get(new TopicPartition(T_CTP_IN, p));
            Long off = om == null ? null : om.offset();
            c.check(off != null && off > lastData && off <= in.end.get(p), "group " + CTP_GROUP + " committed offset of input partition " + p
                    + " = " + off + " (after the last input record " + lastData + ", at most the end " + in.end.get(p) + ")");
        }
    }

    // ---------------------------------------------------------------------------------------
    // 3. fencing

    void fencing() {
        c.step("create " + T_FENCE + " (2 partitions)", () -> createTopic(T_FENCE, 2));
        c.step("send after a new instance's initTransactions", () -> {
            KafkaProducer<String, String> a = txProducer("txn-fence-x");
            try {
                a.initTransactions();
                a.beginTransaction();
                for (int i = 0; i < 4; i++) a.send(new ProducerRecord<>(T_FENCE, i % 2, "A1-" + i, "zombie")).get(30, TimeUnit.SECONDS);
                TransactionDescription before = describeTxn("txn-fence-x");
                c.checkEq(TransactionState.ONGOING, before.state(), "A's transaction state");
                try (KafkaProducer<String, String> b = txProducer("txn-fence-x")) {
                    long t0 = System.nanoTime();
                    b.initTransactions();
                    c.info("B's initTransactions took " + (System.nanoTime() - t0) / 1_000_000 + " ms");
                    TransactionDescription after = describeTxn("txn-fence-x");
                    c.check(after.producerEpoch() > before.producerEpoch(), "B's epoch " + after.producerEpoch()
                            + " > A's epoch " + before.producerEpoch() + " (same producer id " + (after.producerId() == before.producerId()) + ")");
                    c.check(after.state() != TransactionState.ONGOING, "A's open transaction is over after B's initTransactions: " + after.state());
                    Read rc = readAll(T_FENCE, 2, true);
                    c.check(rc.keys(0).isEmpty() && rc.keys(1).isEmpty(), "read_committed shows none of A's records: " + rc.keys(0) + rc.keys(1));

                    Throwable sendErr = thrown(() -> a.send(new ProducerRecord<>(T_FENCE, 0, "A1-late", "zombie")).get(30, TimeUnit.SECONDS));
                    c.check(sendErr != null, "A's next send fails: " + describeChain(sendErr));
                    c.check(isFencing(sendErr), "A's send error is ProducerFencedException or InvalidProducerEpochException: "
                            + (sendErr == null ? "none" : sendErr.getClass().getSimpleName()));
                    Throwable commitErr = thrown(a::commitTransaction);
                    c.check(isFencing(commitErr), "A's commitTransaction fails with a fencing error: " + describeChain(commitErr));
                    Throwable abortErr = thrown(a::abortTransaction);
                    c.info("A's abortTransaction afterwards: " + describeChain(abortErr));
                    c.check(abortErr == null || isFencing(abortErr), "A's abortTransaction, if it fails, fails with a fencing error");

                    b.beginTransaction();
                    for (int i = 0; i < 4; i++) b.send(new ProducerRecord<>(T_FENCE, i % 2, "B1-" + i, "commit"));
                    b.commitTransaction();
                    c.check(true, "B commits its own transaction");
                }
            } finally {
                a.close(Duration.ofSeconds(5));
            }
        });
        c.step("commit after a new instance's initTransactions", () -> {
            KafkaProducer<String, String> a = txProducer("txn-fence-y");
            try {
                a.initTransactions();
                a.beginTransaction();
                for (int i = 0; i < 4; i++) a.send(new ProducerRecord<>(T_FENCE, i % 2, "A2-" + i, "zombie")).get(30, TimeUnit.SECONDS);
                try (KafkaProducer<String, String> b = txProducer("txn-fence-y")) {
                    b.initTransactions();
                    Throwable commitErr = thrown(a::commitTransaction);
                    c.check(commitErr instanceof ProducerFencedException, "A's commitTransaction -> ProducerFencedException: " + describeChain(commitErr));
                    b.beginTransaction();
                    b.send(new ProducerRecord<>(T_FENCE, 0, "B2-0", "commit"));
                    b.commitTransaction();
                }
            } finally {
                a.close(Duration.ofSeconds(5));
            }
        });
        c.step("Admin.fenceProducers on an open transaction", () -> {
            KafkaProducer<String, String> a = txProducer("txn-fence-z");
            try {
                a.initTransactions();
                a.beginTransaction();
                for (int i = 0; i < 4; i++) a.send(new ProducerRecord<>(T_FENCE, i % 2, "A3-" + i, "zombie")).get(30, TimeUnit.SECONDS);
                int epoch = describeTxn("txn-fence-z").producerEpoch();
                admin.fenceProducers(List.of("txn-fence-z")).all().get(30, TimeUnit.SECONDS);
                TransactionDescription d = describeTxn("txn-fence-z");
                c.check(d.producerEpoch() > epoch && d.state() != TransactionState.ONGOING,
                        "after fenceProducers: epoch " + epoch + " -> " + d.producerEpoch() + ", state " + d.state());
                Throwable commitErr = thrown(a::commitTransaction);
                c.check(commitErr instanceof ProducerFencedException, "the fenced producer's commitTransaction -> ProducerFencedException: " + describeChain(commitErr));
            } finally {
                a.close(Duration.ofSeconds(5));
            }
        });
        c.step("a producer fenced while idle; the new instance's transaction is open", () -> {
            KafkaProducer<String, String> a = txProducer("txn-fence-w");
            try {
                a.initTransactions();
                try (KafkaProducer<String, String> b = txProducer("txn-fence-w")) {
                    b.initTransactions();
                    b.beginTransaction();
                    b.send(new ProducerRecord<>(T_FENCE, 0, "B4-0", "commit")).get(30, TimeUnit.SECONDS);
                    a.beginTransaction();
                    Throwable sendErr = thrown(() -> a.send(new ProducerRecord<>(T_FENCE, 0, "A4-0", "zombie")).get(30, TimeUnit.SECONDS));
                    c.check(isFencing(sendErr), "the idle zombie's send fails with a fencing error: " + describeChain(sendErr));
                    // EndTxn(abort) with the epoch just below the current one while the new
                    // instance's transaction is Ongoing: Kafka (TV2) requires the exact epoch in
                    // Ongoing and answers PRODUCER_FENCED.
                    Throwable abortErr = thrown(a::abortTransaction);
                    c.check(abortErr instanceof ProducerFencedException, "the zombie's abortTransaction -> ProducerFencedException: " + describeChain(abortErr));
                    c.checkEq(TransactionState.ONGOING, describeTxn("txn-fence-w").state(), "the new instance's transaction is untouched");
                    b.commitTransaction();
                    c.check(true, "the new instance commits");
                }
            } finally {
                a.close(Duration.ofSeconds(5));
            }
        });
        c.step("sendOffsetsToTransaction by a fenced producer", () -> {
            KafkaProducer<String, String> a = txProducer("txn-fence-v");
            try {
                a.initTransactions();
                a.beginTransaction();
                a.send(new ProducerRecord<>(T_FENCE, 1, "A5-1", "zombie")).get(30, TimeUnit.SECONDS);
                try (KafkaProducer<String, String> b = txProducer("txn-fence-v")) {
                    b.initTransactions();
                    ConsumerGroupMetadata group;
                    Properties cp = new Properties();
                    cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                    cp.put(ConsumerConfig.GROUP_ID_CONFIG, "txn-fence-group");
                    cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
                    cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
                    try (KafkaConsumer<String, String> cons = new KafkaConsumer<>(cp)) {
                        group = cons.groupMetadata(); // never joined: generation -1, no member id
                    }
                    Throwable err = thrown(() -> a.sendOffsetsToTransaction(Map.of(new TopicPartition(T_FENCE, 0), new OffsetAndMetadata(1)), group));
                    c.check(err instanceof ProducerFencedException, "sendOffsetsToTransaction -> ProducerFencedException: " + describeChain(err));
                }
                Map<TopicPartition, OffsetAndMetadata> offs = admin.listConsumerGroupOffsets("txn-fence-group")
                        .partitionsToOffsetAndMetadata().get(15, TimeUnit.SECONDS);
                c.check(offs.values().stream().allMatch(o -> o == null), "group txn-fence-group has no committed offsets: " + offs);
            } finally {
                a.close(Duration.ofSeconds(5));
            }
        });
        c.step("read back " + T_FENCE, this::verifyFence);
    }

    void verifyFence() {
        Read rc = readAll(T_FENCE, 2, true);
        Read ru = readAll(T_FENCE, 2, false);
        checkRows(List.of("B1-0", "B1-2", "B2-0", "B4-0"), rc.keys(0), "partition 0 read_committed: only the new instances' committed records");
        checkRows(List.of("B1-1", "B1-3"), rc.keys(1), "partition 1 read_committed: only the new instances' committed records");
        checkRows(List.of("A1-0", "A1-2", "B1-0", "B1-2", "A2-0", "A2-2", "B2-0", "A3-0", "A3-2", "B4-0"), ru.keys(0),
                "partition 0 read_uncommitted: the zombies' aborted records are in the log, their late sends are not");
        checkRows(List.of("A1-1", "A1-3", "B1-1", "B1-3", "A2-1", "A2-3", "A3-1", "A3-3", "A5-1"), ru.keys(1),
                "partition 1 read_uncommitted");
        for (int p = 0; p < 2; p++) {
            c.checkEq(ru.end.get(p), rc.end.get(p), "partition " + p + " LSO = high watermark (nothing left open)");
        }
    }

    // ---------------------------------------------------------------------------------------
    // 5. timeout, admin views

    void timeout() {
        c.step("create " + T_TIMEOUT + " (1 partition)", () -> createTopic(T_TIMEOUT, 1));
        c.step("transaction.timeout.ms above transaction.max.timeout.ms", () -> {
            Properties p = txProps("txn-timeout-too-long");
            p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "1000000");
            KafkaProducer<String, String> prod = new KafkaProducer<>(p);
            try {
                // The broker answers INVALID_TRANSACTION_TIMEOUT (50); InitProducerIdHandler in
                // kafka-clients has no case for it, so it surfaces as a fatal KafkaException
                // "Unexpected error in InitProducerIdResponse; <the error's message>".
                Throwable err = thrown(prod::initTransactions);
                String msg = err == null ? "" : String.valueOf(err.getMessage());
                c.check(err instanceof InvalidTxnTimeoutException || msg.contains("transaction.max.timeout.ms"),
                        "initTransactions with transaction.timeout.ms=1000000 (broker maximum 900000) fails with "
                                + "INVALID_TRANSACTION_TIMEOUT: " + describeChain(err));
            } finally {
                prod.close(Duration.ofSeconds(5));
            }
        });
        c.step("describeTransactions of an unknown transactional id", () ->
                c.expectThrows(TransactionalIdNotFoundException.class, "describeTransactions(txn-no-such-id)",
                        () -> describeTxn("txn-no-such-id")));

        TopicPartition tp = new TopicPartition(T_TIMEOUT, 0);
        Properties sp = txProps("txn-timeout-stall");
        sp.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "5000");
        KafkaProducer<String, String> stall = new KafkaProducer<>(sp);
        try {
            long[] began = {0};
            long[] pid = {-1};
            int[] epoch = {-1};
            c.step("a transaction with transaction.timeout.ms=5000 opened and left alone", () -> {
                stall.initTransactions();
                admin.describeCluster().clusterId().get(15, TimeUnit.SECONDS); // warm the admin client up
                stall.beginTransaction();
                began[0] = System.currentTimeMillis();
                for (int i = 0; i < 3; i++) stall.send(new ProducerRecord<>(T_TIMEOUT, 0, "stalled-" + i, "abort")).get(30, TimeUnit.SECONDS);
                try (KafkaProducer<String, String> plain = plainProducer("txn-timeout-plain")) {
                    for (int i = 0; i < 3; i++) plain.send(new ProducerRecord<>(T_TIMEOUT, 0, "after-" + i, "plain")).get(30, TimeUnit.SECONDS);
                }
                TransactionDescription d = describeTxn("txn-timeout-stall");
                long seen = System.currentTimeMillis();
                pid[0] = d.producerId();
                epoch[0] = d.producerEpoch();
                c.checkEq(TransactionState.ONGOING, d.state(), "describeTransactions state");
                c.checkEq(5000L, d.transactionTimeoutMs(), "describeTransactions transactionTimeoutMs");
                c.checkEq(Set.of(tp), d.topicPartitions(), "describeTransactions topicPartitions");
                OptionalLong start = d.transactionStartTimeMs();
                c.check(start.isPresent() && start.getAsLong() >= began[0] - 5_000 && start.getAsLong() <= seen,
                        "describeTransactions transactionStartTimeMs " + start + " within [begin - 5 s, now]");
                c.check(d.producerId() >= 0 && d.producerEpoch() >= 0, "producer id/epoch " + d.producerId() + "/" + d.producerEpoch());

                Set<String> ongoing = listTxnIds(new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING)));
                c.check(ongoing.contains("txn-timeout-stall"), "listTransactions(state ONGOING) includes it: " + ongoing);
                Set<String> commits = listTxnIds(new ListTransactionsOptions().filterStates(List.of(TransactionState.COMPLETE_COMMIT)));
                c.check(!commits.contains("txn-timeout-stall"), "listTransactions(state COMPLETE_COMMIT) excludes it: " + commits);
                Set<String> byPid = listTxnIds(new ListTransactionsOptions().filterProducerIds(List.of(d.producerId())));
                c.checkEq(Set.of("txn-timeout-stall"), byPid, "listTransactions(producer id " + d.producerId() + ")");
                Set<String> longer = listTxnIds(new ListTransactionsOptions().filterOnDuration(60_000));
                c.check(!longer.contains("txn-timeout-stall"), "listTransactions(running > 60 s) excludes it: " + longer);
                Set<String> pattern = listTxnIds(new ListTransactionsOptions().filterOnTransactionalIdPattern("txn-timeout-st.*"));
                c.checkEq(Set.of("txn-timeout-stall"), pattern, "listTransactions(id pattern txn-timeout-st.*)");
                Set<String> all = listTxnIds(new ListTransactionsOptions());
                c.check(all.contains("txn-timeout-stall"), "listTransactions() includes it (" + all.size() + " ids: " + all + ")");
                c.check(!all.contains("txn-timeout-too-long"), "the refused initTransactions left no transactional id behind");

                List<ProducerState> ps = producersOf(tp);
                Optional<ProducerState> mine = ps.stream().filter(s -> s.producerId() == d.producerId()).findFirst();
                c.check(mine.isPresent() && mine.get().currentTransactionStartOffset().equals(OptionalLong.of(0)),
                        "describeProducers: the stalled producer's currentTransactionStartOffset = 0: " + mine);
                c.check(mine.isPresent() && mine.get().lastSequence() == 2, "describeProducers: its lastSequence = 2: " + mine);
                Optional<ProducerState> other = ps.stream().filter(s -> s.producerId() != d.producerId()).findFirst();
                c.check(other.isPresent() && other.get().currentTransactionStartOffset().isEmpty() && other.get().lastSequence() == 2,
                        "describeProducers: the plain producer has no transaction, lastSequence 2: " + other);

                long wait = began[0] + 2_000 - System.currentTimeMillis();
                if (wait > 0) Thread.sleep(wait);
                Set<String> running = listTxnIds(new ListTransactionsOptions().filterOnDuration(1_500));
                c.check(running.contains("txn-timeout-stall"), "listTransactions(running > 1.5 s), 2 s in, includes it: " + running);
                Map<Integer, Long> rcEnd = endOffsets(T_TIMEOUT, 1, true), ruEnd = endOffsets(T_TIMEOUT, 1, false);
                c.checkEq(0L, rcEnd.get(0), "read_committed endOffset = LSO = the open transaction's first offset");
                c.checkEq(6L, ruEnd.get(0), "read_uncommitted endOffset = high watermark");
                long spent = System.currentTimeMillis() - began[0];
                if (spent > 4500) c.info("the checks above took " + spent + " ms; some may have raced the 5 s timeout");
            });
            c.step("the broker aborts it after transaction.timeout.ms; a polling read_committed consumer moves past it", () -> {
                List<ConsumerRecord<String, String>> got = new ArrayList<>();
                int beforeAbort = 0;
                long abortedAt = -1;
                TransactionDescription last = null;
                try (KafkaConsumer<String, String> cons = consumer(true, "timeout-watcher")) {
                    cons.assign(List.of(tp));
                    cons.seekToBeginning(List.of(tp));
                    long deadline = System.currentTimeMillis() + 20_000;
                    while (System.currentTimeMillis() < deadline) {
                        if (abortedAt < 0) {
                            last = describeTxn("txn-timeout-stall");
                            if (last.state() != TransactionState.ONGOING) abortedAt = System.currentTimeMillis();
                        }
                        List<ConsumerRecord<String, String>> batch = new ArrayList<>();
                        cons.poll(Duration.ofMillis(200)).forEach(batch::add);
                        got.addAll(batch);
                        // Records handed out while the coordinator still reports the transaction
                        // open would mean the LSO did not hold (the abort marker is written after
                        // the state leaves ONGOING, so this cannot race the other way).
                        if (!batch.isEmpty() && abortedAt < 0) {
                            last = describeTxn("txn-timeout-stall");
                            if (last.state() == TransactionState.ONGOING) beforeAbort += batch.size();
                            else abortedAt = System.currentTimeMillis();
                        }
                        if (abortedAt >= 0 && cons.position(tp) >= 7 && got.size() >= 3) break;
                    }
                    cons.poll(Duration.ofMillis(300)).forEach(got::add);
                    c.checkEq(7L, cons.position(tp), "the watcher's position after the abort (3 aborted + 3 plain + marker)");
                }
                long took = abortedAt < 0 ? -1 : abortedAt - began[0];
                c.check(abortedAt >= 0, "the transaction left ONGOING (state " + (last == null ? "?" : last.state()) + ") " + took + " ms after it began");
                c.check(took < 0 || (took >= 4_000 && took <= 12_000), "aborted between 4 s and 12 s after the transaction began: " + took + " ms");
                c.checkEq(0, beforeAbort, "records handed to read_committed while the transaction was open");
                checkRows(List.of("3:after-0", "4:after-1", "5:after-2"),
                        got.stream().map(r -> r.offset() + ":" + r.key()).collect(Collectors.toList()),
                        "read_committed watcher saw exactly the plain records behind the aborted transaction");
            });
            c.step("admin views after the timeout abort", () -> {
                TransactionDescription d = describeTxn("txn-timeout-stall");
                c.checkEq(TransactionState.COMPLETE_ABORT, d.state(), "describeTransactions state");
                c.check(d.producerEpoch() > epoch[0], "the abort bumped the epoch (fencing the stalled producer): " + epoch[0] + " -> " + d.producerEpoch());
                c.check(d.topicPartitions().isEmpty(), "no partitions left in the transaction: " + d.topicPartitions());
                // Kafka keeps the start time of a completed transaction (tests/differential).
                c.check(d.transactionStartTimeMs().isPresent(), "the start time is kept: " + d.transactionStartTimeMs());
                Set<String> ongoing = listTxnIds(new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING)));
                c.check(!ongoing.contains("txn-timeout-stall"), "listTransactions(ONGOING) excludes it: " + ongoing);
                Set<String> aborted = listTxnIds(new ListTransactionsOptions().filterStates(List.of(TransactionState.COMPLETE_ABORT)));
                c.check(aborted.contains("txn-timeout-stall"), "listTransactions(COMPLETE_ABORT) includes it: " + aborted);
                Optional<ProducerState> mine = producersOf(tp).stream().filter(s -> s.producerId() == pid[0]).findFirst();
                c.check(mine.isPresent() && mine.get().currentTransactionStartOffset().isEmpty(),
                        "describeProducers: no open transaction any more: " + mine);
                Map<Integer, Long> rcEnd = endOffsets(T_TIMEOUT, 1, true), ruEnd = endOffsets(T_TIMEOUT, 1, false);
                c.checkEq(7L, rcEnd.get(0), "read_committed endOffset (LSO) after the abort");
                c.checkEq(7L, ruEnd.get(0), "read_uncommitted endOffset after the abort");
            });
            c.step("the stalled producer tries to commit", () -> {
                // Straight to EndTxn(commit) with the epoch the broker's abort has bumped past.
                Throwable commitErr = thrown(stall::commitTransaction);
                c.check(commitErr != null, "commitTransaction after the broker aborted the transaction fails: " + describeChain(commitErr));
                Throwable sendErr = thrown(() -> stall.send(new ProducerRecord<>(T_TIMEOUT, 0, "stalled-late", "abort")).get(30, TimeUnit.SECONDS));
                c.info("its send afterwards: " + describeChain(sendErr));
                Throwable abortErr = thrown(stall::abortTransaction);
                c.info("its abortTransaction afterwards: " + describeChain(abortErr));
                Read rc = readAll(T_TIMEOUT, 1, true);
                checkRows(List.of("after-0", "after-1", "after-2"), rc.keys(0), "read_committed still shows only the plain records");
            });
        } finally {
            stall.close(Duration.ofSeconds(5));
        }
        c.step("a new instance of the same transactional.id works normally", () -> {
            Properties p = txProps("txn-timeout-stall");
            p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "5000");
            try (KafkaProducer<String, String> fresh = new KafkaProducer<>(p)) {
                fresh.initTransactions();
                fresh.beginTransaction();
                fresh.send(new ProducerRecord<>(T_TIMEOUT, 0, "fresh-0", "commit"));
                fresh.commitTransaction();
            }
            Read rc = readAll(T_TIMEOUT, 1, true);
            List<String> keys = rc.keys(0);
            c.check(keys.size() >= 4 && keys.subList(0, 3).equals(List.of("after-0", "after-1", "after-2"))
                    && keys.get(keys.size() - 1).equals("fresh-0") && keys.stream().noneMatch(k -> k.startsWith("stalled")),
                    "read_committed: the plain records, then the new instance's commit, never the stalled ones: " + keys);
            c.checkEq(TransactionState.COMPLETE_COMMIT, describeTxn("txn-timeout-stall").state(), "describeTransactions state");
        });
    }

    // ---------------------------------------------------------------------------------------
    // 4. broker restart mid-transaction

    void restart(Path ready, Path restarted) {
        Map<String, KafkaProducer<String, String>> producers = new TreeMap<>();
        long[] firstOpen = {Long.MAX_VALUE, Long.MAX_VALUE};
        c.step("before the restart: one committed transaction, two left open", () -> {
            createTopic(T_RESTART, 2);
            KafkaProducer<String, String> same = txProducer("txn-restart-same");
            producers.put("same", same);
            same.initTransactions();
            same.beginTransaction();
            for (int i = 0; i < 4; i++) same.send(new ProducerRecord<>(T_RESTART, i % 2, "c-" + i, "commit"));
            same.commitTransaction();
            same.beginTransaction();
            for (int i = 0; i < 4; i++) {
                RecordMetadata md = same.send(new ProducerRecord<>(T_RESTART, i % 2, "u1-" + i, "committed after the restart")).get(30, TimeUnit.SECONDS);
                firstOpen[md.partition()] = Math.min(firstOpen[md.partition()], md.offset());
            }
            KafkaProducer<String, String> old = txProducer("txn-restart-new");
            producers.put("old", old);
            old.initTransactions();
            old.beginTransaction();
            for (int i = 0; i < 4; i++) {
                RecordMetadata md = old.send(new ProducerRecord<>(T_RESTART, i % 2, "u2-" + i, "aborted by a new instance")).get(30, TimeUnit.SECONDS);
                firstOpen[md.partition()] = Math.min(firstOpen[md.partition()], md.offset());
            }
            Map<Integer, Long> rcEnd = endOffsets(T_RESTART, 2, true);
            c.checkEq(Map.of(0, firstOpen[0], 1, firstOpen[1]), rcEnd, "read_committed endOffsets = first open offsets before the restart");
        });
        c.step("waiting for the runner to restart the broker", () -> {
            Files.writeString(ready, "ready\n");
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (!Files.exists(restarted) && System.nanoTime() < deadline) Thread.sleep(100);
            c.check(Files.exists(restarted), "the runner restarted the broker");
        });
        c.step("after the restart: open transactions persisted, committed data visible, LSO held", () -> {
            for (String id : List.of("txn-restart-same", "txn-restart-new")) {
                TransactionDescription d = describeTxn(id);
                c.checkEq(TransactionState.ONGOING, d.state(), "describeTransactions(" + id + ") state");
                c.checkEq(Set.of(new TopicPartition(T_RESTART, 0), new TopicPartition(T_RESTART, 1)), d.topicPartitions(),
                        "describeTransactions(" + id + ") partitions");
            }
            Set<String> ongoing = listTxnIds(new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING)));
            c.check(ongoing.containsAll(List.of("txn-restart-same", "txn-restart-new")), "listTransactions(ONGOING): " + ongoing);
            Map<Integer, Long> rcEnd = endOffsets(T_RESTART, 2, true);
            c.checkEq(Map.of(0, firstOpen[0], 1, firstOpen[1]), rcEnd, "read_committed endOffsets (LSO) unchanged by the restart");
            for (int p = 0; p < 2; p++) {
                TopicPartition tp = new TopicPartition(T_RESTART, p);
                long open = producersOf(tp).stream().filter(s -> s.currentTransactionStartOffset().isPresent()).count();
                c.checkEq(2L, open, "describeProducers(" + tp + "): producers with an open transaction");
            }
            Read rc = readAll(T_RESTART, 2, true);
            checkRows(List.of("c-0", "c-2"), rc.keys(0), "partition 0 read_committed: the transaction committed before the restart");
            checkRows(List.of("c-1", "c-3"), rc.keys(1), "partition 1 read_committed: the transaction committed before the restart");
        });
        boolean[] sameCommitted = {false};
        c.step("the same producer commits its open transaction after the restart", () -> {
            Throwable err = thrown(producers.get("same")::commitTransaction);
            sameCommitted[0] = err == null;
            c.info("commitTransaction from the producer that opened it before the restart: "
                    + (err == null ? "succeeded" : "failed with " + describeChain(err)));
            c.check(err == null, "the coordinator kept the transaction across the restart, so the commit succeeds");
            c.checkEq(TransactionState.COMPLETE_COMMIT, describeTxn("txn-restart-same").state(), "describeTransactions(txn-restart-same)");
        });
        c.step("a new instance of the other transactional.id aborts its open transaction", () -> {
            try (KafkaProducer<String, String> fresh = txProducer("txn-restart-new")) {
                fresh.initTransactions();
                Throwable err = thrown(producers.get("old")::commitTransaction);
                c.check(err instanceof ProducerFencedException, "the old instance's commitTransaction -> ProducerFencedException: " + describeChain(err));
                fresh.beginTransaction();
                for (int i = 0; i < 2; i++) fresh.send(new ProducerRecord<>(T_RESTART, i % 2, "n-" + i, "commit"));
                fresh.commitTransaction();
            }
            verifyRestart(sameCommitted[0]);
        });
        for (KafkaProducer<String, String> p : producers.values()) p.close(Duration.ofSeconds(5));
    }

    void verifyRestart(boolean sameCommitted) {
        Read rc = readAll(T_RESTART, 2, true);
        Read ru = readAll(T_RESTART, 2, false);
        List<String> p0 = new ArrayList<>(List.of("c-0", "c-2")), p1 = new ArrayList<>(List.of("c-1", "c-3"));
        if (sameCommitted) {
            p0.addAll(List.of("u1-0", "u1-2"));
            p1.addAll(List.of("u1-1", "u1-3"));
        }
        p0.add("n-0");
        p1.add("n-1");
        checkRows(p0, rc.keys(0), "partition 0 read_committed: committed before the restart, u1 " + (sameCommitted ? "(committed after it)" : "")
                + ", the new instance's record; never u2");
        checkRows(p1, rc.keys(1), "partition 1 read_committed likewise");
        checkRows(List.of("c-0", "c-2", "u1-0", "u1-2", "u2-0", "u2-2", "n-0"), ru.keys(0),
                "partition 0 read_uncommitted: every data record, the aborted u2 included");
        checkRows(List.of("c-1", "c-3", "u1-1", "u1-3", "u2-1", "u2-3", "n-1"), ru.keys(1), "partition 1 read_uncommitted likewise");
        for (int p = 0; p < 2; p++) {
            c.checkEq(ru.end.get(p), rc.end.get(p), "partition " + p + " LSO = high watermark (nothing open)");
        }
    }

    // ---------------------------------------------------------------------------------------
    // after the restart

    void verifyAfterRestart() {
        c.step(T_INTERLEAVE + " (aborted-transaction index reloaded)", this::verifyInterleave);
        c.step(T_OVERLAP, this::verifyOverlap);
        c.step(T_CTP_IN + " / " + T_CTP_OUT + " and the group's offsets", this::verifyCtp);
        c.step(T_FENCE, this::verifyFence);
        c.step(T_RESTART, () -> verifyRestart(true));
        c.step("transaction states persisted", () -> {
            Map<String, TransactionState> want = new TreeMap<>(Map.of(
                    "txn-interleave-producer", TransactionState.COMPLETE_ABORT,
                    CTP_TXID, TransactionState.COMPLETE_COMMIT,
                    "txn-fence-x", TransactionState.COMPLETE_COMMIT,
                    "txn-timeout-stall", TransactionState.COMPLETE_COMMIT,
                    "txn-restart-same", TransactionState.COMPLETE_COMMIT,
                    "txn-restart-new", TransactionState.COMPLETE_COMMIT));
            Collection<String> ids = want.keySet();
            Map<String, TransactionDescription> got = admin.describeTransactions(ids).all().get(15, TimeUnit.SECONDS);
            for (String id : ids) {
                TransactionDescription d = got.get(id);
                c.checkEq(want.get(id), d == null ? null : d.state(), "describeTransactions(" + id + ") state");
            }
            Set<String> ongoing = listTxnIds(new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING)));
            c.checkEq(new HashSet<String>(), ongoing, "listTransactions(ONGOING)");
        });
    }
}
