//! Log lifecycle through the wire protocol: live configs, retention, compaction,
//! DeleteRecords, DescribeLogDirs and LogAppendTime.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn incremental(
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> IncrementalAlterConfigsRequest {
    incremental_alter(resource_type, name, ops, false)
}

async fn describe(c: &mut Client, resource_type: i8, name: &str, key: &str) -> (String, i8) {
    let (value, source) = described(c, resource_type, name, key).await;
    (value.unwrap(), source)
}

#[tokio::test]
async fn configs_change_live_with_sources() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("cfg", 1).await;
    let r = c
        .call(
            1,
            &incremental(
                2,
                "cfg",
                &[
                    ("retention.ms", 0, Some("60000")),
                    ("cleanup.policy", 2, Some("compact")),
                ],
            ),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        describe(&mut c, 2, "cfg", "retention.ms").await,
        ("60000".into(), 1)
    );
    assert_eq!(
        describe(&mut c, 2, "cfg", "cleanup.policy").await,
        ("delete,compact".into(), 1)
    );
    let r = c
        .call(
            1,
            &incremental(2, "cfg", &[("cleanup.policy", 3, Some("delete"))]),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        describe(&mut c, 2, "cfg", "cleanup.policy").await.0,
        "compact"
    );
    // Bad values and unknown keys are refused with a message naming them.
    let r = c
        .call(
            1,
            &incremental(2, "cfg", &[("retention.ms", 0, Some("soon"))]),
        )
        .await;
    assert_eq!(
        r.responses[0].error_code,
        ResponseError::InvalidConfig.code()
    );
    assert!(
        r.responses[0]
            .error_message
            .as_ref()
            .unwrap()
            .contains("soon")
    );
    let r = c
        .call(
            1,
            &incremental(2, "cfg", &[("retention.hours", 0, Some("1"))]),
        )
        .await;
    assert_eq!(
        r.responses[0].error_code,
        ResponseError::InvalidConfig.code()
    );
    let r = c
        .call(1, &incremental(2, "cfg", &[("retention.ms", 2, Some("5"))]))
        .await;
    assert_eq!(
        r.responses[0].error_code,
        ResponseError::InvalidConfig.code(),
        "APPEND needs a list config"
    );
    // DELETE falls back to the broker default; a dynamic cluster default then shows as such.
    c.call(1, &incremental(2, "cfg", &[("retention.ms", 1, None)]))
        .await;
    assert_eq!(
        describe(&mut c, 2, "cfg", "retention.ms").await,
        ("604800000".into(), 5)
    );
    let r = c
        .call(
            1,
            &incremental(4, "", &[("log.retention.ms", 0, Some("7200000"))]),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        describe(&mut c, 2, "cfg", "retention.ms").await,
        ("7200000".into(), 3)
    );
    assert_eq!(
        describe(&mut c, 4, "1", "log.retention.ms").await,
        ("7200000".into(), 3)
    );
    let r = c
        .call(
            1,
            &incremental(4, "1", &[("log.dirs", 0, Some("/elsewhere"))]),
        )
        .await;
    // Kafka's answer for a setting it cannot change at runtime.
    assert_eq!(
        r.responses[0].error_code,
        ResponseError::InvalidRequest.code(),
        "read-only settings are refused"
    );
    assert_eq!(
        r.responses[0].error_message.as_deref(),
        Some("Cannot update these configs dynamically: [log.dirs]")
    );
    // AlterConfigs replaces the whole set.
    let alter = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(sb("cfg"))
            .with_configs(vec![
                alter_configs_request::AlterableConfig::default()
                    .with_name(sb("max.message.bytes"))
                    .with_value(Some(sb("2000"))),
            ]),
    ]);
    assert_eq!(c.call(2, &alter).await.responses[0].error_code, 0);
    assert_eq!(
        describe(&mut c, 2, "cfg", "cleanup.policy").await,
        ("delete".into(), 5)
    );
    let (err, _) = c.produce("cfg", 0, plain(100), 1).await;
    assert_eq!(
        err,
        ResponseError::MessageTooLarge.code(),
        "the new limit applies at once"
    );
}

