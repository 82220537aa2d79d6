//! IncrementalAlterConfigs: SET / DELETE / APPEND / SUBTRACT on individual keys of a topic's
//! or the broker's dynamic configs (see `alter_configs` for the shared logic).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::alter_resource;
use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::meta::configs::AlterOp;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> anyhow::Result<IncrementalAlterConfigsResponse> {
    let authz = crate::security::authz::Authz::of(broker, ctx);
    let mut responses: Vec<AlterConfigsResourceResponse> = Vec::new();
    for res in &req.resources {
        let changes: Result<Vec<(String, AlterOp)>, (ResponseError, String)> = res
            .configs
            .iter()
            .map(|c| {
                AlterOp::from_code(c.config_operation, c.value.as_ref().map(|v| v.to_string()))
                    .map(|op| (c.name.to_string(), op))
                    .map_err(|m| (ResponseError::InvalidRequest, m))
            })
            .collect();
        let r = match changes {
            Ok(ch) => {
                alter_resource(
                    broker,
                    &authz,
                    res.resource_type,
                    res.resource_name.as_str(),
                    &ch,
                    false,
                    req.validate_only,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let mut e = AlterConfigsResourceResponse::default()
            .with_error_message(None)
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        if let Err((code, msg)) = r {
            e.error_code = code.code();
            e.error_message = Some(str_bytes(msg));
        }
        responses.push(e);
    }
    if !req.validate_only {
        super::unless_durable(
            super::durable(broker).await,
            responses.iter_mut().map(|r| &mut r.error_code),
        );
    }
    Ok(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
