//! DescribeCluster: the admin client's view of the cluster (id, controller, brokers).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;

/// Endpoint types (KIP-919): 1 = brokers, 2 = controllers.
const ENDPOINT_BROKERS: i8 = 1;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> anyhow::Result<DescribeClusterResponse> {
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.controller_id()));
    if ctx.api_version >= 1 {
        resp.endpoint_type = req.endpoint_type;
        if req.endpoint_type != ENDPOINT_BROKERS && req.endpoint_type != 2 {
            resp.error_code = ResponseError::UnsupportedEndpointType.code();
            resp.error_message = Some(str_bytes(format!(
                "unknown endpoint type {}",
                req.endpoint_type
            )));
            return Ok(resp);
        }
    }
    // Every node is both a broker and a controller, so the same nodes answer either type.
    resp.brokers = broker
        .brokers_view(&ctx.listener)
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(str_bytes(b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.map(str_bytes))
        })
        .collect();
    if req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = crate::security::authz::Authz::of(broker, ctx)
            .operations(
                crate::security::acl::ResourceType::Cluster,
                crate::security::acl::CLUSTER_NAME,
            );
    }
    Ok(resp)
}
