"""Soak, id-churn form (scripts/soak.sh --ids): does the broker's memory stay flat, and does
it forget expired ids, while clients keep creating NEW producer ids and transactional ids?

Kafka forgets an idempotent producer's per-partition state after producer.id.expiration.ms
without writes, and a transactional id after transactional.id.expiration.ms without
transactions; the aborted-transaction index goes with the log it describes. A broker that
kept any of these would grow with every client ever seen. This runs one broker (loopback
only) with both expirations short (--expiration-ms, default 5 s, so a 90 s run reaches a
steady state) and, for --minutes, in separate processes:

  idempotent  --idem-workers processes starting a NEW confluent-kafka idempotent producer
              (acks=all) --idem-rate times a second in total; each writes --records
              records to every partition and is closed once they are acknowledged;
  txn         --txn-workers processes starting a NEW transactional id --txn-rate times a
              second in total: init_transactions, --txns transactions over 3 partitions
              (rotating), a third of them aborted after their records were flushed (so
              aborted records and ABORT markers are in the log), then close;
  storm       one stdlib process on one raw connection: --storm-rate NEW idempotent
              producer ids a second (InitProducerId, then one record to every partition
              with sequence 0, never used again) and --storm-txn-rate NEW transactional
              ids a second (InitProducerId, which must answer epoch 0); the volume the
              librdkafka clients cannot reach on 2 cores, so that kept state would show;
  readers     two read_committed confluent-kafka consumers from offset 0 (assign(), and
              a group);
  probe       every --probe-interval s a kafka-python admin client asks the broker which
              transactional ids it holds (ListTransactions) and which producers each
              partition holds (DescribeProducers).

The topic has retention.ms=--retention-ms and retention runs every 2 s, so old batches,
their index entries and aborted-transaction entries go too. The broker's VmRSS is read
every second.

Checks (any failure -> exit 1):
  * memory: the median RSS over the last 15 % of the load may exceed the median over
    35-50 % of it (after sled's cache and the allocator's pools have filled) by at most
    --max-growth MiB (14). Figures behind that bound (90 s runs, 2-core shared machine):
    the current broker +0.1, +3.8 and +6.9 MiB (a 150 s run: +5.0, level from 100 s on);
    with expiry off (--broker-expiration-ms 86400000) +28.7 MiB, and growing for as long
    as ids are created. 14 MiB is twice the worst healthy figure and half the broken one;
  * expiry: each probe may show only transactional ids and producer entries active within
    expiration + 3 s, and no more producer ids than clients active in that window; once
    the load has stopped and expiration + 3 s have passed the broker lists no
    transactional id and no producer at all, and InitProducerId for 20 of the expired
    transactional ids answers epoch 0 (a new id: one it still knew would get its epoch
    bumped, as a control id initialised twice shows);
  * data: each reader read every acknowledged idempotent record and every committed
    transactional record, intact, and no aborted one (the assign() reader exactly once);
  * no client error of any kind.

The broker runs with its own allocator settings (src/alloc.rs: one glibc arena per core, at
least 2); --malloc-arenas N sets MALLOC_ARENA_MAX=N instead. With glibc's default of 8 arenas
per core, the per-thread arenas fragment under this churn (appends and fetches run on tokio's
blocking pool threads): in a 4-minute run the live heap stayed at 38-40 MiB (malloc_stats)
while RSS rose to 181 MiB and was still rising; with 2 arenas the live heap was the same and
RSS levelled at 62 MiB. That is why the broker caps the arenas itself.

--broker-expiration-ms runs the broker with other expirations than the checks expect (to
show that they fail when ids are kept). --expiration-ms 0 leaves the broker's defaults (1
day / 7 days) and skips the expiry checks. --malloc-stats (diagnostic, needs gdb) reads
glibc's malloc_stats() in the broker at a third and at the end of the load: live heap vs
memory malloc holds.
"""
import argparse
import json
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOPIC = "soak-ids"
TXN_PREFIX = "soak-ids-"
SLACK_MS = 3000  # expiry check periods (1 s cleaner tick, 0.5 s timer) + probe time
TXN_PARTS = 3    # partitions per transaction


def now():
    return time.monotonic()


class Errors:
    def __init__(self, who):
        self.who = who
        self.count = 0
        self.samples = []
        self.lock = threading.Lock()

    def add(self, what):
        with self.lock:
            self.count += 1
            if len(self.samples) < 20:
                self.samples.append(f"{time.strftime('%H:%M:%S')} {self.who}: {what}")


def quiet_logger(name):
    lg = logging.getLogger(name)
    lg.addHandler(logging.NullHandler())
    lg.propagate = False
    return lg


