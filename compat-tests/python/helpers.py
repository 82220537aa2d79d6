"""Small helpers shared by the client tests: bounded waiting and record comparison."""
import time

# Upper bound for any single wait on the broker. Generous for a 2-core CI machine, yet
# well inside the runner's global timeout so one hang cannot eat the whole run.
WAIT_S = 20.0


class Deadline:
    def __init__(self, seconds=WAIT_S):
        self.end = time.monotonic() + seconds

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end


def wait_until(predicate, what, seconds=WAIT_S, interval=0.2):
    """Poll predicate() until truthy; fail with the last value seen, never hang."""
    deadline = Deadline(seconds)
    while True:
        value = predicate()
        if value:
            return value
        if deadline.expired():
            raise AssertionError(f"timed out after {seconds}s waiting for {what}; last: {value!r}")
        time.sleep(interval)


# Fixed CreateTime timestamps: the broker must hand back the producer's timestamps as-is.
BASE_TS = 1_700_000_000_000


def sample_records(null_header_values=True):
    """Records exercised by every client: null and empty keys/values, binary bytes, UTF-8,
    duplicate header keys, and one value large enough to span several TCP reads.

    Each entry is (partition, key, value, headers as [(str, bytes|None)], timestamp_ms).
    kafka-python refuses null header values client-side, hence the switch.
    """
    records = [
        (0, b"k1", b"v1", [("trace", b"abc"), ("source", b"python")]),
        (0, b"k2", b"", []),
        (1, None, b"null key", [("h", b"1")]),
        (1, b"k3", None, [("tombstone", b"yes")]),
        (0, b"\x00\xffbin", b"\x00\x01\x02\xfe\xff", [("dup", b"x"), ("dup", b"y")]),
        (1, "ключ".encode(), "значение ✓".encode(), [("utf8-ключ", "✓".encode())]),
        (0, b"big", bytes(range(256)) * 400, [("size", b"102400")]),
        (1, b"hdr", b"empty or null header value", [("n", None if null_header_values else b"")]),
    ]
    return [(p, k, v, h, BASE_TS + i) for i, (p, k, v, h) in enumerate(records)]


def expected_rows(records):
    """(partition, offset, key, value, headers, timestamp) sorted by partition and offset;
    offsets count from 0 per partition in send order, as on a fresh topic."""
    next_offset = {}
    rows = []
    for partition, key, value, headers, ts in records:
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        rows.append((partition, offset, key, value, list(headers), ts))
    return sorted(rows, key=lambda r: (r[0], r[1]))


def describe_diff(expected, got):
    """Readable first difference, so a failure names the record rather than dumping blobs."""
    def short(row):
        return tuple(repr(x)[:80] for x in row)

    if len(expected) != len(got):
        return f"expected {len(expected)} records, got {len(got)}: {[short(r) for r in got][:10]}"
    for e, g in zip(expected, got):
        if e != g:
            return f"first difference: expected {short(e)}, got {short(g)}"
    return "no difference"


# --- Consumer groups ---------------------------------------------------------------------
# Shared by the test_groups_*.py files. Members of a group run as separate processes
# (group_member.py, wrapped by Member below); single-consumer steps run in-process.
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading

GROUP_PARTITIONS = 6
# A first join waits out the broker's group.initial.rebalance.delay.ms (Kafka's default 3 s)
# and a rebalance waits for every live member to rejoin, so group steps get more time than
# WAIT_S. Still bounded: a broker that never completes a rebalance fails the test.
GROUP_WAIT_S = 40.0
# Classic protocol: session.timeout.ms set by group_member.py (Kafka's smallest allowed).
CLASSIC_SESSION_S = 6.0
MEMBER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "group_member.py")


