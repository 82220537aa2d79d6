"""aiokafka (asyncio client): produce with headers, then a group-less consumer reads back."""
import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from helpers import WAIT_S, Deadline, describe_diff, expected_rows, sample_records


def create(bootstrap, name, partitions):
    # aiokafka's own admin client is thin; topic setup is not what this file tests.
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(WAIT_S * 1000))
    try:
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}})
    finally:
        admin.close()


def test_produce_consume_roundtrip(bootstrap, topic_name):
    name = topic_name()
    create(bootstrap, name, 2)
    # aiokafka, like kafka-python, only accepts bytes header values.
    records = sample_records(null_header_values=False)
    # One overall bound: asyncio waits inside the clients have no deadline of their own.
    acked, got = asyncio.run(asyncio.wait_for(roundtrip(bootstrap, name, records), 3 * WAIT_S))
    expected = expected_rows(records)
    assert acked == [(r[0], r[1]) for r in expected], "acknowledged partition/offsets"
    assert got == expected, describe_diff(expected, got)


async def roundtrip(bootstrap, name, records):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                request_timeout_ms=int(WAIT_S * 1000))
    await producer.start()
    try:
        acked = []
        for p, k, v, h, ts in records:
            meta = await producer.send_and_wait(name, value=v, key=k, partition=p, headers=h,
                                                timestamp_ms=ts)
            acked.append((meta.partition, meta.offset))
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                request_timeout_ms=int(WAIT_S * 1000) + 1000)
    await consumer.start()
    try:
        tps = [TopicPartition(name, 0), TopicPartition(name, 1)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = []
        deadline = Deadline()
        while len(got) < len(records) and not deadline.expired():
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                got += [(r.partition, r.offset, r.key, r.value, list(r.headers), r.timestamp)
                        for r in batch]
    finally:
        await consumer.stop()
    return sorted(acked), sorted(got, key=lambda r: (r[0], r[1]))
