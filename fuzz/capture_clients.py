#!/usr/bin/env python3
"""Python client workload for the fuzz seed capture (see fuzz/capture-corpus.sh).

Drives confluent-kafka (librdkafka) and kafka-python against BOOTSTRAP (the capture proxy) so
that their real request frames land in the capture: admin (create/delete topics, configs,
partitions, groups), plain / idempotent / transactional producers per codec, and group
consumers with commits (classic protocol, and KIP-848 through librdkafka).
Each step is independent and bounded; a failing step is reported and the next one runs.

Usage: capture_clients.py BOOTSTRAP
"""

import sys
import time
import traceback
import uuid

BOOT = sys.argv[1]
RUN = uuid.uuid4().hex[:6]
results = []


def step(name):
    def wrap(fn):
        t0 = time.time()
        try:
            fn()
            results.append((name, "ok"))
            print(f"capture_clients: {name}: ok ({time.time() - t0:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - every step is best effort
            results.append((name, f"FAILED {e!r}"))
            print(f"capture_clients: {name}: FAILED {e!r}", flush=True)
            traceback.print_exc()
        return fn
    return wrap


def wait_all(futures, timeout=30):
    for f in futures.values():
        f.result(timeout=timeout)


# ---------------------------------------------------------------- confluent-kafka
from confluent_kafka import (  # noqa: E402
    Consumer, KafkaException, Producer, TopicPartition,
)
from confluent_kafka.admin import (  # noqa: E402
    AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic,
)

CK = f"ck-{RUN}"
CK_COMPACT = f"ck-compact-{RUN}"
CK_DOOMED = f"ck-doomed-{RUN}"
admin = AdminClient({"bootstrap.servers": BOOT})


@step("ck admin create topics")
def _():
    wait_all(admin.create_topics([
        NewTopic(CK, num_partitions=3, replication_factor=1),
        NewTopic(CK_COMPACT, num_partitions=1, replication_factor=1,
                 config={"cleanup.policy": "compact", "segment.ms": "100000"}),
        NewTopic(CK_DOOMED, num_partitions=2, replication_factor=1),
    ], operation_timeout=10))


@step("ck admin describe/alter configs, partitions, cluster")
def _():
    wait_all(admin.describe_configs([
        ConfigResource(ConfigResource.Type.TOPIC, CK),
        ConfigResource(ConfigResource.Type.BROKER, "1"),
    ]))
    wait_all(admin.incremental_alter_configs([
        ConfigResource(ConfigResource.Type.TOPIC, CK, incremental_configs=[
            ConfigEntry("retention.ms", "86400000", incremental_operation=AlterConfigOpType.SET),
        ]),
    ]))
    wait_all(admin.alter_configs([
        ConfigResource(ConfigResource.Type.TOPIC, CK_DOOMED, set_config={"retention.ms": "3600000"}),
    ]))
    wait_all(admin.create_partitions([NewPartitions(CK_DOOMED, 4)]))
    admin.list_topics(timeout=10)
    admin.describe_cluster().result(timeout=10)
    try:
        from confluent_kafka import TopicCollection
        wait_all(admin.describe_topics(TopicCollection([CK, CK_COMPACT])))
    except ImportError:
        pass


def ck_produce(topic, codec, n, extra=None):
    conf = {"bootstrap.servers": BOOT, "compression.type": codec, "linger.ms": 5}
    conf.update(extra or {})
    p = Producer(conf)
    for i in range(n):
        key = f"key-{i % 17}".encode()
        value = None if i % 11 == 10 else (f"value {i} " * (1 + i % 7)).encode()
        p.produce(topic, key=key, value=value, headers=[("h", f"{i}".encode()), ("trace", b"\x00\x01")],
                  partition=i % 3 if topic == CK else -1)
        if i % 50 == 49:
            p.poll(0)
    left = p.flush(20)
    if left:
        raise RuntimeError(f"{left} messages not delivered")


for _codec in ("none", "gzip", "snappy", "lz4", "zstd"):
    step(f"ck produce {_codec}")(lambda c=_codec: ck_produce(CK, c, 120))
    step(f"ck idempotent produce {_codec}")(
        lambda c=_codec: ck_produce(CK, c, 60, {"enable.idempotence": True, "acks": "all"}))
step("ck produce to compacted topic (keys, tombstones)")(
    lambda: ck_produce(CK_COMPACT, "none", 40, {"enable.idempotence": True}))
@step("ck produce keyless to compacted topic (refused)")
def _():
    p = Producer({"bootstrap.servers": BOOT, "compression.type": "zstd", "linger.ms": 5})
    errs = []
    p.produce(CK_COMPACT, key=None, value=b"no key", on_delivery=lambda e, m: errs.append(e))
    p.flush(10)
    print(f"capture_clients:   keyless produce outcome: {errs}")


@step("ck transactional producer (commit, abort, offsets)")
def _():
    group = f"ck-txn-group-{RUN}"
    for codec in ("none", "snappy"):
        p = Producer({"bootstrap.servers": BOOT, "transactional.id": f"ck-txn-{codec}-{RUN}",
                      "compression.type": codec, "linger.ms": 5})
        p.init_transactions(15)
        p.begin_transaction()
        for i in range(30):
            p.produce(CK, key=f"t{i}".encode(), value=f"txn {i}".encode(), partition=i % 3)
        c = Consumer({"bootstrap.servers": BOOT, "group.id": group, "auto.offset.reset": "earliest"})
        p.send_offsets_to_transaction([TopicPartition(CK, 0, 5)], c.consumer_group_metadata(), 15)
        c.close()
        p.commit_transaction(15)
        p.begin_transaction()
        p.produce(CK, key=b"aborted", value=b"never visible", partition=1)
        p.flush(10)
        p.abort_transaction(15)


def ck_consume(group, protocol):
    conf = {"bootstrap.servers": BOOT, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "isolation.level": "read_committed"}
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf["session.timeout.ms"] = 6000
    c = Consumer(conf)
    c.subscribe([CK, CK_COMPACT])
    got, deadline = 0, time.time() + 25
    while time.time() < deadline and got < 300:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got += 1
        if got % 40 == 0:
            c.commit(message=m, asynchronous=False)
    c.commit(asynchronous=False)
    c.committed([TopicPartition(CK, p) for p in range(3)], timeout=10)
    c.get_watermark_offsets(TopicPartition(CK, 0), timeout=10)
    c.offsets_for_times([TopicPartition(CK, 0, int(time.time() * 1000) - 60000)], timeout=10)
    c.close()
    if got == 0:
        raise RuntimeError("consumed nothing")
    print(f"capture_clients:   consumed {got}")


step("ck group consumer classic")(lambda: ck_consume(f"ck-classic-{RUN}", "classic"))
step("ck group consumer KIP-848")(lambda: ck_consume(f"ck-848-{RUN}", "consumer"))


@step("ck admin groups, offsets, records, delete topics")
def _():
    admin.list_consumer_groups().result(timeout=10)
    wait_all(admin.describe_consumer_groups([f"ck-classic-{RUN}", f"ck-848-{RUN}"]))
    try:
        from confluent_kafka import ConsumerGroupTopicPartitions
        wait_all(admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(f"ck-classic-{RUN}")]))
    except ImportError:
        pass
    try:
        from confluent_kafka.admin import OffsetSpec
        wait_all(admin.list_offsets({TopicPartition(CK, 0): OffsetSpec.latest(),
                                     TopicPartition(CK, 1): OffsetSpec.earliest()}))
    except (ImportError, AttributeError):
        pass
    try:
        wait_all(admin.delete_records([TopicPartition(CK, 2, 3)]))
    except (AttributeError, KafkaException) as e:
        print(f"capture_clients:   delete_records: {e}")
    try:
        wait_all(admin.delete_consumer_groups([f"ck-848-{RUN}"]))
    except KafkaException as e:
        print(f"capture_clients:   delete group: {e}")
    wait_all(admin.delete_topics([CK_DOOMED], operation_timeout=10))