def write_result(work, name, data):
    tmp = os.path.join(work, f"{name}.json.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, os.path.join(work, f"{name}.json"))


def make_value(rid, size):
    head = rid.encode() + b"|"
    return head + b"x" * max(0, size - len(head))


def parse_value(value, size):
    """The record id when the value is intact, else None."""
    try:
        rid, filler = value.split(b"|", 1)
    except (ValueError, AttributeError):
        return None
    if filler != b"x" * max(0, size - len(rid) - 1):
        return None
    return rid.decode(errors="replace")


def paced(t0, n, rate, stop_ev):
    """Waits until client n of a worker is due (t0 + n/rate); False when told to stop."""
    wait = t0 + n / rate - now()
    if wait > 0:
        return not stop_ev.wait(wait)
    return not stop_ev.is_set()


def close_producer(p):
    if hasattr(p, "close"):
        p.close()


# ---------------------------------------------------------------------------------------
# Workers

def idem_worker(name, idx, bootstrap, partitions, records, rate, size, created, stop_ev, work):
    """New idempotent producers at `rate`/s. librdkafka takes about 0.5 s to get an
    idempotent producer its id, so a few are live at once: each is closed as soon as all
    its records are acknowledged."""
    from confluent_kafka import Producer
    errors = Errors(name)
    acked = []
    instances = []  # [client, wall start, wall time of its last ack]
    live = []       # [client, producer, wall start, acks so far]
    n = 0

    def close_done(force_s=None):
        for entry in list(live):
            inst, p, t_start, mine = entry
            if force_s is not None:
                left = p.flush(force_s)
                if left:
                    errors.add(f"{inst}: {left} records undelivered after a {force_s} s flush")
            else:
                p.poll(0)
                if len(p):
                    continue
            instances.append([inst, t_start, time.time()])
            close_producer(p)
            acked.extend(mine)
            live.remove(entry)
    try:
        t0 = now()
        while not stop_ev.is_set():
            if t0 + n / rate <= now() and len(live) < 20:
                inst = f"{name}-{n}"
                p = Producer({"bootstrap.servers": bootstrap, "client.id": f"soak-{inst}",
                              "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                              "error_cb": lambda e, inst=inst: errors.add(f"{inst} error_cb {e}"),
                              "logger": quiet_logger(name)})
                created[idx] += 1
                mine = []

                def cb(err, msg, inst=inst, mine=mine):
                    if err is not None:
                        errors.add(f"{inst} delivery {err}")
                    else:
                        mine.append(parse_value(msg.value(), size))
                for part in range(partitions):
                    for k in range(records):
                        p.produce(TOPIC, value=make_value(f"i:{inst}:{part}:{k}", size),
                                  partition=part, on_delivery=cb)
                live.append([inst, p, time.time(), mine])
                n += 1
            close_done()
            stop_ev.wait(0.01)
        close_done(force_s=30)
    except Exception as e:  # noqa: BLE001 - every failure is a soak error
        errors.add(f"exception {e!r}\n{traceback.format_exc()}")
    write_result(work, name, {"role": "idem", "name": name, "clients": n,
                              "instances": instances, "acked": acked,
                              "errors": errors.count, "error_samples": errors.samples})


def txn_worker(name, idx, bootstrap, partitions, records, txns, rate, size, created, stop_ev,
               work):
    from confluent_kafka import Producer
    errors = Errors(name)
    committed, aborted = [], []
    instances = []  # [transactional id, wall start, wall time its last transaction ended]
    counts = {"commit": 0, "abort": 0}
    n = 0
    try:
        t0 = now()
        while paced(t0, n, rate, stop_ev):
            tid = f"{TXN_PREFIX}{name}-{n}"
            p = Producer({"bootstrap.servers": bootstrap, "client.id": f"soak-{name}-{n}",
                          "transactional.id": tid, "linger.ms": 5,
                          "error_cb": lambda e, tid=tid: errors.add(f"{tid} error_cb {e}"),
                          "logger": quiet_logger(name)})
            t_start = time.time()
            p.init_transactions(30)
            created[idx] += 1
            delivered = []

            def cb(err, msg, tid=tid):
                if err is not None:
                    errors.add(f"{tid} delivery {err}")
                else:
                    delivered.append(parse_value(msg.value(), size))
            for t in range(txns):
                abort = (n + t) % 3 == 1
                p.begin_transaction()
                ids = []
                for j in range(min(TXN_PARTS, partitions)):
                    part = (n + t + j) % partitions
                    for k in range(records):
                        rid = f"t:{tid}:{t}:{part}:{k}"
                        ids.append(rid)
                        p.produce(TOPIC, value=make_value(rid, size), partition=part,
                                  on_delivery=cb)
                if abort:
                    # Flushed first: the records are in the log when the ABORT marker is.
                    left = p.flush(30)
                    if left:
                        errors.add(f"{tid}: {left} records unsent before the abort")
                    p.abort_transaction(30)
                    aborted.extend(ids)
                    counts["abort"] += 1
                else:
                    p.commit_transaction(30)
                    committed.extend(ids)
                    counts["commit"] += 1
            instances.append([tid, t_start, time.time()])
            close_producer(p)
            del p
            n += 1
    except Exception as e:  # noqa: BLE001
        errors.add(f"exception {e!r}\n{traceback.format_exc()}")
    write_result(work, name, {"role": "txn", "name": name, "clients": n,
                              "instances": instances, "committed": committed,
                              "aborted": aborted, "txn_counts": counts,
                              "errors": errors.count, "error_samples": errors.samples})


def reader(name, group, bootstrap, partitions, size, progress, stop_ev, work):
    """read_committed consumer from offset 0: in a group (subscribe) or assign()ing every
    partition. progress[p] = its position, which moves past control records too."""
    from confluent_kafka import Consumer, TopicPartition
    errors = Errors(name)
    seen = {}
    bad = 0
    try:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group or f"unused-{name}",
                      "client.id": f"soak-{name}", "isolation.level": "read_committed",
                      "auto.offset.reset": "earliest", "enable.auto.commit": bool(group),
                      "error_cb": lambda e: errors.add(f"error_cb {e}"),
                      "logger": quiet_logger(name)})
        if group:
            c.subscribe([TOPIC])
        else:
            c.assign([TopicPartition(TOPIC, p, 0) for p in range(partitions)])
        next_pos = 0.0
        while not stop_ev.is_set():
            for msg in c.consume(num_messages=1000, timeout=0.2):
                if msg.error():
                    errors.add(f"consume {msg.error()}")
                    continue
                rid = parse_value(msg.value(), size)
                if rid is None:
                    bad += 1
                    errors.add(f"corrupt record at {msg.partition()}/{msg.offset()}: "
                               f"{msg.value()!r:.60}")
                    continue
                seen[rid] = seen.get(rid, 0) + 1
            if now() >= next_pos:
                next_pos = now() + 0.5
                tps = c.assignment() if group else [TopicPartition(TOPIC, p)
                                                    for p in range(partitions)]
                for tp in c.position(tps) if tps else []:
                    if tp.offset >= 0:
                        progress[tp.partition] = tp.offset
        c.close()
    except Exception as e:  # noqa: BLE001
        errors.add(f"exception {e!r}\n{traceback.format_exc()}")
    write_result(work, name, {"role": "reader", "name": name, "seen": seen, "corrupt": bad,
                              "errors": errors.count, "error_samples": errors.samples})


