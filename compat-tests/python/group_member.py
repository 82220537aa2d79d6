"""One consumer-group member in its own process, driven by the group tests (helpers.Member).

Running each member in its own process keeps the clients honest (no shared client state,
each has its own connections and heartbeat machinery) and lets a test kill one with SIGKILL,
so the broker has to notice the dead member by its session timeout alone.

    python group_member.py --client confluent --protocol classic \
        --bootstrap HOST:PORT --group G --topic T --client-id ID

The member subscribes to the topic, then reports on stdout, one JSON object per line:
    {"event": "assignment", "partitions": [...]}  whenever its assignment changes
    {"event": "records", "records": [[partition, offset, key], ...]}
    {"event": "committed", "offsets": {"partition": offset}, "errors": [...]}
    {"event": "error", "error": "..."}            client-reported errors, for the report
    {"event": "closed"}                           after a clean close
Commands on stdin, one per line: "commit METADATA" commits the consumed position of every
assigned partition (with METADATA as the commit metadata), "close" leaves the group cleanly
and exits. End of stdin counts as "close", and so does --max-seconds running out, so a
member never outlives its test.
"""
import argparse
import asyncio
import json
import queue
import sys
import threading
import time

POLL_S = 0.2
# Classic protocol only: the smallest session timeout a Kafka broker accepts by default
# (group.min.session.timeout.ms), so a killed member is noticed as soon as Kafka allows.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000


def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
    sys.stdout.flush()


def command_queue():
    commands = queue.Queue()

    def read():
        for line in sys.stdin:
            if line.strip():
                commands.put(line.rstrip("\n"))
        commands.put("close")

    threading.Thread(target=read, daemon=True).start()
    return commands


def next_command(commands):
    try:
        cmd = commands.get_nowait()
    except queue.Empty:
        return None, None
    name, _, arg = cmd.partition(" ")
    return name, arg


class Tracker:
    """Assignment and consumed positions, reported as they change."""

    def __init__(self):
        self.assigned = None
        self.positions = {}

    def assignment(self, partitions):
        partitions = sorted(partitions)
        if partitions != self.assigned:
            self.assigned = partitions
            # Positions of partitions this member no longer owns must not be committed.
            self.positions = {p: o for p, o in self.positions.items() if p in partitions}
            emit("assignment", partitions=partitions)

    def records(self, rows):
        if rows:
            for p, o, _ in rows:
                self.positions[p] = max(self.positions.get(p, 0), o + 1)
            emit("records", records=rows)

    def to_commit(self):
        return {p: o for p, o in self.positions.items() if p in (self.assigned or [])}


def key_text(key):
    return None if key is None else key.decode("utf-8", "backslashreplace")


