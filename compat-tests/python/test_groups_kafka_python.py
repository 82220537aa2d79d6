"""kafka-python (3.x) consumer groups, classic protocol: members split a topic, commit,
resume and survive a SIGKILLed peer; the admin client lists and describes groups and
lists, alters and deletes their offsets."""
import kafka.errors as Errors
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata

from helpers import (CLASSIC_SESSION_S, GROUP_PARTITIONS, GROUP_WAIT_S, WAIT_S, Deadline,
                     check_killed_member_reassigned, check_members_split_and_resume, close_all,
                     create_topic, describe_diff, produce_pinned, wait_for_records,
                     wait_for_split, wait_until)

TIMEOUT_MS = int(WAIT_S * 1000)


@pytest.fixture
def admin(bootstrap):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS,
                              bootstrap_timeout_ms=TIMEOUT_MS, client_id="compat-kp-groups")
    yield client
    client.close()


def make_consumer(bootstrap, group, name):
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=name,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=int(CLASSIC_SESSION_S * 1000),
                         heartbeat_interval_ms=1000, fetch_max_wait_ms=200,
                         request_timeout_ms=TIMEOUT_MS + 1000)


def read(consumer, count, seconds=GROUP_WAIT_S, settle=2.0):
    """(partition, offset, key) rows until count arrived, then `settle` seconds more so that
    re-reads and extra records show up; sorted, duplicates kept."""
    rows = []
    deadline = Deadline(seconds)
    settle_end = None
    while True:
        for batch in consumer.poll(timeout_ms=200).values():
            rows += [(r.partition, r.offset, r.key.decode()) for r in batch]
        if settle_end is None and (len(rows) >= count or deadline.expired()):
            settle_end = Deadline(settle)
        if settle_end is not None and settle_end.expired():
            return sorted(rows)


def committed(consumer, topic):
    result = {}
    for p in range(GROUP_PARTITIONS):
        om = consumer.committed(TopicPartition(topic, p), metadata=True, timeout_ms=TIMEOUT_MS)
        result[p] = None if om is None else (om.offset, om.metadata)
    return result


def test_members_split_and_resume(bootstrap, start_member, topic_name):
    check_members_split_and_resume(start_member, "kafka-python", bootstrap, topic_name())


def test_killed_member_reassigned(bootstrap, start_member, topic_name):
    check_killed_member_reassigned(start_member, "kafka-python", bootstrap, topic_name(),
                                   CLASSIC_SESSION_S)


def test_commit_metadata_and_resume(bootstrap, topic_name):
    topic = topic_name()
    group = f"{topic}-group"
    create_topic(bootstrap, topic)
    first = produce_pinned(bootstrap, topic, 4, "first")

    consumer = make_consumer(bootstrap, group, "kp-resume-1")
    try:
        consumer.subscribe([topic])
        got = read(consumer, len(first))
        assert got == first, f"first consumer: {describe_diff(first, got)}"
        consumer.commit(timeout_ms=TIMEOUT_MS)  # the consumed positions
        assert committed(consumer, topic) == {p: (4, "") for p in range(GROUP_PARTITIONS)}
    finally:
        consumer.close(autocommit=False)

    second = produce_pinned(bootstrap, topic, 2, "second")
    targets = {0: 0, 1: 6, 2: 3, 3: 5, 4: 1, 5: 2}
    metadata = {p: f"checkpoint p{p} ✓ kafka-python" for p in targets}
    metadata[3] = "m" * 1000
    consumer = make_consumer(bootstrap, group, "kp-resume-2")
    try:
        consumer.subscribe([topic])
        got = read(consumer, len(second))
        assert got == second, ("second consumer must start exactly at the committed offsets "
                               f"(4 per partition): {describe_diff(second, got)}")
        consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, metadata[p], -1)
                         for p, o in targets.items()}, timeout_ms=TIMEOUT_MS)
        assert committed(consumer, topic) == {p: (o, metadata[p]) for p, o in targets.items()}
    finally:
        consumer.close(autocommit=False)

    expected = sorted(r for r in first + second if r[1] >= targets[r[0]])
    consumer = make_consumer(bootstrap, group, "kp-resume-3")
    try:
        consumer.subscribe([topic])
        got = read(consumer, len(expected))
        assert got == expected, ("third consumer must start at the explicitly committed "
                                 f"offsets {targets}: {describe_diff(expected, got)}")
        assert committed(consumer, topic) == {p: (o, metadata[p]) for p, o in targets.items()}
    finally:
        consumer.close(autocommit=False)


