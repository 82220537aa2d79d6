#!/usr/bin/env python3
"""Capture real Kafka client requests for the fuzz seed corpus (stdlib only).

Two subcommands:

  proxy   A TCP proxy on 127.0.0.1 in front of a running broker. Every client->broker
          request frame is saved (without its 4-byte size prefix) under --out as
          k<api key>-v<version>-<sha1 prefix>.bin, so identical frames collapse into one file.
          Responses are passed through untouched. Start the broker with
          --advertised-listeners PLAINTEXT://127.0.0.1:<proxy port>, or clients follow the
          Metadata response straight to the broker and bypass the proxy after bootstrap.
          Runs until SIGTERM/SIGINT, then prints how many frames it saw and saved.

  select  Builds the committed seed corpora from a capture directory:
            <frames>   a spread of request frames over API keys, versions and clients
            <batches>  the record sets of produce requests (one partition's `records`), a
                       spread over codecs and producer kinds
            <produce>  produce bodies prefixed with their version (i16, big-endian): the input
                       format of the produce_body fuzz target
          within file-count and byte budgets.

Example:
  python3 fuzz/capture.py proxy --port 19092 --upstream 127.0.0.1:9092 --out /tmp/capture
  python3 fuzz/capture.py select --raw /tmp/capture --frames fuzz/corpus/frame_decode \\
      --batches fuzz/corpus/record_batch --produce fuzz/corpus/produce_body
"""

import argparse
import collections
import hashlib
import os
import signal
import socket
import struct
import sys
import threading

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics", 21: "DeleteRecords",
    22: "InitProducerId", 23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit", 29: "DescribeAcls",
    32: "DescribeConfigs", 33: "AlterConfigs", 35: "DescribeLogDirs", 37: "CreatePartitions",
    42: "DeleteGroups", 44: "IncrementalAlterConfigs", 47: "OffsetDelete",
    60: "DescribeCluster", 61: "DescribeProducers", 65: "DescribeTransactions",
    66: "ListTransactions", 68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
    75: "DescribeTopicPartitions",
}

MAX_FRAME = 64 << 20  # refuse to buffer absurd frames


# ----------------------------------------------------------------------------- proxy

class Capture:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.seen = 0
        self.saved = 0
        self.by_api = collections.Counter()
        os.makedirs(out, exist_ok=True)

    def save(self, frame):
        if len(frame) < 4:
            return
        key, ver = struct.unpack(">hh", frame[:4])
        digest = hashlib.sha1(frame).hexdigest()[:16]
        path = os.path.join(self.out, f"k{key:02d}-v{ver:02d}-{digest}.bin")
        with self.lock:
            self.seen += 1
            self.by_api[(key, ver)] += 1
            if os.path.exists(path):
                return
            self.saved += 1
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(frame)
        os.replace(tmp, path)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def client_to_broker(client, upstream, cap):
    try:
        while True:
            head = recv_exact(client, 4)
            if head is None:
                break
            (size,) = struct.unpack(">i", head)
            if size < 0 or size > MAX_FRAME:
                # Not a Kafka client (or a broken one): pass the bytes on and stop parsing.
                upstream.sendall(head)
                while True:
                    data = client.recv(65536)
                    if not data:
                        break
                    upstream.sendall(data)
                break
            frame = recv_exact(client, size)
            if frame is None:
                break
            cap.save(frame)
            upstream.sendall(head + frame)
    except OSError:
        pass
    finally:
        for s in (upstream, client):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def broker_to_client(upstream, client):
    try:
        while True:
            data = upstream.recv(65536)
            if not data:
                break
            client.sendall(data)
    except OSError:
        pass
    finally:
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, upstream_addr, cap):
    try:
        upstream = socket.create_connection(upstream_addr, timeout=10)
        upstream.settimeout(None)
    except OSError as e:
        print(f"capture: cannot reach upstream {upstream_addr}: {e}", file=sys.stderr)
        conn.close()
        return
    for s in (conn, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = threading.Thread(target=broker_to_client, args=(upstream, conn), daemon=True)
    t.start()
    client_to_broker(conn, upstream, cap)
    t.join(timeout=5)
    conn.close()
    upstream.close()


def cmd_proxy(args):
    host, port = args.upstream.rsplit(":", 1)
    upstream_addr = (host, int(port))
    cap = Capture(args.out)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(128)
    stop = threading.Event()

    def on_signal(_sig, _frm):
        stop.set()
        try:
            srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        srv.close()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"capture: 127.0.0.1:{args.port} -> {args.upstream}, saving to {args.out}", flush=True)
    while not stop.is_set():
        try:
            conn, _ = srv.accept()
        except OSError:
            break
        threading.Thread(target=serve, args=(conn, upstream_addr, cap), daemon=True).start()
    with cap.lock:
        print(f"capture: {cap.seen} request frames seen, {cap.saved} distinct saved", flush=True)
        for (k, v), n in sorted(cap.by_api.items()):
            print(f"  {API_NAMES.get(k, k)} v{v}: {n}")


