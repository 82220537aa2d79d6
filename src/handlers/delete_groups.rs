//! DeleteGroups: empty groups and their committed offsets; NON_EMPTY_GROUP otherwise.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::Broker;
use crate::connection::RequestContext;

pub async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> anyhow::Result<DeleteGroupsResponse> {
    let results = req
        .groups_names
        .iter()
        .map(|g| {
            let code = broker
                .groups
                .delete(g.as_str())
                .err()
                .map(|e| e.code())
                .unwrap_or(0);
            DeletableGroupResult::default()
                .with_group_id(g.clone())
                .with_error_code(code)
        })
        .collect();
    Ok(DeleteGroupsResponse::default().with_results(results))
}
