//! DescribeGroups for classic groups: state, protocol, members with their metadata and
//! assignments. KIP-848 groups are described by ConsumerGroupDescribe instead.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::group::Group;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> anyhow::Result<DescribeGroupsResponse> {
    let v = ctx.api_version;
    let groups = req
        .groups
        .iter()
        .map(|gid| {
            let mut d = DescribedGroup::default().with_group_id(gid.clone());
            if v >= 3 && req.include_authorized_operations {
                d.authorized_operations = Authz::of(broker, ctx)
                    .operations(crate::security::acl::ResourceType::Group, gid.as_str());
            }
            let missing = |mut d: DescribedGroup, msg: &str| {
                d.group_state = str_bytes("Dead");
                if v >= 6 {
                    d.error_code = ResponseError::GroupIdNotFound.code();
                    d.error_message = Some(str_bytes(msg));
                }
                d
            };
            if let Err(e) = Authz::of(broker, ctx)
                .group_check(AclOperation::Describe, gid.as_str())
                .and_then(|()| broker.groups.check(gid.as_str()))
            {
                d.error_code = e.code();
                return d;
            }
            let Some(h) = broker.groups.get(gid.as_str()) else {
                return missing(d, &format!("Group {} not found.", gid.as_str()));
            };
            let g = crate::group::lock(&h);
            let Group::Classic(c) = &*g else {
                return missing(
                    d,
                    &format!("Group {} is not a classic group.", gid.as_str()),
                );
            };
            let protocol = c.protocol_name.clone().unwrap_or_default();
            d.group_state = str_bytes(c.state.name());
            d.protocol_type = str_bytes(c.protocol_type.clone().unwrap_or_default());
            d.protocol_data = str_bytes(protocol.clone());
            d.members = c
                .members
                .values()
                .map(|m| {
                    let mut dm = DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.id.clone()))
                        .with_client_id(str_bytes(m.client_id.clone()))
                        .with_client_host(str_bytes(m.client_host.clone()))
                        .with_member_metadata(m.metadata_for(&protocol))
                        .with_member_assignment(m.assignment.clone());
                    if v >= 4 {
                        dm.group_instance_id = m.instance_id.clone().map(str_bytes);
                    }
                    dm
                })
                .collect();
            d
        })
        .collect();
    Ok(DescribeGroupsResponse::default().with_groups(groups))
}
