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
