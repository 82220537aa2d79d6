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
use super::store::SecurityData;
use crate::Broker;
use crate::connection::{Parsed, RequestContext, parse, read_frame};
use crate::dispatch;
use crate::frame::{Frame, encode_response, write_frame};

/// Kafka's `sasl.server.max.receive.size` default: a bigger frame before authentication is
/// refused.
const MAX_RECEIVE: usize = 524_288;

/// An authenticated SASL session: who, how, and until when (KIP-368: a session with an
/// expiry must be re-authenticated before it, or the connection is closed).
#[derive(Debug)]
pub struct Session {
    pub mechanism: String,
    pub user: String,
    pub expires: Option<tokio::time::Instant>,
    /// The client authenticated with SaslAuthenticate v1+, so it may re-authenticate (as in
    /// Kafka, older clients cannot).
    pub can_reauthenticate: bool,
}

impl Session {
    fn new(
        sasl: &SaslListener,
        mechanism: &str,
        m: &dyn Mechanism,
        user: String,
        version: Option<i16>,
    ) -> (Session, i64) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let lifetime = sasl.session_lifetime_ms(mechanism, m.session_expiry_ms(), now_ms);
        let session = Session {
            mechanism: mechanism.to_string(),
            user,
            expires: lifetime
                .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms as u64)),
            can_reauthenticate: version.is_some_and(|v| v >= 1),
        };
        (session, lifetime.unwrap_or(0))
    }

    pub fn expired(&self) -> bool {
        self.expires
            .is_some_and(|e| tokio::time::Instant::now() >= e)
    }
}

/// Runs the SASL exchange; the session once authenticated.
pub async fn authenticate<R, W>(
    broker: &Broker,
    rd: &mut R,
    wr: &mut W,
    peer: SocketAddr,
    listener: &str,
    sasl: &SaslListener,
) -> anyhow::Result<Session>
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
                    return Ok(Session::new(sasl, name, m.as_ref(), user, None).0);
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
                        let (session, lifetime) =
                            Session::new(sasl, name, m.as_ref(), user, Some(version));
                        let resp = done_response(response, lifetime, version);
                        write_frame(wr, &encode_response(key, &ctx, resp)?).await?;
                        tracing::debug!(%peer, listener, mechanism = %name, user = %session.user, lifetime_ms = lifetime, "SASL authentication succeeded");
                        return Ok(session);
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

/// SaslAuthenticate's answer to a finished exchange; the session lifetime (v1+) tells the
/// client when to re-authenticate.
fn done_response(response: Vec<u8>, lifetime_ms: i64, version: i16) -> SaslAuthenticateResponse {
    let resp = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(response));
    if version >= 1 {
        resp.with_session_lifetime_ms(lifetime_ms)
    } else {
        resp
    }
}

fn failed_response(message: &str) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}

/// A re-authentication in progress on an authenticated connection (KIP-368): the client
/// sends SaslHandshake (v1) and SaslAuthenticate requests between its other requests; the
/// mechanism and the user must stay the same.
pub struct Reauthentication<'a> {
    mechanism: Box<dyn Mechanism + 'a>,
}

/// What a re-authentication request leads to.
pub enum Reauth<'a> {
    /// Answer and wait for the next SaslAuthenticate.
    Continue(Frame, Reauthentication<'a>),
    /// Answer; the session is renewed.
    Done(Frame),
    /// Answer (maybe), then close the connection.
    Failed(Option<Frame>, String),
}

/// Serves a SaslHandshake on an authenticated SASL connection: the start of a
/// re-authentication with the session's mechanism.
pub fn reauth_handshake<'a>(
    sasl: &'a SaslListener,
    data: Arc<SecurityData>,
    session: &Session,
    ctx: &RequestContext,
    mut body: Bytes,
) -> Reauth<'a> {
    let version = ctx.api_version;
    let req = match SaslHandshakeRequest::decode(&mut body, version) {
        Ok(r) => r,
        Err(e) => return Reauth::Failed(None, format!("bad SaslHandshake: {e}")),
    };
    let name = req.mechanism.as_str();
    let enabled: Vec<StrBytes> = sasl
        .mechanisms
        .iter()
        .map(|m| StrBytes::from_string(m.clone()))
        .collect();
    let started = (version >= 1 && name == session.mechanism)
        .then(|| sasl.start(name, data))
        .flatten();
    let (code, why) = match &started {
        Some(_) => (0, String::new()),
        None if version < 1 => (
            ResponseError::IllegalSaslState.code(),
            "re-authentication needs SaslHandshake v1".to_string(),
        ),
        None => (
            ResponseError::UnsupportedSaslMechanism.code(),
            format!(
                "re-authentication must use the session's mechanism {}, not {name}",
                session.mechanism
            ),
        ),
    };
    let resp = SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(enabled);
    let frame = match encode_response(ApiKey::SaslHandshake, ctx, resp) {
        Ok(f) => f,
        Err(e) => return Reauth::Failed(None, e.to_string()),
    };
    match started {
        Some(mechanism) => Reauth::Continue(frame, Reauthentication { mechanism }),
        None => Reauth::Failed(Some(frame), why),
    }
}

/// Serves a SaslAuthenticate of a re-authentication.
pub fn reauth_step<'a>(
    sasl: &'a SaslListener,
    session: &mut Session,
    mut r: Reauthentication<'a>,
    ctx: &RequestContext,
    mut body: Bytes,
) -> Reauth<'a> {
    let version = ctx.api_version;
    let req = match SaslAuthenticateRequest::decode(&mut body, version) {
        Ok(r) => r,
        Err(e) => return Reauth::Failed(None, format!("bad SaslAuthenticate: {e}")),
    };
    let encode = |resp: SaslAuthenticateResponse| {
        encode_response(ApiKey::SaslAuthenticate, ctx, resp).map_err(|e| e.to_string())
    };
    let result = match r.mechanism.step(&req.auth_bytes) {
        Ok(Step::Continue(token)) => {
            encode(SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token)))
                .map(|f| Reauth::Continue(f, r))
        }
        Ok(Step::Done { user, .. }) if user != session.user => {
            let why = format!(
                "Cannot change principals during re-authentication from User:{} to User:{user}",
                session.user
            );
            encode(failed_response(&why)).map(|f| Reauth::Failed(Some(f), why))
        }
        Ok(Step::Done { response, user }) => {
            let (renewed, lifetime) = Session::new(
                sasl,
                &session.mechanism,
                r.mechanism.as_ref(),
                user,
                Some(version),
            );
            *session = renewed;
            tracing::debug!(peer = %ctx.peer, listener = %ctx.listener, mechanism = %session.mechanism, user = %session.user, lifetime_ms = lifetime, "SASL re-authentication succeeded");
            encode(done_response(response, lifetime, version)).map(Reauth::Done)
        }
        Err(e) => encode(failed_response(&e.0)).map(|f| Reauth::Failed(Some(f), e.0)),
    };
    result.unwrap_or_else(|e| Reauth::Failed(None, e))
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
pub async fn failure_delay(broker: &Broker) {
    let ms = broker
        .config
        .values
        .get("connection.failed.authentication.delay.ms")
        .and_then(|(v, _)| v.trim().parse::<u64>().ok())
        .unwrap_or(100);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