def assigned_partitions(member_assignment):
    """Partitions of a DescribeGroups member assignment as kafka-python decodes it."""
    if isinstance(member_assignment, dict):
        return sorted((t["topic"], p) for t in member_assignment.get("assigned_partitions") or []
                      for p in t["partitions"])
    return sorted((tp.topic, tp.partition) for tp in member_assignment.partitions())


def offsets_of(admin, group):
    return {tp.partition: (om.offset, om.metadata)
            for tp, om in admin.list_group_offsets(group)[group].items() if om.offset >= 0}


def test_admin_list_describe_offsets(admin, bootstrap, start_member, topic_name):
    topic = topic_name()
    group = f"{topic}-group"
    create_topic(bootstrap, topic)
    rows = produce_pinned(bootstrap, topic, 3, "admin")
    members = [start_member("kafka-python", group, topic, f"kp-admin-m{i}") for i in range(2)]
    assignments = wait_for_split(members)
    got = wait_for_records(members, rows, settle=0)
    assert got == rows, describe_diff(rows, got)
    for i, m in enumerate(members):
        report = m.commit(f"kp m{i} ✓")
        assert not report["errors"], f"{m.name}: {report}"
    committed_by_members = {p: (3, f"kp m{i} ✓")
                            for i, owned in enumerate(assignments) for p in owned}

    listed = wait_until(lambda: [g for g in admin.list_groups() if g["group_id"] == group],
                        f"{group} in list_groups()")
    (entry,) = listed
    assert entry["protocol_type"] == "consumer", entry
    # ListGroups v4+ carries the state, v5+ the type (Kafka 4.x serves both).
    assert entry.get("group_state") == "Stable", entry
    assert entry.get("group_type") == "classic", entry

    desc = admin.describe_groups([group])[group]
    assert desc["error"] is None, desc
    assert desc["group_state"] == "Stable", desc
    assert desc["protocol_type"] == "consumer", desc
    assert desc["protocol_data"] == "range", f"kafka-python prefers the range assignor: {desc}"
    by_client = {md["client_id"]: md for md in desc["members"]}
    assert sorted(by_client) == sorted(m.name for m in members), desc["members"]
    for m, owned in zip(members, assignments):
        md = by_client[m.name]
        assert md["member_id"] and md["client_host"], md
        assert assigned_partitions(md["member_assignment"]) == sorted((topic, p) for p in owned), \
            f"{m.name}: described {md['member_assignment']}, member owns {sorted(owned)}"

    assert offsets_of(admin, group) == committed_by_members

    assert admin.delete_groups([group]) == {group: "NonEmptyGroupError"}
    errors = admin.alter_group_offsets(group, {TopicPartition(topic, 0): OffsetAndMetadata(0, "x", -1)})
    assert errors == {TopicPartition(topic, 0): Errors.UnknownMemberIdError}, \
        f"alter offsets of an active group: Kafka answers UNKNOWN_MEMBER_ID; got {errors}"

    close_all(members)
    desc = wait_until(lambda: (d := admin.describe_groups([group])[group])["group_state"] == "Empty" and d,
                      f"{group} Empty after its members left", seconds=GROUP_WAIT_S)
    assert desc["members"] == [], desc
    assert offsets_of(admin, group) == committed_by_members

    altered = {p: (p % 4, f"altered p{p}") for p in range(GROUP_PARTITIONS)}
    errors = admin.alter_group_offsets(group, {TopicPartition(topic, p): OffsetAndMetadata(o, m, -1)
                                               for p, (o, m) in altered.items()})
    assert set(errors.values()) == {Errors.NoError}, errors
    assert offsets_of(admin, group) == altered

    assert admin.delete_groups([group]) == {group: "OK"}
    wait_until(lambda: group not in [g["group_id"] for g in admin.list_groups()],
               f"{group} gone from list_groups()")
