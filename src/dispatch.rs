//! The API table: for each Kafka API key, the versions Fjord supports and the handler.
//!
//! This table is the single source of truth: ApiVersions advertises exactly these ranges and
//! requests outside them never reach a handler. The ranges are those an Apache Kafka 4.1
//! broker advertises (stable versions only), except where a handler notes otherwise.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use crate::Broker;
use crate::connection::RequestContext;
use crate::frame::{Frame, encode_response};
use crate::handlers;

/// Whether the client waits for a response. Only acks=0 produce does not.
fn expects_response<R: 'static>(req: &R) -> bool {
    match (req as &dyn std::any::Any).downcast_ref::<ProduceRequest>() {
        Some(p) => p.acks != 0,
        None => true,
    }
}

macro_rules! api_table {
    ($( $key:ident : $req:ident [$min:literal ..= $max:literal] => $handler:path ),* $(,)?) => {
        /// (API key, min version, max version) for every API Fjord serves.
        pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[ $( (ApiKey::$key, $min, $max) ),* ];

        /// Decodes a request body of a served API without handling it (fuzzing, tests).
        pub fn decode_body(key: ApiKey, version: i16, mut body: Bytes) -> anyhow::Result<()> {
            match key {
                $( ApiKey::$key => { $req::decode(&mut body, version)?; Ok(()) } )*
                other => anyhow::bail!("API {other:?} is not served"),
            }
        }

        async fn route(broker: &Broker, ctx: &RequestContext, key: ApiKey, mut body: Bytes) -> anyhow::Result<Option<Frame>> {
            let version = ctx.api_version;
            match key {
                $( ApiKey::$key => {
                    let req = $req::decode(&mut body, version)
                        .map_err(|e| anyhow::anyhow!("cannot decode {:?} v{version}: {e}", key))?;
                    let expects = expects_response(&req);
                    let resp = $handler(broker, ctx, req).await?;
                    if !expects {
                        return Ok(None);
                    }
                    encode_response(key, ctx, resp).map(Some)
                } )*
                other => anyhow::bail!("API {other:?} is not served"),
            }
        }
    };
}

