//! Produce and fetch through the wire protocol: offsets, idempotence, long polling, limits,
//! restarts.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;

#[tokio::test]
async fn produce_then_fetch_every_codec() {
    let b = start().await;
    let mut c = b.client().await;
    assert_eq!(c.create_topic("codecs", 1).await, 0);
    let mut next = 0;
    for comp in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let (err, base) = c
            .produce("codecs", 0, batch(10, -1, -1, -1, comp), -1)
            .await;
        assert_eq!((err, base), (0, next), "{comp:?}");
        next += 10;
    }
    let p = c.fetch("codecs", 0, 0, 0).await;
    assert_eq!(p.high_watermark, 50);
    let recs = decode_records(p.records.unwrap());
    assert_eq!(recs.len(), 50);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(
            r.value.as_deref(),
            Some(format!("value-{}", i % 10).as_bytes())
        );
    }
    // Fetching from the middle of a batch returns that whole batch first.
    let p = c.fetch("codecs", 0, 15, 0).await;
    let recs = decode_records(p.records.unwrap());
    assert_eq!(recs[0].offset, 10);
    // Beyond the end: OFFSET_OUT_OF_RANGE, with no offsets (-1) as in Kafka.
    let p = c.fetch("codecs", 0, 51, 0).await;
    assert_eq!(p.error_code, ResponseError::OffsetOutOfRange.code());
    assert_eq!(p.high_watermark, -1);
}

#[tokio::test]
async fn idempotent_producer_sequences() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("idem", 1).await;
    let r = c
        .call(
            5,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let pid = r.producer_id.0;
    let r2 = c
        .call(
            5,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_ne!(r2.producer_id.0, pid, "producer ids are never reused");

    let first = batch(5, pid, 0, 0, Compression::None);
    assert_eq!(c.produce("idem", 0, first.clone(), -1).await, (0, 0));
    // A retry of the same batch gets its original offset and is not stored twice.
    assert_eq!(c.produce("idem", 0, first, -1).await, (0, 0));
    assert_eq!(
        c.produce("idem", 0, batch(2, pid, 0, 5, Compression::None), -1)
            .await,
        (0, 5)
    );
    let (err, _) = c
        .produce("idem", 0, batch(1, pid, 0, 9, Compression::None), -1)
        .await;
    assert_eq!(err, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(
        c.produce("idem", 0, batch(1, pid, 1, 0, Compression::None), -1)
            .await
            .0,
        0
    );
    let (err, _) = c
        .produce("idem", 0, batch(1, pid, 0, 7, Compression::None), -1)
        .await;
    assert_eq!(err, ResponseError::InvalidProducerEpoch.code());
    let p = c.fetch("idem", 0, 0, 0).await;
    assert_eq!(p.high_watermark, 8);
    assert_eq!(decode_records(p.records.unwrap()).len(), 8);
}

#[tokio::test]
async fn long_poll_is_woken_by_an_append() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("poll", 1).await;
    let addr = b.addr;
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut p = Client::connect(addr).await;
        p.produce("poll", 0, plain(1), 1).await
    });
    let t = Instant::now();
    let p = c.fetch("poll", 0, 0, 10_000).await;
    let waited = t.elapsed();
    assert_eq!(producer.await.unwrap().0, 0);
    assert_eq!(decode_records(p.records.unwrap()).len(), 1);
    assert!(
        waited >= Duration::from_millis(250),
        "returned before data: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(9),
        "not woken by the append: {waited:?}"
    );
    // With no data the fetch returns empty once max_wait_ms passes.
    let t = Instant::now();
    let p = c.fetch("poll", 0, 1, 200).await;
    assert!(p.records.unwrap().is_empty());
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn fetch_size_limits_return_whole_batches() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("limits", 2).await;
    for _ in 0..10 {
        c.produce("limits", 0, plain(100), 1).await;
        c.produce("limits", 1, plain(100), 1).await;
    }
    let one = plain(100).len();
    let mut req = fetch_req("limits", 0, 0, 0);
    req.topics[0].partitions[0].partition_max_bytes = (one * 3 + 10) as i32;
    let r = c.call(12, &req).await;
    assert_eq!(
        decode_records(r.responses[0].partitions[0].records.clone().unwrap()).len(),
        300
    );
    // partition_max_bytes smaller than one batch still returns one whole batch.
    req.topics[0].partitions[0].partition_max_bytes = 10;
    let r = c.call(12, &req).await;
    assert_eq!(
        decode_records(r.responses[0].partitions[0].records.clone().unwrap()).len(),
        100
    );
    // max_bytes across partitions: the second partition gets only what is left.
    let mut req = fetch_req("limits", 0, 0, 0);
    req.max_bytes = (one * 2) as i32;
    let mut p1 = req.topics[0].partitions[0].clone();
    p1.partition = 1;
    req.topics[0].partitions.push(p1);
    let r = c.call(12, &req).await;
    let n0 = decode_records(r.responses[0].partitions[0].records.clone().unwrap()).len();
    let n1 = decode_records(r.responses[0].partitions[1].records.clone().unwrap()).len();
    assert_eq!(n0 + n1, 200);
}

#[tokio::test]
async fn data_and_producer_state_survive_restart() {
    let mut b = start().await;
    let mut c = b.client().await;
    c.create_topic("durable", 3).await;
    let pid = c
        .call(
            5,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await
        .producer_id
        .0;
    let first = batch(4, pid, 0, 0, Compression::Lz4);
    c.produce("durable", 1, first.clone(), -1).await;
    c.produce("durable", 1, plain(3), -1).await;
    drop(c);
    b.restart(&[]).await;
    let mut c = b.client().await;
    let p = c.fetch("durable", 1, 0, 0).await;
    assert_eq!(p.high_watermark, 7);
    assert_eq!(decode_records(p.records.unwrap()).len(), 7);
    // The retry after restart is still recognised as a duplicate.
    assert_eq!(c.produce("durable", 1, first, -1).await, (0, 0));
    assert_eq!(c.produce("durable", 1, plain(1), -1).await, (0, 7));
    let pid2 = c
        .call(
            5,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await
        .producer_id
        .0;
    assert!(pid2 > pid);
    let m = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    assert_eq!(m.topics[0].partitions.len(), 3);
}

#[tokio::test]
async fn fetch_by_topic_id_and_produce_v13() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("ids", 1).await;
    let m = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    let id = m.topics[0].topic_id;
    assert!(!id.is_nil());
    let mut req = produce_req("", 0, plain(2), 1);
    req.topic_data[0].topic_id = id;
    let r = c.call(13, &req).await;
    assert_eq!(r.responses[0].topic_id, id);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    let mut f = fetch_req("", 0, 0, 0);
    f.topics[0].topic_id = id;
    let r = c.call(17, &f).await;
    assert_eq!(r.responses[0].topic_id, id);
    assert_eq!(
        decode_records(r.responses[0].partitions[0].records.clone().unwrap()).len(),
        2
    );
    f.topics[0].topic_id = uuid::Uuid::new_v4();
    let r = c.call(17, &f).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::UnknownTopicId.code()
    );
}
