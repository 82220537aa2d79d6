//! Transactions through the wire protocol: coordinator, markers, LSO, read_committed,
//! fencing, KIP-890 epoch bumps, transactional offsets, timeouts and restarts.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let recs: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{seq}-{i}"))),
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

async fn init(c: &mut Client, tid: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let r = c
        .call(
            5,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(sb(tid))))
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

async fn produce_txn(
    c: &mut Client,
    version: i16,
    tid: &str,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> i16 {
    let mut req = produce_req(topic, partition, batch, -1);
    req.transactional_id = Some(TransactionalId(sb(tid)));
    c.call(version, &req).await.responses[0].partition_responses[0].error_code
}

async fn end_txn(
    c: &mut Client,
    version: i16,
    tid: &str,
    pid: i64,
    epoch: i16,
    commit: bool,
) -> EndTxnResponse {
    c.call(
        version,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(sb(tid)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit),
    )
    .await
}

async fn fetch_isolated(
    c: &mut Client,
    topic: &str,
    isolation: i8,
) -> fetch_response::PartitionData {
    let mut req = fetch_req(topic, 0, 0, 0);
    req.isolation_level = isolation;
    c.call(12, &req)
        .await
        .responses
        .remove(0)
        .partitions
        .remove(0)
}

fn data_records(p: &fetch_response::PartitionData) -> Vec<Record> {
    decode_records(p.records.clone().unwrap())
        .into_iter()
        .filter(|r| !r.control)
        .collect()
}

#[tokio::test]
async fn classic_transactions_commit_abort_and_read_committed() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("tx", 1).await;
    let fc = c
        .call(
            3,
            &FindCoordinatorRequest::default()
                .with_key(sb("app"))
                .with_key_type(1),
        )
        .await;
    assert_eq!((fc.error_code, fc.node_id.0), (0, 1));
    let (err, pid, epoch) = init(&mut c, "app", 60_000).await;
    assert_eq!((err, epoch), (0, 0));
    // Without AddPartitionsToTxn a pre-KIP-890 produce is refused: INVALID_TXN_STATE
    // before v11, TRANSACTION_ABORTABLE from v11 (as Kafka, see tests/differential).
    assert_eq!(
        produce_txn(&mut c, 10, "app", "tx", 0, txn_batch(pid, 0, 0, 2)).await,
        ResponseError::InvalidTxnState.code()
    );
    assert_eq!(
        produce_txn(&mut c, 11, "app", "tx", 0, txn_batch(pid, 0, 0, 2)).await,
        ResponseError::TransactionAbortable.code()
    );
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(sb("app")))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(tn("tx"))
                .with_partitions(vec![0]),
        ]);
    let r = c.call(3, &add).await;
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(
        produce_txn(&mut c, 11, "app", "tx", 0, txn_batch(pid, 0, 0, 3)).await,
        0
    );
    // Open transaction: the LSO holds read_committed readers back.
    let p = fetch_isolated(&mut c, "tx", 1).await;
    assert_eq!((p.high_watermark, p.last_stable_offset), (3, 0));
    assert!(data_records(&p).is_empty());
    assert_eq!(
        data_records(&fetch_isolated(&mut c, "tx", 0).await).len(),
        3
    );
    let d = c
        .call(
            0,
            &DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(sb("app"))]),
        )
        .await;
    assert_eq!(
        d.transaction_states[0].transaction_state.as_str(),
        "Ongoing"
    );
    let e = end_txn(&mut c, 4, "app", pid, epoch, true).await;
    assert_eq!(e.error_code, 0);
    // Committed: visible, followed by a COMMIT marker.
    let p = fetch_isolated(&mut c, "tx", 1).await;
    assert_eq!((p.high_watermark, p.last_stable_offset), (4, 4));
    assert_eq!(data_records(&p).len(), 3);
    // Second transaction, aborted.
    c.call(3, &add).await;
    assert_eq!(
        produce_txn(&mut c, 11, "app", "tx", 0, txn_batch(pid, 0, 3, 2)).await,
        0
    );
    assert_eq!(
        end_txn(&mut c, 4, "app", pid, epoch, false)
            .await
            .error_code,
        0
    );
    let p = fetch_isolated(&mut c, "tx", 1).await;
    assert_eq!(p.last_stable_offset, 7);
    let aborted = p.aborted_transactions.clone().unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (aborted[0].producer_id.0, aborted[0].first_offset),
        (pid, 4)
    );
    // A retried EndTxn is answered the same; a commit after an abort is refused.
    assert_eq!(
        end_txn(&mut c, 4, "app", pid, epoch, false)
            .await
            .error_code,
        0
    );
    assert_eq!(
        end_txn(&mut c, 4, "app", pid, epoch, true).await.error_code,
        ResponseError::InvalidTxnState.code()
    );
    // A new instance fences the old one.
    let (_, pid2, epoch2) = init(&mut c, "app", 60_000).await;
    assert_eq!((pid2, epoch2), (pid, 1));
    c.call(3, &add).await;
    let fenced = c.call(3, &add).await;
    assert_eq!(
        fenced.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        ResponseError::ProducerFenced.code()
    );
    let lt = c
        .call(
            1,
            &ListTransactionsRequest::default().with_duration_filter(-1),
        )
        .await;
    assert_eq!(lt.transaction_states.len(), 1);
    let dp = c
        .call(
            0,
            &DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(tn("tx"))
                    .with_partition_indexes(vec![0]),
            ]),
        )
        .await;
    assert_eq!(
        dp.topics[0].partitions[0].active_producers[0].producer_id.0,
        pid
    );
}

