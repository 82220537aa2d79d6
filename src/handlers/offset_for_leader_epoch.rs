//! OffsetForLeaderEpoch: followers use it after a leadership change to find where their log
//! and the leader's part (KIP-101/279), consumers to detect truncation. Answered from the
//! partition's leader-epoch cache: the largest epoch at or below the requested one and the
//! offset where it ended (the log end offset for the current epoch).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::fetch::check_epoch;
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> anyhow::Result<OffsetForLeaderEpochResponse> {
    // CLUSTER_ACTION on the cluster (a follower), or DESCRIBE on the topic, as in Kafka.
    let authz = Authz::of(broker, ctx);
    let cluster_action = authz.cluster_sees(AclOperation::ClusterAction);
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let denied =
                if !cluster_action && !authz.topic(AclOperation::Describe, t.topic.as_str()) {
                    Some(ResponseError::TopicAuthorizationFailed)
                } else {
                    None
                };
            let topic = broker.topics.get(t.topic.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if let Some(e) = denied {
                        r.error_code = e.code();
                        return r;
                    }
                    let log = topic.as_ref().and_then(|t| t.partition(p.partition));
                    let Some(log) = log else {
                        r.error_code = ResponseError::UnknownTopicOrPartition.code();
                        return r;
                    };
                    if let Some(t) = &topic
                        && broker.check_leader(t, p.partition).is_err()
                    {
                        r.error_code = ResponseError::NotLeaderOrFollower.code();
                        return r;
                    }
                    let ours = log.leader_epoch();
                    if let Err(e) = check_epoch(p.current_leader_epoch, ours) {
                        r.error_code = e.code();
                        return r;
                    }
                    // From the leader-epoch cache: the largest epoch at or below the
                    // requested one and where it ended (KIP-101/279).
                    let end = log.end_offset_for_epoch(p.leader_epoch);
                    r.leader_epoch = end.epoch;
                    r.end_offset = end.end_offset;
                    r
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    Ok(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
