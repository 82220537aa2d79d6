//! A minimal Kafka protocol client for broker-to-broker requests (a follower's Fetch and
//! OffsetForLeaderEpoch, transaction markers): one connection, one request at a time,
//! bounded by a timeout, over the inter-broker listener's security protocol (TLS from the
//! [`Connector`], then SaslHandshake and SaslAuthenticate as any Kafka client does).

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};

use crate::security::connector::{BoxStream, Connector, Refused};

/// Responses larger than this are refused (a follower asks for at most `replica.fetch.
/// response.max.bytes`, 10 MiB by default, plus headers).
const MAX_RESPONSE: usize = 64 << 20;

pub struct Client {
    stream: BoxStream,
    correlation: i32,
    client_id: StrBytes,
    /// When the SASL session ends (the server's `session_lifetime_ms`, KIP-368): the
    /// connection is given up a little before, and the caller opens a new one.
    session_end: Option<Instant>,
}

impl Client {
    /// Connects to `addr` through `connector` and, on a SASL listener, authenticates.
    pub async fn connect(
        connector: &Connector,
        addr: &str,
        client_id: String,
        timeout: Duration,
    ) -> anyhow::Result<Client> {
        let stream = connector.connect(addr, timeout).await?;
        let mut client = Client {
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id),
            session_end: None,
        };
        if let Some(login) = &connector.login {
            client.authenticate(login, timeout).await.map_err(|e| {
                Refused(format!(
                    "{} authentication to {addr} as this broker: {e:#}",
                    login.mechanism
                ))
            })?;
        }
        Ok(client)
    }

    async fn authenticate(
        &mut self,
        login: &crate::security::login::Login,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let hs = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_string(login.mechanism.clone()));
        let resp = self.call(1, &hs, timeout).await?;
        if resp.error_code != 0 {
            bail!(
                "the listener does not offer {} (it offers {:?}; error {})",
                login.mechanism,
                resp.mechanisms
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>(),
                resp.error_code
            );
        }
        let (mut exchange, mut msg) = login.start()?;
        // PLAIN and OAUTHBEARER take one round, SCRAM two.
        for _ in 0..4 {
            let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(msg));
            let resp = self.call(2, &req, timeout).await?;
            if resp.error_code != 0 {
                bail!(
                    "refused (error {}): {}",
                    resp.error_code,
                    resp.error_message.as_deref().unwrap_or("")
                );
            }
            match exchange.next(&resp.auth_bytes)? {
                Some(next) => msg = next,
                None => {
                    if resp.session_lifetime_ms > 0 {
                        // Given up at 90% of the lifetime, as Kafka's clients re-authenticate.
                        let ms = resp.session_lifetime_ms as u64 * 9 / 10;
                        self.session_end = Some(Instant::now() + Duration::from_millis(ms));
                    }
                    return Ok(());
                }
            }
        }
        bail!("the exchange did not end")
    }

    /// Sends `req` at `version` and waits up to `timeout` for its response.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        req: &R,
        timeout: Duration,
    ) -> anyhow::Result<R::Response> {
        if self.session_end.is_some_and(|t| Instant::now() >= t) {
            bail!("the SASL session is about to expire: reconnect");
        }
        self.correlation = self.correlation.wrapping_add(1);
        let corr = self.correlation;
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("api key {}", R::KEY))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(Some(self.client_id.clone()));
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(version))?;
        req.encode(&mut body, version)?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        let exchange = async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await?;
            let len = i32::from_be_bytes(len);
            if len < 0 || len as usize > MAX_RESPONSE {
                bail!("response of {len} bytes");
            }
            let mut buf = vec![0u8; len as usize];
            self.stream.read_exact(&mut buf).await?;
            anyhow::Ok(Bytes::from(buf))
        };
        let mut resp = tokio::time::timeout(timeout, exchange)
            .await
            .context("no response in time")??;
        let h = ResponseHeader::decode(&mut resp, key.response_header_version(version))?;
        if h.correlation_id != corr {
            bail!("response {} to request {corr}", h.correlation_id);
        }
        R::Response::decode(&mut resp, version)
    }
}
