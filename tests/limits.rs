//! Resource limits: connection caps, idle connections, queued request bytes, clients that
//! never read, and bounded fetch responses. The broker keeps serving well-behaved clients.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::*;
use tokio::io::AsyncWriteExt;

async fn works(b: &TestBroker) {
    let mut c = b.client().await;
    assert_eq!(
        c.call(3, &ApiVersionsRequest::default()).await.error_code,
        0
    );
}

#[tokio::test]
async fn connection_limits() {
    let b = start_with(&[("max.connections", "3"), ("max.connections.per.ip", "2")]).await;
    let mut a = b.client().await;
    let mut c = b.client().await;
    assert_eq!(
        a.call(3, &ApiVersionsRequest::default()).await.error_code,
        0
    );
    assert_eq!(
        c.call(3, &ApiVersionsRequest::default()).await.error_code,
        0
    );
    // A third connection from the same address is refused...
    let mut third = b.client().await;
    assert!(third.closed().await, "per-IP limit");
    // ...and admitted again once one closes.
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    works(&b).await;

    // The total cap applies across addresses too.
    let total = start_with(&[("max.connections", "1")]).await;
    let mut only = total.client().await;
    assert_eq!(
        only.call(3, &ApiVersionsRequest::default())
            .await
            .error_code,
        0
    );
    let mut refused = total.client().await;
    assert!(refused.closed().await, "total limit");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let b = start_with(&[("connections.max.idle.ms", "300")]).await;
    let mut idle = b.client().await;
    let mut busy = b.client().await;
    let t = Instant::now();
    for _ in 0..8 {
        assert_eq!(
            busy.call(3, &ApiVersionsRequest::default())
                .await
                .error_code,
            0
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(idle.closed().await);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        busy.call(3, &ApiVersionsRequest::default())
            .await
            .error_code,
        0,
        "an active connection stays"
    );
}

#[tokio::test]
async fn queued_request_bytes_bound_memory_without_losing_requests() {
    let b = start_with(&[
        ("socket.request.max.bytes", "65536"),
        ("queued.max.request.bytes", "65536"),
    ])
    .await;
    let mut c = b.client().await;
    c.create_topic("q", 1).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let addr = b.addr;
        tasks.push(tokio::spawn(async move {
            let mut p = Client::connect(addr).await;
            let mut ok = 0;
            for _ in 0..20 {
                if p.produce("q", 0, plain(300), 1).await.0 == 0 {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 160);
    assert_eq!(c.fetch("q", 0, 0, 0).await.high_watermark, 160 * 300);
}

#[tokio::test]
async fn a_client_that_never_reads_is_held_back() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("big", 1).await;
    for _ in 0..20 {
        c.produce("big", 0, plain(2000), 1).await;
    }
    // Pipeline fetches without ever reading a response: the broker stops reading from this
    // socket once its read-ahead is full and the kernel buffers fill, so our writes stall.
    let mut hog = b.client().await;
    let (_, frame) = hog.frame(12, &fetch_req("big", 0, 0, 0));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sent = 0usize;
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), hog.stream.write_all(&frame)).await {
            Ok(Ok(())) => sent += 1,
            _ => break,
        }
    }
    assert!(
        Instant::now() < deadline,
        "writes never blocked after {sent} requests"
    );
    works(&b).await;
}

#[tokio::test]
async fn fetch_responses_are_capped() {
    let b = start_with(&[("fetch.max.bytes", "4096")]).await;
    let mut c = b.client().await;
    c.create_topic("cap", 1).await;
    for _ in 0..10 {
        c.produce("cap", 0, plain(100), 1).await;
    }
    let mut req = fetch_req("cap", 0, 0, 0);
    req.max_bytes = i32::MAX;
    req.topics[0].partitions[0].partition_max_bytes = i32::MAX;
    let r = c.call(12, &req).await;
    let len = r.responses[0].partitions[0].records.as_ref().unwrap().len();
    assert!(len > 0 && len <= 4096 + plain(100).len(), "{len}");
}
