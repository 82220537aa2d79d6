import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import java.util.function.Function;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Shared plumbing for the consumer-group scenarios (GroupScenarios, GroupMember, GroupBench):
 * in-JVM group members each driven by their own thread, a child-JVM member that can be killed
 * with SIGKILL, and the "has the group converged" predicate every scenario waits on.
 */
final class GroupSupport {
    private GroupSupport() {}

    static final Duration POLL = Duration.ofMillis(50);

    /** What a scenario can observe about one member, whichever process it lives in. */
    interface MemberView {
        String name();

        /** The member's current assignment as the client sees it (never null). */
        Set<TopicPartition> assignment();

        /** groupMetadata().generationId(): the classic generation or the KIP-848 member epoch. */
        int generation();

        String memberId();
    }

    // ---------------------------------------------------------------------------------------
    // Admin, topics, producing

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(p);
    }

    /** Creates the topic; an existing one is accepted (a re-run against the same broker). */
    static void createTopic(Admin admin, String topic, int partitions, Checks c) throws Exception {
        try {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            if (!(Checks.unwrap(e) instanceof TopicExistsException)) throw e;
            c.info("topic " + topic + " already exists; reusing it");
        }
        // Subscriptions resolve through Metadata; wait until the broker lists every partition.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            try {
                int n = admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS)
                        .get(topic).partitions().size();
                if (n == partitions) return;
            } catch (Exception e) {
                if (System.nanoTime() > deadline) throw e;
            }
            if (System.nanoTime() > deadline) throw new IllegalStateException("topic " + topic + " never showed " + partitions + " partitions");
            Thread.sleep(100);
        }
    }

    static Set<TopicPartition> partitions(String topic, int n) {
        Set<TopicPartition> s = new TreeSet<>(GroupSupport::compareTp);
        for (int i = 0; i < n; i++) s.add(new TopicPartition(topic, i));
        return s;
    }

    static int compareTp(TopicPartition a, TopicPartition b) {
        int t = a.topic().compareTo(b.topic());
        return t != 0 ? t : Integer.compare(a.partition(), b.partition());
    }

    /** Key of record {@code i} of partition {@code p}; the value is "v-" + key. */
    static String key(String topic, int p, int i) {
        return topic + "/" + p + "/" + i;
    }

    /**
     * Produces {@code counts[p]} records to each partition p, explicitly partitioned, with an
     * idempotent producer, so record i of partition p must land at offset i. Returns the offsets
     * the broker acknowledged, which the caller checks against that expectation.
     */
    static Map<String, Long> produce(String bootstrap, String topic, int[] counts) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        Map<String, Long> offsets = new HashMap<>();
        List<java.util.concurrent.Future<RecordMetadata>> futures = new ArrayList<>();
        List<String> keys = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            int max = 0;
            for (int c : counts) max = Math.max(max, c);
            // Interleaved across partitions so batches of several partitions share requests.
            for (int i = 0; i < max; i++) {
                for (int part = 0; part < counts.length; part++) {
                    if (i >= counts[part]) continue;
                    String k = key(topic, part, i);
                    keys.add(k);
                    futures.add(producer.send(new ProducerRecord<>(topic, part, k, "v-" + k)));
                }
            }
            producer.flush();
            for (int i = 0; i < futures.size(); i++) {
                offsets.put(keys.get(i), futures.get(i).get(60, TimeUnit.SECONDS).offset());
            }
        }
        return offsets;
    }

    /** Checks the acknowledged offsets are 0..n-1 in send order for every partition. */
    static void checkProduced(Checks c, String topic, int[] counts, Map<String, Long> acked) {
        int bad = 0;
        String first = null;
        for (int part = 0; part < counts.length; part++) {
            for (int i = 0; i < counts[part]; i++) {
                Long off = acked.get(key(topic, part, i));
                if (off == null || off != i) {
                    if (first == null) first = key(topic, part, i) + " acked at offset " + off + ", expected " + i;
                    bad++;
                }
            }
        }
        int total = 0;
        for (int n : counts) total += n;
        c.check(bad == 0, "produced " + total + " records to " + topic + ", record i of partition p acked at offset i"
                + (bad == 0 ? "" : " (" + bad + " mismatches, first: " + first + ")"));
    }

    // ---------------------------------------------------------------------------------------
    // Consumers

    static boolean isClassic(String protocol) {
        return protocol.equals("classic");
    }

    /**
     * Base consumer settings. Classic members get a 1 s heartbeat so they notice rebalances
     * quickly (the broker's group.min.session.timeout.ms is 6000, like Kafka's); the consumer
     * protocol forbids the client-side session/heartbeat settings, the broker owns them.
     */
    static Properties consumerProps(String bootstrap, String group, String protocol, String clientId) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        if (isClassic(protocol)) {
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        }
        return p;
    }

    /**
     * One in-JVM group member: a KafkaConsumer owned by its own thread (the consumer is not
     * thread-safe), which publishes its assignment and generation after every poll and from
     * inside the rebalance callbacks, and runs work handed to it by {@link #call}.
     */
    static final class Member implements MemberView {
        private final String name;
        private final Properties props;
        private final Collection<String> topics;
        private final Thread thread;
        private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
        private final CompletableFuture<Void> closed = new CompletableFuture<>();
        private volatile boolean stop;
        private volatile CloseOptions closeOptions = CloseOptions.timeout(Duration.ofSeconds(10));
        private volatile Set<TopicPartition> assignment = Set.of();
        private volatile int generation = -1;
        private volatile String memberId = "";
        private volatile Throwable error;
        /** While set, newly assigned partitions are paused so nothing is fetched yet. */
        private volatile boolean hold;
        private volatile BiConsumer<KafkaConsumer<String, String>, ConsumerRecords<String, String>> onRecords;
        final AtomicInteger assignedCalls = new AtomicInteger();
        final AtomicInteger revokedCalls = new AtomicInteger();
        final AtomicInteger lostCalls = new AtomicInteger();
        /** Wall-clock (nanoTime) of the last assignment/generation change, for timing. */
        private volatile long lastChangeNanos = System.nanoTime();

        Member(String name, Properties props, Collection<String> topics) {
            this.name = name;
            this.props = props;
            this.topics = topics;
            this.thread = new Thread(this::loop, "member-" + name);
            this.thread.setDaemon(true);
        }

        Member hold(boolean h) {
            this.hold = h;
            return this;
        }

        Member onRecords(BiConsumer<KafkaConsumer<String, String>, ConsumerRecords<String, String>> handler) {
            this.onRecords = handler;
            return this;
        }

        Member start() {
            thread.start();
            return this;
        }

        /** Lets the member fetch: resumes every partition paused by the hold. */
        void release() {
            hold = false;
        }

        @Override public String name() { return name; }
        @Override public Set<TopicPartition> assignment() { return assignment; }
        @Override public int generation() { return generation; }
        @Override public String memberId() { return memberId; }
        Throwable error() { return error; }
        long lastChangeNanos() { return lastChangeNanos; }
        boolean isRunning() { return thread.isAlive() && !closed.isDone(); }

        private void publish(KafkaConsumer<String, String> consumer) {
            Set<TopicPartition> a = Set.copyOf(consumer.assignment());
            int g = consumer.groupMetadata().generationId();
            String m = consumer.groupMetadata().memberId();
            if (!a.equals(assignment) || g != generation) lastChangeNanos = System.nanoTime();
            assignment = a;
            generation = g;
            memberId = m;
        }

        private void loop() {
            KafkaConsumer<String, String> consumer;
            try {
                consumer = new KafkaConsumer<>(props);
            } catch (Throwable t) {
                error = t;
                System.out.println("  info  member " + name + " could not be created: " + Checks.describe(t));
                closed.completeExceptionally(t);
                return;
            }
            current = consumer;
            try {
                consumer.subscribe(topics, new ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                        revokedCalls.incrementAndGet();
                        publish(consumer);
                    }

                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                        assignedCalls.incrementAndGet();
                        if (hold) consumer.pause(parts);
                        publish(consumer);
                    }

                    @Override
                    public void onPartitionsLost(Collection<TopicPartition> parts) {
                        lostCalls.incrementAndGet();
                        publish(consumer);
                    }
                });
                while (!stop) {
                    ConsumerRecords<String, String> recs = consumer.poll(POLL);
                    publish(consumer);
                    if (!hold && !consumer.paused().isEmpty()) consumer.resume(consumer.paused());
                    var handler = onRecords;
                    if (handler != null && !recs.isEmpty()) handler.accept(consumer, recs);
                    Runnable t;
                    while ((t = tasks.poll()) != null) t.run();
                }
            } catch (Throwable t) {
                if (!stop) {
                    error = t;
                    System.out.println("  info  member " + name + " stopped on " + Checks.describe(t));
                }
            }
            Runnable t;
            while ((t = tasks.poll()) != null) t.run();
            try {
                consumer.close(closeOptions);
                closed.complete(null);
            } catch (Throwable e) {
                System.out.println("  info  member " + name + " close: " + Checks.describe(e));
                closed.completeExceptionally(e);
            }
        }

        /** Runs {@code f} on the member's consumer thread between polls and waits for the result. */
        <T> T call(Function<KafkaConsumer<String, String>, T> f, long timeoutMs) throws Exception {
            CompletableFuture<T> r = new CompletableFuture<>();
            tasks.add(() -> {
                try {
                    r.complete(f.apply(current));
                } catch (Throwable t) {
                    r.completeExceptionally(t);
                }
            });
            return r.get(timeoutMs, TimeUnit.MILLISECONDS);
        }

        /** Set by loop() once the consumer exists; only ever used on the member's own thread. */
        private volatile KafkaConsumer<String, String> current;

        /** Stops polling and closes the consumer (leaving the group unless options say otherwise). */
        CompletableFuture<Void> stop(CloseOptions options) {
            closeOptions = options;
            stop = true;
            return closed;
        }

        CompletableFuture<Void> stop() {
            return stop(CloseOptions.timeout(Duration.ofSeconds(10)));
        }
    }

    /** Stops all members in parallel and waits (bounded) for every consumer to close. */
    static void stopAll(Collection<Member> members, CloseOptions options) {
        List<CompletableFuture<Void>> fs = new ArrayList<>();
        for (Member m : members) fs.add(m.stop(options));
        try {
            CompletableFuture<?>[] all = fs.toArray(new CompletableFuture<?>[0]);
            CompletableFuture.allOf(all).get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            System.out.println("  info  closing members: " + Checks.describe(e));
        }
    }

    static void stopAll(Collection<Member> members) {
        stopAll(members, CloseOptions.timeout(Duration.ofSeconds(10)));
    }

    // ---------------------------------------------------------------------------------------
    // A member in a child JVM (GroupMember), killable with SIGKILL.

    static final class ChildMember implements MemberView, AutoCloseable {
        private final String name;
        private final Process process;
        private volatile Set<TopicPartition> assignment = Set.of();
        private volatile int generation = -1;
        private volatile String memberId = "";
        private volatile boolean ready;

        /** Starts {@code java GroupMember BOOTSTRAP GROUP TOPIC PROTOCOL NAME SESSION_MS INSTANCE_ID}. */
        ChildMember(String name, List<String> args) throws Exception {
            this.name = name;
            String javaBin = System.getProperty("java.home") + "/bin/java";
            List<String> cmd = new ArrayList<>(List.of(javaBin, "-Xmx256m", "-cp", System.getProperty("java.class.path")));
            String log4j = System.getProperty("log4j2.configurationFile");
            if (log4j != null) cmd.add("-Dlog4j2.configurationFile=" + log4j);
            cmd.add("GroupMember");
            cmd.addAll(args);
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.redirectError(ProcessBuilder.Redirect.INHERIT);
            process = pb.start();
            Thread reader = new Thread(this::read, "child-" + name);
            reader.setDaemon(true);
            reader.start();
        }

        private void read() {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    // STATE <generation> <memberId> <topic:p,topic:p,...|->
                    if (line.startsWith("STATE ")) {
                        String[] f = line.split(" ");
                        Set<TopicPartition> a = new TreeSet<>(GroupSupport::compareTp);
                        if (!f[3].equals("-")) {
                            for (String tp : f[3].split(",")) {
                                int i = tp.lastIndexOf(':');
                                a.add(new TopicPartition(tp.substring(0, i), Integer.parseInt(tp.substring(i + 1))));
                            }
                        }
                        assignment = Set.copyOf(a);
                        generation = Integer.parseInt(f[1]);
                        memberId = f[2];
                    } else if (line.equals("READY")) {
                        ready = true;
                    } else {
                        System.out.println("  child " + name + ": " + line);
                    }
                }
            } catch (Exception e) {
                // The process was killed; the last state stays as it was.
            }
        }

        @Override public String name() { return name; }
        @Override public Set<TopicPartition> assignment() { return assignment; }
        @Override public int generation() { return generation; }
        @Override public String memberId() { return memberId; }
        boolean ready() { return ready; }
        long pid() { return process.pid(); }
        boolean isAlive() { return process.isAlive(); }

        /** Sends a signal by name (STOP, CONT, ...) with kill(1). */
        void signal(String sig) throws Exception {
            Process k = new ProcessBuilder("kill", "-" + sig, String.valueOf(process.pid())).inheritIO().start();
            if (!k.waitFor(10, TimeUnit.SECONDS) || k.exitValue() != 0) {
                throw new IllegalStateException("kill -" + sig + " " + process.pid() + " failed");
            }
        }

        /** SIGKILL: no LeaveGroup, no final heartbeat, sockets simply vanish. */
        void kill() throws InterruptedException {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }

        @Override
        public void close() {
            if (!process.isAlive()) return;
            try {
                signal("CONT"); // a stopped process ignores nothing but SIGKILL, but keep it tidy
            } catch (Exception e) {
                // best effort
            }
            try {
                kill();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Convergence

    static String fmt(Set<TopicPartition> a) {
        if (a.isEmpty()) return "[]";
        Map<String, TreeSet<Integer>> byTopic = new TreeMap<>();
        for (TopicPartition tp : a) byTopic.computeIfAbsent(tp.topic(), k -> new TreeSet<>()).add(tp.partition());
        if (byTopic.size() == 1) return byTopic.values().iterator().next().toString();
        return byTopic.toString();
    }

    static String layout(List<? extends MemberView> views) {
        StringBuilder sb = new StringBuilder();
        for (MemberView v : views) {
            if (sb.length() > 0) sb.append("; ");
            sb.append(v.name()).append(" gen ").append(v.generation()).append(' ').append(fmt(v.assignment()));
        }
        return sb.toString();
    }

    /**
     * Why {@code views} are not (yet) a converged group over {@code all}: every partition owned by
     * exactly one member, each member holding between {@code min} and {@code max} partitions, and
     * (if {@code sameGeneration}) every member on the same generation / member epoch. Null when
     * converged.
     */
    static String notConverged(List<? extends MemberView> views, Set<TopicPartition> all, int min, int max,
                               boolean sameGeneration) {
        Map<TopicPartition, List<String>> owners = new HashMap<>();
        Set<Integer> gens = new TreeSet<>();
        for (MemberView v : views) {
            Set<TopicPartition> a = v.assignment();
            if (a.size() < min || a.size() > max) {
                return v.name() + " holds " + a.size() + " partitions, expected " + (min == max ? "" + min : min + ".." + max);
            }
            for (TopicPartition tp : a) owners.computeIfAbsent(tp, k -> new ArrayList<>()).add(v.name());
            gens.add(v.generation());
        }
        for (Map.Entry<TopicPartition, List<String>> e : owners.entrySet()) {
            if (e.getValue().size() > 1) return e.getKey() + " owned by " + e.getValue();
            if (!all.contains(e.getKey())) return "unexpected partition " + e.getKey() + " owned by " + e.getValue();
        }
        if (owners.size() != all.size()) {
            Set<TopicPartition> missing = new TreeSet<>(GroupSupport::compareTp);
            missing.addAll(all);
            missing.removeAll(owners.keySet());
            return "unowned partitions " + fmt(missing);
        }
        if (sameGeneration && gens.size() > 1) return "members on different generations " + gens;
        if (gens.contains(-1)) return "a member has no generation";
        return null;
    }

    /** Result of {@link #awaitConverged}: when the condition first held, or why it never settled. */
    record Convergence(boolean ok, long firstMs, String detail) {}

    /**
     * Waits until {@link #notConverged} is null and the layout then stays identical for
     * {@code windowMs} (so a passing snapshot in the middle of a rebalance does not count).
     * {@code firstMs} is measured from {@code startNanos} to the first moment of the final,
     * stable layout.
     */
    static Convergence awaitConverged(List<? extends MemberView> views, Set<TopicPartition> all, int min, int max,
                                      boolean sameGeneration, long windowMs, long timeoutMs, long startNanos,
                                      long stepMs) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        String stableLayout = null;
        long stableSince = 0;
        String why = "never checked";
        while (true) {
            long now = System.nanoTime();
            String l = layout(views);
            why = notConverged(views, all, min, max, sameGeneration);
            if (why == null) {
                if (!l.equals(stableLayout)) {
                    stableLayout = l;
                    stableSince = now;
                }
                if (now - stableSince >= TimeUnit.MILLISECONDS.toNanos(windowMs)) {
                    return new Convergence(true, TimeUnit.NANOSECONDS.toMillis(stableSince - startNanos), l);
                }
            } else {
                stableLayout = null;
            }
            if (now > deadline) {
                return new Convergence(false, -1, (why == null ? "layout still changing" : why) + " | " + l);
            }
            Thread.sleep(stepMs);
        }
    }

    /** Balanced bounds for n partitions over m members: floor and ceiling of n/m. */
    static int[] balanced(int partitions, int members) {
        return new int[] {partitions / members, (partitions + members - 1) / members};
    }
}
