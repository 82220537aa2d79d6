"""Soak test: mixed client traffic against one broker for M minutes, then check that
everything produced was consumed and nothing errored, and report the broker's memory and
CPU.

Every client runs in its own process (the broker and the clients share a 2-core machine;
one Python process would be GIL-bound long before the broker is):

  producers   8, keyed, each at --rate records/s, self-describing values:
              p0-p3  confluent-kafka, idempotent acks=all; none / lz4 / zstd / snappy
              p4     confluent-kafka, acks=1, gzip
              p5     confluent-kafka, acks=1, no batching (linger.ms=0): many small requests
              p6     kafka-python, idempotent acks=all, gzip
              p7     aiokafka, acks=all
  groups      soak-classic:  2 confluent-kafka members, classic protocol; one member leaves
                             and rejoins every --churn seconds (rebalances under load)
              soak-consumer: 2 confluent-kafka members, KIP-848 (group.protocol=consumer)
  assign()    2 confluent-kafka consumers without a group, from offset 0: even partitions
              with default fetch sizes, odd partitions with small ones; they check
              per-producer order and fingerprint every record (kafka-python and aiokafka
              consumers cannot take part: the venv lacks their snappy/lz4/zstd libraries)
  admin       every 2 s: create + describe + delete a temp topic, describe topic and
              broker configs, list groups, describe the classic group, list offsets
              (confluent-kafka and kafka-python admin clients alternately)

Checks at the end (any failure -> exit 1):
  * no client error of any kind (error callbacks, delivery failures, consume errors,
    exceptions, a worker that did not finish);
  * per partition, the producers' acknowledged offsets are exactly 0..high watermark-1;
  * each group's members together consumed every one of those offsets at least once;
  * the assign() consumers read every offset once, with values intact and per-producer
    order kept, and an order-independent fingerprint of (partition, offset, key, value)
    equal to the producers' fingerprint of what they were told was stored;
  * every temp topic created was deleted.
Reported, never failed on: broker RSS after warm-up, at the end and peak; broker CPU;
throughput; the broker's own WARN/ERROR log lines.
"""
import argparse
import asyncio
import base64
import hashlib
import json
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOPIC = "soak"
GROUPS = {"soak-classic": "classic", "soak-consumer": "consumer"}


def ASSIGN(partitions):
    """(name, extra consumer settings, partitions) of the two assign() consumers: one with
    default fetch sizes, one with small ones (many small fetches and partial batches)."""
    return [("assign-even", {}, range(0, partitions, 2)),
            ("assign-odd-smallfetch", {"fetch.max.bytes": 1000000,
                                       "max.partition.fetch.bytes": 16384,
                                       "fetch.wait.max.ms": 50}, range(1, partitions, 2))]

PRODUCERS = [
    ("p0", "confluent", {"enable.idempotence": True, "acks": "all", "compression.type": "none"}),
    ("p1", "confluent", {"enable.idempotence": True, "acks": "all", "compression.type": "lz4"}),
    ("p2", "confluent", {"enable.idempotence": True, "acks": "all", "compression.type": "zstd"}),
    ("p3", "confluent", {"enable.idempotence": True, "acks": "all", "compression.type": "snappy"}),
    ("p4", "confluent", {"enable.idempotence": False, "acks": "1", "compression.type": "gzip"}),
    ("p5", "confluent", {"enable.idempotence": False, "acks": "1", "linger.ms": 0,
                         "batch.num.messages": 1}),
    ("p6", "kafka-python", {"enable_idempotence": True, "acks": "all",
                            "compression_type": "gzip"}),
    ("p7", "aiokafka", {"acks": "all"}),
]


def now():
    return time.monotonic()


# ---------------------------------------------------------------------------------------
# Record format: key b"key-<producer>-<n>", value b"<producer>:<seq>:" + filler to size.

def make_record(pid, seq, size):
    head = f"{pid}:{seq}:".encode()
    return f"key-{pid}-{seq % 97}".encode(), head + b"x" * max(0, size - len(head))


def check_record(key, value, size):
    """(producer, seq) when key and value are intact, else None."""
    try:
        pid, seq, filler = value.split(b":", 2)
        seq = int(seq)
        pid = pid.decode()
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    head = len(value) - len(filler)
    if key != f"key-{pid}-{seq % 97}".encode():
        return None
    if filler != b"x" * max(0, size - head):
        return None
    return pid, seq


