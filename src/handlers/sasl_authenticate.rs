//! SaslAuthenticate outside a SASL listener's authentication: ILLEGAL_SASL_STATE, as Kafka
//! answers (re-authentication is not offered: session lifetimes are 0). On SASL listeners the
//! exchange is served by `security::authenticate` before any handler runs.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;

pub async fn handle(
    _broker: &Broker,
    _ctx: &RequestContext,
    _req: SaslAuthenticateRequest,
) -> anyhow::Result<SaslAuthenticateResponse> {
    Ok(SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(str_bytes(
            "SaslAuthenticate request received outside a SASL authentication",
        ))))
}
