"""Metadata crash durability test: does SIGKILL of the broker forget a topic creation, a
committed offset or a transaction's completion that the client was told had succeeded?

scripts/crash_test.py covers produce data; this covers what goes to the metadata store
(topics, group offsets, transaction state), which the broker must make durable before it
answers, like records ("acknowledged means persisted").

One broker on one data dir and port. Each trial:
  1. fresh clients (the previous trial's died with the broker): an AdminClient, a Consumer
     for group meta-cg-<trial> (enable.auto.commit=false, never subscribes), a
     transactional Producer (transactional.id meta-tx-<trial>, initialised before the
     clock starts) and a Consumer for group meta-txg-<trial> that only supplies the group
     metadata for send_offsets_to_transaction;
  2. three threads run concurrently:
       topics  - create_topics meta-<trial>-<n>, n = 0, 1, ..., with 1 + n % 3 partitions,
                 one after another, waiting on each future;
       commits - commit(offsets=[meta-commits/<trial % 2> at 1, 2, 3, ...],
                 asynchronous=False);
       txns    - begin, produce 3 records "trial:txn:i" to meta-txn (both partitions),
                 send_offsets_to_transaction(meta-src/0 at txn+1, group meta-txg-<trial>),
                 commit_transaction.
     One category per trial (commits, topics, txns in turn) is the focus and calls back
     to back (topics with a 5 ms pause, to keep their number in hundreds); the other two
     pause 50 ms between calls. Every flush of the store persists
     all the writes before it, whoever asked for it, so a category that skipped its own
     flush would hide behind the others' if all ran flat out; the pauses leave windows in
     which only the focus category's own flush protects what it acknowledged;
  3. 0.3-2.0 s (random) after the threads start the broker is SIGKILLed and at once
     restarted on the same data dir and port (alternately with and without
     --log-flush-interval-messages 1 by default: the flush paths differ). No new call
     starts after the kill; the call each thread had running either fails (it was in
     flight: unacknowledged, neither kind of outcome is a loss) or succeeds: the old
     broker's answer was already on its way, or the client retried the call against the
     restarted broker. A success is an acknowledgement whoever sent it, and is checked like
     the rest ("+after" in the output when the client saw it only after the restart began);
  4. the transaction the kill left open is resolved by initialising a new producer with
     the same transactional.id (that fences the old one: the broker aborts an ongoing
     transaction and completes one whose commit it had already decided);
  5. fresh clients verify, cumulatively over all trials so far:
       topics  - every acknowledged topic is listed (list_topics) with its partition count;
       commits - committed() for the trial's group is >= the last acknowledged offset and
                 <= the last attempted one (equal unless a commit was in flight at the
                 kill), and never changes in a later trial;
       txns    - a read_committed consumer reading meta-txn from the beginning sees every
                 record of every acknowledged transaction exactly once; a transaction whose
                 commit was in flight at the kill shows all its records or none; one that
                 never reached commit_transaction (or was aborted) shows none; nothing else
                 appears; reading must reach the high watermark (a last stable offset stuck
                 below it means a transaction nobody can finish any more);
       txn offsets - committed() with isolation.level=read_committed for meta-txg-<trial>
                 equals the offset sent by the last transaction whose records are visible,
                 which is at least the one the last acknowledged transaction sent.
After the last trial the broker is stopped with SIGTERM (must exit 0), restarted, and
everything is verified once more. Each problem is reported once, where first seen, with
how long before the SIGKILL the lost item had been acknowledged. `--signal TERM` makes a
control run with graceful stops instead of kills: it must pass on any broker that flushes
at shutdown, which checks the harness itself.

Exit status: 0 = all checks passed; 1 = an acknowledged topic, commit or transaction was
lost, or another check failed (partial or aborted transaction visible, unknown records,
stuck last stable offset, an error answer from the broker before the kill); 2 = the
harness could not run (broker did not start or restart, a category was never acknowledged,
a client call failed outside the workload). A workload call still hung 6 s after the
restart (librdkafka, see WORKER_JOIN_S) is abandoned as unacknowledged and noted.
"""
import argparse
import json
import logging
import os
import random
import signal
import sys
import threading
import time

