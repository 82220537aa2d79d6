//! ElectLeaders (`kafka-leader-election`): the preferred replica back in the lead, or an
//! out-of-sync replica for an offline partition (UNCLEAN), decided by the active controller
//! (`cluster::election`). A single node leads every partition already: nothing to elect.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};

use super::str_bytes;
use crate::Broker;
use crate::cluster::election::{self, ElectionError};
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ElectLeadersRequest,
) -> anyhow::Result<ElectLeadersResponse> {
    if !Authz::of(broker, ctx).cluster(AclOperation::Alter) {
        return Ok(ElectLeadersResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code()));
    }
    let kind = if ctx.api_version >= 1 {
        req.election_type
    } else {
        PREFERRED
    };
    if kind != PREFERRED && kind != UNCLEAN {
        return Ok(
            ElectLeadersResponse::default().with_error_code(ResponseError::InvalidRequest.code())
        );
    }
    // The partitions asked for, or (null) every partition, whose results then leave out
    // the ones that needed no election, as Kafka's controller does.
    let all = req.topic_partitions.is_none();
    let wanted: Vec<(String, Vec<i32>)> = match &req.topic_partitions {
        Some(tps) => tps
            .iter()
            .map(|t| (t.topic.as_str().to_string(), t.partitions.clone()))
            .collect(),
        None => broker
            .topics
            .list()
            .into_iter()
            .map(|t| (t.name.clone(), (0..t.partitions.len() as i32).collect()))
            .collect(),
    };
    let mut results = Vec::new();
    for (topic, partitions) in wanted {
        let mut out = Vec::new();
        for p in partitions {
            let outcome = elect(broker, &topic, p, kind).await;
            if all && outcome == Err(ElectionError::NotNeeded) {
                continue;
            }
            let mut r = PartitionResult::default().with_partition_id(p);
            if let Err(e) = outcome {
                r.error_code = e.code();
                r.error_message = Some(str_bytes(e.message().to_string()));
            }
            out.push(r);
        }
        if !out.is_empty() || !all {
            results.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(str_bytes(topic)))
                    .with_partition_result(out),
            );
        }
    }
    Ok(ElectLeadersResponse::default().with_replica_election_results(results))
}

async fn elect(
    broker: &Broker,
    topic: &str,
    partition: i32,
    kind: i8,
) -> Result<(), ElectionError> {
    let Some(node) = &broker.cluster else {
        let exists = broker
            .topics
            .get(topic)
            .is_some_and(|t| t.partition(partition).is_some());
        return Err(if exists {
            ElectionError::NotNeeded
        } else {
            ElectionError::UnknownPartition
        });
    };
    let img = node.image();
    let id = *img
        .topic_ids
        .get(topic)
        .ok_or(ElectionError::UnknownPartition)?;
    let record = if kind == UNCLEAN {
        election::elect_unclean(&img, id, partition)?
    } else {
        election::elect_preferred(&img, id, partition)?
    };
    node.commit(vec![record]).await.map_err(|e| {
        tracing::info!(topic, partition, error = ?e, "leader election not committed");
        if kind == UNCLEAN {
            ElectionError::EligibleNotAvailable
        } else {
            ElectionError::PreferredNotAvailable
        }
    })?;
    Ok(())
}
