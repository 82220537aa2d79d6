//! ApiVersions: the client's first request. Generated from the dispatch table so what we
//! advertise and what we serve can never disagree.

use bytes::{BufMut, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use crate::Broker;
use crate::connection::RequestContext;
use crate::dispatch::SUPPORTED;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

pub async fn handle(
    _broker: &Broker,
    ctx: &RequestContext,
    req: ApiVersionsRequest,
) -> anyhow::Result<ApiVersionsResponse> {
    if ctx.api_version >= 3 {
        tracing::debug!(
            peer = %ctx.peer,
            software = %req.client_software_name.as_str(),
            version = %req.client_software_version.as_str(),
            "client connected"
        );
    }
    Ok(ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(api_keys()))
}

/// KIP-511: the client asked with a version newer than ours. Answer UNSUPPORTED_VERSION with
/// our ranges, encoded as v0 with a v0 response header, so any client can read it.
pub fn unsupported_version_frame(correlation_id: i32) -> anyhow::Result<BytesMut> {
    let resp = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(0)? + resp.compute_size(0)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, 0)?;
    resp.encode(&mut buf, 0)?;
    Ok(buf)
}
