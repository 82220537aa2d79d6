//! SaslHandshake outside a SASL listener's authentication (a plaintext or SSL listener, or a
//! client that authenticated with SaslAuthenticate v0 and so cannot re-authenticate):
//! ILLEGAL_SASL_STATE, as Kafka answers. On SASL listeners the handshake itself, and a
//! re-authentication's (KIP-368), are served by `security::authenticate`.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use crate::Broker;
use crate::connection::RequestContext;

pub async fn handle(
    _broker: &Broker,
    _ctx: &RequestContext,
    _req: SaslHandshakeRequest,
) -> anyhow::Result<SaslHandshakeResponse> {
    Ok(SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code()))
}
