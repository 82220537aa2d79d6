//! One client connection: size-prefixed frames in, responses out in request order.
//!
//! Clients pipeline (Java and librdkafka keep up to 5 requests in flight), and an idempotent
//! producer's pipelined batches must be appended in the order sent. So, as in Kafka, the
//! requests of one connection are handled one at a time, in order; a reader task reads ahead
//! (bounded) so the next request is already decoded when the current one finishes. A
//! malformed frame or an unknown API key ends this connection only, after the requests
//! before it have been answered.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::Broker;
use crate::dispatch;
use crate::security::authenticate::{Reauth, Reauthentication, reauth_handshake, reauth_step};
use crate::security::sasl::SaslListener;

/// Requests read ahead of the one being handled; beyond this the reader stops reading
/// (back pressure on the client) until the handler catches up.
const READ_AHEAD: usize = 8;

/// What a handler needs to know about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub peer: SocketAddr,
    /// Name of the listener the client connected through: Metadata advertises that one.
    pub listener: String,
    pub client_id: Option<String>,
    pub api_version: i16,
    pub correlation_id: i32,
    /// Who the client is (`User:ANONYMOUS` unless it authenticated).
    pub principal: Arc<str>,
}

pub(crate) struct Parsed {
    pub(crate) ctx: RequestContext,
    pub(crate) api_key: i16,
    pub(crate) body: Bytes,
    /// Share of `queued.max.request.bytes` held until the request has been handled.
    _quota: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Caps the request bytes held in memory across all connections (`queued.max.request.bytes`):
/// a connection that would exceed it waits before reading the frame body.
pub type RequestQuota = Option<Arc<tokio::sync::Semaphore>>;

/// Serves a plaintext connection.
pub async fn serve(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: String,
    shutdown: watch::Receiver<bool>,
    quota: RequestQuota,
) {
    serve_stream(broker, stream, peer, listener, None, shutdown, quota).await;
}

/// Serves a plaintext or SASL_PLAINTEXT connection.
pub async fn serve_stream(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: String,
    sasl: Option<Arc<SaslListener>>,
    shutdown: watch::Receiver<bool>,
    quota: RequestQuota,
) {
    let (rd, wr) = stream.into_split();
    let principal: Arc<str> = Arc::from(crate::security::principal::ANONYMOUS);
    serve_split(
        broker, rd, wr, peer, listener, principal, sasl, shutdown, quota,
    )
    .await;
}

/// Serves a connection given as its two halves (a TLS stream's, say), as `principal` (the
/// TLS client's), or, on a SASL listener, as the user it authenticates as first.
#[allow(clippy::too_many_arguments)]
pub async fn serve_split<R, W>(
    broker: Arc<Broker>,
    mut rd: R,
    mut wr: W,
    peer: SocketAddr,
    listener: String,
    mut principal: Arc<str>,
    sasl: Option<Arc<SaslListener>>,
    mut shutdown: watch::Receiver<bool>,
    quota: RequestQuota,
) where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send,
{
    let mut session = None;
    if let Some(sasl) = &sasl {
        let auth = crate::security::authenticate::authenticate(
            &broker, &mut rd, &mut wr, peer, &listener, sasl,
        );
        let authenticated = tokio::select! {
            _ = shutdown.changed() => return,
            r = auth => r,
        };
        match authenticated {
            Ok(s) => {
                principal = Arc::from(format!("User:{}", s.user));
                session = Some(s);
            }
            Err(e) => {
                tracing::debug!(%peer, %listener, error = %e, "closing connection before authentication");
                let _ = wr.shutdown().await;
                return;
            }
        }
    }
    let (tx, mut rx) = mpsc::channel::<Parsed>(READ_AHEAD);

    let max = broker.config.socket_request_max_bytes as usize;
    let idle = std::time::Duration::from_millis(broker.config.connections_max_idle_ms as u64);
    let listener_name = listener.clone();
    let reader = tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                _ = shutdown.changed() => break,
                // connections.max.idle.ms: a connection that sends nothing for that long is
                // closed, as Kafka does, so abandoned sockets do not pile up.
                _ = tokio::time::sleep(idle) => {
                    tracing::info!(%peer, idle_ms = idle.as_millis() as u64, "closing idle connection");
                    break;
                }
                _ = tx.closed() => break,
                f = read_frame(&mut rd, max, &quota) => f,
            };
            let frame = match frame {
                Ok(Some(f)) => f,
                Ok(None) => break, // clean EOF
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "bad frame; closing connection");
                    break;
                }
            };
            let (frame, permit) = frame;
            match parse(frame, peer, &listener, &principal, permit) {
                Ok(p) => {
                    if tx.send(p).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "bad request; closing connection");
                    break;
                }
            }
        }
    });

    // Handle in arrival order; the channel closes when the reader stops, after which the
    // requests already read are still answered.
    let mut reauth: Option<Reauthentication<'_>> = None;
    while let Some(p) = rx.recv().await {
        if let (Some(sasl), Some(session)) = (sasl.as_deref(), session.as_mut()) {
            use kafka_protocol::messages::ApiKey;
            let step = match ApiKey::try_from(p.api_key) {
                Ok(ApiKey::SaslHandshake) if reauth.is_none() && session.can_reauthenticate => {
                    Some(reauth_handshake(
                        sasl,
                        broker.security.get(),
                        session,
                        &p.ctx,
                        p.body.clone(),
                    ))
                }
                Ok(ApiKey::SaslAuthenticate) if reauth.is_some() => Some(reauth_step(
                    sasl,
                    session,
                    reauth.take().expect("checked"),
                    &p.ctx,
                    p.body.clone(),
                )),
                _ if reauth.is_some() => Some(Reauth::Failed(
                    None,
                    "a request other than SaslAuthenticate during re-authentication".into(),
                )),
                // KIP-368: past its session's end a connection serves nothing more.
                _ if session.expired() => {
                    tracing::info!(%peer, listener = %listener_name, user = %session.user, "SASL session expired without re-authentication; closing connection");
                    break;
                }
                _ => None,
            };
            if let Some(step) = step {
                let (frame, fail) = match step {
                    Reauth::Continue(f, r) => {
                        reauth = Some(r);
                        (Some(f), None)
                    }
                    Reauth::Done(f) => (Some(f), None),
                    Reauth::Failed(f, why) => (f, Some(why)),
                };
                if let Some(f) = frame
                    && crate::frame::write_frame(&mut wr, &f).await.is_err()
                {
                    break;
                }
                if let Some(why) = fail {
                    tracing::warn!(%peer, listener = %listener_name, reason = %why, "SASL re-authentication failed; closing connection");
                    crate::security::authenticate::failure_delay(&broker).await;
                    break;
                }
                continue;
            }
        }
        match dispatch::handle(&broker, p.ctx, p.api_key, p.body).await {
            Ok(Some(frame)) => {
                if let Err(e) = crate::frame::write_frame(&mut wr, &frame).await {
                    tracing::debug!(%peer, error = %e, "write failed; closing connection");
                    break;
                }
            }
            Ok(None) => {} // acks=0 produce: the client expects no response.
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        }
    }
    drop(rx);
    let _ = wr.shutdown().await;
    reader.abort();
    let _ = reader.await;
    tracing::debug!(%peer, "connection closed");
}

