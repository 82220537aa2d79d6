//! DescribeAcls: the ACL bindings a filter selects, grouped by resource pattern. Needs
//! DESCRIBE on the cluster; without an authorizer, SECURITY_DISABLED.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::{
    AclBindingFilter, AclOperation, PatternType, ResourceType, validate_filter,
};
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeAclsRequest,
) -> anyhow::Result<DescribeAclsResponse> {
    let failed = |e: ResponseError, msg: &str| {
        Ok(DescribeAclsResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(msg))))
    };
    if !broker.security.authorizer_enabled() {
        return failed(
            ResponseError::SecurityDisabled,
            "No Authorizer is configured.",
        );
    }
    if !Authz::of(broker, ctx).cluster(AclOperation::Describe) {
        return failed(
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        );
    }
    let filter = AclBindingFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    );
    if let Err(e) = validate_filter(&filter) {
        return failed(e.error(), e.message());
    }
    let data = broker.security.get();
    let mut by_resource: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for b in data.acls.iter().filter(|b| filter.matches(b)) {
        by_resource
            .entry((b.resource_type, b.resource_name.clone(), b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(str_bytes(b.principal.as_str()))
                    .with_host(str_bytes(b.host.as_str()))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    let resources = by_resource
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt.code())
                .with_resource_name(str_bytes(name))
                .with_pattern_type(pt.code())
                .with_acls(acls)
        })
        .collect();
    Ok(DescribeAclsResponse::default()
        .with_error_message(None)
        .with_resources(resources))
}
