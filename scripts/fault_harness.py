"""Replication fault harness (issue 12): three Fjord nodes (each a combined
broker+controller), a topic with replication factor 3 and min.insync.replicas=2, an
idempotent acks=all producer (librdkafka, through confluent-kafka) and a read_committed
consumer group running while faults are injected one at a time:

  kill-leader      SIGKILL of partition 0's leader, restarted 2 s later
  kill-follower    SIGKILL of one of partition 0's followers, restarted 2 s later
  kill-controller  SIGKILL of the active controller, restarted 2 s later
  pause            SIGSTOP of partition 0's leader for the session timeout + 2 s, then SIGCONT
  rolling-restart  every node in turn stopped with SIGTERM and started again
  partition        partition 0's leader cut off from every other node and client for the
                   session timeout + 2 s, then reconnected

With --java-cp, a second producer runs beside librdkafka's: Java kafka-clients, idempotent
acks=all (compat-tests/java/FaultProducer.java, its values `j<partition>:<seq>`), checked the
same way.

Each node runs in a network namespace the harness makes (`ip netns`, a veth pair per node on
a bridge in the root namespace, a random 10.77.x.0/24 subnet); a partition takes the node's
veth link down, so it can reach nobody and nobody it (no RST: connections hang, as across a
real partition). Without the permission to make namespaces (not root), the nodes run on
loopback and the partition fault is refused with exit 2.

Before each fault the cluster must be whole again (every node up, every ISR full). After
the run an independent reader (no group, each partition from offset 0) checks that every
acknowledged record is present exactly once and in the order produced; the group
consumer's committed offsets must never go back, and no high watermark it saw may go back.
Reported per fault: records acknowledged while it ran, lost, duplicated, and the time from
the fault to the first acknowledged write to partition 0 (median and max over rounds).

Exit 0 when nothing was lost, duplicated or reordered and no offset or high watermark went
back; 1 otherwise; 2 when the harness could not run.
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

FAULTS = ["kill-leader", "kill-follower", "kill-controller", "kill-coordinator", "pause",
          "rolling-restart", "partition"]
TOPIC = "faults"
# --eos: a Java consume-transform-produce application (compat-tests/java/FaultEos.java) reads
# TOPIC and writes OUT_TOPIC transactionally; these faults kill its transaction coordinator
# and the leader of OUT_TOPIC's partition 0.
OUT_TOPIC = "faults-out"
EOS_TXN_ID = "fault-eos-txn"
EOS_FAULTS = ["kill-txn-coordinator", "kill-out-leader"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Net:
    """A bridge in the root namespace and one namespace per node, joined by veth pairs."""

    def __init__(self, nodes):
        # The wrapper passes its pid so it can clean up after a timeout.
        seed = int(os.environ.get("FAULT_NET_TAG", os.getpid()))
        tag = f"{seed % 10000:04d}"
        self.subnet = 10 + seed % 240
        self.bridge = f"fjbr{tag}"
        self.ns = [f"fjn{tag}-{i}" for i in range(1, nodes + 1)]
        self.outer = [f"fjv{tag}{i}a" for i in range(1, nodes + 1)]
        self.hosts = [f"10.77.{self.subnet}.{10 + i}" for i in range(1, nodes + 1)]
        self.made = False

    def setup(self):
        self.made = True
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"10.77.{self.subnet}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i, ns in enumerate(self.ns):
            inner = self.outer[i][:-1] + "b"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", self.outer[i], "type", "veth", "peer", "name", inner)
            sh("ip", "link", "set", inner, "netns", ns)
            sh("ip", "link", "set", self.outer[i], "master", self.bridge)
            sh("ip", "link", "set", self.outer[i], "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.hosts[i]}/24", "dev", inner)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def cut(self, i, down):
        sh("ip", "link", "set", self.outer[i], "down" if down else "up")

    def teardown(self):
        if not self.made:
            return
        for i, ns in enumerate(self.ns):
            subprocess.run(["ip", "link", "del", self.outer[i]], stderr=subprocess.DEVNULL)
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", self.bridge], stderr=subprocess.DEVNULL)


class Node:
    def __init__(self, binary, work, nid, host, port, qport, voters, session_ms, heartbeat_ms,
                 netns=None):
        self.binary, self.nid, self.port, self.qport = binary, nid, port, qport
        self.host, self.netns = host, netns
        self.dir = os.path.join(work, f"node{nid}")
        self.log_path = self.dir + ".log"
        self.voters = voters
        self.session_ms, self.heartbeat_ms = session_ms, heartbeat_ms
        self.proc = None

    def start(self):
        env = dict(os.environ)
        env.pop("FJORD_CACHE", None)
        env.pop("FJORD_BIN", None)
        env.setdefault("RUST_LOG", "info")
        overrides = [
            f"node.id={self.nid}", "process.roles=broker,controller",
            f"controller.quorum.voters={self.voters}", "controller.listener.names=CONTROLLER",
            f"listeners=PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.qport}",
            f"broker.session.timeout.ms={self.session_ms}",
            f"broker.heartbeat.interval.ms={self.heartbeat_ms}",
        ]
        cmd = [self.binary, "--log-dirs", self.dir]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        for o in overrides:
            cmd += ["--override", o]
        with open(self.log_path, "ab") as f:
            f.write(f"=== harness: node {self.nid} started {time.strftime('%H:%M:%S')}\n".encode())
            self.log_mark = f.tell()
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL)
        with open(self.dir + ".pid", "w") as f:
            f.write(f"{self.proc.pid}\n")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"node {self.nid} exited with {self.proc.returncode}")
            with open(self.log_path, "rb") as f:
                f.seek(self.log_mark)
                if b"fjord started" in f.read():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"node {self.nid} not ready within {timeout}s")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"node {self.nid} did not stop within 30 s of SIGTERM")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Workload:
    """The idempotent acks=all producer and the read_committed consumer group."""

    def __init__(self, bootstrap, partitions, rate):
        self.bootstrap, self.partitions, self.rate = bootstrap, partitions, rate
        self.lock = threading.Lock()
        # (seq, offset, ack time, produce time), times from time.monotonic()
        self.acked = {p: [] for p in range(partitions)}
        self.failed = []
        self.next_seq = {p: 0 for p in range(partitions)}
        self.stop_producing = threading.Event()
        self.stop_consuming = threading.Event()
        self.hw_seen = {}
        self.hw_regressions = []
        self.commits = {}  # partition -> last offset committed successfully
        self.commit_times = []  # time.monotonic() of each successful commit
        self.commit_failures = 0
        self.consumed = 0
        self.consumed_offsets = {p: set() for p in range(partitions)}
        self.java_consumers = []

    def produce(self):
        p = Producer({
            "bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 500, "topic.metadata.refresh.interval.ms": 1000,
            # Connection failures to killed nodes are the point here, not news.
            "log_level": 2,
        })

        def delivered(err, msg, seq, sent):
            now = time.monotonic()
            with self.lock:
                if err is None:
                    self.acked[msg.partition()].append((seq, msg.offset(), now, sent))
                else:
                    self.failed.append((msg.partition(), seq, str(err)))

        interval = 1.0 / self.rate
        nxt = time.monotonic()
        while not self.stop_producing.is_set():
            for part in range(self.partitions):
                seq = self.next_seq[part]
                self.next_seq[part] += 1
                while True:
                    try:
                        sent = time.monotonic()
                        p.produce(TOPIC, key=str(part).encode(), value=f"{part}:{seq}".encode(),
                                  partition=part,
                                  on_delivery=lambda e, m, s=seq, t=sent: delivered(e, m, s, t))
                        break
                    except BufferError:
                        p.poll(0.05)
            p.poll(0)
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()
        left = p.flush(120)
        if left:
            log(f"producer: {left} messages still undelivered after 120 s")
        self.undelivered = left

    def consume(self):
        c = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": "fault-checker",
            "isolation.level": "read_committed", "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 10000,
            "topic.metadata.refresh.interval.ms": 1000, "log_level": 2,
        })
        c.subscribe([TOPIC])
        positions = {}
        last_commit = time.monotonic()
        while not self.stop_consuming.is_set():
            msg = c.poll(0.2)
            if msg is not None and msg.error() is None:
                positions[msg.partition()] = msg.offset() + 1
                with self.lock:
                    self.consumed += 1
                    self.consumed_offsets[msg.partition()].add(msg.offset())
                tp = TopicPartition(TOPIC, msg.partition())
                try:
                    _, high = c.get_watermark_offsets(tp, cached=True)
                except KafkaException:
                    high = -1
                if high >= 0:
                    prev = self.hw_seen.get(msg.partition(), -1)
                    if high < prev:
                        self.hw_regressions.append((msg.partition(), prev, high))
                    self.hw_seen[msg.partition()] = max(prev, high)
            if time.monotonic() - last_commit >= 0.25 and positions:
                last_commit = time.monotonic()
                offsets = [TopicPartition(TOPIC, p, o) for p, o in positions.items()]
                try:
                    done = c.commit(offsets=offsets, asynchronous=False)
                    if done and all(tp.error is None for tp in done):
                        with self.lock:
                            self.commit_times.append(time.monotonic())
                    for tp in done or []:
                        if tp.error is None:
                            self.commits[tp.partition] = max(self.commits.get(tp.partition, 0),
                                                             tp.offset)
                except KafkaException:
                    self.commit_failures += 1
        try:
            committed = c.committed([TopicPartition(TOPIC, p) for p in range(self.partitions)],
                                    timeout=30)
            self.final_committed = {tp.partition: tp.offset for tp in committed}
        except KafkaException as e:
            log(f"consumer: cannot read committed offsets: {e}")
            self.final_committed = None
        c.close()

    def java(self, cp):
        """Runs the Java producer; its acks go to self.java_acked."""
        self.java_acked = {p: [] for p in range(self.partitions)}
        self.java_failed = []
        self.java_proc = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", cp, "FaultProducer", self.bootstrap, TOPIC,
             str(self.partitions), str(self.rate)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

        def read():
            for line in self.java_proc.stdout:
                f = line.split()
                if f and f[0] == "ACK":
                    with self.lock:
                        self.java_acked[int(f[1])].append((int(f[2]), int(f[3])))
                elif f and f[0] == "FAIL":
                    with self.lock:
                        self.java_failed.append(tuple(f[1:]))
        self.java_reader = threading.Thread(target=read, daemon=True)
        self.java_reader.start()

    def java_consumer(self, cp, group, protocol):
        """Runs a Java group consumer (classic or KIP-848) that commits every 250 ms."""
        jc = {"group": group, "protocol": protocol, "records": {p: set() for p in range(self.partitions)},
              "commits": {}, "final": {}, "failures": 0, "done": False, "commit_times": []}
        jc["proc"] = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", cp, "FaultConsumer", self.bootstrap, TOPIC, group,
             protocol],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

        def read():
            for line in jc["proc"].stdout:
                f = line.split()
                if not f:
                    continue
                with self.lock:
                    if f[0] == "REC":
                        jc["records"][int(f[1])].add(int(f[2]))
                    elif f[0] == "COMMIT":
                        p, o = int(f[1]), int(f[2])
                        jc["commits"][p] = max(jc["commits"].get(p, 0), o)
                        jc["commit_times"].append(time.monotonic())
                    elif f[0] == "COMMITFAIL":
                        jc["failures"] += 1
                    elif f[0] == "FINAL":
                        jc["final"][int(f[1])] = int(f[2])
                    elif f[0] == "DONE":
                        jc["done"] = True
        jc["reader"] = threading.Thread(target=read, daemon=True)
        jc["reader"].start()
        self.java_consumers.append(jc)

    def stop_java_consumers(self):
        for jc in self.java_consumers:
            try:
                jc["proc"].stdin.write("stop\n")
                jc["proc"].stdin.flush()
                jc["proc"].stdin.close()
                jc["proc"].wait(timeout=90)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                log(f"java consumer {jc['group']}: did not stop in time; killed")
                jc["proc"].kill()
                jc["proc"].wait()
            jc["reader"].join(10)

    def stop_java(self):
        try:
            self.java_proc.stdin.write("stop\n")
            self.java_proc.stdin.flush()
            self.java_proc.stdin.close()
            self.java_proc.wait(timeout=180)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            log("java producer: did not stop in time; killed")
            self.java_proc.kill()
            self.java_proc.wait()
        self.java_reader.join(10)

    def acked_count(self):
        with self.lock:
            return sum(len(v) for v in self.acked.values())

    def first_commit_after(self, t):
        with self.lock:
            times = [x for x in self.commit_times if x > t]
        return min(times) if times else None

    def first_ack_after(self, partition, t):
        """When the first record produced after `t` was acknowledged (a delivery report runs
        at the producer's next poll, so an ack from before `t` may be reported after it)."""
        with self.lock:
            times = [a[2] for a in self.acked[partition] if a[3] > t]
        return min(times) if times else None


def java_hash(s):
    """Java's String.hashCode, as Kafka hashes a key onto a coordinator partition."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def txn_coordinator_of(admin, txn_id=EOS_TXN_ID):
    return internal_leader(admin, "__transaction_state", txn_id)


def internal_leader(admin, topic, key):
    """The leader of `key`'s partition of a coordinator topic: its coordinator."""
    h = java_hash(key)
    h = 0 if h == -(1 << 31) else abs(h)

    def leader():
        md = admin.list_topics(topic, timeout=5).topics[topic]
        lead = md.partitions[h % len(md.partitions)].leader
        if lead < 0:
            raise KeyError("no leader")
        return lead
    return retrying(f"coordinator of {key}", leader)


def read_committed_all(bootstrap, topic, partitions, timeout=120):
    """Every committed record of `topic` (read_committed, until each partition's position
    reaches its end): {partition: [value, ...]} in offset order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "fault-verify-out",
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "log_level": 2})
    tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
    c.assign(tps)
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)}
    out = {p: [] for p in range(partitions)}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is not None and msg.error() is None:
            out[msg.partition()].append(msg.value().decode())
            continue
        pos = {tp.partition: tp.offset for tp in c.position(tps)}
        if all(pos[p] >= ends[p] for p in range(partitions)):
            break
    c.close()
    return out


class EosApp:
    """The Java exactly-once application, restarted if it exits on its own."""

    def __init__(self, cp, bootstrap, partitions):
        self.cp, self.bootstrap, self.partitions = cp, bootstrap, partitions
        self.lock = threading.Lock()
        self.commit_times = []
        self.positions = {}
        self.aborted = []
        self.fatal = []
        self.restarts = 0
        self.stopping = False
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", self.cp, "FaultEos", self.bootstrap, TOPIC, OUT_TOPIC,
             "fault-eos", EOS_TXN_ID],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        proc = self.proc

        def read():
            for line in proc.stdout:
                f = line.split()
                if not f:
                    continue
                with self.lock:
                    if f[0] == "COMMITTED":
                        self.commit_times.append(time.monotonic())
                    elif f[0] == "POS":
                        p, o = int(f[1]), int(f[2])
                        self.positions[p] = max(self.positions.get(p, 0), o)
                    elif f[0] == "ABORTED":
                        self.aborted.append(" ".join(f[1:3]))
                    elif f[0] == "FATAL":
                        self.fatal.append(" ".join(f[1:]))
            if not self.stopping:
                log(f"eos app exited ({proc.wait()}); starting a new instance")
                with self.lock:
                    self.restarts += 1
                self.start()
        threading.Thread(target=read, daemon=True).start()

    def first_commit_after(self, t):
        with self.lock:
            times = [x for x in self.commit_times if x > t]
        return min(times) if times else None

    def stop(self):
        self.stopping = True
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            self.proc.kill()
            self.proc.wait()


def read_everything(bootstrap, partitions, expected_ends, timeout=90):
    """Each partition from offset 0 to its end with a fresh consumer (no group):
    {partition: [value, ...]} in offset order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "fault-verify",
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "log_level": 2})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(partitions)])
    out = {p: [] for p in range(partitions)}
    last = {p: -1 for p in range(partitions)}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(last[p] + 1 >= expected_ends[p] for p in range(partitions)):
            break
        msg = c.poll(0.5)
        if msg is None or msg.error() is not None:
            continue
        out[msg.partition()].append(msg.value().decode())
        last[msg.partition()] = msg.offset()
    c.close()
    return out