# ---------------------------------------------------------------------------------------
# Raw protocol: InitProducerId v1 and Produce v3 (non-flexible), for the id storm and for
# asking the broker whether it still knows a transactional id.

class RawConn:
    """One blocking loopback connection sending v1-header requests one at a time."""

    def __init__(self, port, client_id, timeout=30.0):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.client_id = client_id
        self.corr = 0

    def call(self, api_key, version, body):
        import struct
        self.corr += 1
        payload = (struct.pack(">hhi", api_key, version, self.corr)
                   + harness._kstr(self.client_id) + body)
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", harness._recv_exact(self.sock, 4))[0]
        data = harness._recv_exact(self.sock, size)
        corr = struct.unpack_from(">i", data)[0]
        if corr != self.corr:
            raise ConnectionError(f"correlation id {corr}, expected {self.corr}")
        return data[4:]

    def init_producer_id(self, transactional_id=None, timeout_ms=60000):
        """(error code, producer id, epoch); a null transactional id asks for a new
        idempotent producer id."""
        import struct
        tid = struct.pack(">h", -1) if transactional_id is None else harness._kstr(transactional_id)
        data = self.call(22, 1, tid + struct.pack(">i", timeout_ms))
        _throttle, err, pid, epoch = struct.unpack_from(">ihqh", data)
        return err, pid, epoch

    def produce(self, topic, batches, acks=-1, timeout_ms=30000):
        """batches: {partition: record batch bytes}; returns {partition: error code}."""
        import struct
        body = struct.pack(">hhi", -1, acks, timeout_ms)  # null transactional id
        body += struct.pack(">i", 1) + harness._kstr(topic) + struct.pack(">i", len(batches))
        for part, batch in batches.items():
            body += struct.pack(">ii", part, len(batch)) + batch
        data = self.call(0, 3, body)
        pos, out = 0, {}
        (ntopics,) = struct.unpack_from(">i", data, pos)
        pos += 4
        for _ in range(ntopics):
            (n,) = struct.unpack_from(">h", data, pos)
            pos += 2 + n
            (nparts,) = struct.unpack_from(">i", data, pos)
            pos += 4
            for _ in range(nparts):
                part, err, _base, _append_ms = struct.unpack_from(">ihqq", data, pos)
                pos += 22
                out[part] = err
        return out

    def close(self):
        self.sock.close()


def one_record_batch(pid, epoch, value):
    from kafka.record.default_records import DefaultRecordBatchBuilder
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=0,
                                  batch_size=1 << 20)
    b.append(0, timestamp=None, key=None, value=value, headers=[])
    return bytes(b.build())


def storm_worker(name, port, partitions, rate, txn_rate, size, created, stop_ev, work):
    """The id storm, through the raw protocol on one connection: `rate` times a second a
    NEW idempotent producer id (InitProducerId without a transactional id) that writes one
    record to every partition (acks=all, sequence 0) and is never used again, and
    `txn_rate` times a second a NEW transactional id that is initialised (InitProducerId:
    it must come back as new, epoch 0) and never used again. What a fleet of short-lived
    clients leaves behind, at a rate the librdkafka clients cannot reach on 2 cores."""
    errors = Errors(name)
    acked = []
    instances = []
    n_idem = n_txn = 0
    conn = None
    try:
        conn = RawConn(port, f"soak-{name}")
        t0 = now()
        while not stop_ev.is_set():
            due_idem = t0 + n_idem / rate if rate > 0 else float("inf")
            due_txn = t0 + n_txn / txn_rate if txn_rate > 0 else float("inf")
            wait = min(due_idem, due_txn) - now()
            if wait > 0 and stop_ev.wait(wait):
                break
            t_wall = time.time()
            if due_idem <= due_txn:
                inst = f"{name}-p{n_idem}"
                err, pid, epoch = conn.init_producer_id(None)
                if err:
                    errors.add(f"{inst}: InitProducerId error {err}")
                else:
                    rids = {part: f"s:{inst}:{part}" for part in range(partitions)}
                    res = conn.produce(TOPIC, {part: one_record_batch(pid, epoch,
                                                                      make_value(rid, size))
                                               for part, rid in rids.items()})
                    for part, rid in rids.items():
                        if res.get(part) == 0:
                            acked.append(rid)
                        else:
                            errors.add(f"{inst}: produce to {part}: error {res.get(part)}")
                    instances.append([inst, t_wall, time.time()])
                n_idem += 1
                created[0] += 1
            else:
                tid = f"{TXN_PREFIX}{name}-t{n_txn}"
                err, _pid, epoch = conn.init_producer_id(tid)
                if err or epoch != 0:
                    errors.add(f"{tid}: new transactional id got error {err}, epoch {epoch}")
                instances.append([tid, t_wall, time.time()])
                n_txn += 1
                created[1] += 1
    except Exception as e:  # noqa: BLE001
        errors.add(f"exception {e!r}\n{traceback.format_exc()}")
    finally:
        if conn is not None:
            conn.close()
    write_result(work, name, {"role": "storm", "name": name, "clients": n_idem,
                              "txn_clients": n_txn, "instances": instances, "acked": acked,
                              "errors": errors.count, "error_samples": errors.samples})


