#!/usr/bin/env python3
"""Helpers for the three-node scenarios (compat-tests/cluster.sh, scripts/cluster-failover.sh).

Run with the compat venv's Python (scripts/setup-python.sh). Subcommands:

  meta ADDR                      one node's own Metadata (v7, all topics) as JSON
  wait-agree --nodes A,B ...     poll every node's Metadata until they agree (see below)
  controller A,B,...             each node's own DescribeCluster: do they name the same controller
  describe BOOTSTRAP             DescribeCluster via confluent-kafka: "controller=N nodes=1,2,3"
  create-until BOOTSTRAP NAME    CreateTopics retried every 50 ms until it succeeds
  alter-until BOOTSTRAP TOPIC V  IncrementalAlterConfigs retention.ms=V, retried likewise
  consume CLIENT BOOTSTRAP TOPIC N OUT   read a whole topic with confluent-kafka or kafka-python
  compare EXPECTED GOT           a consumer's records against what the producer was acked
  not-leader ADDR TOPIC PART     Produce and Fetch sent to a non-leader node
  final-check --nodes A,B FILE   every topic (and its retention.ms) of FILE on every node

Metadata is asked with a hand-encoded request on a socket of its own to exactly the node
named: a client library's list_topics() may send it to whichever broker it has connected to,
which would hide a node whose view lags behind. Everything a client does (create, alter,
consume) goes through the real client libraries.
"""
import argparse
import json
import os
import socket
import statistics
import struct
import sys
import time

# Kafka error codes used here.
NONE, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER = 0, 5, 6
ERROR_NAMES = {0: "NONE", 3: "UNKNOWN_TOPIC_OR_PARTITION", 5: "LEADER_NOT_AVAILABLE",
               6: "NOT_LEADER_OR_FOLLOWER", 7: "REQUEST_TIMED_OUT", 74: "FENCED_LEADER_EPOCH"}


def err_name(code):
    return f"{ERROR_NAMES.get(code, 'error')}({code})"


# --- a minimal Kafka wire client: one request, one response, on its own connection ----------

