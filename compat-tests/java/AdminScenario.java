import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * Scenario (a): the AdminClient topic lifecycle and metadata APIs against a single Fjord broker.
 *
 * <p>Usage: {@code java AdminScenario BOOTSTRAP}. Exits non-zero if any check failed.
 */
public final class AdminScenario {
    private static final String TOPIC_A = "compat-admin-a";
    private static final String TOPIC_B = "compat-admin-b";
    private static final String TOPIC_C = "compat-admin-c";
    private static final List<String> TOPICS = List.of(TOPIC_A, TOPIC_B, TOPIC_C);
    /** Each breaks a different rule: legal chars, "." / "..", and the 249-char limit. */
    private static final List<String> BAD_NAMES = List.of("bad/name", "has space", "..", "x".repeat(250), "tab\tname");

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: AdminScenario BOOTSTRAP");
            System.exit(2);
        }
        Checks c = new Checks("admin");
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        // Bounded so a broker that never answers fails the step instead of hanging the run.
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        try (Admin admin = Admin.create(props)) {
            run(admin, c, args[0]);
        }
        System.exit(c.finish());
    }

    /** Printable form of a topic name: long ones abbreviated, control chars escaped. */
    private static String shown(String name) {
        return name.length() > 20 ? "'" + name.substring(0, 10) + "...' (" + name.length() + " chars)"
                : "'" + name.replace("\t", "\\t") + "'";
    }

    private static void run(Admin admin, Checks c, String bootstrap) {
        int[] nodeId = {-1};
        Map<String, Uuid> createdIds = new HashMap<>();
        Map<String, Integer> partitions = Map.of(TOPIC_A, 3, TOPIC_B, 1, TOPIC_C, 6);

        c.step("describeCluster", () -> {
            DescribeClusterResult r = admin.describeCluster();
            String clusterId = r.clusterId().get(30, TimeUnit.SECONDS);
            c.check(clusterId != null && !clusterId.isEmpty(), "cluster id is non-empty (" + clusterId + ")");
            Collection<Node> nodes = r.nodes().get(30, TimeUnit.SECONDS);
            c.checkEq(1, nodes.size(), "node count");
            if (!nodes.isEmpty()) {
                Node n = nodes.iterator().next();
                nodeId[0] = n.id();
                c.check(n.id() >= 0, "node id is non-negative (" + n + ")");
                // Clients reconnect to the advertised address, so it must be the one we dialled.
                String port = bootstrap.substring(bootstrap.lastIndexOf(':') + 1);
                c.checkEq(port, String.valueOf(n.port()), "advertised port matches bootstrap port");
            }
            Node controller = r.controller().get(30, TimeUnit.SECONDS);
            c.check(controller != null && controller.id() >= 0, "controller is a real node (" + controller + ")");
        });

        c.step("createTopics " + TOPICS, () -> {
            List<NewTopic> topics = List.of(
                    new NewTopic(TOPIC_A, 3, (short) 1),
                    // Broker-default replication factor (-1 on the wire) plus a per-topic config.
                    new NewTopic(TOPIC_B, Optional.of(1), Optional.empty())
                            .configs(Map.of("retention.ms", "3600000")),
                    new NewTopic(TOPIC_C, 6, (short) 1)
                            .configs(Map.of("cleanup.policy", "compact", "retention.ms", "7200000")));
            CreateTopicsResult r = admin.createTopics(topics);
            r.all().get(30, TimeUnit.SECONDS);
            c.check(true, "createTopics succeeded for all " + TOPICS.size() + " topics");
            for (String t : TOPICS) {
                c.checkEq(partitions.get(t), r.numPartitions(t).get(), t + " numPartitions in CreateTopics response");
                c.checkEq(1, r.replicationFactor(t).get(), t + " replicationFactor in CreateTopics response");
                Uuid id = r.topicId(t).get();
                createdIds.put(t, id);
                c.check(id != null && !Uuid.ZERO_UUID.equals(id), t + " topic id in CreateTopics response is non-zero (" + id + ")");
            }
            // CreateTopics v5+ echoes the effective configs; the per-topic override must show up.
            Config cfgB = r.config(TOPIC_B).get();
            ConfigEntry ret = cfgB.get("retention.ms");
            c.checkEq("3600000", ret == null ? null : ret.value(), TOPIC_B + " retention.ms in CreateTopics response");
        });

        c.step("createTopics on an existing topic", () ->
                c.expectThrows(TopicExistsException.class, "re-creating " + TOPIC_A,
                        () -> admin.createTopics(List.of(new NewTopic(TOPIC_A, 3, (short) 1)))
                                .all().get(30, TimeUnit.SECONDS)));

        c.step("createTopics with illegal names", () -> {
            // Only null/empty names are rejected client-side; these all reach the broker.
            for (String bad : BAD_NAMES) {
                c.expectThrows(InvalidTopicException.class, "creating " + shown(bad),
                        () -> admin.createTopics(List.of(new NewTopic(bad, 1, (short) 1)))
                                .all().get(30, TimeUnit.SECONDS));
            }
        });

        c.step("listTopics", () -> {
            Set<String> names = admin.listTopics().names().get(30, TimeUnit.SECONDS);
            c.check(names.containsAll(TOPICS), "listTopics contains " + TOPICS
                    + (names.containsAll(TOPICS) ? "" : " (got " + names + ")"));
            List<String> leaked = names.stream().filter(BAD_NAMES::contains).map(AdminScenario::shown).toList();
            c.check(leaked.isEmpty(), "no rejected topic was created" + (leaked.isEmpty() ? "" : " (found " + leaked + ")"));
        });

        c.step("describeTopics", () -> {
            Map<String, TopicDescription> d = admin.describeTopics(TOPICS).allTopicNames().get(30, TimeUnit.SECONDS);
            for (String t : TOPICS) {
                TopicDescription td = d.get(t);
                if (!c.check(td != null, t + " described")) {
                    continue;
                }
                c.checkEq(partitions.get(t), td.partitions().size(), t + " partition count");
                c.check(!td.isInternal(), t + " is not internal");
                c.check(!Uuid.ZERO_UUID.equals(td.topicId()), t + " topic id non-zero (" + td.topicId() + ")");
                c.checkEq(createdIds.get(t), td.topicId(), t + " topic id matches CreateTopics");
                List<String> problems = new ArrayList<>();
                for (int i = 0; i < td.partitions().size(); i++) {
                    TopicPartitionInfo p = td.partitions().get(i);
                    if (p.partition() != i) problems.add("partition[" + i + "] has index " + p.partition());
                    if (p.leader() == null || p.leader().id() != nodeId[0]) problems.add("p" + i + " leader " + p.leader());
                    if (p.replicas().size() != 1) problems.add("p" + i + " replicas " + p.replicas());
                    if (p.leader() != null && !p.isr().contains(p.leader())) problems.add("p" + i + " isr " + p.isr());
                }
                c.check(problems.isEmpty(), t + " every partition led by node " + nodeId[0]
                        + " with replicas=isr=[leader]" + (problems.isEmpty() ? "" : " " + problems));
            }
            c.expectThrows(UnknownTopicOrPartitionException.class, "describing a missing topic",
                    () -> admin.describeTopics(List.of("compat-no-such-topic")).allTopicNames().get(30, TimeUnit.SECONDS));
        });

        c.step("describeConfigs (topic)", () -> {
            ConfigResource rb = new ConfigResource(ConfigResource.Type.TOPIC, TOPIC_B);
            ConfigResource rc = new ConfigResource(ConfigResource.Type.TOPIC, TOPIC_C);
            Map<ConfigResource, Config> all = admin.describeConfigs(List.of(rb, rc)).all().get(30, TimeUnit.SECONDS);
            Config b = all.get(rb);
            ConfigEntry ret = b.get("retention.ms");
            c.checkEq("3600000", ret == null ? null : ret.value(), TOPIC_B + " retention.ms");
            c.checkEq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, ret == null ? null : ret.source(),
                    TOPIC_B + " retention.ms source");
            ConfigEntry cp = b.get("cleanup.policy");
            c.checkEq("delete", cp == null ? null : cp.value(), TOPIC_B + " cleanup.policy (default)");
            // DEFAULT_CONFIG on stock Kafka, STATIC_BROKER_CONFIG if the broker sets it; never an override.
            c.check(cp != null && cp.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                    TOPIC_B + " cleanup.policy not reported as a topic override"
                    + (cp == null ? "" : " (source " + cp.source() + ")"));
            ConfigEntry cc = all.get(rc).get("cleanup.policy");
            c.checkEq("compact", cc == null ? null : cc.value(), TOPIC_C + " cleanup.policy");
            c.info(TOPIC_B + " reports " + b.entries().size() + " config entries");
        });

        c.step("describeConfigs (broker)", () -> {
            ConfigResource rb = new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(nodeId[0]));
            Config b = admin.describeConfigs(List.of(rb)).all().get(30, TimeUnit.SECONDS).get(rb);
            c.check(b != null && !b.entries().isEmpty(),
                    "broker " + nodeId[0] + " returns configs (" + (b == null ? 0 : b.entries().size()) + " entries)");
            if (b != null) {
                // Informational only: which well-known keys tooling commonly reads are exposed.
                for (String k : List.of("num.partitions", "log.retention.hours", "log.retention.ms",
                        "default.replication.factor", "auto.create.topics.enable", "message.max.bytes")) {
                    ConfigEntry e = b.get(k);
                    c.info("broker " + k + " = " + (e == null ? "<absent>" : e.value() + " (" + e.source() + ")"));
                }
            }
        });

        c.step("deleteTopics", () -> {
            admin.deleteTopics(TOPICS).all().get(30, TimeUnit.SECONDS);
            c.check(true, "deleteTopics succeeded for " + TOPICS);
            // Kafka deletes asynchronously, so allow the listing a short while to converge.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
            Set<String> names;
            do {
                names = admin.listTopics().names().get(30, TimeUnit.SECONDS);
                if (names.stream().noneMatch(TOPICS::contains)) break;
                Thread.sleep(200);
            } while (System.nanoTime() < deadline);
            Set<String> left = new java.util.TreeSet<>(names);
            left.retainAll(TOPICS);
            c.check(left.isEmpty(), "listTopics no longer contains deleted topics" + (left.isEmpty() ? "" : " (still " + left + ")"));
            c.expectThrows(UnknownTopicOrPartitionException.class, "describing a deleted topic",
                    () -> admin.describeTopics(List.of(TOPIC_A)).allTopicNames().get(30, TimeUnit.SECONDS));
        });
    }
}
