//! Disk work stays off the async workers: a produce whose append is stuck (here: its
//! partition's lock held by another thread, as a slow segment write or fsync would) must
//! not stop the runtime that serves every other connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ProduceRequest, TopicName, produce_request};
use kafka_protocol::protocol::StrBytes;

use crate::Broker;
use crate::config::{ConfigBuilder, Source};
use crate::connection::RequestContext;
use crate::log::batch::tests::make_batch;

/// Runs a task on the same (single-threaded) runtime that wakes every 5 ms and records the
/// longest gap between two wakes, in microseconds.
fn ticker() -> (Arc<AtomicBool>, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let max_gap = Arc::new(AtomicU64::new(0));
    let (s, m) = (stop.clone(), max_gap.clone());
    let task = tokio::spawn(async move {
        let mut last = Instant::now();
        while !s.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let now = Instant::now();
            m.fetch_max((now - last).as_micros() as u64, Ordering::Relaxed);
            last = now;
        }
    });
    (stop, max_gap, task)
}

#[tokio::test(flavor = "current_thread")]
async fn a_stuck_append_does_not_stall_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = ConfigBuilder::new();
    b.set("log.dirs", dir.path().to_str().unwrap(), Source::Flag)
        .unwrap();
    let broker = Broker::open(b.build().unwrap()).unwrap();
    let topic = broker
        .topics
        .create("t", 1, Default::default(), false)
        .unwrap();
    let log = topic.partitions[0].clone();

    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let _st = log.state.lock().unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    });
    locked_rx.recv().unwrap();
    // Let the ticker run once before the produce.
    let (stop, max_gap, task) = ticker();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let ctx = RequestContext {
        peer: "127.0.0.1:1".parse().unwrap(),
        listener: "PLAINTEXT".into(),
        client_id: None,
        api_version: 9,
        correlation_id: 1,
        principal: std::sync::Arc::from("User:ANONYMOUS"),
    };
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(make_batch(3, -1, -1, -1))),
                ]),
        ]);
    let t0 = Instant::now();
    let resp = crate::handlers::produce::handle(&broker, &ctx, req)
        .await
        .unwrap();
    let waited = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    task.await.unwrap();
    holder.join().unwrap();

    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    assert!(
        waited >= Duration::from_millis(300),
        "the append waited for the lock: {waited:?}"
    );
    let gap = Duration::from_micros(max_gap.load(Ordering::Relaxed));
    assert!(
        gap < Duration::from_millis(250),
        "the runtime stalled for {gap:?} while the append was stuck ({waited:?})"
    );
}
