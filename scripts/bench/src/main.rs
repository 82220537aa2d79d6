//! `fjord-bench`: produce / consume / end-to-end latency benchmarks for a Kafka-wire broker,
//! and a start-up timer (`ready`), driven through librdkafka (the client most non-Java
//! users run) so the figures reflect what a real client sees rather than a hand-rolled
//! protocol loop.
//!
//! Results go to stdout as `key=value` lines so `scripts/bench.sh` can collect them without
//! a JSON parser; progress and a human summary go to stderr.
//!
//! Every mode is bounded: a fixed record count and a wall-clock timeout. Only loopback
//! brokers are accepted, because this tool is meant to load a broker on the same machine.

use std::io::Write;
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};
use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[derive(Parser)]
#[command(
    name = "fjord-bench",
    about = "Kafka-wire broker benchmark (librdkafka client)"
)]
struct Cli {
    /// Bootstrap broker; must be a loopback address.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Hard wall-clock limit for the whole run, in seconds.
    #[arg(long, global = true, default_value_t = 300)]
    timeout_secs: u64,
    /// Extra librdkafka setting for every client, e.g. -X debug=fetch (repeatable; applied
    /// last, so it can override the benchmark's own choices).
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE")]
    client_config: Vec<String>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Produce N records as fast as the client allows; throughput and send->ack latency.
    Produce(ProduceArgs),
    /// Read a whole topic from the beginning (manual assignment, no group); throughput.
    Consume(ConsumeArgs),
    /// Fixed-rate producer plus a consumer; latency from send to receive.
    E2e(E2eArgs),
    /// Wait for a broker that is (re)starting: when it first accepts a TCP connection and
    /// when a librdkafka client first gets a Metadata answer, as wall-clock timestamps.
    /// Start it before the broker and spawn the broker once it has printed
    /// `ready.probing_unix_us`: then its own start-up does not delay what it measures.
    Ready(ReadyArgs),
}

#[derive(Args)]
struct ProduceArgs {
    #[arg(long)]
    topic: String,
    /// Number of records.
    #[arg(long, short = 'n')]
    records: u64,
    /// Value size in bytes.
    #[arg(long, short = 's')]
    size: usize,
    /// Partitions to create the topic with (an existing topic is used as it is).
    #[arg(long, short = 'k', default_value_t = 6)]
    partitions: i32,
    /// `1` or `all` (`0` is accepted but no ack latency is then meaningful).
    #[arg(long, default_value = "1")]
    acks: String,
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: u32,
}

#[derive(Args)]
struct ConsumeArgs {
    #[arg(long)]
    topic: String,
    /// Stop after this many records even if the topic holds more (0 = whole topic).
    #[arg(long, default_value_t = 0)]
    max_records: u64,
}

#[derive(Args)]
struct E2eArgs {
    /// A fresh topic; created here, so latency is not skewed by reading old data.
    #[arg(long)]
    topic: String,
    #[arg(long, short = 'k', default_value_t = 6)]
    partitions: i32,
    /// Messages per second the producer aims for.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Sending time in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Value size in bytes (at least 8: the send timestamp lives in the first 8).
    #[arg(long, short = 's', default_value_t = 1024)]
    size: usize,
    #[arg(long, default_value = "1")]
    acks: String,
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    /// Messages sent in the first this-many seconds are not counted, in either the ack or
    /// the end-to-end figures: they pay for connection setup and metadata lookups, which is
    /// not steady-state latency.
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
}

#[derive(Args)]
struct ReadyArgs {
    /// Pause between attempts in milliseconds; it bounds how late an answer is noticed.
    #[arg(long, default_value_t = 1)]
    poll_ms: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    check_loopback(&cli.brokers)?;
    let mut extra = Vec::new();
    for kv in &cli.client_config {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("-X {kv:?}: expected key=value"))?;
        extra.push((k.to_string(), v.to_string()));
    }
    EXTRA_CONFIG.set(extra).expect("set once");
    let deadline = Instant::now() + Duration::from_secs(cli.timeout_secs);
    match &cli.mode {
        Mode::Produce(a) => produce(&cli.brokers, a, deadline),
        Mode::Consume(a) => consume(&cli.brokers, a, deadline),
        Mode::E2e(a) => e2e(&cli.brokers, a, deadline),
        Mode::Ready(a) => ready(&cli.brokers, a, deadline),
    }
}