def create_topic(bootstrap, name, partitions=GROUP_PARTITIONS):
    """Create a topic through confluent-kafka's AdminClient (topic setup is not what the
    group tests check; one well-tested path keeps their failures about groups)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=WAIT_S,
                                  request_timeout=WAIT_S)
    futures[name].result(timeout=WAIT_S + 5)
    wait_until(lambda: len(getattr(admin.list_topics(name, timeout=WAIT_S).topics.get(name),
                                   "partitions", {})) == partitions,
               f"{name} with {partitions} partitions in metadata")


def produce_pinned(bootstrap, topic, per_partition, tag, partitions=GROUP_PARTITIONS):
    """Produce per_partition records to every partition (keys "<tag>-p<P>-<i>"); returns the
    (partition, offset, key) rows from the delivery reports, sorted."""
    from confluent_kafka import Producer
    reports = []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "message.timeout.ms": int(WAIT_S * 1000)})
    for i in range(per_partition):
        for p in range(partitions):
            producer.produce(topic, key=f"{tag}-p{p}-{i}".encode(), value=f"value {i}".encode(),
                             partition=p, on_delivery=lambda err, msg: reports.append((err, msg)))
    remaining = producer.flush(WAIT_S + 5)
    assert remaining == 0, f"{remaining} records still undelivered"
    errors = [err for err, _ in reports if err is not None]
    assert not errors, f"delivery errors: {errors}"
    return sorted((m.partition(), m.offset(), m.key().decode()) for _, m in reports)


def split_problem(assignments, partitions=GROUP_PARTITIONS, balanced=True):
    """Why the members' assignments are not a clean split of the topic (None if they are):
    every member owns partitions, none is owned twice, all are owned and, if balanced, each
    member owns the same number (what Kafka's range, round-robin, sticky and uniform
    assignors all produce when the partition count divides evenly)."""
    if any(not a for a in assignments):
        return f"a member owns no partitions: {assignments}"
    owned = [p for a in assignments for p in a]
    if len(owned) != len(set(owned)):
        return f"a partition is owned twice: {assignments}"
    if set(owned) != set(range(partitions)):
        return f"partitions {sorted(set(range(partitions)) - set(owned))} unowned: {assignments}"
    if balanced and len({len(a) for a in assignments}) != 1:
        return f"unbalanced: {assignments}"
    return None


def wait_for_split(members, seconds=GROUP_WAIT_S):
    """Wait until the members' reported assignments split the partitions cleanly and evenly;
    returns them (list of sets, in member order)."""
    deadline = Deadline(seconds)
    while True:
        assignments = [m.assignment() for m in members]
        problem = split_problem(assignments)
        if problem is None:
            return assignments
        dead = [m for m in members if not m.alive()]
        if dead or deadline.expired():
            why = f"member(s) {[m.name for m in dead]} exited" if dead else f"{seconds}s passed"
            raise AssertionError(f"no clean split of {GROUP_PARTITIONS} partitions ({why}); "
                                 f"last: {problem}\n" + "\n".join(m.describe() for m in members))
        time.sleep(0.2)


def wait_for_records(members, expected, seconds=GROUP_WAIT_S, settle=2.0):
    """Wait until the members together consumed the expected (partition, offset, key) rows,
    then keep listening `settle` seconds so duplicates and extra records show up too.
    Returns every row consumed (with duplicates) for the caller's exact comparison."""
    want = set(expected)
    deadline = Deadline(seconds)
    while not want <= {r for m in members for r in m.records()} and not deadline.expired():
        time.sleep(0.2)
    time.sleep(settle)
    return sorted(r for m in members for r in m.records())


def records_by_partition_problem(members, assignments):
    """Each member must have read only from partitions it owned (None when so)."""
    for m, owned in zip(members, assignments):
        stray = sorted({p for p, _, _ in m.records()} - set(owned))
        if stray:
            return f"{m.name} read partitions {stray} it does not own ({sorted(owned)})"
    return None


