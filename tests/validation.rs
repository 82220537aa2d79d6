//! Kafka's append-time validation through the wire: the batch's max timestamp is recomputed
//! from its records, header counts are checked against the records, and every refused
//! record is named in the produce response (KIP-467).

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};

fn records(n: usize, ts: i64, keyless: impl Fn(usize) -> bool) -> Bytes {
    let recs: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i as i64,
            // One batch: the encoder splits where the offset-sequence gap changes.
            sequence: i as i32 - 1,
            timestamp: ts + i as i64,
            key: (!keyless(i)).then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Overwrites header fields the way an old or hostile client might, keeping the CRC valid.
fn patch(b: &Bytes, f: impl Fn(&mut [u8])) -> Bytes {
    let mut v = b.to_vec();
    f(&mut v);
    fjord::log::batch::fill_crc(&mut v);
    Bytes::from(v)
}

fn list_offset(topic: &str, ts: i64) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(tn(topic))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(ts),
                ]),
        ])
}

#[tokio::test]
async fn unset_max_timestamp_does_not_expose_the_batch_to_retention() {
    let b = start().await;
    let broker = b.handle.as_ref().unwrap().broker.clone();
    let mut c = b.client().await;
    c.create_topic("ts", 1).await;
    let now = fjord::handlers::now_ms();
    for unset in [0i64, -1] {
        let batch = patch(&records(3, now, |_| false), |v| {
            v[35..43].copy_from_slice(&unset.to_be_bytes())
        });
        let r = c.call(9, &produce_req("ts", 0, batch, 1)).await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "{:?}", p.error_message);
    }
    // A day of retention must keep records written now, whatever the header said.
    let cfg = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(sb("ts"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(sb("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(sb("86400000"))),
            ]),
    ]);
    c.call(1, &cfg).await;
    assert_eq!(fjord::cleaner::retention_pass(&broker), 0);
    let p = c.fetch("ts", 0, 0, 0).await;
    assert_eq!(p.log_start_offset, 0);
    assert_eq!(decode_records(p.records.unwrap()).len(), 6);
    // The stored header carries the records' true max timestamp.
    let raw = broker.topics.get("ts").unwrap().partitions[0]
        .batch_at(0)
        .unwrap()
        .unwrap();
    assert_eq!(
        fjord::log::batch::stored_header(&raw).max_timestamp,
        now + 2
    );
    // Timestamp lookups answer from the records.
    let r = c.call(7, &list_offset("ts", -3)).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.offset, p.timestamp), (2, now + 2));
    let r = c.call(7, &list_offset("ts", now + 1)).await;
    assert_eq!(r.topics[0].partitions[0].offset, 1);
}

#[tokio::test]
async fn header_counts_must_match_the_records() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("cnt", 1).await;
    // recordsCount 0 with a last offset delta of two billion: one tiny produce would move
    // the log end by that much.
    let bad = patch(&records(1, 1_700_000_000_000, |_| false), |v| {
        v[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        v[57..61].copy_from_slice(&0i32.to_be_bytes());
    });
    let r = c.call(9, &produce_req("cnt", 0, bad, 1)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::InvalidRecord.code());
    let msg = p.error_message.as_ref().unwrap().to_string();
    assert!(
        msg.starts_with("Invalid reported count for record batch: 0"),
        "{msg}"
    );
    assert!(p.record_errors.is_empty());
    // A count that disagrees with the records that follow.
    let bad = patch(&records(3, 1_700_000_000_000, |_| false), |v| {
        v[23..27].copy_from_slice(&3i32.to_be_bytes());
        v[57..61].copy_from_slice(&4i32.to_be_bytes());
    });
    assert_eq!(
        c.produce("cnt", 0, bad, 1).await.0,
        ResponseError::InvalidRecord.code()
    );
    // Nothing moved the log end.
    assert_eq!(c.produce("cnt", 0, plain(2), 1).await, (0, 0));
    assert_eq!(c.fetch("cnt", 0, 0, 0).await.high_watermark, 2);
}

#[tokio::test]
async fn every_keyless_record_is_named_on_a_compacted_topic() {
    let b = start().await;
    let mut c = b.client().await;
    let req = CreateTopicsRequest::default()
        .with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(tn("cmp"))
                .with_num_partitions(1)
                .with_replication_factor(1)
                .with_configs(vec![
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(sb("cleanup.policy"))
                        .with_value(Some(sb("compact"))),
                ]),
        ])
        .with_timeout_ms(5000);
    assert_eq!(c.call(7, &req).await.topics[0].error_code, 0);
    // Ten keyless records among a hundred.
    let batch = records(100, 1_700_000_000_000, |i| i % 10 == 7);
    let r = c.call(9, &produce_req("cmp", 0, batch, 1)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::InvalidRecord.code());
    let named: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(named, (0..10).map(|i| i * 10 + 7).collect::<Vec<_>>());
    assert!(
        p.record_errors[0]
            .batch_index_error_message
            .as_ref()
            .unwrap()
            .contains("Compacted topic cannot accept message without key")
    );
    assert!(
        p.error_message
            .as_ref()
            .unwrap()
            .contains("10 record errors in total")
    );
    assert_eq!(c.fetch("cmp", 0, 0, 0).await.high_watermark, 0);
}
