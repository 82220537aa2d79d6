"""Log lifecycle through the Python clients: live topic / broker configs (confluent-kafka,
kafka-python), retention by time with consumers at deleted offsets, compaction (sizes from
kafka-python's describe_log_dirs), DeleteRecords (confluent-kafka, kafka-python, aiokafka)
and offsets by timestamp.

Retention and compaction need a broker whose background passes run every second, so this
module starts its own Fjord broker (target/release/fjord or $FJORD_BIN) with
log.retention.check.interval.ms=1000 and log.cleaner.backoff.ms=1000, on a free port with a
fresh data dir; the shared broker of compat-tests/python.sh (BOOTSTRAP) is not used. Run it
with the rest (`compat-tests/python.sh`), on its own through the runner
(`compat-tests/python.sh -k test_lifecycle`) or directly:
    .cache/venv/bin/python -m pytest compat-tests/python/test_lifecycle.py -v -p no:cacheprovider
KEEP_WORK=1 keeps the broker's data dir and log (kept anyway when a test failed).

Python clients cannot address the cluster-default broker resource (confluent-kafka and
kafka-python both insist on a numeric broker id), so DYNAMIC_DEFAULT_BROKER_CONFIG is
covered by compat-tests/java-lifecycle.sh; here the per-broker layer is.
"""
import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pytest
from confluent_kafka import (OFFSET_END, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic, OffsetSpec, ResourceType)

from helpers import Deadline, wait_until

ROOT = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000
DEFAULT_RETENTION = "604800000"
# Bound on every wait for the retention task or the cleaner (each runs every second).
MAINTENANCE_WAIT_S = 30.0
OP_TIMEOUT_S = 20.0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LifecycleBroker:
    def __init__(self, bootstrap, data, log, proc):
        self.bootstrap, self.data, self.log, self.proc = bootstrap, data, log, proc

    def log_tail(self, lines=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"

    def du(self):
        return int(subprocess.run(["du", "-sb", self.data], capture_output=True, text=True,
                                  check=True).stdout.split()[0])


@pytest.fixture(scope="module")
def lc(request):
    binary = os.environ.get("FJORD_BIN") or str(ROOT / "target" / "release" / "fjord")
    assert os.access(binary, os.X_OK), f"broker binary {binary} not built"
    port = _free_port()
    data = tempfile.mkdtemp(prefix="fjord-py-lifecycle.")
    log = data + ".log"
    # The broker reads every FJORD_* variable as a setting and refuses unknown ones.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FJORD_")}
    env.setdefault("RUST_LOG", "info")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [binary, "--listeners", f"PLAINTEXT://127.0.0.1:{port}", "--log-dirs", data,
             "--override", "log.retention.check.interval.ms=1000",
             "--override", "log.cleaner.backoff.ms=1000"],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    broker = LifecycleBroker(f"127.0.0.1:{port}", data, log, proc)
    deadline = Deadline(10)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or deadline.expired():
                proc.kill()
                pytest.fail(f"lifecycle broker did not start; log:\n{broker.log_tail()}")
            time.sleep(0.1)
    failed_before = request.session.testsfailed
    yield broker
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if request.session.testsfailed == failed_before and os.environ.get("KEEP_WORK", "0") != "1":
        shutil.rmtree(data, ignore_errors=True)
        os.remove(log)
    else:
        print(f"\nlifecycle broker data kept in {data}, log in {log}")


@pytest.fixture
def admin(lc):
    return AdminClient({"bootstrap.servers": lc.bootstrap, "client.id": "compat-lifecycle"})


def create(admin, name, partitions=1, config=None):
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})],
                                  operation_timeout=OP_TIMEOUT_S, request_timeout=OP_TIMEOUT_S)
    futures[name].result(timeout=OP_TIMEOUT_S + 5)


def producer(lc, **extra):
    return Producer({"bootstrap.servers": lc.bootstrap, "linger.ms": 5,
                     "message.timeout.ms": int(OP_TIMEOUT_S * 1000), **extra})


