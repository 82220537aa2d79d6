//! WriteTxnMarkers: COMMIT/ABORT markers written to named partitions. Kafka's transaction
//! coordinators send it to partition leaders; `kafka-transactions abort` sends it to close a
//! hanging transaction the coordinator no longer knows.
//!
//! A marker from an older producer epoch than the partition has seen is refused
//! (PRODUCER_FENCED), as a zombie coordinator's would be in Kafka.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::now_ms;
use crate::Broker;
use crate::connection::RequestContext;
use crate::log::AppendError;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: WriteTxnMarkersRequest,
) -> anyhow::Result<WriteTxnMarkersResponse> {
    let b = broker.arc();
    // Markers are appends (segment writes, index checkpoints): on the blocking pool.
    // Brokers (CLUSTER_ACTION) and `kafka-transactions abort` (ALTER) on the cluster.
    let authz = Authz::of(broker, ctx);
    if !authz.cluster_sees(AclOperation::ClusterAction) && !authz.cluster(AclOperation::Alter) {
        return Ok(WriteTxnMarkersResponse::default().with_markers(denied(&req)));
    }
    let mut markers = tokio::task::spawn_blocking(move || write_all(&b, &req)).await?;
    if broker.config.flush_on_ack() {
        broker.store.flush_all_after_write().await?;
    }
    // As Kafka's leader, answer once every ISR member has the marker (acks=all): the
    // coordinator then forgets the transaction.
    let timeout = broker.groups.settings.offsets_commit_timeout_ms;
    for m in &mut markers {
        for t in &mut m.topics {
            let topic = broker.topics.get(t.name.as_str());
            for p in &mut t.partitions {
                if p.error_code != 0 {
                    continue;
                }
                let done = if t.name.as_str() == crate::group::journal::TOPIC {
                    broker
                        .groups
                        .journal
                        .replicated_partition(p.partition_index, timeout)
                        .await
                } else if let Some(log) =
                    topic.as_ref().and_then(|x| x.partition(p.partition_index))
                {
                    crate::group::journal::await_hw(
                        log,
                        log.log_end_offset(),
                        log.leader_epoch(),
                        timeout,
                    )
                    .await
                } else {
                    Ok(())
                };
                if let Err(e) = done {
                    p.error_code = e.code();
                }
            }
        }
    }
    Ok(WriteTxnMarkersResponse::default().with_markers(markers))
}

/// Every partition of the request refused with CLUSTER_AUTHORIZATION_FAILED.
fn denied(req: &WriteTxnMarkersRequest) -> Vec<WritableTxnMarkerResult> {
    req.markers
        .iter()
        .map(|m| {
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(
                    m.topics
                        .iter()
                        .map(|t| {
                            WritableTxnMarkerTopicResult::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partition_indexes
                                        .iter()
                                        .map(|p| {
                                            WritableTxnMarkerPartitionResult::default()
                                                .with_partition_index(*p)
                                                .with_error_code(
                                                    ResponseError::ClusterAuthorizationFailed
                                                        .code(),
                                                )
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                )
        })
        .collect()
}

fn write_all(broker: &Broker, req: &WriteTxnMarkersRequest) -> Vec<WritableTxnMarkerResult> {
    req.markers
        .iter()
        .map(|m| {
            let pid = m.producer_id.0;
            let topics = m
                .topics
                .iter()
                .map(|t| {
                    let topic = broker.topics.get(t.name.as_str());
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|&p| {
                            let code = match topic.as_ref().and_then(|x| x.partition(p)) {
                                None => ResponseError::UnknownTopicOrPartition.code(),
                                // A group's partition: its coordinator completes the
                                // transaction's pending offsets (Kafka's coordinator reads
                                // the marker it appends there).
                                Some(_) if t.name.as_str() == crate::group::journal::TOPIC => {
                                    if !broker.groups.owns_partition(p) {
                                        ResponseError::NotLeaderOrFollower.code()
                                    } else {
                                        match broker.groups.complete_txn(
                                            p,
                                            pid,
                                            m.producer_epoch,
                                            m.transaction_result,
                                            now_ms(),
                                        ) {
                                            Ok(()) => 0,
                                            Err(e) => e.code(),
                                        }
                                    }
                                }
                                Some(log) => {
                                    let seen = log
                                        .producers()
                                        .iter()
                                        .find(|(id, ..)| *id == pid)
                                        .map(|(_, epoch, ..)| *epoch);
                                    if seen.is_some_and(|e| e > m.producer_epoch) {
                                        ResponseError::ProducerFenced.code()
                                    } else {
                                        match log.write_marker(
                                            pid,
                                            m.producer_epoch,
                                            m.transaction_result,
                                            m.coordinator_epoch,
                                            now_ms(),
                                        ) {
                                            Ok(_) => 0,
                                            Err(AppendError::Storage(e)) => {
                                                tracing::error!(topic = %t.name.as_str(), partition = p, error = %e, "cannot write transaction marker");
                                                ResponseError::KafkaStorageError.code()
                                            }
                                            Err(AppendError::NotLeader) => {
                                                ResponseError::NotLeaderOrFollower.code()
                                            }
                                            Err(e) => {
                                                tracing::warn!(topic = %t.name.as_str(), partition = p, error = ?e, "transaction marker refused");
                                                ResponseError::UnknownServerError.code()
                                            }
                                        }
                                    }
                                }
                            };
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(p)
                                .with_error_code(code)
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect()
}