/// Refuse anything but loopback so a typo cannot point a load generator at another host.
fn check_loopback(brokers: &str) -> Result<()> {
    for b in brokers.split(',') {
        let addrs: Vec<_> = b
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve broker {b:?} (expected host:port)"))?
            .collect();
        ensure!(!addrs.is_empty(), "broker {b:?} resolves to nothing");
        for a in addrs {
            let ok = match a.ip() {
                IpAddr::V4(ip) => ip.is_loopback(),
                IpAddr::V6(ip) => ip.is_loopback(),
            };
            ensure!(
                ok,
                "broker {b:?} resolves to {a}, which is not loopback; refusing"
            );
        }
    }
    Ok(())
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// `-X` settings; a global because every client constructor needs them.
static EXTRA_CONFIG: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Settings shared by every client: bounded retries and timeouts, and quiet logs.
fn base_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        // Fjord advertises 127.0.0.1; forcing v4 avoids a pointless ::1 attempt.
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "30000")
        .set("log_level", "4");
    c
}

/// Apply `-X` overrides; called on each finished config so they win over our defaults.
fn with_extra(mut c: ClientConfig) -> ClientConfig {
    for (k, v) in EXTRA_CONFIG.get().map(Vec::as_slice).unwrap_or_default() {
        c.set(k, v);
    }
    c
}

fn acks_value(acks: &str) -> Result<&'static str> {
    Ok(match acks {
        "0" => "0",
        "1" => "1",
        "all" | "-1" => "all",
        other => bail!("--acks must be 0, 1 or all, not {other:?}"),
    })
}

fn producer_config(
    brokers: &str,
    acks: &str,
    linger_ms: u32,
    batch_size: u32,
) -> Result<ClientConfig> {
    let mut c = base_config(brokers);
    c.set("acks", acks_value(acks)?)
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", batch_size.to_string())
        .set("compression.type", "none")
        // Plain at-least-once producer, the common deployment; idempotence would add an
        // InitProducerId round trip and sequence checks that are a separate question.
        .set("enable.idempotence", "false")
        // Bounded: a message that cannot be delivered in a minute counts as an error
        // instead of hanging the run.
        .set("message.timeout.ms", "60000");
    Ok(with_extra(c))
}

/// Create `topic` with `partitions` partitions; an existing topic is fine.
fn create_topic(brokers: &str, topic: &str, partitions: i32, deadline: Instant) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = with_extra(base_config(brokers))
        .create()
        .context("creating admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let opts =
        AdminOptions::new().request_timeout(Some(remaining(deadline).min(Duration::from_secs(30))));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = rt
        .block_on(admin.create_topics([&new], &opts))
        .context("CreateTopics request failed")?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                eprintln!("note: topic {topic} already exists; using it as it is");
            }
            Err((name, code)) => bail!("CreateTopics {name}: {code}"),
        }
    }
    Ok(())
}

/// Random-looking bytes so neither the broker nor the filesystem can compress them.
/// xorshift64* is plenty: the point is incompressibility, not cryptographic quality.
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Latencies are recorded in microseconds, up to an hour, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// This process's CPU time (user + system, all threads) in seconds, from /proc/self/stat.
/// Client and broker share two cores, so the client's share explains many broker figures.
fn own_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // USER_HZ is 100 on every Linux architecture Rust targets.
    (ticks(11) + ticks(12)) / 100.0
}

/// Emit one machine-readable result line.
fn out(key: &str, value: impl std::fmt::Display) {
    println!("{key}={value}");
}

/// Delivery callbacks run on the ThreadedProducer's polling thread, which does nothing but
/// wait for events, so the callback time is close to the moment the ack arrived.
struct LatencyContext {
    start: Instant,
    /// Messages sent before this many nanoseconds after `start` are delivered and counted
    /// but kept out of the histogram (e2e's warm-up: connection set-up and metadata lookups
    /// are not steady-state latency, and the e2e histogram leaves them out too).
    record_from_ns: u64,
    hist: Mutex<Histogram<u64>>,
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    /// Send time as nanoseconds since `start`: a plain integer avoids a heap allocation
    /// per message, which would show up at millions of messages per second.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_at_ns: usize) {
        match result {
            Ok(_) => {
                let now = self.start.elapsed().as_nanos() as u64;
                let us = now.saturating_sub(sent_at_ns as u64) / 1000;
                if sent_at_ns as u64 >= self.record_from_ns {
                    self.hist.lock().unwrap().saturating_record(us.max(1));
                }
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap();
                if first.is_none() {
                    *first = Some(e.to_string());
                }
            }
        }
    }
}

