//! A SASL listener's connection before it is authenticated: only ApiVersions, SaslHandshake
//! and SaslAuthenticate are served (after a v0 handshake, the mechanism's messages come as
//! raw size-prefixed tokens, as Kafka's old clients send them); anything else, a failed
//! authentication (answered with SASL_AUTHENTICATION_FAILED and its message first) or a
//! client that goes quiet closes the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::principal::ANONYMOUS;
use super::sasl::{Mechanism, SaslListener, Step};
use crate::Broker;
use crate::connection::{Parsed, parse, read_frame};
use crate::dispatch;
use crate::frame::{encode_response, write_frame};

/// Kafka's `sasl.server.max.receive.size` default: a bigger frame before authentication is
/// refused.
const MAX_RECEIVE: usize = 524_288;

/// Runs the SASL exchange; Ok(user name) once authenticated.
pub async fn authenticate<R, W>(
    broker: &Broker,
    rd: &mut R,
    wr: &mut W,
    peer: SocketAddr,
    listener: &str,
    sasl: &SaslListener,
) -> anyhow::Result<String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The whole exchange must end within connections.max.idle.ms.
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(broker.config.connections_max_idle_ms.max(1) as u64);
    let mut mechanism: Option<(String, Box<dyn Mechanism + '_>)> = None;
    let mut raw = false;
    // As in Kafka: one ApiVersions, before the handshake (again only after an answer of
    // UNSUPPORTED_VERSION, KIP-511).
    let mut versions_answered = false;
    loop {
        let frame =
            match tokio::time::timeout_at(deadline, read_frame(rd, MAX_RECEIVE, &None)).await {
                Err(_) => anyhow::bail!("no SASL authentication within connections.max.idle.ms"),
                Ok(r) => match r? {
                    Some((f, _)) => f,
                    None => {
                        anyhow::bail!("the client closed the connection during SASL authentication")
                    }
                },
            };
        if raw {
            let (name, m) = mechanism.as_mut().expect("raw mode follows a handshake");
            match m.step(&frame) {
                Ok(Step::Continue(token)) => write_raw(wr, &token).await?,
                Ok(Step::Done { response, user }) => {
                    write_raw(wr, &response).await?;
                    tracing::debug!(%peer, listener, mechanism = %name, %user, "SASL authentication succeeded");
                    return Ok(user);
                }
                Err(e) => {
                    tracing::warn!(%peer, listener, mechanism = %name, reason = %e.0, "SASL authentication failed; closing connection");
                    failure_delay(broker).await;
                    anyhow::bail!("authentication failed");
                }
            }
            continue;
        }
        let anonymous: Arc<str> = Arc::from(ANONYMOUS);
        let Parsed {
            ctx,
            api_key,
            mut body,
            ..
        } = parse(frame, peer, listener, &anonymous, None)?;
        let version = ctx.api_version;
        let key = ApiKey::try_from(api_key).map_err(|_| anyhow::anyhow!("unknown API key"))?;
        let (min, max) = dispatch::supported_range(key).unwrap_or((0, -1));
        if key != ApiKey::ApiVersions && (version < min || version > max) {
            anyhow::bail!("{key:?} v{version} is outside the supported range {min}..={max}");
        }
        match key {
            ApiKey::ApiVersions if mechanism.is_none() && !versions_answered => {
                versions_answered = version <= max;
                if let Some(f) = dispatch::handle(broker, ctx, api_key, body).await? {
                    write_frame(wr, &f).await?;
                }
            }
            ApiKey::SaslHandshake if mechanism.is_none() => {
                let req = SaslHandshakeRequest::decode(&mut body, version)?;
                let name = req.mechanism.as_str().to_string();
                let enabled: Vec<StrBytes> = sasl
                    .mechanisms
                    .iter()
                    .map(|m| StrBytes::from_string(m.clone()))
                    .collect();
                let started = sasl.start(&name, broker.security.get());
                let resp = SaslHandshakeResponse::default()
                    .with_error_code(if started.is_some() {
                        0
                    } else {
                        ResponseError::UnsupportedSaslMechanism.code()
                    })
                    .with_mechanisms(enabled);
                write_frame(wr, &encode_response(key, &ctx, resp)?).await?;
                match started {
                    Some(m) => {
                        mechanism = Some((name, m));
                        raw = version == 0;
                    }
                    None => {
                        tracing::warn!(%peer, listener, mechanism = %name, "SASL mechanism not enabled; closing connection");
                        anyhow::bail!("unsupported SASL mechanism");
                    }
                }
            }
            ApiKey::SaslAuthenticate => {
                let req = SaslAuthenticateRequest::decode(&mut body, version)?;
                let Some((name, m)) = mechanism.as_mut() else {
                    let resp = SaslAuthenticateResponse::default()
                        .with_error_code(ResponseError::IllegalSaslState.code())
                        .with_error_message(Some(StrBytes::from_static_str(
                            "SaslAuthenticate before SaslHandshake",
                        )));
                    write_frame(wr, &encode_response(key, &ctx, resp)?).await?;
                    anyhow::bail!("SaslAuthenticate before SaslHandshake");
                };
                match m.step(&req.auth_bytes) {
                    Ok(Step::Continue(token)) => {
                        let resp =
                            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token));
                        write_frame(wr, &encode_response(key, &ctx, resp)?).await?;
                    }
                    Ok(Step::Done { response, user }) => {
                        let resp = SaslAuthenticateResponse::default()
                            .with_auth_bytes(Bytes::from(response))
                            .with_session_lifetime_ms(0);
                        write_frame(wr, &encode_response(key, &ctx, resp)?).await?;
                        tracing::debug!(%peer, listener, mechanism = %name, %user, "SASL authentication succeeded");
                        return Ok(user);
                    }
                    Err(e) => {
                        let resp = SaslAuthenticateResponse::default()
                            .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                            .with_error_message(Some(StrBytes::from_string(e.0.clone())));
                        write_frame(wr, &encode_response(key, &ctx, resp)?).await?;
                        tracing::warn!(%peer, listener, mechanism = %name, reason = %e.0, "SASL authentication failed; closing connection");
                        failure_delay(broker).await;
                        anyhow::bail!("authentication failed");
                    }
                }
            }
            other => anyhow::bail!("{other:?} request before SASL authentication"),
        }
    }
}

/// A raw SASL token, size-prefixed (after a v0 handshake).
async fn write_raw<W: AsyncWrite + Unpin>(wr: &mut W, token: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4 + token.len());
    buf.extend_from_slice(&(token.len() as u32).to_be_bytes());
    buf.extend_from_slice(token);
    wr.write_all(&buf).await?;
    wr.flush().await
}

/// Kafka's `connection.failed.authentication.delay.ms` (100 ms by default): a failed client
/// waits before its connection closes, which slows down password guessing.
async fn failure_delay(broker: &Broker) {
    let ms = broker
        .config
        .values
        .get("connection.failed.authentication.delay.ms")
        .and_then(|(v, _)| v.trim().parse::<u64>().ok())
        .unwrap_or(100);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
