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
    let mut codes: Vec<i16> = req
        .groups_names
        .iter()
        .map(|g| {
            broker
                .groups
                .delete(g.as_str())
                .err()
                .map(|e| e.code())
                .unwrap_or(0)
        })
        .collect();
    // A deleted group (and its offsets) must not come back after a crash.
    let deleted = codes.contains(&0);
    if let Err(e) = crate::group::durable(&broker.store, deleted).await {
        for c in codes.iter_mut().filter(|c| **c == 0) {
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