def fingerprint(partition, offset, key, value):
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{partition}:{offset}:".encode())
    h.update(key or b"")
    h.update(b"\0")
    h.update(value or b"")
    return int.from_bytes(h.digest(), "big")


class Errors:
    """Counts every error and keeps the first few messages."""

    def __init__(self, who):
        self.who = who
        self.count = 0
        self.samples = []
        self.lock = threading.Lock()

    def add(self, what):
        with self.lock:
            self.count += 1
            if len(self.samples) < 20:
                self.samples.append(f"{time.strftime('%H:%M:%S')} {self.who}: {what}")


def write_result(work, name, data):
    tmp = os.path.join(work, f"{name}.json.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, os.path.join(work, f"{name}.json"))


def quiet_logger(name):
    lg = logging.getLogger(name)
    lg.addHandler(logging.NullHandler())
    lg.propagate = False
    return lg


# ---------------------------------------------------------------------------------------
# Producers

class AckBook:
    """Per-partition acknowledged offsets, count, bytes and fingerprint."""

    def __init__(self, partitions):
        self.offsets = {p: [] for p in range(partitions)}
        self.fp = {p: 0 for p in range(partitions)}
        self.count = 0
        self.bytes = 0
        self.lock = threading.Lock()

    def add(self, partition, offset, key, value):
        f = fingerprint(partition, offset, key, value)
        with self.lock:
            self.offsets[partition].append(offset)
            self.fp[partition] ^= f
            self.count += 1
            self.bytes += len(key) + len(value)


def producer_main(name, client, conf, bootstrap, partitions, rate, size, stop_ev, work):
    errors = Errors(name)
    book = AckBook(partitions)
    sent = 0
    t_first = t_last = None
    try:
        if client == "confluent":
            from confluent_kafka import Producer
            c = {"bootstrap.servers": bootstrap, "client.id": f"soak-{name}", "linger.ms": 5,
                 "error_cb": lambda e: errors.add(f"error_cb {e}"), "logger": quiet_logger(name)}
            c.update(conf)
            p = Producer(c)

            def cb(err, msg):
                if err is not None:
                    errors.add(f"delivery {err}")
                else:
                    book.add(msg.partition(), msg.offset(), msg.key(), msg.value())
            t0 = now()
            t_first = time.time()
            while not stop_ev.is_set():
                target = int((now() - t0) * rate)
                while sent < target:
                    k, v = make_record(name, sent, size)
                    try:
                        p.produce(TOPIC, key=k, value=v, on_delivery=cb)
                    except BufferError:
                        p.poll(0.05)
                        continue
                    sent += 1
                p.poll(0.01)
            t_last = time.time()
            left = p.flush(60)
            if left:
                errors.add(f"{left} records undelivered after a 60 s flush")
        elif client == "kafka-python":
            from kafka import KafkaProducer
            c = {"bootstrap_servers": bootstrap, "client_id": f"soak-{name}", "linger_ms": 5}
            c.update(conf)
            p = KafkaProducer(**c)
            t0 = now()
            t_first = time.time()
            while not stop_ev.is_set():
                target = int((now() - t0) * rate)
                while sent < target:
                    k, v = make_record(name, sent, size)
                    fut = p.send(TOPIC, key=k, value=v)
                    fut.add_callback(lambda md, k=k, v=v: book.add(md.partition, md.offset, k, v))
                    fut.add_errback(lambda e: errors.add(f"delivery {e!r}"))
                    sent += 1
                time.sleep(0.01)
            t_last = time.time()
            p.flush(timeout=60)
            p.close(timeout=30)
        elif client == "aiokafka":
            from aiokafka import AIOKafkaProducer

            async def run():
                nonlocal sent, t_first, t_last
                p = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id=f"soak-{name}",
                                     linger_ms=5, **conf)
                await p.start()
                pending = set()
                try:
                    t0 = now()
                    t_first = time.time()
                    while not stop_ev.is_set():
                        target = int((now() - t0) * rate)
                        while sent < target:
                            k, v = make_record(name, sent, size)
                            fut = await p.send(TOPIC, key=k, value=v)
                            pending.add(fut)

                            def done(f, k=k, v=v):
                                pending.discard(f)
                                if f.exception() is not None:
                                    errors.add(f"delivery {f.exception()!r}")
                                else:
                                    md = f.result()
                                    book.add(md.partition, md.offset, k, v)
                            fut.add_done_callback(done)
                            sent += 1
                        await asyncio.sleep(0.01)
                    t_last = time.time()
                    await asyncio.wait_for(p.flush(), 60)
                    if pending:
                        await asyncio.wait(list(pending), timeout=30)
                finally:
                    await p.stop()
            asyncio.run(run())
    except Exception as e:  # noqa: BLE001 - every failure is a soak error
        errors.add(f"exception {e!r}\n{traceback.format_exc()}")
    acked = book.count
    if acked != sent and not errors.count:
        errors.add(f"{sent} sent but {acked} acknowledged")
    write_result(work, name, {
        "role": "producer", "name": name, "client": client, "sent": sent, "acked": acked,
        "bytes": book.bytes, "t_first": t_first, "t_last": t_last,
        "offsets": {p: base64.b64encode(_pack(sorted(v))).decode() for p, v in book.offsets.items()},
        "fp": {p: f"{v:016x}" for p, v in book.fp.items()},
        "errors": errors.count, "error_samples": errors.samples})


