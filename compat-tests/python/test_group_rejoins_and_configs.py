"""Group behaviours a client library's own integration suite measures (issue 15), through
confluent-kafka (librdkafka) and Kafka's own kafka-configs tool:

- quick subscribe / unsubscribe / resubscribe cycles, which throw KIP-394 member ids away,
  still reach an assignment within seconds;
- a static member (group.instance.id) that is the group's leader restarts and rejoins with
  librdkafka's JoinGroup v5: no rebalance, the other member keeps its partitions;
- group configs (KIP-848) set with `kafka-configs --entity-type groups` are described and
  set the session timeout of the group's members;
- broker settings Kafka can change at runtime are accepted by
  `kafka-configs --entity-type brokers`, and read-only ones refused.

compat-tests/python.sh starts the broker with group.consumer.min.session.timeout.ms and
group.consumer.min.heartbeat.interval.ms lowered, as Kafka needs too, so that a group may
set a session timeout of a few seconds."""
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, libversion

from helpers import (GROUP_PARTITIONS, WAIT_S, Deadline, create_topic, wait_for_split,
                     wait_until)

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FJORD_CACHE") or ROOT / ".cache")
KIP848 = libversion()[1] >= 0x020C0000
# How long the resubscribe test waits for an assignment before giving up (raise it to measure
# a broker that stalls).
RESUBSCRIBE_MAX_S = float(os.environ.get("RESUBSCRIBE_MAX_S", "60"))


def kafka_configs(bootstrap, *args, check=True):
    """Runs Kafka 4.3's kafka-configs against the broker; returns (rc, stdout + stderr)."""
    if not (CACHE / "kafka-4.3.0" / "libs").is_dir():
        pytest.skip(f"Kafka's tools are not installed in {CACHE} (scripts/setup-kafka.sh)")
    env = {**os.environ, "FJORD_CACHE": str(CACHE), "KAFKA_TOOL_TIMEOUT": "60"}
    p = subprocess.run(["bash", str(ROOT / "scripts" / "kafka-tool.sh"), "kafka-configs",
                        "--bootstrap-server", bootstrap, *args],
                       capture_output=True, text=True, env=env, timeout=90)
    out = p.stdout + p.stderr
    if check:
        assert p.returncode == 0, f"kafka-configs {' '.join(args)} failed:\n{out}"
    return p.returncode, out


def consumer(bootstrap, group, name, **extra):
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
    conf.update(extra)
    return Consumer(conf)


def test_quick_resubscribe_cycles_reach_an_assignment(bootstrap, topic_name):
    """librdkafka subscribes, unsubscribes and resubscribes quickly; each cycle throws its
    first member id away. Fjord used to keep such ids pending for 300 s and complete no join
    while one existed, so the final subscription waited minutes for an assignment."""
    topic = topic_name()
    create_topic(bootstrap, topic)
    group = f"resubscribe-{uuid.uuid4().hex[:8]}"
    c = consumer(bootstrap, group, "resubscriber")
    assigned = []
    try:
        # Cycles of different lengths: an unsubscribe that lands between librdkafka's
        # MEMBER_ID_REQUIRED answer and its second JoinGroup throws that member id away. The
        # window is a few milliseconds, so whether a run hits it depends on timing; the
        # protocol-level test in tests/groups.rs replays the exact sequence.
        for gap in (0.0, 0.002, 0.005, 0.005, 0.008, 0.01, 0.015, 0.02, 0.05, 0.2, 0.6):
            c.subscribe([topic])
            end = Deadline(gap)
            while True:
                c.poll(0.01)
                if end.expired():
                    break
            c.unsubscribe()
            c.poll(0.01)
        t0 = time.monotonic()
        c.subscribe([topic], on_assign=lambda _c, parts: assigned.append(
            (time.monotonic() - t0, [p.partition for p in parts])))
        deadline = Deadline(RESUBSCRIBE_MAX_S)
        while not any(parts for _, parts in assigned) and not deadline.expired():
            c.poll(0.2)
        took = time.monotonic() - t0
        print(f"assignment after resubscribing: {took:.1f} s ({assigned})")
        assert any(parts for _, parts in assigned), \
            f"no assignment {took:.0f} s after resubscribing"
        first = next(t for t, parts in assigned if parts)
        # Kafka: the initial rebalance delay (3 s), or at worst the 6 s session timeout of a
        # thrown-away member id.
        assert first < 15, f"assignment took {first:.1f} s"
    finally:
        c.close()


def owned(c):
    return {tp.partition for tp in c.assignment()}