class Member:
    """A consumer-group member in its own process (group_member.py): start it, read its
    reported assignment and records, tell it to commit or close, or SIGKILL it."""

    def __init__(self, client, bootstrap, group, topic, name, protocol="classic"):
        self.name = name
        self.events = []
        self._cond = threading.Condition()
        self._stderr = tempfile.TemporaryFile("w+", prefix=f"member-{name}-")
        cmd = [sys.executable, MEMBER_SCRIPT, "--client", client, "--protocol", protocol,
               "--bootstrap", bootstrap, "--group", group, "--topic", topic,
               "--client-id", name, "--max-seconds", "240"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, bufsize=1,
                                     env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "garbage", "line": line.rstrip()}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def _of(self, name):
        with self._cond:
            return [e for e in self.events if e["event"] == name]

    def alive(self):
        return self.proc.poll() is None

    def assignment(self):
        """Partitions the member last reported owning (a set), or None before any report."""
        reports = self._of("assignment")
        return set(reports[-1]["partitions"]) if reports else None

    def records(self):
        return [tuple(r) for e in self._of("records") for r in e["records"]]

    def errors(self):
        return [e["error"] for e in self._of("error")]

    def _send(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the member is gone; waiting for its answer reports that

    def _wait_event(self, name, since, seconds):
        deadline = Deadline(seconds)
        with self._cond:
            while True:
                found = [e for e in self.events[since:] if e["event"] == name]
                if found:
                    return found[0]
                if deadline.expired() or (self.proc.poll() is not None
                                          and self.proc.stdout.closed):
                    break
                self._cond.wait(min(0.2, deadline.remaining()) or 0.01)
        raise AssertionError(f"{self.name}: no '{name}' event within {seconds}s\n"
                             + self.describe())

    def commit(self, metadata="", seconds=WAIT_S):
        """Commit the consumed position of every owned partition; returns the member's report
        ({"offsets": {partition: offset}, "errors": [...]})."""
        since = len(self.events)
        self._send(f"commit {metadata}")
        return self._wait_event("committed", since, seconds)

    def close(self, seconds=WAIT_S):
        """Leave the group cleanly; returns the exit code (None if it did not exit in time)."""
        self._send("close")
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """SIGKILL: no LeaveGroup, no more heartbeats; only the session timeout can tell."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def stderr_tail(self, lines=8):
        self._stderr.seek(0)
        return "".join(self._stderr.readlines()[-lines:])

    def describe(self):
        assignment = self.assignment()
        return (f"  {self.name}: {'running' if self.alive() else f'exited rc={self.proc.returncode}'}"
                f", owns {sorted(assignment) if assignment is not None else 'nothing reported'}"
                f", {len(self.records())} records, errors {self.errors()[-3:]}"
                + (f"\n    stderr: {self.stderr_tail()!r}" if self.stderr_tail() else ""))


def close_all(members, seconds=WAIT_S):
    """Close members together (each leaves the group cleanly); fails on unclean exits."""
    for m in members:
        m._send("close")
    problems = []
    for m in members:
        rc = m.close(seconds)
        if rc != 0 or not m._of("closed"):
            problems.append(m.describe())
    assert not problems, "members did not close cleanly:\n" + "\n".join(problems)


# --- Group scenarios shared by the clients -----------------------------------------------

def check_members_split_and_resume(start_member, client, bootstrap, topic, protocol="classic"):
    """Three members split a 6-partition topic evenly, read exactly what was produced (each
    only from its own partitions), commit with metadata and close; a new member of the group
    then reads exactly the records produced after those commits."""
    group = f"{topic}-group"
    create_topic(bootstrap, topic)
    members = [start_member(client, group, topic, f"{client}-{protocol}-m{i}", protocol)
               for i in range(3)]
    assignments = wait_for_split(members)

    first = produce_pinned(bootstrap, topic, 3, "first")
    got = wait_for_records(members, first)
    assert got == first, (f"three members together: {describe_diff(first, got)}\n"
                          + "\n".join(m.describe() for m in members))
    problem = records_by_partition_problem(members, assignments)
    assert problem is None, problem

    for i, m in enumerate(members):
        report = m.commit(f"member {i}")
        assert not report["errors"], f"{m.name} commit failed: {report}"
        assert report["offsets"] == {str(p): 3 for p in sorted(assignments[i])}, report
    close_all(members)

    second = produce_pinned(bootstrap, topic, 2, "second")
    resumed = start_member(client, group, topic, f"{client}-{protocol}-resumed", protocol)
    got = wait_for_records([resumed], second)
    assert got == second, ("a new member must resume exactly at the committed offsets "
                           f"(3 per partition): {describe_diff(second, got)}\n"
                           + resumed.describe())
    close_all([resumed])


def check_killed_member_reassigned(start_member, client, bootstrap, topic, session_s,
                                   protocol="classic", slack_s=12.0):
    """Three members split the topic; one is SIGKILLed (no LeaveGroup). Within the session
    timeout plus slack the two survivors must own all partitions between them, evenly, and
    read records produced to every partition, the dead member's included."""
    group = f"{topic}-group"
    create_topic(bootstrap, topic)
    members = [start_member(client, group, topic, f"{client}-{protocol}-k{i}", protocol)
               for i in range(3)]
    wait_for_split(members)
    victim, survivors = members[0], members[1:]
    orphaned = sorted(victim.assignment())
    victim.kill()
    killed_at = time.monotonic()

    limit = session_s + slack_s
    try:
        assignments = wait_for_split(survivors, limit)
    except AssertionError as e:
        raise AssertionError(f"after SIGKILL of {victim.name} (owned {orphaned}), the "
                             f"survivors did not take over within session timeout "
                             f"{session_s:.0f}s + {slack_s:.0f}s slack: {e}") from None
    took = time.monotonic() - killed_at
    print(f"survivors took over {orphaned} {took:.1f}s after the SIGKILL "
          f"(session timeout {session_s:.0f}s)")

    rows = produce_pinned(bootstrap, topic, 2, "after-kill")
    got = wait_for_records(survivors, rows)
    assert got == rows, f"survivors: {describe_diff(rows, got)}\n" + \
        "\n".join(m.describe() for m in survivors)
    problem = records_by_partition_problem(survivors, assignments)
    assert problem is None, problem
    close_all(survivors)