class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def i8(self): return self.take(">b")
    def i16(self): return self.take(">h")
    def i32(self): return self.take(">i")
    def i64(self): return self.take(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def bytes_(self):
        n = self.i32()
        if n < 0:
            return None
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def array(self, item):
        n = self.i32()
        return None if n < 0 else [item() for _ in range(n)]


    def uvarint(self):
        shift = value = 0
        while True:
            b = self.take(">B")
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def compact_string(self):
        n = self.uvarint() - 1
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()


def enc_string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(addr, api_key, version, body, timeout=3.0, flexible=False):
    """Sends one request (header v1, or v2 if FLEXIBLE) to ADDR and returns the response body
    (header v0, or v1, read)."""
    host, port = addr.rsplit(":", 1)
    header = struct.pack(">hhi", api_key, version, 1) + enc_string("fjord-cluster-tool")
    if flexible:
        header += b"\x00"  # no tagged fields
    msg = header + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
    r = Reader(data)
    if r.i32() != 1:
        raise RuntimeError("correlation id mismatch")
    if flexible:
        r.tagged_fields()
    return r


def describe_cluster(addr, timeout=3.0):
    """DescribeCluster v0 from exactly this node: (error, controller id, sorted broker ids)."""
    r = request(addr, 60, 0, b"\x00\x00", timeout, flexible=True)
    r.i32()  # throttle
    err = r.i16()
    r.compact_string()  # error message
    r.compact_string()  # cluster id
    controller = r.i32()
    brokers = []
    for _ in range(r.uvarint() - 1):
        brokers.append(r.i32())
        r.compact_string(); r.i32(); r.compact_string(); r.tagged_fields()
    return err, controller, sorted(brokers)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        buf += chunk
    return buf


def metadata(addr, timeout=3.0):
    """Metadata v7 for all topics from exactly this node, as a plain dict."""
    r = request(addr, 3, 7, struct.pack(">ib", -1, 0), timeout)
    r.i32()  # throttle
    brokers = r.array(lambda: (r.i32(), r.string(), r.i32(), r.string()))
    cluster_id = r.string()
    controller = r.i32()

    def partition():
        err, idx, leader, epoch = r.i16(), r.i32(), r.i32(), r.i32()
        replicas, isr, offline = r.array(r.i32), r.array(r.i32), r.array(r.i32)
        return {"partition": idx, "error": err, "leader": leader, "epoch": epoch,
                "replicas": replicas, "isr": isr, "offline": offline}

    def topic():
        err, name, internal = r.i16(), r.string(), r.i8()
        parts = r.array(partition)
        return name, {"error": err, "internal": bool(internal),
                      "partitions": {str(p["partition"]): p for p in parts}}

    topics = dict(r.array(topic))
    return {"node": addr, "cluster_id": cluster_id, "controller": controller,
            "brokers": {str(b[0]): f"{b[1]}:{b[2]}" for b in brokers}, "topics": topics}


# --- wait-agree ------------------------------------------------------------------------------

def view_of(md):
    """What must be identical on every node: broker list, and per topic its error and each
    partition's leader."""
    return {"brokers": md["brokers"],
            "topics": {t: {"error": v["error"],
                           "leaders": {p: x["leader"] for p, x in v["partitions"].items()}}
                       for t, v in md["topics"].items()}}


def problems(views, args, snapshot):
    """Why this round of answers does not meet the conditions (empty list: it does)."""
    errs = []
    want = sorted(args.brokers.split(",")) if args.brokers else None
    first = None
    for addr, md in views.items():
        if isinstance(md, str):
            errs.append(f"{addr}: {md}")
            continue
        v = view_of(md)
        if want is not None and sorted(md["brokers"]) != want:
            errs.append(f"{addr}: brokers {sorted(md['brokers'])}, want {want}")
        for t in filter(None, (args.topics or "").split(",")):
            tv = md["topics"].get(t)
            if tv is None:
                errs.append(f"{addr}: topic {t} missing")
                continue
            if tv["error"] != NONE or not tv["partitions"]:
                errs.append(f"{addr}: topic {t} error {err_name(tv['error'])}, {len(tv['partitions'])} partitions")
            for p, x in sorted(tv["partitions"].items(), key=lambda kv: int(kv[0])):
                live = x["leader"] >= 0 and str(x["leader"]) in md["brokers"]
                if args.all_led and not live:
                    errs.append(f"{addr}: {t}[{p}] leader {x['leader']} not a listed broker "
                                f"(error {err_name(x['error'])})")
                elif x["leader"] >= 0 and not live:
                    errs.append(f"{addr}: {t}[{p}] names leader {x['leader']}, which is not in its broker list")
        if snapshot is not None:
            for t, tv in snapshot["topics"].items():
                # The coordinators' internal topics are replicated (RF 3): their partitions
                # fail over to another ISR member and come back only with the preferred
                # leader rebalance, not when the node restarts.
                if t.startswith("__"):
                    continue
                for p, x in tv["partitions"].items():
                    if x["leader"] != args.releads:
                        continue
                    now = md["topics"].get(t, {}).get("partitions", {}).get(p)
                    if now is None or now["leader"] != args.releads or now["epoch"] <= x["epoch"]:
                        errs.append(f"{addr}: {t}[{p}] was led by {args.releads} at epoch {x['epoch']}, "
                                    f"now {'absent' if now is None else (now['leader'], now['epoch'])}; "
                                    f"want leader {args.releads} at a higher epoch")
        if first is None:
            first = (addr, v)
        elif v != first[1]:
            errs.append(f"{addr} disagrees with {first[0]}: {diff_views(first[1], v)}")
    return errs


def diff_views(a, b):
    out = []
    if a["brokers"] != b["brokers"]:
        out.append(f"brokers {a['brokers']} vs {b['brokers']}")
    for t in sorted(set(a["topics"]) | set(b["topics"])):
        x, y = a["topics"].get(t), b["topics"].get(t)
        if x != y:
            out.append(f"{t}: {x} vs {y}")
    return "; ".join(out)[:600]


def cmd_wait_agree(args):
    nodes = args.nodes.split(",")
    snapshot = None
    if args.releads_from:
        try:
            snapshot = json.load(open(args.releads_from))
        except OSError as e:
            print(f"no metadata saved before the kill to compare leader epochs with: {e}")
            return 1
    since = float(args.since) if args.since else time.time()
    deadline = time.monotonic() + args.timeout
    while True:
        views = {}
        for n in nodes:
            try:
                views[n] = metadata(n)
            except Exception as e:  # a node still starting or unreachable
                views[n] = f"{type(e).__name__}: {e}"
        errs = problems(views, args, snapshot)
        if not errs:
            break
        if time.monotonic() >= deadline:
            print(f"not agreed after {args.timeout:.0f}s: " + " | ".join(errs[:8])
                  + (f" | ... {len(errs) - 8} more" if len(errs) > 8 else ""))
            if args.save:  # every node's answer, for the post-mortem; not an agreed snapshot
                json.dump(views, open(args.save + ".disagreed", "w"), indent=1, sort_keys=True)
            return 1
        time.sleep(0.1)
    elapsed = time.time() - since
    md = next(iter(views.values()))
    if args.save:
        json.dump(md, open(args.save, "w"), indent=1, sort_keys=True)
    leaders = {t: [md["topics"][t]["partitions"][p]["leader"]
                   for p in sorted(md["topics"][t]["partitions"], key=int)]
               for t in sorted(md["topics"]) if not md["topics"][t]["internal"]}
    print(f"{elapsed:.2f}s: {len(nodes)} node(s) agree: brokers {sorted(md['brokers'], key=int)}, "
          f"{len(leaders)} topics, leaders " + " ".join(f"{t}={l}" for t, l in leaders.items()
                                                         if not args.topics or t in args.topics.split(",")))
    return 0


# --- client-side operations (confluent-kafka) ------------------------------------------------

def admin(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 1000,
                        "reconnect.backoff.max.ms": 200})


