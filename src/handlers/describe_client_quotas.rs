//! DescribeClientQuotas: Fjord enforces no client quotas and offers no way to set one
//! (AlterClientQuotas is not served), so every valid filter matches no entity; `kafka-configs
//! --describe --entity-type users` asks this before it lists SCRAM credentials. Filters are
//! checked as Kafka checks them (entity types user, client-id and ip; match types exact,
//! default and any; an entity type named twice).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeClientQuotasRequest,
) -> anyhow::Result<DescribeClientQuotasResponse> {
    if !Authz::of(broker, ctx).cluster(AclOperation::DescribeConfigs) {
        return Ok(DescribeClientQuotasResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code()));
    }
    let resp = DescribeClientQuotasResponse::default().with_error_message(None);
    Ok(match check(&req) {
        Ok(()) => resp.with_entries(Some(Vec::new())),
        Err(msg) => resp
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes(msg)))
            .with_entries(None),
    })
}

fn check(req: &DescribeClientQuotasRequest) -> Result<(), String> {
    let mut seen = Vec::new();
    for c in &req.components {
        let ty = c.entity_type.as_str();
        if !matches!(ty, "user" | "client-id" | "ip") {
            return Err(format!("Custom entity type '{ty}' not supported"));
        }
        if seen.contains(&ty) {
            return Err(format!("Duplicate filter component entity type {ty}"));
        }
        seen.push(ty);
        match (c.match_type, &c._match) {
            (0, Some(_)) | (1 | 2, None) => {}
            (0, None) => return Err(format!("Unspecified match value for {ty}")),
            (1 | 2, Some(_)) => return Err(format!("Unexpected match value for {ty}")),
            (t, _) => return Err(format!("Unknown match type {t}")),
        }
    }
    if seen.contains(&"ip") && seen.len() > 1 {
        return Err("Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component.".into());
    }
    Ok(())
}