class JavaCommits:
    """A Java consumer's successful commits, for wait_commit."""

    def __init__(self, work, jc):
        self.work, self.jc = work, jc

    def first_commit_after(self, t):
        with self.work.lock:
            times = [x for x in self.jc["commit_times"] if x > t]
        return min(times) if times else None


# How many kill-coordinator faults ran (they take the groups in turn).
COORDINATOR_KILLS = [0]

# The topics whose partitions must be led with a full ISR before the next fault.
WHOLE_TOPICS = [TOPIC]


def partition_state(admin, partition, topic=TOPIC):
    md = admin.list_topics(topic, timeout=5).topics[topic].partitions[partition]
    return md.leader, sorted(md.isrs), list(md.replicas)


def wait_whole(admin, nodes, partitions, timeout=60):
    """Every node up and every partition led with its full ISR."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            ok = True
            for topic in WHOLE_TOPICS:
                for p in range(partitions):
                    leader, isr, replicas = partition_state(admin, p, topic)
                    last = (topic, p, leader, isr)
                    if leader < 0 or len(isr) != len(replicas):
                        ok = False
                        break
            if ok and all(n.alive() for n in nodes):
                return
        except KafkaException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"cluster not whole within {timeout}s (last: {last})")


def controller_of(admin):
    return admin.describe_cluster(request_timeout=5).result().controller.id


def retrying(what, f, timeout=30):
    """f() until it succeeds: right after a fault a coordinator may be moving
    (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) or a leader unknown."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return f()
        except (KafkaException, KeyError, IndexError) as e:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{what}: {e}") from e
            time.sleep(0.2)


