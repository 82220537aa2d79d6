//! CreateAcls: adds ACL bindings to the replicated metadata (through the controller on a
//! cluster node). Needs ALTER on the cluster; each binding is checked as Kafka checks it
//! (INVALID_REQUEST with Kafka's message); without an authorizer, SECURITY_DISABLED.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};

use super::str_bytes;
use crate::Broker;
use crate::cluster::records::MetadataRecord;
use crate::connection::RequestContext;
use crate::security::acl::{AclBinding, AclOperation, validate_binding};
use crate::security::authz::Authz;
use crate::security::store;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: CreateAclsRequest,
) -> anyhow::Result<CreateAclsResponse> {
    let refuse_all = |e: ResponseError, msg: &str| {
        let results = req
            .creations
            .iter()
            .map(|_| result(Err((e, msg.to_string()))))
            .collect();
        Ok(CreateAclsResponse::default().with_results(results))
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
    let existing = broker.security.get();
    let mut outcomes: Vec<Result<(), (ResponseError, String)>> = Vec::new();
    let mut records = Vec::new();
    for c in &req.creations {
        let b = AclBinding::from_wire(
            c.resource_type,
            c.resource_name.as_str(),
            c.resource_pattern_type,
            c.principal.as_str(),
            c.host.as_str(),
            c.operation,
            c.permission_type,
        );
        match validate_binding(&b) {
            Err(e) => outcomes.push(Err((e.error(), e.message().to_string()))),
            Ok(()) => {
                // An ACL that exists already is created again without a change.
                let rec = MetadataRecord::AccessControlEntry(b.clone());
                if !existing.acls.contains(&b) && !records.contains(&rec) {
                    records.push(rec);
                }
                outcomes.push(Ok(()));
            }
        }
    }
    if !records.is_empty() {
        let n = records.len();
        if let Err((e, msg)) = store::commit(broker, records).await {
            for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *o = Err((e, msg.clone()));
            }
        } else {
            tracing::info!(principal = %ctx.principal, acls = n, "ACLs created");
        }
    }
    Ok(CreateAclsResponse::default().with_results(outcomes.into_iter().map(result).collect()))
}

fn result(r: Result<(), (ResponseError, String)>) -> AclCreationResult {
    match r {
        Ok(()) => AclCreationResult::default().with_error_message(None),
        Err((e, msg)) => AclCreationResult::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(msg))),
    }
}
