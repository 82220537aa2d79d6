"""Shared pieces of the crash, soak and restart-time harnesses (scripts/crash_test.py,
scripts/soak.py, scripts/restart_time.py): run a Fjord broker as a child process the
way compat-tests/lib.sh does (same flags, log appended to DATA_DIR.log, FJORD_CACHE and
FJORD_BIN unset), time its start-up with a raw TCP connect and a raw Metadata request,
and read its memory and CPU from /proc.

Only the standard library is used here, so timing the broker's start-up does not depend
on any client library's own bootstrap and back-off behaviour.
"""
import os
import signal
import socket
import struct
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


# ---------------------------------------------------------------------------------------
# Raw Kafka protocol: Metadata v1 (non-flexible, so no tagged fields to encode).

def _kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def metadata_request(topics, correlation_id=1, client_id="fjord-harness"):
    header = struct.pack(">hhi", 3, 1, correlation_id) + _kstr(client_id)
    if topics is None:
        body = struct.pack(">i", -1)  # v1: null array = all topics
    else:
        body = struct.pack(">i", len(topics)) + b"".join(_kstr(t) for t in topics)
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        buf += chunk
    return bytes(buf)


def parse_metadata_v1(data):
    """Returns {"brokers": [(id, host, port)], "controller": id,
    "topics": {name: (error_code, {partition: (error_code, leader)})}}."""
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return vals if len(vals) > 1 else vals[0]

    def string():
        nonlocal pos
        n = take(">h")
        if n < 0:
            return None
        s = data[pos:pos + n].decode()
        pos += n
        return s

    take(">i")  # correlation id
    brokers = []
    for _ in range(take(">i")):
        node = take(">i")
        host = string()
        port = take(">i")
        string()  # rack
        brokers.append((node, host, port))
    controller = take(">i")
    topics = {}
    for _ in range(take(">i")):
        err = take(">h")
        name = string()
        take(">b")  # is_internal
        parts = {}
        for _ in range(take(">i")):
            perr, pid, leader = take(">hii")
            for _ in range(2):  # replicas, isr
                n = take(">i")
                pos += 4 * n
            parts[pid] = (perr, leader)
        topics[name] = (err, parts)
    return {"brokers": brokers, "controller": controller, "topics": topics}