def _pack(offsets):
    import array
    return array.array("q", offsets).tobytes()


def _unpack(b64):
    import array
    a = array.array("q")
    a.frombytes(base64.b64decode(b64))
    return a


# ---------------------------------------------------------------------------------------
# Consumers

class Seen:
    """Per-partition bitmap of consumed offsets plus integrity and order checks."""

    def __init__(self, partitions, size, errors, progress, check_order=False, fp=False):
        self.bitmaps = {p: bytearray() for p in range(partitions)}
        self.size = size
        self.errors = errors
        self.progress = progress
        self.records = 0
        self.distinct = 0
        self.bytes = 0
        self.check_order = check_order
        self.last_seq = {}   # (partition, producer) -> seq
        self.fp = {p: 0 for p in range(partitions)} if fp else None

    def add(self, partition, offset, key, value):
        self.records += 1
        self.bytes += len(key or b"") + len(value or b"")
        bm = self.bitmaps[partition]
        i = offset >> 3
        if i >= len(bm):
            bm.extend(b"\0" * (i + 1 - len(bm) + 65536))
        bit = 1 << (offset & 7)
        fresh = not bm[i] & bit
        bm[i] |= bit
        ident = check_record(key, value, self.size)
        if ident is None:
            self.errors.add(f"corrupt record at {partition}/{offset}: key {key!r:.60} "
                            f"value {value!r:.60}")
        if fresh:
            self.distinct += 1
            if self.fp is not None:
                self.fp[partition] ^= fingerprint(partition, offset, key, value)
            if self.check_order and ident is not None:
                last = self.last_seq.get((partition, ident[0]), -1)
                if ident[1] <= last:
                    self.errors.add(f"order: {ident[0]} seq {ident[1]} after {last} "
                                    f"in partition {partition} at offset {offset}")
                self.last_seq[(partition, ident[0])] = ident[1]
        if offset + 1 > self.progress[partition]:
            self.progress[partition] = offset + 1

    def result(self):
        out = {"records": self.records, "distinct": self.distinct, "bytes": self.bytes,
               "bitmaps": {p: base64.b64encode(bytes(bm)).decode()
                           for p, bm in self.bitmaps.items()}}
        if self.fp is not None:
            out["fp"] = {p: f"{v:016x}" for p, v in self.fp.items()}
        return out


def group_member_main(name, group, protocol, bootstrap, partitions, size, churn_s,
                      progress, stop_ev, work):
    from confluent_kafka import Consumer
    errors = Errors(name)
    seen = Seen(partitions, size, errors, progress)
    rejoins = 0
    try:
        def make():
            conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": f"soak-{name}",
                    "auto.offset.reset": "earliest", "enable.auto.commit": True,
                    "auto.commit.interval.ms": 1000,
                    "error_cb": lambda e: errors.add(f"error_cb {e}"),
                    "logger": quiet_logger(name)}
            if protocol == "consumer":
                conf["group.protocol"] = "consumer"
            c = Consumer(conf)
            c.subscribe([TOPIC])
            return c
        c = make()
        next_churn = now() + churn_s if churn_s else None
        while not stop_ev.is_set():
            for msg in c.consume(num_messages=2000, timeout=0.2):
                if msg.error():
                    errors.add(f"consume {msg.error()}")
                    continue
                seen.add(msg.partition(), msg.offset(), msg.key(), msg.value())
            if next_churn and now() >= next_churn:
                c.close()  # commits what was consumed, leaves the group
                c = make()
                rejoins += 1
                next_churn = now() + churn_s
        c.close()
    except Exception as e:  # noqa: BLE001
        errors.add(f"exception {e!r}\n{traceback.format_exc()}")
    res = seen.result()
    res.update({"role": "group", "name": name, "group": group, "protocol": protocol,
                "rejoins": rejoins, "errors": errors.count, "error_samples": errors.samples})
    write_result(work, name, res)


