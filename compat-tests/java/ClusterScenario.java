import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The three-node cluster scenario's Java parts (compat-tests/cluster.sh), one mode per JVM:
 *
 * <ul>
 *   <li>{@code admin BOOTSTRAP SPREAD OTHER}: describeCluster sees nodes 1, 2, 3 and a controller
 *       among them; createTopics SPREAD (6 partitions, RF 1) and OTHER (3 partitions, RF 1);
 *       SPREAD's leaders are spread round-robin, two partitions per broker; RF 4 is refused with
 *       InvalidReplicationFactorException.
 *   <li>{@code produce BOOTSTRAP TOPIC N OUT}: N records k0..k(N-1) with acks=all; every acked
 *       record's partition, offset, key and value is written to OUT.
 *   <li>{@code consume BOOTSTRAP TOPIC N OUT}: a group-less consumer reads the topic from the
 *       beginning; every record, in the order received, goes to OUT (cluster_tool.py compares).
 * </ul>
 * Prints a line "controller N" in admin mode for the runner. Exits non-zero if a check failed.
 */
public final class ClusterScenario {
    static final Set<Integer> NODES = Set.of(1, 2, 3);

    public static void main(String[] args) throws Exception {
        if (args.length < 1) usage();
        Checks c = new Checks("cluster-" + args[0]);
        switch (args[0]) {
            case "admin" -> {
                if (args.length != 4) usage();
                admin(args[1], args[2], args[3], c);
            }
            case "produce" -> {
                if (args.length != 5) usage();
                c.step("produce " + args[3] + " records to " + args[2],
                        () -> produce(args[1], args[2], Integer.parseInt(args[3]), Path.of(args[4]), c));
            }
            case "consume" -> {
                if (args.length != 5) usage();
                c.step("consume " + args[2],
                        () -> consume(args[1], args[2], Integer.parseInt(args[3]), Path.of(args[4]), c));
            }
            default -> usage();
        }
        System.exit(c.finish());
    }

    static void usage() {
        System.err.println("usage: ClusterScenario admin BOOTSTRAP SPREAD OTHER | produce|consume BOOTSTRAP TOPIC N OUT");
        System.exit(2);
    }

    static Properties adminProps(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        // Bounded so that a cluster that never answers fails the step instead of hanging the run.
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        return p;
    }

    static void admin(String bootstrap, String spread, String other, Checks c) {
        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            c.step("describeCluster", () -> {
                DescribeClusterResult r = admin.describeCluster();
                Collection<Node> nodes = r.nodes().get(20, TimeUnit.SECONDS);
                Set<Integer> ids = new TreeSet<>();
                for (Node n : nodes) ids.add(n.id());
                c.checkEq(new TreeSet<>(NODES), ids, "node ids");
                Node controller = r.controller().get(20, TimeUnit.SECONDS);
                int cid = controller == null ? -1 : controller.id();
                c.check(NODES.contains(cid), "controller id " + cid + " is one of the nodes");
                System.out.println("controller " + cid);
            });

            c.step("createTopics " + spread + " (6 partitions) and " + other + " (3 partitions), RF 1", () -> {
                admin.createTopics(List.of(new NewTopic(spread, 6, (short) 1), new NewTopic(other, 3, (short) 1)))
                        .all().get(20, TimeUnit.SECONDS);
                c.check(true, "createTopics succeeded");
            });

            c.step("describeTopics " + spread + ": leaders spread over the brokers", () -> {
                // A broker other than the controller may learn of the new topic a moment later;
                // wait (bounded) until all six partitions have a leader in its answer.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                TopicDescription d;
                while (true) {
                    d = admin.describeTopics(List.of(spread)).allTopicNames().get(20, TimeUnit.SECONDS).get(spread);
                    boolean led = d.partitions().size() == 6
                            && d.partitions().stream().allMatch(p -> p.leader() != null && p.leader().id() >= 0);
                    if (led || System.nanoTime() > deadline) break;
                    Thread.sleep(200);
                }
                c.checkEq(6, d.partitions().size(), "partition count");
                Map<Integer, List<Integer>> byLeader = new TreeMap<>();
                for (TopicPartitionInfo p : d.partitions()) {
                    int leader = p.leader() == null ? -1 : p.leader().id();
                    byLeader.computeIfAbsent(leader, k -> new ArrayList<>()).add(p.partition());
                    c.checkEq(List.of(leader), p.replicas().stream().map(Node::id).toList(),
                            "partition " + p.partition() + " replicas = [leader]");
                    c.checkEq(List.of(leader), p.isr().stream().map(Node::id).toList(),
                            "partition " + p.partition() + " isr = [leader]");
                }
                c.info("partitions by leader: " + byLeader);
                for (int b : new TreeSet<>(NODES)) {
                    c.checkEq(2, byLeader.getOrDefault(b, List.of()).size(), "partitions led by broker " + b);
                }
            });

            c.step("createTopics with replication factor 4 on 3 brokers", () ->
                    c.expectThrows(InvalidReplicationFactorException.class, "creating cluster-rf4 with RF 4",
                            () -> admin.createTopics(List.of(new NewTopic("cluster-rf4", 1, (short) 4)))
                                    .all().get(20, TimeUnit.SECONDS)));
        }
    }

    static void produce(String bootstrap, String topic, int n, Path out, Checks c) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        List<Future<RecordMetadata>> acks = new ArrayList<>(n);
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < n; i++) {
                acks.add(producer.send(new ProducerRecord<>(topic, "k" + i, "value-" + i)));
            }
            producer.flush();
        }
        List<String> rows = new ArrayList<>(n);
        int failed = 0;
        String firstError = null;
        Map<Integer, Integer> perPartition = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            try {
                RecordMetadata m = acks.get(i).get(30, TimeUnit.SECONDS);
                rows.add(m.partition() + "\t" + m.offset() + "\tk" + i + "\tvalue-" + i);
                perPartition.merge(m.partition(), 1, Integer::sum);
            } catch (Exception e) {
                failed++;
                if (firstError == null) firstError = "k" + i + ": " + Checks.describe(e);
            }
        }
        Files.write(out, rows, StandardCharsets.UTF_8);
        c.check(failed == 0, n + " sends acked with acks=all" + (failed == 0 ? "" : ": " + failed
                + " failed, first " + firstError));
        c.info("records per partition: " + perPartition);
    }

    static void consume(String bootstrap, String topic, int n, Path out, Checks c) throws Exception {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer =
                new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> tps = consumer.partitionsFor(topic, Duration.ofSeconds(20)).stream()
                    .sorted(Comparator.comparingInt(PartitionInfo::partition))
                    .map(i -> new TopicPartition(topic, i.partition())).toList();
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            long extra = Long.MAX_VALUE;
            // Until N arrived, then one more second so that duplicates would show.
            while (System.nanoTime() < Math.min(deadline, extra)) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(300))) got.add(r);
                if (got.size() >= n && extra == Long.MAX_VALUE) extra = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
            }
        }
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out, StandardCharsets.UTF_8))) {
            for (ConsumerRecord<String, String> r : got) {
                w.println(r.partition() + "\t" + r.offset() + "\t" + r.key() + "\t" + r.value());
            }
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
        c.checkEq(n, got.size(), "records read");
    }
}