fn produce(brokers: &str, a: &ProduceArgs, deadline: Instant) -> Result<()> {
    ensure!(
        a.records > 0 && a.size > 0 && a.partitions > 0,
        "records, size and partitions must be > 0"
    );
    create_topic(brokers, &a.topic, a.partitions, deadline)?;
    let partitions = partition_count(brokers, &a.topic, deadline)?;

    let ctx = LatencyContext {
        start: Instant::now(),
        record_from_ns: 0,
        hist: Mutex::new(new_histogram()),
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    };
    let producer: ThreadedProducer<LatencyContext> =
        producer_config(brokers, &a.acks, a.linger_ms, a.batch_size)?
            .create_with_context(ctx)
            .context("creating producer")?;

    // Values are windows into a 4 MiB random pool at pseudo-random offsets, with the
    // record number stamped in front, so no two values are equal and the data is
    // incompressible without generating N*S random bytes up front.
    let pool = random_bytes((4 << 20) + a.size, 0x9E37_79B9_7F4A_7C15);
    let span = pool.len() - a.size;
    let mut value = vec![0u8; a.size];

    let started = Instant::now();
    let mut queue_full_waits = 0u64;
    for i in 0..a.records {
        let off = (i.wrapping_mul(0x9E37_79B9) as usize) % span;
        value.copy_from_slice(&pool[off..off + a.size]);
        let stamp = i.to_le_bytes();
        let n = stamp.len().min(a.size);
        value[..n].copy_from_slice(&stamp[..n]);
        // Round-robin partitions: an even spread, so the consumer benchmark reads all
        // partitions equally and no partition is a hidden hotspot.
        let partition = (i % partitions as u64) as i32;
        let mut record = BaseRecord::with_opaque_to(&a.topic, 0usize)
            .partition(partition)
            .payload(&value[..]);
        loop {
            record.delivery_opaque = producer.context().start.elapsed().as_nanos() as usize;
            match producer.send::<[u8], [u8]>(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // The local queue is full: the broker is the bottleneck. Wait a little
                    // for deliveries to drain it rather than spinning.
                    record = r;
                    queue_full_waits += 1;
                    ensure!(
                        Instant::now() < deadline,
                        "timed out with {i} of {} records sent",
                        a.records
                    );
                    thread::sleep(Duration::from_micros(500));
                }
                Err((e, _)) => bail!("send failed at record {i}: {e}"),
            }
        }
        if i % 100_000 == 0 && i > 0 {
            eprint!("\rproduce {}: {i}/{} sent", a.topic, a.records);
            let _ = std::io::stderr().flush();
        }
    }
    producer.flush(remaining(deadline)).with_context(|| {
        format!(
            "flush timed out; {} records unacknowledged",
            producer.in_flight_count()
        )
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!();

    let ctx = producer.context();
    let ok = ctx.ok.load(Ordering::Relaxed);
    let failed = ctx.failed.load(Ordering::Relaxed);
    let h = ctx.hist.lock().unwrap();
    let bytes = ok as f64 * a.size as f64;
    out("produce.records", ok);
    out("produce.errors", failed);
    out("produce.bytes", bytes as u64);
    out("produce.elapsed_s", format!("{elapsed:.3}"));
    out(
        "produce.records_per_s",
        format!("{:.0}", ok as f64 / elapsed),
    );
    out("produce.mb_per_s", format!("{:.2}", bytes / elapsed / 1e6));
    out("produce.lat_p50_ms", format!("{:.3}", ms(&h, 0.50)));
    out("produce.lat_p99_ms", format!("{:.3}", ms(&h, 0.99)));
    out(
        "produce.lat_max_ms",
        format!("{:.3}", h.max() as f64 / 1000.0),
    );
    out("produce.queue_full_waits", queue_full_waits);
    out("produce.client_cpu_s", format!("{:.1}", own_cpu_secs()));
    eprintln!(
        "produce {}: {ok} records x {} B in {elapsed:.2}s = {:.0} rec/s, {:.1} MB/s; ack latency p50 {:.2} ms p99 {:.2} ms; {failed} errors",
        a.topic,
        a.size,
        ok as f64 / elapsed,
        bytes / elapsed / 1e6,
        ms(&h, 0.5),
        ms(&h, 0.99)
    );
    if failed > 0 {
        bail!(
            "{failed} of {} records were not delivered; first error: {}",
            a.records,
            ctx.first_error.lock().unwrap().as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

/// A consumer that is only ever given explicit assignments: Fjord has no group
/// coordinator, and the benchmark wants the raw fetch path anyway.
fn assign_only_consumer(brokers: &str) -> Result<BaseConsumer> {
    let mut c = base_config(brokers);
    // librdkafka refuses assign() without a group.id even though nothing here uses the
    // group; a unique name keeps runs from ever sharing state on a broker that has groups.
    c.set("group.id", format!("fjord-bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Data is never compressed here and the broker computes CRCs already.
        .set("check.crcs", "false")
        // librdkafka (>= 2.4) stops fetching a partition for fetch.queue.backoff.ms (1 s by
        // default) whenever its local queue passes queued.min.messages. Small records hit
        // that threshold constantly, and the resulting one-second stalls made 100-byte
        // consume figures swing 2-4x between identical runs while the broker sat idle.
        // That measures the client's back-pressure, not the broker, so keep it short.
        .set("fetch.queue.backoff.ms", "10");
    with_extra(c).create().context("creating consumer")
}

fn partition_count(brokers: &str, topic: &str, deadline: Instant) -> Result<i32> {
    let consumer = assign_only_consumer(brokers)?;
    // A freshly created topic can take a moment to appear in Metadata.
    loop {
        let md = consumer
            .fetch_metadata(
                Some(topic),
                remaining(deadline).min(Duration::from_secs(10)),
            )
            .context("Metadata request failed")?;
        if let Some(t) = md.topics().iter().find(|t| t.name() == topic)
            && t.error().is_none()
            && !t.partitions().is_empty()
        {
            return Ok(t.partitions().len() as i32);
        }
        ensure!(
            Instant::now() < deadline,
            "topic {topic} did not appear in Metadata"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn consume(brokers: &str, a: &ConsumeArgs, deadline: Instant) -> Result<()> {
    let partitions = partition_count(brokers, &a.topic, deadline)?;
    let consumer = assign_only_consumer(brokers)?;

    // Stop at the high watermarks seen now: reading "until nothing comes" would make the
    // end of the run depend on a fetch timeout instead of on the data.
    let mut end = Vec::with_capacity(partitions as usize);
    let mut tpl = TopicPartitionList::new();
    let mut expected = 0u64;
    for p in 0..partitions {
        let (lo, hi) = consumer
            .fetch_watermarks(
                &a.topic,
                p,
                remaining(deadline).min(Duration::from_secs(10)),
            )
            .with_context(|| format!("ListOffsets for {}/{p}", a.topic))?;
        end.push(hi);
        expected += (hi - lo).max(0) as u64;
        if hi > lo {
            tpl.add_partition_offset(&a.topic, p, Offset::Offset(lo))?;
        }
    }
    if a.max_records > 0 {
        expected = expected.min(a.max_records);
    }
    ensure!(expected > 0, "topic {} is empty", a.topic);
    consumer.assign(&tpl).context("assign")?;

    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut done_partitions = 0;
    let mut remaining_parts = tpl.count();
    while records < expected && remaining_parts > 0 {
        ensure!(
            Instant::now() < deadline,
            "timed out after {records} of {expected} records ({done_partitions} partitions finished)"
        );
        match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => continue,
            Some(Err(e)) => bail!("consume error after {records} records: {e}"),
            Some(Ok(m)) => {
                records += 1;
                bytes += m.payload_len() as u64;
                // Records are counted, not offsets, but a partition is finished once its
                // last offset arrives; it guards against waiting forever on a gap.
                if m.offset() + 1 == end[m.partition() as usize] {
                    done_partitions += 1;
                    remaining_parts -= 1;
                }
                if records % 200_000 == 0 {
                    eprint!("\rconsume {}: {records}/{expected}", a.topic);
                    let _ = std::io::stderr().flush();
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!();
    out("consume.records", records);
    out("consume.expected", expected);
    out("consume.bytes", bytes);
    out("consume.elapsed_s", format!("{elapsed:.3}"));
    out(
        "consume.records_per_s",
        format!("{:.0}", records as f64 / elapsed),
    );
    out(
        "consume.mb_per_s",
        format!("{:.2}", bytes as f64 / elapsed / 1e6),
    );
    out("consume.client_cpu_s", format!("{:.1}", own_cpu_secs()));
    eprintln!(
        "consume {}: {records} records, {bytes} bytes in {elapsed:.2}s = {:.0} rec/s, {:.1} MB/s",
        a.topic,
        records as f64 / elapsed,
        bytes as f64 / elapsed / 1e6
    );
    ensure!(
        records >= expected,
        "read {records} records but the watermarks promised {expected}"
    );
    Ok(())
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

fn e2e(brokers: &str, a: &E2eArgs, deadline: Instant) -> Result<()> {
    ensure!(a.size >= 8, "--size must be at least 8 bytes");
    ensure!(
        a.rate > 0 && a.duration_secs > 0.0,
        "rate and duration must be > 0"
    );
    create_topic(brokers, &a.topic, a.partitions, deadline)?;
    let partitions = partition_count(brokers, &a.topic, deadline)?;
    let total = (a.rate as f64 * a.duration_secs).round() as u64;

    // Consumer first, assigned at offset 0 of the fresh topic, so nothing is missed and
    // nothing old is read. It runs on its own thread to receive while we send.
    let consumer = assign_only_consumer(brokers)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&a.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assign")?;
    // Sender and receiver share a clock: both stamp with the wall clock of this machine.
    let warmup_until = unix_nanos() + (a.warmup_secs * 1e9) as u64;
    let receiver = thread::spawn(move || -> Result<(Histogram<u64>, u64)> {
        let mut h = new_histogram();
        let mut received = 0u64;
        while received < total {
            ensure!(
                Instant::now() < deadline,
                "e2e: timed out after receiving {received} of {total}"
            );
            match consumer.poll(Duration::from_millis(200)) {
                None | Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => bail!("e2e consume error: {e}"),
                Some(Ok(m)) => {
                    let now = unix_nanos();
                    received += 1;
                    let payload = m.payload().unwrap_or_default();
                    ensure!(payload.len() >= 8, "e2e: short payload");
                    let sent = u64::from_le_bytes(payload[..8].try_into().unwrap());
                    if sent >= warmup_until {
                        h.saturating_record((now.saturating_sub(sent) / 1000).max(1));
                    }
                }
            }
        }
        Ok((h, received))
    });

    let producer: ThreadedProducer<LatencyContext> =
        producer_config(brokers, &a.acks, a.linger_ms, 1_000_000)?
            .create_with_context(LatencyContext {
                start: Instant::now(),
                // The same warm-up cut as the receiver's, on this context's clock.
                record_from_ns: warmup_until.saturating_sub(unix_nanos()),
                hist: Mutex::new(new_histogram()),
                ok: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                first_error: Mutex::new(None),
            })
            .context("creating producer")?;
    let mut value = random_bytes(a.size, 0xD1B5_4A32_D192_ED03);
    let started = Instant::now();
    let mut sent = 0u64;
    // Pace in 1 ms ticks, sending whatever is due: sleeping between single messages
    // (50 us at 20k/s) is below what the OS timer reliably delivers.
    while sent < total {
        let due = ((started.elapsed().as_secs_f64() * a.rate as f64) as u64).min(total);
        while sent < due {
            // The timestamp is taken at send time; if the client fell behind schedule the
            // backlog is not charged to the broker (it shows up as a lower achieved rate).
            value[..8].copy_from_slice(&unix_nanos().to_le_bytes());
            let partition = (sent % partitions as u64) as i32;
            let opaque = producer.context().start.elapsed().as_nanos() as usize;
            let mut rec = BaseRecord::with_opaque_to(&a.topic, opaque)
                .partition(partition)
                .payload(&value[..]);
            // A full local queue means the client fell behind the asked rate: wait for it
            // to drain (the shortfall shows as a lower achieved rate) instead of failing.
            loop {
                match producer.send::<[u8], [u8]>(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        ensure!(Instant::now() < deadline, "e2e: timed out while sending");
                        rec = r;
                        thread::sleep(Duration::from_micros(200));
                    }
                    Err((e, _)) => bail!("e2e send failed at message {sent}: {e}"),
                }
            }
            sent += 1;
        }
        ensure!(Instant::now() < deadline, "e2e: timed out while sending");
        thread::sleep(Duration::from_millis(1));
    }
    let send_elapsed = started.elapsed().as_secs_f64();
    producer.flush(remaining(deadline)).context("e2e flush")?;
    let (h, received) = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver thread panicked"))??;
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    let ph = ctx.hist.lock().unwrap();

    out("e2e.sent", sent);
    out("e2e.received", received);
    out("e2e.errors", failed);
    out(
        "e2e.achieved_rate",
        format!("{:.0}", sent as f64 / send_elapsed),
    );
    out("e2e.measured", h.len());
    out("e2e.lat_p50_ms", format!("{:.3}", ms(&h, 0.50)));
    out("e2e.lat_p99_ms", format!("{:.3}", ms(&h, 0.99)));
    out("e2e.lat_p999_ms", format!("{:.3}", ms(&h, 0.999)));
    out("e2e.lat_max_ms", format!("{:.3}", h.max() as f64 / 1000.0));
    out("e2e.ack_measured", ph.len());
    out("e2e.ack_p50_ms", format!("{:.3}", ms(&ph, 0.50)));
    out("e2e.ack_p99_ms", format!("{:.3}", ms(&ph, 0.99)));
    out("e2e.client_cpu_s", format!("{:.1}", own_cpu_secs()));
    eprintln!(
        "e2e {}: {sent} sent at {:.0}/s, {received} received; latency p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms max {:.2} ms",
        a.topic,
        sent as f64 / send_elapsed,
        ms(&h, 0.5),
        ms(&h, 0.99),
        ms(&h, 0.999),
        h.max() as f64 / 1000.0
    );
    ensure!(failed == 0, "e2e: {failed} messages were not delivered");
    Ok(())
}

/// Timestamps are wall-clock microseconds since the epoch, the unit of bash's
/// $EPOCHREALTIME, so the script can subtract the moment it spawned the broker. Polling
/// every `poll_ms` (and librdkafka's reconnect backoff) bounds how late an event is seen.
fn ready(brokers: &str, a: &ReadyArgs, deadline: Instant) -> Result<()> {
    let started = Instant::now();
    let started_us = unix_nanos() / 1000;
    let poll_ms = a.poll_ms.max(1);
    let poll = Duration::from_millis(poll_ms);
    let first = brokers.split(',').next().unwrap_or(brokers);
    let addr = first
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve broker {first:?}"))?
        .next()
        .with_context(|| format!("broker {first:?} resolves to nothing"))?;

    // Plain TCP probe on its own thread, so a slow client start-up or Metadata round trip
    // does not delay noticing the listener. A refused connect on loopback returns at once.
    let tcp = thread::spawn(move || -> Option<u64> {
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Some(unix_nanos() / 1000);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(poll);
        }
    });

    // One client created up front and kept: it reconnects on its own, and with eager
    // connections and a backoff of a few milliseconds (librdkafka's default starts at 100 ms
    // and doubles) it notices the listener about as soon as the TCP probe does, without
    // paying librdkafka's client set-up on every attempt.
    let mut c = base_config(brokers);
    c.set("enable.sparse.connections", "false")
        .set("reconnect.backoff.ms", poll_ms.to_string())
        .set("reconnect.backoff.max.ms", (2 * poll_ms).to_string());
    let client: BaseProducer = with_extra(c).create().context("creating client")?;
    // The caller waits for this line before spawning the broker.
    out("ready.probing_unix_us", unix_nanos() / 1000);
    let mut attempts = 0u64;
    let mut last_error: String;
    let md = loop {
        attempts += 1;
        let wait = remaining(deadline).min(Duration::from_millis(500));
        match client.client().fetch_metadata(None, wait) {
            Ok(md) if !md.brokers().is_empty() => break md,
            Ok(_) => last_error = "Metadata answer listed no brokers".into(),
            Err(e) => last_error = e.to_string(),
        }
        ensure!(
            Instant::now() < deadline,
            "no Metadata answer after {attempts} attempts; last error: {last_error}"
        );
        thread::sleep(poll);
    };
    let metadata_us = unix_nanos() / 1000;
    let metadata_ms = started.elapsed().as_secs_f64() * 1000.0;
    let tcp_us = tcp
        .join()
        .map_err(|_| anyhow::anyhow!("TCP probe thread panicked"))?
        .context("Metadata answered but the TCP probe never connected")?;

    out("ready.started_unix_us", started_us);
    out("ready.tcp_unix_us", tcp_us);
    out("ready.metadata_unix_us", metadata_us);
    out(
        "ready.tcp_ms",
        format!("{:.1}", tcp_us.saturating_sub(started_us) as f64 / 1000.0),
    );
    out("ready.ms", format!("{metadata_ms:.1}"));
    out("ready.attempts", attempts);
    out("ready.brokers", md.brokers().len());
    out("ready.topics", md.topics().len());
    eprintln!(
        "ready: TCP accepted {:.1} ms and Metadata answered {metadata_ms:.1} ms after this probe started ({attempts} attempts, {} topics)",
        tcp_us.saturating_sub(started_us) as f64 / 1000.0,
        md.topics().len()
    );
    Ok(())
}