/// Reads one size-prefixed frame; `Ok(None)` on EOF between frames.
pub(crate) async fn read_frame(
    rd: &mut (impl AsyncReadExt + Unpin),
    max: usize,
    quota: &RequestQuota,
) -> anyhow::Result<Option<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>)>> {
    let mut len = [0u8; 4];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        // A client going away between requests is a normal disconnect, not a bad frame.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(len);
    if size < 0 {
        anyhow::bail!("negative frame size {size}");
    }
    if size as usize > max {
        anyhow::bail!("frame of {size} bytes exceeds socket.request.max.bytes ({max})");
    }
    let permit = match quota {
        Some(q) => Some(
            q.clone()
                .acquire_many_owned(size.max(1) as u32)
                .await
                .map_err(|_| anyhow::anyhow!("request quota closed"))?,
        ),
        None => None,
    };
    // Read into uninitialised capacity (no memset of up to a megabyte per produce), never
    // past this frame: `take` stops at its end.
    let size = size as usize;
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        let want = (size - buf.len()) as u64;
        let n = (&mut *rd).take(want).read_buf(&mut buf).await?;
        if n == 0 {
            anyhow::bail!(
                "truncated frame: expected {size} bytes, the connection ended after {}",
                buf.len()
            );
        }
    }
    Ok(Some((buf.freeze(), permit)))
}

/// Decodes the request header. Errors here mean the frame cannot be a Kafka request at all
/// (or names an API we do not serve), which ends the connection.
pub(crate) fn parse(
    mut frame: Bytes,
    peer: SocketAddr,
    listener: &str,
    principal: &Arc<str>,
    quota: Option<tokio::sync::OwnedSemaphorePermit>,
) -> anyhow::Result<Parsed> {
    if frame.len() < 8 {
        anyhow::bail!(
            "frame of {} bytes is too short for a request header",
            frame.len()
        );
    }
    let api_key = (&frame[0..2]).get_i16();
    let api_version = (&frame[2..4]).get_i16();
    let header = dispatch::decode_header(api_key, api_version, &mut frame)?;
    let ctx = RequestContext {
        peer,
        listener: listener.to_string(),
        client_id: header.client_id.as_ref().map(|s| s.to_string()),
        api_version,
        correlation_id: header.correlation_id,
        principal: principal.clone(),
    };
    Ok(Parsed {
        ctx,
        api_key,
        body: frame,
        _quota: quota,
    })
}