# ---------------------------------------------------------------------------------------
# Broker state and memory

def proc_mem(pid):
    """VmRSS, RssAnon, RssFile in KiB (None when the process is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "RssAnon:", "RssFile:", "VmHWM:")):
                    key, val = line.split(":", 1)
                    out[key] = int(val.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out


def malloc_stats(pid, log_path):
    """glibc's malloc_stats() in the broker, through gdb (it prints to the broker's stderr,
    which is its log): (bytes in use, bytes malloc holds from the system), or None. Tells
    live allocations from freed memory malloc keeps; the broker pauses while gdb is
    attached (a fraction of a second)."""
    import re
    import subprocess
    try:
        size0 = os.path.getsize(log_path)
        subprocess.run(["gdb", "-q", "-batch", "-p", str(pid), "-ex", "call (void)malloc_stats()",
                        "-ex", "detach"], capture_output=True, timeout=60)
        time.sleep(0.3)
        with open(log_path, "rb") as f:
            f.seek(size0)
            text = f.read().decode(errors="replace")
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Total \(incl\. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)", text)
    return (int(m.group(2)), int(m.group(1))) if m else None


class Prober:
    """ListTransactions + DescribeProducers through kafka-python's admin client."""

    def __init__(self, bootstrap, partitions, errors):
        from kafka.admin import KafkaAdminClient
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="soak-ids-probe",
                                      request_timeout_ms=10000)
        self.partitions = partitions
        self.errors = errors

    def probe(self):
        from kafka import TopicPartition
        wall = time.time()
        try:
            listing = self.admin.list_transactions()
            tids = sorted(t.transactional_id for rows in listing.values() for t in rows
                          if t.transactional_id.startswith(TXN_PREFIX))
            states = self.admin.describe_producers(
                [TopicPartition(TOPIC, p) for p in range(self.partitions)])
        except Exception as e:  # noqa: BLE001
            self.errors.add(f"probe: {e!r}")
            return None
        entries = [(tp.partition, s.producer_id, s.last_timestamp)
                   for tp, st in states.items() for s in st.active_producers]
        return {"wall": wall, "tids": tids,
                "pids": sorted({e[1] for e in entries}),
                "entries": len(entries),
                "oldest_entry_ms": min((e[2] for e in entries), default=None)}

    def close(self):
        try:
            self.admin.close()
        except Exception:  # noqa: BLE001
            pass


