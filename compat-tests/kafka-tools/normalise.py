#!/usr/bin/env python3
"""Normalises Kafka CLI tool runs for compat-tests/kafka-tools.sh, so Fjord's and Kafka's can be
compared line by line. For each run, reads its stdout, stderr and exit code from RUN.out,
RUN.err and RUN.rc and writes the text to compare to RUN.norm:

    normalise.py [MODE...] -- RUN BOOTSTRAP LOGDIR [RUN BOOTSTRAP LOGDIR...]

Always, on every line: timestamps of log lines, the broker's own address (BOOTSTRAP) and log
dir (LOGDIR), topic ids, group member ids and UUIDs become placeholders; runs of spaces
(column padding, which follows the widest value) become one; transient client warnings that
depend on timing (metadata not yet propagated) are dropped. MODEs add:

    sort              sort the lines of stdout and of stderr (tables printed in hash-map order)
    configs           TopicCommand's `Configs: a=1,b=2` becomes one sorted `Config: k=v` line each
    cols=A,B          in tab-separated tables, the values of columns A and B become `*`
    epoch             `Epoch: N` of kafka-features becomes `Epoch: *`
    logdirs           kafka-log-dirs' JSON: partitions sorted by name, one line each
    perf-producer     only the "N records sent" count of kafka-producer-perf-test
    perf-consumer     only data.consumed.in.nMsg of kafka-consumer-perf-test
"""
import json
import re
import sys

sep = sys.argv.index("--")
modes, runs = sys.argv[1:sep], sys.argv[sep + 1:]
flags = {m.split("=", 1)[0]: (m.split("=", 1)[1] if "=" in m else "") for m in modes}


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Client log lines whose presence depends on how fast metadata propagates, not on behaviour:
# Kafka answers UNKNOWN_TOPIC_OR_PARTITION / LEADER_NOT_AVAILABLE for a moment after a create.
NOISE = [
    re.compile(r"reported a recoverable issue with correlation id \d+ : \{.*=(UNKNOWN_TOPIC_OR_PARTITION|LEADER_NOT_AVAILABLE)"),
    re.compile(r"Error while fetching metadata with correlation id \d+ : \{.*=(UNKNOWN_TOPIC_OR_PARTITION|LEADER_NOT_AVAILABLE)"),
]


def common(line, bootstrap, logdir):
    for b in filter(None, bootstrap.split(",")):
        line = line.replace(b, "BOOTSTRAP")
    if logdir:
        line = line.replace(logdir, "LOGDIR")
    line = re.sub(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]", "[TIME]", line)
    line = re.sub(r"(TopicId: )\S+", r"\1*", line)
    # Classic member ids are client.id-UUID; KIP-848 ones are 22-char base64 UUIDs.
    line = re.sub(r"(\S*?)-" + UUID, r"\1-MEMBER", line)
    line = re.sub(UUID, "UUID", line)
    # Kafka's base64 Uuids (KIP-848 member ids): a whole 22-character token with upper- and
    # lower-case letters, which no name used here has.
    line = re.sub(r"(?<!\S)(?=\S*[A-Z])(?=\S*[a-z])[A-Za-z0-9_-]{22}(?!\S)", "UUID22", line)
    line = re.sub(r" {2,}", " ", line)
    line = re.sub(r" *\t *", "\t", line)
    return line.rstrip()


def split_configs(lines):
    res = []
    for line in lines:
        m = re.match(r"^(.*)\tConfigs: ?(.*)$", line)
        if not m:
            res.append(line)
            continue
        res.append(m.group(1) + "\tConfigs:")
        items = [i for i in re.split(r",(?=[\w.]+=)", m.group(2)) if i]
        res.extend("\tConfig: " + i for i in sorted(items))
    return res


def blank_columns(lines, names):
    res, idx = [], None
    for line in lines:
        cells = line.split("\t")
        if any(c.strip() in names for c in cells):
            idx = {i for i, c in enumerate(cells) if c.strip() in names}
            res.append(line)
        elif idx and len(cells) > max(idx):
            res.append("\t".join("*" if i in idx else c for i, c in enumerate(cells)))
        else:
            res.append(line)
    return res


def logdirs(lines):
    res = []
    for line in lines:
        if not line.startswith("{"):
            res.append(line)
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            res.append(line)
            continue
        res.append("version %s" % doc.get("version"))
        for b in doc.get("brokers", []):
            for d in b.get("logDirs", []):
                res.append("broker %s logDir %s error %s" % (b.get("broker"), d.get("logDir"), d.get("error")))
                for p in sorted(d.get("partitions", []), key=lambda p: p.get("partition", "")):
                    res.append("  " + " ".join("%s=%s" % (k, p[k]) for k in sorted(p)))
    return res


def normalise(run, bootstrap, logdir):
    out = read(run + ".out")
    err = [l for l in read(run + ".err") if not any(n.search(l) for n in NOISE)]
    rc = (read(run + ".rc") or ["?"])[0].strip()

    if "perf-producer" in flags:
        out = [re.sub(r"^(\d+) records sent.*", r"\1 records sent", l) for l in out if re.match(r"^\d+ records sent", l)]
        err = [l for l in err if "ERROR" in l or "Exception" in l]
    if "perf-consumer" in flags:
        header, rows = None, []
        for l in out:
            cells = [c.strip() for c in l.split(",")]
            if "data.consumed.in.nMsg" in cells:
                header = cells
            elif header and len(cells) == len(header):
                rows.append("data.consumed.in.nMsg=" + cells[header.index("data.consumed.in.nMsg")])
        out = rows
        err = [l for l in err if "ERROR" in l or "Exception" in l]
    if "logdirs" in flags:
        out = logdirs(out)

    out = [common(l, bootstrap, logdir) for l in out]
    err = [common(l, bootstrap, logdir) for l in err]
    if "configs" in flags:
        out = split_configs(out)
    if "cols" in flags:
        names = set(flags["cols"].split(","))
        out = blank_columns(out, names)
    if "epoch" in flags:
        out = [re.sub(r"Epoch: \d+", "Epoch: *", l) for l in out]
    if "sort" in flags:
        out, err = sorted(out), sorted(err)

    with open(run + ".norm", "w", encoding="utf-8") as f:
        f.write("".join(l + "\n" for l in out) + "--- stderr\n" + "".join(l + "\n" for l in err)
                + "--- exit code " + rc + "\n")


for i in range(0, len(runs), 3):
    normalise(*runs[i:i + 3])
