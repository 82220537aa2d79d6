//! Heartbeat (classic protocol): keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::Broker;
use crate::connection::RequestContext;
use crate::group::Group;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: HeartbeatRequest,
) -> anyhow::Result<HeartbeatResponse> {
    let group_id = req.group_id.as_str();
    if let Err(e) = Authz::of(broker, ctx)
        .group_check(AclOperation::Read, group_id)
        .and_then(|()| broker.groups.check(group_id))
    {
        return Ok(HeartbeatResponse::default().with_error_code(e.code()));
    }
    let result = broker
        .groups
        .with_group(group_id, false, |g| match g {
            Group::Classic(c) => c.heartbeat(
                req.member_id.as_str(),
                req.group_instance_id.as_deref(),
                req.generation_id,
                std::time::Instant::now(),
            ),
            Group::Consumer(_) => Err(ResponseError::UnknownMemberId),
        })
        .unwrap_or(Err(ResponseError::UnknownMemberId));
    Ok(HeartbeatResponse::default().with_error_code(result.err().map(|e| e.code()).unwrap_or(0)))
}
