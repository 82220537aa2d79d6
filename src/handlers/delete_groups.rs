//! DeleteGroups: empty groups and their committed offsets; NON_EMPTY_GROUP otherwise.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> anyhow::Result<DeleteGroupsResponse> {
    let mut codes: Vec<i16> = req
        .groups_names
        .iter()
        .map(|g| {
            Authz::of(broker, ctx)
                .group_check(AclOperation::Delete, g.as_str())
                .and_then(|()| broker.groups.check(g.as_str()))
                .and_then(|()| broker.groups.delete(g.as_str()))
                .err()
                .map(|e| e.code())
                .unwrap_or(0)
        })
        .collect();
    // A deleted group (and its offsets) must not come back after a crash or a failover.
    for (g, c) in req.groups_names.iter().zip(codes.iter_mut()) {
        if *c == 0
            && let Err(e) = crate::group::durable(broker, g.as_str(), true).await
        {
            *c = e.code();
        }
    }
    let results = req
        .groups_names
        .iter()
        .zip(codes)
        .map(|(g, code)| {
            DeletableGroupResult::default()
                .with_group_id(g.clone())
                .with_error_code(code)
        })
        .collect();
    Ok(DeleteGroupsResponse::default().with_results(results))
}
