"""Transactions through confluent-kafka (librdkafka 2.x). librdkafka speaks the classic
transaction protocol (no KIP-890 epoch bump: AddPartitionsToTxn before producing, EndTxn without
a new epoch in the answer), so this covers the broker paths the Java 4.x client does not:
init/begin/produce/commit and abort, read_committed vs read_uncommitted, the last stable offset
holding read_committed consumers back, fencing by a new instance, the broker aborting a timed-out
transaction, and a consume-transform-produce loop with send_offsets_to_transaction (one
iteration aborted and replayed)."""
import time
import uuid

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)

from helpers import WAIT_S, Deadline, create_topic, produce_pinned

# librdkafka normalises the various fencing answers (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH)
# to _FENCED; any of them is a correct fencing outcome.
FENCING_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def tx_producer(bootstrap, txid, **extra):
    errors = []
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txid, "client.id": txid,
            "linger.ms": 5, "error_cb": errors.append, **extra}
    producer = Producer(conf)
    producer.init_transactions(WAIT_S)
    return producer, errors


def produce_tx(producer, topic, rows):
    """Produce (partition, key, value) rows inside the current transaction and flush them, so
    they are in the log before the transaction ends (abort_transaction would otherwise purge
    what is still queued). Returns {key: (partition, offset)} from the delivery reports."""
    reports = []
    for partition, key, value in rows:
        producer.produce(topic, key=key.encode(), value=value.encode(), partition=partition,
                         on_delivery=lambda err, msg: reports.append((err, msg)))
    remaining = producer.flush(WAIT_S)
    assert remaining == 0, f"{remaining} records still undelivered"
    errors = [err for err, _ in reports if err is not None]
    assert not errors, f"delivery errors: {errors}"
    return {m.key().decode(): (m.partition(), m.offset()) for _, m in reports}


def read_rows(bootstrap, topic, partitions, isolation, expect=None, seconds=WAIT_S, settle=1.5):
    """(partition, offset, key) rows of every partition from the beginning, read by a
    group-less (assign) consumer with the given isolation.level, until every partition reported
    EOF (the LSO for read_committed) and, if given, `expect` rows arrived; then `settle` more
    seconds so that extra records show up too. Sorted by partition and offset."""
    errors = []
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "isolation.level": isolation,
                         "enable.partition.eof": True, "error_cb": errors.append})
    rows, eof = [], set()
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = Deadline(seconds)
        settle_end = None
        while True:
            for msg in consumer.consume(num_messages=100, timeout=0.2):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(msg.partition())
                    else:
                        errors.append(msg.error())
                else:
                    rows.append((msg.partition(), msg.offset(), msg.key().decode()))
            done = len(eof) == partitions and (expect is None or len(rows) >= expect)
            if settle_end is None and (done or deadline.expired()):
                settle_end = Deadline(settle)
            if settle_end is not None and settle_end.expired():
                break
    finally:
        consumer.close()
    assert not errors, f"{isolation} reader errors: {errors}"
    assert len(eof) == partitions, f"{isolation} reader reached the end of only {sorted(eof)}"
    return sorted(rows)


def keys_by_partition(rows, partitions):
    return {p: [k for q, _, k in rows if q == p] for p in range(partitions)}


def test_commit_and_abort_isolation(bootstrap, topic_name):
    """Five transactions over two partitions, alternately committed and aborted: read_committed
    sees exactly the committed records in order, read_uncommitted every data record and no
    control record; each transaction leaves one offset for its marker."""
    topic = topic_name()
    create_topic(bootstrap, topic, partitions=2)
    producer, client_errors = tx_producer(bootstrap, f"{topic}-tx")
    committed, everything, bad_offsets = [], [], []
    for i in range(5):
        producer.begin_transaction()
        rows = [(p, f"t{i}-p{p}-r{j}", "commit" if i % 2 == 0 else "abort")
                for j in range(4) for p in range(2)]
        offsets = produce_tx(producer, topic, rows)
        for p, key, _ in rows:
            j = int(key.rsplit("r", 1)[1])
            if offsets[key] != (p, i * 5 + j):
                bad_offsets.append((key, offsets[key]))
        if i % 2 == 0:
            producer.commit_transaction(WAIT_S)
            committed += [(p, key) for p, key, _ in rows]
        else:
            producer.abort_transaction(WAIT_S)
        everything += [(p, key) for p, key, _ in rows]
    producer.close()
    assert not bad_offsets, f"data offsets are not 5*txn+j (one slot per marker): {bad_offsets[:5]}"

    want_rc = {p: [k for q, k in committed if q == p] for p in range(2)}
    want_ru = {p: [k for q, k in everything if q == p] for p in range(2)}
    rc = read_rows(bootstrap, topic, 2, "read_committed", expect=len(committed))
    ru = read_rows(bootstrap, topic, 2, "read_uncommitted", expect=len(everything))
    assert keys_by_partition(rc, 2) == want_rc, f"read_committed: {keys_by_partition(rc, 2)}"
    assert keys_by_partition(ru, 2) == want_ru, f"read_uncommitted: {keys_by_partition(ru, 2)}"

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"wm-{uuid.uuid4().hex[:8]}"})
    try:
        for p in range(2):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=WAIT_S)
            assert (low, high) == (0, 25), f"partition {p} watermarks: 20 records + 5 markers"
    finally:
        consumer.close()
    assert not client_errors, f"producer errors: {client_errors}"