# ---------------------------------------------------------------- kafka-python
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.admin import ConfigResource as KPConfigResource, ConfigResourceType, NewTopic as KPNewTopic  # noqa: E402

KP = f"kp-{RUN}"


@step("kafka-python admin")
def _():
    a = KafkaAdminClient(bootstrap_servers=BOOT, request_timeout_ms=10000)
    a.create_topics([KPNewTopic(KP, 2, 1), KPNewTopic(KP + "-gone", 1, 1)])
    a.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, KP),
                        KPConfigResource(ConfigResourceType.BROKER, "1")])
    a.list_topics()
    a.describe_topics([KP])
    a.describe_cluster()
    a.delete_topics([KP + "-gone"])
    a.close()


@step("kafka-python produce (none, gzip; idempotent)")
def _():
    for codec, idem in ((None, False), ("gzip", False), (None, True)):
        kw = {"enable_idempotence": True, "acks": "all"} if idem else {"acks": 1}
        p = KafkaProducer(bootstrap_servers=BOOT, compression_type=codec, linger_ms=5, **kw)
        for i in range(80):
            p.send(KP, key=f"k{i % 9}".encode(), value=f"kafka-python {i}".encode() * (1 + i % 4),
                   headers=[("src", b"kafka-python"), ("n", str(i).encode())])
        p.flush(20)
        p.close()


@step("kafka-python group consumer with commits")
def _():
    group = f"kp-group-{RUN}"
    c = KafkaConsumer(KP, bootstrap_servers=BOOT, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=6000)
    got = 0
    for m in c:
        got += 1
        if got % 50 == 0:
            c.commit()
    c.commit()
    c.close()
    if got == 0:
        raise RuntimeError("consumed nothing")


@step("kafka-python admin: groups, offsets, transactions, producers, log dirs, records")
def _():
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata
    group = f"kp-group-{RUN}"
    a = KafkaAdminClient(bootstrap_servers=BOOT, request_timeout_ms=10000)
    calls = [
        ("list_groups", lambda: a.list_groups()),
        ("describe_groups", lambda: a.describe_groups([group])),
        ("list_group_offsets", lambda: a.list_group_offsets({group: None})),
        ("describe_topic_partitions", lambda: a.describe_topic_partitions([KP])),
        ("describe_producers", lambda: a.describe_producers([KTP(KP, 0), KTP(KP, 1)])),
        ("list_transactions", lambda: a.list_transactions()),
        ("describe_transactions", lambda: a.describe_transactions([f"ck-txn-none-{RUN}"])),
        ("describe_log_dirs", lambda: a.describe_log_dirs()),
        ("delete_records", lambda: a.delete_records({KTP(KP, 0): 2})),
        ("alter_group_offsets", lambda: a.alter_group_offsets(group, {KTP(KP, 1): OffsetAndMetadata(3, "", -1)})),
        ("delete_group_offsets", lambda: a.delete_group_offsets(group, [KTP(KP, 1)])),
        ("delete_groups", lambda: a.delete_groups([group])),
    ]
    for name, call in calls:
        try:
            call()
        except Exception as e:  # noqa: BLE001 - the request frame is what matters
            print(f"capture_clients:   kafka-python {name}: {e!r}")
    a.close()


failed = [n for n, r in results if r != "ok"]
print(f"capture_clients: {len(results) - len(failed)} steps ok, {len(failed)} failed: {failed}")