def assign_main(name, conf, parts, bootstrap, partitions, size, progress, stop_ev, work):
    """A group-less confluent-kafka consumer on `parts` from offset 0. (kafka-python and
    aiokafka cannot be used here: the venv has no snappy/lz4/zstd libraries for them, and
    the producers use every codec.)"""
    from confluent_kafka import Consumer, TopicPartition
    errors = Errors(name)
    seen = Seen(partitions, size, errors, progress, check_order=True, fp=True)
    try:
        c = {"bootstrap.servers": bootstrap, "group.id": f"unused-{name}",
             "client.id": f"soak-{name}", "enable.auto.commit": False,
             "error_cb": lambda e: errors.add(f"error_cb {e}"), "logger": quiet_logger(name)}
        c.update(conf)
        consumer = Consumer(c)
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in parts])
        while not stop_ev.is_set():
            for msg in consumer.consume(num_messages=2000, timeout=0.2):
                if msg.error():
                    errors.add(f"consume {msg.error()}")
                    continue
                seen.add(msg.partition(), msg.offset(), msg.key(), msg.value())
        consumer.close()
    except Exception as e:  # noqa: BLE001
        errors.add(f"exception {e!r}\n{traceback.format_exc()}")
    res = seen.result()
    res.update({"role": "assign", "name": name, "partitions": list(parts),
                "errors": errors.count, "error_samples": errors.samples})
    write_result(work, name, res)


# ---------------------------------------------------------------------------------------
# Admin

def admin_main(bootstrap, interval, stop_ev, work):
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType, OffsetSpec
    from kafka.admin import KafkaAdminClient, ConfigResource as KConfigResource, \
        ConfigResourceType, NewTopic as KNewTopic
    errors = Errors("admin")
    ops = {}
    created = deleted = 0
    leftover = []

    def op(name, fn):
        """Run one admin call; True when it succeeded (failures are soak errors)."""
        t = now()
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            errors.add(f"{name}: {e!r}")
            return False
        stat = ops.setdefault(name, [0, 0.0])
        stat[0] += 1
        stat[1] = max(stat[1], now() - t)
        return True

    ca = AdminClient({"bootstrap.servers": bootstrap, "client.id": "soak-admin",
                      "error_cb": lambda e: errors.add(f"error_cb {e}"),
                      "logger": quiet_logger("admin")})
    ka = None
    i = 0
    try:
        ka = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="soak-admin-kp")
        while not stop_ev.wait(interval):
            i += 1
            tmp = f"soak-tmp-{os.getpid()}-{i}"
            if i % 2:
                def create():
                    ca.create_topics([NewTopic(tmp, 3, 1)])[tmp].result(timeout=20)
                if op("create_topic", create):
                    created += 1
                    op("describe_topic", lambda: ca.list_topics(tmp, timeout=10).topics[tmp].partitions)
                    if op("delete_topic", lambda: ca.delete_topics([tmp])[tmp].result(timeout=20)):
                        deleted += 1
                res = ConfigResource(ResourceType.TOPIC, TOPIC)
                op("describe_configs_topic", lambda: ca.describe_configs([res])[res].result(timeout=20))
                bres = ConfigResource(ResourceType.BROKER, "1")
                op("describe_configs_broker", lambda: ca.describe_configs([bres])[bres].result(timeout=20))
                op("list_groups", lambda: ca.list_consumer_groups().result(timeout=20))
                op("describe_group", lambda: ca.describe_consumer_groups(["soak-classic"])
                   ["soak-classic"].result(timeout=20))
                op("list_group_offsets", lambda: ca.list_consumer_group_offsets(
                    [ConsumerGroupTopicPartitions("soak-classic")])["soak-classic"].result(timeout=20))
                op("list_offsets", lambda: [f.result(timeout=20) for f in ca.list_offsets(
                    {TopicPartition(TOPIC, 0): OffsetSpec.latest(),
                     TopicPartition(TOPIC, 1): OffsetSpec.earliest()}).values()])
            else:
                def kcreate():
                    ka.create_topics([KNewTopic(tmp, 3, 1)], timeout_ms=20000)
                if op("kp_create_topic", kcreate):
                    created += 1
                    op("kp_describe_topic", lambda: ka.describe_topics([tmp]))
                    if op("kp_delete_topic", lambda: ka.delete_topics([tmp], timeout_ms=20000)):
                        deleted += 1
                op("kp_describe_configs", lambda: ka.describe_configs(
                    [KConfigResource(ConfigResourceType.TOPIC, TOPIC)]))
                op("kp_list_groups", lambda: ka.list_groups())
                op("kp_describe_group", lambda: ka.describe_groups(["soak-classic"]))
                op("kp_list_group_offsets", lambda: ka.list_group_offsets(["soak-classic", "soak-consumer"]))
                op("kp_describe_cluster", lambda: ka.describe_cluster())
                op("kp_describe_log_dirs", lambda: ka.describe_log_dirs())
        # Temp topics left behind?
        time.sleep(1)
        leftover = [t for t in ca.list_topics(timeout=10).topics if t.startswith("soak-tmp-")]
        if leftover:
            errors.add(f"temp topics not deleted: {leftover[:5]}")
    except Exception as e:  # noqa: BLE001
        errors.add(f"exception {e!r}\n{traceback.format_exc()}")
    finally:
        if ka is not None:
            try:
                ka.close()
            except Exception:  # noqa: BLE001
                pass
    write_result(work, "admin", {"role": "admin", "name": "admin", "cycles": i,
                                 "temp_created": created, "temp_deleted": deleted,
                                 "leftover": leftover,
                                 "ops": {k: {"count": v[0], "max_s": round(v[1], 3)}
                                         for k, v in ops.items()},
                                 "errors": errors.count, "error_samples": errors.samples})


