import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.errors.UnknownMemberIdException;

/**
 * Consumer-group scenarios through the real Java client, one scenario and one group protocol
 * (classic or consumer, i.e. KIP-848) per JVM:
 * <pre>
 *   assign3            3 members, 6 partitions: each partition owned once, 2 per member
 *   kill               a member in a child JVM is SIGKILLed; survivors take over within the session timeout
 *   zombie             a member in a child JVM is SIGSTOPped past its session timeout, then SIGCONTed:
 *                      survivors take over, and the zombie is fenced and rejoins instead of keeping its partitions
 *   commit-resume      commitSync part-way, close, a new set of members resumes exactly at the commits
 *   static             (classic) a static member restarts within its session: same partitions, no rebalance;
 *                      a second consumer with a live member's group.instance.id fences the first
 *   join20             20 members join at once on 24 partitions and converge to one generation
 *   offsets-commit     commit known offsets (the runner then restarts the broker) ...
 *   offsets-verify     ... and check them with the AdminClient and by resuming consumption
 *   admin              list/describe groups, list/alter/delete offsets, delete groups
 *   assignor-NAME      3 members converge with the given assignor: classic cooperative-sticky | range
 *                      (client-side), consumer uniform | range (group.remote.assignor, server-side)
 * </pre>
 * Usage: {@code java GroupScenarios SCENARIO PROTOCOL BOOTSTRAP}. Exits non-zero if a check failed.
 *
 * <p>System properties: fjord.consumer.session.ms and fjord.consumer.heartbeat.ms, the broker's
 * group.consumer.session.timeout.ms / group.consumer.heartbeat.interval.ms as the runner
 * started it (defaults: Kafka's 45000 / 5000). The classic protocol's timeouts are client-side.
 */
public final class GroupScenarios {
    static final long CONSUMER_SESSION_MS = Long.getLong("fjord.consumer.session.ms", 45_000);
    static final long CONSUMER_HEARTBEAT_MS = Long.getLong("fjord.consumer.heartbeat.ms", 5_000);
    /** Layout must stay unchanged this long to count as converged. */
    static final long WINDOW_MS = 3_000;

    final String scenario;
    final String protocol;
    final String bootstrap;
    final Checks c;
    final boolean classic;

