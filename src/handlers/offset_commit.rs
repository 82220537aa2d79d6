//! OffsetCommit: member/generation (or member epoch) checks, then every partition's offset
//! and metadata stored atomically. Simple commits (no member) are allowed into empty groups.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::now_ms;
use crate::Broker;
use crate::connection::RequestContext;
use crate::group::offsets::Committed;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

/// Why a commit was not stored.
enum Stored {
    /// The group refused it (generation, member, group id): every partition gets the error.
    Refused(ResponseError),
    /// Writing, flushing or replicating failed (with the error Kafka's coordinator answers).
    Failed(ResponseError),
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> anyhow::Result<OffsetCommitResponse> {
    let group_id = req.group_id.as_str();
    let authz = Authz::of(broker, ctx);
    let now = now_ms();
    let max_meta = broker.groups.settings.offset_metadata_max_bytes;
    let mut to_store = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = broker.topics.get(t.name.as_str());
        let mut tr = OffsetCommitResponseTopic::default().with_name(t.name.clone());
        let topic_allowed = authz.topic(AclOperation::Read, t.name.as_str());
        for p in &t.partitions {
            let meta = p
                .committed_metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            let error = if !topic_allowed {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if topic
                .as_ref()
                .and_then(|x| x.partition(p.partition_index))
                .is_none()
            {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if meta.len() > max_meta {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                to_store.push((
                    t.name.to_string(),
                    p.partition_index,
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        commit_timestamp: now,
                        metadata: meta,
                    },
                ));
                None
            };
            tr.partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error.map(|e| e.code()).unwrap_or(0)),
            );
        }
        topics.push(tr);
    }
    // The member's generation (or epoch) is checked and the offsets written under one group
    // lock: a rebalance or offsets expiry cannot slip in between.
    let stored = if group_id.is_empty() {
        Err(Stored::Refused(ResponseError::InvalidGroupId))
    } else if let Err(e) = Authz::of(broker, ctx)
        .group_check(AclOperation::Read, group_id)
        .and_then(|()| broker.groups.check(group_id))
    {
        Err(Stored::Refused(e))
    } else {
        let simple = req.generation_id_or_member_epoch < 0 && req.member_id.is_empty();
        broker
            .groups
            .with_group(group_id, simple, |g| {
                g.validate_commit(
                    req.member_id.as_str(),
                    req.group_instance_id.as_deref(),
                    req.generation_id_or_member_epoch,
                )
                .map_err(Stored::Refused)?;
                if !to_store.is_empty() {
                    broker
                        .groups
                        .commit_offsets(group_id, &to_store)
                        .map_err(Stored::Failed)?;
                }
                Ok(!to_store.is_empty())
            })
            .unwrap_or(Err(Stored::Refused(ResponseError::IllegalGeneration)))
    };
    // Acknowledged means persisted: flush (shared with concurrent commits) before answering.
    let stored = match stored {
        Ok(wrote) => crate::group::durable(broker, group_id, wrote)
            .await
            .map_err(Stored::Failed),
        Err(e) => Err(e),
    };
    match stored {
        Ok(()) => {}
        // A group error answers every partition (it takes precedence over topic errors).
        Err(Stored::Refused(e)) => {
            for t in &mut topics {
                for p in &mut t.partitions {
                    p.error_code = e.code();
                }
            }
        }
        // The partitions that were to be stored report the failure.
        Err(Stored::Failed(e)) => {
            for t in &mut topics {
                for p in &mut t.partitions {
                    if p.error_code == 0 {
                        p.error_code = e.code();
                    }
                }
            }
        }
    }
    Ok(OffsetCommitResponse::default().with_topics(topics))
}
