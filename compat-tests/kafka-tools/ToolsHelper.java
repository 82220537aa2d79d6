import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Producers that compat-tests/kafka-tools.sh needs and Kafka's console producer cannot be:
 * <pre>
 *   timestamps BOOTSTRAP TOPIC BASE_MS
 *       records with explicit CreateTime timestamps (minutes after BASE_MS), in batches fixed by
 *       flush(), so ListOffsets by timestamp and MAX_TIMESTAMP have the same answer on every broker:
 *         partition 0, batch 1: offsets 0-2 at +0, +10, +25 min
 *         partition 0, batch 2: offsets 3-4 at +20, +25 min (out of order, and a tie for the max)
 *         partition 1, batch 1: offsets 0-2 at +1, +2, +3 min
 *   txn BOOTSTRAP TOPIC TXID MAX_SECONDS
 *       a transactional producer: one committed transaction of 2 records to partition 0, then a
 *       second one of 3 records, sent and flushed but never ended; prints OPEN and then waits,
 *       holding it open, until it is killed or MAX_SECONDS pass.
 * </pre>
 */
public final class ToolsHelper {
    private static final long MIN = 60_000L;

    public static void main(String[] args) throws Exception {
        if (args.length == 4 && args[0].equals("timestamps")) {
            timestamps(args[1], args[2], Long.parseLong(args[3]));
        } else if (args.length == 5 && args[0].equals("txn")) {
            txn(args[1], args[2], args[3], Long.parseLong(args[4]));
        } else {
            System.err.println("usage: ToolsHelper timestamps BOOTSTRAP TOPIC BASE_MS | txn BOOTSTRAP TOPIC TXID MAX_SECONDS");
            System.exit(2);
        }
    }

    private static Properties props(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        // Batches end only at flush(): the same batch layout on every run and broker.
        p.put(ProducerConfig.LINGER_MS_CONFIG, "60000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "90000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        return p;
    }

    private static void timestamps(String bootstrap, String topic, long base) throws Exception {
        Properties p = props(bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "kafka-tools-timestamps");
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            long[][] batches = {{0, 10, 25}, {20, 25}};
            int offset = 0;
            for (long[] batch : batches) {
                for (long m : batch) {
                    sent.add(producer.send(new ProducerRecord<>(topic, 0, base + m * MIN, "ts" + offset, "p0 +" + m + "m")));
                    offset++;
                }
                if (offset == 3) {
                    for (long m = 1; m <= 3; m++) {
                        sent.add(producer.send(new ProducerRecord<>(topic, 1, base + m * MIN, "ts" + m, "p1 +" + m + "m")));
                    }
                }
                producer.flush();
            }
            for (Future<RecordMetadata> f : sent) {
                f.get(); // throws if the record was not written
            }
        }
    }

    private static void txn(String bootstrap, String topic, String txid, long maxSeconds) throws Exception {
        Properties p = props(bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "kafka-tools-txn");
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "300000");
        KafkaProducer<String, String> producer = new KafkaProducer<>(p);
        producer.initTransactions();
        producer.beginTransaction();
        for (int i = 0; i < 2; i++) {
            producer.send(new ProducerRecord<>(topic, 0, "c" + i, "committed " + i));
        }
        producer.commitTransaction();
        producer.beginTransaction();
        for (int i = 0; i < 3; i++) {
            producer.send(new ProducerRecord<>(topic, 0, "o" + i, "open " + i));
        }
        producer.flush();
        System.out.println("OPEN");
        System.out.flush();
        Thread.sleep(maxSeconds * 1000);
        // Still open: closing without ending it leaves the coordinator to time it out.
        producer.close(Duration.ZERO);
    }
}
