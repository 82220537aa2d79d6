//! AddPartitionsToTxn: v0-3 from producers (one transaction), v4+ batched with verify-only
//! checks (the broker-to-broker form of KIP-890).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

/// Per-topic results for one transaction: unknown partitions fail alone, the others are
/// OPERATION_NOT_ATTEMPTED (as in Kafka) or share the transaction's outcome.
#[allow(clippy::too_many_arguments)]
fn add(
    broker: &Broker,
    v: i16,
    tid: &str,
    pid: i64,
    epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
    authz: &Authz,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let unknown = |t: &str, p: i32| {
        broker
            .topics
            .get(t)
            .and_then(|x| x.partition(p).cloned())
            .is_none()
    };
    let any_unknown = topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| unknown(t.name.as_str(), *p)));
    // A client (v0-3) needs WRITE on each topic, and never adds the coordinators' own
    // topics (their markers would be written there), as in Kafka; brokers (v4+) are
    // checked for CLUSTER_ACTION by the caller.
    let denied = |t: &str| {
        v <= 3
            && (t == crate::group::journal::TOPIC
                || t == crate::txn::coordinator::TOPIC
                || !authz.topic(AclOperation::Write, t))
    };
    let any_denied = topics.iter().any(|t| denied(t.name.as_str()));
    let outcome = if !authz.transactional_id(AclOperation::Write, tid) {
        Some(Err(ResponseError::TransactionalIdAuthorizationFailed))
    } else if any_denied || any_unknown {
        None
    } else if let Err(e) = broker.txns.check(tid) {
        // Not the coordinator (now): every partition gets the error.
        Some(Err(e))
    } else {
        let parts: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p)))
            .collect();
        Some(
            broker
                .txns
                .add_partitions(tid, pid, epoch, &parts, verify_only),
        )
    };
    topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|p| {
                    let code = match &outcome {
                        None if denied(t.name.as_str()) => {
                            ResponseError::TopicAuthorizationFailed.code()
                        }
                        None if unknown(t.name.as_str(), *p) => {
                            ResponseError::UnknownTopicOrPartition.code()
                        }
                        None => ResponseError::OperationNotAttempted.code(),
                        Some(Ok(())) => 0,
                        Some(Err(e)) => {
                            let e = if *e == ResponseError::ProducerFenced && v < 2 {
                                ResponseError::InvalidProducerEpoch
                            } else {
                                *e
                            };
                            e.code()
                        }
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect()
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: AddPartitionsToTxnRequest,
) -> anyhow::Result<AddPartitionsToTxnResponse> {
    let v = ctx.api_version;
    // A transaction's lock may be held by a completion sending markers to other brokers:
    // the coordinator is asked on the blocking pool, not an async worker.
    let b = broker.arc();
    let authz = Authz::of(broker, ctx);
    if v <= 3 {
        let (mut results, req) = tokio::task::spawn_blocking(move || {
            let results = add(
                &b,
                v,
                req.v3_and_below_transactional_id.as_str(),
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                false,
                &req.v3_and_below_topics,
                &authz,
            );
            (results, req)
        })
        .await?;
        super::unless_durable(
            super::txn_durable(broker, req.v3_and_below_transactional_id.as_str()).await,
            results
                .iter_mut()
                .flat_map(|t| t.results_by_partition.iter_mut())
                .map(|p| &mut p.partition_error_code),
        );
        return Ok(
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
        );
    }
    // v4+ is the brokers' (verification before a transactional produce): CLUSTER_ACTION.
    if !authz.cluster(AclOperation::ClusterAction) {
        return Ok(AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code()));
    }
    let mut results: Vec<AddPartitionsToTxnResult> = tokio::task::spawn_blocking(move || {
        req.transactions
            .iter()
            .map(|t| {
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id.clone())
                    .with_topic_results(add(
                        &b,
                        v,
                        t.transactional_id.as_str(),
                        t.producer_id.0,
                        t.producer_epoch,
                        t.verify_only,
                        &t.topics,
                        &authz,
                    ))
            })
            .collect()
    })
    .await?;
    let flushed = broker.store.flush_all_after_write().await.map_err(|e| {
        tracing::error!(error = %e, "flushing the store failed");
        ResponseError::KafkaStorageError
    });
    for r in &mut results {
        let done = match flushed {
            Ok(()) => broker.txn_replicated(r.transactional_id.as_str()).await,
            Err(e) => Err(e),
        };
        super::unless_durable(
            done,
            r.topic_results
                .iter_mut()
                .flat_map(|t| t.results_by_partition.iter_mut())
                .map(|p| &mut p.partition_error_code),
        );
    }
    Ok(AddPartitionsToTxnResponse::default().with_results_by_transaction(results))
}
