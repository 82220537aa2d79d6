//! DescribeQuorum: the metadata quorum as its leader sees it (what `kafka-metadata-quorum
//! describe --status` and `--replication` print). Any node answers: a follower asks the
//! leader. A single node is a quorum of one, and says so.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};

use super::{str_bytes, topic_name};
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

/// Kafka's name for the metadata log.
const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeQuorumRequest,
) -> anyhow::Result<DescribeQuorumResponse> {
    if !Authz::of(broker, ctx).cluster(AclOperation::Describe) {
        return Ok(DescribeQuorumResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code()));
    }
    let asks_metadata = req.topics.len() == 1
        && req.topics[0].topic_name.as_str() == METADATA_TOPIC
        && req.topics[0].partitions.len() == 1
        && req.topics[0].partitions[0].partition_index == 0;
    if !asks_metadata {
        return Ok(DescribeQuorumResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes(
                "DescribeQuorum describes only partition 0 of __cluster_metadata",
            ))));
    }
    let now = super::now_ms();
    let state = |id: i32, leo: i64, caught_up: bool| {
        ReplicaState::default()
            .with_replica_id(BrokerId(id))
            .with_log_end_offset(leo)
            .with_last_fetch_timestamp(if leo >= 0 { now } else { -1 })
            .with_last_caught_up_timestamp(if caught_up { now } else { -1 })
    };
    let (partition, nodes) = match &broker.cluster {
        None => {
            let me = broker.node_id();
            let adv = broker.config.advertised_for(&ctx.listener);
            let p = PartitionData::default()
                .with_leader_id(BrokerId(me))
                .with_leader_epoch(1)
                .with_high_watermark(0)
                .with_current_voters(vec![state(me, 0, true)]);
            let node = Node::default()
                .with_node_id(BrokerId(me))
                .with_listeners(vec![
                    Listener::default()
                        .with_name(str_bytes(adv.name.clone()))
                        .with_host(str_bytes(adv.advertised_host()))
                        .with_port(adv.port),
                ]);
            (p, vec![node])
        }
        Some(node) => match node.leader_status().await {
            None => {
                let p = PartitionData::default()
                    .with_error_code(ResponseError::NotLeaderOrFollower.code())
                    .with_leader_id(BrokerId(-1))
                    .with_leader_epoch(-1)
                    .with_high_watermark(-1);
                (p, Vec::new())
            }
            Some(s) => {
                let leo = s.last_log_index.map_or(0, |i| i as i64 + 1);
                let voters = s
                    .voters
                    .iter()
                    .map(|id| {
                        let matched = s
                            .replication
                            .as_ref()
                            .and_then(|r| r.get(id).copied().flatten());
                        let their = if Some(*id) == s.leader {
                            leo
                        } else {
                            matched.map_or(-1, |i| i as i64 + 1)
                        };
                        state(*id as i32, their, their == leo)
                    })
                    .collect();
                // Brokers that are not controllers follow the log as observers.
                let observers = s
                    .observers
                    .iter()
                    .map(|(id, applied)| {
                        state(*id, *applied as i64 + 1, *applied as i64 + 1 >= leo)
                    })
                    .collect();
                let p = PartitionData::default()
                    .with_leader_id(BrokerId(s.leader.map_or(-1, |l| l as i32)))
                    .with_leader_epoch(s.term as i32)
                    .with_high_watermark(s.last_applied.map_or(0, |i| i as i64 + 1))
                    .with_current_voters(voters)
                    .with_observers(observers);
                let nodes = s
                    .addresses
                    .iter()
                    .filter_map(|(id, addr)| {
                        let (host, port) = addr.rsplit_once(':')?;
                        Some(
                            Node::default()
                                .with_node_id(BrokerId(*id as i32))
                                .with_listeners(vec![
                                    Listener::default()
                                        .with_name(str_bytes("CONTROLLER"))
                                        .with_host(str_bytes(host))
                                        .with_port(port.parse().ok()?),
                                ]),
                        )
                    })
                    .collect();
                (p, nodes)
            }
        },
    };
    Ok(DescribeQuorumResponse::default()
        .with_topics(vec![
            TopicData::default()
                .with_topic_name(topic_name(METADATA_TOPIC))
                .with_partitions(vec![partition.with_partition_index(0)]),
        ])
        .with_nodes(nodes))
}