api_table! {
    // Advertised from v0 like Kafka 4.x (KAFKA-18659: librdkafka disables compression unless
    // v0-2 are listed); v0-2 themselves are refused with UNSUPPORTED_VERSION.
    Produce: ProduceRequest [0 ..= 13] => handlers::produce::handle,
    Fetch: FetchRequest [4 ..= 18] => handlers::fetch::handle,
    ListOffsets: ListOffsetsRequest [1 ..= 10] => handlers::list_offsets::handle,
    Metadata: MetadataRequest [0 ..= 13] => handlers::metadata::handle,
    ApiVersions: ApiVersionsRequest [0 ..= 4] => handlers::api_versions::handle,
    CreateTopics: CreateTopicsRequest [2 ..= 7] => handlers::create_topics::handle,
    DeleteTopics: DeleteTopicsRequest [1 ..= 6] => handlers::delete_topics::handle,
    InitProducerId: InitProducerIdRequest [0 ..= 5] => handlers::init_producer_id::handle,
    OffsetForLeaderEpoch: OffsetForLeaderEpochRequest [2 ..= 4] => handlers::offset_for_leader_epoch::handle,
    DescribeConfigs: DescribeConfigsRequest [1 ..= 4] => handlers::describe_configs::handle,
    CreatePartitions: CreatePartitionsRequest [0 ..= 3] => handlers::create_partitions::handle,
    DescribeCluster: DescribeClusterRequest [0 ..= 2] => handlers::describe_cluster::handle,
    DescribeTopicPartitions: DescribeTopicPartitionsRequest [0 ..= 0] => handlers::describe_topic_partitions::handle,
    DescribeQuorum: DescribeQuorumRequest [0 ..= 2] => handlers::describe_quorum::handle,
    ElectLeaders: ElectLeadersRequest [0 ..= 2] => handlers::elect_leaders::handle,
    AlterPartitionReassignments: AlterPartitionReassignmentsRequest [0 ..= 1] => handlers::alter_partition_reassignments::handle,
    ListPartitionReassignments: ListPartitionReassignmentsRequest [0 ..= 0] => handlers::list_partition_reassignments::handle,
    // Group coordinator. OffsetCommit/OffsetFetch v10 (topic ids) are unstable in 4.1.
    OffsetCommit: OffsetCommitRequest [2 ..= 9] => handlers::offset_commit::handle,
    OffsetFetch: OffsetFetchRequest [1 ..= 9] => handlers::offset_fetch::handle,
    // v6 adds share groups, which Fjord does not have; v0-5 cover consumer and transaction keys.
    FindCoordinator: FindCoordinatorRequest [0 ..= 5] => handlers::find_coordinator::handle,
    JoinGroup: JoinGroupRequest [0 ..= 9] => handlers::join_group::handle,
    Heartbeat: HeartbeatRequest [0 ..= 4] => handlers::heartbeat::handle,
    LeaveGroup: LeaveGroupRequest [0 ..= 5] => handlers::leave_group::handle,
    SyncGroup: SyncGroupRequest [0 ..= 5] => handlers::sync_group::handle,
    DescribeGroups: DescribeGroupsRequest [0 ..= 6] => handlers::describe_groups::handle,
    ListGroups: ListGroupsRequest [0 ..= 5] => handlers::list_groups::handle,
    DeleteGroups: DeleteGroupsRequest [0 ..= 2] => handlers::delete_groups::handle,
    OffsetDelete: OffsetDeleteRequest [0 ..= 0] => handlers::offset_delete::handle,
    ConsumerGroupHeartbeat: ConsumerGroupHeartbeatRequest [0 ..= 1] => handlers::consumer_group_heartbeat::handle,
    ConsumerGroupDescribe: ConsumerGroupDescribeRequest [0 ..= 1] => handlers::consumer_group_describe::handle,
    // Log lifecycle.
    AlterConfigs: AlterConfigsRequest [0 ..= 2] => handlers::alter_configs::handle,
    IncrementalAlterConfigs: IncrementalAlterConfigsRequest [0 ..= 1] => handlers::incremental_alter_configs::handle,
    DeleteRecords: DeleteRecordsRequest [0 ..= 2] => handlers::delete_records::handle,
    DescribeLogDirs: DescribeLogDirsRequest [1 ..= 4] => handlers::describe_log_dirs::handle,
    // Transactions. InitProducerId v6 (KIP-939) is unstable in 4.1.
    AddPartitionsToTxn: AddPartitionsToTxnRequest [0 ..= 5] => handlers::add_partitions_to_txn::handle,
    AddOffsetsToTxn: AddOffsetsToTxnRequest [0 ..= 4] => handlers::add_offsets_to_txn::handle,
    EndTxn: EndTxnRequest [0 ..= 5] => handlers::end_txn::handle,
    TxnOffsetCommit: TxnOffsetCommitRequest [0 ..= 5] => handlers::txn_offset_commit::handle,
    DescribeTransactions: DescribeTransactionsRequest [0 ..= 0] => handlers::describe_transactions::handle,
    ListTransactions: ListTransactionsRequest [0 ..= 2] => handlers::list_transactions::handle,
    DescribeProducers: DescribeProducersRequest [0 ..= 0] => handlers::describe_producers::handle,
    // SASL: served before any other request on SASL listeners (security::authenticate);
    // these handlers answer elsewhere.
    SaslHandshake: SaslHandshakeRequest [0 ..= 1] => handlers::sasl_handshake::handle,
    SaslAuthenticate: SaslAuthenticateRequest [0 ..= 2] => handlers::sasl_authenticate::handle,
    // ACLs, kept in the replicated metadata.
    DescribeAcls: DescribeAclsRequest [1 ..= 3] => handlers::describe_acls::handle,
    CreateAcls: CreateAclsRequest [1 ..= 3] => handlers::create_acls::handle,
    DeleteAcls: DeleteAclsRequest [1 ..= 3] => handlers::delete_acls::handle,
    // SCRAM credentials, kept in the replicated metadata; quotas (none: kafka-configs
    // --describe --entity-type users asks for them).
    DescribeClientQuotas: DescribeClientQuotasRequest [0 ..= 1] => handlers::describe_client_quotas::handle,
    DescribeUserScramCredentials: DescribeUserScramCredentialsRequest [0 ..= 0] => handlers::describe_user_scram_credentials::handle,
    AlterUserScramCredentials: AlterUserScramCredentialsRequest [0 ..= 0] => handlers::alter_user_scram_credentials::handle,
    // Inter-broker, and `kafka-transactions abort` for a hanging transaction.
    WriteTxnMarkers: WriteTxnMarkersRequest [1 ..= 1] => handlers::write_txn_markers::handle,
}

