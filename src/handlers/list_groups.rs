//! ListGroups with the state (v4+) and type (v5+) filters.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListGroupsRequest,
) -> anyhow::Result<ListGroupsResponse> {
    let v = ctx.api_version;
    // DESCRIBE on the cluster lists every group; otherwise only those the principal may
    // DESCRIBE.
    let authz = Authz::of(broker, ctx);
    let all_visible = !authz.enabled()
        || authz.sees(
            AclOperation::Describe,
            crate::security::acl::ResourceType::Cluster,
            crate::security::acl::CLUSTER_NAME,
        );
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|(id, _)| {
            all_visible
                || authz.sees(
                    AclOperation::Describe,
                    crate::security::acl::ResourceType::Group,
                    id,
                )
        })
        .filter_map(|(id, h)| {
            let g = crate::group::lock(&h);
            let state = g.state_name();
            if v >= 4 && !states.is_empty() && !states.contains(&state.to_lowercase()) {
                return None;
            }
            if v >= 5 && !types.is_empty() && !types.iter().any(|t| t == g.type_name()) {
                return None;
            }
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_protocol_type(str_bytes(g.protocol_type()));
            if v >= 4 {
                l.group_state = str_bytes(state);
            }
            if v >= 5 {
                l.group_type = str_bytes(g.type_name());
            }
            Some(l)
        })
        .collect();
    Ok(ListGroupsResponse::default().with_groups(groups))
}
