import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A consume-transform-produce application in its own JVM, so TxnScenarios can SIGKILL it in the
 * middle of a transaction. It reads IN with a read_committed consumer in group GROUP (automatic
 * commits off), writes every record to the same partition of OUT with key unchanged and value
 * {@code T(<value>)}, and commits the consumed positions with sendOffsetsToTransaction and
 * commitTransaction, one transaction per poll. Reports on stdout:
 * <pre>
 *   READY                               initTransactions done
 *   COMMITTED txns records              after every commit (running totals of this process)
 *   STALLED records                     (STALL_AFTER >= 0) after STALL_AFTER commits: a transaction with
 *                                       that many records and its offsets sent and flushed, never ended
 *   DONE txns records                   every assigned partition read up to its read_committed end
 * </pre>
 * Usage: {@code java TxnCtpApp BOOTSTRAP IN OUT GROUP TXID PARTITIONS STALL_AFTER DELAY_MS MAX_SECONDS}.
 * STALL_AFTER -1 = never stall. The process exits by itself after MAX_SECONDS (exit code 3).
 */
public final class TxnCtpApp {
    public static void main(String[] args) throws Exception {
        if (args.length != 9) {
            System.err.println("usage: TxnCtpApp BOOTSTRAP IN OUT GROUP TXID PARTITIONS STALL_AFTER DELAY_MS MAX_SECONDS");
            System.exit(2);
        }
        String bootstrap = args[0], in = args[1], out = args[2], group = args[3], txid = args[4];
        int partitions = Integer.parseInt(args[5]);
        int stallAfter = Integer.parseInt(args[6]);
        long delayMs = Long.parseLong(args[7]);
        long deadline = System.nanoTime() + Long.parseLong(args[8]) * 1_000_000_000L;

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.CLIENT_ID_CONFIG, txid + "-consumer");
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
        // Classic protocol (the client default): the killed instance's member must time out
        // before the group rebalances to the new one; 6 s is the broker's minimum.
        cp.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
        cp.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        pp.put(ProducerConfig.CLIENT_ID_CONFIG, txid + "-producer");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());

        KafkaProducer<String, String> producer = new KafkaProducer<>(pp);
        // Fences any earlier instance and aborts the transaction it left open, before this
        // instance's consumer asks for the group's committed (stable) offsets.
        producer.initTransactions();
        say("READY");
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp);
        consumer.subscribe(List.of(in));

        long txns = 0, records = 0;
        while (System.nanoTime() < deadline) {
            ConsumerRecords<String, String> batch = consumer.poll(Duration.ofMillis(200));
            if (batch.isEmpty()) {
                Set<TopicPartition> assigned = consumer.assignment();
                if (assigned.size() == partitions) {
                    Map<TopicPartition, Long> end = consumer.endOffsets(assigned, Duration.ofSeconds(15));
                    boolean caughtUp = true;
                    for (TopicPartition tp : assigned) {
                        if (consumer.position(tp, Duration.ofSeconds(15)) < end.get(tp)) caughtUp = false;
                    }
                    if (caughtUp) {
                        say("DONE " + txns + " " + records);
                        consumer.close(CloseOptions.timeout(Duration.ofSeconds(10)));
                        producer.close(Duration.ofSeconds(10));
                        System.exit(0);
                    }
                }
                continue;
            }
            producer.beginTransaction();
            List<TopicPartition> touched = new ArrayList<>();
            for (ConsumerRecord<String, String> r : batch) {
                producer.send(new ProducerRecord<>(out, r.partition(), r.key(), "T(" + r.value() + ")"));
                TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                if (!touched.contains(tp)) touched.add(tp);
            }
            Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
            for (TopicPartition tp : touched) {
                offsets.put(tp, new OffsetAndMetadata(consumer.position(tp)));
            }
            producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
            if (stallAfter >= 0 && txns == stallAfter) {
                // Everything of this transaction is on the broker (records and staged offsets);
                // only EndTxn is missing. The parent now SIGKILLs us.
                producer.flush();
                say("STALLED " + batch.count());
                while (System.nanoTime() < deadline) Thread.sleep(100);
                break;
            }
            producer.commitTransaction();
            txns++;
            records += batch.count();
            say("COMMITTED " + txns + " " + records);
            if (delayMs > 0) Thread.sleep(delayMs);
        }
        say("lifetime reached");
        System.exit(3);
    }

    static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
