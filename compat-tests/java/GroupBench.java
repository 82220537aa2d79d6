import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;

/**
 * Group rebalance timing through the real Java client, for scripts/bench-groups.sh.
 *
 * <p>Per repetition, with a fresh group id each time: 10 members subscribe at once and the time
 * to a converged group is taken ("formation"); then an 11th member joins and the time until the
 * 11 members are converged again is taken ("join"). Converged means every partition owned by
 * exactly one member and the partitions spread evenly (floor..ceil of partitions/members); each
 * phase reports two instants: when the assignment first reaches that shape ("assigned"), and when
 * additionally every member reports the same generation / member epoch ("same generation"). Member
 * states are sampled every 2 ms and published by the members from inside the rebalance
 * callbacks, so the figures are precise to a few ms plus the clients' own scheduling.
 *
 * <p>The 11th member joins after a random pause of up to one heartbeat interval (system property
 * fjord.bench.jitter.ms; default 3000 for classic, 5000 for consumer), seeded so runs repeat.
 *
 * <p>Client settings are Kafka's defaults except group.protocol (and the fixed client basics:
 * string deserializers, no auto commit), so the figures are what an untuned application sees;
 * the consumer protocol's depend on the broker's group.consumer.heartbeat.interval.ms.
 *
 * <p>Usage: {@code java GroupBench BOOTSTRAP PROTOCOL REPS [MEMBERS [PARTITIONS]]} (defaults 10, 20).
 * Prints one line per repetition and a final
 * {@code RESULT protocol=P members=N formation_assigned_ms=.. formation_gen_ms=.. join_assigned_ms=.. join_gen_ms=..}
 * line with the medians (-1 = never converged). Exit status 1 if any phase did not converge.
 */
public final class GroupBench {
    static final long PHASE_TIMEOUT_MS = 120_000;

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: GroupBench BOOTSTRAP PROTOCOL REPS [MEMBERS [PARTITIONS]]");
            System.exit(2);
        }
        String bootstrap = args[0], protocol = args[1];
        int reps = Integer.parseInt(args[2]);
        int n = args.length > 3 ? Integer.parseInt(args[3]) : 10;
        int parts = args.length > 4 ? Integer.parseInt(args[4]) : 20;
        String topic = "bench-groups-" + protocol;
        Set<TopicPartition> all = GroupSupport.partitions(topic, parts);
        Checks c = new Checks("bench-" + protocol);
        try (Admin admin = GroupSupport.admin(bootstrap)) {
            GroupSupport.createTopic(admin, topic, parts, c);
        }

        // Default: one heartbeat interval (classic client default 3000 ms, Kafka's broker default 5000 ms).
        int jitterMs = Integer.getInteger("fjord.bench.jitter.ms", GroupSupport.isClassic(protocol) ? 3_000 : 5_000);
        java.util.Random rnd = new java.util.Random(42);
        long[][] fig = new long[4][reps]; // formation assigned/gen, join assigned/gen
        boolean allOk = true;
        for (int r = 0; r < reps; r++) {
            String group = "bench-" + protocol + "-" + r + "-" + System.currentTimeMillis();
            List<GroupSupport.Member> ms = new ArrayList<>();
            try {
                for (int i = 0; i < n; i++) ms.add(member(bootstrap, group, protocol, topic, "b" + i));
                int[] b = GroupSupport.balanced(parts, n);
                long t0 = System.nanoTime();
                ms.forEach(GroupSupport.Member::start);
                GroupSupport.Convergence fa = GroupSupport.awaitConverged(ms, all, b[0], b[1], false, 0, PHASE_TIMEOUT_MS, t0, 2);
                GroupSupport.Convergence fg = GroupSupport.awaitConverged(ms, all, b[0], b[1], true, 0, PHASE_TIMEOUT_MS, t0, 2);
                // Must still hold a moment later, or the instant measured was not the final layout.
                GroupSupport.Convergence fs = GroupSupport.awaitConverged(ms, all, b[0], b[1], true, 2_000, PHASE_TIMEOUT_MS, t0, 20);

                // Join at a random point of the members' heartbeat cycle: they all (re)started it
                // together when the formation completed, so a fixed pause would always hit the
                // same phase and bias the join figure.
                Thread.sleep(rnd.nextInt(jitterMs + 1));
                GroupSupport.Member extra = member(bootstrap, group, protocol, topic, "b" + n);
                ms.add(extra);
                int[] b2 = GroupSupport.balanced(parts, n + 1);
                long t1 = System.nanoTime();
                extra.start();
                GroupSupport.Convergence ja = GroupSupport.awaitConverged(ms, all, b2[0], b2[1], false, 0, PHASE_TIMEOUT_MS, t1, 2);
                GroupSupport.Convergence jg = GroupSupport.awaitConverged(ms, all, b2[0], b2[1], true, 0, PHASE_TIMEOUT_MS, t1, 2);
                GroupSupport.Convergence js = GroupSupport.awaitConverged(ms, all, b2[0], b2[1], true, 2_000, PHASE_TIMEOUT_MS, t1, 20);

                fig[0][r] = fa.ok() ? fa.firstMs() : -1;
                fig[1][r] = fg.ok() ? fg.firstMs() : -1;
                fig[2][r] = ja.ok() ? ja.firstMs() : -1;
                fig[3][r] = jg.ok() ? jg.firstMs() : -1;
                boolean ok = fa.ok() && fg.ok() && fs.ok() && ja.ok() && jg.ok() && js.ok();
                allOk &= ok;
                System.out.printf("rep %d: formation of %d: assigned %d ms, same generation %d ms (gen %d); "
                                + "member %d joins: assigned %d ms, same generation %d ms (gen %d)%s%n",
                        r + 1, n, fig[0][r], fig[1][r], ms.get(0).generation(), n + 1, fig[2][r], fig[3][r],
                        extra.generation(), ok ? "" : "  NOT CONVERGED: " + (fs.ok() ? js.detail() : fs.detail()));
                if (fs.ok() && fs.firstMs() > fig[1][r] + 50) {
                    System.out.println("  note: formation layout changed again after the measured instant; settled at " + fs.firstMs() + " ms");
                }
                if (js.ok() && js.firstMs() > fig[3][r] + 50) {
                    System.out.println("  note: join layout changed again after the measured instant; settled at " + js.firstMs() + " ms");
                }
            } finally {
                GroupSupport.stopAll(ms);
            }
            Thread.sleep(500);
        }
        System.out.printf("RESULT protocol=%s members=%d partitions=%d reps=%d formation_assigned_ms=%d formation_gen_ms=%d "
                        + "join_assigned_ms=%d join_gen_ms=%d%n",
                protocol, n, parts, reps, median(fig[0]), median(fig[1]), median(fig[2]), median(fig[3]));
        System.exit(allOk ? 0 : 1);
    }

    static GroupSupport.Member member(String bootstrap, String group, String protocol, String topic, String name) {
        Properties p = GroupSupport.consumerProps(bootstrap, group, protocol, name);
        // Kafka's client defaults for the classic timeouts, not the scenarios' shortened ones.
        p.remove(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG);
        p.remove(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG);
        return new GroupSupport.Member(name, p, List.of(topic));
    }

    /** Median of the figures; -1 if any repetition failed to converge. */
    static long median(long[] v) {
        if (Arrays.stream(v).anyMatch(x -> x < 0)) return -1;
        long[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