def cmd_controller(args):
    """Every node's own DescribeCluster answer; prints "controller=N" when all name the same
    controller (exit 0), else each node's answer (exit 1)."""
    answers = {}
    for addr in args.nodes.split(","):
        try:
            err, ctl, brokers = describe_cluster(addr)
            answers[addr] = f"controller={ctl} brokers={','.join(map(str, brokers))}" + (
                f" error={err_name(err)}" if err else "")
        except Exception as e:
            answers[addr] = f"{type(e).__name__}: {e}"
    ctls = {a.split()[0] for a in answers.values()}
    if len(ctls) == 1 and next(iter(ctls)).startswith("controller=") and next(iter(ctls)) != "controller=-1":
        print(f"{next(iter(ctls))} (the same from {len(answers)} node(s))")
        return 0
    print("nodes disagree or name no controller: " + "; ".join(f"{a}: {v}" for a, v in answers.items()))
    return 1


def cmd_describe(args):
    a = admin(args.bootstrap)
    try:
        d = a.describe_cluster(request_timeout=args.timeout).result(timeout=args.timeout + 2)
    except Exception as e:
        print(f"describe_cluster failed: {type(e).__name__}: {e}")
        return 1
    ctl = d.controller.id if d.controller is not None else -1
    print(f"controller={ctl} nodes={','.join(str(n.id) for n in sorted(d.nodes, key=lambda n: n.id))}")
    return 0


def retry_until(label, attempt, since, timeout):
    """Calls attempt() (which raises on failure) every 50 ms until it succeeds or TIMEOUT
    seconds after SINCE passed. Prints seconds since SINCE (or the last error) and returns 0/1.
    The figure includes this process's start (Python and the client library: about 0.2 s on 2
    cores), which is why the line also says when the first attempt was sent."""
    tries, last, first = 0, None, time.time() - since
    while True:
        tries += 1
        try:
            attempt()
            print(f"{time.time() - since:.3f} {label} ok after {tries} attempt(s), the first sent at {first:.3f}")
            return 0
        except Exception as e:  # KafkaException, a timeout of the future, ...
            last = f"{type(e).__name__}: {e}"
            if os.environ.get("CLUSTER_TOOL_VERBOSE"):
                print(f"  {time.time() - since:.3f} attempt {tries}: {last}", file=sys.stderr)
        if time.time() - since >= timeout:
            print(f"{time.time() - since:.3f} {label} still failing after {tries} attempts: {last}")
            return 1
        time.sleep(0.05)