# ---------------------------------------------------------------------------------------
# Orchestration

def bits(b64):
    return base64.b64decode(b64)


def has(bm, off):
    i = off >> 3
    return i < len(bm) and bm[i] & (1 << (off & 7))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--minutes", type=float, default=1.0, help="production time")
    ap.add_argument("--rate", type=int, default=1500, help="records/s per producer")
    ap.add_argument("--value-bytes", type=int, default=256)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds before the 'start' RSS/CPU reading (default: 10 s, at most "
                         "a quarter of the run)")
    ap.add_argument("--churn", type=float, default=20.0,
                    help="seconds between leave/rejoin of one classic-group member (0 = never)")
    ap.add_argument("--drain-timeout", type=float, default=120.0)
    ap.add_argument("--broker-args", default="", help="extra broker arguments, space-separated")
    ap.add_argument("--json", help="also write the summary as JSON here")
    args = ap.parse_args()
    harness.exit_on_sigterm()

    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(10.0, duration / 4)
    work = args.data_dir + ".results"
    os.makedirs(work, exist_ok=True)
    broker = harness.Broker(args.broker_bin, args.data_dir,
                            extra_args=args.broker_args.split() if args.broker_args else [])
    ctx = mp.get_context("spawn")
    stop_produce = ctx.Event()
    stop_consume = ctx.Event()
    procs = []
    problems = []
    rss_samples = []
    summary = {}
    rc = 0
    try:
        t_conn, t_meta = broker.start()
        print(f"soak: broker pid {broker.pid} on {broker.bootstrap} (accepting after "
              f"{t_conn*1000:.1f} ms), log {broker.log_path}")
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "logger": quiet_logger("main")})
        admin.create_topics([NewTopic(TOPIC, args.partitions, 1)])[TOPIC].result(timeout=30)
        idle = harness.proc_status(broker.pid)
        print(f"soak: {len(PRODUCERS)} producers x {args.rate} rec/s x {args.value_bytes} B, "
              f"{args.partitions} partitions, {duration:.0f} s of traffic, warm-up {warmup:.0f} s; "
              f"idle broker RSS {idle['VmRSS']/1024:.1f} MiB")
        sys.stdout.flush()

        progress = {}
        for name, client, conf in PRODUCERS:
            procs.append(ctx.Process(target=producer_main, name=name, args=(
                name, client, conf, broker.bootstrap, args.partitions, args.rate,
                args.value_bytes, stop_produce, work)))
        for group, protocol in GROUPS.items():
            for m in range(2):
                name = f"{group}-{m}"
                progress[name] = ctx.Array("q", args.partitions, lock=False)
                churn = args.churn if (protocol == "classic" and m == 0) else 0
                procs.append(ctx.Process(target=group_member_main, name=name, args=(
                    name, group, protocol, broker.bootstrap, args.partitions, args.value_bytes,
                    churn, progress[name], stop_consume, work)))
        for name, conf, parts in ASSIGN(args.partitions):
            progress[name] = ctx.Array("q", args.partitions, lock=False)
            procs.append(ctx.Process(target=assign_main, name=name, args=(
                name, conf, list(parts), broker.bootstrap, args.partitions, args.value_bytes,
                progress[name], stop_consume, work)))
        procs.append(ctx.Process(target=admin_main, name="admin", args=(
            broker.bootstrap, 2.0, stop_produce, work)))
        for p in procs:
            p.start()

        t_start = now()
        cpu0 = rss0 = None
        next_report = t_start + 15
        while now() - t_start < duration:
            time.sleep(1.0)
            st = harness.proc_status(broker.pid)
            if st is None or not broker.alive():
                raise harness.BrokerError(f"broker died during the soak (exit {broker.proc.poll()})")
            rss_samples.append((now() - t_start, st["VmRSS"]))
            if cpu0 is None and now() - t_start >= warmup:
                cpu0 = (now(), harness.proc_cpu_seconds(broker.pid))
                rss0 = st["VmRSS"]
                print(f"  {now()-t_start:5.0f}s  warm-up done: broker RSS {rss0/1024:.1f} MiB")
            dead = [p.name for p in procs if not p.is_alive()]
            if dead:
                problems.append(f"workers exited early: {dead}")
                print(f"  workers exited early: {dead}")
                break
            if now() >= next_report:
                next_report += 15
                done = sum(sum(progress[n]) for n, _, _ in ASSIGN(args.partitions))
                print(f"  {now()-t_start:5.0f}s  broker RSS {st['VmRSS']/1024:.1f} MiB, "
                      f"CPU {harness.proc_cpu_seconds(broker.pid):.1f} s, assign consumers at {done} records")
                sys.stdout.flush()
        t_stop = now()
        cpu1 = (t_stop, harness.proc_cpu_seconds(broker.pid))
        rss_end_load = harness.proc_status(broker.pid)["VmRSS"]
        if cpu0 is None:
            cpu0 = (t_start, 0.0)
            rss0 = rss_samples[0][1] if rss_samples else None
        stop_produce.set()
        print(f"soak: stopping producers after {t_stop - t_start:.0f} s; waiting for their acknowledgements")
        sys.stdout.flush()
        for p in procs:
            if p.name.startswith("p") or p.name == "admin":
                p.join(120)
                if p.is_alive():
                    problems.append(f"{p.name} did not finish within 120 s")
                    p.kill()
        results = {}
        for name, _, _ in PRODUCERS:
            path = os.path.join(work, f"{name}.json")
            if os.path.exists(path):
                results[name] = json.load(open(path))
            else:
                problems.append(f"{name} wrote no result")

        # High watermarks, then wait until every consumer has caught up.
        from confluent_kafka import Consumer, TopicPartition
        wc = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "soak-watermarks",
                       "logger": quiet_logger("wm")})
        hw = {p: wc.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10, cached=False)[1]
              for p in range(args.partitions)}
        wc.close()
        t_drain = now()

        def caught_up():
            lagging = []
            for group in GROUPS:
                members = [n for n in progress if n.startswith(group)]
                for p in range(args.partitions):
                    if max(progress[n][p] for n in members) < hw[p]:
                        lagging.append(f"{group}/{p}")
            for name, _, parts in ASSIGN(args.partitions):
                for p in parts:
                    if progress[name][p] < hw[p]:
                        lagging.append(f"{name}/{p}")
            return lagging
        while True:
            lagging = caught_up()
            if not lagging:
                break
            dead = [p.name for p in procs if not p.is_alive() and p.name in progress]
            if dead:
                problems.append(f"consumers exited before being told to: {dead}")
                break
            if now() - t_drain > args.drain_timeout:
                problems.append(f"consumers not caught up {args.drain_timeout} s after the "
                                f"producers stopped: {lagging[:8]}")
                break
            time.sleep(0.5)
        drain_s = now() - t_drain
        print(f"soak: consumers caught up {drain_s:.1f} s after the producers stopped")
        stop_consume.set()
        for p in procs:
            p.join(60)
            if p.is_alive():
                problems.append(f"{p.name} did not stop within 60 s")
                p.kill()
        for p in procs:
            path = os.path.join(work, f"{p.name}.json")
            if p.name not in results:
                if os.path.exists(path):
                    results[p.name] = json.load(open(path))
                else:
                    problems.append(f"{p.name} wrote no result")
        rss_end = harness.proc_status(broker.pid)
        cpu_total = harness.proc_cpu_seconds(broker.pid)

        # ------------------------------------------------------------------------------
        # Verification
        errors_total = sum(r["errors"] for r in results.values())
        error_samples = [s for r in results.values() for s in r["error_samples"]]
        acked = {p: [] for p in range(args.partitions)}
        prod_fp = {p: 0 for p in range(args.partitions)}
        total_acked = total_bytes = 0
        t_first = min((r["t_first"] for r in results.values()
                       if r["role"] == "producer" and r["t_first"]), default=None)
        t_last = max((r["t_last"] for r in results.values()
                      if r["role"] == "producer" and r["t_last"]), default=None)
        for r in results.values():
            if r["role"] != "producer":
                continue
            total_acked += r["acked"]
            total_bytes += r["bytes"]
            for p, b64 in r["offsets"].items():
                acked[int(p)].extend(_unpack(b64))
            for p, fp in r["fp"].items():
                prod_fp[int(p)] ^= int(fp, 16)
        verify_problems = []
        for p in range(args.partitions):
            offs = sorted(acked[p])
            if offs != list(range(hw[p])):
                dup = len(offs) - len(set(offs))
                missing = hw[p] - len(set(o for o in offs if o < hw[p]))
                beyond = len([o for o in offs if o >= hw[p]])
                verify_problems.append(f"partition {p}: acknowledged offsets are not exactly "
                                       f"0..{hw[p]-1} ({dup} offsets acknowledged twice, {missing} "
                                       f"never acknowledged, {beyond} at/after the high watermark)")
        group_missing = {}
        for group in GROUPS:
            members = [r for r in results.values() if r["role"] == "group" and r["group"] == group]
            maps = [{int(p): bits(b) for p, b in r["bitmaps"].items()} for r in members]
            missing = 0
            example = None
            for p in range(args.partitions):
                for off in acked[p]:
                    if not any(has(m.get(p, b""), off) for m in maps):
                        missing += 1
                        example = example or (p, off)
            group_missing[group] = missing
            if missing:
                verify_problems.append(f"group {group}: {missing} acknowledged records never "
                                       f"consumed, e.g. partition/offset {example}")
        assign_fp = {}
        assign_missing = 0
        for r in results.values():
            if r["role"] != "assign":
                continue
            for p in r["partitions"]:
                assign_fp[p] = int(r["fp"][str(p)], 16)
                bm = bits(r["bitmaps"][str(p)])
                miss = [o for o in acked[p] if not has(bm, o)]
                assign_missing += len(miss)
                if miss:
                    verify_problems.append(f"{r['name']}: {len(miss)} acknowledged records in "
                                           f"partition {p} never read, e.g. offset {miss[0]}")
        for p in range(args.partitions):
            if p not in assign_fp:
                verify_problems.append(f"partition {p}: no assign() consumer result")
            elif assign_fp[p] != prod_fp[p]:
                verify_problems.append(f"partition {p}: fingerprint of what was read "
                                       f"({assign_fp[p]:016x}) differs from what producers were "
                                       f"acknowledged ({prod_fp[p]:016x})")

        # ------------------------------------------------------------------------------
        # Report
        prod_secs = (t_last - t_first) if t_first and t_last else duration
        peak = max((s for _, s in rss_samples), default=0)
        cpu_window = cpu1[1] - cpu0[1]
        window = cpu1[0] - cpu0[0]
        consumed = {r["name"]: (r["records"], r["distinct"]) for r in results.values()
                    if r["role"] in ("group", "assign")}
        adm = results.get("admin", {})
        lines, nlines = broker.log_grep(("WARN", "ERROR", "panic"))
        summary = {
            "minutes": args.minutes,
            "records_acknowledged": total_acked,
            "bytes_acknowledged": total_bytes,
            "produce_seconds": round(prod_secs, 1),
            "throughput_rec_s": round(total_acked / prod_secs),
            "throughput_mb_s": round(total_bytes / prod_secs / 1e6, 2),
            "high_watermarks": hw,
            "consumed": consumed,
            "rejoins": {r["name"]: r["rejoins"] for r in results.values() if r["role"] == "group"},
            "group_missing": group_missing,
            "assign_missing": assign_missing,
            "admin_cycles": adm.get("cycles"),
            "admin_ops": adm.get("ops"),
            "temp_topics_created_deleted": (adm.get("temp_created"), adm.get("temp_deleted")),
            "client_errors": errors_total,
            "client_error_samples": error_samples[:20],
            "rss_idle_mib": round(idle["VmRSS"] / 1024, 1),
            "rss_after_warmup_mib": round(rss0 / 1024, 1) if rss0 else None,
            "rss_end_of_load_mib": round(rss_end_load / 1024, 1),
            "rss_end_mib": round(rss_end["VmRSS"] / 1024, 1),
            "rss_peak_sampled_mib": round(peak / 1024, 1),
            "rss_hwm_mib": round(rss_end["VmHWM"] / 1024, 1),
            "broker_cpu_s_total": round(cpu_total, 1),
            "broker_cpu_s_load_window": round(cpu_window, 1),
            "broker_cpu_pct_of_core": round(100 * cpu_window / window, 1) if window > 0 else None,
            "drain_seconds": round(drain_s, 1),
            "broker_log_warn_error_lines": nlines,
            "verify_problems": verify_problems,
            "harness_problems": problems,
        }
        stop_s, code = broker.stop()
        summary["shutdown_ms"] = round(stop_s * 1000)
        summary["exit_code"] = code
        if code != 0:
            problems.append(f"broker exited with {code} on SIGTERM")

        print()
        print(f"==== soak summary ({args.minutes:g} min)")
        print(f"records acknowledged:   {total_acked} ({total_bytes/1e6:.1f} MB keys+values) in "
              f"{prod_secs:.1f} s")
        print(f"throughput (produce):   {summary['throughput_rec_s']} rec/s, "
              f"{summary['throughput_mb_s']} MB/s")
        print("consumed (records / distinct offsets):")
        for n, (a, b) in sorted(consumed.items()):
            print(f"    {n:22s} {a:>10} / {b}")
        print(f"classic-group rejoins:  {summary['rejoins']}")
        print(f"missing per group:      {group_missing}; assign() consumers: {assign_missing}")
        print(f"admin cycles:           {adm.get('cycles')}, temp topics created/deleted "
              f"{adm.get('temp_created')}/{adm.get('temp_deleted')}")
        if adm.get("ops"):
            print(f"admin ops:              {sum(v['count'] for v in adm['ops'].values())} calls "
                  f"(count / slowest):")
            items = sorted(adm["ops"].items())
            for i in range(0, len(items), 4):
                print("    " + "  ".join(f"{k} {v['count']}/{v['max_s']*1000:.0f}ms"
                                         for k, v in items[i:i + 4]))
        print(f"client errors:          {errors_total}")
        for s in error_samples[:10]:
            print(f"    {s.splitlines()[0][:300]}")
        print(f"broker RSS:             idle {summary['rss_idle_mib']} MiB, after warm-up "
              f"{summary['rss_after_warmup_mib']} MiB, end of load {summary['rss_end_of_load_mib']} "
              f"MiB, after drain {summary['rss_end_mib']} MiB, peak {summary['rss_peak_sampled_mib']} "
              f"MiB sampled / {summary['rss_hwm_mib']} MiB VmHWM")
        print(f"broker CPU:             {summary['broker_cpu_s_load_window']} s over the "
              f"{window:.0f} s after warm-up ({summary['broker_cpu_pct_of_core']}% of one core); "
              f"{summary['broker_cpu_s_total']} s in total")
        print(f"broker shutdown:        {summary['shutdown_ms']} ms, exit code {code}")
        print(f"broker log WARN/ERROR:  {nlines} lines")
        for line in lines[-10:]:
            print(f"    {line[:300]}")
        for v in verify_problems:
            print(f"VERIFY: {v}")
        for p in problems:
            print(f"HARNESS: {p}")
        if errors_total or verify_problems or problems:
            print("RESULT: FAIL")
            rc = 1
        else:
            print("RESULT: PASS")
    except (harness.BrokerError, Exception) as e:  # noqa: BLE001
        print(f"soak: FAILED: {e!r}\n{traceback.format_exc()}")
        rc = 2
    finally:
        stop_produce.set()
        stop_consume.set()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        try:
            if broker.alive():
                broker.stop()
        except harness.BrokerError:
            pass
        broker.ensure_dead()
    if args.json and summary:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
