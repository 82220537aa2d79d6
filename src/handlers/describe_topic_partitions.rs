//! DescribeTopicPartitions (KIP-966): paged partition metadata, used by the Java admin
//! client's describeTopics. `response_partition_limit` bounds the partitions per response;
//! `next_cursor` says where the next page starts.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
};

use super::topic_name;
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authz::Authz;

/// Kafka's broker-side cap (`max.request.partition.size.limit` default).
const MAX_PARTITIONS: i32 = 2000;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeTopicPartitionsRequest,
) -> anyhow::Result<DescribeTopicPartitionsResponse> {
    // All topics: those the principal may DESCRIBE; a named one it may not:
    // TOPIC_AUTHORIZATION_FAILED.
    let authz = Authz::of(broker, ctx);
    let mut names: Vec<String> = if req.topics.is_empty() {
        broker
            .topics
            .list()
            .iter()
            .filter(|t| authz.sees(AclOperation::Describe, ResourceType::Topic, &t.name))
            .map(|t| t.name.clone())
            .collect()
    } else {
        req.topics
            .iter()
            .map(|t| t.name.as_str().to_string())
            .collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_part) = match &req.cursor {
        Some(c) => (
            Some(c.topic_name.as_str().to_string()),
            c.partition_index.max(0),
        ),
        None => (None, 0),
    };
    let mut budget = if req.response_partition_limit > 0 {
        req.response_partition_limit.min(MAX_PARTITIONS)
    } else {
        MAX_PARTITIONS
    };
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names {
        if let Some(st) = &start_topic
            && name < *st
        {
            continue;
        }
        let ops = authz.operations(ResourceType::Topic, &name);
        if !authz.topic(AclOperation::Describe, &name) {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(topic_name(&name)))
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
            );
            continue;
        }
        let Some(t) = broker.topics.get(&name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(topic_name(&name)))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_topic_authorized_operations(ops),
            );
            continue;
        };
        let first = if start_topic.as_deref() == Some(name.as_str()) {
            start_part
        } else {
            0
        };
        let mut parts = Vec::new();
        for i in (0..t.partitions.len()).skip(first as usize) {
            if budget == 0 {
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(topic_name(&name))
                        .with_partition_index(i as i32),
                );
                break;
            }
            let p = broker.partition_view(&t, i as i32);
            let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect::<Vec<_>>();
            parts.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(i as i32)
                    .with_error_code(if p.leader < 0 {
                        ResponseError::LeaderNotAvailable.code()
                    } else {
                        0
                    })
                    .with_leader_id(BrokerId(p.leader))
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(ids(p.replicas))
                    .with_isr_nodes(ids(p.isr))
                    .with_offline_replicas(ids(p.offline))
                    .with_eligible_leader_replicas(Some(vec![]))
                    .with_last_known_elr(Some(vec![])),
            );
            budget -= 1;
        }
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(&name)))
                .with_topic_id(t.id)
                .with_is_internal(t.is_internal())
                .with_partitions(parts)
                .with_topic_authorized_operations(ops),
        );
        if next_cursor.is_some() {
            break;
        }
    }
    Ok(DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor))
}