def cmd_create_until(args):
    """A fresh AdminClient per attempt: what a new client sees, not what an old one cached.
    Attempts are cut at --attempt-timeout (1 s): librdkafka sends CreateTopics to the controller
    named in Metadata, and a client that was told the killed node waits on it for the whole
    request timeout, which would round every figure up to that timeout."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    def attempt():
        a = admin(args.bootstrap)  # kept referenced until the result is in: its futures die with it
        f = a.create_topics(
            [NewTopic(args.name, args.partitions, args.rf)], request_timeout=args.attempt_timeout,
            operation_timeout=args.attempt_timeout)[args.name]
        try:
            f.result(timeout=args.attempt_timeout + 1)
        except Exception as e:
            err = e.args[0] if e.args else None
            if getattr(err, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                attempt.uncertain = True
                raise
            # An earlier attempt that failed otherwise (a timeout, a lost connection) may still
            # have been committed; without one, the topic was there before we began.
            if not attempt.uncertain:
                raise
    attempt.uncertain = False
    return retry_until(f"create_topics({args.name})", attempt, float(args.since or time.time()), args.timeout)


def cmd_alter_until(args):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    def attempt():
        res = ConfigResource(ResourceType.TOPIC, args.topic, incremental_configs=[
            ConfigEntry("retention.ms", str(args.value), incremental_operation=AlterConfigOpType.SET)])
        a = admin(args.bootstrap)
        fs = a.incremental_alter_configs([res], request_timeout=args.attempt_timeout)
        for f in fs.values():
            f.result(timeout=args.attempt_timeout + 1)
    return retry_until(f"incremental_alter_configs({args.topic} retention.ms={args.value})", attempt,
                       float(args.since or time.time()), args.timeout)


def cmd_final_check(args):
    """FILE: lines 'topic retention.ms'. Every topic must be in every node's Metadata, and its
    retention.ms (DescribeConfigs) must be the last value set."""
    from confluent_kafka.admin import ConfigResource, ResourceType
    want = [line.split() for line in open(args.file) if line.strip()]
    errs = []
    for n in args.nodes.split(","):
        md = metadata(n)
        missing = [t for t, _ in want if t not in md["topics"]]
        if missing:
            errs.append(f"{n}: {len(missing)} topic(s) missing: {missing[:10]}")
        a = admin(n)
        for t, v in want:
            if v == "-":
                continue
            try:
                cfg = a.describe_configs([ConfigResource(ResourceType.TOPIC, t)], request_timeout=10)
                got = list(cfg.values())[0].result(timeout=12)["retention.ms"].value
            except Exception as e:
                got = f"{type(e).__name__}: {e}"
            if got != v:
                errs.append(f"via {n}: {t} retention.ms={got}, want {v}")
    if errs:
        print("; ".join(errs[:20]))
        return 1
    print(f"all {len(want)} topics present on every node, retention.ms as last set")
    return 0


# --- consumers -------------------------------------------------------------------------------

def cmd_consume(args):
    rows = consume_confluent(args) if args.client == "confluent" else consume_kafka_python(args)
    with open(args.out, "w") as f:
        for p, o, k, v in rows:
            f.write(f"{p}\t{o}\t{k}\t{v}\n")
    print(f"{args.client}: read {len(rows)} records of {args.topic}")
    return 0 if len(rows) >= args.n else 1


def consume_confluent(args):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": f"cluster-tool-{os.getpid()}",
                  "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        md = c.list_topics(args.topic, timeout=10).topics[args.topic]
        if md.error is not None:
            raise SystemExit(f"confluent: metadata for {args.topic}: {md.error}")
        c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in md.partitions])
        return poll_rows(lambda: [(m.partition(), m.offset(), m.key(), m.value(), m.error())
                                  for m in c.consume(500, timeout=0.5)], args)
    finally:
        c.close()


def consume_kafka_python(args):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False, group_id=None,
                      request_timeout_ms=15000)
    try:
        deadline = time.monotonic() + 10
        parts = None
        while not parts and time.monotonic() < deadline:
            parts = c.partitions_for_topic(args.topic)
            if not parts:
                time.sleep(0.2)
        if not parts:
            raise SystemExit(f"kafka-python: no partitions for {args.topic}")
        tps = [TopicPartition(args.topic, p) for p in sorted(parts)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        return poll_rows(lambda: [(m.partition, m.offset, m.key, m.value, None)
                                  for recs in c.poll(timeout_ms=500).values() for m in recs], args)
    finally:
        c.close()


def poll_rows(poll, args):
    """Polls until N records arrived, then one more second to catch duplicates; bounded."""
    rows, deadline, extra = [], time.monotonic() + args.timeout, None
    while time.monotonic() < deadline and (extra is None or time.monotonic() < extra):
        for p, o, k, v, err in poll():
            if err is not None:
                print(f"{args.client}: consumer error: {err}", file=sys.stderr)
                continue
            rows.append((p, o, (k or b"").decode(), (v or b"").decode()))
        if extra is None and len(rows) >= args.n:
            extra = time.monotonic() + 1.0
    return rows


def cmd_compare(args):
    """EXPECTED: the producer's acked records (partition, offset, key, value), one per line.
    GOT: a consumer's records in the order it received them. Per partition the sequences must be
    identical: same records, same offsets, same order, nothing missing, nothing twice."""
    def load(path):
        per = {}
        for line in open(path):
            p, o, k, v = line.rstrip("\n").split("\t")
            per.setdefault(int(p), []).append((int(o), k, v))
        return per
    exp, got = load(args.expected), load(args.got)
    for seq in exp.values():
        seq.sort()
    errs = []
    for p in sorted(set(exp) | set(got)):
        e, g = exp.get(p, []), got.get(p, [])
        if e == g:
            continue
        first = next((i for i, (x, y) in enumerate(zip(e, g)) if x != y), min(len(e), len(g)))
        errs.append(f"partition {p}: expected {len(e)} records, got {len(g)}; first difference at "
                    f"#{first}: expected {e[first] if first < len(e) else 'end'}, "
                    f"got {g[first] if first < len(g) else 'end'}")
    n = sum(len(s) for s in got.values())
    if errs:
        print("; ".join(errs))
        return 1
    print(f"{n} records in {len(got)} partitions, each partition's offsets, keys and values in order")
    return 0


# --- requests sent to a node that does not lead the partition --------------------------------

def cmd_not_leader(args):
    """Produce v3 (acks=-1) and Fetch v4 for TOPIC[PART] to ADDR, which must not be its leader:
    both must answer NOT_LEADER_OR_FOLLOWER. Prints what came back."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    b.append(0, int(time.time() * 1000), b"misrouted", b"must not be written", [])
    batch = bytes(b.build())
    t = enc_string(args.topic)
    body = (struct.pack(">h", -1) + struct.pack(">hi", -1, 5000) + struct.pack(">i", 1) + t
            + struct.pack(">i", 1) + struct.pack(">i", args.partition) + struct.pack(">i", len(batch)) + batch)
    r = request(args.addr, 0, 3, body, timeout=10)
    produce = []
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            produce.append((r.i32(), r.i16(), r.i64(), r.i64()))
    body = (struct.pack(">iiiib", -1, 0, 1, 1 << 20, 0) + struct.pack(">i", 1) + t
            + struct.pack(">i", 1) + struct.pack(">iqi", args.partition, 0, 1 << 20))
    r = request(args.addr, 1, 4, body, timeout=10)
    r.i32()
    fetch = []
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            idx, err, hw, _lso = r.i32(), r.i16(), r.i64(), r.i64()
            r.array(lambda: (r.i64(), r.i64()))
            recs = r.bytes_()
            fetch.append((idx, err, hw, len(recs or b"")))
    ok = (len(produce) == 1 and produce[0][1] == NOT_LEADER_OR_FOLLOWER
          and len(fetch) == 1 and fetch[0][1] == NOT_LEADER_OR_FOLLOWER)
    pe = f"{err_name(produce[0][1])} base_offset={produce[0][2]}" if produce else "no partition in response"
    fe = (f"{err_name(fetch[0][1])} high_watermark={fetch[0][2]} record_bytes={fetch[0][3]}"
          if fetch else "no partition in response")
    print(f"{args.addr} for {args.topic}[{args.partition}]: Produce -> {pe}; Fetch -> {fe}")
    return 0 if ok else 1