def test_lso_holds_read_committed(bootstrap, topic_name):
    """An open transaction holds read_committed consumers at its first offset (the LSO), even
    for plain records written after it; the commit releases everything in log order."""
    topic = topic_name()
    create_topic(bootstrap, topic, partitions=1)
    producer, _ = tx_producer(bootstrap, f"{topic}-tx")
    producer.begin_transaction()
    produce_tx(producer, topic, [(0, f"tx-{i}", "open") for i in range(3)])
    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(2):
        plain.produce(topic, key=f"plain-{i}".encode(), value=b"plain", partition=0)
    assert plain.flush(WAIT_S) == 0

    rc = read_rows(bootstrap, topic, 1, "read_committed", settle=1.0)
    assert rc == [], f"read_committed read past the open transaction: {rc}"
    ru = read_rows(bootstrap, topic, 1, "read_uncommitted", expect=5)
    assert [k for _, _, k in ru] == ["tx-0", "tx-1", "tx-2", "plain-0", "plain-1"], ru

    producer.commit_transaction(WAIT_S)
    producer.close()
    rc = read_rows(bootstrap, topic, 1, "read_committed", expect=5)
    assert rc == [(0, 0, "tx-0"), (0, 1, "tx-1"), (0, 2, "tx-2"), (0, 3, "plain-0"), (0, 4, "plain-1")], rc


def test_new_instance_fences_and_aborts(bootstrap, topic_name):
    """A second producer with the same transactional.id aborts the first one's open
    transaction; the first one's commit then fails with a fatal fencing error."""
    topic = topic_name()
    create_topic(bootstrap, topic, partitions=2)
    txid = f"{topic}-tx"
    zombie, _ = tx_producer(bootstrap, txid)
    zombie.begin_transaction()
    produce_tx(zombie, topic, [(i % 2, f"zombie-{i}", "zombie") for i in range(4)])

    fresh, _ = tx_producer(bootstrap, txid)
    with pytest.raises(KafkaException) as excinfo:
        zombie.commit_transaction(WAIT_S)
    err = excinfo.value.args[0]
    assert err.fatal() and err.code() in FENCING_CODES, f"zombie commit: {err!r}"

    fresh.begin_transaction()
    produce_tx(fresh, topic, [(i % 2, f"fresh-{i}", "commit") for i in range(2)])
    fresh.commit_transaction(WAIT_S)
    fresh.close()

    rc = read_rows(bootstrap, topic, 2, "read_committed", expect=2)
    assert keys_by_partition(rc, 2) == {0: ["fresh-0"], 1: ["fresh-1"]}, rc
    ru = read_rows(bootstrap, topic, 2, "read_uncommitted", expect=6)
    assert keys_by_partition(ru, 2) == {0: ["zombie-0", "zombie-2", "fresh-0"],
                                        1: ["zombie-1", "zombie-3", "fresh-1"]}, ru


def test_broker_aborts_timed_out_transaction(bootstrap, topic_name):
    """transaction.timeout.ms=5000 and the producer stalls: the broker aborts the transaction
    (read_committed consumers get past it within ~10 s) and the producer's late commit fails."""
    topic = topic_name()
    create_topic(bootstrap, topic, partitions=1)
    producer, _ = tx_producer(bootstrap, f"{topic}-tx", **{"transaction.timeout.ms": 5000})
    producer.begin_transaction()
    began = time.monotonic()
    produce_tx(producer, topic, [(0, f"stalled-{i}", "abort") for i in range(3)])
    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    plain.produce(topic, key=b"plain-0", value=b"plain", partition=0)
    assert plain.flush(WAIT_S) == 0

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watch-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    seen = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = Deadline(20)
        while not seen and not deadline.expired():
            for msg in consumer.consume(num_messages=10, timeout=0.2):
                if not msg.error():
                    seen.append((msg.offset(), msg.key().decode(), round(time.monotonic() - began, 1)))
    finally:
        consumer.close()
    assert seen, "read_committed never got past the stalled transaction within 20 s"
    assert seen[0][:2] == (3, "plain-0"), f"first record read_committed handed out: {seen}"
    assert 4.0 <= seen[0][2] <= 12.0, f"released {seen[0][2]} s after the transaction began"
    print(f"read_committed released {seen[0][2]} s after the transaction began")

    with pytest.raises(KafkaException) as excinfo:
        producer.commit_transaction(WAIT_S)
    err = excinfo.value.args[0]
    print(f"late commit_transaction: {err!r} fatal={err.fatal()} abortable={err.txn_requires_abort()}")
    assert err.fatal() or err.txn_requires_abort(), f"late commit: {err!r}"
    rc = read_rows(bootstrap, topic, 1, "read_committed", expect=1)
    assert [k for _, _, k in rc] == ["plain-0"], rc


