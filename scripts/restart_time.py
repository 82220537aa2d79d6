"""Restart time with data: fill a broker with --mb megabytes of 1 KiB records through a
fast idempotent confluent-kafka producer (acks=all, large batches), stop it with SIGTERM
(time to exit, exit code must be 0), start it again on the same data dir and measure
process start -> first accepted connection, -> first Metadata answer listing the topic
with every partition led (raw protocol), -> first record fetched from the middle of
partition 0. Then check that the record count equals what was acknowledged (watermarks,
and by reading everything back unless --no-full-scan).

Records go round-robin to the partitions, so offset k of partition p holds seq k*P + p;
the first 8 bytes of each value are that seq, which the middle fetch and the full scan check.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOPIC = "bulk"


def now():
    return time.monotonic()


def du_bytes(path):
    try:
        out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[0])
    except (subprocess.CalledProcessError, ValueError, IndexError):
        return None


def mib(kib):
    return f"{kib / 1024:.1f} MiB" if kib is not None else "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--mb", type=float, default=1024, help="megabytes (10^6) of values to write")
    ap.add_argument("--value-bytes", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--no-full-scan", action="store_true")
    ap.add_argument("--broker-args", default="")
    ap.add_argument("--json")
    args = ap.parse_args()
    harness.exit_on_sigterm()

    n = int(args.mb * 1e6 / args.value_bytes)
    P = args.partitions
    broker = harness.Broker(args.broker_bin, args.data_dir,
                            extra_args=args.broker_args.split() if args.broker_args else [])
    out = {"records": n, "value_bytes": args.value_bytes, "partitions": P}
    problems = []
    try:
        t_conn, t_meta = broker.start()
        out["fresh_start_accept_ms"] = round(t_conn * 1000, 1)
        print(f"restart-time: broker pid {broker.pid} on {broker.bootstrap}, data {args.data_dir}")
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(TOPIC, P, 1)])[TOPIC].result(timeout=30)
        del admin

        # ---- fill
        block = os.urandom(args.value_bytes)
        acked = [0] * P
        failed = []

        def cb(err, msg):
            if err is None:
                acked[msg.partition()] += 1
            elif len(failed) < 10:
                failed.append(str(err))
            else:
                failed.append(None)
        p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                      "acks": "all", "linger.ms": 20, "batch.size": 1000000,
                      "queue.buffering.max.kbytes": 1048576,
                      "queue.buffering.max.messages": 1000000, "compression.type": "none"})
        print(f"restart-time: writing {n} records x {args.value_bytes} B "
              f"({n * args.value_bytes / 1e6:.0f} MB) to {P} partitions")
        sys.stdout.flush()
        t0 = now()
        last_report = t0
        for seq in range(n):
            v = seq.to_bytes(8, "big") + block[8:]
            while True:
                try:
                    p.produce(TOPIC, value=v, partition=seq % P, on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.05)
            if seq % 10000 == 0:
                p.poll(0)
                if now() - last_report > 10:
                    last_report = now()
                    print(f"  {seq} produced, {sum(acked)} acknowledged, "
                          f"broker RSS {mib(harness.proc_status(broker.pid)['VmRSS'])}")
                    sys.stdout.flush()
        left = p.flush(300)
        t_fill = now() - t0
        total_acked = sum(acked)
        if left or failed:
            problems.append(f"{left} undelivered, {len(failed)} failed: {failed[:3]}")
        del p
        st = harness.proc_status(broker.pid)
        out.update({"acknowledged": total_acked, "fill_seconds": round(t_fill, 1),
                    "fill_rec_s": round(total_acked / t_fill),
                    "fill_mb_s": round(total_acked * args.value_bytes / t_fill / 1e6, 1),
                    "rss_before_stop_mib": round(st["VmRSS"] / 1024, 1),
                    "cpu_fill_s": round(harness.proc_cpu_seconds(broker.pid), 1)})
        print(f"filled: {total_acked} acknowledged in {t_fill:.1f} s ({out['fill_rec_s']} rec/s, "
              f"{out['fill_mb_s']} MB/s); broker RSS {mib(st['VmRSS'])}, peak {mib(st['VmHWM'])}")

        # ---- stop
        broker.mark("SIGTERM after fill")
        t_stop, rc = broker.stop(timeout=300)
        out["shutdown_ms"] = round(t_stop * 1000, 1)
        out["exit_code"] = rc
        out["disk_bytes"] = du_bytes(args.data_dir)
        print(f"SIGTERM -> exit: {t_stop*1000:.0f} ms, exit code {rc}; data dir "
              f"{out['disk_bytes']/1e6:.0f} MB on disk "
              f"({out['disk_bytes'] / (total_acked * args.value_bytes):.2f}x the values)")
        if rc != 0:
            problems.append(f"exit code {rc} on SIGTERM")

        # ---- restart
        broker.mark("restart")
        t_conn, t_meta = broker.start(TOPIC, P, timeout=300)
        spawn = broker.started_at
        out["restart_accept_ms"] = round(t_conn * 1000, 1)
        out["restart_metadata_ms"] = round(t_meta * 1000, 1)
        print(f"restart: spawn -> accept {t_conn*1000:.1f} ms, -> metadata {t_meta*1000:.1f} ms "
              f"({broker.start_info})")
        out["restart_metadata_probe"] = broker.start_info
        sys.stdout.flush()
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "restart-time",
                      "enable.auto.commit": False, "enable.partition.eof": True})
        lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=30, cached=False)
        mid = (lo + hi) // 2
        t_assign = now()
        c.assign([TopicPartition(TOPIC, 0, mid)])
        msg = None
        while now() - t_assign < 60:
            msg = c.poll(1.0)
            if msg is not None and not msg.error():
                break
        t_first = now()
        if msg is None or msg.error():
            problems.append(f"no record from the middle of partition 0: {msg and msg.error()}")
        else:
            seq = int.from_bytes(msg.value()[:8], "big")
            if msg.offset() != mid or seq != mid * P:
                problems.append(f"middle fetch: offset {msg.offset()} seq {seq}, expected "
                                f"offset {mid} seq {mid * P}")
        out["restart_first_middle_record_ms"] = round((t_first - spawn) * 1000, 1)
        out["middle_fetch_only_ms"] = round((t_first - t_assign) * 1000, 1)
        print(f"restart: spawn -> first record at offset {mid} of partition 0: "
              f"{(t_first - spawn)*1000:.1f} ms (the fetch itself, after assign: "
              f"{(t_first - t_assign)*1000:.1f} ms)")
        c.close()
        st = harness.proc_status(broker.pid)
        out["rss_after_restart_mib"] = round(st["VmRSS"] / 1024, 1)

        # ---- count
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "restart-time",
                      "enable.auto.commit": False, "enable.partition.eof": True,
                      "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760})
        marks = {q: c.get_watermark_offsets(TopicPartition(TOPIC, q), timeout=30, cached=False)
                 for q in range(P)}
        counted = sum(h - lw for lw, h in marks.values())
        out["watermark_count"] = counted
        print(f"count by watermarks: {counted} (acknowledged {total_acked})")
        if counted != total_acked:
            problems.append(f"watermarks count {counted} records, {total_acked} were acknowledged")
        for q in range(P):
            if marks[q][1] - marks[q][0] != acked[q]:
                problems.append(f"partition {q}: {marks[q][1] - marks[q][0]} records, "
                                f"{acked[q]} acknowledged")
        if not args.no_full_scan:
            t = now()
            c.assign([TopicPartition(TOPIC, q, marks[q][0]) for q in range(P)])
            done = set(q for q in range(P) if marks[q][1] == marks[q][0])
            read = 0
            bad = 0
            while len(done) < P and now() - t < 600:
                for m in c.consume(num_messages=10000, timeout=1.0):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            done.add(m.partition())
                        else:
                            problems.append(f"scan: {m.error()}")
                        continue
                    read += 1
                    if int.from_bytes(m.value()[:8], "big") != m.offset() * P + m.partition():
                        bad += 1
            t_scan = now() - t
            out.update({"scan_records": read, "scan_bad": bad, "scan_seconds": round(t_scan, 1),
                        "rss_after_scan_mib": round(harness.proc_status(broker.pid)["VmRSS"] / 1024, 1)})
            print(f"full scan: {read} records in {t_scan:.1f} s "
                  f"({read * args.value_bytes / t_scan / 1e6:.0f} MB/s), {bad} with the wrong seq; "
                  f"broker RSS afterwards {out['rss_after_scan_mib']} MiB")
            if read != total_acked or bad:
                problems.append(f"full scan read {read} records ({bad} wrong), "
                                f"{total_acked} were acknowledged")
        c.close()
        t_stop, rc = broker.stop(timeout=300)
        out["second_shutdown_ms"] = round(t_stop * 1000, 1)
        if rc != 0:
            problems.append(f"exit code {rc} on the second SIGTERM")
    except (harness.BrokerError, Exception) as e:  # noqa: BLE001
        import traceback
        problems.append(f"{e!r}\n{traceback.format_exc()}")
    finally:
        broker.ensure_dead()
    out["problems"] = problems
    print()
    print("==== restart-time summary")
    for k, v in out.items():
        if k != "problems":
            print(f"{k:32s} {v}")
    for pr in problems:
        print(f"PROBLEM: {pr}")
    print("RESULT: " + ("FAIL" if problems else "PASS"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
