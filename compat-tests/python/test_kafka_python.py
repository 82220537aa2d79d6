"""kafka-python (pure-Python client, 3.x): admin topic lifecycle and error codes,
idempotent producer with headers, and a group-less consumer reading back exactly."""
import kafka.errors as Errors
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigFilterType, ConfigResource, ConfigResourceType, KafkaAdminClient

from helpers import WAIT_S, Deadline, describe_diff, expected_rows, sample_records, wait_until

TIMEOUT_MS = int(WAIT_S * 1000)
# A config value no broker would default to, so reading it back proves it was stored.
RETENTION_MS = "123456789"


@pytest.fixture
def admin(bootstrap):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS,
                              bootstrap_timeout_ms=TIMEOUT_MS, client_id="compat-kafka-python")
    yield client
    client.close()


def create(admin, name, partitions=1, configs=None):
    return admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1,
                                       "configs": configs or {}}}, timeout_ms=TIMEOUT_MS)


def test_admin_topic_lifecycle(admin, topic_name):
    name = topic_name()
    result = create(admin, name, partitions=3, configs={"retention.ms": RETENTION_MS})
    assert [(t["name"], t["error_code"]) for t in result["topics"]] == [(name, 0)], result

    assert name in wait_until(lambda: name in admin.list_topics() and admin.list_topics(),
                              f"{name} in list_topics()")

    (desc,) = admin.describe_topics([name])
    assert desc["name"] == name and desc["error_code"] == 0, desc
    parts = sorted(desc["partitions"], key=lambda p: p["partition_index"])
    assert [p["partition_index"] for p in parts] == [0, 1, 2], desc
    for p in parts:
        assert p["error_code"] == 0 and p["leader_id"] >= 0, p
        assert p["replica_nodes"] == [p["leader_id"]] and p["isr_nodes"] == [p["leader_id"]], p

    result = admin.delete_topics([name], timeout_ms=TIMEOUT_MS)
    assert [(t["name"], t["error_code"]) for t in result["topics"]] == [(name, 0)], result
    wait_until(lambda: name not in admin.list_topics(), f"{name} gone from list_topics()")


def test_admin_describe_configs(admin, topic_name):
    name = topic_name()
    create(admin, name, configs={"retention.ms": RETENTION_MS})
    # ALL rather than the default MODIFIED filter: the point is the stored value, not
    # whether the broker labels its source DYNAMIC_TOPIC_CONFIG (reported separately).
    result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)],
                                    config_filter=ConfigFilterType.ALL)
    configs = result["topic"][name]
    assert "retention.ms" in configs, f"retention.ms missing; got keys {sorted(configs)}"
    entry = configs["retention.ms"]
    assert entry["value"] == RETENTION_MS, entry
    assert entry["config_source"] == "DYNAMIC_TOPIC_CONFIG", \
        f"retention.ms was set on the topic, so its source should be DYNAMIC_TOPIC_CONFIG: {entry}"


def test_admin_describe_cluster(admin):
    cluster = admin.describe_cluster()
    brokers = cluster["brokers"]
    assert len(brokers) == 1 and brokers[0]["broker_id"] >= 0, cluster
    assert cluster["controller_id"] == brokers[0]["broker_id"], cluster
    assert cluster["cluster_id"], f"empty cluster id: {cluster}"


@pytest.mark.parametrize("bad", ["bad/name", "has space", "..", "x" * 250, ""],
                         ids=["slash", "space", "dotdot", "250-chars", "empty"])
def test_admin_create_invalid_topic_name(admin, bad):
    with pytest.raises(Errors.InvalidTopicError):
        create(admin, bad)


def test_admin_create_existing_topic(admin, topic_name):
    name = topic_name()
    create(admin, name)
    with pytest.raises(Errors.TopicAlreadyExistsError):
        create(admin, name)


def test_produce_consume_roundtrip(admin, bootstrap, topic_name):
    name = topic_name()
    create(admin, name, partitions=2)
    records = sample_records(null_header_values=False)

    # kafka-python 3.x is idempotent by default; acks=all is what idempotence requires.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS)
    try:
        futures = [producer.send(name, key=k, value=v, headers=h, partition=p, timestamp_ms=ts)
                   for p, k, v, h, ts in records]
        producer.flush(timeout=WAIT_S)
        acked = sorted((f.get(timeout=WAIT_S).partition, f.get(timeout=WAIT_S).offset)
                       for f in futures)
    finally:
        producer.close(timeout=WAIT_S)
    expected = expected_rows(records)
    assert acked == [(r[0], r[1]) for r in expected], "acknowledged partition/offsets"

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=TIMEOUT_MS + 1000,
                             fetch_max_wait_ms=200)
    try:
        tps = [TopicPartition(name, 0), TopicPartition(name, 1)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        got = []
        deadline = Deadline()
        while len(got) < len(records) and not deadline.expired():
            for batch in consumer.poll(timeout_ms=500).values():
                got += [(r.partition, r.offset, r.key, r.value, list(r.headers), r.timestamp)
                        for r in batch]
                assert all(r.timestamp_type == 0 for r in batch), "expected CreateTime records"
        got.sort(key=lambda r: (r[0], r[1]))
        assert got == expected, describe_diff(expected, got)
        assert consumer.end_offsets(tps) == {tps[0]: 4, tps[1]: 4}
    finally:
        consumer.close(autocommit=False)
