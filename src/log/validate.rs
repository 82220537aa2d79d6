//! What Kafka's `LogValidator` checks on a batch a client produced, past the framing and
//! CRC that `batch::split_and_validate` already verified:
//!
//! - batch level, in Kafka's order and with its messages (INVALID_RECORD, whole batch):
//!   the offset range, the reported record count, the two agreeing, no control batches,
//!   a sequence number for every idempotent batch;
//! - record level, every record walked (decompressed, bounded, when the batch is): exactly
//!   `recordsCount` records filling the batch, each record's length agreeing with its
//!   fields, offset deltas 0, 1, 2, ..., no negative header-key lengths;
//! - per record, collected with the record's index so a producer learns which records were
//!   refused (KIP-467): a key on compacted topics (INVALID_RECORD), CreateTime timestamps
//!   within `message.timestamp.before.max.ms` / `after.max.ms` (INVALID_TIMESTAMP), and no
//!   LogAppendTime set by a producer (INVALID_TIMESTAMP);
//! - the batch's `maxTimestamp` recomputed from its records: Kafka rewrites it on append,
//!   so a producer that leaves it unset (0 or -1) cannot make retention delete the batch
//!   early or mislead timestamp lookups.
//!
//! The walk reads varints only; nothing is allocated for an uncompressed batch.

use anyhow::bail;
use bytes::Buf;

use crate::log::batch::{BatchHeader, HEADER_LEN};

/// The topic's rules for one append.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
    /// Some((earliest, latest)) for CreateTime topics: the accepted timestamp range.
    pub create_time_range: Option<(i64, i64)>,
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The whole batch: INVALID_RECORD with this message, no record errors.
    Batch(String),
    /// Individual records: (index in the batch, message). INVALID_TIMESTAMP when any of
    /// them is a timestamp error, INVALID_RECORD otherwise (Kafka's `processRecordErrors`).
    Records {
        timestamp: bool,
        errors: Vec<(i32, String)>,
    },
}

impl Rejection {
    /// The partition-level error message Kafka sends with record errors.
    pub fn summary(&self) -> String {
        match self {
            Rejection::Batch(m) => m.clone(),
            Rejection::Records {
                timestamp: true, ..
            } => "One or more records have been rejected due to invalid timestamp".into(),
            Rejection::Records { errors, .. } => {
                let shown: Vec<String> = errors
                    .iter()
                    .take(3)
                    .map(|(i, m)| format!("RecordError(batchIndex={i}, message='{m}')"))
                    .collect();
                format!(
                    "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                    errors.len(),
                    shown.join(", ")
                )
            }
        }
    }
}

/// What the walk learned: the batch's true max timestamp (-1 when it has no timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validated {
    pub max_timestamp: i64,
}

/// The batch-level checks of Kafka's `validateBatch`.
fn check_batch(h: &BatchHeader, tp: &str) -> Result<(), Rejection> {
    let first = h.base_offset;
    let last = h.last_offset();
    let refuse = |m: String| Err(Rejection::Batch(m));
    let count_from_offsets = h.last_offset_delta as i64 + 1;
    if count_from_offsets <= 0 {
        return refuse(format!(
            "Batch has an invalid offset range: [{first}, {last}] in topic partition {tp}"
        ));
    }
    if h.records_count <= 0 {
        return refuse(format!(
            "Invalid reported count for record batch: {} in topic partition {tp}",
            h.records_count
        ));
    }
    if count_from_offsets != h.records_count as i64 {
        return refuse(format!(
            "Inconsistent batch offset range [{first}, {last}] and count of records {} in topic partition {tp}",
            h.records_count
        ));
    }
    if h.is_control() {
        return refuse(format!(
            "Clients are not allowed to write control records in topic partition {tp}"
        ));
    }
    if h.producer_id >= 0 && h.base_sequence < 0 {
        return refuse(format!(
            "Invalid sequence number {} in record batch with producerId {} in topic partition {tp}",
            h.base_sequence, h.producer_id
        ));
    }
    Ok(())
}

fn varint(b: &mut &[u8]) -> anyhow::Result<i64> {
    let mut shift = 0u32;
    let mut raw: u64 = 0;
    loop {
        if b.is_empty() {
            bail!("truncated varint");
        }
        let byte = b.get_u8();
        raw |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            bail!("varint too long");
        }
    }
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Skips a varint-length-prefixed field; returns its length (-1 for null).
fn skip_field(b: &mut &[u8]) -> anyhow::Result<i64> {
    let len = varint(b)?;
    if len >= 0 {
        if (b.len() as i64) < len {
            bail!("field of {len} bytes overruns the record");
        }
        b.advance(len as usize);
    }
    Ok(len)
}

