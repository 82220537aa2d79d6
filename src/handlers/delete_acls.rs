//! DeleteAcls: removes the ACL bindings each filter selects and names them in the answer.
//! Needs ALTER on the cluster; without an authorizer, SECURITY_DISABLED. The removals of one
//! request are one metadata change.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};

use super::str_bytes;
use crate::Broker;
use crate::cluster::records::MetadataRecord;
use crate::connection::RequestContext;
use crate::security::acl::{AclBinding, AclBindingFilter, AclOperation, validate_filter};
use crate::security::authz::Authz;
use crate::security::store;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DeleteAclsRequest,
) -> anyhow::Result<DeleteAclsResponse> {
    let refuse_all = |e: ResponseError, msg: &str| {
        let results = req.filters.iter().map(|_| failed(e, msg)).collect();
        Ok(DeleteAclsResponse::default().with_filter_results(results))
    };
    if !broker.security.authorizer_enabled() {
        return refuse_all(
            ResponseError::SecurityDisabled,
            "No Authorizer is configured.",
        );
    }
    if !Authz::of(broker, ctx).cluster(AclOperation::Alter) {
        return refuse_all(
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        );
    }
    let data = broker.security.get();
    let mut results: Vec<Result<Vec<AclBinding>, (ResponseError, String)>> = Vec::new();
    let mut removed: Vec<AclBinding> = Vec::new();
    for f in &req.filters {
        let filter = AclBindingFilter::from_wire(
            f.resource_type_filter,
            f.resource_name_filter.as_deref(),
            f.pattern_type_filter,
            f.principal_filter.as_deref(),
            f.host_filter.as_deref(),
            f.operation,
            f.permission_type,
        );
        match validate_filter(&filter) {
            Err(e) => results.push(Err((e.error(), e.message().to_string()))),
            Ok(()) => {
                let matching: Vec<AclBinding> = data
                    .acls
                    .iter()
                    .filter(|b| filter.matches(b))
                    .cloned()
                    .collect();
                for b in &matching {
                    if !removed.contains(b) {
                        removed.push(b.clone());
                    }
                }
                results.push(Ok(matching));
            }
        }
    }
    if !removed.is_empty() {
        let n = removed.len();
        let records = removed
            .into_iter()
            .map(MetadataRecord::RemoveAccessControlEntry)
            .collect();
        if let Err((e, msg)) = store::commit(broker, records).await {
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err((e, msg.clone()));
            }
        } else {
            tracing::info!(principal = %ctx.principal, acls = n, "ACLs deleted");
        }
    }
    let filter_results = results
        .into_iter()
        .map(|r| match r {
            Err((e, msg)) => failed(e, &msg),
            Ok(matching) => DeleteAclsFilterResult::default()
                .with_error_message(None)
                .with_matching_acls(
                    matching
                        .iter()
                        .map(|b| {
                            DeleteAclsMatchingAcl::default()
                                .with_error_message(None)
                                .with_resource_type(b.resource_type.code())
                                .with_resource_name(str_bytes(b.resource_name.as_str()))
                                .with_pattern_type(b.pattern_type.code())
                                .with_principal(str_bytes(b.principal.as_str()))
                                .with_host(str_bytes(b.host.as_str()))
                                .with_operation(b.operation.code())
                                .with_permission_type(b.permission.code())
                        })
                        .collect(),
                ),
        })
        .collect();
    Ok(DeleteAclsResponse::default().with_filter_results(filter_results))
}

fn failed(e: ResponseError, msg: &str) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(e.code())
        .with_error_message(Some(str_bytes(msg)))
}
