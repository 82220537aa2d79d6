//! Transactions: InitProducerId, AddPartitionsToTxn, transactional Produce, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn, DescribeTransactions, ListTransactions, and their refusals.

use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;

use super::Pair;
use crate::common::*;

fn transactional(n: usize, pid: i64, epoch: i16, seq: i32) -> bytes::Bytes {
    let b = batch(n, pid, epoch, seq, Compression::None);
    let mut v = b.to_vec();
    let attrs = i16::from_be_bytes([v[21], v[22]]) | 0x10;
    v[21..23].copy_from_slice(&attrs.to_be_bytes());
    fjord::log::batch::fill_crc(&mut v);
    bytes::Bytes::from(v)
}

fn init(tid: &str, timeout: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(sb(tid))))
        .with_transaction_timeout_ms(timeout)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

fn add(tid: &str, pid: i64, epoch: i16) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(sb(tid)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(tn("diff-a"))
                .with_partitions(vec![2]),
        ])
}

fn end(tid: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(TransactionalId(sb(tid)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

pub async fn run(p: &mut Pair) {
    super::groups::warm_up(p, 1, "diff-t").await;
    p.same(
        "FindCoordinator v4: transaction",
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![sb("diff-t")]),
    )
    .await;
    p.same(
        "InitProducerId v5: timeout above the maximum",
        5,
        &init("diff-t", 1_000_000_000),
    )
    .await;
    let (f, k) = p
        .same(
            "InitProducerId v5: transactional",
            5,
            &init("diff-t", 60_000),
        )
        .await;
    let (fp, kp, e) = (f.producer_id.0, k.producer_id.0, f.producer_epoch);
    p.each(
        "AddPartitionsToTxn v3",
        3,
        &add("diff-t", fp, e),
        &add("diff-t", kp, e),
    )
    .await;
    p.each(
        "AddPartitionsToTxn v3: wrong epoch",
        3,
        &add("diff-t", fp, e + 3),
        &add("diff-t", kp, e + 3),
    )
    .await;
    p.same(
        "AddPartitionsToTxn v3: unknown transactional id",
        3,
        &add("diff-none", 5, 0),
    )
    .await;
    let produce = |pid: i64| {
        let mut r = produce_req("diff-a", 2, transactional(2, pid, e, 0), -1);
        r.transactional_id = Some(TransactionalId(sb("diff-t")));
        r
    };
    p.each("Produce v11: transactional", 11, &produce(fp), &produce(kp))
        .await;
    let not_added = |pid: i64| {
        let mut r = produce_req("diff-a", 0, transactional(1, pid, e, 0), -1);
        r.transactional_id = Some(TransactionalId(sb("diff-t")));
        r
    };
    p.each(
        "Produce v11: transactional, partition not in the transaction",
        11,
        &not_added(fp),
        &not_added(kp),
    )
    .await;
    p.same(
        "ListOffsets v9: last stable offset with an open transaction",
        9,
        &ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(1)
            .with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(tn("diff-a"))
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(2)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(-1),
                    ]),
            ]),
    )
    .await;
    let offsets = |pid: i64| {
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(sb("diff-t")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(e)
            .with_group_id(GroupId(sb("diff-tg")))
    };
    super::groups::warm_up(p, 0, "diff-tg").await;
    p.each("AddOffsetsToTxn v3", 3, &offsets(fp), &offsets(kp))
        .await;
    let toc = |pid: i64| {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(sb("diff-t")))
            .with_group_id(GroupId(sb("diff-tg")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(e)
            .with_generation_id(-1)
            .with_member_id(sb(""))
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(tn("diff-a"))
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(2)
                            .with_committed_leader_epoch(-1),
                    ]),
            ])
    };
    p.each("TxnOffsetCommit v3", 3, &toc(fp), &toc(kp)).await;
    let describe = DescribeTransactionsRequest::default().with_transactional_ids(vec![
        TransactionalId(sb("diff-t")),
        TransactionalId(sb("diff-none")),
    ]);
    p.same("DescribeTransactions v0: ongoing", 0, &describe)
        .await;
    p.same(
        "ListTransactions v1: ongoing",
        1,
        &ListTransactionsRequest::default().with_state_filters(vec![sb("Ongoing")]),
    )
    .await;
    p.each(
        "EndTxn v3: wrong epoch",
        3,
        &end("diff-t", fp, e - 1, true),
        &end("diff-t", kp, e - 1, true),
    )
    .await;
    let committed = p
        .each(
            "EndTxn v3: commit",
            3,
            &end("diff-t", fp, e, true),
            &end("diff-t", kp, e, true),
        )
        .await;
    let _ = committed;
    // Kafka writes the markers after answering EndTxn: wait until both say complete.
    wait_complete(p, "diff-t").await;
    p.each(
        "EndTxn v3: commit retried",
        3,
        &end("diff-t", fp, e, true),
        &end("diff-t", kp, e, true),
    )
    .await;
    p.each(
        "EndTxn v3: abort after commit",
        3,
        &end("diff-t", fp, e, false),
        &end("diff-t", kp, e, false),
    )
    .await;
    p.same("DescribeTransactions v0: complete", 0, &describe)
        .await;
    p.same(
        "OffsetFetch v9: transactional offsets committed",
        9,
        &OffsetFetchRequest::default().with_groups(vec![
            offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb("diff-tg")))
                .with_topics(None),
        ]),
    )
    .await;
    p.read_all(
        "Fetch v12: read committed to the end after commit",
        "diff-a",
        2,
        1,
    )
    .await;
    p.same(
        "DescribeProducers v0: transactional",
        0,
        &DescribeProducersRequest::default().with_topics(vec![
            describe_producers_request::TopicRequest::default()
                .with_name(tn("diff-a"))
                .with_partition_indexes(vec![2]),
        ]),
    )
    .await;
    // A new instance fences the old one.
    p.same(
        "InitProducerId v5: new instance",
        5,
        &init("diff-t", 60_000),
    )
    .await;
    p.each(
        "EndTxn v3: fenced instance",
        3,
        &end("diff-t", fp, e, true),
        &end("diff-t", kp, e, true),
    )
    .await;

    // A hanging transaction closed by hand, as `kafka-transactions abort` does it: the
    // producer's open transaction on diff-a/1 gets an ABORT marker through WriteTxnMarkers.
    let (f, k) = p.quiet(5, &init("diff-h", 60_000)).await;
    let (fp, kp, e) = (f.producer_id.0, k.producer_id.0, f.producer_epoch);
    let add3 = |pid: i64| {
        let mut r = add("diff-h", pid, e);
        r.v3_and_below_topics[0].partitions = vec![1];
        r
    };
    p.each("AddPartitionsToTxn v3: another id", 3, &add3(fp), &add3(kp))
        .await;
    let produce3 = |pid: i64| {
        let mut r = produce_req("diff-a", 1, transactional(2, pid, e, 0), -1);
        r.transactional_id = Some(TransactionalId(sb("diff-h")));
        r
    };
    p.each(
        "Produce v11: transactional to be aborted by hand",
        11,
        &produce3(fp),
        &produce3(kp),
    )
    .await;
    let markers = |pid: i64, partitions: Vec<i32>| {
        WriteTxnMarkersRequest::default().with_markers(vec![
            write_txn_markers_request::WritableTxnMarker::default()
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(e)
                .with_transaction_result(false)
                .with_coordinator_epoch(0)
                .with_topics(vec![
                    write_txn_markers_request::WritableTxnMarkerTopic::default()
                        .with_name(tn("diff-a"))
                        .with_partition_indexes(partitions),
                ]),
        ])
    };
    p.each(
        "WriteTxnMarkers v1: abort by hand",
        1,
        &markers(fp, vec![3]),
        &markers(kp, vec![3]),
    )
    .await;
    p.each(
        "WriteTxnMarkers v1: unknown partition",
        1,
        &markers(fp, vec![77]),
        &markers(kp, vec![77]),
    )
    .await;
    p.read_all(
        "Fetch v12: read committed after the abort by hand",
        "diff-a",
        3,
        1,
    )
    .await;
}

/// Waits until DescribeTransactions shows `id` complete on both brokers.
async fn wait_complete(p: &mut Pair, id: &str) {
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(sb(id))]);
    for _ in 0..100 {
        let (f, k) = p.quiet(0, &req).await;
        let done = |r: &DescribeTransactionsResponse| {
            r.transaction_states[0]
                .transaction_state
                .starts_with("Complete")
        };
        if done(&f) && done(&k) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("transaction {id} did not complete");
}
