//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), and the
//! first offset whose record timestamp is at or after a given time.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::records::RecordBatchDecoder;

use super::fetch::check_epoch;
use crate::Broker;
use crate::connection::RequestContext;
use crate::log::PartitionLog;
use crate::log::partition::IndexEntry;

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListOffsetsRequest,
) -> anyhow::Result<ListOffsetsResponse> {
    let v = ctx.api_version;
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = broker.topics.get(t.name.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let log = topic
                        .as_ref()
                        .and_then(|t| t.partition(p.partition_index))
                        .ok_or(ResponseError::UnknownTopicOrPartition);
                    let result = log.and_then(|log| {
                        check_epoch(p.current_leader_epoch, log.leader_epoch())?;
                        lookup(log, p.timestamp, v >= 2 && req.isolation_level == 1)
                            .map(|found| (found, log.leader_epoch()))
                    });
                    match result {
                        Ok((Some((offset, ts, epoch)), current)) => {
                            r.offset = offset;
                            r.timestamp = ts;
                            if v >= 4 {
                                r.leader_epoch = if epoch >= 0 { epoch } else { current };
                            }
                        }
                        Ok((None, _)) => {}
                        Err(e) => r.error_code = e.code(),
                    }
                    r
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Ok(ListOffsetsResponse::default().with_topics(topics))
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
        Ok(Some(raw)) => bytes::Bytes::copy_from_slice(&raw),
        // Removed by retention since the index was read: nothing to report.
        Ok(None) => return Ok(None),
        Err(_) => return Err(ResponseError::KafkaStorageError),
    };
    let epoch = crate::log::batch::stored_header(&raw).leader_epoch;
    let target = ts.unwrap_or(entry.max_timestamp);
    let found = first_record_at_or_after(&raw, target, log.log_start_offset())?;
    Ok(found.map(|(o, t)| (o, t, epoch)))
}

/// Decodes one batch (decompressing if needed: timestamp queries are rare, the hot path
/// never does this) to find the first record at or after `ts`.
fn first_record_at_or_after(
    raw: &bytes::Bytes,
    ts: i64,
    log_start: i64,
) -> Result<Option<(i64, i64)>, ResponseError> {
    let h = crate::log::batch::stored_header(raw);
    if h.uses_log_append_time() {
        return Ok(Some((h.base_offset.max(log_start), h.max_timestamp)));
    }
    let mut buf = raw.clone();
    let set = RecordBatchDecoder::decode(&mut buf).map_err(|_| ResponseError::CorruptMessage)?;
    Ok(set
        .records
        .iter()
        .filter(|r| r.offset >= log_start)
        .find(|r| r.timestamp >= ts)
        .map(|r| (r.offset, r.timestamp)))
}