def test_static_leader_restart_on_join_group_v5_keeps_the_others_partitions(bootstrap,
                                                                            topic_name):
    """Two static members; the leader (the first to join) restarts and rejoins with
    librdkafka's JoinGroup v5. Kafka keeps the generation and hands it its stored
    assignment; the other member sees no revocation. Fjord used to rebalance ("static leader
    rejoined")."""
    topic = topic_name()
    create_topic(bootstrap, topic)
    group = f"static-leader-{uuid.uuid4().hex[:8]}"
    events = {"a": [], "b": []}

    def callbacks(name):
        return {"on_assign": lambda _c, ps: events[name].append(("assign", sorted(p.partition for p in ps))),
                "on_revoke": lambda _c, ps: events[name].append(("revoke", sorted(p.partition for p in ps)))}

    def poll_all(members, seconds):
        end = Deadline(seconds)
        while not end.expired():
            for m in members:
                m.poll(0.05)

    a = consumer(bootstrap, group, "static-a", **{"group.instance.id": "a"})
    a.subscribe([topic], **callbacks("a"))
    wait_until(lambda: (a.poll(0.1), len(owned(a)) == GROUP_PARTITIONS)[1],
               "static-a, alone, owns every partition", seconds=WAIT_S)
    b = consumer(bootstrap, group, "static-b", **{"group.instance.id": "b"})
    b.subscribe([topic], **callbacks("b"))
    deadline = Deadline(WAIT_S)
    while not (owned(a) and owned(b) and len(owned(a) | owned(b)) == GROUP_PARTITIONS) \
            and not deadline.expired():
        poll_all([a, b], 0.2)
    a_parts, b_parts = owned(a), owned(b)
    assert a_parts and b_parts, f"no split: a {a_parts}, b {b_parts}"
    poll_all([a, b], 2.0)  # settle
    b_events = list(events["b"])

    # The leader's process restarts: close() sends no LeaveGroup for a static member.
    a.close()
    a2 = consumer(bootstrap, group, "static-a-restarted", **{"group.instance.id": "a"})
    events["a2"] = []
    a2.subscribe([topic], **callbacks("a2"))
    t0 = time.monotonic()
    deadline = Deadline(WAIT_S)
    while not owned(a2) and not deadline.expired():
        poll_all([a2, b], 0.2)
    took = time.monotonic() - t0
    # Let a rebalance the rejoin might (wrongly) start play out before judging.
    poll_all([a2, b], 5.0)
    try:
        print(f"restarted leader owns {sorted(owned(a2))} after {took:.1f} s; "
              f"b's callbacks since: {events['b'][len(b_events):]}")
        assert owned(a2) == a_parts, f"restarted leader owns {owned(a2)}, had {a_parts}"
        assert owned(b) == b_parts, f"b owns {owned(b)}, had {b_parts}"
        assert events["b"] == b_events, \
            f"b saw a rebalance: {events['b'][len(b_events):]}"
    finally:
        a2.close()
        b.close()


@pytest.mark.skipif(not KIP848, reason="librdkafka without the KIP-848 consumer protocol")
def test_group_configs_set_with_kafka_configs_apply_to_members(bootstrap, start_member,
                                                               topic_name):
    """kafka-configs --entity-type groups sets consumer.session.timeout.ms and
    consumer.heartbeat.interval.ms for one group; describe shows them, and a SIGKILLed
    KIP-848 member's partitions move on after the group's session timeout, not the
    broker's 45 s. Fjord used to refuse the GROUP resource (INVALID_REQUEST
    "Unsupported resource type 32")."""
    topic = topic_name()
    create_topic(bootstrap, topic)
    group = f"group-configs-{uuid.uuid4().hex[:8]}"
    kafka_configs(bootstrap, "--alter", "--entity-type", "groups", "--entity-name", group,
                  "--add-config", "consumer.session.timeout.ms=3000,consumer.heartbeat.interval.ms=500")
    _, out = kafka_configs(bootstrap, "--describe", "--entity-type", "groups",
                           "--entity-name", group)
    assert "consumer.session.timeout.ms=3000" in out, out
    assert "consumer.heartbeat.interval.ms=500" in out, out
    # Kafka's bounds are the broker's: above group.consumer.max.session.timeout.ms is refused.
    rc, out = kafka_configs(bootstrap, "--alter", "--entity-type", "groups", "--entity-name",
                            group, "--add-config", "consumer.session.timeout.ms=999999",
                            check=False)
    assert rc != 0 and "group.consumer.max.session.timeout.ms" in out, out

    members = [start_member("confluent", group, topic, f"m{i}", protocol="consumer")
               for i in range(2)]
    wait_for_split(members)
    members[1].kill()
    t0 = time.monotonic()
    wait_until(lambda: members[0].assignment() == set(range(GROUP_PARTITIONS)),
               "the survivor owns every partition", seconds=30)
    took = time.monotonic() - t0
    print(f"survivor took over after {took:.1f} s (group session timeout 3 s)")
    assert took < 15, f"took {took:.1f} s: the group's 3 s session timeout was not applied"


def test_broker_dynamic_configs_take_kafkas_settings(bootstrap):
    """kafka-configs --entity-type brokers sets a per-broker setting Fjord does not act on
    (stored, described as a dynamic broker config) and a cluster-wide default; a read-only
    setting is refused as Kafka refuses it. Fjord used to refuse them all as
    "Unknown or read-only"."""
    kafka_configs(bootstrap, "--alter", "--entity-type", "brokers", "--entity-name", "1",
                  "--add-config", "sasl.kerberos.min.time.before.relogin=120000")
    kafka_configs(bootstrap, "--alter", "--entity-type", "brokers", "--entity-default",
                  "--add-config", "background.threads=12")
    # kafka-configs lists a broker's own dynamic configs, and the cluster default's apart.
    _, out = kafka_configs(bootstrap, "--describe", "--entity-type", "brokers",
                           "--entity-name", "1")
    assert "sasl.kerberos.min.time.before.relogin=120000" in out, out
    assert "DYNAMIC_BROKER_CONFIG:sasl.kerberos.min.time.before.relogin=120000" in out, out
    _, out = kafka_configs(bootstrap, "--describe", "--entity-type", "brokers",
                           "--entity-default")
    assert "DYNAMIC_DEFAULT_BROKER_CONFIG:background.threads=12" in out, out
    rc, out = kafka_configs(bootstrap, "--alter", "--entity-type", "brokers", "--entity-name",
                            "1", "--add-config", "group.max.size=5", check=False)
    assert rc != 0 and "Cannot update these configs dynamically" in out, out
    kafka_configs(bootstrap, "--alter", "--entity-type", "brokers", "--entity-name", "1",
                  "--delete-config", "sasl.kerberos.min.time.before.relogin")
    kafka_configs(bootstrap, "--alter", "--entity-type", "brokers", "--entity-default",
                  "--delete-config", "background.threads")
