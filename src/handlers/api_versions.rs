//! ApiVersions: the client's first request. Generated from the dispatch table so what we
//! advertise and what we serve can never disagree.

use bytes::{BufMut, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::protocol::StrBytes;

use crate::Broker;
use crate::connection::RequestContext;
use crate::dispatch::SUPPORTED;

/// (feature, level) this broker supports and has finalized.
const FEATURES: &[(&str, i16)] = &[("transaction.version", 2), ("group.version", 1)];

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
    let mut resp = ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(api_keys());
    if ctx.api_version >= 3 {
        // Feature flags. `transaction.version` 2 tells Kafka 4.x producers to use the KIP-890
        // transaction protocol; `group.version` 1 says KIP-848 consumer groups are on. The
        // levels never change on this broker, so the finalized epoch stays 0 (clients ignore
        // finalized features with epoch -1). v3 readers mishandle a minimum of 0 (KAFKA-17011).
        let min = if ctx.api_version >= 4 { 0 } else { 1 };
        for (name, max) in FEATURES {
            resp.supported_features.push(
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_min_version(min)
                    .with_max_version(*max),
            );
            resp.finalized_features.push(
                FinalizedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_min_version_level(*max)
                    .with_max_version_level(*max),
            );
        }
        resp.finalized_features_epoch = 0;
    }
    Ok(resp)
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
