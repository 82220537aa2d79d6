//! DescribeCluster: the admin client's view of the cluster (id, controller, brokers).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::metadata::CLUSTER_OPERATIONS;
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
        .with_controller_id(BrokerId(broker.node_id()));
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
    let adv = broker.config.advertised_for(&ctx.listener);
    // This node is both the broker and the controller, so it answers for either type.
    resp.brokers = vec![
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(broker.node_id()))
            .with_host(str_bytes(adv.advertised_host()))
            .with_port(adv.port as i32),
    ];
    if req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = CLUSTER_OPERATIONS;
    }
    Ok(resp)
}
