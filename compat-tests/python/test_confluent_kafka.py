"""confluent-kafka (librdkafka 2.x): admin topic lifecycle and error codes, idempotent
producer with delivery callbacks, and consumers by assign() (group scenarios arrive with the group coordinator)."""
import logging
import uuid
import warnings

import pytest
from confluent_kafka import (TIMESTAMP_CREATE_TIME, Consumer, KafkaError, KafkaException,
                             Producer, TopicCollection, TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType

from helpers import WAIT_S, Deadline, describe_diff, expected_rows, sample_records, wait_until

RETENTION_MS = "123456789"


@pytest.fixture
def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "client.id": "compat-confluent"})


def create(admin, name, partitions=1, config=None):
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})],
                                  operation_timeout=WAIT_S, request_timeout=WAIT_S)
    futures[name].result(timeout=WAIT_S + 5)


def error_code(excinfo):
    return excinfo.value.args[0].code()


def test_admin_topic_lifecycle(admin, topic_name):
    name = topic_name()
    create(admin, name, partitions=3, config={"retention.ms": RETENTION_MS})

    md = wait_until(lambda: (m := admin.list_topics(timeout=WAIT_S)).topics.get(name) and m,
                    f"{name} in list_topics()")
    assert md.topics[name].error is None, md.topics[name].error
    assert sorted(md.topics[name].partitions) == [0, 1, 2]
    broker_ids = set(md.brokers)
    assert len(broker_ids) == 1, md.brokers

    desc = admin.describe_topics(TopicCollection([name]))[name].result(timeout=WAIT_S)
    assert desc.name == name
    parts = sorted(desc.partitions, key=lambda p: p.id)
    assert [p.id for p in parts] == [0, 1, 2], desc
    for p in parts:
        assert p.leader is not None and p.leader.id in broker_ids, p
        assert [n.id for n in p.replicas] == [p.leader.id] == [n.id for n in p.isr], p

    admin.delete_topics([name], operation_timeout=WAIT_S)[name].result(timeout=WAIT_S + 5)
    wait_until(lambda: name not in admin.list_topics(timeout=WAIT_S).topics,
               f"{name} gone from list_topics()")


def test_admin_describe_configs(admin, topic_name):
    name = topic_name()
    create(admin, name, config={"retention.ms": RETENTION_MS})
    resource = ConfigResource(ResourceType.TOPIC, name)
    configs = admin.describe_configs([resource], request_timeout=WAIT_S)[resource] \
        .result(timeout=WAIT_S)
    assert "retention.ms" in configs, f"retention.ms missing; got keys {sorted(configs)}"
    entry = configs["retention.ms"]
    assert entry.value == RETENTION_MS, entry
    # Depending on the binding version source is the enum or its int value.
    source = entry.source if isinstance(entry.source, ConfigSource) else ConfigSource(entry.source)
    assert source == ConfigSource.DYNAMIC_TOPIC_CONFIG, \
        f"retention.ms was set on the topic, so its source should be DYNAMIC_TOPIC_CONFIG: {source}"


@pytest.mark.parametrize("bad", ["bad/name", "has space", "..", "x" * 250],
                         ids=["slash", "space", "dotdot", "250-chars"])
def test_admin_create_invalid_topic_name(admin, bad):
    with pytest.raises(KafkaException) as excinfo:
        create(admin, bad)
    # Kafka's INVALID_TOPIC_EXCEPTION (17) is TOPIC_EXCEPTION in librdkafka.
    assert error_code(excinfo) == KafkaError.TOPIC_EXCEPTION, excinfo.value


def test_admin_create_existing_topic(admin, topic_name):
    name = topic_name()
    create(admin, name)
    with pytest.raises(KafkaException) as excinfo:
        create(admin, name)
    assert error_code(excinfo) == KafkaError.TOPIC_ALREADY_EXISTS, excinfo.value


def produce_samples(bootstrap, topic):
    """Idempotent produce of sample_records(); returns the records sent, after checking
    every delivery report succeeded with the partition/offset a fresh log must assign."""
    records = sample_records()
    reports = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "message.timeout.ms": int(WAIT_S * 1000), "linger.ms": 5})
    for p, k, v, h, ts in records:
        producer.produce(topic, value=v, key=k, partition=p, headers=h, timestamp=ts,
                         on_delivery=lambda err, msg: reports.append((err, msg)))
    remaining = producer.flush(WAIT_S + 5)
    assert remaining == 0, f"{remaining} messages still undelivered"
    errors = [err for err, _ in reports if err is not None]
    assert not errors, f"delivery errors: {errors}"
    acked = sorted((msg.partition(), msg.offset()) for _, msg in reports)
    assert acked == [(r[0], r[1]) for r in expected_rows(records)], "delivery report offsets"
    return records


def consume_rows(consumer, count):
    """Poll until count records or the deadline; returns (rows, error events seen)."""
    rows, errors = [], []
    deadline = Deadline()
    while len(rows) < count and not deadline.expired():
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            errors.append(msg.error())
            continue
        ts_type, ts = msg.timestamp()
        assert ts_type == TIMESTAMP_CREATE_TIME, f"timestamp type {ts_type}"
        rows.append((msg.partition(), msg.offset(), msg.key(), msg.value(),
                     list(msg.headers() or []), ts))
    return sorted(rows, key=lambda r: (r[0], r[1])), errors


def make_consumer(bootstrap, group, errors, **extra):
    # error_cb collects client-level errors (e.g. coordinator lookups failing) for the report.
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "error_cb": errors.append, "session.timeout.ms": 10000, **extra})


class GroupTrace(logging.Handler):
    """librdkafka's consumer-group debug log, kept so a failing group test can say where
    the group protocol stalled (coordinator lookup, join, sync...) instead of just "0 records"."""

    def __init__(self):
        super().__init__()
        self.lines = []
        self.logger = logging.getLogger(f"rdkafka.cgrp.{uuid.uuid4().hex[:6]}")
        self.logger.addHandler(self)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    def emit(self, record):
        self.lines.append(record.getMessage())

    def config(self):
        return {"debug": "cgrp", "logger": self.logger}

    def summary(self, last=4):
        """Last few distinct state/coordinator lines, oldest first."""
        keep = [line.split("]: ", 1)[-1] for line in self.lines
                if any(w in line for w in ("CGRPSTATE", "CGRPQUERY", "COORD", "JOIN", "SYNC"))]
        return list(dict.fromkeys(keep))[-last:]


def test_produce_idempotent_then_consume_by_assign(admin, bootstrap, topic_name):
    name = topic_name()
    create(admin, name, partitions=2)
    records = produce_samples(bootstrap, name)

    # group.id is mandatory for a librdkafka consumer even with assign(); nothing here
    # needs the coordinator, but the client still looks it up in the background.
    client_errors = []
    consumer = make_consumer(bootstrap, f"compat-assign-{uuid.uuid4().hex[:8]}", client_errors)
    try:
        consumer.assign([TopicPartition(name, 0, 0), TopicPartition(name, 1, 0)])
        got, msg_errors = consume_rows(consumer, len(records))
    finally:
        consumer.close()
    expected = expected_rows(records)
    assert got == expected, f"{describe_diff(expected, got)}; errors: {msg_errors + client_errors}"
    if msg_errors or client_errors:
        warnings.warn(f"assign() read back fine but the consumer reported errors: "
                      f"{[str(e) for e in msg_errors + client_errors]}")