def cmd_meta(args):
    print(json.dumps(metadata(args.addr), indent=1, sort_keys=True))
    return 0


def cmd_stats(args):
    """Reads numbers (one per line, 'x' = failed) and prints n, median, max."""
    vals = [float(x) for x in sys.stdin.read().split() if x != "x"]
    if not vals:
        print("n=0")
        return 0
    print(f"n={len(vals)} median={statistics.median(vals):.3f}s max={max(vals):.3f}s min={min(vals):.3f}s")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("meta"); p.add_argument("addr"); p.set_defaults(f=cmd_meta)
    p = sub.add_parser("wait-agree")
    p.add_argument("--nodes", required=True, help="comma-separated host:port, each asked directly")
    p.add_argument("--brokers", help="broker ids every node must list, exactly (comma-separated)")
    p.add_argument("--topics", help="topics that must exist, without error, on every node")
    p.add_argument("--all-led", action="store_true", help="every partition of --topics has a listed leader")
    p.add_argument("--releads", type=int, help="broker that must lead again, at a higher epoch, ...")
    p.add_argument("--releads-from", help="... every partition it led in this saved metadata")
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--since", help="unix time the elapsed time is counted from (default: now)")
    p.add_argument("--save", help="write the agreed metadata here (on timeout, every node's to SAVE.disagreed)")
    p.set_defaults(f=cmd_wait_agree)
    p = sub.add_parser("controller"); p.add_argument("nodes"); p.set_defaults(f=cmd_controller)
    p = sub.add_parser("describe"); p.add_argument("bootstrap")
    p.add_argument("--timeout", type=float, default=10); p.set_defaults(f=cmd_describe)
    p = sub.add_parser("create-until"); p.add_argument("bootstrap"); p.add_argument("name")
    p.add_argument("--partitions", type=int, default=1); p.add_argument("--rf", type=int, default=1)
    p.add_argument("--since"); p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--attempt-timeout", type=float, default=1); p.set_defaults(f=cmd_create_until)
    p = sub.add_parser("alter-until"); p.add_argument("bootstrap"); p.add_argument("topic")
    p.add_argument("value", type=int); p.add_argument("--since"); p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--attempt-timeout", type=float, default=1); p.set_defaults(f=cmd_alter_until)
    p = sub.add_parser("final-check"); p.add_argument("--nodes", required=True); p.add_argument("file")
    p.set_defaults(f=cmd_final_check)
    p = sub.add_parser("consume"); p.add_argument("client", choices=["confluent", "kafka-python"])
    p.add_argument("bootstrap"); p.add_argument("topic"); p.add_argument("n", type=int); p.add_argument("out")
    p.add_argument("--timeout", type=float, default=60); p.set_defaults(f=cmd_consume)
    p = sub.add_parser("compare"); p.add_argument("expected"); p.add_argument("got"); p.set_defaults(f=cmd_compare)
    p = sub.add_parser("not-leader"); p.add_argument("addr"); p.add_argument("topic")
    p.add_argument("partition", type=int); p.set_defaults(f=cmd_not_leader)
    p = sub.add_parser("stats"); p.set_defaults(f=cmd_stats)
    args = ap.parse_args()
    sys.exit(args.f(args))


if __name__ == "__main__":
    main()