def coordinator_of(admin, group="fault-checker"):
    """The leader of the group's partition of __consumer_offsets (Kafka's rule; asking with
    DescribeGroups would go through the admin client's coordinator cache, which can name a
    broker that coordinated the group before the last fault)."""
    return internal_leader(admin, "__consumer_offsets", group)


def wait_commit(work, after, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = work.first_commit_after(after)
        if t is not None:
            return t - after
        time.sleep(0.01)
    return None


def wait_ack(work, partition, after, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = work.first_ack_after(partition, after)
        if t is not None:
            return t - after
        time.sleep(0.01)
    return None


def inject(fault, nodes, admin, work, session_ms, net):
    """Runs one fault; returns the seconds from the fault to the first acknowledged write
    to partition 0 (a list: one per stop for the rolling restart); for kill-coordinator, to
    the group consumer's first successful offset commit."""
    by_id = {n.nid: n for n in nodes}
    leader, isr, _ = partition_state(admin, 0)
    if fault == "kill-leader":
        victim = by_id[leader]
    elif fault == "kill-follower":
        victim = by_id[next(r for r in isr if r != leader)]
    elif fault == "kill-controller":
        victim = by_id[controller_of(admin)]
    elif fault == "kill-coordinator":
        # In turn, the coordinator of each consumer group (librdkafka's, then the Java
        # classic and KIP-848 ones when they run); the time measured is that group's.
        groups = [("fault-checker", work)] + [
            (jc["group"], JavaCommits(work, jc)) for jc in work.java_consumers]
        group, committer = groups[COORDINATOR_KILLS[0] % len(groups)]
        COORDINATOR_KILLS[0] += 1
        victim = by_id[coordinator_of(admin, group)]
    elif fault == "kill-txn-coordinator":
        victim = by_id[txn_coordinator_of(admin)]
    elif fault == "kill-out-leader":
        victim = by_id[retrying("leader of the output", lambda: partition_state(
            admin, 0, OUT_TOPIC)[0] if partition_state(admin, 0, OUT_TOPIC)[0] >= 0
            else {}["none"])]
    elif fault in ("pause", "partition"):
        victim = by_id[leader]
    else:
        times = []
        for n in nodes:
            t0 = time.monotonic()
            n.stop()
            times.append(wait_ack(work, 0, t0))
            n.start()
            n.wait_ready()
            wait_whole(admin, nodes, work.partitions)
        return times
    log(f"{fault}: node {victim.nid} (partition 0 leader {leader}, ISR {isr})")
    t0 = time.monotonic()
    if fault == "partition":
        net.cut(victim.nid - 1, True)
        try:
            took = wait_ack(work, 0, t0)
            rest = session_ms / 1000 + 2 - (time.monotonic() - t0)
            if rest > 0:
                time.sleep(rest)
        finally:
            net.cut(victim.nid - 1, False)
        return [took]
    if fault == "pause":
        victim.signal(signal.SIGSTOP)
        took = wait_ack(work, 0, t0)
        rest = session_ms / 1000 + 2 - (time.monotonic() - t0)
        if rest > 0:
            time.sleep(rest)
        victim.signal(signal.SIGCONT)
        return [took]
    if fault == "kill-coordinator":
        log(f"{fault}: node {victim.nid} coordinates group {group}")
    victim.kill()
    if fault == "kill-coordinator":
        took = wait_commit(committer, t0)
    elif fault in EOS_FAULTS:
        took = wait_commit(work.eos, t0)
    else:
        took = wait_ack(work, 0, t0)
    time.sleep(max(0.0, 2 - (time.monotonic() - t0)))
    victim.start()
    victim.wait_ready()
    return [took]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--rate", type=float, default=100, help="produce loops per second")
    ap.add_argument("--session-ms", type=int, default=3000)
    ap.add_argument("--heartbeat-ms", type=int, default=500)
    ap.add_argument("--java-cp", default="",
                    help="classpath of kafka-clients and FaultProducer: also run the Java producer")
    ap.add_argument("--eos", action="store_true",
                    help="also run the Java exactly-once application (needs --java-cp) and the "
                         "faults that kill its transaction coordinator and an output leader")
    ap.add_argument("--offsets", choices=["fail", "report"], default="fail",
                    help="whether committed offsets going back fail the run (default) or are "
                         "only reported")
    args = ap.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    if args.eos and not args.java_cp:
        print("--eos needs --java-cp")
        return 2
    if args.eos and args.faults == ",".join(FAULTS):
        faults += EOS_FAULTS
    for f in faults:
        if f not in FAULTS + EOS_FAULTS or (f in EOS_FAULTS and not args.eos):
            print(f"unknown fault {f}; known: {', '.join(FAULTS)} (with --eos: "
                  f"{', '.join(EOS_FAULTS)})")
            return 2

    net = Net(3)
    try:
        net.setup()
        hosts, ports, namespaces = net.hosts, [9092, 9093] * 3, net.ns
        log(f"nodes in network namespaces {', '.join(net.ns)} ({', '.join(hosts)})")
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        net.teardown()
        net = None
        if "partition" in faults:
            err = getattr(e, "stderr", b"") or b""
            print(f"cannot make network namespaces ({err.decode().strip() or e}); the "
                  "partition fault needs them (run as root)")
            return 2
        hosts, ports, namespaces = ["127.0.0.1"] * 3, free_ports(6), [None] * 3
    voters = ",".join(f"{i + 1}@{hosts[i]}:{ports[2 * i + 1]}" for i in range(3))
    nodes = [Node(args.binary, args.work, i + 1, hosts[i], ports[2 * i], ports[2 * i + 1],
                  voters, args.session_ms, args.heartbeat_ms, namespaces[i]) for i in range(3)]
    bootstrap = ",".join(f"{n.host}:{n.port}" for n in nodes)
    for n in nodes:
        n.start()
    try:
        for n in nodes:
            n.wait_ready()
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
        fut = admin.create_topics([NewTopic(TOPIC, args.partitions, 3,
                                            config={"min.insync.replicas": "2"})])
        fut[TOPIC].result(30)
        if args.eos:
            fut = admin.create_topics([NewTopic(OUT_TOPIC, args.partitions, 3,
                                                config={"min.insync.replicas": "2"})])
            fut[OUT_TOPIC].result(30)
            WHOLE_TOPICS.append(OUT_TOPIC)
        wait_whole(admin, nodes, args.partitions)
        work = Workload(bootstrap, args.partitions, args.rate)
        producer = threading.Thread(target=work.produce, daemon=True)
        consumer = threading.Thread(target=work.consume, daemon=True)
        producer.start()
        consumer.start()
        if args.java_cp:
            work.java(args.java_cp)
            work.java_consumer(args.java_cp, "fault-java-classic", "classic")
            work.java_consumer(args.java_cp, "fault-java-848", "consumer")
        if args.eos:
            work.eos = EosApp(args.java_cp, bootstrap, args.partitions)
        time.sleep(3)
        results = {f: {"acked": 0, "times": [], "no_ack": 0} for f in faults}
        for r in range(args.rounds):
            for f in faults:
                wait_whole(admin, nodes, args.partitions)
                before = work.acked_count()
                took = inject(f, nodes, admin, work, args.session_ms, net)
                for t in took:
                    if t is None:
                        results[f]["no_ack"] += 1
                    else:
                        results[f]["times"].append(t)
                wait_whole(admin, nodes, args.partitions)
                time.sleep(1)
                results[f]["acked"] += work.acked_count() - before
                log(f"round {r + 1} {f}: first ack after {['-' if t is None else f'{t:.2f}s' for t in took]}")
        time.sleep(2)
        work.stop_producing.set()
        producer.join(180)
        if args.java_cp:
            work.stop_java()
        java_acked = getattr(work, "java_acked", {p: [] for p in range(args.partitions)})
        acked_offsets = {p: {a[1] for a in work.acked[p]} | {a[1] for a in java_acked[p]}
                         for p in range(args.partitions)}
        # Let the group consumer read every acknowledged record before it stops and commits.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with work.lock:
                behind = any(acked_offsets[p] - work.consumed_offsets[p]
                             for p in range(args.partitions))
            if not behind:
                break
            time.sleep(0.2)
        work.stop_consuming.set()
        consumer.join(60)
        eos = getattr(work, "eos", None)
        eos_result = None
        if eos is not None:
            # The application must have committed its way through the whole input.
            probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "fault-probe",
                              "log_level": 2})
            in_ends = {p: probe.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
                       for p in range(args.partitions)}
            probe.close()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with eos.lock:
                    if all(eos.positions.get(p, 0) >= in_ends[p] for p in range(args.partitions)):
                        break
                time.sleep(0.5)
            eos.stop()
            out = read_committed_all(bootstrap, OUT_TOPIC, args.partitions)
            eos_lost = eos_dup = 0
            for p in range(args.partitions):
                counts = {}
                for v in out[p]:
                    counts[v] = counts.get(v, 0) + 1
                eos_dup += sum(c - 1 for c in counts.values() if c > 1)
                for prefix, acked in ((f"{p}:", work.acked[p]), (f"j{p}:", java_acked[p])):
                    eos_lost += sum(1 for a in acked if counts.get(f"T({prefix}{a[0]})", 0) == 0)
            eos_result = {
                "lost": eos_lost, "dup": eos_dup,
                "out": sum(len(v) for v in out.values()),
                "behind": {p: (eos.positions.get(p, 0), in_ends[p]) for p in range(args.partitions)
                           if eos.positions.get(p, 0) < in_ends[p]},
                "commits": len(eos.commit_times), "aborted": len(eos.aborted),
                "restarts": eos.restarts, "fatal": eos.fatal[:3], "why": eos.aborted[:5],
            }
        if work.java_consumers:
            # Each Java consumer must have read every acknowledged record before it stops.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with work.lock:
                    behind = any(acked_offsets[p] - jc["records"][p]
                                 for jc in work.java_consumers for p in range(args.partitions))
                if not behind:
                    break
                time.sleep(0.5)
            work.stop_java_consumers()

        ends = {p: max([a[1] + 1 for a in work.acked[p]] + [a[1] + 1 for a in java_acked[p]]
                       + [0])
                for p in range(args.partitions)}
        got = read_everything(bootstrap, args.partitions, ends)
        lost = dup = disorder = 0
        java_lost = java_dup = 0
        for p in range(args.partitions):
            counts = {}
            for v in got[p]:
                counts[v] = counts.get(v, 0) + 1
            for prefix, acked, is_java in ((f"{p}:", work.acked[p], False),
                                           (f"j{p}:", java_acked[p], True)):
                acked_vals = {f"{prefix}{a[0]}" for a in acked}
                n_lost = sum(1 for v in acked_vals if v not in counts)
                n_dup = sum(c - 1 for v, c in counts.items() if c > 1 and v in acked_vals)
                seqs = [int(v.split(":")[1]) for v in got[p] if v.startswith(prefix)]
                disorder += sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
                if is_java:
                    java_lost, java_dup = java_lost + n_lost, java_dup + n_dup
                lost, dup = lost + n_lost, dup + n_dup
            offsets = [a[1] for a in work.acked[p]] + [a[1] for a in java_acked[p]]
            if len(set(offsets)) != len(offsets):
                log(f"partition {p}: two acknowledged records share an offset")
                dup += len(offsets) - len(set(offsets))
        # No record skipped: every acknowledged offset was consumed by each group.
        skipped = {"librdkafka": sum(len(acked_offsets[p] - work.consumed_offsets[p])
                                     for p in range(args.partitions))}
        for jc in work.java_consumers:
            skipped[jc["group"]] = sum(len(acked_offsets[p] - jc["records"][p])
                                       for p in range(args.partitions))
        java_commit_lost = 0
        for jc in work.java_consumers:
            for p, off in jc["commits"].items():
                if jc["final"].get(p, -1) < off:
                    java_commit_lost += 1
                    log(f"{jc['group']} partition {p}: committed {off}, now {jc['final'].get(p)}")
            if not jc["done"]:
                java_commit_lost += 1
                log(f"{jc['group']}: did not report its committed offsets")
        commit_lost = 0
        if work.final_committed is None:
            commit_lost = -1
        else:
            for p, off in work.commits.items():
                if work.final_committed.get(p, -1) < off:
                    commit_lost += 1
                    log(f"partition {p}: committed {off}, now {work.final_committed.get(p)}")

        print()
        print(f"fault harness: 3 nodes ({'network namespaces' if net else 'loopback'}), topic {TOPIC} ({args.partitions} partitions, RF 3, "
              f"min.insync.replicas 2), idempotent acks=all librdkafka producer "
              f"({args.rate:g} loops/s), read_committed group consumer, "
              f"broker.session.timeout.ms={args.session_ms}, {args.rounds} round(s)")
        print(f"{'fault':<17} {'acked':>7} {'no ack':>6} {'first ack median':>17} {'max':>7}"
              "   (kill-coordinator: first successful offset commit)")
        for f in faults:
            ts = results[f]["times"]
            med = f"{statistics.median(ts):.2f}s" if ts else "-"
            mx = f"{max(ts):.2f}s" if ts else "-"
            print(f"{f:<17} {results[f]['acked']:>7} {results[f]['no_ack']:>6} {med:>17} {mx:>7}")
        total_acked = work.acked_count()
        print(f"librdkafka: acknowledged {total_acked}; all producers: lost {lost}, duplicated "
              f"{dup}, out of order {disorder}; librdkafka delivery failures {len(work.failed)}, "
              f"undelivered "
              f"{getattr(work, 'undelivered', '?')}")
        if args.java_cp:
            n = sum(len(v) for v in java_acked.values())
            print(f"java producer (kafka-clients): acknowledged {n}, lost {java_lost}, "
                  f"duplicated {java_dup}, delivery failures {len(work.java_failed)}")
        print(f"consumer: {work.consumed} records, {len(work.commits)} partitions committed, "
              f"committed offsets gone back {commit_lost}, high watermark regressions "
              f"{len(work.hw_regressions)} {work.hw_regressions[:5]}, commit failures "
              f"{work.commit_failures}")
        for jc in work.java_consumers:
            print(f"java consumer {jc['group']} ({jc['protocol']} protocol): "
                  f"{sum(len(v) for v in jc['records'].values())} distinct records, "
                  f"{len(jc['commits'])} partitions committed, commit failures {jc['failures']}")
        print(f"records skipped by a group consumer: {skipped}; Java consumers' committed offsets "
              f"gone back {java_commit_lost}")
        for e in work.failed[:10]:
            print(f"  delivery failure: {e}")
        if eos_result is not None:
            print(f"exactly-once application (Java, exactly_once_v2): {eos_result['commits']} "
                  f"transactions committed, {eos_result['aborted']} aborted and retried, "
                  f"{eos_result['restarts']} restarts; output {eos_result['out']} records: "
                  f"acknowledged inputs missing {eos_result['lost']}, duplicated "
                  f"{eos_result['dup']}; behind {eos_result['behind']}; aborts "
                  f"{eos_result['why']} fatal {eos_result['fatal']}")
        if commit_lost and args.offsets == "report":
            print("NOTE: committed offsets went back (reported, not failed: --offsets report)")
        offsets_bad = (commit_lost or java_commit_lost) and args.offsets == "fail"
        bad = (lost or dup or disorder or offsets_bad or work.hw_regressions
               or any(skipped.values())
               or (eos_result is not None and (eos_result["lost"] or eos_result["dup"]
                                               or eos_result["behind"]))
               or any(results[f]["no_ack"] for f in faults) or total_acked == 0)
        print("FAULT HARNESS:", "FAILED" if bad else "passed")
        return 1 if bad else 0
    finally:
        for n in nodes:
            if n.alive():
                try:
                    n.signal(signal.SIGCONT)
                    n.stop()
                except Exception:  # noqa: BLE001 - cleanup
                    n.kill()
        if net:
            net.teardown()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"fault harness could not run: {e}")
        sys.exit(2)
