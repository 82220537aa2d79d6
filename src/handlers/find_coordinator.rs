//! FindCoordinator: the coordinator of a group (transactional id) is the leader of its
//! partition of `__consumer_offsets` (`__transaction_state`); the topic is created on the
//! first lookup, as Kafka does. A single node coordinates everything.
//! v0-3 ask for one key; v4+ batch several keys (KIP-699).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::coordinator_topics::Kind;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

async fn lookup(
    broker: &Broker,
    ctx: &RequestContext,
    key: &StrBytes,
    key_type: i8,
) -> Coordinator {
    let mut c = Coordinator::default()
        .with_key(key.clone())
        .with_node_id(BrokerId(-1))
        .with_port(-1);
    let error = match key_type {
        KEY_GROUP if key.is_empty() => {
            Some((ResponseError::InvalidRequest, "group id must not be empty"))
        }
        KEY_GROUP if !Authz::of(broker, ctx).group(AclOperation::Describe, key.as_str()) => Some((
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.",
        )),
        KEY_GROUP => None,
        KEY_TRANSACTION if key.is_empty() => Some((
            ResponseError::InvalidRequest,
            "transactional id must not be empty",
        )),
        KEY_TRANSACTION
            if !Authz::of(broker, ctx).transactional_id(AclOperation::Describe, key.as_str()) =>
        {
            Some((
                ResponseError::TransactionalIdAuthorizationFailed,
                "Transactional Id authorization failed.",
            ))
        }
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
            let kind = if key_type == KEY_GROUP {
                Kind::Group
            } else {
                Kind::Transaction
            };
            let id = match broker.coordinator_of(kind, key.as_str()).await {
                Ok(id) => id,
                Err(e) => {
                    c.error_code = e.code();
                    c.error_message = Some(str_bytes("the coordinator is not ready"));
                    return c;
                }
            };
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
        let mut coordinators = Vec::with_capacity(req.coordinator_keys.len());
        for k in &req.coordinator_keys {
            coordinators.push(lookup(broker, ctx, k, req.key_type).await);
        }
        return Ok(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    let c = lookup(broker, ctx, &req.key, req.key_type).await;
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