/// One record's fields that validation needs.
struct Walked {
    timestamp_delta: i64,
    offset_delta: i64,
    has_key: bool,
}

/// Reads one record from `b` (its length prefix included) and checks that its fields fill
/// exactly the length it declares.
fn walk_record(b: &mut &[u8]) -> anyhow::Result<Walked> {
    let len = varint(b)?;
    if len <= 0 || len as usize > b.len() {
        bail!("Invalid record size {len}");
    }
    let (mut r, rest) = b.split_at(len as usize);
    *b = rest;
    let _attributes = r.get_i8();
    let timestamp_delta = varint(&mut r)?;
    let offset_delta = varint(&mut r)?;
    let has_key = skip_field(&mut r)? >= 0;
    skip_field(&mut r)?;
    let headers = varint(&mut r)?;
    if headers < 0 {
        bail!("Found invalid number of record headers {headers}");
    }
    for _ in 0..headers {
        let key_len = varint(&mut r)?;
        if key_len < 0 {
            bail!("Invalid negative header key size {key_len}");
        }
        if (r.len() as i64) < key_len {
            bail!("header key of {key_len} bytes overruns the record");
        }
        r.advance(key_len as usize);
        skip_field(&mut r)?;
    }
    if !r.is_empty() {
        bail!(
            "Invalid record size: expected to read {len} bytes in record payload, but instead read {}",
            len as usize - r.len()
        );
    }
    Ok(Walked {
        timestamp_delta,
        offset_delta,
        has_key,
    })
}

/// Validates a produced batch (already split, framed and CRC-checked) under `rules` at
/// time `now`. `tp` names the partition in messages ("topic-0").
pub fn validate(batch: &[u8], tp: &str, rules: &Rules) -> Result<Validated, Rejection> {
    let h = BatchHeader::parse(batch).map_err(|e| Rejection::Batch(format!("{e:?}")))?;
    check_batch(&h, tp)?;
    let compressed = h.attributes & 0x07 != 0;
    let section;
    let mut body: &[u8] = if compressed {
        section = crate::log::records::records_section(batch)
            .map_err(|e| Rejection::Batch(format!("{e} in topic partition {tp}")))?;
        &section[..]
    } else {
        &batch[HEADER_LEN..]
    };
    let producer_log_append_time = h.uses_log_append_time();
    let mut errors: Vec<(i32, String)> = Vec::new();
    let mut timestamp_error = false;
    let mut max_ts = -1i64;
    for i in 0..h.records_count {
        let w = walk_record(&mut body)
            .map_err(|e| Rejection::Batch(format!("{e} in topic partition {tp}")))?;
        if w.offset_delta != i as i64 {
            return Err(Rejection::Batch(format!(
                "Inner record {i} of the record batch does not have incremental offsets: offset delta {} in topic partition {tp}",
                w.offset_delta
            )));
        }
        let ts = h.base_timestamp.saturating_add(w.timestamp_delta);
        max_ts = max_ts.max(ts);
        if rules.compacted && !w.has_key {
            errors.push((
                i,
                format!(
                    "Compacted topic cannot accept message without key in topic partition {tp}"
                ),
            ));
            continue;
        }
        if let Some((earliest, latest)) = rules.create_time_range
            && ts != -1
            && (ts < earliest || ts > latest)
        {
            timestamp_error = true;
            errors.push((
                i,
                format!(
                    "Timestamp {ts} of message with offset {} is out of range. The timestamp should be within [{earliest}, {latest}]",
                    h.base_offset.saturating_add(w.offset_delta)
                ),
            ));
        } else if producer_log_append_time {
            timestamp_error = true;
            errors.push((
                i,
                "Invalid timestamp type in message. Producer should not set timestamp type to LogAppendTime.".into(),
            ));
        }
    }
    if !body.is_empty() {
        return Err(Rejection::Batch(format!(
            "Incorrect declared batch size, {} bytes remain after {} records in topic partition {tp}",
            body.len(),
            h.records_count
        )));
    }
    if !errors.is_empty() {
        return Err(Rejection::Records {
            timestamp: timestamp_error,
            errors,
        });
    }
    Ok(Validated {
        max_timestamp: max_ts,
    })
}

#[cfg(test)]
mod tests;