def produce(p, topic, records, partition=0):
    """records: (key, value, timestamp_ms or 0 for now); flushes, so they end a batch.
    Returns the delivered offsets in order."""
    reports = []
    for key, value, ts in records:
        p.produce(topic, key=key, value=value, partition=partition, timestamp=ts,
                  on_delivery=lambda err, msg: reports.append((err, msg)))
    assert p.flush(OP_TIMEOUT_S + 5) == 0, "records still undelivered"
    errors = [err for err, _ in reports if err is not None]
    assert not errors, f"delivery errors: {errors[:3]}"
    return [m.offset() for _, m in reports]


def consumer(lc, reset="earliest"):
    return Consumer({"bootstrap.servers": lc.bootstrap, "group.id": "lifecycle-unused",
                     "enable.auto.commit": False, "auto.offset.reset": reset,
                     "fetch.wait.max.ms": 100})


def earliest(admin, topic, partition=0):
    tp = TopicPartition(topic, partition)
    return admin.list_offsets({tp: OffsetSpec.earliest()},
                              request_timeout=OP_TIMEOUT_S)[tp].result(OP_TIMEOUT_S).offset


def latest(admin, topic, partition=0):
    tp = TopicPartition(topic, partition)
    return admin.list_offsets({tp: OffsetSpec.latest()},
                              request_timeout=OP_TIMEOUT_S)[tp].result(OP_TIMEOUT_S).offset


def read_from(c, topic, offset, count, seconds=OP_TIMEOUT_S, partition=0):
    """Assign at `offset` and poll until `count` messages or the time is up. Returns
    (messages, errors)."""
    c.assign([TopicPartition(topic, partition, offset)])
    msgs, errors = [], []
    deadline = Deadline(seconds)
    while len(msgs) < count and not deadline.expired():
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            errors.append(m.error())
            if m.error().code() != KafkaError._PARTITION_EOF:
                break
            continue
        msgs.append(m)
    return msgs, errors


def read_all(c, topic, seconds=OP_TIMEOUT_S, partition=0):
    """Every message from the log start to the high watermark seen at the start."""
    tp = TopicPartition(topic, partition)
    low, high = c.get_watermark_offsets(tp, timeout=OP_TIMEOUT_S)
    msgs = []
    if low >= high:
        return msgs
    c.assign([TopicPartition(topic, partition, low)])
    deadline = Deadline(seconds)
    while not deadline.expired():
        if msgs and msgs[-1].offset() >= high - 1:
            break
        m = c.poll(0.2)
        if m is not None and not m.error():
            msgs.append(m)
    return msgs


def alter(admin, resource_type, name, *ops):
    """ops: (key, value, AlterConfigOpType)."""
    res = ConfigResource(resource_type, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops])
    admin.incremental_alter_configs([res], request_timeout=OP_TIMEOUT_S)[res].result(OP_TIMEOUT_S)


def describe(admin, resource_type, name):
    res = ConfigResource(resource_type, name)
    return admin.describe_configs([res], request_timeout=OP_TIMEOUT_S)[res].result(OP_TIMEOUT_S)


def show(entry):
    return (f"{entry.name}={entry.value} [{ConfigSource(entry.source).name}] synonyms "
            + ", ".join(f"{s.name}={s.value}[{ConfigSource(s.source).name}]"
                        for s in entry.synonyms.values()))


def partition_size(topic, partition=0, bootstrap=None):
    """The partition size DescribeLogDirs reports (kafka-python), or None if absent."""
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(OP_TIMEOUT_S * 1000))
    try:
        for broker in admin.describe_log_dirs(topic_partitions={topic: [partition]}):
            for d in broker["log_dirs"]:
                for t in d["topics"]:
                    if t["name"] == topic:
                        for p in t["partitions"]:
                            if p["partition_index"] == partition:
                                return p["partition_size"]
    finally:
        admin.close()
    return None


# --- configs ----------------------------------------------------------------------------

