//! The data path: Produce (good batches and every refusal), Fetch, ListOffsets,
//! OffsetForLeaderEpoch, DeleteRecords, DescribeLogDirs, DescribeProducers.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;

use super::Pair;
use crate::common::*;

/// The topic id each broker gave `topic`.
pub async fn topic_ids(p: &mut Pair, topic: &str) -> (uuid::Uuid, uuid::Uuid) {
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(tn(topic))),
    ]));
    let (f, k) = p.quiet(12, &req).await;
    (f.topics[0].topic_id, k.topics[0].topic_id)
}

fn produce(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    produce_req(topic, partition, records, acks)
}

fn patch(b: &Bytes, f: impl Fn(&mut [u8])) -> Bytes {
    let mut v = b.to_vec();
    f(&mut v);
    fjord::log::batch::fill_crc(&mut v);
    Bytes::from(v)
}

fn list_offsets(topic: &str, partition: i32, ts: i64, isolation: i8) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(tn(topic))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(ts),
                ]),
        ])
}

pub async fn run(p: &mut Pair) {
    // Produce: the same client batches, by name (v11) and by topic id (v13).
    p.same(
        "Produce v11: 5 records",
        11,
        &produce("diff-a", 0, batch(5, -1, -1, -1, Compression::None), -1),
    )
    .await;
    p.same(
        "Produce v11: gzip",
        11,
        &produce("diff-a", 0, batch(4, -1, -1, -1, Compression::Gzip), 1),
    )
    .await;
    p.same(
        "Produce v11: zstd",
        11,
        &produce("diff-a", 1, batch(3, -1, -1, -1, Compression::Zstd), 1),
    )
    .await;
    let (fid, kid) = topic_ids(p, "diff-a").await;
    let by_id = |id| {
        let mut r = produce("diff-a", 2, batch(2, -1, -1, -1, Compression::Lz4), 1);
        r.topic_data[0].topic_id = id;
        r.topic_data[0].name = tn("");
        r
    };
    p.each("Produce v13: by topic id", 13, &by_id(fid), &by_id(kid))
        .await;
    p.same("Produce v13: unknown topic id", 13, &{
        let mut r = produce("diff-a", 0, plain(1), 1);
        r.topic_data[0].topic_id = uuid::Uuid::from_u128(0x5eed);
        r.topic_data[0].name = tn("");
        r
    })
    .await;
    p.same(
        "Produce v11: unknown partition",
        11,
        &produce("diff-a", 99, plain(1), 1),
    )
    .await;
    p.same(
        "Produce v11: acks=2",
        11,
        &produce("diff-a", 0, plain(1), 2),
    )
    .await;
    let good = plain(3);
    p.same(
        "Produce v11: CRC mismatch",
        11,
        &produce(
            "diff-a",
            0,
            {
                let mut v = good.to_vec();
                let last = v.len() - 1;
                v[last] ^= 0xff;
                Bytes::from(v)
            },
            1,
        ),
    )
    .await;
    p.same(
        "Produce v11: truncated batch",
        11,
        &produce("diff-a", 0, good.slice(..good.len() - 3), 1),
    )
    .await;
    p.same(
        "Produce v11: record count 0",
        11,
        &produce(
            "diff-a",
            0,
            patch(&good, |v| {
                v[57..61].copy_from_slice(&0i32.to_be_bytes());
            }),
            1,
        ),
    )
    .await;
    p.same(
        "Produce v11: count disagrees with offsets",
        11,
        &produce(
            "diff-a",
            0,
            patch(&good, |v| {
                v[23..27].copy_from_slice(&5i32.to_be_bytes());
            }),
            1,
        ),
    )
    .await;
    p.same(
        "Produce v11: control batch from a client",
        11,
        &produce(
            "diff-a",
            0,
            patch(&good, |v| {
                let attrs = i16::from_be_bytes([v[21], v[22]]) | 0x20;
                v[21..23].copy_from_slice(&attrs.to_be_bytes());
            }),
            1,
        ),
    )
    .await;
    p.same(
        "Produce v11: idempotent batch without a sequence",
        11,
        &produce(
            "diff-a",
            0,
            patch(&good, |v| {
                v[43..51].copy_from_slice(&77i64.to_be_bytes());
            }),
            1,
        ),
    )
    .await;
    p.same(
        "Produce v11: message format v1",
        11,
        &produce("diff-a", 0, patch(&good, |v| v[16] = 1), 1),
    )
    .await;
    p.same(
        "Produce v11: batch over max.message.bytes",
        11,
        &produce(
            "diff-a",
            0,
            {
                let big: Vec<(Option<&str>, Option<&str>, i64)> = Vec::new();
                let _ = big;
                let value = "v".repeat(1_100_000);
                let rec = kafka_protocol::records::Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: kafka_protocol::records::TimestampType::Creation,
                    offset: 0,
                    sequence: -1,
                    timestamp: 1_700_000_000_000,
                    key: None,
                    value: Some(Bytes::from(value)),
                    headers: Default::default(),
                };
                let mut buf = bytes::BytesMut::new();
                kafka_protocol::records::RecordBatchEncoder::encode(
                    &mut buf,
                    &[rec],
                    &kafka_protocol::records::RecordEncodeOptions {
                        version: 2,
                        compression: Compression::None,
                    },
                )
                .unwrap();
                buf.freeze()
            },
            1,
        ),
    )
    .await;
    // Keyless records on a compacted topic: every one is named (KIP-467).
    let mixed = {
        let recs: Vec<kafka_protocol::records::Record> = (0..6)
            .map(|i| kafka_protocol::records::Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: kafka_protocol::records::TimestampType::Creation,
                offset: i,
                sequence: i as i32 - 1,
                timestamp: 1_700_000_000_000 + i,
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from("v")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        kafka_protocol::records::RecordBatchEncoder::encode(
            &mut buf,
            &recs,
            &kafka_protocol::records::RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buf.freeze()
    };
    p.same(
        "Produce v11: keyless records on a compacted topic",
        11,
        &produce("diff-c", 0, mixed, 1),
    )
    .await;
    // Timestamps out of range (topic limit set to one hour back).
    p.quiet(
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(sb("diff-c"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(sb("message.timestamp.before.max.ms"))
                        .with_config_operation(0)
                        .with_value(Some(sb("3600000"))),
                ]),
        ]),
    )
    .await;
    super::admin::wait_config(p, "diff-c", "message.timestamp.before.max.ms", "3600000").await;
    p.same(
        "Produce v11: timestamps too old",
        11,
        &produce("diff-c", 0, batch(2, -1, -1, -1, Compression::None), 1),
    )
    .await;
    // The header's max timestamp left unset: Kafka recomputes it from the records.
    let now = fjord::handlers::now_ms();
    let unset = patch(&keyed_now(now), |v| {
        v[35..43].copy_from_slice(&(-1i64).to_be_bytes())
    });
    p.same(
        "Produce v11: unset max timestamp",
        11,
        &produce("diff-a", 1, unset, 1),
    )
    .await;

    // Fetch by name (v12) and by id (v13+), and its refusals.
    let fetch = |topic: &str, partition: i32, offset: i64| fetch_req(topic, partition, offset, 0);
    p.same("Fetch v12: partition 0 from 0", 12, &fetch("diff-a", 0, 0))
        .await;
    p.read_all(
        "Fetch v12: partition 1 to the end (unset max timestamp rewritten)",
        "diff-a",
        1,
        0,
    )
    .await;
    p.same(
        "Fetch v12: offset out of range",
        12,
        &fetch("diff-a", 0, 1000),
    )
    .await;
    p.same("Fetch v12: unknown topic", 12, &fetch("diff-none", 0, 0))
        .await;
    let by_id = |id| {
        let mut r = fetch("diff-a", 2, 0);
        r.topics[0].topic_id = id;
        r.topics[0].topic = tn("");
        r
    };
    p.each("Fetch v16: by topic id", 16, &by_id(fid), &by_id(kid))
        .await;
    p.same(
        "Fetch v16: unknown topic id",
        16,
        &by_id(uuid::Uuid::from_u128(0x5eed)),
    )
    .await;
    let mut stale = fetch("diff-a", 0, 0);
    stale.topics[0].partitions[0].current_leader_epoch = 5;
    p.same("Fetch v12: leader epoch ahead", 12, &stale).await;

    // ListOffsets.
    for (name, ts) in [
        ("earliest", -2i64),
        ("latest", -1),
        ("max timestamp", -3),
        ("by time", 1_700_000_000_002),
        ("latest tiered", -5),
        ("earliest pending upload", -6),
        ("unknown special", -7),
    ] {
        p.same(
            &format!("ListOffsets v10: {name}"),
            10,
            &list_offsets("diff-a", 0, ts, 0),
        )
        .await;
    }
    p.same(
        "ListOffsets v9: max timestamp of a rewritten batch",
        9,
        &list_offsets("diff-a", 1, -3, 0),
    )
    .await;
    p.same(
        "ListOffsets v9: after every record",
        9,
        &list_offsets("diff-a", 0, 4_000_000_000_000, 0),
    )
    .await;
    p.same(
        "ListOffsets v9: unknown partition",
        9,
        &list_offsets("diff-a", 99, -1, 0),
    )
    .await;
    p.same(
        "ListOffsets v7: read committed latest",
        7,
        &list_offsets("diff-a", 0, -1, 1),
    )
    .await;

    // OffsetForLeaderEpoch.
    let ofle = |epoch: i32, current: i32| {
        OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(tn("diff-a"))
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_leader_epoch(epoch)
                            .with_current_leader_epoch(current),
                    ]),
            ])
    };
    p.same("OffsetForLeaderEpoch v4: epoch 0", 4, &ofle(0, -1))
        .await;
    p.same(
        "OffsetForLeaderEpoch v4: current epoch ahead",
        4,
        &ofle(0, 9),
    )
    .await;

    // DeleteRecords.
    let delete = |offset: i64| {
        DeleteRecordsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(tn("diff-a"))
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(offset),
                    ]),
            ])
    };
    p.same("DeleteRecords v2: below offset 2", 2, &delete(2))
        .await;
    p.same("DeleteRecords v2: past the end", 2, &delete(1000))
        .await;
    p.same("DeleteRecords v2: to the high watermark", 2, &delete(-1))
        .await;
    p.same(
        "ListOffsets v9: earliest after DeleteRecords",
        9,
        &list_offsets("diff-a", 0, -2, 0),
    )
    .await;
    p.same("Fetch v12: below the log start", 12, &fetch("diff-a", 0, 0))
        .await;

    // DescribeLogDirs (paths and sizes differ by nature).
    let ldirs = DescribeLogDirsRequest::default().with_topics(Some(vec![
        describe_log_dirs_request::DescribableLogDirTopic::default()
            .with_topic(tn("diff-a"))
            .with_partitions(vec![0, 1]),
    ]));
    let (f, k) = p.quiet(4, &ldirs).await;
    let shape = |r: &DescribeLogDirsResponse| {
        r.results
            .iter()
            .map(|d| {
                (
                    d.error_code,
                    d.topics
                        .iter()
                        .map(|t| {
                            (
                                t.name.to_string(),
                                t.partitions
                                    .iter()
                                    .map(|p| (p.partition_index, p.is_future_key))
                                    .collect::<std::collections::BTreeSet<_>>(),
                            )
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    p.compare_values(
        "DescribeLogDirs v4: topics and partitions",
        shape(&f),
        shape(&k),
    );

    // DescribeProducers after an idempotent producer wrote.
    let (f, k) = p
        .quiet(
            5,
            &InitProducerIdRequest::default()
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    let idem = |pid: i64| produce("diff-a", 1, batch(3, pid, 0, 0, Compression::None), -1);
    p.each(
        "Produce v11: idempotent",
        11,
        &idem(f.producer_id.0),
        &idem(k.producer_id.0),
    )
    .await;
    p.each(
        "Produce v11: idempotent retry (duplicate)",
        11,
        &idem(f.producer_id.0),
        &idem(k.producer_id.0),
    )
    .await;
    let gap = |pid: i64| produce("diff-a", 1, batch(1, pid, 0, 7, Compression::None), -1);
    p.each(
        "Produce v11: sequence gap",
        11,
        &gap(f.producer_id.0),
        &gap(k.producer_id.0),
    )
    .await;
    let old_epoch = |pid: i64| produce("diff-a", 1, batch(1, pid, -1, 3, Compression::None), -1);
    let _ = old_epoch;
    let dp = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(tn("diff-a"))
            .with_partition_indexes(vec![1]),
    ]);
    p.same("DescribeProducers v0", 0, &dp).await;
}

/// Three records timestamped around `now`.
fn keyed_now(now: i64) -> Bytes {
    let recs: Vec<kafka_protocol::records::Record> = (0..3)
        .map(|i| kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i,
            sequence: i as i32 - 1,
            timestamp: now - 1000 + i,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from("v")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    kafka_protocol::records::RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &kafka_protocol::records::RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}
