//! Upgrade: a data dir written by the previous release (commit 09783f1, before cluster
//! mode) must open and serve unchanged on a node started without cluster settings.
//! The fixture and how it was made: tests/fixtures/README.md.

mod common;

use std::path::Path;

use bytes::{Buf, Bytes};
use common::*;
use kafka_protocol::messages::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-dir-09783f1.tar.gz"
);
const TOPIC: &str = "upgraded";
/// End offset of both partitions as written: 12 records and a COMMIT marker.
const END: i64 = 13;

/// Extracts the fixture into `into`; returns the data dir (`into/data`).
fn extract(into: &Path) -> std::path::PathBuf {
    let st = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(FIXTURE)
        .arg("-C")
        .arg(into)
        .status()
        .expect("run tar");
    assert!(st.success(), "tar failed: {st}");
    into.join("data")
}

/// The topic id the old release gave `upgraded`, read from its partition directories
/// (`logs/<id as 32 hex digits>-<partition>`).
fn id_on_disk(dir: &Path) -> uuid::Uuid {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .map(|n| n.rsplit_once('-').unwrap().0.to_string())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one topic in the fixture: {ids:?}");
    uuid::Uuid::parse_str(&ids[0]).unwrap()
}

async fn topic_metadata(c: &mut Client) -> metadata_response::MetadataResponseTopic {
    let m = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    // The fixture's topic, with `__consumer_offsets` and `__transaction_state`, made at the
    // first start to take the fixture's group and transactional id (kept in the store by
    // earlier releases).
    let names: Vec<(String, bool)> = m
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.is_internal))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names.contains(&("__consumer_offsets".to_string(), true)),
        "{names:?}"
    );
    assert!(
        names.contains(&("__transaction_state".to_string(), true)),
        "{names:?}"
    );
    let t = m.topics.iter().find(|t| !t.is_internal).unwrap().clone();
    assert_eq!(t.name.as_ref().unwrap().0.as_str(), TOPIC);
    assert_eq!(t.error_code, 0);
    t
}

async fn end_offsets(c: &mut Client) -> Vec<(i16, i64)> {
    let r = c
        .call(
            7,
            &ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    list_offsets_request::ListOffsetsTopic::default()
                        .with_name(tn(TOPIC))
                        .with_partitions(
                            (0..2)
                                .map(|p| {
                                    list_offsets_request::ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_current_leader_epoch(-1)
                                        .with_timestamp(-1)
                                })
                                .collect(),
                        ),
                ]),
        )
        .await;
    let mut ps: Vec<_> = r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.offset))
        .collect();
    ps.sort();
    ps.into_iter().map(|(_, e, o)| (e, o)).collect()
}

/// (offset, attributes, producer id) of each batch in raw v2 record-set bytes.
fn batch_headers(mut b: Bytes) -> Vec<(i64, i16, i64)> {
    let mut out = Vec::new();
    while b.remaining() >= 61 {
        let base = b.get_i64();
        let len = b.get_i32() as usize;
        let mut body = b.split_to(len);
        body.advance(4 + 1 + 4); // partition leader epoch, magic, crc
        let attrs = body.get_i16();
        body.advance(4 + 8 + 8); // last offset delta, first and max timestamps
        out.push((base, attrs, body.get_i64()));
    }
    out
}