    GroupScenarios(String scenario, String protocol, String bootstrap) {
        this.scenario = scenario;
        this.protocol = protocol;
        this.bootstrap = bootstrap;
        this.c = new Checks(scenario + "-" + protocol);
        this.classic = GroupSupport.isClassic(protocol);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3 || !(args[1].equals("classic") || args[1].equals("consumer"))) {
            System.err.println("usage: GroupScenarios SCENARIO classic|consumer BOOTSTRAP");
            System.exit(2);
        }
        GroupScenarios s = new GroupScenarios(args[0], args[1], args[2]);
        try (Admin admin = GroupSupport.admin(args[2])) {
            s.run(admin);
        }
        System.exit(s.c.finish());
    }

    String topic() {
        return "grp-" + scenario.replace("offsets-commit", "offsets").replace("offsets-verify", "offsets") + "-" + protocol;
    }

    String group() {
        return "g-" + scenario.replace("offsets-commit", "offsets").replace("offsets-verify", "offsets") + "-" + protocol;
    }

    GroupType expectedType() {
        return classic ? GroupType.CLASSIC : GroupType.CONSUMER;
    }

    /** Time allowed for a group to converge: generous, and longer when heartbeats are slow. */
    long convergeTimeoutMs() {
        return classic ? 60_000 : 60_000 + 4 * CONSUMER_HEARTBEAT_MS;
    }

    void run(Admin admin) throws Exception {
        switch (scenario) {
            case "assign3" -> assign3(admin);
            case "kill" -> kill(admin);
            case "zombie" -> zombie(admin);
            case "commit-resume" -> commitResume(admin);
            case "static" -> staticMembership(admin);
            case "join20" -> join20(admin);
            case "offsets-commit" -> offsetsCommit(admin);
            case "offsets-verify" -> offsetsVerify(admin);
            case "admin" -> adminApis(admin);
            default -> {
                if (scenario.startsWith("assignor-")) {
                    assignor(admin, scenario.substring("assignor-".length()));
                } else {
                    System.err.println("unknown scenario " + scenario);
                    System.exit(2);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // helpers

    Properties props(String clientId) {
        return GroupSupport.consumerProps(bootstrap, group(), protocol, clientId);
    }

    List<GroupSupport.Member> members(int n, String prefix, java.util.function.Function<Integer, Properties> propsFor) {
        List<GroupSupport.Member> ms = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ms.add(new GroupSupport.Member(prefix + i, propsFor.apply(i), List.of(topic())));
        }
        return ms;
    }

    /** Waits for convergence, records it as a check, and returns it. */
    GroupSupport.Convergence converge(String what, List<? extends GroupSupport.MemberView> views, int partitions,
                                      int min, int max, long startNanos) throws InterruptedException {
        GroupSupport.Convergence r = GroupSupport.awaitConverged(views, GroupSupport.partitions(topic(), partitions),
                min, max, true, WINDOW_MS, convergeTimeoutMs(), startNanos, 20);
        c.check(r.ok(), what + (r.ok() ? " (stable layout first reached after " + r.firstMs() + " ms): " + r.detail()
                : " within " + convergeTimeoutMs() + " ms: " + r.detail()));
        return r;
    }

    ConsumerGroupDescription describe(Admin admin, String group) throws Exception {
        return admin.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS).get(group);
    }

    int nodeId(Admin admin) throws Exception {
        return admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).iterator().next().id();
    }

    /**
     * describeConsumerGroups must agree with the clients: state, type, coordinator, and exactly
     * the members (by member id) with the assignments the clients hold.
     */
    void checkDescribe(Admin admin, List<? extends GroupSupport.MemberView> views, GroupState state) throws Exception {
        ConsumerGroupDescription d = describe(admin, group());
        c.checkEq(state, d.groupState(), "describe " + group() + " state");
        c.checkEq(expectedType(), d.type(), "describe " + group() + " type");
        c.checkEq(nodeId(admin), d.coordinator() == null ? null : d.coordinator().id(), "describe " + group() + " coordinator id");
        c.checkEq(views.size(), d.members().size(), "describe " + group() + " member count");
        Map<String, MemberDescription> byId = new HashMap<>();
        for (MemberDescription m : d.members()) byId.put(m.consumerId(), m);
        List<String> problems = new ArrayList<>();
        for (GroupSupport.MemberView v : views) {
            MemberDescription m = byId.get(v.memberId());
            if (m == null) {
                problems.add(v.name() + " (member id " + v.memberId() + ") not described");
                continue;
            }
            Set<TopicPartition> described = m.assignment() == null ? Set.of() : Set.copyOf(m.assignment().topicPartitions());
            if (!described.equals(v.assignment())) {
                problems.add(v.name() + " described with " + GroupSupport.fmt(described) + " but holds "
                        + GroupSupport.fmt(v.assignment()));
            }
        }
        c.check(problems.isEmpty(), "describe " + group() + " members and assignments match the clients"
                + (problems.isEmpty() ? "" : " " + problems));
    }

    /** Polls describeConsumerGroups until the group reaches {@code state} (bounded). */
    ConsumerGroupDescription awaitState(Admin admin, String group, GroupState state, long timeoutMs) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        ConsumerGroupDescription d;
        do {
            d = describe(admin, group);
            if (d.groupState() == state) break;
            Thread.sleep(200);
        } while (System.nanoTime() < deadline);
        return d;
    }

    void checkNoMemberErrors(Collection<GroupSupport.Member> ms) {
        List<String> errs = new ArrayList<>();
        for (GroupSupport.Member m : ms) {
            if (m.error() != null) errs.add(m.name() + ": " + Checks.describe(m.error()));
        }
        c.check(errs.isEmpty(), "no member's poll loop failed" + (errs.isEmpty() ? "" : " " + errs));
    }

    Map<TopicPartition, OffsetAndMetadata> groupOffsets(Admin admin, String group) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
                .get(30, TimeUnit.SECONDS);
        Map<TopicPartition, OffsetAndMetadata> out = new TreeMap<>(GroupSupport::compareTp);
        // Kafka may list a partition with a null value when it has no committed offset.
        m.forEach((k, v) -> {
            if (v != null) out.put(k, v);
        });
        return out;
    }

    static Map<TopicPartition, Long> offsetsOnly(Map<TopicPartition, OffsetAndMetadata> m) {
        Map<TopicPartition, Long> out = new TreeMap<>(GroupSupport::compareTp);
        m.forEach((k, v) -> out.put(k, v.offset()));
        return out;
    }

    // ---------------------------------------------------------------------------------------
    // 1. three members on six partitions

    void assign3(Admin admin) {
        List<GroupSupport.Member> ms = members(3, "m", i -> props("assign3-" + i));
        c.step("create topic " + topic() + " (6 partitions)", () -> GroupSupport.createTopic(admin, topic(), 6, c));
        c.step("3 members subscribe at once and converge", () -> {
            long t0 = System.nanoTime();
            ms.forEach(GroupSupport.Member::start);
            converge("3 members: every partition owned once, 2 each, one generation", ms, 6, 2, 2, t0);
            for (GroupSupport.Member m : ms) {
                c.info(m.name() + " member id " + m.memberId() + ", assigned callbacks " + m.assignedCalls
                        + ", revoked " + m.revokedCalls + ", lost " + m.lostCalls);
            }
        });
        c.step("describeConsumerGroups agrees", () -> checkDescribe(admin, ms, GroupState.STABLE));
        c.step("members leave", () -> {
            GroupSupport.stopAll(ms);
            checkNoMemberErrors(ms);
            ConsumerGroupDescription d = awaitState(admin, group(), GroupState.EMPTY, 15_000);
            c.checkEq(GroupState.EMPTY, d.groupState(), "state after every member closed");
            c.checkEq(0, d.members().size(), "members after every member closed");
        });
    }

    // ---------------------------------------------------------------------------------------
    // 2. a member killed without leaving

    void kill(Admin admin) {
        long sessionMs = classic ? 6_000 : CONSUMER_SESSION_MS;
        long slackMs = classic ? 5_000 : 2 * CONSUMER_HEARTBEAT_MS + 3_000;
        List<GroupSupport.Member> ms = members(2, "m", i -> {
            Properties p = props("kill-" + i);
            if (classic) p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, String.valueOf(sessionMs));
            return p;
        });
        GroupSupport.ChildMember[] child = {null};
        c.step("create topic " + topic() + " (6 partitions)", () -> GroupSupport.createTopic(admin, topic(), 6, c));
        if (classic) {
            c.step("session.timeout.ms below group.min.session.timeout.ms (6000) is refused", () -> {
                Properties p = GroupSupport.consumerProps(bootstrap, group() + "-short", protocol, "kill-short");
                p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "5000");
                GroupSupport.Member m = new GroupSupport.Member("short", p, List.of(topic())).start();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (m.error() == null && m.assignment().isEmpty() && System.nanoTime() < deadline) Thread.sleep(20);
                Throwable e = m.error() == null ? null : Checks.unwrap(m.error());
                c.check(e instanceof org.apache.kafka.common.errors.InvalidSessionTimeoutException,
                        "a 5000 ms session timeout fails the join: " + (e == null
                                ? "no error; member got " + GroupSupport.fmt(m.assignment()) : Checks.describe(e)));
                m.stop().exceptionally(t -> null).get(30, TimeUnit.SECONDS);
            });
        }
        try {
            c.step("a member in a child JVM joins first, then 2 in-JVM members; all converge", () -> {
                long t0 = System.nanoTime();
                child[0] = new GroupSupport.ChildMember("victim", List.of(bootstrap, group(), topic(), protocol, "victim",
                        String.valueOf(classic ? sessionMs : 0), "-", "240"));
                // Joining alone first makes the victim the classic group's leader (Kafka picks the
                // first joiner), so the kill also exercises losing the member that ran the assignor.
                GroupSupport.Convergence alone = GroupSupport.awaitConverged(List.of(child[0]),
                        GroupSupport.partitions(topic(), 6), 6, 6, true, 0, convergeTimeoutMs(), t0, 20);
                c.check(alone.ok(), "child JVM member alone owns all 6 partitions: " + alone.detail());
                ms.forEach(GroupSupport.Member::start);
                List<GroupSupport.MemberView> all = new ArrayList<>(ms);
                all.add(child[0]);
                converge("3 members incl. the child JVM: 2 partitions each, one generation", all, 6, 2, 2, t0);
                checkDescribe(admin, all, GroupState.STABLE);
            });
            c.step("SIGKILL the child; the survivors take over its partitions", () -> {
                String victimId = child[0].memberId();
                Set<TopicPartition> victimParts = child[0].assignment();
                c.info("killing child pid " + child[0].pid() + " (member " + victimId + ", partitions "
                        + GroupSupport.fmt(victimParts) + "); session timeout " + sessionMs + " ms");
                child[0].kill();
                long t0 = System.nanoTime();
                c.check(!child[0].isAlive(), "child JVM is dead after SIGKILL");
                GroupSupport.Convergence r = GroupSupport.awaitConverged(ms, GroupSupport.partitions(topic(), 6), 3, 3,
                        true, 2_000, sessionMs + slackMs + 30_000, t0, 20);
                c.check(r.ok(), "survivors own all 6 partitions, 3 each, one generation"
                        + (r.ok() ? " (" + r.firstMs() + " ms after the kill): " + r.detail() : ": " + r.detail()));
                if (r.ok()) {
                    c.check(r.firstMs() <= sessionMs + slackMs, "takeover within session timeout + slack ("
                            + r.firstMs() + " ms <= " + sessionMs + " + " + slackMs + " ms)");
                }
                ConsumerGroupDescription d = describe(admin, group());
                boolean victimGone = d.members().stream().noneMatch(m -> m.consumerId().equals(victimId));
                c.check(victimGone, "killed member " + victimId + " no longer described" + (victimGone ? "" : " (members "
                        + d.members().stream().map(MemberDescription::consumerId).toList() + ")"));
                checkDescribe(admin, ms, GroupState.STABLE);
                c.checkEq("0/0", ms.get(0).lostCalls + "/" + ms.get(1).lostCalls, "survivors' onPartitionsLost calls");
            });
        } finally {
            if (child[0] != null) child[0].close();
            GroupSupport.stopAll(ms);
        }
        checkNoMemberErrors(ms);
    }

    // ---------------------------------------------------------------------------------------
    // 2b. a member frozen past its session timeout comes back (zombie)

    void zombie(Admin admin) {
        long sessionMs = classic ? 6_000 : CONSUMER_SESSION_MS;
        long slackMs = classic ? 5_000 : 2 * CONSUMER_HEARTBEAT_MS + 3_000;
        List<GroupSupport.Member> ms = members(2, "m", i -> {
            Properties p = props("zombie-" + i);
            if (classic) p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, String.valueOf(sessionMs));
            return p;
        });
        GroupSupport.ChildMember[] child = {null};
        c.step("create topic " + topic() + " (6 partitions)", () -> GroupSupport.createTopic(admin, topic(), 6, c));
        try {
            c.step("2 in-JVM members + 1 member in a child JVM converge", () -> {
                long t0 = System.nanoTime();
                child[0] = new GroupSupport.ChildMember("zombie", List.of(bootstrap, group(), topic(), protocol, "zombie",
                        String.valueOf(classic ? sessionMs : 0), "-", "240"));
                ms.forEach(GroupSupport.Member::start);
                List<GroupSupport.MemberView> all = new ArrayList<>(ms);
                all.add(child[0]);
                converge("3 members incl. the child JVM: 2 partitions each, one generation", all, 6, 2, 2, t0);
            });
            c.step("SIGSTOP the child past its session timeout; the survivors take over", () -> {
                String zombieId = child[0].memberId();
                c.info("stopping child pid " + child[0].pid() + " (member " + zombieId + ", generation "
                        + child[0].generation() + ", partitions " + GroupSupport.fmt(child[0].assignment()) + ")");
                child[0].signal("STOP");
                long t0 = System.nanoTime();
                GroupSupport.Convergence r = GroupSupport.awaitConverged(ms, GroupSupport.partitions(topic(), 6), 3, 3,
                        true, 2_000, sessionMs + slackMs + 30_000, t0, 20);
                c.check(r.ok(), "survivors own all 6 partitions, 3 each, one generation"
                        + (r.ok() ? " (" + r.firstMs() + " ms after SIGSTOP): " + r.detail() : ": " + r.detail()));
                if (r.ok()) {
                    c.check(r.firstMs() <= sessionMs + slackMs, "takeover within session timeout + slack ("
                            + r.firstMs() + " ms <= " + sessionMs + " + " + slackMs + " ms)");
                }
                ConsumerGroupDescription d = describe(admin, group());
                c.check(d.members().stream().noneMatch(m -> m.consumerId().equals(zombieId)),
                        "frozen member " + zombieId + " removed from the group");
            });
            c.step("SIGCONT: the zombie is fenced, gives up its old partitions and rejoins", () -> {
                int oldGen = child[0].generation();
                int survivorsGen = ms.get(0).generation();
                child[0].signal("CONT");
                long t0 = System.nanoTime();
                List<GroupSupport.MemberView> all = new ArrayList<>(ms);
                all.add(child[0]);
                GroupSupport.Convergence r = converge("3 members again after the zombie rejoined: 2 each, one generation",
                        all, 6, 2, 2, t0);
                c.check(child[0].generation() > survivorsGen, "zombie is on a newer generation than the survivors had ("
                        + child[0].generation() + " > " + survivorsGen + "; it was frozen at " + oldGen + ")");
                if (r.ok()) checkDescribe(admin, all, GroupState.STABLE);
            });
        } finally {
            if (child[0] != null) child[0].close();
            GroupSupport.stopAll(ms);
        }
        checkNoMemberErrors(ms);
    }

    // ---------------------------------------------------------------------------------------
    // 3. commit part-way, resume with new members

    record Rec(TopicPartition tp, long offset, String key, String value) {}

    void commitResume(Admin admin) {
        int parts = 6;
        int per = 500;
        int total = parts * per;
        int[] counts = new int[parts];
        java.util.Arrays.fill(counts, per);
        c.step("create topic " + topic() + " and produce " + total + " keyed records", () -> {
            GroupSupport.createTopic(admin, topic(), parts, c);
            GroupSupport.checkProduced(c, topic(), counts, GroupSupport.produce(bootstrap, topic(), counts));
        });

        ConcurrentLinkedQueue<Rec> readA = new ConcurrentLinkedQueue<>();
        Map<TopicPartition, Long> committedA = new ConcurrentHashMap<>();
        AtomicInteger commitFailures = new AtomicInteger();
        AtomicInteger consumedA = new AtomicInteger();
        Map<TopicPartition, OffsetAndMetadata> adminAfterA = new TreeMap<>(GroupSupport::compareTp);

        c.step("phase A: 2 members consume about half, commitSync after every batch, close", () -> {
            BiConsumer<KafkaConsumer<String, String>, ConsumerRecords<String, String>> handler = (consumer, recs) -> {
                if (consumedA.get() >= total / 2) return; // stop processing: the rest is never committed
                Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                for (ConsumerRecord<String, String> r : recs) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    readA.add(new Rec(tp, r.offset(), r.key(), r.value()));
                    consumedA.incrementAndGet();
                    offs.put(tp, new OffsetAndMetadata(r.offset() + 1));
                }
                try {
                    consumer.commitSync(offs, Duration.ofSeconds(15));
                    offs.forEach((tp, o) -> committedA.put(tp, o.offset()));
                } catch (Exception e) {
                    commitFailures.incrementAndGet();
                    System.out.println("  info  commitSync failed: " + Checks.describe(e));
                }
            };
            List<GroupSupport.Member> ms = members(2, "a", i -> {
                Properties p = props("resume-a" + i);
                p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
                return p;
            });
            ms.forEach(m -> m.hold(true).onRecords(handler).start());
            try {
                converge("phase A group converged before consuming (3 partitions each)", ms, parts, 3, 3, System.nanoTime());
                ms.forEach(GroupSupport.Member::release);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (consumedA.get() < total / 2 && System.nanoTime() < deadline) Thread.sleep(50);
                c.check(consumedA.get() >= total / 2, "phase A consumed " + consumedA.get() + " of " + total + " records");
            } finally {
                GroupSupport.stopAll(ms);
            }
            checkNoMemberErrors(ms);
            c.checkEq(0, commitFailures.get(), "phase A commitSync failures");
            adminAfterA.putAll(groupOffsets(admin, group()));
            Map<TopicPartition, Long> expected = new TreeMap<>(GroupSupport::compareTp);
            expected.putAll(committedA);
            c.checkEq(expected, offsetsOnly(adminAfterA), "listConsumerGroupOffsets after phase A equals the last successful commits");
        });

        c.step("phase A read every record below its partition's commit exactly once", () -> {
            Map<TopicPartition, List<Long>> byTp = new TreeMap<>(GroupSupport::compareTp);
            for (Rec r : readA) byTp.computeIfAbsent(r.tp(), k -> new ArrayList<>()).add(r.offset());
            List<String> problems = new ArrayList<>();
            int beyond = 0;
            for (TopicPartition tp : GroupSupport.partitions(topic(), parts)) {
                long committed = committedA.getOrDefault(tp, 0L);
                List<Long> offs = byTp.getOrDefault(tp, List.of());
                Set<Long> seen = new HashSet<>();
                for (long o : offs) {
                    if (!seen.add(o)) problems.add(tp + " offset " + o + " read twice");
                    if (o >= committed) beyond++;
                }
                for (long o = 0; o < committed; o++) {
                    if (!seen.contains(o)) {
                        problems.add(tp + " offset " + o + " committed past but never read");
                        break;
                    }
                }
            }
            c.check(problems.isEmpty(), "phase A reads are gap-free and duplicate-free below the commits"
                    + (problems.isEmpty() ? "" : " " + problems.subList(0, Math.min(5, problems.size()))));
            Map<TopicPartition, Long> sorted = new TreeMap<>(GroupSupport::compareTp);
            sorted.putAll(committedA);
            c.info("phase A: " + readA.size() + " records read, " + beyond + " read past the last commit; committed " + sorted);
        });

        ConcurrentLinkedQueue<Rec> readB = new ConcurrentLinkedQueue<>();
        c.step("phase B: 3 new members in the same group resume and read to the end", () -> {
            BiConsumer<KafkaConsumer<String, String>, ConsumerRecords<String, String>> handler = (consumer, recs) -> {
                Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                for (ConsumerRecord<String, String> r : recs) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    readB.add(new Rec(tp, r.offset(), r.key(), r.value()));
                    offs.put(tp, new OffsetAndMetadata(r.offset() + 1));
                }
                try {
                    consumer.commitSync(offs, Duration.ofSeconds(15));
                } catch (Exception e) {
                    System.out.println("  info  phase B commitSync failed: " + Checks.describe(e));
                }
            };
            List<GroupSupport.Member> ms = members(3, "b", i -> props("resume-b" + i));
            ms.forEach(m -> m.hold(true).onRecords(handler).start());
            long need = total - committedA.values().stream().mapToLong(Long::longValue).sum();
            try {
                converge("phase B group converged before consuming (2 partitions each)", ms, parts, 2, 2, System.nanoTime());
                ms.forEach(GroupSupport.Member::release);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (readB.size() < need && System.nanoTime() < deadline) Thread.sleep(50);
                Thread.sleep(2_000); // anything read twice or past the end shows up now
            } finally {
                GroupSupport.stopAll(ms);
            }
            checkNoMemberErrors(ms);
            c.checkEq(need, (long) readB.size(), "phase B record count (total minus committed)");
        });

        c.step("phase B started exactly at the commits; A-below-commit + B == everything produced", () -> {
            Map<TopicPartition, Long> firstB = new TreeMap<>(GroupSupport::compareTp);
            Map<String, Rec> union = new HashMap<>();
            List<String> problems = new ArrayList<>();
            Set<String> seenB = new HashSet<>();
            for (Rec r : readB) {
                firstB.merge(r.tp(), r.offset(), Math::min);
                if (!seenB.add(r.tp() + "@" + r.offset())) problems.add("phase B read " + r.tp() + "@" + r.offset() + " twice");
                union.put(r.tp() + "@" + r.offset(), r);
            }
            for (Rec r : readA) {
                if (r.offset() < committedA.getOrDefault(r.tp(), 0L)) union.put(r.tp() + "@" + r.offset(), r);
            }
            for (TopicPartition tp : GroupSupport.partitions(topic(), parts)) {
                long committed = committedA.getOrDefault(tp, 0L);
                Long first = firstB.get(tp);
                if (committed < per && (first == null || first != committed)) {
                    problems.add(tp + " phase B started at " + first + ", committed offset was " + committed);
                }
                if (committed >= per && first != null) problems.add(tp + " fully committed but phase B read from " + first);
            }
            int missing = 0, wrong = 0;
            String firstMissing = null, firstWrong = null;
            for (int p = 0; p < parts; p++) {
                for (int i = 0; i < per; i++) {
                    Rec r = union.get(new TopicPartition(topic(), p) + "@" + i);
                    String k = GroupSupport.key(topic(), p, i);
                    if (r == null) {
                        missing++;
                        if (firstMissing == null) firstMissing = k;
                    } else if (!k.equals(r.key()) || !("v-" + k).equals(r.value())) {
                        wrong++;
                        if (firstWrong == null) firstWrong = k + " read as " + r.key() + "=" + r.value();
                    }
                }
            }
            c.check(problems.isEmpty(), "phase B began at each partition's committed offset, nothing re-read"
                    + (problems.isEmpty() ? "" : " " + problems.subList(0, Math.min(6, problems.size()))));
            c.check(missing == 0, "no record lost across the two phases"
                    + (missing == 0 ? " (" + union.size() + " distinct records)" : " (" + missing + " missing, first " + firstMissing + ")"));
            c.check(wrong == 0, "every record's key and value match what was produced at its offset"
                    + (wrong == 0 ? "" : " (" + wrong + " wrong, first " + firstWrong + ")"));
            Map<TopicPartition, Long> end = new TreeMap<>(GroupSupport::compareTp);
            for (TopicPartition tp : GroupSupport.partitions(topic(), parts)) end.put(tp, (long) per);
            c.checkEq(end, offsetsOnly(groupOffsets(admin, group())), "committed offsets after phase B are the log end offsets");
        });
    }

    // ---------------------------------------------------------------------------------------
    // 4. static membership (classic)

    void staticMembership(Admin admin) {
        if (!classic) {
            c.info("static membership is exercised with the classic protocol only");
            return;
        }
        int sessionMs = 30_000;
        java.util.function.Function<Integer, Properties> staticProps = i -> {
            Properties p = props("static-" + i);
            p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "static-" + i);
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, String.valueOf(sessionMs));
            return p;
        };
        List<GroupSupport.Member> ms = new ArrayList<>(members(3, "s", staticProps));
        c.step("create topic " + topic() + " (6 partitions)", () -> GroupSupport.createTopic(admin, topic(), 6, c));
        try {
            c.step("3 static members converge (static-2 first, so it is the leader)", () -> {
                long t0 = System.nanoTime();
                // static-2 joins alone first: it becomes the leader (Kafka picks the first joiner)
                // and rejoins once more when the others arrive, so its last JoinGroup carries a
                // generation id and differs byte-wise from a restarted consumer's. Kafka does not
                // care (KIP-345: no rebalance unless the group's selected protocol changes).
                ms.get(2).start();
                GroupSupport.Convergence alone = GroupSupport.awaitConverged(List.of(ms.get(2)),
                        GroupSupport.partitions(topic(), 6), 6, 6, true, 0, convergeTimeoutMs(), t0, 20);
                c.check(alone.ok(), "static-2 alone owns all 6 partitions: " + alone.detail());
                ms.get(0).start();
                ms.get(1).start();
                converge("3 static members: 2 partitions each, one generation", ms, 6, 2, 2, t0);
                checkDescribe(admin, ms, GroupState.STABLE);
                ConsumerGroupDescription d = describe(admin, group());
                Set<String> ids = new TreeSet<>();
                for (MemberDescription m : d.members()) m.groupInstanceId().ifPresent(ids::add);
                c.checkEq(Set.of("static-0", "static-1", "static-2"), ids, "described group.instance.ids");
            });
            c.step("restart static-2 (the leader) within its session timeout", () -> {
                int gen = ms.get(0).generation();
                Map<String, Set<TopicPartition>> before = new HashMap<>();
                Map<String, int[]> callbacks = new HashMap<>();
                for (GroupSupport.Member m : ms) {
                    before.put(m.name(), m.assignment());
                    callbacks.put(m.name(), new int[] {m.assignedCalls.get(), m.revokedCalls.get(), m.lostCalls.get()});
                }
                GroupSupport.Member old = ms.get(2);
                String oldMemberId = old.memberId();
                // A plain close(): static members do not send LeaveGroup.
                old.stop().get(30, TimeUnit.SECONDS);
                Thread.sleep(1_000);
                ConsumerGroupDescription mid = describe(admin, group());
                c.checkEq(3, mid.members().size(), "static member still described while it is away");
                c.info("state while static-2 is away: " + mid.groupState());

                long t0 = System.nanoTime();
                GroupSupport.Member fresh = new GroupSupport.Member("s2'", staticProps.apply(2), List.of(topic())).start();
                ms.set(2, fresh);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (fresh.assignment().isEmpty() && System.nanoTime() < deadline) Thread.sleep(10);
                c.info("restarted member got " + GroupSupport.fmt(fresh.assignment()) + " after "
                        + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms, member id " + fresh.memberId()
                        + " (was " + oldMemberId + ")");
                // Let any rebalance the rejoin might (wrongly) trigger play out before judging.
                Thread.sleep(WINDOW_MS + 2_000);
                c.checkEq(before.get("s2"), fresh.assignment(), "restarted static member's partitions");
                c.checkEq(gen, fresh.generation(), "restarted static member's generation (unchanged)");
                for (int i = 0; i < 2; i++) {
                    GroupSupport.Member m = ms.get(i);
                    int[] cb = callbacks.get(m.name());
                    c.checkEq(before.get(m.name()), m.assignment(), m.name() + " partitions unchanged");
                    c.checkEq(gen, m.generation(), m.name() + " generation unchanged");
                    String now = m.assignedCalls.get() + "/" + m.revokedCalls.get() + "/" + m.lostCalls.get();
                    c.checkEq(cb[0] + "/" + cb[1] + "/" + cb[2], now, m.name() + " assigned/revoked/lost callback counts unchanged");
                }
                checkDescribe(admin, ms, GroupState.STABLE);
            });
            c.step("a second consumer with static-0's group.instance.id fences the running one", () -> {
                int gen = ms.get(1).generation();
                Set<TopicPartition> s0Parts = ms.get(0).assignment();
                int[] s1cb = {ms.get(1).assignedCalls.get(), ms.get(1).revokedCalls.get()};
                GroupSupport.Member old = ms.get(0);
                GroupSupport.Member dup = new GroupSupport.Member("s0'", staticProps.apply(0), List.of(topic())).start();
                ms.set(0, dup);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while ((dup.assignment().isEmpty() || old.error() == null) && System.nanoTime() < deadline) Thread.sleep(20);
                Throwable fenced = old.error() == null ? null : Checks.unwrap(old.error());
                c.check(fenced instanceof org.apache.kafka.common.errors.FencedInstanceIdException,
                        "the older static-0 consumer is fenced: "
                                + (fenced == null ? "no error within 20 s" : Checks.describe(fenced)));
                Thread.sleep(WINDOW_MS);
                c.checkEq(s0Parts, dup.assignment(), "new static-0 consumer's partitions (static-0's)");
                c.checkEq(gen, dup.generation(), "new static-0 consumer's generation (unchanged)");
                c.checkEq(gen, ms.get(1).generation(), "s1 generation unchanged");
                c.checkEq(s1cb[0] + "/" + s1cb[1], ms.get(1).assignedCalls.get() + "/" + ms.get(1).revokedCalls.get(),
                        "s1 assigned/revoked callback counts unchanged");
                old.stop(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(5))).exceptionally(t -> null)
                        .get(30, TimeUnit.SECONDS);
                checkDescribe(admin, ms, GroupState.STABLE);
            });
        } finally {
            // Static members do not leave on close; remove them explicitly so the group empties.
            GroupSupport.stopAll(ms, org.apache.kafka.clients.consumer.CloseOptions
                    .groupMembershipOperation(org.apache.kafka.clients.consumer.CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                    .withTimeout(Duration.ofSeconds(10)));
        }
        checkNoMemberErrors(ms);
        c.step("static members left explicitly: group empties", () -> {
            ConsumerGroupDescription d = awaitState(admin, group(), GroupState.EMPTY, 15_000);
            c.checkEq(GroupState.EMPTY, d.groupState(), "state after LEAVE_GROUP closes");
        });
    }

    // ---------------------------------------------------------------------------------------
    // 5. twenty members at once

    void join20(Admin admin) {
        int n = 20;
        int parts = 24;
        List<GroupSupport.Member> ms = members(n, "j", i -> props("join20-" + i));
        c.step("create topic " + topic() + " (" + parts + " partitions)", () -> GroupSupport.createTopic(admin, topic(), parts, c));
        try {
            c.step(n + " members subscribe at once and converge", () -> {
                int[] b = GroupSupport.balanced(parts, n);
                long t0 = System.nanoTime();
                ms.forEach(GroupSupport.Member::start);
                GroupSupport.Convergence r = converge(n + " members: each partition owned once, " + b[0] + ".." + b[1]
                        + " each, one generation", ms, parts, b[0], b[1], t0);
                if (r.ok()) c.info("converged after " + r.firstMs() + " ms at generation " + ms.get(0).generation());
                checkDescribe(admin, ms, GroupState.STABLE);
            });
        } finally {
            GroupSupport.stopAll(ms);
        }
        checkNoMemberErrors(ms);
    }

    // ---------------------------------------------------------------------------------------
    // 6. offsets across a broker restart

    static final int OFFSETS_PARTS = 6;

    static int offsetsCount(int p) {
        return 100 + 10 * p;
    }

    static long offsetsCommitted(int p) {
        return 37 + p;
    }

    Map<TopicPartition, OffsetAndMetadata> expectedOffsets() {
        Map<TopicPartition, OffsetAndMetadata> m = new TreeMap<>(GroupSupport::compareTp);
        for (int p = 0; p < OFFSETS_PARTS; p++) {
            // Leader epoch 0: a single broker that never changed leadership; the consumer stores it
            // so a resumed fetch can be validated against the log (KIP-320).
            m.put(new TopicPartition(topic(), p), new OffsetAndMetadata(offsetsCommitted(p), Optional.of(0), "restart-" + p));
        }
        return m;
    }

    void checkOffsetsAndGroup(Admin admin, String when) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> got = groupOffsets(admin, group());
        Map<TopicPartition, String> exp = new TreeMap<>(GroupSupport::compareTp);
        Map<TopicPartition, String> act = new TreeMap<>(GroupSupport::compareTp);
        expectedOffsets().forEach((k, v) -> exp.put(k, v.offset() + "/" + v.metadata() + "/epoch " + v.leaderEpoch()));
        got.forEach((k, v) -> act.put(k, v.offset() + "/" + v.metadata() + "/epoch " + v.leaderEpoch()));
        c.checkEq(exp, act, "listConsumerGroupOffsets " + when + " (offset/metadata/leader epoch)");
        ConsumerGroupDescription d = awaitState(admin, group(), GroupState.EMPTY, 15_000);
        c.checkEq(GroupState.EMPTY, d.groupState(), "group state " + when);
        c.checkEq(expectedType(), d.type(), "group type " + when);
        Collection<GroupListing> listed = admin.listGroups(ListGroupsOptions.forConsumerGroups()).all().get(30, TimeUnit.SECONDS);
        c.check(listed.stream().anyMatch(g -> g.groupId().equals(group())), "listGroups lists " + group() + " " + when);
    }

    void offsetsCommit(Admin admin) {
        int[] counts = new int[OFFSETS_PARTS];
        for (int p = 0; p < OFFSETS_PARTS; p++) counts[p] = offsetsCount(p);
        c.step("create topic " + topic() + " and produce", () -> {
            GroupSupport.createTopic(admin, topic(), OFFSETS_PARTS, c);
            GroupSupport.checkProduced(c, topic(), counts, GroupSupport.produce(bootstrap, topic(), counts));
        });
        c.step("a member commits known offsets with metadata, then leaves", () -> {
            GroupSupport.Member m = new GroupSupport.Member("o", props("offsets-commit"), List.of(topic())).start();
            try {
                converge("single member owns all partitions", List.of(m), OFFSETS_PARTS, OFFSETS_PARTS, OFFSETS_PARTS, System.nanoTime());
                m.call(consumer -> {
                    consumer.commitSync(expectedOffsets(), Duration.ofSeconds(15));
                    return null;
                }, 30_000);
                c.check(true, "commitSync of " + OFFSETS_PARTS + " partitions succeeded");
            } finally {
                GroupSupport.stopAll(List.of(m));
            }
            checkNoMemberErrors(List.of(m));
        });
        c.step("before the restart", () -> checkOffsetsAndGroup(admin, "before restart"));
    }

    void offsetsVerify(Admin admin) {
        c.step("after the restart: AdminClient view", () -> checkOffsetsAndGroup(admin, "after restart"));
        c.step("after the restart: a member resumes exactly at the committed offsets", () -> {
            ConcurrentLinkedQueue<Rec> read = new ConcurrentLinkedQueue<>();
            GroupSupport.Member m = new GroupSupport.Member("o", props("offsets-verify"), List.of(topic()))
                    .onRecords((consumer, recs) -> {
                        for (ConsumerRecord<String, String> r : recs) {
                            read.add(new Rec(new TopicPartition(r.topic(), r.partition()), r.offset(), r.key(), r.value()));
                        }
                    }).start();
            long need = 0;
            for (int p = 0; p < OFFSETS_PARTS; p++) need += offsetsCount(p) - offsetsCommitted(p);
            try {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (read.size() < need && System.nanoTime() < deadline) Thread.sleep(50);
                Thread.sleep(1_500);
            } finally {
                GroupSupport.stopAll(List.of(m));
            }
            checkNoMemberErrors(List.of(m));
            c.checkEq(need, (long) read.size(), "records read after resuming (end - committed, summed)");
            List<String> problems = new ArrayList<>();
            Map<TopicPartition, Long> first = new TreeMap<>(GroupSupport::compareTp);
            Set<String> seen = new HashSet<>();
            for (Rec r : read) {
                first.merge(r.tp(), r.offset(), Math::min);
                String k = GroupSupport.key(r.tp().topic(), r.tp().partition(), (int) r.offset());
                if (!k.equals(r.key()) || !("v-" + k).equals(r.value())) problems.add(r.tp() + "@" + r.offset() + " is " + r.key());
                if (!seen.add(r.tp() + "@" + r.offset())) problems.add(r.tp() + "@" + r.offset() + " read twice");
            }
            for (int p = 0; p < OFFSETS_PARTS; p++) {
                TopicPartition tp = new TopicPartition(topic(), p);
                if (!Long.valueOf(offsetsCommitted(p)).equals(first.get(tp))) {
                    problems.add(tp + " resumed at " + first.get(tp) + ", committed " + offsetsCommitted(p));
                }
            }
            c.check(problems.isEmpty(), "resumed at the committed offsets, records intact, none twice"
                    + (problems.isEmpty() ? "" : " " + problems.subList(0, Math.min(6, problems.size()))));
        });
    }

    // ---------------------------------------------------------------------------------------
    // 7. AdminClient group APIs

    static Optional<LegacyListing> find(Collection<LegacyListing> ls, String group) {
        return ls.stream().filter(l -> l.groupId().equals(group)).findFirst();
    }

    static List<String> ids(Collection<LegacyListing> ls) {
        return ls.stream().map(LegacyListing::groupId).toList();
    }

    void adminApis(Admin admin) {
        String active = "g-admin-active-" + protocol;
        String empty = "g-admin-empty-" + protocol;
        int parts = 3;
        int per = 30;
        List<GroupSupport.Member> activeMembers = new ArrayList<>();
        GroupType other = classic ? GroupType.CONSUMER : GroupType.CLASSIC;

        c.step("setup: topic, an empty group with commits, an active group of 2", () -> {
            GroupSupport.createTopic(admin, topic(), parts, c);
            GroupSupport.produce(bootstrap, topic(), new int[] {per, per, per});
            GroupSupport.Member e = new GroupSupport.Member("e0",
                    GroupSupport.consumerProps(bootstrap, empty, protocol, "admin-e0"), List.of(topic())).start();
            try {
                converge("empty-to-be group's only member owns all 3 partitions", List.of(e), parts, parts, parts, System.nanoTime());
                Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                for (int p = 0; p < parts; p++) offs.put(new TopicPartition(topic(), p), new OffsetAndMetadata(10 + p));
                e.call(consumer -> {
                    consumer.commitSync(offs, Duration.ofSeconds(15));
                    return null;
                }, 30_000);
            } finally {
                GroupSupport.stopAll(List.of(e));
            }
            for (int i = 0; i < 2; i++) {
                activeMembers.add(new GroupSupport.Member("a" + i,
                        GroupSupport.consumerProps(bootstrap, active, protocol, "admin-a" + i), List.of(topic())).start());
            }
            GroupSupport.Convergence r = GroupSupport.awaitConverged(activeMembers, GroupSupport.partitions(topic(), parts),
                    1, 2, true, WINDOW_MS, convergeTimeoutMs(), System.nanoTime(), 20);
            c.check(r.ok(), "active group converged: " + r.detail());
            // Each active member commits offset 30 (the end) with metadata for the partitions it owns.
            for (GroupSupport.Member m : activeMembers) {
                m.call(consumer -> {
                    Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                    for (TopicPartition tp : consumer.assignment()) offs.put(tp, new OffsetAndMetadata(per, "active"));
                    consumer.commitSync(offs, Duration.ofSeconds(15));
                    return null;
                }, 30_000);
            }
            ConsumerGroupDescription d = awaitState(admin, empty, GroupState.EMPTY, 15_000);
            c.checkEq(GroupState.EMPTY, d.groupState(), empty + " is EMPTY after its member left");
        });

        c.step("listConsumerGroups (deprecated API, still used by most tools)", () -> {
            Collection<LegacyListing> all = LegacyListing.list(admin, null, null);
            Optional<LegacyListing> a = find(all, active), e = find(all, empty);
            c.check(a.isPresent() && e.isPresent(), "listConsumerGroups contains " + active + " and " + empty
                    + " (got " + ids(all) + ")");
            if (a.isPresent()) {
                c.checkEq(Optional.of(GroupState.STABLE), a.get().groupState(), active + " listed state");
                c.checkEq(Optional.of(expectedType()), a.get().type(), active + " listed type");
                c.check(!a.get().isSimpleConsumerGroup(), active + " is not a simple consumer group");
            }
            if (e.isPresent()) {
                c.checkEq(Optional.of(GroupState.EMPTY), e.get().groupState(), empty + " listed state");
                c.checkEq(Optional.of(expectedType()), e.get().type(), empty + " listed type");
            }
            Collection<LegacyListing> stable = LegacyListing.list(admin, Set.of(GroupState.STABLE), null);
            c.check(find(stable, active).isPresent() && find(stable, empty).isEmpty(),
                    "inGroupStates(STABLE) lists " + active + " but not " + empty + " (got "
                            + ids(stable) + ")");
            Collection<LegacyListing> emp = LegacyListing.list(admin, Set.of(GroupState.EMPTY), null);
            c.check(find(emp, empty).isPresent() && find(emp, active).isEmpty(),
                    "inGroupStates(EMPTY) lists " + empty + " but not " + active + " (got "
                            + ids(emp) + ")");
            Collection<LegacyListing> typed = LegacyListing.list(admin, null, Set.of(expectedType()));
            c.check(find(typed, active).isPresent() && find(typed, empty).isPresent(),
                    "withTypes(" + expectedType() + ") lists both groups (got " + ids(typed) + ")");
            Collection<LegacyListing> otherTyped = LegacyListing.list(admin, null, Set.of(other));
            c.check(find(otherTyped, active).isEmpty() && find(otherTyped, empty).isEmpty(),
                    "withTypes(" + other + ") lists neither (got " + ids(otherTyped) + ")");
        });

        c.step("listGroups (the 4.x API)", () -> {
            Collection<GroupListing> gs = admin.listGroups(ListGroupsOptions.forConsumerGroups()).all().get(30, TimeUnit.SECONDS);
            for (String g : List.of(active, empty)) {
                Optional<GroupListing> l = gs.stream().filter(x -> x.groupId().equals(g)).findFirst();
                if (!c.check(l.isPresent(), "listGroups(forConsumerGroups) lists " + g)) continue;
                c.checkEq(Optional.of(expectedType()), l.get().type(), g + " type");
                c.checkEq("consumer", l.get().protocol(), g + " protocol type");
            }
            Collection<GroupListing> stable = admin.listGroups(new ListGroupsOptions().inGroupStates(Set.of(GroupState.STABLE)))
                    .all().get(30, TimeUnit.SECONDS);
            c.check(stable.stream().anyMatch(x -> x.groupId().equals(active)) && stable.stream().noneMatch(x -> x.groupId().equals(empty)),
                    "listGroups(inGroupStates STABLE) lists " + active + " only of the two");
        });

        c.step("describeConsumerGroups", () -> {
            Map<String, ConsumerGroupDescription> ds = admin.describeConsumerGroups(List.of(active, empty)).all().get(30, TimeUnit.SECONDS);
            int node = nodeId(admin);
            ConsumerGroupDescription a = ds.get(active);
            c.checkEq(GroupState.STABLE, a.groupState(), active + " state");
            c.checkEq(expectedType(), a.type(), active + " type");
            c.checkEq(node, a.coordinator() == null ? null : a.coordinator().id(), active + " coordinator");
            c.check(!a.isSimpleConsumerGroup(), active + " not simple");
            c.check(a.partitionAssignor() != null && !a.partitionAssignor().isEmpty(), active + " names its assignor ("
                    + a.partitionAssignor() + ")");
            c.checkEq(2, a.members().size(), active + " member count");
            Set<TopicPartition> union = new TreeSet<>(GroupSupport::compareTp);
            int sum = 0;
            List<String> memberProblems = new ArrayList<>();
            Set<String> clientIds = new TreeSet<>();
            for (MemberDescription m : a.members()) {
                Set<TopicPartition> tps = m.assignment().topicPartitions();
                union.addAll(tps);
                sum += tps.size();
                clientIds.add(m.clientId());
                if (m.consumerId() == null || m.consumerId().isEmpty()) memberProblems.add("empty member id");
                if (m.host() == null || m.host().isEmpty()) memberProblems.add(m.consumerId() + " empty host");
                if (!classic) {
                    if (m.memberEpoch().isEmpty()) memberProblems.add(m.consumerId() + " no member epoch");
                    if (m.targetAssignment().isEmpty()) memberProblems.add(m.consumerId() + " no target assignment");
                    else if (!m.targetAssignment().get().topicPartitions().equals(tps)) {
                        memberProblems.add(m.consumerId() + " target " + m.targetAssignment().get() + " != current " + tps);
                    }
                }
            }
            c.check(union.equals(GroupSupport.partitions(topic(), parts)) && sum == parts,
                    active + " members' assignments cover the 3 partitions once (" + union + ", " + sum + " total)");
            c.checkEq(Set.of("admin-a0", "admin-a1"), clientIds, active + " member client ids");
            c.check(memberProblems.isEmpty(), active + " member details" + (memberProblems.isEmpty() ? "" : " " + memberProblems));
            if (!classic) {
                c.check(a.groupEpoch().isPresent() && a.targetAssignmentEpoch().isPresent(), active + " group epoch "
                        + a.groupEpoch() + ", target assignment epoch " + a.targetAssignmentEpoch());
            }
            c.info(active + ": " + a);
            ConsumerGroupDescription e = ds.get(empty);
            c.checkEq(GroupState.EMPTY, e.groupState(), empty + " state");
            c.checkEq(expectedType(), e.type(), empty + " type");
            c.checkEq(0, e.members().size(), empty + " member count");
            try {
                ConsumerGroupDescription none = describe(admin, "g-admin-no-such-group");
                c.info("describing an unknown group returned state " + none.groupState() + ", type " + none.type());
            } catch (Exception ex) {
                c.info("describing an unknown group threw " + Checks.describe(ex));
            }
        });

        c.step("listConsumerGroupOffsets", () -> {
            Map<TopicPartition, Long> exp = new TreeMap<>(GroupSupport::compareTp);
            for (int p = 0; p < parts; p++) exp.put(new TopicPartition(topic(), p), 10L + p);
            c.checkEq(exp, offsetsOnly(groupOffsets(admin, empty)), empty + " offsets");
            TopicPartition p1 = new TopicPartition(topic(), 1);
            Map<TopicPartition, OffsetAndMetadata> one = admin.listConsumerGroupOffsets(
                    Map.of(empty, new ListConsumerGroupOffsetsSpec().topicPartitions(List.of(p1))))
                    .partitionsToOffsetAndMetadata(empty).get(30, TimeUnit.SECONDS);
            c.checkEq(Map.of(p1, 11L), offsetsOnly(one), empty + " offsets for just " + p1);
            Map<TopicPartition, OffsetAndMetadata> act = groupOffsets(admin, active);
            Map<TopicPartition, String> shown = new TreeMap<>(GroupSupport::compareTp);
            act.forEach((k, v) -> shown.put(k, v.offset() + "/" + v.metadata()));
            Map<TopicPartition, String> expAct = new TreeMap<>(GroupSupport::compareTp);
            for (int p = 0; p < parts; p++) expAct.put(new TopicPartition(topic(), p), per + "/active");
            c.checkEq(expAct, shown, active + " offsets/metadata committed by its members");
        });

        c.step("alterConsumerGroupOffsets", () -> {
            TopicPartition p0 = new TopicPartition(topic(), 0), p2 = new TopicPartition(topic(), 2);
            admin.alterConsumerGroupOffsets(empty, Map.of(p0, new OffsetAndMetadata(5, "altered"), p2, new OffsetAndMetadata(20)))
                    .all().get(30, TimeUnit.SECONDS);
            c.check(true, "altering " + empty + " (EMPTY) succeeded");
            Map<TopicPartition, OffsetAndMetadata> got = groupOffsets(admin, empty);
            Map<TopicPartition, Long> exp = new TreeMap<>(GroupSupport::compareTp);
            exp.put(p0, 5L);
            exp.put(new TopicPartition(topic(), 1), 11L);
            exp.put(p2, 20L);
            c.checkEq(exp, offsetsOnly(got), empty + " offsets after alter");
            c.checkEq("altered", got.containsKey(p0) ? got.get(p0).metadata() : null, empty + " " + p0 + " metadata after alter");
            c.expectThrows(UnknownMemberIdException.class, "altering offsets of the active group " + active,
                    () -> admin.alterConsumerGroupOffsets(active, Map.of(p0, new OffsetAndMetadata(1))).all().get(30, TimeUnit.SECONDS));
            Map<TopicPartition, OffsetAndMetadata> after = groupOffsets(admin, active);
            c.checkEq((long) per, after.containsKey(p0) ? after.get(p0).offset() : null, active + " " + p0 + " offset unchanged by the refused alter");
        });

        c.step("deleteConsumerGroupOffsets", () -> {
            TopicPartition p1 = new TopicPartition(topic(), 1);
            admin.deleteConsumerGroupOffsets(empty, Set.of(p1)).all().get(30, TimeUnit.SECONDS);
            c.check(true, "deleting " + empty + " offsets for " + p1 + " succeeded");
            Set<TopicPartition> left = groupOffsets(admin, empty).keySet();
            c.check(!left.contains(p1) && left.size() == 2, empty + " offsets no longer include " + p1 + " (left " + left + ")");
            c.expectThrows(GroupSubscribedToTopicException.class, "deleting offsets of a topic " + active + " is subscribed to",
                    () -> admin.deleteConsumerGroupOffsets(active, Set.of(p1)).all().get(30, TimeUnit.SECONDS));
            c.checkEq(parts, groupOffsets(admin, active).size(), active + " still has its " + parts + " offsets");
        });

        c.step("deleteConsumerGroups", () -> {
            c.expectThrows(GroupNotEmptyException.class, "deleting the active group " + active,
                    () -> admin.deleteConsumerGroups(List.of(active)).all().get(30, TimeUnit.SECONDS));
            admin.deleteConsumerGroups(List.of(empty)).all().get(30, TimeUnit.SECONDS);
            c.check(true, "deleting the empty group " + empty + " succeeded");
            c.check(find(LegacyListing.list(admin, null, null), empty).isEmpty(), empty + " no longer listed");
            Map<TopicPartition, OffsetAndMetadata> gone = groupOffsets(admin, empty);
            c.check(gone.isEmpty(), empty + " has no offsets after deletion (got " + gone + ")");
            c.expectThrows(GroupIdNotFoundException.class, "deleting a group that does not exist",
                    () -> admin.deleteConsumerGroups(List.of("g-admin-never-existed")).all().get(30, TimeUnit.SECONDS));

            GroupSupport.stopAll(activeMembers);
            ConsumerGroupDescription d = awaitState(admin, active, GroupState.EMPTY, 15_000);
            c.checkEq(GroupState.EMPTY, d.groupState(), active + " state after its members closed");
            admin.deleteConsumerGroups(List.of(active)).all().get(30, TimeUnit.SECONDS);
            c.check(true, "deleting " + active + " once empty succeeded");
            c.check(find(LegacyListing.list(admin, null, null), active).isEmpty(), active + " no longer listed");
        });
        GroupSupport.stopAll(activeMembers);
        checkNoMemberErrors(activeMembers);
    }

    // ---------------------------------------------------------------------------------------
    // 8. assignors

    void assignor(Admin admin, String name) {
        String expectedName = name;
        java.util.function.Function<Integer, Properties> propsFor;
        if (classic) {
            String cls = switch (name) {
                case "cooperative-sticky" -> CooperativeStickyAssignor.class.getName();
                case "range" -> RangeAssignor.class.getName();
                default -> throw new IllegalArgumentException("classic assignor " + name);
            };
            propsFor = i -> {
                Properties p = props("assignor-" + name + "-" + i);
                p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, cls);
                return p;
            };
        } else {
            propsFor = i -> {
                Properties p = props("assignor-" + name + "-" + i);
                p.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, name);
                return p;
            };
        }
        List<GroupSupport.Member> ms = members(3, "m", propsFor);
        c.step("create topic " + topic() + " (6 partitions)", () -> GroupSupport.createTopic(admin, topic(), 6, c));
        try {
            c.step("3 members join 300 ms apart with the " + name + " assignor and converge", () -> {
                long t0 = System.nanoTime();
                for (GroupSupport.Member m : ms) {
                    m.start();
                    Thread.sleep(300);
                }
                converge("3 members: 2 partitions each, one generation", ms, 6, 2, 2, t0);
                for (GroupSupport.Member m : ms) {
                    c.info(m.name() + " " + GroupSupport.fmt(m.assignment()) + " gen " + m.generation() + "; callbacks assigned "
                            + m.assignedCalls + ", revoked " + m.revokedCalls + ", lost " + m.lostCalls);
                }
                ConsumerGroupDescription d = describe(admin, group());
                c.checkEq(expectedName, d.partitionAssignor(), "described assignor");
                checkDescribe(admin, ms, GroupState.STABLE);
            });
        } finally {
            GroupSupport.stopAll(ms);
        }
        checkNoMemberErrors(ms);
    }
}

