//! TxnOffsetCommit: offsets staged in the transaction, visible to OffsetFetch only once the
//! transaction commits. Group membership is checked like a normal commit when the producer
//! passes its consumer's generation (v3+).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::Broker;
use crate::connection::RequestContext;
use crate::txn::coordinator::PendingOffset;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: TxnOffsetCommitRequest,
) -> anyhow::Result<TxnOffsetCommitResponse> {
    let group = req.group_id.as_str();
    let mut staged = Vec::new();
    let mut unknown = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            if broker
                .topics
                .get(t.name.as_str())
                .and_then(|x| x.partition(p.partition_index).cloned())
                .is_none()
            {
                unknown.push((t.name.to_string(), p.partition_index));
                continue;
            }
            staged.push(PendingOffset {
                group: group.to_string(),
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            });
        }
    }
    let stage = |staged| {
        broker.txns.stage_offsets(
            req.transactional_id.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            staged,
        )
    };
    // With the consumer's generation (v3+), it is checked and the offsets staged under the
    // group's lock, so a rebalance cannot fence the member in between. (Lock order: group,
    // then transaction; the transaction coordinator never takes a group lock.)
    let checked = if ctx.api_version >= 3 && req.generation_id >= 0 {
        broker.groups.with_group(group, false, |g| {
            g.validate_commit(
                req.member_id.as_str(),
                req.group_instance_id.as_deref(),
                req.generation_id,
            )?;
            stage(std::mem::take(&mut staged))
        })
    } else {
        None
    };
    let staged = match checked {
        Some(r) => r,
        None => stage(staged),
    };
    // The staged offsets are transaction state: durable before they are acknowledged.
    let error = match staged {
        Ok(()) => super::durable(broker).await.err(),
        Err(e) => Some(e),
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if unknown.contains(&(t.name.to_string(), p.partition_index)) {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        error.map(|e| e.code()).unwrap_or(0)
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Ok(TxnOffsetCommitResponse::default().with_topics(topics))
}
