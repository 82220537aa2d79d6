//! TxnOffsetCommit, at the group's coordinator: offsets held as pending in the group's
//! `__consumer_offsets` partition, visible to OffsetFetch only once the transaction commits
//! (the transaction coordinator's marker for that partition). Group membership is checked
//! like a normal commit when the producer passes its consumer's generation (v3+).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::Broker;
use crate::connection::RequestContext;
use crate::group::offsets::Committed;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

/// Checks the group (this broker must coordinate it; with the consumer's generation, v3+,
/// the member like a normal commit) and the transaction (with its coordinator, here or on
/// another broker: the group's `__consumer_offsets` partition joins it, KIP-890), then holds
/// the offsets in the group's partition until the transaction's marker arrives. Whether it
/// wrote.
async fn stage(
    broker: &Broker,
    ctx: &RequestContext,
    req: &TxnOffsetCommitRequest,
    staged: Vec<(String, i32, Committed)>,
) -> Result<bool, ResponseError> {
    let group = req.group_id.as_str();
    broker.groups.check(group)?;
    let p = broker
        .groups
        .journal
        .partition_of(group)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    let b = broker.arc();
    let (tid, pid, epoch) = (
        req.transactional_id.to_string(),
        req.producer_id.0,
        req.producer_epoch,
    );
    let verified = tokio::task::spawn_blocking(move || {
        b.verify_txn_write(&tid, pid, epoch, crate::group::journal::TOPIC, p, true)
    })
    .await
    .map_err(|_| ResponseError::UnknownServerError)?;
    match verified {
        // The partition may have joined the transaction at a coordinator here: durable
        // first (a coordinator elsewhere did that before answering).
        Ok(true) => super::txn_durable(broker, req.transactional_id.as_str()).await?,
        Ok(false) => {}
        // The transaction's coordinator is moving: retry here, the group's coordinator has
        // not moved (NOT_COORDINATOR would send the client to look the group up again).
        Err(
            ResponseError::CoordinatorNotAvailable
            | ResponseError::NotCoordinator
            | ResponseError::CoordinatorLoadInProgress,
        ) => return Err(ResponseError::CoordinatorLoadInProgress),
        Err(e) => return Err(e),
    }
    if staged.is_empty() {
        return Ok(false);
    }
    // With the consumer's generation, an existing group checks its member (a group that
    // does not exist has none to check, as before).
    let check_member =
        ctx.api_version >= 3 && req.generation_id >= 0 && broker.groups.get(group).is_some();
    broker
        .groups
        .with_group(group, true, |g| {
            if check_member {
                g.validate_commit(
                    req.member_id.as_str(),
                    req.group_instance_id.as_deref(),
                    req.generation_id,
                )?;
            }
            broker
                .groups
                .stage_txn_offsets(group, pid, epoch, &staged)?;
            Ok(true)
        })
        .unwrap_or(Err(ResponseError::CoordinatorNotAvailable))
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: TxnOffsetCommitRequest,
) -> anyhow::Result<TxnOffsetCommitResponse> {
    let group = req.group_id.as_str();
    let now = super::now_ms();
    let mut staged = Vec::new();
    let mut unknown = Vec::new();
    let mut too_large = Vec::new();
    let max_meta = broker.groups.settings.offset_metadata_max_bytes;
    // Kafka's order: WRITE on the transactional id and READ on the group for the whole
    // request, then READ on each topic, before anything says whether a topic exists.
    let authz = Authz::of(broker, ctx);
    let refused = if !authz.transactional_id(AclOperation::Write, req.transactional_id.as_str()) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else {
        authz.group_check(AclOperation::Read, group).err()
    };
    let mut denied = Vec::new();
    for t in &req.topics {
        if refused.is_some() {
            break;
        }
        if !authz.topic(AclOperation::Read, t.name.as_str()) {
            denied.push(t.name.to_string());
            continue;
        }
        for p in &t.partitions {
            if p.committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > max_meta)
            {
                too_large.push((t.name.to_string(), p.partition_index));
                continue;
            }
            if broker
                .topics
                .get(t.name.as_str())
                .and_then(|x| x.partition(p.partition_index).cloned())
                .is_none()
            {
                unknown.push((t.name.to_string(), p.partition_index));
                continue;
            }
            staged.push((
                t.name.to_string(),
                p.partition_index,
                Committed {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    commit_timestamp: now,
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                },
            ));
        }
    }
    // The partitions that passed are committed; the others carry their own error.
    let error = if refused.is_some() {
        refused
    } else {
        match stage(broker, ctx, &req, staged).await {
            Ok(wrote) => crate::group::durable(broker, group, wrote).await.err(),
            Err(e) => Some(e),
        }
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let key = (t.name.to_string(), p.partition_index);
                    let code = if refused.is_some() {
                        error.map(|e| e.code()).unwrap_or(0)
                    } else if denied.contains(&key.0) {
                        ResponseError::TopicAuthorizationFailed.code()
                    } else if unknown.contains(&key) {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else if too_large.contains(&key) {
                        ResponseError::OffsetMetadataTooLarge.code()
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
