"""confluent-kafka (librdkafka) consumer groups: the classic protocol and, where librdkafka
has it GA (2.12+), the KIP-848 consumer protocol (group.protocol=consumer) with its
broker-side assignment. Members split a topic, commit, resume, survive a SIGKILLed peer;
the AdminClient lists, describes, alters and deletes groups and their offsets."""
import pytest
from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions,
                             ConsumerGroupType, KafkaError, KafkaException, TopicPartition,
                             libversion)
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from helpers import (CLASSIC_SESSION_S, GROUP_PARTITIONS, GROUP_WAIT_S, WAIT_S, Deadline,
                     check_killed_member_reassigned, check_members_split_and_resume, close_all,
                     create_topic, describe_diff, produce_pinned, wait_for_records,
                     wait_for_split, wait_until)

# KIP-848 is GA from librdkafka 2.12.0 (early access since 2.4); the pinned 2.16 has it, so
# both protocols run. An older pin drops the consumer protocol from the matrix, visibly.
KIP848 = libversion()[1] >= 0x020C0000
PROTOCOLS = ["classic", "consumer"] if KIP848 else ["classic"]
# Kafka's defaults for KIP-848 groups, used when the broker does not report its own.
CONSUMER_SESSION_MS = 45000
CONSUMER_HEARTBEAT_MS = 5000


@pytest.fixture
def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "client.id": "compat-confluent-groups"})


def broker_setting(admin, name, default):
    """A broker setting as DescribeConfigs reports it, or default when not reported."""
    broker_id = next(iter(admin.list_topics(timeout=WAIT_S).brokers))
    resource = ConfigResource(ResourceType.BROKER, str(broker_id))
    configs = admin.describe_configs([resource], request_timeout=WAIT_S)[resource] \
        .result(timeout=WAIT_S + 5)
    entry = configs.get(name)
    return int(entry.value) if entry is not None and entry.value not in (None, "") else default


def make_consumer(bootstrap, group, protocol, errors, name):
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "error_cb": errors.append}
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf.update({"session.timeout.ms": int(CLASSIC_SESSION_S * 1000),
                     "heartbeat.interval.ms": 1000})
    return Consumer(conf)


def read(consumer, count, errors, seconds=GROUP_WAIT_S, settle=2.0):
    """(partition, offset, key) rows until count arrived, then `settle` seconds more so that
    re-reads and extra records show up; sorted, duplicates kept."""
    rows = []
    deadline = Deadline(seconds)
    settle_end = None
    while True:
        for msg in consumer.consume(num_messages=100, timeout=0.2):
            if msg.error():
                errors.append(msg.error())
            else:
                rows.append((msg.partition(), msg.offset(), msg.key().decode()))
        if settle_end is None and (len(rows) >= count or deadline.expired()):
            settle_end = Deadline(settle)
        if settle_end is not None and settle_end.expired():
            return sorted(rows)