/// A batch of records with explicit keys, values (None = tombstone) and timestamps.
fn keyed(records: &[(Option<&str>, Option<&str>, i64)], compression: Compression) -> Bytes {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v, ts))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1 + i as i32,
            timestamp: *ts,
            key: k.map(|k| Bytes::from(k.to_string())),
            value: v.map(|v| Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

async fn read_all(c: &mut Client, topic: &str) -> Vec<kafka_protocol::records::Record> {
    let start = {
        let r = c
            .call(
                9,
                &ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![
                        list_offsets_request::ListOffsetsTopic::default()
                            .with_name(tn(topic))
                            .with_partitions(vec![
                                list_offsets_request::ListOffsetsPartition::default()
                                    .with_partition_index(0)
                                    .with_current_leader_epoch(-1)
                                    .with_timestamp(-2),
                            ]),
                    ]),
            )
            .await;
        r.topics[0].partitions[0].offset
    };
    let mut out = Vec::new();
    let mut next = start;
    for _ in 0..1000 {
        let p = c.fetch(topic, 0, next, 0).await;
        assert_eq!(p.error_code, 0);
        let recs = decode_records(p.records.unwrap());
        let Some(last) = recs.last() else { break };
        next = last.offset + 1;
        out.extend(recs.into_iter().filter(|r| r.offset >= start));
        if next >= p.high_watermark {
            break;
        }
    }
    out
}

#[tokio::test]
async fn retention_by_time_and_size() {
    let b = start().await;
    let broker = b.handle.as_ref().unwrap().broker.clone();
    let mut c = b.client().await;
    c.create_topic("old", 1).await;
    let now = fjord::handlers::now_ms();
    // Two batches from two days ago, one fresh.
    c.produce(
        "old",
        0,
        keyed(
            &[(Some("a"), Some("1"), now - 2 * 86_400_000); 3],
            Compression::None,
        ),
        1,
    )
    .await;
    c.produce(
        "old",
        0,
        keyed(
            &[(Some("b"), Some("2"), now - 2 * 86_400_000); 2],
            Compression::Gzip,
        ),
        1,
    )
    .await;
    c.produce(
        "old",
        0,
        keyed(&[(Some("c"), Some("3"), now); 4], Compression::None),
        1,
    )
    .await;
    c.call(
        1,
        &incremental(2, "old", &[("retention.ms", 0, Some("86400000"))]),
    )
    .await;
    let size_before = broker.topics.get("old").unwrap().partitions[0].size_bytes();
    assert_eq!(fjord::cleaner::retention_pass(&broker), 1);
    let after = broker.topics.get("old").unwrap().partitions[0].size_bytes();
    assert!(after < size_before);
    let p = c.fetch("old", 0, 0, 0).await;
    // As in Kafka, an out-of-range fetch carries no offsets; ListOffsets gives the start.
    assert_eq!(
        (p.error_code, p.log_start_offset),
        (ResponseError::OffsetOutOfRange.code(), -1)
    );
    let recs = read_all(&mut c, "old").await;
    assert_eq!(recs.len(), 4);
    assert_eq!(recs[0].offset, 5);
    // Size: keep at most one batch's worth.
    c.produce(
        "old",
        0,
        keyed(&[(Some("d"), Some("4"), now); 4], Compression::None),
        1,
    )
    .await;
    let one = broker.topics.get("old").unwrap().partitions[0].size_bytes() / 2;
    c.call(
        1,
        &incremental(2, "old", &[("retention.bytes", 0, Some(&one.to_string()))]),
    )
    .await;
    fjord::cleaner::retention_pass(&broker);
    assert_eq!(read_all(&mut c, "old").await[0].offset, 9);
    // -1 keeps everything.
    c.call(
        1,
        &incremental(
            2,
            "old",
            &[
                ("retention.ms", 0, Some("-1")),
                ("retention.bytes", 0, Some("-1")),
            ],
        ),
    )
    .await;
    assert_eq!(fjord::cleaner::retention_pass(&broker), 0);
}