/**
 * Admin.listConsumerGroups and its ConsumerGroupListing are deprecated for removal in 4.x in
 * favour of listGroups, but most deployed tooling still calls them, so the admin scenario covers
 * both. The deprecated types stay inside this class; callers see a plain record.
 */
@SuppressWarnings({"deprecation", "removal"})
record LegacyListing(String groupId, Optional<GroupState> groupState, Optional<GroupType> type, boolean isSimpleConsumerGroup) {
    static Collection<LegacyListing> list(Admin admin, Set<GroupState> states, Set<GroupType> types) throws Exception {
        org.apache.kafka.clients.admin.ListConsumerGroupsOptions o = new org.apache.kafka.clients.admin.ListConsumerGroupsOptions();
        if (states != null) o.inGroupStates(states);
        if (types != null) o.withTypes(types);
        Collection<org.apache.kafka.clients.admin.ConsumerGroupListing> ls = states == null && types == null
                ? admin.listConsumerGroups().all().get(30, TimeUnit.SECONDS)
                : admin.listConsumerGroups(o).all().get(30, TimeUnit.SECONDS);
        List<LegacyListing> out = new ArrayList<>();
        for (org.apache.kafka.clients.admin.ConsumerGroupListing l : ls) {
            out.add(new LegacyListing(l.groupId(), l.groupState(), l.type(), l.isSimpleConsumerGroup()));
        }
        return out;
    }
}
