"""Crash durability test: does SIGKILL of the broker lose or duplicate anything the client
was told is committed?

One broker on one data dir, one idempotent confluent-kafka producer (acks=all,
enable.idempotence=true) that runs for the whole test, writing records whose value is a
global sequence number (seq) to partition seq % P at a steady rate. The producer is NOT
restarted per trial: it sees every crash as a dropped connection, keeps its producer id
and retries its in-flight batches with their original sequence numbers against the
restarted broker. That is the hard case for the broker (a batch that was stored but not
acknowledged comes back and must be recognised as a duplicate from the persisted
idempotence state), and it is what a real client does.

Each trial:
  1. the broker (re)starts on the same data dir and port; recovery time is measured from
     the spawn to the first accepted TCP connection and to the first Metadata response
     that lists the topic with every partition led (raw protocol, no client back-off);
  2. wait until the producer has a new acknowledgement (the client reconnected);
  3. verify: snapshot the acknowledged set, read the high watermarks, then consume every
     partition from offset 0 up to them and check that every acknowledged record is at
     its acknowledged partition and offset exactly once, that values rise strictly in
     offset order within each partition, and that no high watermark is below the last
     acknowledged offset + 1;
  4. sleep a random 0.2-2.0 s (the producer keeps writing), then SIGKILL the broker.
     The kill's random moment is thus measured from the end of the verification, when
     the broker is back under steady load, not from the process start.
Per trial it also prints how many records the client had queued or in flight at the kill
and how many records were stored but not yet acknowledged (end offsets read with a raw
ListOffsets right after the restart, before the producer is back): those are the batches
the producer re-sends, which the broker must recognise as duplicates.
After the last trial the broker is restarted once more, the producer is flushed and
closed, everything is verified, the broker is stopped with SIGTERM (must exit 0) and
restarted to verify the final state once more.

Duplicates are counted separately for acknowledged records (always a failure) and for
records whose delivery failed or was never reported (a failure in flush mode as well:
the idempotent producer must never produce one).

Exit status: 0 = all checks passed (or --no-flush, where losses and duplicates are only
reported); 1 = a durability check failed; 2 = the harness could not run (broker did not
start, producer made no progress, timeout).
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

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Broker, BrokerError, exit_on_sigterm, list_offsets_latest,  # noqa: E402
                     metadata, metadata_ok, percentile)


QUIET = logging.getLogger("crash-test.librdkafka")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


class HarnessError(Exception):
    pass


def now():
    return time.monotonic()


class SeqProducer(threading.Thread):
    """Produces seq = 0, 1, 2, ... at `rate` records/s to partition seq % partitions and
    records each delivery report. Recreates the client if librdkafka raises a fatal
    error (which, for an idempotent producer, means it gave up on exactly-once)."""

    def __init__(self, bootstrap, topic, partitions, rate):
        super().__init__(daemon=True, name="producer")
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.rate = rate
        self.lock = threading.Lock()
        self.acked = {}          # seq -> (partition, offset)
        self.first_new_ack = None  # time of the first acknowledgement after reset_first_ack()
        self.failed = {}         # seq -> error string
        self.next_seq = 0
        self.fatal = []          # fatal error strings
        self.fatal_instances = set()  # producer instances that hit a fatal error
        self.client_errors = []  # non-fatal error_cb errors (expected while the broker is down)
        self.stop_event = threading.Event()
        self.exc = None
        self.producer = None
        self.instances = 0

    def _new_producer(self):
        self.instances += 1
        conf = {
            "bootstrap.servers": self.bootstrap,
            "client.id": f"crash-test-{self.instances}",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 120000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200,
            "retry.backoff.ms": 20,
            "retry.backoff.max.ms": 200,
            "socket.connection.setup.timeout.ms": 5000,
            "topic.metadata.refresh.interval.ms": 5000,
            "error_cb": lambda err, inst=self.instances: self._on_error(err, inst),
            # Connection refusals while the broker is down are expected: keep them out of
            # the output (real problems arrive through error_cb and delivery reports).
            "logger": QUIET,
        }
        return Producer(conf)

    def _on_error(self, err, instance):
        with self.lock:
            if err.fatal():
                self.fatal.append(f"{now():.3f} instance {instance}: {err}")
                self.fatal_instances.add(instance)
            else:
                self.client_errors.append(str(err))

    def _on_delivery(self, err, msg):
        seq = int(msg.value())
        t = now()
        with self.lock:
            if err is None:
                self.acked[seq] = (msg.partition(), msg.offset())
                if self.first_new_ack is None:
                    self.first_new_ack = t
                self.failed.pop(seq, None)
            else:
                self.failed[seq] = str(err)

    def reset_first_ack(self):
        with self.lock:
            self.first_new_ack = None

    def snapshot(self):
        with self.lock:
            return dict(self.acked)

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def run(self):
        try:
            self._run()
        except Exception as e:  # surfaced by the main thread
            self.exc = e

    def _run(self):
        self.producer = self._new_producer()
        t0 = now()
        produced = 0
        while not self.stop_event.is_set():
            with self.lock:
                new_fatal = self.instances in self.fatal_instances
            if new_fatal:
                # Drain what the dead instance still reports, then start a new one.
                try:
                    self.producer.flush(10)
                except KafkaException:
                    pass
                self.producer = self._new_producer()
            target = int((now() - t0) * self.rate)
            while produced < target and not self.stop_event.is_set():
                seq = self.next_seq
                try:
                    self.producer.produce(self.topic, value=str(seq).encode(),
                                          partition=seq % self.partitions,
                                          on_delivery=self._on_delivery)
                except BufferError:
                    break
                except KafkaException as e:
                    self._fatal_from(e, "produce")
                    break
                self.next_seq += 1
                produced += 1
            try:
                self.producer.poll(0.005)
            except KafkaException as e:
                self._fatal_from(e, "poll")

    def _fatal_from(self, e, where):
        """produce() and poll() raise once the instance is in a fatal state (error_cb may
        not have run yet): note it once per instance; the loop then replaces the instance."""
        err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
        if err is None or not (err.fatal() or err.code() == KafkaError._FATAL):
            raise e
        with self.lock:
            if self.instances not in self.fatal_instances:
                self.fatal.append(f"{now():.3f} instance {self.instances}: {e.args[0]} (from {where})")
                self.fatal_instances.add(self.instances)

    def finish(self, timeout):
        """Stop producing, wait for every outstanding delivery report."""
        self.stop_event.set()
        self.join(10)
        try:
            return self.producer.flush(timeout)
        except KafkaException as e:
            self._fatal_from(e, "final flush")
            return len(self.producer)


def verify(bootstrap, topic, partitions, acked, final_acked_keys, timeout):
    """Consume the whole topic and check it against `acked` (seq -> (partition, offset)).
    Returns a dict of findings (see keys below)."""
    admin_consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-verify",
                               "enable.auto.commit": False, "logger": QUIET})
    try:
        hw = {}
        lw = {}
        for p in range(partitions):
            lo, hi = admin_consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                          timeout=10, cached=False)
            lw[p], hw[p] = lo, hi
    finally:
        admin_consumer.close()

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-verify",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760,
                  "logger": QUIET})
    at = {}                 # (partition, offset) -> seq
    order_violations = []   # (partition, offset, prev_seq, seq)
    wrong_partition = []
    client_errors = []
    last_seq = {p: -1 for p in range(partitions)}
    next_offset = {p: lw[p] for p in range(partitions)}
    gaps = 0
    done = {p for p in range(partitions) if hw[p] <= lw[p]}
    try:
        c.assign([TopicPartition(topic, p, lw[p]) for p in range(partitions) if p not in done])
        deadline = now() + timeout
        while len(done) < partitions:
            if now() > deadline:
                raise HarnessError(f"verification read timed out after {timeout}s; "
                                   f"positions {next_offset}, high watermarks {hw}")
            for msg in c.consume(num_messages=10000, timeout=0.5):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        if msg.offset() >= hw[msg.partition()]:
                            done.add(msg.partition())
                        continue
                    client_errors.append(str(msg.error()))
                    continue
                p, off = msg.partition(), msg.offset()
                if off >= hw[p]:
                    done.add(p)
                    continue
                seq = int(msg.value())
                if off != next_offset[p]:
                    gaps += 1
                next_offset[p] = off + 1
                at[(p, off)] = seq
                if seq % partitions != p:
                    wrong_partition.append((p, off, seq))
                if seq <= last_seq[p]:
                    order_violations.append((p, off, last_seq[p], seq))
                last_seq[p] = seq
                if off + 1 >= hw[p]:
                    done.add(p)
    finally:
        c.close()

    # Occurrences of each seq in the log.
    count = {}
    for seq in at.values():
        count[seq] = count.get(seq, 0) + 1
    lost = []          # acknowledged, not found anywhere
    misplaced = []     # acknowledged, but another value (or nothing) at its offset, found elsewhere
    for seq, (p, off) in acked.items():
        got = at.get((p, off))
        if got == seq:
            continue
        if seq in count:
            misplaced.append((seq, p, off, got))
        else:
            lost.append(seq)
    dup_acked = sorted(s for s, n in count.items() if n > 1 and s in final_acked_keys)
    dup_unacked = sorted(s for s, n in count.items() if n > 1 and s not in final_acked_keys)
    hw_regressions = []
    max_acked = {}
    for seq, (p, off) in acked.items():
        if off > max_acked.get(p, -1):
            max_acked[p] = off
    for p, off in max_acked.items():
        if hw[p] < off + 1:
            hw_regressions.append((p, hw[p], off + 1))
    return {
        "records_read": len(at),
        "high_watermarks": hw,
        "lost": sorted(lost),
        "misplaced": misplaced,
        "dup_acked": dup_acked,
        "dup_unacked": dup_unacked,
        "order_violations": order_violations,
        "wrong_partition": wrong_partition,
        "hw_regressions": hw_regressions,
        "offset_gaps": gaps,
        "client_errors": client_errors,
        "present": set(count),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--no-flush", action="store_true",
                    help="run without --log-flush-interval-messages 1; report losses, do not fail")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--rate", type=int, default=4000, help="records/s the producer offers")
    ap.add_argument("--kill-min", type=float, default=0.2)
    ap.add_argument("--kill-max", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--step-timeout", type=float, default=60.0,
                    help="bound on each start-up, reconnect, verification and final flush")
    ap.add_argument("--json", help="also write the summary as JSON here")
    args = ap.parse_args()
    exit_on_sigterm()

    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    mode = "no-flush" if args.no_flush else "flush (--log-flush-interval-messages 1)"
    extra = [] if args.no_flush else ["--log-flush-interval-messages", "1"]
    topic = "crash-seq"
    broker = Broker(args.broker_bin, args.data_dir, extra_args=extra)
    print(f"crash-test: mode {mode}, {args.trials} trials, {args.partitions} partitions, "
          f"{args.rate} rec/s offered, kill delay {args.kill_min}-{args.kill_max}s, seed {seed}")
    print(f"crash-test: data dir {args.data_dir}, broker log {broker.log_path}, port {broker.port}")
    sys.stdout.flush()

    recov_conn, recov_meta, reconnect = [], [], []
    trial_rows = []
    problems = []          # harness failures (exit 2)
    cumulative = {"lost": set(), "misplaced": set(), "dup_acked": set(), "dup_unacked": set(),
                  "order": 0, "wrong_partition": 0, "hw_regressions": 0, "verify_errors": 0}
    producer = None
    last_result = None

    def check(tag, acked, final_keys):
        nonlocal last_result
        t = now()
        r = verify(broker.bootstrap, topic, args.partitions, acked, final_keys, args.step_timeout)
        last_result = r
        cumulative["lost"].update(r["lost"])
        cumulative["misplaced"].update(m[0] for m in r["misplaced"])
        cumulative["dup_acked"].update(r["dup_acked"])
        cumulative["dup_unacked"].update(r["dup_unacked"])
        cumulative["order"] += len(r["order_violations"])
        cumulative["wrong_partition"] += len(r["wrong_partition"])
        cumulative["hw_regressions"] += len(r["hw_regressions"])
        cumulative["verify_errors"] += len(r["client_errors"])
        bad = []
        for key in ("lost", "misplaced", "dup_acked", "dup_unacked", "order_violations",
                    "wrong_partition", "hw_regressions", "client_errors"):
            if r[key]:
                sample = r[key][:5]
                bad.append(f"{key}={len(r[key])} e.g. {sample}")
        line = (f"  verify[{tag}]: acked {len(acked)}, read {r['records_read']}, "
                f"hw {r['high_watermarks']}, {now() - t:.2f}s"
                + ("" if not bad else "  !! " + "; ".join(bad)))
        print(line)
        sys.stdout.flush()
        if bad:
            broker.mark(f"verify[{tag}] found: {'; '.join(bad)}")
        return r

    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.data_dir)), exist_ok=True)
        broker.mark(f"crash-test start, mode {mode}, seed {seed}")
        broker.start(timeout=args.step_timeout)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3})
        fut = admin.create_topics([NewTopic(topic, args.partitions, 1)], operation_timeout=10)
        fut[topic].result(timeout=20)
        del admin, fut  # an idle client would only log connection refusals at every kill
        # Wait until the topic is served with every partition.
        t_end = now() + args.step_timeout
        while True:
            try:
                if metadata_ok(metadata(broker.port, [topic]), topic, args.partitions):
                    break
            except OSError:
                pass
            if now() > t_end:
                raise HarnessError("topic not visible after creation")
            time.sleep(0.05)

        producer = SeqProducer(broker.bootstrap, topic, args.partitions, args.rate)
        producer.start()
        t_end = now() + args.step_timeout
        while producer.acked_count() == 0:
            if producer.exc:
                raise producer.exc
            if now() > t_end:
                raise HarnessError("producer got no acknowledgement from the fresh broker")
            time.sleep(0.01)

        for trial in range(1, args.trials + 1):
            delay = rng.uniform(args.kill_min, args.kill_max)
            time.sleep(delay)
            produced_before = producer.next_seq
            broker.mark(f"trial {trial}: SIGKILL ({producer.acked_count()} acknowledged so far)")
            _, rc = broker.kill(signal.SIGKILL)
            # Acks that arrived before the kill reach the callbacks within a poll (5 ms).
            time.sleep(0.05)
            at_kill = producer.snapshot()
            producer.reset_first_ack()
            acked_before = len(at_kill)
            with producer.lock:
                failed_before = len(producer.failed)
            # Queued or in flight in the client (neither acknowledged nor failed yet).
            in_flight = produced_before - acked_before - failed_before
            last_acked = {}
            for _seq, (p, off) in at_kill.items():
                if off > last_acked.get(p, -1):
                    last_acked[p] = off
            # Restart on the same dir and port.
            try:
                t_conn, t_meta = broker.start(topic, args.partitions, timeout=args.step_timeout)
            except BrokerError as e:
                problems.append(f"trial {trial}: restart failed: {e}")
                print(f"trial {trial}: RESTART FAILED: {e}")
                break
            # Stored but unacknowledged at the kill: the end offsets right after the restart,
            # before the producer is back. Only valid if the producer's first new
            # acknowledgement came later than this answer (checked below).
            try:
                hw0 = list_offsets_latest(broker.port, topic, args.partitions)
                t_lo = now()
                in_doubt = sum(max(0, hw0[p] - last_acked.get(p, -1) - 1) for p in hw0)
            except (OSError, ValueError) as e:
                t_lo = now()
                in_doubt = None
                print(f"  ListOffsets after restart failed: {e}")
            broker.mark(f"trial {trial}: restarted, accepting after {t_conn*1000:.1f} ms, "
                        f"metadata after {t_meta*1000:.1f} ms")
            recov_conn.append(t_conn)
            recov_meta.append(t_meta)
            # Wait for the producer to get through again.
            t_end = now() + args.step_timeout
            while producer.first_new_ack is None:
                if producer.exc:
                    raise producer.exc
                if now() > t_end:
                    raise HarnessError(f"trial {trial}: producer made no progress within "
                                       f"{args.step_timeout}s of the restart")
                time.sleep(0.005)
            t_ack = producer.first_new_ack - broker.started_at
            if producer.first_new_ack <= t_lo + 0.005:
                in_doubt = None  # the producer was back before the end offsets were read
            reconnect.append(t_ack)
            acked = producer.snapshot()
            print(f"trial {trial:2d}: killed {delay:.2f}s after verify (acked {acked_before}, "
                  f"unacked in client {in_flight}, stored-unacked "
                  f"{'n/a' if in_doubt is None else in_doubt}), "
                  f"restart: accept {t_conn*1000:.1f} ms, metadata {t_meta*1000:.1f} ms, "
                  f"first new ack {t_ack*1000:.0f} ms")
            sys.stdout.flush()
            r = check(f"trial {trial}", acked, set(producer.snapshot()))
            trial_rows.append({"trial": trial, "delay_s": round(delay, 3),
                               "acked": len(acked), "acked_at_kill": acked_before,
                               "unacked_in_client_at_kill": in_flight,
                               "stored_unacked_at_kill": in_doubt,
                               "accept_ms": round(t_conn * 1000, 2),
                               "metadata_ms": round(t_meta * 1000, 2),
                               "first_ack_ms": round(t_ack * 1000, 1),
                               "lost": len(r["lost"]), "dup_acked": len(r["dup_acked"]),
                               "dup_unacked": len(r["dup_unacked"])})
            if producer.exc:
                raise producer.exc

        # Final: let the producer finish, verify, graceful stop, restart, verify again.
        if broker.alive():
            remaining = producer.finish(args.step_timeout)
            if remaining:
                problems.append(f"{remaining} records still undelivered after "
                                f"{args.step_timeout}s flush")
            final = producer.snapshot()
            final_keys = set(final)
            check("final", final, final_keys)
            broker.mark("final SIGTERM")
            t_stop, rc = broker.stop()
            print(f"graceful stop: {t_stop*1000:.0f} ms, exit code {rc}")
            if rc != 0:
                problems.append(f"broker exited with {rc} on SIGTERM")
            t_conn, t_meta = broker.start(topic, args.partitions, timeout=args.step_timeout)
            print(f"restart after SIGTERM: accept {t_conn*1000:.1f} ms, metadata {t_meta*1000:.1f} ms")
            check("after clean restart", final, final_keys)
    except (HarnessError, BrokerError) as e:
        problems.append(str(e))
        print(f"crash-test: HARNESS FAILURE: {e}")
    finally:
        if producer is not None and not producer.stop_event.is_set():
            producer.stop_event.set()
            producer.join(5)
        try:
            if broker.alive():
                broker.stop()
        except BrokerError as e:
            problems.append(str(e))
        broker.ensure_dead()

    # ----------------------------------------------------------------------------------
    acked_total = len(producer.acked) if producer else 0
    failed = dict(producer.failed) if producer else {}
    produced = producer.next_seq if producer else 0
    never_reported = produced - acked_total - len(failed)
    lost = cumulative["lost"]
    fatal = list(producer.fatal) if producer else []
    unacked_present = 0
    if last_result and producer:
        unacked_present = len([s for s in last_result["present"] if s not in producer.acked])
    summary = {
        "mode": "no-flush" if args.no_flush else "flush",
        "seed": seed,
        "trials_completed": len(trial_rows),
        "trials_requested": args.trials,
        "records_produced": produced,
        "records_acknowledged": acked_total,
        "records_failed_delivery": len(failed),
        "records_never_reported": never_reported,
        "unacknowledged_but_stored": unacked_present,
        "lost_acknowledged": len(lost),
        "misplaced_acknowledged": len(cumulative["misplaced"]),
        "duplicates_of_acknowledged": len(cumulative["dup_acked"]),
        "duplicates_of_unacknowledged": len(cumulative["dup_unacked"]),
        "order_violations": cumulative["order"],
        "wrong_partition": cumulative["wrong_partition"],
        "hw_regressions": cumulative["hw_regressions"],
        "verify_client_errors": cumulative["verify_errors"],
        "producer_fatal_errors": len(fatal),
        "producer_instances": producer.instances if producer else 0,
        "recovery_accept_ms_p50": round(percentile(recov_conn, 50) * 1000, 1) if recov_conn else None,
        "recovery_accept_ms_max": round(max(recov_conn) * 1000, 1) if recov_conn else None,
        "recovery_metadata_ms_p50": round(percentile(recov_meta, 50) * 1000, 1) if recov_meta else None,
        "recovery_metadata_ms_max": round(max(recov_meta) * 1000, 1) if recov_meta else None,
        "first_new_ack_ms_p50": round(percentile(reconnect, 50) * 1000, 0) if reconnect else None,
        "first_new_ack_ms_max": round(max(reconnect) * 1000, 0) if reconnect else None,
        "trials_with_stored_unacked_at_kill": len([r for r in trial_rows if (
            r["stored_unacked_at_kill"] or 0) > 0]),
        "trials_stored_unacked_unknown": len([r for r in trial_rows
                                              if r["stored_unacked_at_kill"] is None]),
        "stored_unacked_at_kill_total": sum(r["stored_unacked_at_kill"] or 0 for r in trial_rows),
        "harness_problems": problems,
        "trials": trial_rows,
    }
    print()
    print(f"==== crash-test summary ({summary['mode']}, seed {seed})")
    print(f"trials:                      {summary['trials_completed']}/{args.trials}")
    print(f"records produced:            {produced}")
    print(f"records acknowledged:        {acked_total}")
    print(f"delivery failed / unreported:{len(failed):>7} / {never_reported}")
    print(f"stored but unacked at kill:  {summary['stored_unacked_at_kill_total']} records in "
          f"{summary['trials_with_stored_unacked_at_kill']} trials (re-sent by the producer, "
          f"must not be duplicated; unknown in {summary['trials_stored_unacked_unknown']} "
          f"trials where the producer was back first)")
    print(f"unacked but stored at end:   {unacked_present}")
    print(f"LOST (acknowledged):         {len(lost)}" + (f"  e.g. {sorted(lost)[:10]}" if lost else ""))
    print(f"misplaced (acknowledged):    {summary['misplaced_acknowledged']}")
    print(f"DUPLICATES acknowledged:     {summary['duplicates_of_acknowledged']}")
    print(f"duplicates unacknowledged:   {summary['duplicates_of_unacknowledged']}")
    print(f"order violations:            {summary['order_violations']}")
    print(f"high watermark regressions:  {summary['hw_regressions']}")
    print(f"producer fatal errors:       {len(fatal)}" + (f"  {fatal[:3]}" if fatal else ""))
    if failed:
        kinds = {}
        for e in failed.values():
            kinds[e] = kinds.get(e, 0) + 1
        print(f"delivery errors by kind:     {dict(list(kinds.items())[:5])}")
    if recov_conn:
        print(f"recovery, spawn -> accept:   p50 {summary['recovery_accept_ms_p50']} ms, "
              f"max {summary['recovery_accept_ms_max']} ms")
        print(f"recovery, spawn -> metadata: p50 {summary['recovery_metadata_ms_p50']} ms, "
              f"max {summary['recovery_metadata_ms_max']} ms")
        print(f"spawn -> first new ack:      p50 {summary['first_new_ack_ms_p50']} ms, "
              f"max {summary['first_new_ack_ms_max']} ms")
    for p in problems:
        print(f"HARNESS PROBLEM: {p}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)

    durability_bad = (lost or cumulative["misplaced"] or cumulative["dup_acked"]
                      or cumulative["dup_unacked"] or cumulative["order"]
                      or cumulative["wrong_partition"] or cumulative["hw_regressions"] or fatal)
    if problems or len(trial_rows) < args.trials:
        print("RESULT: FAIL (harness/broker could not complete the run)")
        return 2
    if args.no_flush:
        print("RESULT: REPORT ONLY (--no-flush): "
              + ("losses/duplicates above" if durability_bad else "nothing lost or duplicated"))
        return 0
    if durability_bad or cumulative["verify_errors"]:
        print("RESULT: FAIL (durability)")
        return 1
    print("RESULT: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