from confluent_kafka import (OFFSET_BEGINNING, OFFSET_INVALID, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Broker, BrokerError, exit_on_sigterm, percentile  # noqa: E402


QUIET = logging.getLogger("crash-meta.librdkafka")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False

COMMIT_TOPIC = "meta-commits"   # offset commits go here (partition trial % 2)
COMMIT_PARTITIONS = 2
SRC_TOPIC = "meta-src"          # the "consumed" topic of the transactions' offsets
TXN_TOPIC = "meta-txn"          # transactional records

# Client timeouts: short, so a call in flight at the kill fails within a few seconds.
SOCKET_TIMEOUT_MS = 3000
OP_TIMEOUT_S = 4.0              # admin request, send_offsets / commit_transaction
COMMIT_WAIT_MS = 4000           # session.timeout.ms bounds a sync commit with no coordinator
# After the restart, bound on the threads' last calls. librdkafka 2.16 retries a sync
# OffsetCommit that was in flight when the connection dropped until a coordinator answers
# (so the broker is restarted first, then the threads are joined), and a
# send_offsets_to_transaction in flight at the kill can hang past its timeout even after
# the restart (AddOffsetsToTxn is retried and answered, TxnOffsetCommit is never sent). A
# call still running after this is abandoned: unacknowledged, and whatever it does later
# is ignored.
WORKER_JOIN_S = 6.0
STALL_S = 3.0                   # verification read: no progress for this long = stuck


class HarnessError(Exception):
    pass


def now():
    return time.monotonic()


def client_conf(bootstrap, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": SOCKET_TIMEOUT_MS,
        "socket.connection.setup.timeout.ms": 3000,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 200,
        "logger": QUIET,
    }
    conf.update(extra)
    return conf


def _stack(frame, depth=4):
    out = []
    while frame is not None and len(out) < depth:
        out.append(frame)
        frame = frame.f_back
    return out


def kafka_error(e):
    return e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None


def describe(e):
    err = kafka_error(e)
    return f"{err.name()}: {err.str()}" if err is not None else repr(e)


# ---------------------------------------------------------------------------------------
# Workers: one thread per category. Each records what it attempted and when each call was
# acknowledged. `killed` is set just before the SIGKILL: no new call starts after it, the
# one running finishes (it fails, or the client retries it against the restarted broker).

class Worker(threading.Thread):
    def __init__(self, name, killed, pause):
        super().__init__(daemon=True, name=name)
        self.lock = threading.Lock()
        self.killed = killed
        self.pause = pause        # seconds between calls (0 for the trial's focus category)
        self.kill_time = None     # set by main together with `killed`
        self.errors = []          # (time, text, broker_error) of calls that failed before the kill
        self.exc = None
        self.in_flight = False    # a call was running at the kill and did not succeed
        self.frozen = False       # abandoned (hung after the restart): record nothing more

    def before_kill(self, t):
        return not self.killed.is_set() or self.kill_time is None or t < self.kill_time

    def failed(self, what, e):
        """A call failed. Before the kill that is an error from a healthy broker (noted, the
        loop goes on: returns True); after it, the call was in flight at the kill."""
        t = now()
        if self.before_kill(t):
            err = kafka_error(e)
            broker_side = err is not None and err.code() >= 0
            with self.lock:
                if not self.frozen:
                    self.errors.append((t, f"{what}: {describe(e)}", broker_side))
            return True
        self.in_flight = True
        return False

    def wait(self):
        if self.pause:
            self.killed.wait(self.pause)

    def run(self):
        try:
            self.work()
        except Exception as e:  # surfaced by the main thread
            self.exc = e


class TopicWorker(Worker):
    def __init__(self, admin, trial, killed, pause):
        super().__init__("topics", killed, pause)
        self.admin = admin
        self.trial = trial
        self.attempted = []       # names, in order
        self.acked = {}           # name -> (partitions, time of the acknowledgement)

    def work(self):
        n = 0
        while not self.killed.is_set():
            name = f"meta-{self.trial}-{n}"
            parts = 1 + n % 3
            with self.lock:
                self.attempted.append(name)
            n += 1
            try:
                futs = self.admin.create_topics([NewTopic(name, parts, 1)],
                                                request_timeout=OP_TIMEOUT_S)
                futs[name].result(timeout=OP_TIMEOUT_S + 2)
            except Exception as e:  # KafkaException or the future's own timeout
                if not self.failed(f"create {name}", e):
                    return
                time.sleep(0.05)
                continue
            with self.lock:
                if self.frozen:
                    return
                self.acked[name] = (parts, now())
            self.wait()


class CommitWorker(Worker):
    def __init__(self, consumer, partition, killed, pause):
        super().__init__("commits", killed, pause)
        self.consumer = consumer
        self.partition = partition
        self.attempted_last = None
        self.acks = []            # (offset, time of the acknowledgement), offsets rising

    def work(self):
        off = 0
        while not self.killed.is_set():
            off += 1
            with self.lock:
                self.attempted_last = off
            try:
                res = self.consumer.commit(
                    offsets=[TopicPartition(COMMIT_TOPIC, self.partition, off)],
                    asynchronous=False)
                perr = [tp.error for tp in (res or []) if tp.error is not None]
                if perr:
                    raise KafkaException(perr[0])
            except KafkaException as e:
                if not self.failed(f"commit {off}", e):
                    return
                time.sleep(0.05)
                continue
            with self.lock:
                if self.frozen:
                    return
                self.acks.append((off, now()))
            self.wait()


class TxnWorker(Worker):
    """Per transaction a state: open (never reached commit_transaction: must stay
    invisible), commit_unknown (commit called, no answer: all or nothing), committed
    (acknowledged: all records, once), aborted (abort acknowledged: invisible)."""

    def __init__(self, producer, group_md, trial, records, partitions, killed, pause):
        super().__init__("txns", killed, pause)
        self.producer = producer
        self.group_md = group_md
        self.trial = trial
        self.records = records
        self.partitions = partitions
        self.txns = {}            # txn index -> state
        self.committed_at = {}    # txn index -> time of the acknowledgement
        self.fatal = False

    def set_state(self, txn, state):
        """False once the worker was abandoned: it must not go on (in particular not commit
        a transaction recorded as never committed)."""
        with self.lock:
            if self.frozen:
                return False
            self.txns[txn] = state
            if state == "committed":
                self.committed_at[txn] = now()
            return True

    def work(self):
        p = self.producer
        txn = 0
        while not self.killed.is_set():
            if not self.set_state(txn, "open"):
                return
            try:
                p.begin_transaction()
                for i in range(self.records):
                    p.produce(TXN_TOPIC, value=f"{self.trial}:{txn}:{i}".encode(),
                              partition=i % self.partitions)
                p.send_offsets_to_transaction([TopicPartition(SRC_TOPIC, 0, txn + 1)],
                                              self.group_md, OP_TIMEOUT_S)
                if not self.set_state(txn, "commit_unknown"):
                    return
                p.commit_transaction(OP_TIMEOUT_S)
                self.set_state(txn, "committed")
            except (KafkaException, BufferError) as e:
                if not self.failed(f"txn {txn}", e):
                    return
                err = kafka_error(e)
                if err is not None and err.fatal():
                    self.fatal = True
                    return
                try:
                    p.abort_transaction(OP_TIMEOUT_S)
                    if not self.set_state(txn, "aborted"):
                        return
                except KafkaException as e2:
                    self.failed(f"abort txn {txn}", e2)
                    return  # neither commit nor abort worked: stop this trial's transactions
            txn += 1
            self.wait()


# ---------------------------------------------------------------------------------------
# Verification

def list_topics(bootstrap, timeout):
    admin = AdminClient(client_conf(bootstrap))
    md = admin.list_topics(timeout=timeout)
    out = {}
    for name, t in md.topics.items():
        if t.error is not None:
            out[name] = ("error", str(t.error))
        else:
            out[name] = (len(t.partitions),
                         [p.id for p in t.partitions.values() if p.error is not None])
    return out


def committed_offset(bootstrap, group, topic, partition, timeout, read_committed=False):
    """committed() of a fresh consumer in `group`. With read_committed the OffsetFetch asks
    for stable offsets (require_stable): none of a transaction still pending."""
    c = Consumer(client_conf(bootstrap, **{
        "group.id": group, "enable.auto.commit": False,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted"}))
    try:
        res = c.committed([TopicPartition(topic, partition)], timeout=timeout)
    finally:
        c.close()
    tp = res[0]
    if tp.error is not None:
        raise HarnessError(f"committed() for {group} {topic}/{partition}: {tp.error}")
    return tp.offset


def read_txn_topic(bootstrap, partitions, timeout, isolation="read_committed"):
    """Reads TXN_TOPIC from the beginning: ({value: count}, {value: [(partition, offset)]},
    high watermarks, {partition: where reading stopped short of the high watermark},
    client errors). With read_committed the end is the last stable offset, which reaches
    the high watermark once no transaction is open; a partition whose reading stalls
    below it for STALL_S is given up on and reported."""
    # librdkafka's default isolation is read_committed, whose "high watermark" is the last
    # stable offset: the probe must read uncommitted to get the real end of the log.
    probe = Consumer(client_conf(bootstrap, **{"group.id": "meta-verify",
                                               "enable.auto.commit": False,
                                               "isolation.level": "read_uncommitted"}))
    try:
        hw = {p: probe.get_watermark_offsets(TopicPartition(TXN_TOPIC, p), timeout=timeout,
                                             cached=False)[1] for p in range(partitions)}
    finally:
        probe.close()
    c = Consumer(client_conf(bootstrap, **{
        "group.id": "meta-verify", "enable.auto.commit": False,
        "isolation.level": isolation, "enable.partition.eof": True,
        "auto.offset.reset": "earliest"}))
    counts = {}
    where = {}
    errors = []
    done = {p for p in range(partitions) if hw[p] == 0}
    pos = {p: 0 for p in range(partitions)}
    progress = {p: now() for p in range(partitions)}
    try:
        c.assign([TopicPartition(TXN_TOPIC, p, OFFSET_BEGINNING)
                  for p in range(partitions) if p not in done])
        deadline = now() + timeout
        while len(done) < partitions:
            t = now()
            stalled = [p for p in range(partitions)
                       if p not in done and t - progress[p] > STALL_S]
            if t > deadline or len(done) + len(stalled) == partitions:
                break
            for msg in c.consume(num_messages=10000, timeout=0.2):
                p = msg.partition()
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        pos[p] = msg.offset()
                        progress[p] = now()
                        if msg.offset() >= hw[p]:
                            done.add(p)
                        continue
                    errors.append(str(msg.error()))
                    continue
                pos[p] = msg.offset() + 1
                progress[p] = now()
                v = msg.value().decode(errors="replace")
                counts[v] = counts.get(v, 0) + 1
                where.setdefault(v, []).append((p, msg.offset()))
    finally:
        c.close()
    short = {p: pos[p] for p in range(partitions) if p not in done}
    return counts, where, hw, short, errors


class State:
    """What every trial so far acknowledged, and what its first verification found."""

    def __init__(self, records):
        self.records = records
        self.topics = {}             # name -> partitions (acknowledged, incl. the setup topics)
        self.topic_trial = {}        # name -> trial (setup topics: 0)
        self.topic_age = {}          # name -> (seconds from its ack to the kill, by restarted?)
        self.commit = {}             # trial -> dict(partition, acks, attempted_last, recovered)
        self.txns = {}               # trial -> {txn: state}
        self.txn_age = {}            # (trial, txn) -> like topic_age, for the commit's ack
        self.txn_visible = {}        # (trial, txn) -> bool, decided at its first verification
        self.txn_offset = {}         # trial -> recovered committed offset of meta-txg-<trial>
        self.reported = set()        # keys of the problems already reported


def age(when):
    """(seconds from the acknowledgement to the SIGKILL, seen only after the restart began?)
    as text. The time is when the client saw the answer: an answer the old broker sent just
    before it died can be read a little after the SIGKILL, even after the restart began."""
    if when is None:
        return "acknowledged (time unknown)"
    before, restarted = when
    if restarted:
        return (f"acknowledged {-before * 1000:.0f} ms after the SIGKILL, once the restart had "
                f"begun (a late answer of the old broker or a retry answered by the new one)")
    if before < 0:
        return (f"acknowledged {-before * 1000:.0f} ms after the SIGKILL was sent, before the "
                f"restart (an answer of the old broker)")
    return f"acknowledged {before * 1000:.0f} ms before the SIGKILL"


def verify(state, bootstrap, txn_partitions, timeout):
    """Checks everything in `state`. Returns (new findings, new loss counts per category,
    info about the newest trial's first verification). Each problem is reported and
    counted once, at the first verification that sees it (state.reported)."""
    bad = []
    lost = {"topics": 0, "commits": 0, "txns": 0, "txn_offsets": 0}
    info = {}

    def report(key, text, category=None, n=1):
        if key in state.reported:
            return
        state.reported.add(key)
        bad.append((key[0], text))
        if category:
            lost[category] += n

    # -- topics
    listed = list_topics(bootstrap, timeout)
    for name, parts in sorted(state.topics.items()):
        got = listed.get(name)
        origin = state.topic_trial[name]
        when = age(state.topic_age.get(name)) if origin else "set-up topic"
        if got is None:
            report(("topic", name), f"topic {name} (trial {origin}, {when}) is missing",
                   "topics")
        elif got[0] == "error":
            report(("topic", name), f"topic {name} (trial {origin}, {when}) listed with "
                   f"error {got[1]}", "topics")
        elif got[0] != parts or got[1]:
            report(("topic", name), f"topic {name} (trial {origin}, {when}) has {got[0]} "
                   f"partitions (errors in {got[1]}), acknowledged with {parts}", "topics")
    info["listed"] = listed

    # -- offset commits
    for trial, c in sorted(state.commit.items()):
        group = f"meta-cg-{trial}"
        off = committed_offset(bootstrap, group, COMMIT_TOPIC, c["partition"], timeout)
        got = 0 if off == OFFSET_INVALID else off
        acked = c["acks"][-1][0] if c["acks"] else 0
        if c["recovered"] is None:
            if got < acked:
                gone = [(o, a) for o, a in c["acks"] if o > got]
                report(("commit", trial),
                       f"group {group}: committed offset {off} after the restart, but "
                       f"{acked} was acknowledged (last attempted {c['attempted_last']}): "
                       f"{len(gone)} acknowledged commits lost, offsets "
                       f"{gone[0][0]}..{gone[-1][0]}, the oldest {age(gone[0][1])}, the "
                       f"newest {age(gone[-1][1])}", "commits", len(gone))
            elif c["attempted_last"] is not None and got > c["attempted_last"]:
                report(("commit", trial), f"group {group}: committed offset {off} was never "
                       f"committed (last attempted {c['attempted_last']})")
            c["recovered"] = got
            info["commit"] = off
        elif got != c["recovered"] and not (
                c["abandoned"] and c["recovered"] <= got <= (c["attempted_last"] or 0)):
            report(("commit-changed", trial, off),
                   f"group {group} (trial {trial}): committed offset changed from "
                   f"{c['recovered']} to {off} in a later trial",
                   "commits" if got < c["recovered"] else None,
                   max(0, c["recovered"] - got))

    # -- transactional records
    counts, where, hw, short, read_errors = read_txn_topic(bootstrap, txn_partitions, timeout)
    for e in read_errors[:5]:
        report(("read-error", e), f"read_committed consumer error: {e}")
    for p, stop in sorted(short.items()):
        report(("stuck", p, stop),
               f"{TXN_TOPIC}/{p}: read_committed reading stops at offset {stop}, below the "
               f"high watermark {hw[p]}: the last stable offset is stuck (a transaction is "
               f"still open after the restart and the fencing init_transactions), so "
               f"everything committed after it is invisible")
    raw = None                  # the log as read_uncommitted, read if something is missing

    def in_log(values):
        nonlocal raw
        if raw is None:
            raw = read_txn_topic(bootstrap, txn_partitions, timeout, "read_uncommitted")
        return [(v, raw[1].get(v)) for v in values]

    known = set()
    for trial, txns in sorted(state.txns.items()):
        for txn, st in sorted(txns.items()):
            values = [f"{trial}:{txn}:{i}" for i in range(state.records)]
            known.update(values)
            n = [counts.get(v, 0) for v in values]
            present = sum(1 for x in n if x > 0)
            dups = sum(1 for x in n if x > 1)
            name = f"txn {trial}:{txn} ({st})"
            if dups:
                report(("txn-dup", trial, txn),
                       f"{name}: {dups} of its records appear more than once")
            if st == "committed" and present < state.records:
                missing = [v for v, x in zip(values, n) if x == 0]
                report(("txn", trial, txn),
                       f"{name}: commit {age(state.txn_age.get((trial, txn)))}, but only "
                       f"{present} of {state.records} records are visible; in the log "
                       f"(read_uncommitted) the missing ones are at {in_log(missing)}",
                       "txns")
            elif st == "commit_unknown" and 0 < present < state.records:
                report(("txn", trial, txn), f"{name}: {present} of {state.records} records "
                       f"visible (must be all or none)")
            elif st in ("open", "aborted") and present:
                report(("txn", trial, txn),
                       f"{name}: never committed, but {present} records are visible")
            visible = present == state.records
            prev = state.txn_visible.get((trial, txn))
            if prev is None:
                state.txn_visible[(trial, txn)] = visible
            elif prev != visible:
                report(("txn-flip", trial, txn, visible),
                       f"{name}: was {'visible' if prev else 'invisible'} at its first "
                       f"verification, {'visible' if visible else 'invisible'} now",
                       "txns" if prev and st == "committed" else None)
    unknown = sorted(v for v in counts if v not in known)
    if unknown:
        report(("unknown", unknown[0], len(unknown)),
               f"{len(unknown)} records in {TXN_TOPIC} from no known transaction, "
               f"e.g. {unknown[:5]}")
    info["txn_records_read"] = sum(counts.values())

    # -- transactional offsets
    for trial, txns in sorted(state.txns.items()):
        group = f"meta-txg-{trial}"
        off = committed_offset(bootstrap, group, SRC_TOPIC, 0, timeout, read_committed=True)
        visible = [t for t in txns if state.txn_visible.get((trial, t))]
        want = max(visible) + 1 if visible else OFFSET_INVALID
        acked = [t for t, st in txns.items() if st == "committed"]
        acked_off = max(acked) + 1 if acked else 0
        if off != want:
            behind = (0 if off == OFFSET_INVALID else off) < acked_off
            report(("txn-offset", trial, off),
                   f"group {group}: transactional committed offset {off}, but the last "
                   f"visible transaction sent {want} and the last acknowledged one sent "
                   f"{acked_off or 'nothing'}", "txn_offsets" if behind else None)
        if trial not in state.txn_offset:
            state.txn_offset[trial] = off
            info["txn_offset"] = (off, want)
    return bad, lost, info


# ---------------------------------------------------------------------------------------

FOCUS = ("commits", "topics", "txns")
CATEGORIES = ("topics", "commits", "txns", "txn_offsets")
LABELS = {"topics": "topic creations", "commits": "offset commits",
          "txns": "transactions", "txn_offsets": "txn group offsets"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--kill-min", type=float, default=0.3)
    ap.add_argument("--kill-max", type=float, default=2.0)
    ap.add_argument("--flush", choices=("alternate", "on", "off"), default="alternate",
                    help="broker runs with --log-flush-interval-messages 1 (on), without it "
                         "(off), or switches at every restart (alternate, the default)")
    ap.add_argument("--pause-ms", type=float, default=50.0,
                    help="pause between the calls of the two categories that are not the "
                         "trial's focus")
    ap.add_argument("--topic-pause-ms", type=float, default=5.0,
                    help="pause between topic creations when topics are the focus: every "
                         "topic stays for the rest of the run, and thousands of them slow "
                         "each restart and grow the store (several hundred MB)")
    ap.add_argument("--signal", choices=("KILL", "TERM"), default="KILL",
                    help="TERM makes a control run: graceful stops, after which nothing may "
                         "be missing either (checks the harness as much as the broker)")
    ap.add_argument("--txn-partitions", type=int, default=2)
    ap.add_argument("--records-per-txn", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--step-timeout", type=float, default=30.0,
                    help="bound on each start-up, client set-up and verification step")
    ap.add_argument("--json", help="also write the summary as JSON here")
    args = ap.parse_args()
    exit_on_sigterm()

    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    broker = Broker(args.broker_bin, args.data_dir)

    def flush_on(trial):
        return args.flush == "on" or (args.flush == "alternate" and trial % 2 == 0)

    def set_mode(trial):
        broker.extra_args = ["--log-flush-interval-messages", "1"] if flush_on(trial) else []

    print(f"crash-meta: {args.trials} trials, kill {args.kill_min}-{args.kill_max}s into each, "
          f"flush mode {args.flush}, non-focus pause {args.pause_ms:.0f} ms, SIG{args.signal}, "
          f"seed {seed}")
    print(f"crash-meta: data dir {args.data_dir}, broker log {broker.log_path}, port {broker.port}")
    sys.stdout.flush()

    state = State(args.records_per_txn)
    totals = {k: {"attempted": 0, "acked": 0, "after_restart": 0, "in_flight": 0, "lost": 0}
              for k in CATEGORIES}
    details = {"topics_in_flight_created": 0, "commits_in_flight_applied": 0,
               "txn_commit_unknown_completed": 0, "txn_commit_unknown_rolled_back": 0,
               "txn_open_at_kill": 0, "txn_aborted_before_kill": 0}
    findings = []            # durability / correctness failures (exit 1)
    broker_errors = []       # error answers from the broker before the kill (exit 1)
    warnings = []            # local client errors before the kill (reported only)
    problems = []            # harness failures (exit 2)
    rows = []
    recov_meta = []
    abandoned = []           # worker threads left in a hung client call
    notes = []               # abandoned calls (reported only)
    t_run = now()

    def check(tag):
        t = now()
        bad, lost, info = verify(state, broker.bootstrap, args.txn_partitions,
                                 args.step_timeout)
        for kind, text in bad:
            findings.append((kind, f"{tag}: {text}"))
        if bad:
            broker.mark(f"verify[{tag}] found: {'; '.join(t for _k, t in bad[:5])}")
        return bad, lost, info, now() - t

    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.data_dir)), exist_ok=True)
        broker.mark(f"crash-meta start, seed {seed}")
        set_mode(1)
        broker.start(timeout=args.step_timeout)
        admin = AdminClient(client_conf(broker.bootstrap))
        setup = {COMMIT_TOPIC: COMMIT_PARTITIONS, SRC_TOPIC: 1, TXN_TOPIC: args.txn_partitions}
        futs = admin.create_topics([NewTopic(t, p, 1) for t, p in setup.items()],
                                   request_timeout=10)
        for t, f in futs.items():
            f.result(timeout=15)
            state.topics[t] = setup[t]
            state.topic_trial[t] = 0
        del admin, futs

        for trial in range(1, args.trials + 1):
            focus = FOCUS[(trial - 1) % len(FOCUS)]

            def pause(cat):
                if cat != focus:
                    return args.pause_ms / 1000.0
                return args.topic_pause_ms / 1000.0 if cat == "topics" else 0.0

            # ---- fresh clients (before the clock starts)
            killed = threading.Event()
            admin = AdminClient(client_conf(broker.bootstrap))
            commit_part = trial % COMMIT_PARTITIONS
            committer = Consumer(client_conf(broker.bootstrap, **{
                "group.id": f"meta-cg-{trial}", "enable.auto.commit": False,
                "session.timeout.ms": COMMIT_WAIT_MS}))
            txid = f"meta-tx-{trial}"
            producer = Producer(client_conf(broker.bootstrap, **{
                "transactional.id": txid, "transaction.timeout.ms": 60000,
                "message.timeout.ms": 10000, "linger.ms": 1}))
            producer.init_transactions(args.step_timeout)
            md_consumer = Consumer(client_conf(broker.bootstrap, **{
                "group.id": f"meta-txg-{trial}", "enable.auto.commit": False,
                "session.timeout.ms": COMMIT_WAIT_MS}))
            group_md = md_consumer.consumer_group_metadata()
            topics_w = TopicWorker(admin, trial, killed, pause("topics"))
            commits_w = CommitWorker(committer, commit_part, killed, pause("commits"))
            txns_w = TxnWorker(producer, group_md, trial, args.records_per_txn,
                               args.txn_partitions, killed, pause("txns"))
            workers = [topics_w, commits_w, txns_w]

            # ---- run, SIGKILL at a random moment, restart at once on the same dir and port
            delay = rng.uniform(args.kill_min, args.kill_max)
            t0 = now()
            for w in workers:
                w.start()
            time.sleep(max(0.0, t0 + delay - now()))
            kill_time = now()
            for w in workers:
                w.kill_time = kill_time
            killed.set()
            broker.mark(f"trial {trial}: SIG{args.signal} {delay:.2f}s into the trial "
                        f"(focus {focus})")
            broker.kill(getattr(signal, "SIG" + args.signal))
            t_restart = now()
            set_mode(trial + 1)
            try:
                _t_conn, t_meta = broker.start(TXN_TOPIC, args.txn_partitions,
                                               timeout=args.step_timeout)
            except BrokerError as e:
                problems.append(f"trial {trial}: restart failed: {e}")
                print(f"trial {trial}: RESTART FAILED: {e}")
                break
            recov_meta.append(t_meta)
            broker.mark(f"trial {trial}: restarted, metadata after {t_meta * 1000:.1f} ms")
            # The call each thread had running at the kill ends now: it fails, or the client
            # retries it against the restarted broker.
            join_deadline = now() + WORKER_JOIN_S
            for w in workers:
                w.join(max(0.0, join_deadline - now()))
            drain = now() - t_restart
            for w in workers:
                with w.lock:
                    w.frozen = True
            stuck = [w for w in workers if w.is_alive()]
            if stuck:
                frames = sys._current_frames()
                where = {w.name: " <- ".join(
                    f"{f.f_code.co_name}:{f.f_lineno}" for f in _stack(frames.get(w.ident)))
                    for w in stuck}
                abandoned.extend(stuck)  # their threads and clients are left alone
                for w in stuck:
                    w.in_flight = True
                notes.append(f"trial {trial}: client call still running {WORKER_JOIN_S:.0f}s "
                             f"after the restart, abandoned (unacknowledged): {where}")
                print(f"    (trial {trial}: abandoned a client call hung after the restart: "
                      f"{where})")
            for w in workers:
                if w.exc is not None:
                    problems.append(f"trial {trial}: {w.name} thread raised {w.exc!r}")
                for t, text, broker_side in w.errors:
                    line = (f"trial {trial} {w.name} at {t - t0:.2f}s (kill at {delay:.2f}s): "
                            f"{text}")
                    (broker_errors if broker_side else warnings).append(line)
            if txns_w.fatal:
                problems.append(f"trial {trial}: the transactional producer hit a fatal error "
                                f"before the kill")

            # ---- what was acknowledged, before the kill or (a call in flight at the kill,
            # retried by the client) by the restarted broker
            for name, (parts, t) in topics_w.acked.items():
                state.topics[name] = parts
                state.topic_trial[name] = trial
                state.topic_age[name] = (kill_time - t, t >= t_restart)
            state.commit[trial] = {"partition": commit_part, "acks": [
                (o, (kill_time - t, t >= t_restart)) for o, t in commits_w.acks],
                "attempted_last": commits_w.attempted_last, "recovered": None,
                "abandoned": commits_w in stuck}
            state.txns[trial] = dict(txns_w.txns)
            for txn, t in txns_w.committed_at.items():
                state.txn_age[(trial, txn)] = (kill_time - t, t >= t_restart)
            n_topics = (sum(1 for _p, t in topics_w.acked.values() if t < t_restart),
                        sum(1 for _p, t in topics_w.acked.values() if t >= t_restart))
            n_commits = (sum(1 for _o, t in commits_w.acks if t < t_restart),
                         sum(1 for _o, t in commits_w.acks if t >= t_restart))
            n_txns = (sum(1 for t in txns_w.committed_at.values() if t < t_restart),
                      sum(1 for t in txns_w.committed_at.values() if t >= t_restart))
            txn_states = {}
            for st in txns_w.txns.values():
                txn_states[st] = txn_states.get(st, 0) + 1

            # Resolve the transaction the kill left behind: a producer with the same
            # transactional.id fences the old one (the broker aborts an ongoing
            # transaction, completes one whose commit it had decided).
            t_fence = now()
            fencer = Producer(client_conf(broker.bootstrap, **{"transactional.id": txid}))
            fencer.init_transactions(args.step_timeout)
            t_fence = now() - t_fence

            # ---- verify (cumulative)
            bad, lost, info, t_verify = check(f"trial {trial}")
            if commits_w not in stuck:  # never close a client another thread is inside
                committer.close()
            md_consumer.close()
            del admin, committer, producer, md_consumer, fencer, group_md

            in_flight_topic = topics_w.in_flight and topics_w.attempted[-1]
            if in_flight_topic and in_flight_topic in info["listed"]:
                details["topics_in_flight_created"] += 1
            c_off = info.get("commit")
            c_last = commits_w.acks[-1][0] if commits_w.acks else None
            if commits_w.in_flight and c_off == commits_w.attempted_last:
                details["commits_in_flight_applied"] += 1
            for txn, st in txns_w.txns.items():
                if st == "commit_unknown":
                    key = ("txn_commit_unknown_completed" if state.txn_visible.get((trial, txn))
                           else "txn_commit_unknown_rolled_back")
                    details[key] += 1
            details["txn_open_at_kill"] += txn_states.get("open", 0)
            details["txn_aborted_before_kill"] += txn_states.get("aborted", 0)

            for cat, attempted, (before, after), in_flight in (
                    ("topics", len(topics_w.attempted), n_topics, topics_w.in_flight),
                    ("commits", commits_w.attempted_last or 0, n_commits, commits_w.in_flight),
                    ("txns", len(txns_w.txns), n_txns, txn_states.get("commit_unknown", 0)
                     + txn_states.get("open", 0))):
                totals[cat]["attempted"] += attempted
                totals[cat]["acked"] += before
                totals[cat]["after_restart"] += after
                totals[cat]["in_flight"] += int(in_flight)
            totals["txn_offsets"]["attempted"] += 1
            totals["txn_offsets"]["acked"] += 1 if sum(n_txns) else 0
            for k, v in lost.items():
                totals[k]["lost"] += v

            t_off, t_want = info.get("txn_offset", (None, None))
            rows.append({
                "trial": trial, "focus": focus, "flush_on_ack": flush_on(trial),
                "kill_s": round(delay, 3),
                "topics": {"attempted": len(topics_w.attempted), "acked": n_topics[0],
                           "after_restart": n_topics[1], "in_flight": in_flight_topic or None},
                "commits": {"acked": n_commits[0], "after_restart": n_commits[1],
                            "last_acked": c_last, "last_attempted": commits_w.attempted_last,
                            "recovered": c_off},
                "txns": {"acked": n_txns[0], "after_restart": n_txns[1], "states": txn_states,
                         "group_offset": t_off, "group_offset_expected": t_want},
                "lost": lost, "findings": bad, "metadata_ms": round(t_meta * 1000, 1),
                "drain_s": round(drain, 2), "fence_s": round(t_fence, 2),
                "verify_s": round(t_verify, 2),
            })
            unacked_txn = {k: v for k, v in txn_states.items() if k != "committed"}
            mode = "flush-on-ack" if flush_on(trial) else "default"
            print(f"trial {trial:2d} focus {focus:<7} {mode} kill {delay:.2f}s | topics {n_topics[0]}"
                  f"{f'+{n_topics[1]}' if n_topics[1] else ''}"
                  f"{' (1 in flight)' if topics_w.in_flight else ''} | commits {n_commits[0]}"
                  f"{f'+{n_commits[1]}' if n_commits[1] else ''} last {c_last}/"
                  f"{commits_w.attempted_last} -> {c_off} | txns {n_txns[0]}"
                  f"{f'+{n_txns[1]}' if n_txns[1] else ''}"
                  f"{f' {unacked_txn}' if unacked_txn else ''} offset {t_off}/{t_want} | "
                  f"restart {t_meta * 1000:.0f} ms, drain {drain:.1f}s, verify {t_verify:.1f}s | "
                  + ("ok" if not bad else f"!! {len(bad)} findings"))
            for _kind, text in bad[:8]:
                print(f"    !! {text}")
            if len(bad) > 8:
                print(f"    !! ... {len(bad) - 8} more")
            sys.stdout.flush()
            if problems:
                break

        # ---- final: graceful stop, restart, verify everything once more
        if broker.alive() and not problems and len(rows) == args.trials:
            broker.mark("final SIGTERM")
            t_stop, rc = broker.stop()
            if rc != 0:
                problems.append(f"broker exited with {rc} on SIGTERM")
            broker.start(TXN_TOPIC, args.txn_partitions, timeout=args.step_timeout)
            bad, lost, _info, t_verify = check("final")
            for k, v in lost.items():
                totals[k]["lost"] += v
            print(f"final: SIGTERM stop {t_stop * 1000:.0f} ms (exit {rc}), restart, verify "
                  f"everything {t_verify:.1f}s | "
                  + ("ok" if not bad else f"!! {len(bad)} findings"))
            for _kind, text in bad[:8]:
                print(f"    !! {text}")
    except (HarnessError, BrokerError, KafkaException) as e:
        problems.append(f"{type(e).__name__}: "
                        f"{describe(e) if isinstance(e, KafkaException) else e}")
        print(f"crash-meta: HARNESS FAILURE: {problems[-1]}")
    finally:
        try:
            if broker.alive():
                broker.stop()
        except BrokerError as e:
            problems.append(str(e))
        broker.ensure_dead()

    # ----------------------------------------------------------------------------------
    elapsed = now() - t_run
    for k in ("topics", "commits", "txns"):
        if rows and totals[k]["acked"] == 0:
            problems.append(f"no {LABELS[k]} were acknowledged before a kill: nothing was tested")
    summary = {
        "seed": seed, "flush_mode": args.flush, "trials_completed": len(rows),
        "trials_requested": args.trials, "elapsed_s": round(elapsed, 1),
        "totals": totals, "details": details, "findings": findings,
        "broker_errors_before_kill": broker_errors, "client_warnings_before_kill": warnings,
        "abandoned_calls": notes,
        "harness_problems": problems,
        "recovery_metadata_ms_p50": round(percentile(recov_meta, 50) * 1000, 1) if recov_meta else None,
        "recovery_metadata_ms_max": round(max(recov_meta) * 1000, 1) if recov_meta else None,
        "trials": rows,
    }
    print()
    print(f"==== crash-meta summary (seed {seed}, flush mode {args.flush}, {elapsed:.0f}s)")
    print(f"trials: {len(rows)}/{args.trials}")
    print(f"{'':<19}{'attempted':>10}{'acked':>8}{'+after':>8}{'in flight':>10}{'LOST':>6}")
    for k in CATEGORIES:
        t = totals[k]
        print(f"{LABELS[k]:<19}{t['attempted']:>10}{t['acked']:>8}{t['after_restart']:>8}"
              f"{t['in_flight']:>10}{t['lost']:>6}")
    print("  acked = acknowledged before the restart began; +after = a call in flight at the "
          "kill whose success the\n  client saw only after that (a late answer of the old "
          "broker, or a retry answered by the new one;\n  checked the same way); txn group "
          "offsets: one check per trial (acked = trials with an\n  acknowledged transaction)")
    print(f"in flight at the kill: topic created anyway {details['topics_in_flight_created']}; "
          f"commit applied {details['commits_in_flight_applied']}; txn commit completed "
          f"{details['txn_commit_unknown_completed']} / rolled back "
          f"{details['txn_commit_unknown_rolled_back']}; open txns (aborted) "
          f"{details['txn_open_at_kill']}")
    if recov_meta:
        print(f"restart, spawn -> metadata: p50 {summary['recovery_metadata_ms_p50']} ms, "
              f"max {summary['recovery_metadata_ms_max']} ms")
    if findings:
        kinds = {}
        for kind, _text in findings:
            kinds[kind] = kinds.get(kind, 0) + 1
        print(f"findings by kind: {kinds}")
        shown = set()
        for kind, text in findings:  # the first two of each kind
            if sum(1 for k in shown if k[0] == kind) < 2:
                shown.add((kind, text))
                print(f"FINDING: {text}")
    for e in broker_errors[:10]:
        print(f"BROKER ERROR BEFORE KILL: {e}")
    for e in warnings[:10]:
        print(f"client warning before kill: {e}")
    for e in notes[:10]:
        print(f"note: {e}")
    for p in problems:
        print(f"HARNESS PROBLEM: {p}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1, default=str)

    if problems or len(rows) < args.trials:
        print("RESULT: FAIL (harness/broker could not complete the run)")
        rc = 2
    elif findings or broker_errors or any(t["lost"] for t in totals.values()):
        print("RESULT: FAIL (durability)")
        rc = 1
    else:
        print("RESULT: PASS")
        rc = 0
    sys.stdout.flush()
    sys.stderr.flush()
    # Client handles of past trials may still be tearing down: their destructors must not
    # hold up the exit.
    os._exit(rc)


if __name__ == "__main__":
    main()