def committed(consumer, topic):
    parts = consumer.committed([TopicPartition(topic, p) for p in range(GROUP_PARTITIONS)],
                               timeout=WAIT_S)
    errors = [tp for tp in parts if tp.error]
    assert not errors, f"committed() errors: {errors}"
    return {tp.partition: (tp.offset, tp.metadata) for tp in parts}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_members_split_and_resume(bootstrap, start_member, topic_name, protocol):
    check_members_split_and_resume(start_member, "confluent", bootstrap, topic_name(), protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_killed_member_reassigned(admin, bootstrap, start_member, topic_name, protocol):
    if protocol == "consumer":
        # KIP-848 members cannot choose their session timeout: the broker's applies.
        session_ms = broker_setting(admin, "group.consumer.session.timeout.ms", CONSUMER_SESSION_MS)
        heartbeat_ms = broker_setting(admin, "group.consumer.heartbeat.interval.ms",
                                      CONSUMER_HEARTBEAT_MS)
        check_killed_member_reassigned(start_member, "confluent", bootstrap, topic_name(),
                                       session_ms / 1000, protocol,
                                       slack_s=heartbeat_ms / 1000 + 12)
    else:
        check_killed_member_reassigned(start_member, "confluent", bootstrap, topic_name(),
                                       CLASSIC_SESSION_S, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_commit_metadata_and_resume(bootstrap, topic_name, protocol):
    """commit() of the consumed positions, then explicit offsets with metadata: each new
    consumer in the group starts exactly at what was committed, and committed() hands the
    offsets and metadata back."""
    topic = topic_name()
    group = f"{topic}-group"
    create_topic(bootstrap, topic)
    first = produce_pinned(bootstrap, topic, 4, "first")

    errors = []
    consumer = make_consumer(bootstrap, group, protocol, errors, "resume-1")
    try:
        consumer.subscribe([topic])
        got = read(consumer, len(first), errors)
        assert got == first, f"first consumer: {describe_diff(first, got)}; errors: {errors}"
        result = consumer.commit(asynchronous=False)
        assert sorted((tp.partition, tp.offset, tp.error) for tp in result) == \
            [(p, 4, None) for p in range(GROUP_PARTITIONS)], result
        assert {p: o for p, (o, _) in committed(consumer, topic).items()} == \
            {p: 4 for p in range(GROUP_PARTITIONS)}
    finally:
        consumer.close()

    second = produce_pinned(bootstrap, topic, 2, "second")
    # Offsets to rewind or skip to, including the very start and the end of a partition,
    # with metadata that is non-ASCII in one place and long (1000 bytes) in another.
    targets = {0: 0, 1: 6, 2: 3, 3: 5, 4: 1, 5: 2}
    metadata = {p: f"checkpoint p{p} ✓ {protocol}" for p in targets}
    metadata[3] = "m" * 1000
    consumer = make_consumer(bootstrap, group, protocol, errors, "resume-2")
    try:
        consumer.subscribe([topic])
        got = read(consumer, len(second), errors)
        assert got == second, ("second consumer must start exactly at the committed offsets "
                               f"(4 per partition): {describe_diff(second, got)}; "
                               f"errors: {errors}")
        result = consumer.commit(offsets=[TopicPartition(topic, p, o, metadata=metadata[p])
                                          for p, o in targets.items()], asynchronous=False)
        assert [tp for tp in result if tp.error] == [], result
        assert committed(consumer, topic) == {p: (o, metadata[p]) for p, o in targets.items()}
    finally:
        consumer.close()

    expected = sorted(r for r in first + second if r[1] >= targets[r[0]])
    consumer = make_consumer(bootstrap, group, protocol, errors, "resume-3")
    try:
        consumer.subscribe([topic])
        got = read(consumer, len(expected), errors)
        assert got == expected, ("third consumer must start at the explicitly committed "
                                 f"offsets {targets}: {describe_diff(expected, got)}; "
                                 f"errors: {errors}")
        # A different client instance: metadata comes from the broker, not a client cache.
        assert committed(consumer, topic) == {p: (o, metadata[p]) for p, o in targets.items()}
    finally:
        consumer.close()


# --- AdminClient -------------------------------------------------------------------------

def listing(admin, group):
    result = admin.list_consumer_groups(request_timeout=WAIT_S).result(timeout=WAIT_S + 5)
    assert not result.errors, f"list_consumer_groups errors: {result.errors}"
    return next((g for g in result.valid if g.group_id == group), None)


def describe(admin, group):
    return admin.describe_consumer_groups([group], request_timeout=WAIT_S)[group] \
        .result(timeout=WAIT_S + 5)


def group_offsets(admin, group, topic):
    """{partition: (offset, metadata)} of every committed offset of the group."""
    result = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=WAIT_S)[group] \
        .result(timeout=WAIT_S + 5)
    assert result.group_id == group, result.group_id
    errors = [tp for tp in result.topic_partitions if tp.error]
    assert not errors, f"list_consumer_group_offsets partition errors: {errors}"
    assert {tp.topic for tp in result.topic_partitions} <= {topic}, result.topic_partitions
    return {tp.partition: (tp.offset, tp.metadata) for tp in result.topic_partitions
            if tp.offset >= 0}


def alter_offsets(admin, group, topic, offsets):
    """Alter to {partition: (offset, metadata)}; returns the set of error codes (partition
    or group level), empty on success."""
    request = [ConsumerGroupTopicPartitions(group, [
        TopicPartition(topic, p, o, metadata=m) for p, (o, m) in sorted(offsets.items())])]
    try:
        result = admin.alter_consumer_group_offsets(request, request_timeout=WAIT_S)[group] \
            .result(timeout=WAIT_S + 5)
    except KafkaException as e:
        return {e.args[0].code()}
    assert sorted((tp.partition, tp.offset) for tp in result.topic_partitions) == \
        sorted((p, o) for p, (o, _) in offsets.items()), result.topic_partitions
    return {tp.error.code() for tp in result.topic_partitions if tp.error}


def delete_group(admin, group):
    """None on success, else the error code."""
    try:
        admin.delete_consumer_groups([group], request_timeout=WAIT_S)[group] \
            .result(timeout=WAIT_S + 5)
        return None
    except KafkaException as e:
        return e.args[0].code()


def code_name(code):
    return KafkaError(code).name() if code is not None else None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_admin_group_lifecycle(admin, bootstrap, start_member, topic_name, protocol):
    topic = topic_name()
    group = f"{topic}-group"
    group_type = ConsumerGroupType.CONSUMER if protocol == "consumer" else ConsumerGroupType.CLASSIC
    create_topic(bootstrap, topic)
    members = [start_member("confluent", group, topic, f"admin-{protocol}-m{i}", protocol)
               for i in range(2)]
    assignments = wait_for_split(members)
    # Produce only once the split is settled: records read by a member before the second
    # one joined would legitimately be read again by the new owner (nothing was committed
    # yet), which made this exact-count check depend on timing.
    rows = produce_pinned(bootstrap, topic, 3, "admin")
    got = wait_for_records(members, rows, settle=0)
    assert got == rows, describe_diff(rows, got)
    for i, m in enumerate(members):
        report = m.commit(f"committed by m{i} ✓")
        assert not report["errors"], f"{m.name}: {report}"
    committed_by_members = {p: (3, f"committed by m{i} ✓")
                            for i, owned in enumerate(assignments) for p in owned}

    # -- active group
    listed = wait_until(lambda: listing(admin, group), f"{group} in list_consumer_groups()")
    assert listed.is_simple_consumer_group is False, vars(listed)
    assert listed.state == ConsumerGroupState.STABLE, vars(listed)
    assert listed.type == group_type, vars(listed)

    desc = describe(admin, group)
    assert desc.group_id == group and desc.is_simple_consumer_group is False, vars(desc)
    assert desc.state == ConsumerGroupState.STABLE, vars(desc)
    assert desc.type == group_type, vars(desc)
    broker_ids = set(admin.list_topics(timeout=WAIT_S).brokers)
    assert desc.coordinator is not None and desc.coordinator.id in broker_ids, desc.coordinator
    if protocol == "classic":
        # Both members offer librdkafka's default "range,roundrobin": range wins.
        assert desc.partition_assignor == "range", desc.partition_assignor
    else:
        assert desc.partition_assignor, "KIP-848 groups report the broker-side assignor"
    by_client = {md.client_id: md for md in desc.members}
    assert sorted(by_client) == sorted(m.name for m in members), \
        [vars(md) for md in desc.members]
    for m, owned in zip(members, assignments):
        md = by_client[m.name]
        assert md.member_id and md.host, vars(md)
        got_assignment = sorted((tp.topic, tp.partition) for tp in md.assignment.topic_partitions)
        assert got_assignment == sorted((topic, p) for p in owned), \
            f"{m.name}: described assignment {got_assignment}, member owns {sorted(owned)}"

    assert group_offsets(admin, group, topic) == committed_by_members

    code = delete_group(admin, group)
    assert code == KafkaError.NON_EMPTY_GROUP, \
        f"delete_consumer_groups on a group with members: expected NON_EMPTY_GROUP, got {code_name(code)}"
    # Kafka refuses admin offset commits (generation -1, no member id) while the group has
    # members, with UNKNOWN_MEMBER_ID.
    codes = alter_offsets(admin, group, topic, {0: (0, "admin while active")})
    assert codes == {KafkaError.UNKNOWN_MEMBER_ID}, \
        f"alter offsets of an active group: expected UNKNOWN_MEMBER_ID, got {[code_name(c) for c in codes]}"
    assert group_offsets(admin, group, topic) == committed_by_members, "offsets changed"

    # -- empty group
    close_all(members)
    desc = wait_until(lambda: (d := describe(admin, group)).state == ConsumerGroupState.EMPTY and d,
                      f"{group} described as EMPTY after its members left", seconds=GROUP_WAIT_S)
    assert desc.members == [], [vars(md) for md in desc.members]
    assert listing(admin, group).state == ConsumerGroupState.EMPTY
    assert group_offsets(admin, group, topic) == committed_by_members

    altered = {p: (p % 4, f"altered p{p}") for p in range(GROUP_PARTITIONS)}
    codes = alter_offsets(admin, group, topic, altered)
    assert codes == set(), f"alter offsets of an empty group: {[code_name(c) for c in codes]}"
    assert group_offsets(admin, group, topic) == altered

    code = delete_group(admin, group)
    assert code is None, f"delete_consumer_groups of an empty group: {code_name(code)}"
    wait_until(lambda: listing(admin, group) is None, f"{group} gone from list_consumer_groups()")
    try:
        remaining = group_offsets(admin, group, topic)
    except KafkaException as e:  # GROUP_ID_NOT_FOUND is an acceptable way to say "none"
        assert e.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND, e
        remaining = {}
    assert remaining == {}, f"offsets of a deleted group: {remaining}"
    try:
        state = describe(admin, group).state
    except KafkaException as e:
        state = e.args[0].code()
    assert state in (ConsumerGroupState.DEAD, KafkaError.GROUP_ID_NOT_FOUND), \
        f"a deleted group must describe as DEAD or GROUP_ID_NOT_FOUND, got {state}"
