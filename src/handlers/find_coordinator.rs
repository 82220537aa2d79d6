//! FindCoordinator: a single node coordinates every group and transaction; in a cluster
//! the key hashes onto a live broker (`Broker::coordinator_for`).
//! v0-3 ask for one key; v4+ batch several keys (KIP-699).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;

const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

fn lookup(broker: &Broker, ctx: &RequestContext, key: &StrBytes, key_type: i8) -> Coordinator {
    let mut c = Coordinator::default()
        .with_key(key.clone())
        .with_node_id(BrokerId(-1))
        .with_port(-1);
    let error = match key_type {
        KEY_GROUP if key.is_empty() => {
            Some((ResponseError::InvalidRequest, "group id must not be empty"))
        }
        KEY_GROUP => None,
        KEY_TRANSACTION if key.is_empty() => Some((
            ResponseError::InvalidRequest,
            "transactional id must not be empty",
        )),
        KEY_TRANSACTION => None,
        _ => Some((
            ResponseError::InvalidRequest,
            "unsupported coordinator key type",
        )),
    };
    match error {
        Some((e, msg)) => {
            c.error_code = e.code();
            c.error_message = Some(str_bytes(msg));
        }
        None => {
            let id = broker.coordinator_for(key.as_str());
            match broker.broker_address(id, &ctx.listener) {
                Some(b) => {
                    c.node_id = BrokerId(b.id);
                    c.host = str_bytes(b.host);
                    c.port = b.port as i32;
                }
                None => {
                    c.error_code = ResponseError::CoordinatorNotAvailable.code();
                    c.error_message = Some(str_bytes("no live broker to coordinate"));
                }
            }
        }
    }
    c
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> anyhow::Result<FindCoordinatorResponse> {
    if ctx.api_version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| lookup(broker, ctx, k, req.key_type))
            .collect();
        return Ok(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    let c = lookup(broker, ctx, &req.key, req.key_type);
    let mut resp = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    if ctx.api_version >= 1 {
        resp.error_message = c.error_message;
    }
    Ok(resp)
}
