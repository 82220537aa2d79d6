//! SyncGroup (classic protocol): the leader's assignment is delivered to every member.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::group::Group;
use crate::group::classic::{Reply, SyncRequest, SyncResult};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: SyncGroupRequest,
) -> anyhow::Result<SyncGroupResponse> {
    let group_id = req.group_id.as_str().to_string();
    let reply = broker.groups.with_group(&group_id, false, |g| {
        let reply = match g {
            Group::Classic(c) => c.sync(
                SyncRequest {
                    member_id: req.member_id.as_str(),
                    instance_id: req.group_instance_id.as_deref(),
                    generation: req.generation_id,
                    protocol_type: req.protocol_type.as_deref(),
                    protocol_name: req.protocol_name.as_deref(),
                    assignments: req
                        .assignments
                        .iter()
                        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                        .collect(),
                },
                std::time::Instant::now(),
            ),
            Group::Consumer(_) => Reply::Now(SyncResult::error(ResponseError::UnknownMemberId)),
        };
        broker.groups.persist(&group_id, g);
        reply
    });
    let result = match reply {
        None => SyncResult::error(ResponseError::UnknownMemberId),
        Some(Reply::Now(r)) => r,
        Some(Reply::Wait(rx)) => rx
            .await
            .unwrap_or_else(|_| SyncResult::error(ResponseError::RebalanceInProgress)),
    };
    let mut resp = SyncGroupResponse::default()
        .with_error_code(result.error)
        .with_assignment(result.assignment);
    if ctx.api_version >= 5 {
        resp.protocol_type = result.protocol_type.map(str_bytes);
        resp.protocol_name = result.protocol_name.map(str_bytes);
    }
    Ok(resp)
}
