//! OffsetDelete: remove a group's committed offsets for partitions it no longer consumes.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::Broker;
use crate::connection::RequestContext;
use crate::group::Group;

pub async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> anyhow::Result<OffsetDeleteResponse> {
    let group_id = req.group_id.as_str();
    let Some(h) = broker.groups.get(group_id) else {
        return Ok(
            OffsetDeleteResponse::default().with_error_code(ResponseError::GroupIdNotFound.code())
        );
    };
    // Topics an active group consumes keep their offsets.
    let subscribed = {
        let g = h.lock().unwrap();
        if g.is_empty() {
            Default::default()
        } else {
            match &*g {
                Group::Classic(c) => match c.subscribed_topics() {
                    Some(t) => t,
                    None => {
                        return Ok(OffsetDeleteResponse::default()
                            .with_error_code(ResponseError::NonEmptyGroup.code()));
                    }
                },
                Group::Consumer(c) => c.subscribed_topics().into_iter().collect(),
            }
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
                        broker
                            .groups
                            .offsets
                            .delete(group_id, t.name.as_str(), p.partition_index)
                            .err()
                            .map(|_| ResponseError::KafkaStorageError)
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
        .collect();
    Ok(OffsetDeleteResponse::default().with_topics(topics))
}