def linear_slope(points):
    """Least-squares slope of [(x, y)]."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx if sxx else 0.0


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if n else float("nan")


EARLY = (0.35, 0.50)  # the early window, as fractions of the load time
LATE = (0.85, 1.00)   # the late window


def mem_verdict(samples, duration, max_growth):
    """samples: [(t, VmRSS KiB, RssAnon KiB, RssFile KiB)] over the load window. The
    verdict compares the median RSS of a late window with that of an early window that
    starts once the warm-up (sled's cache filling, allocator pools growing) is mostly done;
    medians, so that a burst of allocation at one sample does not decide it."""
    mib = 1024.0
    early = [s for s in samples if EARLY[0] * duration <= s[0] < EARLY[1] * duration]
    late = [s for s in samples if s[0] >= LATE[0] * duration]
    if len(early) < 5 or len(late) < 5:
        return None, [f"too few RSS samples ({len(samples)}) for a verdict"]
    e_med = median([s[1] for s in early]) / mib
    l_med = median([s[1] for s in late]) / mib
    growth = l_med - e_med
    slope = linear_slope([(s[0] / 60.0, s[1] / mib) for s in samples
                          if s[0] >= EARLY[0] * duration])
    v = {"start_mib": round(samples[0][1] / mib, 1),
         "early_window_s": [round(EARLY[0] * duration), round(EARLY[1] * duration)],
         "late_window_s": [round(LATE[0] * duration), round(duration)],
         "early_median_mib": round(e_med, 1), "late_median_mib": round(l_med, 1),
         "growth_mib": round(growth, 1), "growth_bound_mib": max_growth,
         "anon_growth_mib": round((median([s[2] for s in late])
                                   - median([s[2] for s in early])) / mib, 1),
         "end_mib": round(samples[-1][1] / mib, 1),
         "max_mib": round(max(s[1] for s in samples) / mib, 1),
         "slope_mib_min": round(slope, 2),
         "end_anon_mib": round(samples[-1][2] / mib, 1),
         "end_file_mib": round(samples[-1][3] / mib, 1)}
    problems = []
    if growth > max_growth:
        problems.append(f"broker RSS grew: median {l_med:.1f} MiB over the last "
                        f"{(1 - LATE[0]) * duration:.0f} s of load vs {e_med:.1f} MiB over "
                        f"{EARLY[0] * duration:.0f}-{EARLY[1] * duration:.0f} s, +{growth:.1f} "
                        f"MiB (bound +{max_growth} MiB)")
    return v, problems


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--minutes", type=float, default=1.0, help="load time")
    ap.add_argument("--expiration-ms", type=int, default=5000,
                    help="producer.id.expiration.ms and transactional.id.expiration.ms "
                         "(0: the broker's defaults, a diagnostic run)")
    ap.add_argument("--idem-workers", type=int, default=2)
    ap.add_argument("--idem-rate", type=float, default=20.0,
                    help="new idempotent producers per second, all workers together")
    ap.add_argument("--txn-workers", type=int, default=2)
    ap.add_argument("--txn-rate", type=float, default=10.0,
                    help="new transactional ids per second, all workers together")
    ap.add_argument("--txns", type=int, default=3, help="transactions per transactional id")
    ap.add_argument("--records", type=int, default=2,
                    help="records per partition per producer / per transaction")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--value-bytes", type=int, default=200)
    ap.add_argument("--retention-ms", type=int, default=10000)
    ap.add_argument("--probe-interval", type=float, default=5.0)
    ap.add_argument("--storm-rate", type=float, default=100.0,
                    help="new idempotent producer ids per second from the raw-protocol storm")
    ap.add_argument("--storm-txn-rate", type=float, default=50.0,
                    help="new transactional ids per second from the raw-protocol storm")
    ap.add_argument("--max-growth", type=float, default=14.0,
                    help="bound on the growth of the median broker RSS from the early to "
                         "the late window, MiB")
    ap.add_argument("--broker-expiration-ms", type=int, default=None,
                    help="run the broker with this expiration instead of --expiration-ms, "
                         "the checks still expecting --expiration-ms (to show that they fail "
                         "when the broker keeps expired ids)")
    ap.add_argument("--drain-timeout", type=float, default=60.0)
    ap.add_argument("--malloc-stats", action="store_true",
                    help="diagnostic: at the end of the warm-up and of the load, read glibc's "
                         "malloc_stats() in the broker with gdb (live heap vs memory malloc "
                         "keeps)")
    ap.add_argument("--malloc-arenas", type=int, default=0,
                    help="MALLOC_ARENA_MAX for the broker (glibc); 0 (default) leaves the "
                         "broker's own setting, one arena per core (see the module docstring)")
    ap.add_argument("--broker-args", default="", help="extra broker arguments, space-separated")
    ap.add_argument("--json", help="also write the summary as JSON here")
    args = ap.parse_args()
    harness.exit_on_sigterm()

    duration = args.minutes * 60
    work = args.data_dir + ".results"
    os.makedirs(work, exist_ok=True)
    extra = ["--override", "log.retention.check.interval.ms=2000"]
    broker_exp = args.expiration_ms if args.broker_expiration_ms is None else args.broker_expiration_ms
    if broker_exp > 0:
        extra += ["--override", f"producer.id.expiration.ms={broker_exp}",
                  "--override", f"transactional.id.expiration.ms={broker_exp}"]
    extra += args.broker_args.split() if args.broker_args else []
    if args.malloc_arenas > 0:
        os.environ["MALLOC_ARENA_MAX"] = str(args.malloc_arenas)  # inherited by the broker
    else:
        os.environ.pop("MALLOC_ARENA_MAX", None)
    broker = harness.Broker(args.broker_bin, args.data_dir, extra_args=extra)
    window_ms = (args.expiration_ms if args.expiration_ms > 0 else 86_400_000) + SLACK_MS
    ctx = mp.get_context("spawn")
    stop_produce = ctx.Event()
    stop_consume = ctx.Event()
    procs = []
    problems = []
    summary = {}
    rc = 0
    probe_errors = Errors("probe")
    prober = None
    try:
        broker.start()
        print(f"soak --ids: broker pid {broker.pid} on {broker.bootstrap}, log {broker.log_path}; "
              f"broker args: {' '.join(extra)}; MALLOC_ARENA_MAX="
              f"{os.environ.get('MALLOC_ARENA_MAX', 'unset')}")
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "logger": quiet_logger("main")})
        admin.create_topics([NewTopic(TOPIC, args.partitions, 1, config={
            "retention.ms": str(args.retention_ms), "segment.ms": "10000"})])[TOPIC].result(timeout=30)
        idle = proc_mem(broker.pid)
        print(f"soak --ids: {duration:.0f} s; new idempotent producers {args.idem_rate:g}/s "
              f"({args.idem_workers} workers, {args.records} records x {args.partitions} "
              f"partitions each), new transactional ids {args.txn_rate:g}/s ({args.txn_workers} "
              f"workers, {args.txns} transactions each, ~1/3 aborted), raw-protocol storm of "
              f"{args.storm_rate:g} new producer ids/s and {args.storm_txn_rate:g} new "
              f"transactional ids/s, 2 read_committed readers; "
              f"idle broker RSS {idle['VmRSS']/1024:.1f} MiB")
        sys.stdout.flush()

        created_idem = ctx.Array("q", args.idem_workers, lock=False)
        created_txn = ctx.Array("q", args.txn_workers, lock=False)
        created_storm = ctx.Array("q", 2, lock=False)  # producer ids, transactional ids
        progress = {}
        for i in range(args.idem_workers):
            procs.append(ctx.Process(target=idem_worker, name=f"idem{i}", args=(
                f"idem{i}", i, broker.bootstrap, args.partitions, args.records,
                args.idem_rate / args.idem_workers, args.value_bytes, created_idem,
                stop_produce, work)))
        for i in range(args.txn_workers):
            procs.append(ctx.Process(target=txn_worker, name=f"txn{i}", args=(
                f"txn{i}", i, broker.bootstrap, args.partitions, args.records, args.txns,
                args.txn_rate / args.txn_workers, args.value_bytes, created_txn,
                stop_produce, work)))
        if args.storm_rate > 0 or args.storm_txn_rate > 0:
            procs.append(ctx.Process(target=storm_worker, name="storm", args=(
                "storm", broker.port, args.partitions, args.storm_rate, args.storm_txn_rate,
                args.value_bytes, created_storm, stop_produce, work)))
        for name, group in (("reader-assign", None), ("reader-group", "soak-ids-readers")):
            progress[name] = ctx.Array("q", args.partitions, lock=False)
            procs.append(ctx.Process(target=reader, name=name, args=(
                name, group, broker.bootstrap, args.partitions, args.value_bytes,
                progress[name], stop_consume, work)))
        prober = Prober(broker.bootstrap, args.partitions, probe_errors)
        for p in procs:
            p.start()

        # Load window: RSS every second (main thread), probes in a thread.
        samples = []   # (t, VmRSS, RssAnon, RssFile)
        probes = []    # probe dicts + "t"
        t_start = now()
        probe_stop = threading.Event()

        def probe_loop():
            while not probe_stop.wait(args.probe_interval):
                r = prober.probe()
                if r is not None:
                    r["t"] = now() - t_start
                    r["created"] = (sum(created_idem) + created_storm[0],
                                    sum(created_txn) + created_storm[1])
                    probes.append(r)
        prober_thread = threading.Thread(target=probe_loop, daemon=True)
        prober_thread.start()
        cpu0 = harness.proc_cpu_seconds(broker.pid)
        next_tick = t_start + 1.0
        next_report = t_start + 15
        mstats = {}
        while now() - t_start < duration:
            time.sleep(max(0.0, next_tick - now()))
            next_tick += 1.0
            st = proc_mem(broker.pid)
            if st is None or not broker.alive():
                raise harness.BrokerError(f"broker died during the soak (exit {broker.proc.poll()})")
            samples.append((now() - t_start, st["VmRSS"], st.get("RssAnon", 0), st.get("RssFile", 0)))
            if args.malloc_stats and "warmup" not in mstats and now() - t_start >= duration / 3:
                mstats["warmup"] = malloc_stats(broker.pid, broker.log_path)
                next_tick = now() + 1.0
            dead = [p.name for p in procs if not p.is_alive()]
            if dead:
                problems.append(f"workers exited early: {dead}")
                print(f"  workers exited early: {dead}")
                break
            if now() >= next_report:
                next_report += 15
                last = probes[-1] if probes else None
                held = (f"held {len(last['tids'])} transactional ids, {len(last['pids'])} producers"
                        if last else "no probe yet")
                print(f"  {now()-t_start:5.0f}s  broker RSS {st['VmRSS']/1024:.1f} MiB "
                      f"(anon {st.get('RssAnon', 0)/1024:.1f}); created "
                      f"{sum(created_idem) + created_storm[0]} producer ids, "
                      f"{sum(created_txn) + created_storm[1]} transactional ids; {held}")
                sys.stdout.flush()
        load_s = now() - t_start
        cpu_load = harness.proc_cpu_seconds(broker.pid) - cpu0
        if args.malloc_stats:
            mstats["end"] = malloc_stats(broker.pid, broker.log_path)
        probe_stop.set()
        prober_thread.join(30)
        stop_produce.set()
        print(f"soak --ids: load stopped after {load_s:.0f} s; waiting for the producers")
        sys.stdout.flush()
        results = {}
        for p in procs:
            if p.name.startswith(("idem", "txn", "storm")):
                p.join(90)
                if p.is_alive():
                    problems.append(f"{p.name} did not finish within 90 s")
                    p.kill()
                path = os.path.join(work, f"{p.name}.json")
                if os.path.exists(path):
                    results[p.name] = json.load(open(path))
                else:
                    problems.append(f"{p.name} wrote no result")
        t_last_activity = max((i[2] for r in results.values() for i in r["instances"]),
                              default=time.time())

        # Readers catch up to the end of the log (their positions pass the last markers).
        hw = harness.list_offsets_latest(broker.port, TOPIC, args.partitions)
        t_drain = now()
        while True:
            lagging = [f"{n}/{p}" for n in progress for p in range(args.partitions)
                       if progress[n][p] < hw[p]]
            if not lagging:
                break
            if now() - t_drain > args.drain_timeout:
                problems.append(f"readers not at the end of the log {args.drain_timeout} s after "
                                f"the producers stopped: {lagging[:8]}")
                break
            time.sleep(0.5)
        drain_s = now() - t_drain
        print(f"soak --ids: producers done, readers at the end of the log {drain_s:.0f} s "
              f"later; waiting for the ids to expire")
        sys.stdout.flush()
        stop_consume.set()
        for p in procs:
            p.join(60)
            if p.is_alive():
                problems.append(f"{p.name} did not stop within 60 s")
                p.kill()
            if p.name.startswith("reader"):
                path = os.path.join(work, f"{p.name}.json")
                if os.path.exists(path):
                    results[p.name] = json.load(open(path))
                else:
                    problems.append(f"{p.name} wrote no result")

        # Everything idle for expiration + slack: nothing may be held any more.
        idle_wait = t_last_activity + window_ms / 1000.0 - time.time()
        after = None
        if args.expiration_ms > 0:
            if idle_wait > 0:
                time.sleep(idle_wait)
            after = prober.probe()
        # Ask the transaction coordinator itself: InitProducerId for an expired id must
        # treat it as new (epoch 0); for an id it still knows it bumps the epoch. A control
        # id initialised twice shows the difference.
        reinit = None
        if args.expiration_ms > 0:
            tids = sorted({i[0] for r in results.values() for i in r.get("instances", [])
                           if i[0].startswith(TXN_PREFIX)})
            sample = tids[:: max(1, len(tids) // 20)][:20]
            conn = RawConn(broker.port, "soak-ids-reinit")
            try:
                epochs = {tid: conn.init_producer_id(tid)[2] for tid in sample}
                ctl = TXN_PREFIX + "control"
                control = [conn.init_producer_id(ctl)[2], conn.init_producer_id(ctl)[2]]
            finally:
                conn.close()
            reinit = {"asked": len(epochs), "known": sorted(t for t, e in epochs.items() if e != 0),
                      "control_epochs": control}
        rss_after = proc_mem(broker.pid)

        # ------------------------------------------------------------------------------
        # Verification
        verify = []
        instances = {}   # client -> (start, last activity)
        acked, committed, aborted = set(), set(), set()
        txn_counts = {"commit": 0, "abort": 0}
        for r in results.values():
            for inst, t0, t1 in r.get("instances", []):
                instances[inst] = (t0, t1)
            acked.update(r.get("acked", []))
            committed.update(r.get("committed", []))
            aborted.update(r.get("aborted", []))
            for k, v in r.get("txn_counts", {}).items():
                txn_counts[k] += v
        n_idem = sum(r["clients"] for r in results.values() if r["role"] in ("idem", "storm"))
        n_txn = sum(r.get("txn_clients", r["clients"]) for r in results.values()
                    if r["role"] in ("txn", "storm"))
        n_storm = sum(r["clients"] + r["txn_clients"] for r in results.values()
                      if r["role"] == "storm")
        expected = acked | committed
        readers = {}
        for r in results.values():
            if r["role"] != "reader":
                continue
            seen = r["seen"]
            missing = [x for x in expected if x not in seen]
            saw_aborted = [x for x in seen if x in aborted]
            unknown = [x for x in seen if x not in expected and x not in aborted]
            dups = sum(c - 1 for c in seen.values() if c > 1)
            readers[r["name"]] = {"read": sum(seen.values()), "distinct": len(seen),
                                  "missing": len(missing), "aborted_seen": len(saw_aborted),
                                  "unknown": len(unknown), "duplicates": dups}
            if missing:
                verify.append(f"{r['name']}: {len(missing)} acknowledged/committed records never "
                              f"read, e.g. {sorted(missing)[:3]}")
            if saw_aborted:
                verify.append(f"{r['name']}: read {len(saw_aborted)} records of aborted "
                              f"transactions, e.g. {sorted(saw_aborted)[:3]}")
            if unknown:
                verify.append(f"{r['name']}: read {len(unknown)} records no producer was "
                              f"told were stored, e.g. {sorted(unknown)[:3]}")
            if dups and r["name"] == "reader-assign":
                verify.append(f"{r['name']}: {dups} records read more than once")

        # Expiry: what each probe found held must have been active within the window.
        stale_tids, stale_entries, excess_pids = 0, 0, 0
        examples = []
        for pr in probes:
            cutoff = pr["wall"] - window_ms / 1000.0
            for tid in pr["tids"]:
                act = instances.get(tid)
                if act is None or act[1] < cutoff:
                    stale_tids += 1
                    if len(examples) < 3:
                        ago = "never" if act is None else f"{pr['wall'] - act[1]:.1f} s before"
                        examples.append(f"t={pr['t']:.0f}s {tid} last active {ago}")
            if pr["oldest_entry_ms"] is not None and pr["oldest_entry_ms"] < cutoff * 1000:
                stale_entries += 1
                if len(examples) < 3:
                    examples.append(f"t={pr['t']:.0f}s a producer entry last written "
                                    f"{pr['wall'] - pr['oldest_entry_ms'] / 1000:.1f} s before")
            recent = sum(1 for a in instances.values() if a[1] >= cutoff and a[0] <= pr["wall"])
            pr["recent_clients"] = recent
            if len(pr["pids"]) > recent:
                excess_pids += 1
                if len(examples) < 3:
                    examples.append(f"t={pr['t']:.0f}s {len(pr['pids'])} producer ids held but "
                                    f"only {recent} clients active within {window_ms} ms")
        if args.expiration_ms > 0:
            if stale_tids or stale_entries or excess_pids:
                verify.append(f"expiry: {stale_tids} sightings of transactional ids and "
                              f"{stale_entries} probes with producer entries idle beyond "
                              f"{window_ms} ms, {excess_pids} probes holding more producer ids "
                              f"than recent clients: {examples}")
            if after is None:
                verify.append("expiry: the probe after the idle wait failed")
            elif after["tids"] or after["pids"]:
                verify.append(f"expiry: {len(after['tids'])} transactional ids and "
                              f"{len(after['pids'])} producer ids still held {window_ms} ms after "
                              f"the last client activity, e.g. {after['tids'][:3]} {after['pids'][:3]}")
            if reinit is not None:
                if reinit["known"]:
                    verify.append(f"expiry: InitProducerId still knew {len(reinit['known'])} of "
                                  f"{reinit['asked']} expired transactional ids (epoch > 0), "
                                  f"e.g. {reinit['known'][:3]}")
                if reinit["control_epochs"][0] != 0 or reinit["control_epochs"][1] == 0:
                    verify.append(f"expiry: the control transactional id got epochs "
                                  f"{reinit['control_epochs']} (expected 0, then above 0)")
        if not probes:
            verify.append("no probe succeeded during the load")

        mem, mem_problems = mem_verdict(samples, duration, args.max_growth)
        verify.extend(mem_problems)
        errors_total = sum(r["errors"] for r in results.values()) + probe_errors.count
        error_samples = [s for r in results.values() for s in r["error_samples"]] + probe_errors.samples

        # ------------------------------------------------------------------------------
        # Report
        held_tids = [len(p["tids"]) for p in probes]
        held_pids = [len(p["pids"]) for p in probes]
        lines, nlines = broker.log_grep(("WARN", "ERROR", "panic"))
        summary = {
            "minutes": args.minutes, "load_seconds": round(load_s, 1),
            "expiration_ms": args.expiration_ms,
            "idempotent_producers_created": n_idem, "transactional_ids_created": n_txn,
            "transactions": txn_counts,
            "records_acked_idempotent": len(acked), "records_committed": len(committed),
            "records_aborted": len(aborted),
            "readers": readers,
            "held_txn_ids_max": max(held_tids, default=None),
            "held_txn_ids_end_of_load": held_tids[-1] if held_tids else None,
            "held_producer_ids_max": max(held_pids, default=None),
            "held_producer_ids_end_of_load": held_pids[-1] if held_pids else None,
            "held_producer_entries_end_of_load": probes[-1]["entries"] if probes else None,
            "held_after_idle": ({"txn_ids": len(after["tids"]), "producer_ids": len(after["pids"])}
                                if after else None),
            "reinit_after_idle": reinit, "ids_from_storm": n_storm,
            "broker_expiration_ms": broker_exp,
            "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
            "probes": [{"t": round(p["t"], 1), "created": p["created"], "txn_ids": len(p["tids"]),
                        "producer_ids": len(p["pids"]), "entries": p["entries"],
                        "recent_clients": p.get("recent_clients")} for p in probes],
            "rss": mem,
            "rss_idle_mib": round(idle["VmRSS"] / 1024, 1),
            "rss_after_idle_mib": round(rss_after["VmRSS"] / 1024, 1) if rss_after else None,
            "rss_hwm_mib": round(rss_after["VmHWM"] / 1024, 1) if rss_after else None,
            "malloc_stats_in_use_held": mstats,
            "rss_samples": [(round(s[0], 1), s[1], s[2], s[3]) for s in samples],
            "broker_cpu_s_load": round(cpu_load, 1),
            "drain_seconds": round(drain_s, 1),
            "client_errors": errors_total, "client_error_samples": error_samples[:20],
            "broker_log_warn_error_lines": nlines,
            "verify_problems": verify, "harness_problems": problems,
        }
        stop_s, code = broker.stop()
        summary["exit_code"] = code
        if code != 0:
            problems.append(f"broker exited with {code} on SIGTERM")

        print()
        print(f"==== soak --ids summary ({args.minutes:g} min, expiration "
              f"{args.expiration_ms or 'broker default'} ms, broker's "
              f"{broker_exp or 'default'} ms)")
        print(f"ids created:            {n_idem} producer ids ({n_idem / load_s:.1f}/s), "
              f"{n_txn} transactional ids ({n_txn / load_s:.1f}/s); {n_storm} of them by the "
              f"storm; {txn_counts['commit']} committed and {txn_counts['abort']} aborted "
              f"transactions")
        print(f"records:                {len(acked)} idempotent acknowledged, {len(committed)} "
              f"committed, {len(aborted)} aborted")
        for n, v in sorted(readers.items()):
            print(f"    {n:14s} read {v['read']}, missing {v['missing']}, aborted seen "
                  f"{v['aborted_seen']}, unknown {v['unknown']}, duplicates {v['duplicates']}")
        print(f"ids held (probes every {args.probe_interval:g} s, {len(probes)} probes): "
              f"transactional ids max {summary['held_txn_ids_max']}, at end of load "
              f"{summary['held_txn_ids_end_of_load']} (of {n_txn} created); producer ids max "
              f"{summary['held_producer_ids_max']}, at end of load "
              f"{summary['held_producer_ids_end_of_load']} (of {n_idem + n_txn} created, "
              f"{summary['held_producer_entries_end_of_load']} partition entries)")
        if after is not None:
            print(f"ids held after {window_ms} ms idle: {len(after['tids'])} transactional ids, "
                  f"{len(after['pids'])} producer ids")
        if reinit is not None:
            print(f"InitProducerId after idle: {reinit['asked'] - len(reinit['known'])} of "
                  f"{reinit['asked']} expired transactional ids treated as new (epoch 0); "
                  f"control id epochs {reinit['control_epochs']}")
        print(f"expiry checks:          {stale_tids} sightings of stale transactional ids, {stale_entries} "
              f"probes with stale producer entries, {excess_pids} probes with more producer ids "
              f"than recently active clients")
        if mem:
            ew, lw = mem["early_window_s"], mem["late_window_s"]
            print(f"broker RSS (MiB):       idle {summary['rss_idle_mib']}, start of load "
                  f"{mem['start_mib']}, median {ew[0]}-{ew[1]} s {mem['early_median_mib']}, "
                  f"median {lw[0]}-{lw[1]} s {mem['late_median_mib']} ({mem['growth_mib']:+} MiB, "
                  f"bound +{mem['growth_bound_mib']}; anonymous {mem['anon_growth_mib']:+}), "
                  f"end of load {mem['end_mib']} (anon {mem['end_anon_mib']}, file "
                  f"{mem['end_file_mib']}), max {mem['max_mib']}, after idle "
                  f"{summary['rss_after_idle_mib']}")
            print(f"RSS slope from {ew[0]} s:  {mem['slope_mib_min']:+} MiB/min (reported, not "
                  f"checked)")
        if mstats:
            def fmt(x):
                return "n/a" if not x else f"{x[0] / 2**20:.1f} / {x[1] / 2**20:.1f}"
            print(f"glibc malloc (MiB):     in use / held from the system: end of warm-up "
                  f"{fmt(mstats.get('warmup'))}, end of load {fmt(mstats.get('end'))}")
        print(f"broker CPU:             {summary['broker_cpu_s_load']} s over {load_s:.0f} s of load")
        print(f"client errors:          {errors_total}")
        for s in error_samples[:10]:
            print(f"    {s.splitlines()[0][:300]}")
        print(f"broker log WARN/ERROR:  {nlines} lines")
        for line in lines[-10:]:
            print(f"    {line[:300]}")
        for v in verify:
            print(f"VERIFY: {v}")
        for p in problems:
            print(f"HARNESS: {p}")
        if errors_total or verify or problems:
            print("RESULT: FAIL")
            rc = 1
        else:
            print("RESULT: PASS")
    except (harness.BrokerError, Exception) as e:  # noqa: BLE001
        print(f"soak --ids: FAILED: {e!r}\n{traceback.format_exc()}")
        rc = 2
    finally:
        stop_produce.set()
        stop_consume.set()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        if prober is not None:
            prober.close()
        try:
            if broker.alive():
                broker.stop()
        except harness.BrokerError:
            pass
        broker.ensure_dead()
    if args.json and summary:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