pub fn supported_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// Decodes the request header. Unknown API keys end the connection, as in Kafka.
pub fn decode_header(
    api_key: i16,
    api_version: i16,
    frame: &mut Bytes,
) -> anyhow::Result<RequestHeader> {
    let key =
        ApiKey::try_from(api_key).map_err(|_| anyhow::anyhow!("unknown API key {api_key}"))?;
    if supported_range(key).is_none() {
        anyhow::bail!("unsupported API {key:?} (key {api_key})");
    }
    let header_version = key.request_header_version(api_version);
    RequestHeader::decode(frame, header_version)
        .map_err(|e| anyhow::anyhow!("malformed request header: {e}"))
}

/// Handles one request and returns the full response frame (size prefix included), or None
/// when the client expects no response.
pub async fn handle(
    broker: &Broker,
    ctx: RequestContext,
    api_key: i16,
    body: Bytes,
) -> anyhow::Result<Option<Frame>> {
    let key =
        ApiKey::try_from(api_key).map_err(|_| anyhow::anyhow!("unknown API key {api_key}"))?;
    let (min, max) =
        supported_range(key).ok_or_else(|| anyhow::anyhow!("unsupported API {key:?}"))?;
    let version = ctx.api_version;
    if key == ApiKey::ApiVersions && version > max {
        // KIP-511: a client newer than us gets our ranges in a v0 body so it can retry.
        return Ok(Some(
            handlers::api_versions::unsupported_version_frame(ctx.correlation_id)?.into(),
        ));
    }
    if version < min || version > max {
        anyhow::bail!("{key:?} v{version} is outside the supported range {min}..={max}");
    }
    if key == ApiKey::Produce && version < 3 {
        return handlers::produce::legacy::reject(broker, &ctx, body).map(|b| Some(b.into()));
    }
    if key == ApiKey::Fetch {
        // Not through the table: the frame keeps the response's share of
        // `queued.max.fetch.bytes` until it has been written.
        return handlers::fetch::respond(broker, &ctx, body).await.map(Some);
    }
    route(broker, &ctx, key, body).await
}

/// Everything the broker does with an untrusted frame before handling it: header, version
/// checks, body decode. Returns an error for anything that would close the connection. Used
/// by the fuzz targets; never panics and never allocates beyond what the frame can hold.
pub fn decode_frame(frame: &[u8]) -> anyhow::Result<()> {
    if frame.len() < 8 {
        anyhow::bail!("frame too short");
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let mut bytes = Bytes::copy_from_slice(frame);
    let _header = decode_header(api_key, api_version, &mut bytes)?;
    let key = ApiKey::try_from(api_key).map_err(|_| anyhow::anyhow!("unknown API key"))?;
    let (min, max) = supported_range(key).ok_or_else(|| anyhow::anyhow!("unsupported"))?;
    if api_version < min.max(if key == ApiKey::Produce { 3 } else { min }) || api_version > max {
        anyhow::bail!("version out of range");
    }
    decode_body(key, api_version, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_within_what_the_codec_knows() {
        for &(key, min, max) in SUPPORTED {
            let codec = key.valid_versions();
            assert!(min <= max, "{key:?}");
            // Produce v0-2 are advertised but answered by hand (see handlers::produce::legacy).
            let min = if key == ApiKey::Produce { 3 } else { min };
            assert!(
                min >= codec.min && max <= codec.max,
                "{key:?} {min}..{max} vs codec {codec}"
            );
        }
    }
}
