import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java side of the replication fault harness (scripts/fault_harness.py): a stock
 * idempotent acks=all producer that sends value {@code j<partition>:<seq>} to every partition
 * in turn at a fixed rate of rounds per second, and prints one line per acknowledgement,
 * {@code ACK <partition> <seq> <offset>}, and per failure, {@code FAIL <partition> <seq> <error>}.
 * It stops when its standard input closes or says {@code stop}: then it flushes, closes and
 * prints {@code DONE}.
 *
 * <p>Usage: {@code java FaultProducer BOOTSTRAP TOPIC PARTITIONS ROUNDS_PER_SECOND}
 */
public final class FaultProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        double rate = Double.parseDouble(args[3]);
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        AtomicBoolean stop = FaultSupport.stopOnStdin();

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.METADATA_MAX_AGE_CONFIG, "1000");
        p.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, "50");
        p.put(ProducerConfig.RETRY_BACKOFF_MAX_MS_CONFIG, "500");
        p.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        AtomicLong failures = new AtomicLong();
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            long intervalNs = (long) (1_000_000_000L / rate);
            long next = System.nanoTime();
            long seq = 0;
            while (!stop.get()) {
                for (int part = 0; part < partitions; part++) {
                    final int fp = part;
                    final long fs = seq;
                    byte[] value = ("j" + part + ":" + seq).getBytes(StandardCharsets.UTF_8);
                    producer.send(new ProducerRecord<>(topic, part, null, value), (md, e) -> {
                        synchronized (out) {
                            if (e == null) {
                                out.println("ACK " + fp + " " + fs + " " + md.offset());
                            } else {
                                failures.incrementAndGet();
                                out.println("FAIL " + fp + " " + fs + " " + e.getClass().getSimpleName());
                            }
                            out.flush();
                        }
                    });
                }
                seq++;
                next += intervalNs;
                long sleep = next - System.nanoTime();
                if (sleep > 0) {
                    TimeUnit.NANOSECONDS.sleep(sleep);
                } else {
                    next = System.nanoTime();
                }
            }
            producer.flush();
        }
        synchronized (out) {
            out.println("DONE failures=" + failures.get());
            out.flush();
        }
    }
}
