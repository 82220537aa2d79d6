//! ListPartitionReassignments (`kafka-reassign-partitions --verify`/`--list`): the
//! partitions with a reassignment in progress, with their replicas, adding and removing.

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListPartitionReassignmentsRequest,
) -> anyhow::Result<ListPartitionReassignmentsResponse> {
    if !Authz::of(broker, ctx).cluster(AclOperation::Describe) {
        return Ok(ListPartitionReassignmentsResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code()));
    }
    let Some(node) = &broker.cluster else {
        return Ok(ListPartitionReassignmentsResponse::default());
    };
    let img = node.image();
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let mut topics = Vec::new();
    for t in img.topics.values() {
        let wanted: Option<&Vec<i32>> = match &req.topics {
            None => None,
            Some(ts) => match ts.iter().find(|x| x.name.as_str() == t.name) {
                Some(x) => Some(&x.partition_indexes),
                None => continue,
            },
        };
        let partitions: Vec<_> = t
            .partitions
            .iter()
            .filter(|(i, p)| {
                (!p.adding.is_empty() || !p.removing.is_empty())
                    && wanted.is_none_or(|w| w.contains(i))
            })
            .map(|(i, p)| {
                OngoingPartitionReassignment::default()
                    .with_partition_index(*i)
                    .with_replicas(ids(&p.replicas))
                    .with_adding_replicas(ids(&p.adding))
                    .with_removing_replicas(ids(&p.removing))
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(t.name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    Ok(ListPartitionReassignmentsResponse::default().with_topics(topics))
}
