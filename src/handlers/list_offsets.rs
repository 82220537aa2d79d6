//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), and the
//! first offset whose record timestamp is at or after a given time.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::fetch::check_epoch;
use crate::Broker;
use crate::connection::RequestContext;
use crate::log::partition::IndexEntry;
use crate::log::{PartitionLog, records};
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;
/// Tiered storage (KIP-1005, KIP-1023): with no remote log there is no such offset.
pub const LATEST_TIERED: i64 = -5;
pub const EARLIEST_PENDING_UPLOAD: i64 = -6;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListOffsetsRequest,
) -> anyhow::Result<ListOffsetsResponse> {
    let v = ctx.api_version;
    let read_committed = v >= 2 && req.isolation_level == 1;
    let mut topics = Vec::with_capacity(req.topics.len());
    let authz = Authz::of(broker, ctx);
    for t in &req.topics {
        let allowed = authz.topic(AclOperation::Describe, t.name.as_str());
        let topic = broker.topics.get(t.name.as_str()).filter(|_| allowed);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let mut r = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            let log = topic
                .as_ref()
                .and_then(|t| t.partition(p.partition_index))
                .cloned()
                .ok_or(if allowed {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::TopicAuthorizationFailed
                })
                .and_then(|log| {
                    let t = topic.as_ref().expect("the log is the topic's");
                    broker
                        .check_leader(t, p.partition_index)
                        .map_err(|_| ResponseError::NotLeaderOrFollower)?;
                    Ok(log)
                });
            let result = match log {
                Err(e) => Err(e),
                Ok(_) if !special_supported(p.timestamp, v) => {
                    Err(ResponseError::UnsupportedVersion)
                }
                Ok(log) => match check_epoch(p.current_leader_epoch, log.leader_epoch()) {
                    Err(e) => Err(e),
                    Ok(()) => {
                        let current = log.leader_epoch();
                        let target = p.timestamp;
                        // Timestamp lookups read (and may decompress) a stored batch: that
                        // is disk and CPU work, kept off the async workers.
                        let found = if target == MAX_TIMESTAMP || target >= 0 {
                            tokio::task::spawn_blocking(move || {
                                lookup(&log, target, read_committed)
                            })
                            .await?
                        } else {
                            lookup(&log, target, read_committed)
                        };
                        found.map(|f| (f, current))
                    }
                },
            };
            match result {
                Ok((Some((offset, ts, epoch)), current)) => {
                    r.offset = offset;
                    r.timestamp = ts;
                    if v >= 4 {
                        // No offset, no epoch; otherwise the batch's, or the current one.
                        r.leader_epoch = if offset < 0 {
                            -1
                        } else if epoch >= 0 {
                            epoch
                        } else {
                            current
                        };
                    }
                }
                Ok((None, _)) => {}
                Err(e) => r.error_code = e.code(),
            }
            partitions.push(r);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    Ok(ListOffsetsResponse::default().with_topics(topics))
}

/// Whether a request version may ask for a special (negative) timestamp, as Kafka decides:
/// each was added in a version (max timestamp v7, earliest local v8, latest tiered v9,
/// earliest pending upload v11) and an unknown one is UNSUPPORTED_VERSION.
fn special_supported(target: i64, version: i16) -> bool {
    match target {
        t if t >= 0 => true,
        LATEST | EARLIEST => true,
        MAX_TIMESTAMP => version >= 7,
        EARLIEST_LOCAL => version >= 8,
        LATEST_TIERED => version >= 9,
        EARLIEST_PENDING_UPLOAD => version >= 11,
        _ => false,
    }
}

/// (offset, timestamp, leader epoch of the batch) or None when no record qualifies.
/// `read_committed` (isolation level 1) makes "latest" the last stable offset.
fn lookup(
    log: &PartitionLog,
    target: i64,
    read_committed: bool,
) -> Result<Option<(i64, i64, i32)>, ResponseError> {
    match target {
        LATEST if read_committed => Ok(Some((log.last_stable_offset(), -1, -1))),
        LATEST => Ok(Some((log.high_watermark(), -1, -1))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1, -1))),
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok(Some((-1, -1, -1))),
        MAX_TIMESTAMP => lookup_in(log, log.batch_with_max_timestamp(), None),
        ts if ts >= 0 => lookup_in(log, log.first_batch_at_or_after_time(ts), Some(ts)),
        _ => Err(ResponseError::InvalidRequest),
    }
}

/// Finds the record in the batch chosen from the index: the first at or after `ts`, or (for
/// max timestamp) the first carrying the batch's max timestamp.
fn lookup_in(
    log: &PartitionLog,
    entry: Option<IndexEntry>,
    ts: Option<i64>,
) -> Result<Option<(i64, i64, i32)>, ResponseError> {
    let Some(entry) = entry else { return Ok(None) };
    let raw = match log.batch_at(entry.base_offset) {
        Ok(Some(raw)) => raw,
        // Removed by retention since the index was read: nothing to report.
        Ok(None) => return Ok(None),
        Err(_) => return Err(ResponseError::KafkaStorageError),
    };
    let epoch = crate::log::batch::stored_header(&raw).leader_epoch;
    let target = ts.unwrap_or(entry.max_timestamp);
    let found = first_record_at_or_after(&raw, target, log.log_start_offset())?;
    Ok(found.map(|(o, t)| (o, t, epoch)))
}

/// Walks one batch's records (decompressed with the same bound as every other stored-batch
/// read, so a small batch that inflates to gigabytes is refused, not allocated) to find the
/// first record at or after `ts`.
fn first_record_at_or_after(
    raw: &bytes::Bytes,
    ts: i64,
    log_start: i64,
) -> Result<Option<(i64, i64)>, ResponseError> {
    let h = crate::log::batch::stored_header(raw);
    if h.uses_log_append_time() {
        return Ok(Some((h.base_offset.max(log_start), h.max_timestamp)));
    }
    let corrupt = |e: anyhow::Error| {
        tracing::warn!(base_offset = h.base_offset, error = %e, "cannot read a stored batch's records");
        ResponseError::CorruptMessage
    };
    let section = records::records_section(raw).map_err(corrupt)?;
    let recs = records::parse_records(&section, h.records_count).map_err(corrupt)?;
    Ok(recs
        .iter()
        .map(|r| {
            (
                h.base_offset.saturating_add(r.offset_delta as i64),
                h.base_timestamp.saturating_add(r.timestamp_delta),
            )
        })
        .filter(|(o, _)| *o >= log_start)
        .find(|(_, t)| *t >= ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 99 KB zstd batch that inflates to 3 GiB: the lookup refuses it without allocating
    /// gigabytes (before, the unbounded decoder tried to).
    #[test]
    fn a_decompression_bomb_is_refused() {
        let bomb = bytes::Bytes::from_static(include_bytes!(
            "../../fuzz/regressions/record_batch/zstd-99kb-inflates-to-3gib.bin"
        ));
        assert_eq!(
            first_record_at_or_after(&bomb, 0, 0),
            Err(ResponseError::CorruptMessage)
        );
    }
}