def test_incremental_alter_and_describe_configs(admin, topic_name):
    name = topic_name()
    create(admin, name)
    T = ResourceType.TOPIC
    cfg = describe(admin, T, name)
    e = cfg["retention.ms"]
    assert (e.value, e.source) == (DEFAULT_RETENTION, ConfigSource.DEFAULT_CONFIG.value), show(e)

    alter(admin, T, name, ("retention.ms", "123456", AlterConfigOpType.SET),
          ("cleanup.policy", "compact", AlterConfigOpType.APPEND))
    cfg = describe(admin, T, name)
    e = cfg["retention.ms"]
    assert (e.value, e.source) == ("123456", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), show(e)
    syn = {n: (s.value, s.source) for n, s in e.synonyms.items()}
    assert syn.get("retention.ms") == ("123456", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), show(e)
    # As Kafka lists it: log.retention.ms has a null default (log.retention.hours holds it),
    # so with nothing set at the broker level the topic value is the only synonym.
    assert list(syn) == ["retention.ms"], show(e)
    e = cfg["cleanup.policy"]
    assert (e.value, e.source) == ("delete,compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), show(e)

    alter(admin, T, name, ("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT))
    assert describe(admin, T, name)["cleanup.policy"].value == "compact"

    with pytest.raises(KafkaException) as bad:
        alter(admin, T, name, ("retention.ms", "soon", AlterConfigOpType.SET))
    err = bad.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG and "soon" in err.str(), err
    with pytest.raises(KafkaException) as unknown:
        alter(admin, T, name, ("no.such.config", "1", AlterConfigOpType.SET))
    err = unknown.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG and "no.such.config" in err.str(), err
    assert describe(admin, T, name)["retention.ms"].value == "123456", "refused changes applied"

    alter(admin, T, name, ("retention.ms", None, AlterConfigOpType.DELETE),
          ("cleanup.policy", None, AlterConfigOpType.DELETE))
    cfg = describe(admin, T, name)
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == \
        (DEFAULT_RETENTION, ConfigSource.DEFAULT_CONFIG.value), show(cfg["retention.ms"])
    assert cfg["cleanup.policy"].value == "delete", show(cfg["cleanup.policy"])


def test_legacy_alter_configs_replaces_the_whole_set(admin, topic_name):
    """AlterConfigs (not incremental; confluent-kafka's alter_configs) replaces every dynamic
    config of the resource: keys not named go back to their defaults."""
    name = topic_name()
    create(admin, name, config={"retention.ms": "3600000", "segment.ms": "7200000"})
    res = ConfigResource(ResourceType.TOPIC, name, set_config={"retention.ms": "7200000"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # alter_configs is deprecated client-side
        admin.alter_configs([res], request_timeout=OP_TIMEOUT_S)[res].result(OP_TIMEOUT_S)
    cfg = describe(admin, ResourceType.TOPIC, name)
    e = cfg["retention.ms"]
    assert (e.value, e.source) == ("7200000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), show(e)
    e = cfg["segment.ms"]
    assert (e.value, e.source) == ("604800000", ConfigSource.DEFAULT_CONFIG.value), show(e)
    bad = ConfigResource(ResourceType.TOPIC, name, set_config={"retention.ms": "soon"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(KafkaException) as refused:
            admin.alter_configs([bad], request_timeout=OP_TIMEOUT_S)[bad].result(OP_TIMEOUT_S)
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG, refused.value
    assert describe(admin, ResourceType.TOPIC, name)["retention.ms"].value == "7200000"


def test_per_broker_default_seen_by_topic(lc, admin, topic_name):
    """BROKER <id> log.retention.ms (confluent-kafka) shows as DYNAMIC_BROKER_CONFIG on a
    topic without an override; kafka-python reads the same through its own DescribeConfigs."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KPConfigResource, ConfigResourceType
    name = topic_name()
    create(admin, name)
    broker_id = str(next(iter(admin.list_topics(timeout=OP_TIMEOUT_S).brokers)))
    B = ResourceType.BROKER
    try:
        alter(admin, B, broker_id, ("log.retention.ms", "900000", AlterConfigOpType.SET))
        e = describe(admin, ResourceType.TOPIC, name)["retention.ms"]
        assert (e.value, e.source) == ("900000", ConfigSource.DYNAMIC_BROKER_CONFIG.value), show(e)
        b = describe(admin, B, broker_id)["log.retention.ms"]
        assert (b.value, b.source) == ("900000", ConfigSource.DYNAMIC_BROKER_CONFIG.value), show(b)

        kp = KafkaAdminClient(bootstrap_servers=lc.bootstrap)
        try:
            got = kp.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, name,
                                                        configs={"retention.ms": None})],
                                      include_synonyms=True, config_filter="all")
        finally:
            kp.close()
        entry = got["topic"][name]["retention.ms"]
        assert entry["value"] == "900000" and entry["config_source"] == "DYNAMIC_BROKER_CONFIG", entry
        assert [s["source"] for s in entry["synonyms"]][-1] == "DEFAULT_CONFIG", entry
    finally:
        alter(admin, B, broker_id, ("log.retention.ms", None, AlterConfigOpType.DELETE))
    e = describe(admin, ResourceType.TOPIC, name)["retention.ms"]
    assert (e.value, e.source) == (DEFAULT_RETENTION, ConfigSource.DEFAULT_CONFIG.value), show(e)


# --- retention --------------------------------------------------------------------------

def test_retention_by_time_and_consumers_at_deleted_offsets(lc, admin, topic_name):
    """300 records 1 hour old and 20 fresh ones; retention.ms=600000 drops exactly the old
    ones (they are in their own batches). confluent-kafka consumers at a deleted offset:
    auto.offset.reset=earliest reads only the fresh records, =error reports the reset."""
    name = topic_name()
    create(admin, name, config={"retention.ms": "600000"})
    p = producer(lc)
    old = int(time.time() * 1000) - HOUR_MS
    produce(p, name, [(f"old-{i}".encode(), b"old", old + i) for i in range(300)])
    fresh = produce(p, name, [(f"fresh-{i}".encode(), f"fresh {i}".encode(), 0) for i in range(20)])
    assert fresh == list(range(300, 320)), fresh
    size_before = partition_size(name, bootstrap=lc.bootstrap)

    low = wait_until(lambda: (v := earliest(admin, name)) >= 300 and v,
                     f"earliest offset of {name} to reach 300", seconds=MAINTENANCE_WAIT_S)
    assert low == 300, low
    assert latest(admin, name) == 320
    size_after = partition_size(name, bootstrap=lc.bootstrap)
    assert size_after < size_before, (size_before, size_after)

    c = consumer(lc, "earliest")
    try:
        msgs, errors = read_from(c, name, 0, 20)
        assert not errors, errors
        assert [(m.offset(), m.key(), m.value()) for m in msgs] == \
            [(300 + i, f"fresh-{i}".encode(), f"fresh {i}".encode()) for i in range(20)]
        produce(p, name, [(b"more", b"more", 0)])
        more, errors = read_from_continue(c, 1)
        assert [m.offset() for m in more] == [320], (more, errors)
    finally:
        c.close()

    c = consumer(lc, "error")
    try:
        msgs, errors = read_from(c, name, 5, 1, seconds=15)
        assert not msgs, [m.offset() for m in msgs]
        assert errors and errors[0].code() == KafkaError._AUTO_OFFSET_RESET, errors
    finally:
        c.close()


def read_from_continue(c, count, seconds=OP_TIMEOUT_S):
    msgs, errors = [], []
    deadline = Deadline(seconds)
    while len(msgs) < count and not deadline.expired():
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            errors.append(m.error())
            continue
        msgs.append(m)
    return msgs, errors


def test_retention_kafka_python_offset_out_of_range(lc, admin, topic_name):
    """kafka-python with auto_offset_reset='none' at a deleted offset raises
    OffsetOutOfRangeError; with 'earliest' it reads the retained records."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    from kafka.errors import OffsetOutOfRangeError
    name = topic_name()
    create(admin, name)
    p = producer(lc)
    old = int(time.time() * 1000) - HOUR_MS
    produce(p, name, [(b"old", b"old", old + i) for i in range(50)])
    produce(p, name, [(b"fresh", f"fresh {i}".encode(), 0) for i in range(5)])
    alter(admin, ResourceType.TOPIC, name, ("retention.ms", "600000", AlterConfigOpType.SET))
    wait_until(lambda: earliest(admin, name) >= 50, f"earliest offset of {name} to reach 50",
               seconds=MAINTENANCE_WAIT_S)
    tp = KTP(name, 0)
    for reset in ("none", "earliest"):
        c = KafkaConsumer(bootstrap_servers=lc.bootstrap, auto_offset_reset=reset,
                          enable_auto_commit=False, consumer_timeout_ms=1000,
                          request_timeout_ms=int(OP_TIMEOUT_S * 1000) + 5000)
        try:
            c.assign([tp])
            c.seek(tp, 3)
            if reset == "none":
                with pytest.raises(OffsetOutOfRangeError):
                    deadline = Deadline(15)
                    while not deadline.expired():
                        c.poll(timeout_ms=200)
            else:
                got = []
                deadline = Deadline(OP_TIMEOUT_S)
                while len(got) < 5 and not deadline.expired():
                    for records in c.poll(timeout_ms=200).values():
                        got.extend(records)
                assert [(r.offset, r.value) for r in got] == \
                    [(50 + i, f"fresh {i}".encode()) for i in range(5)]
        finally:
            c.close()


# --- compaction ---------------------------------------------------------------------------

KEYS, VERSIONS = 200, 5


def test_compaction_latest_value_per_key(lc, admin, topic_name):
    """200 keys x 5 versions (every 10th key ends in a tombstone 1 hour old), then a one-record
    head: the cleaner leaves exactly the latest value of every live key plus the head, at the
    original offsets, and DescribeLogDirs shows the partition shrink."""
    name = topic_name()
    create(admin, name, config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
                                "delete.retention.ms": "1000"})
    p = producer(lc)
    old = int(time.time() * 1000) - HOUR_MS
    expected = {}
    for v in range(VERSIONS):
        batch = []
        for k in range(KEYS):
            key = f"key-{k:04d}".encode()
            if v == VERSIONS - 1 and k % 10 == 3:
                batch.append((key, None, old))
                expected.pop(key, None)
            else:
                value = f"{key.decode()} v{v} ".encode() + b"x" * 150
                batch.append((key, value, 0))
                expected[key] = (value, v * KEYS + k)
        produce(p, name, batch)
    size_before = partition_size(name, bootstrap=lc.bootstrap)
    [head] = produce(p, name, [(b"head", b"head", 0)])
    assert head == VERSIONS * KEYS
    expected[b"head"] = (b"head", head)

    c = consumer(lc)
    last = {}

    def compacted():
        msgs = read_all(c, name)
        got = {}
        dup = 0
        for m in msgs:
            dup += m.key() in got
            got[m.key()] = (m.value(), m.offset())
        last["problem"] = (f"{len(msgs)} records, {dup} duplicate keys, "
                           f"{len(set(got) - set(expected))} deleted keys present, "
                           f"{sum(1 for k in expected if got.get(k) != expected[k])} keys wrong")
        return dup == 0 and got == expected

    try:
        ok = wait_until_quiet(compacted, MAINTENANCE_WAIT_S * 2)
    finally:
        c.close()
    assert ok, f"not compacted within {MAINTENANCE_WAIT_S * 2}s: {last['problem']}\n{lc.log_tail(10)}"
    size_after = partition_size(name, bootstrap=lc.bootstrap)
    print(f"compaction: partition size {size_before} -> {size_after} bytes; du {lc.du()} bytes")
    assert size_after < size_before / 3, (size_before, size_after)


def wait_until_quiet(predicate, seconds):
    deadline = Deadline(seconds)
    while not deadline.expired():
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_compact_and_delete_policy(lc, admin, topic_name):
    """cleanup.policy=compact,delete: retention.ms drops the batch of records 1 hour old and
    the cleaner compacts the fresh ones, on the same topic."""
    name = topic_name()
    create(admin, name, config={"cleanup.policy": "compact,delete", "retention.ms": "600000",
                                "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1000"})
    p = producer(lc)
    old = int(time.time() * 1000) - HOUR_MS
    produce(p, name, [(f"old-{k}".encode(), b"old", old + k) for k in range(50)])
    for v in range(2):
        produce(p, name, [(f"key-{k}".encode(), f"v{v}".encode(), 0) for k in range(50)])
    produce(p, name, [(b"head", b"head", 0)])
    expected = {f"key-{k}".encode(): (b"v1", 100 + k) for k in range(50)}
    expected[b"head"] = (b"head", 150)

    c = consumer(lc)
    last = {}

    def done():
        msgs = read_all(c, name)
        got = [(m.key(), (m.value(), m.offset())) for m in msgs]
        last["state"] = (earliest(admin, name), len(got))
        return last["state"][0] == 50 and dict(got) == expected and len(got) == len(expected)

    try:
        ok = wait_until_quiet(done, MAINTENANCE_WAIT_S)
    finally:
        c.close()
    assert ok, f"(earliest offset, records) = {last.get('state')}; want (50, {len(expected)})"


def test_compacted_topic_refuses_keyless_records(lc, admin, topic_name):
    name = topic_name()
    create(admin, name, config={"cleanup.policy": "compact"})
    p = producer(lc)
    reports = []
    p.produce(name, value=b"no key", partition=0, on_delivery=lambda err, msg: reports.append(err))
    p.flush(OP_TIMEOUT_S + 5)
    assert reports and reports[0] is not None and reports[0].code() == KafkaError.INVALID_RECORD, reports


# --- DeleteRecords --------------------------------------------------------------------------

def _delete_confluent(lc, admin, name, offset):
    tp = TopicPartition(name, 0, offset)
    return admin.delete_records([tp], request_timeout=OP_TIMEOUT_S)[tp].result(OP_TIMEOUT_S).low_watermark


def _delete_kafka_python(lc, admin, name, offset):
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP
    kp = KafkaAdminClient(bootstrap_servers=lc.bootstrap)
    try:
        r = kp.delete_records({KTP(name, 0): offset}, timeout_ms=int(OP_TIMEOUT_S * 1000))
    finally:
        kp.close()
    [(_, result)] = r.items()
    assert result["error_code"] == 0, result
    return result["low_watermark"]


def _delete_aiokafka(lc, admin, name, offset):
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
    from aiokafka.structs import TopicPartition as ATP

    async def run():
        a = AIOKafkaAdminClient(bootstrap_servers=lc.bootstrap)
        await a.start()
        try:
            r = await a.delete_records({ATP(name, 0): RecordsToDelete(before_offset=offset)},
                                       timeout_ms=int(OP_TIMEOUT_S * 1000))
        finally:
            await a.close()
        return r[ATP(name, 0)]

    return asyncio.run(asyncio.wait_for(run(), OP_TIMEOUT_S + 10))


@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
def test_delete_records(lc, admin, topic_name, client):
    """100 records in batches of 10; DeleteRecords before 40 -> low watermark 40, earliest
    offset 40, a consumer reads from 40; a lower offset keeps 40; deleting up to the end."""
    delete = {"confluent": _delete_confluent, "kafka-python": _delete_kafka_python,
              "aiokafka": _delete_aiokafka}[client]
    name = topic_name(f"-{client}")
    create(admin, name)
    p = producer(lc)
    for b in range(10):
        produce(p, name, [(f"k{i}".encode(), f"v{i}".encode(), 0) for i in range(b * 10, b * 10 + 10)])
    size_before = partition_size(name, bootstrap=lc.bootstrap)

    assert delete(lc, admin, name, 40) == 40
    assert earliest(admin, name) == 40
    c = consumer(lc)
    try:
        msgs = read_all(c, name)
        assert [m.offset() for m in msgs] == list(range(40, 100))
        assert msgs[0].value() == b"v40"
    finally:
        c.close()
    assert partition_size(name, bootstrap=lc.bootstrap) < size_before
    assert delete(lc, admin, name, 25) == 40, "a lower offset must keep the low watermark"
    assert delete(lc, admin, name, 100) == 100
    assert earliest(admin, name) == 100 and latest(admin, name) == 100
    assert partition_size(name, bootstrap=lc.bootstrap) == 0


def test_delete_records_errors_and_offset_end(lc, admin, topic_name):
    """Beyond the high watermark -> OFFSET_OUT_OF_RANGE (confluent-kafka); an unknown topic ->
    UNKNOWN_TOPIC_OR_PARTITION from the broker (kafka-python, sent straight to the broker:
    confluent-kafka fails that one client-side); OFFSET_END (-1) deletes everything."""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP
    name = topic_name()
    create(admin, name)
    produce(producer(lc), name, [(b"k", b"v", 0)] * 10)
    tp = TopicPartition(name, 0, 11)
    with pytest.raises(KafkaException) as oor:
        admin.delete_records([tp], request_timeout=OP_TIMEOUT_S)[tp].result(OP_TIMEOUT_S)
    assert oor.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE, oor.value

    broker_id = next(iter(admin.list_topics(timeout=OP_TIMEOUT_S).brokers))
    kp = KafkaAdminClient(bootstrap_servers=lc.bootstrap)
    try:
        try:
            r = kp.delete_records({KTP("lifecycle-no-such-topic", 0): 1},
                                  timeout_ms=int(OP_TIMEOUT_S * 1000), partition_leader_id=broker_id)
            codes = [v.get("error_code") for v in r.values()]
        except Exception as e:  # kafka-python raises the broker's error for the partition
            codes = [getattr(e, "errno", repr(e))]
    finally:
        kp.close()
    assert codes == [3], f"expected UNKNOWN_TOPIC_OR_PARTITION (3), got {codes}"

    tp = TopicPartition(name, 0, OFFSET_END)
    low = admin.delete_records([tp], request_timeout=OP_TIMEOUT_S)[tp].result(OP_TIMEOUT_S).low_watermark
    assert low == 10 and earliest(admin, name) == 10


# --- offsets by timestamp ------------------------------------------------------------------

def test_offsets_for_times(lc, admin, topic_name):
    """30 records 1 s apart, 5 per batch: confluent-kafka offsets_for_times, AdminClient
    list_offsets(for_timestamp / max_timestamp) and kafka-python offsets_for_times agree on
    the first offset at or after the target, and on 'none' beyond the last record."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    name = topic_name()
    create(admin, name)
    base = (int(time.time() * 1000) - 600_000) // 1000 * 1000
    p = producer(lc)
    for b in range(6):
        produce(p, name, [(f"t{i}".encode(), b"x", base + i * 1000) for i in range(b * 5, b * 5 + 5)])
    cases = {0: 0, base: 0, base + 1: 1, base + 7500: 8, base + 10_000: 10, base + 14_000: 14,
             base + 29_000: 29, base + 29_001: None}

    c = consumer(lc)
    try:
        for ts, want in cases.items():
            [got] = c.offsets_for_times([TopicPartition(name, 0, ts)], OP_TIMEOUT_S)
            assert got.error is None, got
            assert got.offset == (OFFSET_END if want is None else want), (ts - base, got)
    finally:
        c.close()

    tp = TopicPartition(name, 0)
    for ts, want in cases.items():
        r = admin.list_offsets({tp: OffsetSpec.for_timestamp(ts)},
                               request_timeout=OP_TIMEOUT_S)[tp].result(OP_TIMEOUT_S)
        assert r.offset == (-1 if want is None else want), (ts - base, r.offset, r.timestamp)
        if want is not None:
            assert r.timestamp == base + want * 1000, (ts - base, r.offset, r.timestamp)
    r = admin.list_offsets({tp: OffsetSpec.max_timestamp()},
                           request_timeout=OP_TIMEOUT_S)[tp].result(OP_TIMEOUT_S)
    assert (r.offset, r.timestamp) == (29, base + 29_000)

    kc = KafkaConsumer(bootstrap_servers=lc.bootstrap, enable_auto_commit=False,
                       request_timeout_ms=int(OP_TIMEOUT_S * 1000) + 5000)
    try:
        for ts, want in cases.items():
            got = kc.offsets_for_times({KTP(name, 0): ts})[KTP(name, 0)]
            if want is None:
                assert got is None, (ts - base, got)
            else:
                assert got is not None and (got.offset, got.timestamp) == (want, base + want * 1000), \
                    (ts - base, got)
    finally:
        kc.close()


def test_log_append_time(lc, admin, topic_name):
    """message.timestamp.type=LogAppendTime: the broker's time replaces the producer's, in
    the delivery report and when consumed."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME
    name = topic_name()
    create(admin, name, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    p = producer(lc)
    reports = []
    for i in range(3):
        p.produce(name, key=b"k", value=b"v", partition=0, timestamp=1_600_000_000_000,
                  on_delivery=lambda err, msg: reports.append((err, msg)))
    p.flush(OP_TIMEOUT_S + 5)
    after = int(time.time() * 1000)
    assert all(err is None for err, _ in reports), reports
    for _, m in reports:
        kind, ts = m.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= after + 1000, (kind, ts)
    c = consumer(lc)
    try:
        msgs = read_all(c, name)
    finally:
        c.close()
    assert len(msgs) == 3
    for m in msgs:
        kind, ts = m.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= after + 1000, (kind, ts)
