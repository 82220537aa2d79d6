//! JoinGroup (classic protocol): member id assignment (KIP-394), protocol selection,
//! static membership (KIP-345). The response waits until the rebalance's join phase ends.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::group::classic::{JoinRequest, JoinResult, Reply};
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: JoinGroupRequest,
) -> anyhow::Result<JoinGroupResponse> {
    let v = ctx.api_version;
    let group_id = req.group_id.as_str().to_string();
    let result = if group_id.is_empty() {
        JoinResult::error(ResponseError::InvalidGroupId, req.member_id.as_str())
    } else if let Err(e) = Authz::of(broker, ctx)
        .group_check(AclOperation::Read, &group_id)
        .and_then(|()| broker.groups.check(&group_id))
    {
        JoinResult::error(e, req.member_id.as_str())
    } else {
        let join = JoinRequest {
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            client_id: ctx.client_id.clone().unwrap_or_default(),
            client_host: format!("/{}", ctx.peer.ip()),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: if v >= 1 {
                req.rebalance_timeout_ms
            } else {
                req.session_timeout_ms
            },
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            require_known_member_id: v >= 4,
            supports_skip_assignment: v >= 9,
        };
        // Converting an empty consumer group and joining happen under one lock, so a
        // concurrent ConsumerGroupHeartbeat cannot convert it back in between.
        let (reply, wrote) = broker
            .groups
            .with_group(&group_id, true, |g| {
                let reply = match g.classic_for_join(&group_id) {
                    Ok(c) => c.join(join, &broker.groups.settings, std::time::Instant::now()),
                    Err(e) => Reply::Now(JoinResult::error(e, req.member_id.as_str())),
                };
                (reply, broker.groups.persist(&group_id, g))
            })
            .unwrap_or_else(|| {
                let e = ResponseError::CoordinatorNotAvailable;
                (
                    Reply::Now(JoinResult::error(e, req.member_id.as_str())),
                    Ok(false),
                )
            });
        let (r, wrote) = match reply {
            Reply::Now(r) => (r, wrote),
            Reply::Wait(rx) => {
                let r = rx.await.unwrap_or_else(|_| {
                    JoinResult::error(ResponseError::RebalanceInProgress, req.member_id.as_str())
                });
                // The join completed in another request or a timer tick, which moved the
                // group to a new generation: save it (if that request has not yet) and
                // flush before this member hears of the generation.
                let again = broker
                    .groups
                    .with_group(&group_id, false, |g| broker.groups.persist(&group_id, g))
                    .unwrap_or(Ok(false));
                let wrote = wrote.and(again).map(|w| w || r.error == 0);
                (r, wrote)
            }
        };
        let stored = match wrote {
            Ok(wrote) => crate::group::durable(broker, &group_id, wrote).await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(()) => r,
            Err(e) => JoinResult::error(e, &r.member_id),
        }
    };
    let mut resp = JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation)
        .with_leader(str_bytes(result.leader))
        .with_member_id(str_bytes(result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|(id, instance, meta)| {
                    let mut m = JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(id))
                        .with_metadata(meta);
                    if v >= 5 {
                        m.group_instance_id = instance.map(str_bytes);
                    }
                    m
                })
                .collect(),
        );
    // The protocol name is nullable only from v7; older versions need a string.
    resp.protocol_name = Some(str_bytes(result.protocol_name.unwrap_or_default()));
    if v >= 7 {
        resp.protocol_type = result.protocol_type.map(str_bytes);
        if resp.error_code != 0 {
            resp.protocol_name = None;
        }
    }
    if v >= 9 {
        resp.skip_assignment = result.skip_assignment;
    }
    Ok(resp)
}