#[tokio::test]
async fn compaction_keeps_latest_value_per_key() {
    let b = start().await;
    let broker = b.handle.as_ref().unwrap().broker.clone();
    let mut c = b.client().await;
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(tn("changelog"))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(sb("cleanup.policy"))
                    .with_value(Some(sb("compact"))),
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(sb("delete.retention.ms"))
                    .with_value(Some(sb("1000"))),
            ]),
    ]);
    assert_eq!(c.call(7, &req).await.topics[0].error_code, 0);
    let now = fjord::handlers::now_ms();
    let old = now - 10_000;
    // Keys k0..k9, five versions each; k3 ends in an old tombstone, k4 in a fresh one.
    let mut expected = std::collections::BTreeMap::new();
    for round in 0..5 {
        let mut batch = Vec::new();
        for k in 0..10 {
            let key = format!("k{k}");
            let value = format!("{key}-v{round}");
            let (v, ts) = match (round, k) {
                (4, 3) => (None, old),
                (4, 4) => (None, now),
                _ => (Some(value), old),
            };
            batch.push((key, v, ts));
        }
        let as_ref: Vec<(Option<&str>, Option<&str>, i64)> = batch
            .iter()
            .map(|(k, v, ts)| (Some(k.as_str()), v.as_deref(), *ts))
            .collect();
        let codec = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ][round];
        assert_eq!(
            c.produce("changelog", 0, keyed(&as_ref, codec), 1).await.0,
            0
        );
        for (k, v, _) in batch {
            expected.insert(k, v);
        }
    }
    // A fresh head batch the cleaner must leave alone.
    c.produce(
        "changelog",
        0,
        keyed(&[(Some("k0"), Some("head"), now)], Compression::None),
        1,
    )
    .await;
    // Keyless records are refused.
    let (err, _) = c
        .produce(
            "changelog",
            0,
            keyed(&[(None, Some("x"), now)], Compression::None),
            1,
        )
        .await;
    assert_eq!(err, ResponseError::InvalidRecord.code());

    let before = broker.topics.get("changelog").unwrap().partitions[0].size_bytes();
    assert!(fjord::cleaner::compaction_pass(&broker) > 0);
    let after = broker.topics.get("changelog").unwrap().partitions[0].size_bytes();
    assert!(after < before / 2, "{before} -> {after}");
    let recs = read_all(&mut c, "changelog").await;
    let mut seen = std::collections::BTreeMap::new();
    for r in &recs {
        let k = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
        seen.insert(
            k,
            r.value
                .clone()
                .map(|v| String::from_utf8(v.to_vec()).unwrap()),
        );
    }
    // The head's k0=head is the newest k0; the old tombstone for k3 is gone; k4's fresh
    // tombstone stays.
    expected.insert("k0".into(), Some("head".into()));
    expected.remove("k3");
    assert_eq!(seen, expected);
    // Offsets are unchanged: the last version of k9 still sits at offset 49.
    let k9 = recs
        .iter()
        .find(|r| r.key.as_deref() == Some(&b"k9"[..]))
        .unwrap();
    assert_eq!(k9.offset, 49);
    // Offsets keep increasing with gaps; nothing moved.
    assert!(recs.windows(2).all(|w| w[0].offset < w[1].offset));
    // A second pass finds nothing new to clean.
    assert_eq!(fjord::cleaner::compaction_pass(&broker), 0);
}

#[tokio::test]
async fn delete_records_log_dirs_and_log_append_time() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("dr", 1).await;
    for _ in 0..3 {
        c.produce("dr", 0, plain(4), 1).await;
    }
    let del = |offset: i64| {
        DeleteRecordsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(tn("dr"))
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(offset),
                    ]),
            ])
    };
    let r = c.call(2, &del(6)).await;
    assert_eq!(
        (
            r.topics[0].partitions[0].error_code,
            r.topics[0].partitions[0].low_watermark
        ),
        (0, 6)
    );
    let r = c.call(2, &del(99)).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    let recs = read_all(&mut c, "dr").await;
    assert_eq!(recs.first().map(|r| r.offset), Some(6));
    assert_eq!(recs.len(), 6);

    let d = c
        .call(4, &DescribeLogDirsRequest::default().with_topics(None))
        .await;
    let size = d.results[0]
        .topics
        .iter()
        .find(|t| t.name.as_str() == "dr")
        .unwrap()
        .partitions[0]
        .partition_size;
    assert!(size > 0);
    assert!(d.results[0].total_bytes > 0);

    c.call(
        1,
        &incremental(
            2,
            "dr",
            &[("message.timestamp.type", 0, Some("LogAppendTime"))],
        ),
    )
    .await;
    let r = c.call(11, &produce_req("dr", 0, plain(2), 1)).await;
    let t = r.responses[0].partition_responses[0].log_append_time_ms;
    assert!(
        t > 1_700_000_100_000,
        "broker time, not the producer's: {t}"
    );
    // Clients read every record's timestamp from the batch's max timestamp when the
    // LogAppendTime attribute is set (kafka-protocol's decoder does not, so check the header).
    let p = c.fetch("dr", 0, 12, 0).await;
    let raw = p.records.unwrap();
    let h = fjord::log::batch::BatchHeader::parse(&raw).unwrap();
    assert!(h.uses_log_append_time());
    assert_eq!(h.max_timestamp, t);
    assert_eq!(h.crc, crc32c::crc32c(&raw[21..h.total_len()]));
}
