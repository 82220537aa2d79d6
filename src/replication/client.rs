//! A minimal Kafka protocol client for broker-to-broker requests (a follower's Fetch and
//! OffsetForLeaderEpoch): one connection, one request at a time, bounded by a timeout.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Responses larger than this are refused (a follower asks for at most `replica.fetch.
/// response.max.bytes`, 10 MiB by default, plus headers).
const MAX_RESPONSE: usize = 64 << 20;

pub struct Client {
    stream: TcpStream,
    correlation: i32,
    client_id: StrBytes,
}

impl Client {
    pub async fn connect(
        addr: &str,
        client_id: String,
        timeout: Duration,
    ) -> anyhow::Result<Client> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id),
        })
    }

    /// Sends `req` at `version` and waits up to `timeout` for its response.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        req: &R,
        timeout: Duration,
    ) -> anyhow::Result<R::Response> {
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
