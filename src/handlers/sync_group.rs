//! SyncGroup (classic protocol): the leader's assignment is delivered to every member.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::group::Group;
use crate::group::classic::{Reply, SyncRequest, SyncResult};
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: SyncGroupRequest,
) -> anyhow::Result<SyncGroupResponse> {
    let group_id = req.group_id.as_str().to_string();
    if let Err(e) = Authz::of(broker, ctx)
        .group_check(AclOperation::Read, &group_id)
        .and_then(|()| broker.groups.check(&group_id))
    {
        return Ok(SyncGroupResponse::default().with_error_code(e.code()));
    }
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
        (reply, broker.groups.persist(&group_id, g))
    });
    let (result, wrote) = match reply {
        None => (SyncResult::error(ResponseError::UnknownMemberId), Ok(false)),
        Some((Reply::Now(r), wrote)) => (r, wrote),
        Some((Reply::Wait(rx), wrote)) => {
            let r = rx
                .await
                .unwrap_or_else(|_| SyncResult::error(ResponseError::RebalanceInProgress));
            // The leader's SyncGroup stored the assignment; taking the lock again waits for
            // its save, and the flush below covers it before this member is answered.
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
    let result = match stored {
        Ok(()) => result,
        Err(e) => SyncResult::error(e),
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