def test_consume_transform_produce(bootstrap, topic_name):
    """read_committed group consumer + transactional producer: every input record's output is
    committed exactly once with send_offsets_to_transaction, even though one iteration is
    aborted (its output and offsets dropped) and replayed from the committed offsets."""
    src, dst = topic_name("-in"), topic_name("-out")
    create_topic(bootstrap, src, partitions=3)
    create_topic(bootstrap, dst, partitions=3)
    inputs = produce_pinned(bootstrap, src, 100, "in", partitions=3)
    end = {p: 1 + max(o for q, o, _ in inputs if q == p) for p in range(3)}
    group = f"{src}-app"

    consumer_errors = []
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": f"{group}-c",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                         "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 60000,
                         "error_cb": consumer_errors.append})
    producer, producer_errors = tx_producer(bootstrap, f"{group}-tx")
    iterations = committed_txns = 0
    aborted_records = 0
    offsets_after_abort = None
    try:
        consumer.subscribe([src])
        deadline = Deadline(90)
        while True:
            assert not deadline.expired(), (f"app did not finish in 90 s: {committed_txns} commits, "
                                            f"assignment {consumer.assignment()}, errors {consumer_errors}")
            msgs = consumer.consume(num_messages=40, timeout=0.5)
            errors = [m.error() for m in msgs if m.error()]
            assert not errors, f"consumer errors: {errors}"
            if not msgs:
                assignment = consumer.assignment()
                if len(assignment) == 3:
                    positions = consumer.position(assignment)
                    if all(tp.offset >= end[tp.partition] for tp in positions):
                        break
                continue
            producer.begin_transaction()
            for m in msgs:
                producer.produce(dst, key=m.key(), value=b"T(" + m.value() + b")", partition=m.partition())
            if iterations == 2:
                # Abort: the output goes, the offsets are never committed, and the app rewinds
                # to the committed offsets to process the same records again.
                assert producer.flush(WAIT_S) == 0
                aborted_records += len(msgs)
                producer.abort_transaction(WAIT_S)
                offsets_after_abort = consumer.committed(consumer.assignment(), timeout=WAIT_S)
                for tp in offsets_after_abort:
                    consumer.seek(TopicPartition(tp.topic, tp.partition,
                                                 tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
            else:
                next_offsets = {}
                for m in msgs:
                    next_offsets[m.partition()] = max(next_offsets.get(m.partition(), 0), m.offset() + 1)
                producer.send_offsets_to_transaction(
                    [TopicPartition(src, p, o) for p, o in sorted(next_offsets.items())],
                    consumer.consumer_group_metadata(), WAIT_S)
                producer.commit_transaction(WAIT_S)
                committed_txns += 1
            iterations += 1
        final = {tp.partition: tp.offset for tp in
                 consumer.committed([TopicPartition(src, p) for p in range(3)], timeout=WAIT_S)}
    finally:
        consumer.close()
        producer.close()
    assert aborted_records > 0, "the aborted iteration never ran"
    assert final == end, f"group offsets {final}, input ends {end}"
    assert not producer_errors, f"producer errors: {producer_errors}"

    rc = read_rows(bootstrap, dst, 3, "read_committed", expect=len(inputs))
    want = {p: [k for q, _, k in inputs if q == p] for p in range(3)}
    got = keys_by_partition(rc, 3)
    for p in range(3):
        dupes = sorted({k for k in got[p] if got[p].count(k) > 1})
        missing = sorted(set(want[p]) - set(got[p]))
        assert got[p] == want[p], (f"output partition {p}: {len(got[p])} records for {len(want[p])} "
                                   f"inputs; duplicated {dupes[:5]}, missing {missing[:5]}")
    ru = read_rows(bootstrap, dst, 3, "read_uncommitted", expect=len(inputs) + aborted_records)
    assert len(ru) == len(inputs) + aborted_records, \
        f"read_uncommitted: {len(ru)} records, want {len(inputs)} + {aborted_records} aborted"
    print(f"{committed_txns} committed transactions, 1 aborted ({aborted_records} records), "
          f"offsets right after the abort: {[(tp.partition, tp.offset) for tp in offsets_after_abort]}")