#[tokio::test]
async fn kip890_implicit_partitions_epoch_bump_and_offsets() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("in", 1).await;
    c.create_topic("out", 2).await;
    // ApiVersions finalizes transaction.version 2.
    let av = c.call(4, &ApiVersionsRequest::default()).await;
    assert!(
        av.finalized_features
            .iter()
            .any(|f| f.name.as_str() == "transaction.version" && f.max_version_level == 2)
    );
    assert_eq!(av.finalized_features_epoch, 0);
    let (_, pid, epoch) = init(&mut c, "etl", 60_000).await;
    // Produce v12+: the partitions join the transaction on their own.
    assert_eq!(
        produce_txn(&mut c, 12, "etl", "out", 0, txn_batch(pid, epoch, 0, 2)).await,
        0
    );
    assert_eq!(
        produce_txn(&mut c, 12, "etl", "out", 1, txn_batch(pid, epoch, 0, 1)).await,
        0
    );
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(sb("etl")))
        .with_group_id(GroupId(sb("etl-group")))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(tn("in"))
                .with_partitions(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(10)
                        .with_committed_leader_epoch(-1),
                ]),
        ]);
    assert_eq!(
        c.call(5, &commit).await.topics[0].partitions[0].error_code,
        0
    );
    // Staged offsets are invisible (and unstable for require_stable readers) until commit.
    let of = |stable: bool| {
        OffsetFetchRequest::default()
            .with_require_stable(stable)
            .with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(sb("etl-group")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(tn("in"))
                            .with_partition_indexes(vec![0]),
                    ])),
            ])
    };
    let r = c.call(8, &of(false)).await;
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, -1);
    let r = c.call(8, &of(true)).await;
    assert_eq!(
        r.groups[0].topics[0].partitions[0].error_code,
        ResponseError::UnstableOffsetCommit.code()
    );
    // EndTxn v5 bumps the epoch; markers carry it; a retry with the old epoch succeeds.
    let e = end_txn(&mut c, 5, "etl", pid, epoch, true).await;
    assert_eq!(
        (e.error_code, e.producer_id.0, e.producer_epoch),
        (0, pid, epoch + 1)
    );
    let again = end_txn(&mut c, 5, "etl", pid, epoch, true).await;
    assert_eq!((again.error_code, again.producer_epoch), (0, epoch + 1));
    let r = c.call(8, &of(true)).await;
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 10);
    // The next transaction runs at the new epoch from sequence 0; the old epoch is fenced.
    assert_eq!(
        produce_txn(&mut c, 12, "etl", "out", 0, txn_batch(pid, epoch + 1, 0, 1)).await,
        0
    );
    assert_eq!(
        produce_txn(&mut c, 12, "etl", "out", 1, txn_batch(pid, epoch, 1, 1)).await,
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(
        end_txn(&mut c, 5, "etl", pid, epoch + 1, false)
            .await
            .error_code,
        0
    );
    // read_committed: both transactions are below the LSO; the aborted one is listed so the
    // client drops its record (offset 3, after the COMMIT marker at 2).
    let p = fetch_isolated(&mut c, "out", 1).await;
    assert_eq!((p.high_watermark, p.last_stable_offset), (5, 5));
    assert_eq!(data_records(&p).len(), 3);
    let aborted = p.aborted_transactions.unwrap();
    assert_eq!((aborted.len(), aborted[0].first_offset), (1, 3));
}

#[tokio::test]
async fn open_transactions_survive_restart_and_time_out() {
    let mut b = start().await;
    let mut c = b.client().await;
    c.create_topic("slow", 1).await;
    let (_, pid, epoch) = init(&mut c, "slow-app", 2_000).await;
    assert_eq!(
        produce_txn(
            &mut c,
            12,
            "slow-app",
            "slow",
            0,
            txn_batch(pid, epoch, 0, 2)
        )
        .await,
        0
    );
    drop(c);
    b.restart(&[]).await;
    let mut c = b.client().await;
    let p = fetch_isolated(&mut c, "slow", 1).await;
    assert_eq!(p.last_stable_offset, 0, "still open after the restart");
    // The transaction times out and is aborted with a fencing epoch.
    let mut state = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let d = c
            .call(
                0,
                &DescribeTransactionsRequest::default()
                    .with_transactional_ids(vec![TransactionalId(sb("slow-app"))]),
            )
            .await;
        state = d.transaction_states[0].transaction_state.to_string();
        if state == "CompleteAbort" {
            assert_eq!(d.transaction_states[0].producer_epoch, epoch + 1);
            break;
        }
    }
    assert_eq!(state, "CompleteAbort");
    let p = fetch_isolated(&mut c, "slow", 1).await;
    assert_eq!(p.last_stable_offset, 3);
    assert_eq!(p.aborted_transactions.unwrap().len(), 1);
    assert_eq!(
        end_txn(&mut c, 5, "slow-app", pid, epoch, true)
            .await
            .error_code,
        ResponseError::InvalidTxnState.code()
    );
}

#[tokio::test]
async fn a_zombie_one_epoch_behind_is_fenced_not_invalid() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("z", 1).await;
    let (_, pid, old) = init(&mut c, "zz", 60_000).await;
    let (_, _, new) = init(&mut c, "zz", 60_000).await;
    assert_eq!(new, old + 1);
    // The new instance opens a transaction; the zombie's abort (EndTxn v5) must be fenced.
    assert_eq!(
        produce_txn(&mut c, 12, "zz", "z", 0, txn_batch(pid, new, 0, 1)).await,
        0
    );
    let e = end_txn(&mut c, 5, "zz", pid, old, false).await;
    assert_eq!(e.error_code, ResponseError::ProducerFenced.code());
    let d = c
        .call(
            0,
            &DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(sb("zz"))]),
        )
        .await;
    assert_eq!(
        d.transaction_states[0].transaction_state.as_str(),
        "Ongoing"
    );
}
