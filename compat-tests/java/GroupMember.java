import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.StringJoiner;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;

/**
 * A single group member in its own JVM, so a scenario can kill it with SIGKILL (no LeaveGroup,
 * no last heartbeat). Started by GroupSupport.ChildMember; reports on stdout:
 * <pre>
 *   READY
 *   STATE generation memberId topic:p,topic:p,...   (or "-" for no partitions), on every change
 * </pre>
 * Usage: {@code java GroupMember BOOTSTRAP GROUP TOPIC PROTOCOL NAME SESSION_MS INSTANCE_ID|- MAX_SECONDS}.
 * SESSION_MS applies to the classic protocol only (0 = the scenarios' default). The process
 * exits by itself after MAX_SECONDS so a crashed parent never leaves it behind.
 */
public final class GroupMember {
    public static void main(String[] args) throws Exception {
        if (args.length != 8) {
            System.err.println("usage: GroupMember BOOTSTRAP GROUP TOPIC PROTOCOL NAME SESSION_MS INSTANCE_ID|- MAX_SECONDS");
            System.exit(2);
        }
        String bootstrap = args[0], group = args[1], topic = args[2], protocol = args[3], name = args[4];
        int sessionMs = Integer.parseInt(args[5]);
        String instanceId = args[6];
        long maxSeconds = Long.parseLong(args[7]);

        Properties p = GroupSupport.consumerProps(bootstrap, group, protocol, name);
        if (GroupSupport.isClassic(protocol) && sessionMs > 0) {
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, String.valueOf(sessionMs));
        }
        if (!instanceId.equals("-")) p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId);

        GroupSupport.Member m = new GroupSupport.Member(name, p, List.of(topic)).start();
        System.out.println("READY");
        System.out.flush();
        long deadline = System.nanoTime() + maxSeconds * 1_000_000_000L;
        String last = null;
        while (System.nanoTime() < deadline) {
            Set<TopicPartition> a = new TreeSet<>(GroupSupport::compareTp);
            a.addAll(m.assignment());
            StringJoiner j = new StringJoiner(",");
            for (TopicPartition tp : a) j.add(tp.topic() + ":" + tp.partition());
            String line = "STATE " + m.generation() + " " + (m.memberId().isEmpty() ? "-" : m.memberId()) + " "
                    + (a.isEmpty() ? "-" : j.toString());
            if (!line.equals(last)) {
                System.out.println(line);
                System.out.flush();
                last = line;
            }
            if (m.error() != null) {
                System.out.println("member error: " + Checks.describe(m.error()));
                System.exit(1);
            }
            Thread.sleep(20);
        }
        System.out.println("lifetime of " + maxSeconds + "s reached; leaving the group");
        GroupSupport.stopAll(List.of(m));
        System.exit(0);
    }
}
