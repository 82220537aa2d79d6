import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The Java consumer side of the replication fault harness (scripts/fault_harness.py): a stock
 * read_committed group consumer (classic or KIP-848 protocol) that commits its position
 * synchronously every 250 ms while the harness kills brokers, among them the group's
 * coordinator. It prints {@code REC <partition> <offset>} per record,
 * {@code COMMIT <partition> <offset>} per offset committed successfully and
 * {@code COMMITFAIL <error>} per failed commit; when its standard input closes or says
 * {@code stop} it prints the group's committed offsets as {@code FINAL <partition> <offset>}
 * and {@code DONE}.
 *
 * <p>Usage: {@code java FaultConsumer BOOTSTRAP TOPIC GROUP classic|consumer}
 */
public final class FaultConsumer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        String protocol = args[3];
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        AtomicBoolean stop = FaultSupport.stopOnStdin();

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, "1000");
        p.put(ConsumerConfig.RETRY_BACKOFF_MS_CONFIG, "50");
        p.put(ConsumerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000");
        if (protocol.equals("classic")) {
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        }
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topic));
            Map<TopicPartition, OffsetAndMetadata> positions = new HashMap<>();
            long lastCommit = System.nanoTime();
            while (!stop.get()) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    out.println("REC " + r.partition() + " " + r.offset());
                    positions.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                if (System.nanoTime() - lastCommit >= 250_000_000L && !positions.isEmpty()) {
                    lastCommit = System.nanoTime();
                    Map<TopicPartition, OffsetAndMetadata> toCommit = new HashMap<>(positions);
                    try {
                        consumer.commitSync(toCommit, Duration.ofSeconds(10));
                        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : toCommit.entrySet()) {
                            out.println("COMMIT " + e.getKey().partition() + " " + e.getValue().offset());
                        }
                    } catch (Exception e) {
                        out.println("COMMITFAIL " + e.getClass().getSimpleName());
                    }
                }
                out.flush();
            }
            int partitions = consumer.partitionsFor(topic).size();
            java.util.Set<TopicPartition> all = new java.util.HashSet<>();
            for (int i = 0; i < partitions; i++) {
                all.add(new TopicPartition(topic, i));
            }
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(all, Duration.ofSeconds(30));
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : committed.entrySet()) {
                if (e.getValue() != null) {
                    out.println("FINAL " + e.getKey().partition() + " " + e.getValue().offset());
                }
            }
        }
        out.println("DONE");
        out.flush();
    }
}
