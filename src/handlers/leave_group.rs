//! LeaveGroup (classic protocol): v0-2 name one member; v3+ a batch of members, static
//! members by instance id (KIP-345).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::group::Group;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: LeaveGroupRequest,
) -> anyhow::Result<LeaveGroupResponse> {
    let group_id = req.group_id.as_str();
    if let Err(e) = Authz::of(broker, ctx)
        .group_check(AclOperation::Read, group_id)
        .and_then(|()| broker.groups.check(group_id))
    {
        return Ok(LeaveGroupResponse::default().with_error_code(e.code()));
    }
    let leaving: Vec<(String, Option<String>)> = if ctx.api_version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let now = std::time::Instant::now();
    let results = broker.groups.with_group(group_id, false, |g| {
        let Group::Classic(c) = g else {
            return None;
        };
        let results: Vec<(String, Option<String>, Option<ResponseError>)> = leaving
            .into_iter()
            .map(|(id, instance)| {
                let r = c.leave(&id, instance.as_deref(), now, &broker.groups.settings);
                (id, instance, r.err())
            })
            .collect();
        Some((results, broker.groups.persist(group_id, g)))
    });
    let Some(Some((results, wrote))) = results else {
        return Ok(
            LeaveGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code())
        );
    };
    // A member that was told it left must not be back after a crash.
    let stored = match wrote {
        Ok(wrote) => crate::group::durable(broker, group_id, wrote).await,
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        return Ok(LeaveGroupResponse::default().with_error_code(e.code()));
    }
    if ctx.api_version < 3 {
        let code = results
            .first()
            .and_then(|r| r.2)
            .map(|e| e.code())
            .unwrap_or(0);
        return Ok(LeaveGroupResponse::default().with_error_code(code));
    }
    let members = results
        .into_iter()
        .map(|(id, instance, e)| {
            MemberResponse::default()
                .with_member_id(str_bytes(id))
                .with_group_instance_id(instance.map(str_bytes))
                .with_error_code(e.map(|e| e.code()).unwrap_or(0))
        })
        .collect();
    Ok(LeaveGroupResponse::default().with_members(members))
}
