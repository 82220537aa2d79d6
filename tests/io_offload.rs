//! Issue 16 items 8 and 9: fetch reads happen off the async workers, and fetch responses
//! share one memory budget (`queued.max.fetch.bytes`) from read until written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use fjord::Broker;
use fjord::config::{ConfigBuilder, Source};
use fjord::connection::RequestContext;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn open(dir: &std::path::Path, settings: &[(&str, &str)]) -> Arc<Broker> {
    let mut b = ConfigBuilder::new();
    b.set("log.dirs", dir.to_str().unwrap(), Source::Flag)
        .unwrap();
    for (k, v) in settings {
        b.set(k, v, Source::Flag).unwrap();
    }
    Broker::open(b.build().unwrap()).unwrap()
}

/// A one-record batch whose value is `size` bytes.
fn big_batch(size: usize) -> Bytes {
    let r = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::from(vec![7u8; size])),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[r],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// A topic `t` with one partition holding `n` batches of `size`-byte values; returns the
/// stored size of one batch.
fn fill(broker: &Broker, n: usize, size: usize) -> usize {
    let t = broker
        .topics
        .create("t", 1, Default::default(), false)
        .unwrap();
    let b = big_batch(size);
    for _ in 0..n {
        t.partitions[0].append(&b, None).unwrap();
    }
    b.len()
}

const V: i16 = 12;

fn ctx() -> RequestContext {
    RequestContext {
        peer: "127.0.0.1:1".parse().unwrap(),
        listener: "PLAINTEXT".into(),
        client_id: None,
        api_version: V,
        correlation_id: 1,
        principal: std::sync::Arc::from("User:ANONYMOUS"),
    }
}

fn fetch_req(offset: i64, max_bytes: i32, partition_max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![
            fetch_request::FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_current_leader_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(partition_max_bytes),
                ]),
        ])
}

/// Answers a fetch as a connection would: the frame, which holds its memory share.
async fn respond(broker: &Broker, req: &FetchRequest) -> fjord::frame::Frame {
    let mut body = BytesMut::new();
    req.encode(&mut body, V).unwrap();
    fjord::handlers::fetch::respond(broker, &ctx(), body.freeze())
        .await
        .unwrap()
}

/// Record bytes in a response frame.
fn records_len(frame: &fjord::frame::Frame) -> usize {
    let mut b = frame.to_bytes();
    b.advance(4); // size
    ResponseHeader::decode(&mut b, 1).unwrap();
    let r = FetchResponse::decode(&mut b, V).unwrap();
    r.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |r| r.len())
}

#[tokio::test]
async fn a_response_holds_its_share_until_the_frame_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path(), &[("queued.max.fetch.bytes", "1048576")]);
    let batch = fill(&broker, 5, 100_000);
    let mem = broker.fetch_memory.clone().unwrap();
    let frame = respond(&broker, &fetch_req(0, 50 << 20, 50 << 20)).await;
    assert_eq!(records_len(&frame), 5 * batch);
    assert_eq!(mem.available(), (1 << 20) - 5 * batch);
    drop(frame);
    assert_eq!(mem.available(), 1 << 20);
    // An empty answer holds nothing.
    let frame = respond(&broker, &fetch_req(5, 50 << 20, 50 << 20)).await;
    assert_eq!(records_len(&frame), 0);
    assert!(frame.memory.is_none());
    assert_eq!(mem.available(), 1 << 20);
}

#[tokio::test]
async fn a_fetch_bigger_than_the_budget_still_completes() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 64 * 1024;
    let broker = open(dir.path(), &[("queued.max.fetch.bytes", "65536")]);
    let batch = fill(&broker, 3, 200_000);
    let mem = broker.fetch_memory.clone().unwrap();
    // The first batch alone is bigger than the budget: it comes whole, and nothing more.
    let first = tokio::time::timeout(
        Duration::from_secs(10),
        respond(&broker, &fetch_req(0, 50 << 20, 50 << 20)),
    )
    .await
    .expect("a fetch bigger than the budget must not wait forever");
    assert_eq!(records_len(&first), batch);
    assert_eq!(mem.available(), 0);
    // While it holds the whole budget the next fetch waits...
    let b2 = broker.clone();
    let second = tokio::spawn(async move { respond(&b2, &fetch_req(1, 50 << 20, 50 << 20)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the budget is taken");
    // ...and goes on once the first response has been written (its frame dropped).
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the waiting fetch goes on once the budget is back")
        .unwrap();
    assert_eq!(records_len(&second), batch);
    drop(second);
    assert_eq!(mem.available(), budget);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetches_never_hold_more_than_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 256 * 1024;
    let broker = open(dir.path(), &[("queued.max.fetch.bytes", "262144")]);
    let n = 40;
    fill(&broker, n, 30_000);
    let held = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let fetched = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (broker, held, peak, fetched) =
            (broker.clone(), held.clone(), peak.clone(), fetched.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..20 {
                let offset = ((i * 7 + j * 3) % n) as i64;
                // Each wants ~2 batches (64 KiB) and some want 1 MiB (clamped to the budget).
                let pmax = if (i + j) % 5 == 0 { 1 << 20 } else { 64 * 1024 };
                let frame = respond(&broker, &fetch_req(offset, 50 << 20, pmax)).await;
                let len = records_len(&frame);
                assert!(len > 0);
                let now = held.fetch_add(len, Ordering::SeqCst) + len;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                held.fetch_sub(len, Ordering::SeqCst);
                drop(frame);
                fetched.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every fetch completes (no deadlock)");
    assert_eq!(fetched.load(Ordering::SeqCst), 16 * 20);
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= budget, "responses held {peak} bytes at once");
    assert!(peak > 64 * 1024, "fetches ran concurrently ({peak})");
    assert_eq!(broker.fetch_memory.as_ref().unwrap().available(), budget);
}

/// A fetch of tens of megabytes is read on the blocking pool: on a single-threaded runtime
/// another task keeps running while it is read (before, the pread ran on the runtime's only
/// thread and stalled it for the whole read).
#[tokio::test(flavor = "current_thread")]
async fn a_large_fetch_does_not_stall_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path(), &[("fetch.max.bytes", "134217728")]);
    let batch = fill(&broker, 96, 1 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let max_gap = Arc::new(AtomicU64::new(0));
    let (s, m) = (stop.clone(), max_gap.clone());
    let ticker = tokio::spawn(async move {
        let mut last = Instant::now();
        while !s.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let now = Instant::now();
            m.fetch_max((now - last).as_micros() as u64, Ordering::Relaxed);
            last = now;
        }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut worst = (Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        max_gap.store(0, Ordering::Relaxed);
        let t0 = Instant::now();
        let r = fjord::handlers::fetch::handle(&broker, &ctx(), fetch_req(0, 128 << 20, 128 << 20))
            .await
            .unwrap();
        let took = t0.elapsed();
        assert_eq!(
            r.responses[0].partitions[0].records.as_ref().unwrap().len(),
            96 * batch
        );
        // Let the ticker record the gap the fetch may have caused.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let gap = Duration::from_micros(max_gap.load(Ordering::Relaxed));
        if took > worst.0 {
            worst = (took, gap);
        }
    }
    stop.store(true, Ordering::Relaxed);
    ticker.await.unwrap();
    let (took, gap) = worst;
    eprintln!("96 MiB fetch took {took:?}; longest stall of the runtime {gap:?}");
    if took >= Duration::from_millis(20) {
        assert!(
            gap < took / 2,
            "the runtime stalled {gap:?} during a fetch of {took:?}"
        );
    }
}