def run_confluent(args, commands, tracker, deadline):
    from confluent_kafka import Consumer, TopicPartition

    conf = {"bootstrap.servers": args.bootstrap, "group.id": args.group,
            "client.id": args.client_id, "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "error_cb": lambda err: emit("error", error=str(err))}
    if args.protocol == "consumer":
        # KIP-848: timeouts and assignor live on the broker; librdkafka refuses the
        # classic session/heartbeat/assignment settings with this protocol.
        conf["group.protocol"] = "consumer"
    else:
        conf.update({"session.timeout.ms": SESSION_TIMEOUT_MS,
                     "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS})
    consumer = Consumer(conf)
    consumer.subscribe([args.topic])
    try:
        while time.monotonic() < deadline:
            rows = []
            try:
                msgs = consumer.consume(num_messages=100, timeout=POLL_S)
            except Exception as e:  # reported and retried; the test decides what it means
                emit("error", error=f"consume: {type(e).__name__}: {e}")
                time.sleep(POLL_S)
                msgs = []
            for msg in msgs:
                if msg.error():
                    emit("error", error=str(msg.error()))
                else:
                    rows.append([msg.partition(), msg.offset(), key_text(msg.key())])
            tracker.records(rows)
            tracker.assignment(tp.partition for tp in consumer.assignment())
            name, arg = next_command(commands)
            if name == "commit":
                offsets = [TopicPartition(args.topic, p, o, metadata=arg)
                           for p, o in sorted(tracker.to_commit().items())]
                try:
                    result = consumer.commit(offsets=offsets, asynchronous=False) if offsets else []
                    emit("committed", offsets={tp.partition: tp.offset for tp in result},
                         errors=[f"{tp.partition}: {tp.error}" for tp in result if tp.error])
                except Exception as e:  # reported, the test decides
                    emit("committed", offsets={}, errors=[f"{type(e).__name__}: {e}"])
            elif name == "close":
                break
    finally:
        consumer.close()
    emit("closed")


def run_kafka_python(args, commands, tracker, deadline):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group,
                             client_id=args.client_id, enable_auto_commit=False,
                             auto_offset_reset="earliest",
                             session_timeout_ms=SESSION_TIMEOUT_MS,
                             heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                             fetch_max_wait_ms=200, request_timeout_ms=20000)
    consumer.subscribe([args.topic])
    try:
        while time.monotonic() < deadline:
            rows = []
            try:
                batches = consumer.poll(timeout_ms=int(POLL_S * 1000))
            except Exception as e:  # reported and retried; the test decides what it means
                emit("error", error=f"poll: {type(e).__name__}: {e}")
                time.sleep(POLL_S)
                batches = {}
            for batch in batches.values():
                rows += [[r.partition, r.offset, key_text(r.key)] for r in batch]
            tracker.records(rows)
            tracker.assignment(tp.partition for tp in consumer.assignment() or ())
            name, arg = next_command(commands)
            if name == "commit":
                offsets = {TopicPartition(args.topic, p): OffsetAndMetadata(o, arg, -1)
                           for p, o in tracker.to_commit().items()}
                try:
                    if offsets:
                        consumer.commit(offsets, timeout_ms=20000)
                    emit("committed", offsets={tp.partition: om.offset
                                               for tp, om in offsets.items()}, errors=[])
                except Exception as e:
                    emit("committed", offsets={}, errors=[f"{type(e).__name__}: {e}"])
            elif name == "close":
                break
    finally:
        consumer.close(autocommit=False)
    emit("closed")


async def run_aiokafka(args, commands, tracker, deadline):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(args.topic, bootstrap_servers=args.bootstrap,
                                group_id=args.group, client_id=args.client_id,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=SESSION_TIMEOUT_MS,
                                heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                                fetch_max_wait_ms=200, request_timeout_ms=20000)
    await consumer.start()
    try:
        while time.monotonic() < deadline:
            rows = []
            try:
                batches = await consumer.getmany(timeout_ms=int(POLL_S * 1000))
            except Exception as e:  # reported and retried; the test decides what it means
                emit("error", error=f"getmany: {type(e).__name__}: {e}")
                await asyncio.sleep(POLL_S)
                batches = {}
            for batch in batches.values():
                rows += [[r.partition, r.offset, key_text(r.key)] for r in batch]
            tracker.records(rows)
            tracker.assignment(tp.partition for tp in consumer.assignment())
            name, arg = next_command(commands)
            if name == "commit":
                offsets = {TopicPartition(args.topic, p): (o, arg)
                           for p, o in tracker.to_commit().items()}
                try:
                    if offsets:
                        await consumer.commit(offsets)
                    emit("committed", offsets={tp.partition: o for tp, (o, _) in offsets.items()},
                         errors=[])
                except Exception as e:
                    emit("committed", offsets={}, errors=[f"{type(e).__name__}: {e}"])
            elif name == "close":
                break
    finally:
        await consumer.stop()
    emit("closed")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=["confluent", "kafka-python", "aiokafka"],
                        required=True)
    parser.add_argument("--protocol", choices=["classic", "consumer"], default="classic")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--max-seconds", type=float, default=180)
    args = parser.parse_args()
    if args.protocol == "consumer" and args.client != "confluent":
        parser.error("only confluent-kafka speaks the KIP-848 consumer protocol")

    commands = command_queue()
    tracker = Tracker()
    deadline = time.monotonic() + args.max_seconds
    emit("started", client=args.client, protocol=args.protocol)
    if args.client == "confluent":
        run_confluent(args, commands, tracker, deadline)
    elif args.client == "kafka-python":
        run_kafka_python(args, commands, tracker, deadline)
    else:
        asyncio.run(run_aiokafka(args, commands, tracker, deadline))


if __name__ == "__main__":
    main()
