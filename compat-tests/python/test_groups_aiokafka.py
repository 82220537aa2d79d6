"""aiokafka consumer groups (classic protocol): members split a topic, commit, resume and
survive a SIGKILLed peer; committed metadata round-trips (checked with aiokafka's admin)."""
import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from helpers import (CLASSIC_SESSION_S, GROUP_PARTITIONS, GROUP_WAIT_S, WAIT_S, Deadline,
                     check_killed_member_reassigned, check_members_split_and_resume,
                     create_topic, describe_diff, produce_pinned)

TIMEOUT_MS = int(WAIT_S * 1000)


def test_members_split_and_resume(bootstrap, start_member, topic_name):
    check_members_split_and_resume(start_member, "aiokafka", bootstrap, topic_name())


def test_killed_member_reassigned(bootstrap, start_member, topic_name):
    check_killed_member_reassigned(start_member, "aiokafka", bootstrap, topic_name(),
                                   CLASSIC_SESSION_S)


def make_consumer(bootstrap, topic, group, name):
    return AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=name,
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            session_timeout_ms=int(CLASSIC_SESSION_S * 1000),
                            heartbeat_interval_ms=1000, fetch_max_wait_ms=200,
                            request_timeout_ms=TIMEOUT_MS + 1000)


async def read(consumer, count, seconds=GROUP_WAIT_S, settle=2.0):
    rows = []
    deadline = Deadline(seconds)
    settle_end = None
    while True:
        for batch in (await consumer.getmany(timeout_ms=200)).values():
            rows += [(r.partition, r.offset, r.key.decode()) for r in batch]
        if settle_end is None and (len(rows) >= count or deadline.expired()):
            settle_end = Deadline(settle)
        if settle_end is not None and settle_end.expired():
            return sorted(rows)


async def committed(consumer, topic):
    return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(GROUP_PARTITIONS)}


async def admin_offsets(bootstrap, group):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: (om.offset, om.metadata) for tp, om in offsets.items()}


async def resume_scenario(bootstrap, topic, group, first):
    consumer = make_consumer(bootstrap, topic, group, "aio-resume-1")
    await consumer.start()
    try:
        got = await read(consumer, len(first))
        assert got == first, f"first consumer: {describe_diff(first, got)}"
        await consumer.commit()  # the consumed positions
        assert await committed(consumer, topic) == {p: 4 for p in range(GROUP_PARTITIONS)}
    finally:
        await consumer.stop()

    second = produce_pinned(bootstrap, topic, 2, "second")
    targets = {0: 0, 1: 6, 2: 3, 3: 5, 4: 1, 5: 2}
    metadata = {p: f"checkpoint p{p} ✓ aiokafka" for p in targets}
    metadata[3] = "m" * 1000
    consumer = make_consumer(bootstrap, topic, group, "aio-resume-2")
    await consumer.start()
    try:
        got = await read(consumer, len(second))
        assert got == second, ("second consumer must start exactly at the committed offsets "
                               f"(4 per partition): {describe_diff(second, got)}")
        await consumer.commit({TopicPartition(topic, p): (o, metadata[p])
                               for p, o in targets.items()})
        assert await committed(consumer, topic) == targets
    finally:
        await consumer.stop()
    assert await admin_offsets(bootstrap, group) == \
        {p: (o, metadata[p]) for p, o in targets.items()}, "offsets and metadata via the admin"

    expected = sorted(r for r in first + second if r[1] >= targets[r[0]])
    consumer = make_consumer(bootstrap, topic, group, "aio-resume-3")
    await consumer.start()
    try:
        got = await read(consumer, len(expected))
        assert got == expected, ("third consumer must start at the explicitly committed "
                                 f"offsets {targets}: {describe_diff(expected, got)}")
    finally:
        await consumer.stop()


def test_commit_metadata_and_resume(bootstrap, topic_name):
    topic = topic_name()
    create_topic(bootstrap, topic)
    first = produce_pinned(bootstrap, topic, 4, "first")
    # One overall bound: asyncio waits inside the clients have no deadline of their own.
    asyncio.run(asyncio.wait_for(resume_scenario(bootstrap, topic, f"{topic}-group", first),
                                 4 * GROUP_WAIT_S))
