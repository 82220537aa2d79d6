//! OffsetDelete: remove a group's committed offsets for partitions it no longer consumes.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::Broker;
use crate::connection::RequestContext;
use crate::group::Group;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> anyhow::Result<OffsetDeleteResponse> {
    let group_id = req.group_id.as_str();
    // The subscription check and the deletes happen under the group's lock, so a member
    // cannot subscribe to a topic between the check and the delete.
    if let Err(e) = Authz::of(broker, ctx)
        .group_check(AclOperation::Delete, group_id)
        .and_then(|()| broker.groups.check(group_id))
    {
        return Ok(OffsetDeleteResponse::default().with_error_code(e.code()));
    }
    let mut wrote = false;
    let result = broker.groups.with_group(group_id, false, |g| {
        // Topics an active group consumes keep their offsets.
        let subscribed: std::collections::HashSet<String> = if g.is_empty() {
            Default::default()
        } else {
            match &*g {
                Group::Classic(c) => match c.subscribed_topics() {
                    Some(t) => t,
                    None => return Err(ResponseError::NonEmptyGroup),
                },
                Group::Consumer(c) => c.subscribed_topics().into_iter().collect(),
            }
        };
        Ok(req
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let err = if subscribed.contains(t.name.as_str()) {
                            Some(ResponseError::GroupSubscribedToTopic)
                        } else if broker
                            .topics
                            .get(t.name.as_str())
                            .and_then(|x| x.partition(p.partition_index).cloned())
                            .is_none()
                        {
                            Some(ResponseError::UnknownTopicOrPartition)
                        } else {
                            match broker.groups.delete_offsets(
                                group_id,
                                &[(t.name.to_string(), p.partition_index)],
                            ) {
                                Ok(()) => {
                                    wrote = true;
                                    None
                                }
                                Err(e) => Some(e),
                            }
                        };
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(err.map(|e| e.code()).unwrap_or(0))
                    })
                    .collect();
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect())
    });
    match result {
        None => {
            Ok(OffsetDeleteResponse::default()
                .with_error_code(ResponseError::GroupIdNotFound.code()))
        }
        Some(Err(e)) => Ok(OffsetDeleteResponse::default().with_error_code(e.code())),
        Some(Ok(topics)) => {
            // A deleted offset must not come back after a crash.
            if let Err(e) = crate::group::durable(broker, group_id, wrote).await {
                return Ok(OffsetDeleteResponse::default().with_error_code(e.code()));
            }
            Ok(OffsetDeleteResponse::default().with_topics(topics))
        }
    }
}