/// Length of the leading batches of `b` that start before END.
fn fixture_len(b: &Bytes) -> usize {
    let mut at = 0;
    while at + 12 <= b.len() {
        let base = i64::from_be_bytes(b[at..at + 8].try_into().unwrap());
        if base >= END {
            break;
        }
        at += 12 + i32::from_be_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    at
}

/// Checks everything the old release wrote (see tests/fixtures/README.md); `ends` are the
/// partitions' current end offsets (END plus whatever this test appended).
async fn check_fixture(c: &mut Client, expected_id: uuid::Uuid, ends: [i64; 2]) {
    let t = topic_metadata(c).await;
    assert_eq!(t.topic_id, expected_id, "topic id changed");
    let mut parts: Vec<_> = t
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.leader_id.0))
        .collect();
    parts.sort();
    assert_eq!(parts, vec![(0, 0, 1), (1, 0, 1)]);

    // The topic config overrides, as dynamic topic configs (source 1).
    let d = c
        .call(
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(sb(TOPIC)),
            ]),
        )
        .await;
    assert_eq!(d.results[0].error_code, 0);
    for (name, value) in [
        ("retention.ms", "3155760000000"),
        ("max.message.bytes", "500000"),
    ] {
        let e = d.results[0]
            .configs
            .iter()
            .find(|e| e.name.as_str() == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(
            (e.value.as_ref().map(|v| v.as_str()), e.config_source),
            (Some(value), 1),
            "{name}"
        );
    }

    // Every record, byte for byte, and the batches they came in.
    for p in 0..2 {
        let f = c.fetch(TOPIC, p, 0, 100).await;
        assert_eq!(f.error_code, 0);
        assert_eq!(f.high_watermark, ends[p as usize]);
        assert_eq!(f.last_stable_offset, ends[p as usize]);
        // Only the fixture's batches (those starting before END).
        let raw = f.records.clone().expect("records");
        let raw = raw.slice(..fixture_len(&raw));
        let batches = batch_headers(raw.clone());
        let shapes: Vec<(i64, i16, bool)> = batches
            .iter()
            .map(|&(o, a, pid)| (o, a, pid >= 0))
            .collect();
        // Plain; gzip (codec 1) idempotent; transactional (bit 4); COMMIT marker
        // (transactional + control, bit 5).
        assert_eq!(
            shapes,
            vec![
                (0, 0, false),
                (5, 1, true),
                (10, 0x10, true),
                (12, 0x30, true)
            ],
            "partition {p} batches"
        );
        assert_eq!(batches[2].2, batches[3].2, "marker from the txn producer");
        let got: Vec<(i64, String, String, i64)> = decode_records(raw)
            .into_iter()
            .filter(|r| !r.control)
            .map(|r| {
                let s = |b: Option<Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
                assert!(r.headers.is_empty());
                (r.offset, s(r.key), s(r.value), r.timestamp)
            })
            .collect();
        let want: Vec<(i64, String, String, i64)> = (0..12)
            .map(|i| {
                let (k, v) = if i < 10 {
                    (format!("k-{p}-{i}"), format!("v-{p}-{i}"))
                } else {
                    (format!("t-{p}-{i}"), format!("tv-{p}-{i}"))
                };
                (i, k, v, 1_700_000_000_000 + p as i64 * 1000 + i)
            })
            .collect();
        assert_eq!(got, want, "partition {p} records");
    }
}

async fn committed(c: &mut Client) -> Vec<(i32, i16, i64, String)> {
    let r = c
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(sb("upgrade-group")))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(tn(TOPIC))
                        .with_partition_indexes(vec![0, 1]),
                ])),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let mut ps: Vec<_> = r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            let m = p
                .metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            (p.partition_index, p.error_code, p.committed_offset, m)
        })
        .collect();
    ps.sort();
    ps
}

/// The fixture's transactional id as DescribeTransactions reports it: (error, state).
async fn txn_state(c: &mut Client) -> (i16, String) {
    let r = c
        .call(
            0,
            &kafka_protocol::messages::DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![kafka_protocol::messages::TransactionalId(sb(
                    "upgrade-txn",
                ))]),
        )
        .await;
    let s = &r.transaction_states[0];
    (s.error_code, s.transaction_state.to_string())
}

#[tokio::test]
async fn data_dir_from_09783f1_opens_and_serves_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = extract(tmp.path());
    let id = id_on_disk(&dir);

    // No cluster settings: today's single node.
    let mut b = start_in(&dir, &[]).await;
    let mut c = b.client().await;
    check_fixture(&mut c, id, [END, END]).await;
    assert_eq!(end_offsets(&mut c).await, vec![(0, END), (0, END)]);
    // confluent-kafka-python sent the metadata strings with their C NUL terminator, so
    // that is what the old release stored and must hand back.
    let group = vec![(0, 0, 4, "m0\0".to_string()), (1, 0, 7, "m1\0".to_string())];
    assert_eq!(committed(&mut c).await, group);
    // The transactional id moved into __transaction_state with its state.
    let txn = (0, "CompleteCommit".to_string());
    assert_eq!(txn_state(&mut c).await, txn);

    // New writes go after the old records.
    assert_eq!(c.produce(TOPIC, 0, plain(3), 1).await, (0, END));
    assert_eq!(c.produce(TOPIC, 1, plain(2), -1).await, (0, END));
    let f = c.fetch(TOPIC, 0, END, 100).await;
    let offs: Vec<i64> = decode_records(f.records.unwrap())
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offs, vec![END, END + 1, END + 2]);
    assert_eq!(end_offsets(&mut c).await, vec![(0, END + 3), (0, END + 2)]);
    drop(c);

    // A second start on the same dir: same id, the old data and the new appends.
    b.restart(&[]).await;
    let mut c = b.client().await;
    check_fixture(&mut c, id, [END + 3, END + 2]).await;
    assert_eq!(end_offsets(&mut c).await, vec![(0, END + 3), (0, END + 2)]);
    assert_eq!(committed(&mut c).await, group);
    assert_eq!(txn_state(&mut c).await, txn);
    let f = c.fetch(TOPIC, 1, END, 100).await;
    let recs = decode_records(f.records.unwrap());
    assert_eq!(
        recs.iter()
            .map(|r| (r.offset, r.key.clone().unwrap()))
            .collect::<Vec<_>>(),
        vec![(END, Bytes::from("key-0")), (END + 1, Bytes::from("key-1"))]
    );
    b.stop().await;
}
