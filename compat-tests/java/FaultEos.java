import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The exactly-once side of the replication fault harness (scripts/fault_harness.py): a stock
 * consume-transform-produce application as Kafka documents it (exactly_once_v2: one
 * transactional producer, the consumer's group metadata sent with the offsets). It reads IN
 * read_committed in group GROUP and writes {@code T(<value>)} to the same partition of OUT, one
 * transaction per poll, while the harness kills the transaction coordinator's broker and the
 * leaders of OUT. A failed transaction is aborted and the consumer rewound to the group's
 * committed offsets (the documented recovery); a fenced producer ends the process (the harness
 * starts a new instance). Prints {@code COMMITTED <records>} and {@code POS <partition> <offset>}
 * after each commit, {@code ABORTED <error>} per aborted transaction, and {@code DONE} when its
 * standard input closes or says {@code stop}.
 *
 * <p>Usage: {@code java FaultEos BOOTSTRAP IN OUT GROUP TXID}
 */
public final class FaultEos {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], in = args[1], out = args[2], group = args[3], txid = args[4];
        PrintStream stdout = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        AtomicBoolean stop = FaultSupport.stopOnStdin();

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "200");
        cp.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        cp.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        cp.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, "1000");
        cp.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000");

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        pp.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "30000");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        pp.put(ProducerConfig.METADATA_MAX_AGE_CONFIG, "1000");
        pp.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, "50");
        pp.put(ProducerConfig.RETRY_BACKOFF_MAX_MS_CONFIG, "500");
        pp.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");

        long aborted = 0;
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer());
             KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            producer.initTransactions();
            consumer.subscribe(List.of(in));
            say(stdout, "READY");
            long records = 0;
            while (!stop.get()) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(200));
                if (batch.isEmpty()) {
                    continue;
                }
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                try {
                    producer.beginTransaction();
                    for (ConsumerRecord<byte[], byte[]> r : batch) {
                        byte[] v = ("T(" + new String(r.value(), StandardCharsets.UTF_8) + ")")
                                .getBytes(StandardCharsets.UTF_8);
                        producer.send(new ProducerRecord<>(out, r.partition(), r.key(), v));
                        offsets.put(new TopicPartition(r.topic(), r.partition()),
                                new OffsetAndMetadata(r.offset() + 1));
                    }
                    producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                    producer.commitTransaction();
                    records += batch.count();
                    StringBuilder sb = new StringBuilder("COMMITTED " + records);
                    for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) {
                        sb.append("\nPOS ").append(e.getKey().partition()).append(' ').append(e.getValue().offset());
                    }
                    say(stdout, sb.toString());
                } catch (ProducerFencedException | OutOfOrderSequenceException | AuthorizationException e) {
                    say(stdout, "FATAL " + e.getClass().getSimpleName());
                    System.exit(4);
                } catch (KafkaException e) {
                    aborted++;
                    say(stdout, "ABORTED " + e.getClass().getSimpleName() + " " + String.valueOf(e.getMessage()).replace('\n', ' '));
                    try {
                        producer.abortTransaction();
                    } catch (KafkaException again) {
                        say(stdout, "FATAL abort failed: " + again.getClass().getSimpleName());
                        System.exit(4);
                    }
                    rewind(consumer);
                }
            }
        }
        say(stdout, "DONE aborted=" + aborted);
    }

    /** Back to the group's committed offsets (or the start) for every assigned partition. */
    static void rewind(KafkaConsumer<byte[], byte[]> consumer) throws InterruptedException {
        Set<TopicPartition> assigned = consumer.assignment();
        Map<TopicPartition, OffsetAndMetadata> committed = null;
        for (int attempt = 0; committed == null; attempt++) {
            try {
                committed = consumer.committed(assigned, Duration.ofSeconds(10));
            } catch (KafkaException e) {
                if (attempt >= 10) {
                    throw e;
                }
                Thread.sleep(500);
            }
        }
        for (TopicPartition tp : assigned) {
            OffsetAndMetadata c = committed.get(tp);
            if (c == null) {
                consumer.seekToBeginning(List.of(tp));
            } else {
                consumer.seek(tp, c.offset());
            }
        }
    }

    static void say(PrintStream out, String line) {
        synchronized (out) {
            out.println(line);
            out.flush();
        }
    }
}
