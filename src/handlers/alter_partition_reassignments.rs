//! AlterPartitionReassignments (`kafka-reassign-partitions --execute` and `--cancel`): each
//! partition's new replicas (or null to cancel) become a reassignment in the metadata
//! (`cluster::reassign`); the added replicas copy the data from the leader and the
//! controller completes it once they are in sync. A single node has nowhere to move data.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};

use super::str_bytes;
use crate::Broker;
use crate::cluster::reassign::{self, ReassignError};
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: AlterPartitionReassignmentsRequest,
) -> anyhow::Result<AlterPartitionReassignmentsResponse> {
    if !Authz::of(broker, ctx).cluster(AclOperation::Alter) {
        return Ok(AlterPartitionReassignmentsResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code()));
    }
    // v0 had no such field: a change of replication factor was allowed.
    let allow_rf_change = ctx.api_version < 1 || req.allow_replication_factor_change;
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let target = p
                .replicas
                .as_ref()
                .map(|r| r.iter().map(|b| b.0).collect::<Vec<i32>>());
            let outcome = submit(
                broker,
                t.name.as_str(),
                p.partition_index,
                target,
                allow_rf_change,
            )
            .await;
            let mut r = ReassignablePartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_error_message(None);
            if let Err(e) = outcome {
                r.error_code = e.code();
                r.error_message = Some(str_bytes(e.message()));
            }
            partitions.push(r);
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    Ok(AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_rf_change)
        .with_responses(responses))
}

async fn submit(
    broker: &Broker,
    topic: &str,
    partition: i32,
    target: Option<Vec<i32>>,
    allow_rf_change: bool,
) -> Result<(), ReassignError> {
    let Some(node) = &broker.cluster else {
        let exists = broker
            .topics
            .get(topic)
            .is_some_and(|t| t.partition(partition).is_some());
        return match (exists, target) {
            (false, _) => Err(ReassignError::UnknownPartition),
            (true, None) => Err(ReassignError::NoneInProgress),
            (true, Some(t)) if t == [broker.node_id()] => Ok(()),
            (true, Some(_)) => Err(ReassignError::Invalid(format!(
                "a single node has only broker {}",
                broker.node_id()
            ))),
        };
    };
    let img = node.image();
    let id = *img
        .topic_ids
        .get(topic)
        .ok_or(ReassignError::UnknownPartition)?;
    let record = reassign::reassign(&img, id, partition, target, allow_rf_change)?;
    node.commit(vec![record])
        .await
        .map_err(|e| ReassignError::Invalid(format!("the controller did not take it: {e:?}")))?;
    Ok(())
}