def metadata(port, topics=None, timeout=2.0):
    """One Metadata v1 round trip on a fresh connection; raises on any failure."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(metadata_request(topics))
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        return parse_metadata_v1(_recv_exact(s, size))


def metadata_ok(md, topic=None, partitions=None):
    """True when the broker lists itself and (if asked) the topic with every partition led."""
    if not md["brokers"]:
        return False
    if topic is None:
        return True
    entry = md["topics"].get(topic)
    if entry is None or entry[0] != 0:
        return False
    parts = entry[1]
    if partitions is not None and len(parts) != partitions:
        return False
    return all(err == 0 and leader >= 0 for err, leader in parts.values())


def list_offsets_latest(port, topic, partitions, timeout=2.0):
    """Raw ListOffsets v1 (latest): {partition: high watermark}; raises on any error."""
    header = struct.pack(">hhi", 2, 1, 7) + _kstr("fjord-harness")
    body = struct.pack(">ii", -1, 1) + _kstr(topic) + struct.pack(">i", partitions)
    body += b"".join(struct.pack(">iq", p, -1) for p in range(partitions))
    payload = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        data = _recv_exact(s, size)
    pos = 4  # correlation id
    out = {}
    (ntopics,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(ntopics):
        (n,) = struct.unpack_from(">h", data, pos)
        pos += 2 + n
        (nparts,) = struct.unpack_from(">i", data, pos)
        pos += 4
        for _ in range(nparts):
            part, err, _ts, offset = struct.unpack_from(">ihqq", data, pos)
            pos += 22
            if err:
                raise ValueError(f"ListOffsets error {err} for partition {part}")
            out[part] = offset
    return out


# ---------------------------------------------------------------------------------------
# /proc readings

def proc_status(pid):
    """VmRSS and VmHWM in KiB (None when the process is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, val = line.split(":", 1)
                    out[key] = int(val.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out


def proc_cpu_seconds(pid):
    """utime + stime of the process in seconds (None when gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------

class BrokerError(Exception):
    pass


def exit_on_sigterm():
    """Turn SIGTERM (from `timeout`) into SystemExit so finally blocks stop the broker."""
    def handler(signum, frame):
        raise SystemExit(124)
    signal.signal(signal.SIGTERM, handler)


def kill_leftover(pidfile):
    """SIGKILL the broker recorded in pidfile if it still runs (used after a timeout)."""
    try:
        pid = int(open(pidfile).read())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"fjord" not in f.read():
                return
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


class Broker:
    """One broker process on a fixed port and data dir; start() may be called again after
    the process is gone, reusing both (like lib.sh's restart_broker)."""

    def __init__(self, binary, data_dir, port=None, extra_args=()):
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.log_path = data_dir + ".log"
        self.proc = None
        self.started_at = None
        self.start_info = {}
        self.bootstrap = f"127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def mark(self, text):
        """A marker line in the broker log, so excerpts can be tied to harness events."""
        with open(self.log_path, "a") as f:
            f.write(f"=== harness {time.strftime('%H:%M:%S')} {text}\n")

    def start(self, topic=None, partitions=None, timeout=30.0):
        """Spawn the broker and wait until it accepts a TCP connection and then answers a
        Metadata request (listing topic with all partitions led, if given). Returns
        (seconds to first accepted connection, seconds to first good metadata), both
        measured from just before the spawn."""
        if self.alive():
            raise BrokerError("broker already running")
        env = dict(os.environ)
        env.pop("FJORD_CACHE", None)
        env.pop("FJORD_BIN", None)
        env.setdefault("RUST_LOG", "info")
        cmd = [self.binary, "--listeners", f"PLAINTEXT://127.0.0.1:{self.port}",
               "--log-dirs", self.data_dir, *self.extra_args]
        log = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)
        log.close()
        self.started_at = t0
        with open(self.data_dir + ".pid", "w") as f:  # for the shell wrapper's cleanup
            f.write(f"{self.proc.pid}\n")
        deadline = t0 + timeout
        t_conn = None
        while t_conn is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
                t_conn = time.monotonic() - t0
            except OSError:
                if self.proc.poll() is not None:
                    raise BrokerError(f"broker exited with {self.proc.returncode} during start-up")
                if time.monotonic() > deadline:
                    raise BrokerError(f"broker did not accept a connection within {timeout}s")
                time.sleep(0.001)
        last = None
        # What the broker answered before it was ready, for the report: attempts, and the
        # first not-ready answer with the time it took.
        self.start_info = {"metadata_attempts": 0, "first_not_ready": None}
        while True:
            ta = time.monotonic()
            try:
                self.start_info["metadata_attempts"] += 1
                md = metadata(self.port, [topic] if topic else None,
                              timeout=max(2.0, deadline - ta))
                if metadata_ok(md, topic, partitions):
                    return t_conn, time.monotonic() - t0
                last = md
            except (OSError, struct.error, ValueError) as e:
                last = e
            if self.start_info["first_not_ready"] is None:
                self.start_info["first_not_ready"] = (
                    f"{last!r:.200} after {(time.monotonic() - ta) * 1000:.1f} ms")
            if self.proc.poll() is not None:
                raise BrokerError(f"broker exited with {self.proc.returncode} during start-up")
            if time.monotonic() > deadline:
                raise BrokerError(f"no good metadata within {timeout}s; last: {last!r}")
            time.sleep(0.002)

    def kill(self, sig=signal.SIGKILL, timeout=30.0):
        """Signal the broker and wait for it to exit; returns (seconds to exit, returncode)."""
        if not self.alive():
            raise BrokerError("broker is not running")
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise BrokerError(f"broker did not exit within {timeout}s of signal {sig}; SIGKILLed")
        return time.monotonic() - t0, rc

    def stop(self, timeout=30.0):
        return self.kill(signal.SIGTERM, timeout)

    def ensure_dead(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 256 * 1024))
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_grep(self, words=("ERROR", "WARN", "panic"), limit=40):
        """The last `limit` log lines containing any of words, and how many there were."""
        out = []
        try:
            with open(self.log_path, errors="replace") as f:
                for line in f:
                    if any(w in line for w in words):
                        out.append(line.rstrip())
        except FileNotFoundError:
            pass
        return out[-limit:], len(out)