# ----------------------------------------------------------------------------- parsing

class Reader:
    def __init__(self, data, pos=0):
        self.d = data
        self.p = pos

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise ValueError("truncated")
        out = self.d[self.p:self.p + n]
        self.p += n
        return out

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        shift = 0
        out = 0
        while True:
            b = self.take(1)[0]
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7
            if shift > 35:
                raise ValueError("varint too long")

    def string(self, flexible, nullable=True):
        n = self.uvarint() - 1 if flexible else self.i16()
        if n < 0:
            if not nullable:
                raise ValueError("null string")
            return None
        return self.take(n)

    def nbytes(self, flexible):
        n = self.uvarint() - 1 if flexible else self.i32()
        return None if n < 0 else self.take(n)

    def array_len(self, flexible):
        n = self.uvarint() - 1 if flexible else self.i32()
        return max(n, 0)

    def tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def header(frame):
    """(api_key, version, client_id, offset of the body) of a request frame, or None."""
    try:
        r = Reader(frame)
        key, ver = r.i16(), r.i16()
        r.i32()  # correlation id
        client = r.string(False)
        # Header v2 (tagged fields) for flexible versions. Only Produce needs the body
        # offset here, and Produce is flexible from v9.
        if key == 0 and ver >= 9:
            r.tagged_fields()
        return key, ver, (client or b"").decode("utf-8", "replace"), r.p
    except (ValueError, struct.error):
        return None


def produce_record_sets(frame):
    """The `records` of every partition of a ProduceRequest (v3+) frame."""
    h = header(frame)
    if not h or h[0] != 0 or h[1] < 3:
        return []
    _, ver, _, pos = h
    flex = ver >= 9
    out = []
    try:
        r = Reader(frame, pos)
        r.string(flex)  # transactional id
        r.i16()  # acks
        r.i32()  # timeout
        for _ in range(r.array_len(flex)):
            if ver >= 13:
                r.take(16)  # topic id
            else:
                r.string(flex, nullable=False)
            for _ in range(r.array_len(flex)):
                r.i32()  # partition index
                rec = r.nbytes(flex)
                if rec:
                    out.append(rec)
                if flex:
                    r.tagged_fields()
            if flex:
                r.tagged_fields()
    except (ValueError, struct.error):
        pass
    return out


def batch_class(records):
    """A label for a record set: codec, transactional/idempotent, batch count."""
    codecs = ("none", "gzip", "snappy", "lz4", "zstd")
    if len(records) < 61 or records[16] != 2:
        return f"magic{records[16] if len(records) > 16 else '?'}"
    attrs = struct.unpack(">h", records[21:23])[0]
    pid = struct.unpack(">q", records[43:51])[0]
    kind = "txn" if attrs & 0x10 else ("idem" if pid >= 0 else "plain")
    codec = codecs[attrs & 7] if attrs & 7 < 5 else f"codec{attrs & 7}"
    return f"{codec}-{kind}"


# ----------------------------------------------------------------------------- select

def spread(items, n):
    """Up to n items from a size-sorted list: smallest, largest, then evenly in between."""
    if len(items) <= n:
        return list(items)
    if n == 1:
        return [items[0]]
    idx = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [items[i] for i in idx]


def pick(groups, max_files, max_bytes, per_group_cap):
    """Chooses per group a size spread, lowering the per-group count until within budget."""
    for per in range(per_group_cap, 0, -1):
        chosen = []
        for key in sorted(groups):
            chosen += spread(sorted(groups[key], key=len), per)
        total = sum(len(c) for c in chosen)
        if len(chosen) <= max_files and total <= max_bytes:
            return chosen, per
    # Even one per group is too much: keep the smallest ones.
    chosen = sorted((min(g, key=len) for g in groups.values()), key=len)
    out, total = [], 0
    for c in chosen:
        if len(out) >= max_files or total + len(c) > max_bytes:
            break
        out.append(c)
        total += len(c)
    return out, 0


def write_corpus(dirname, named):
    os.makedirs(dirname, exist_ok=True)
    for f in os.listdir(dirname):
        os.remove(os.path.join(dirname, f))
    for name, data in named:
        with open(os.path.join(dirname, name), "wb") as f:
            f.write(data)
    total = sum(len(d) for _, d in named)
    print(f"select: {dirname}: {len(named)} files, {total} bytes")


def cmd_select(args):
    frames = {}
    for name in sorted(os.listdir(args.raw)):
        if name.endswith(".bin"):
            with open(os.path.join(args.raw, name), "rb") as f:
                data = f.read()
            frames[hashlib.sha1(data).hexdigest()] = data
    print(f"select: {len(frames)} distinct frames in {args.raw}")

    # Frames: group by (API key, version, client software); the client id tells
    # librdkafka, kafka-python and the Java client apart (Java numbers its clients: strip digits).
    groups = collections.defaultdict(list)
    for data in frames.values():
        h = header(data)
        if not h or len(data) > args.max_file_bytes:
            continue
        key, ver, client, _ = h
        client = client.rstrip("0123456789-").split("-")[0] or "-"
        groups[(key, ver, client)].append(data)
    chosen, per = pick(groups, args.max_files, args.max_bytes, args.per_group)
    named = []
    for data in chosen:
        key, ver, _, _ = header(data)
        named.append((f"k{key:02d}-v{ver:02d}-{hashlib.sha1(data).hexdigest()[:12]}", data))
    write_corpus(args.frames, named)
    summary = collections.Counter()
    for data in chosen:
        key, ver, _, _ = header(data)
        summary[(key, ver)] += 1
    print("select: frames per API/version: " + ", ".join(
        f"{API_NAMES.get(k, k)}v{v}x{n}" for (k, v), n in sorted(summary.items())))

    # Record sets and produce bodies.
    sets = {}
    bodies = collections.defaultdict(dict)
    for data in frames.values():
        h = header(data)
        if not h or h[0] != 0 or h[1] < 3:
            continue
        for rec in produce_record_sets(data):
            sets[hashlib.sha1(rec).hexdigest()] = rec
        body = struct.pack(">h", h[1]) + data[h[3]:]
        bodies[h[1]][hashlib.sha1(body).hexdigest()] = body
    if args.batches:
        bgroups = collections.defaultdict(list)
        for rec in sets.values():
            if len(rec) <= args.max_file_bytes:
                bgroups[batch_class(rec)].append(rec)
        chosen, _ = pick(bgroups, args.max_batch_files, args.max_batch_bytes, args.per_group)
        named = [(f"{batch_class(r)}-{hashlib.sha1(r).hexdigest()[:12]}", r) for r in chosen]
        write_corpus(args.batches, named)
        print("select: record sets per class: " + ", ".join(
            f"{c}x{sum(1 for n, _ in named if n.startswith(c + '-'))}" for c in sorted(bgroups)))
    if args.produce:
        pgroups = {v: [b for b in d.values() if len(b) <= args.max_file_bytes]
                   for v, d in bodies.items()}
        pgroups = {v: g for v, g in pgroups.items() if g}
        chosen, _ = pick(pgroups, args.max_batch_files, args.max_batch_bytes, args.per_group)
        named = [(f"v{struct.unpack('>h', b[:2])[0]:02d}-{hashlib.sha1(b).hexdigest()[:12]}", b)
                 for b in chosen]
        write_corpus(args.produce, named)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("proxy", help="capture proxy")
    p.add_argument("--port", type=int, required=True, help="listen on 127.0.0.1:PORT")
    p.add_argument("--upstream", required=True, help="broker HOST:PORT")
    p.add_argument("--out", required=True, help="directory for captured frames")
    s = sub.add_parser("select", help="build seed corpora from a capture")
    s.add_argument("--raw", required=True, help="capture directory")
    s.add_argument("--frames", required=True, help="output: frame_decode corpus")
    s.add_argument("--batches", help="output: record_batch corpus")
    s.add_argument("--produce", help="output: produce_body corpus")
    s.add_argument("--max-files", type=int, default=300)
    s.add_argument("--max-bytes", type=int, default=2_000_000)
    s.add_argument("--max-batch-files", type=int, default=120)
    s.add_argument("--max-batch-bytes", type=int, default=1_000_000)
    s.add_argument("--max-file-bytes", type=int, default=64 << 10)
    s.add_argument("--per-group", type=int, default=4)
    args = ap.parse_args()
    {"proxy": cmd_proxy, "select": cmd_select}[args.cmd](args)


if __name__ == "__main__":
    main()
