//! The v2 record batch header: the only part of a batch the broker reads on the hot path.
//!
//! Layout (big-endian), as defined by Kafka's `DefaultRecordBatch`:
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordsCount i32 | records...
//! The CRC-32C covers everything from `attributes` to the end, so the broker may rewrite the
//! base offset and leader epoch without recomputing it.

use bytes::{Buf, Bytes};

pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: baseOffset + batchLength itself.
pub const LOG_OVERHEAD: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

pub const NO_PRODUCER_ID: i64 = -1;

/// Why a batch was refused; each maps to the Kafka error a producer expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Truncated, inconsistent lengths or a CRC mismatch: CORRUPT_MESSAGE.
    Corrupt(String),
    /// Magic 0 or 1 (pre-0.11 message sets): Kafka 4 refuses them in Produce v3+ with
    /// INVALID_RECORD.
    UnsupportedMagic(i8),
    /// The payload does not hold a whole batch (it stops inside one): Kafka finds no batch
    /// in it and answers INVALID_RECORD.
    Incomplete(String),
    /// Larger than `message.max.bytes` / `max.message.bytes`: MESSAGE_TOO_LARGE.
    TooLarge { size: usize, max: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the fixed header; the slice must hold at least [`HEADER_LEN`] bytes.
    pub fn parse(mut b: &[u8]) -> Result<Self, BatchError> {
        if b.len() < HEADER_LEN {
            if b.len() > MAGIC_OFFSET && b[MAGIC_OFFSET] < 2 {
                return Err(BatchError::UnsupportedMagic(b[MAGIC_OFFSET] as i8));
            }
            return Err(BatchError::Corrupt(format!(
                "record batch of {} bytes is shorter than the {HEADER_LEN}-byte header",
                b.len()
            )));
        }
        Ok(BatchHeader {
            base_offset: b.get_i64(),
            batch_length: b.get_i32(),
            leader_epoch: b.get_i32(),
            magic: b.get_i8(),
            crc: b.get_u32(),
            attributes: b.get_i16(),
            last_offset_delta: b.get_i32(),
            base_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            producer_id: b.get_i64(),
            producer_epoch: b.get_i16(),
            base_sequence: b.get_i32(),
            records_count: b.get_i32(),
        })
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    pub fn uses_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }

    /// Sequence number of the last record, wrapping at i32::MAX as producers do.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        ((self.base_sequence as i64 + self.last_offset_delta as i64) % (i32::MAX as i64 + 1)) as i32
    }

    /// Total size on the wire, including the 12-byte offset/length prefix.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }
}

/// Splits a produce payload into its batches and checks their framing: v2 magic, lengths
/// consistent with the payload, the CRC-32C and the size limit (CORRUPT_MESSAGE and
/// MESSAGE_TOO_LARGE). What Kafka answers with INVALID_RECORD (counts, offsets, control
/// batches, the records themselves) is `validate`'s. Returns the batches as zero-copy slices of `records`.
pub fn split_and_validate(
    records: &Bytes,
    max_batch_bytes: usize,
) -> Result<Vec<Bytes>, BatchError> {
    let mut out = Vec::with_capacity(1);
    let mut pos = 0usize;
    if records.is_empty() {
        return Err(BatchError::Corrupt("empty record set".into()));
    }
    while pos < records.len() {
        let rest = &records[pos..];
        if rest.len() < LOG_OVERHEAD + 5 {
            return Err(BatchError::Incomplete(format!(
                "{} trailing bytes do not form a record batch",
                rest.len()
            )));
        }
        let magic = rest[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return if magic == 0 || magic == 1 {
                Err(BatchError::UnsupportedMagic(magic))
            } else {
                Err(BatchError::Corrupt(format!(
                    "unknown record batch magic {magic}"
                )))
            };
        }
        let batch_length = i32::from_be_bytes(rest[8..12].try_into().unwrap());
        if batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Corrupt(format!(
                "batch length {batch_length} is too small"
            )));
        }
        let total = LOG_OVERHEAD + batch_length as usize;
        if total > rest.len() {
            return Err(BatchError::Incomplete(format!(
                "batch length {total} exceeds the {} bytes sent",
                rest.len()
            )));
        }
        if total > max_batch_bytes {
            return Err(BatchError::TooLarge {
                size: total,
                max: max_batch_bytes,
            });
        }
        let h = BatchHeader::parse(&rest[..HEADER_LEN])?;
        let computed = crc32c::crc32c(&rest[ATTRIBUTES_OFFSET..total]);
        if computed != h.crc {
            return Err(BatchError::Corrupt(format!(
                "CRC mismatch: batch says {:#010x}, contents give {computed:#010x}",
                h.crc
            )));
        }
        out.push(records.slice(pos..pos + total));
        pos += total;
    }
    Ok(out)
}

/// Rewrites the broker-owned fields of a stored batch: base offset and leader epoch. Neither
/// is covered by the CRC, so the batch stays valid without re-encoding.
pub fn stamp(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Recomputes the CRC-32C of a batch whose CRC-covered part (attributes onward) changed.
pub fn fill_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Whether the batch's stored CRC-32C matches its contents.
pub fn crc_matches(batch: &[u8]) -> bool {
    let stored = u32::from_be_bytes(batch[CRC_OFFSET..CRC_OFFSET + 4].try_into().unwrap());
    crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]) == stored
}

/// Sets LogAppendTime: the timestamp-type attribute and max timestamp are inside the CRC,
/// so the CRC is recomputed. Records keep their deltas; consumers use maxTimestamp for all.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attrs = i16::from_be_bytes(batch[21..23].try_into().unwrap()) | 0x08;
    batch[21..23].copy_from_slice(&attrs.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    fill_crc(batch);
}

/// Rewrites the max timestamp (inside the CRC, which is recomputed).
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) {
    batch[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    fill_crc(batch);
}

/// Reads the header of a batch already in the store (trusted: written by us).
pub fn stored_header(batch: &[u8]) -> BatchHeader {
    BatchHeader::parse(batch).expect("stored batches have a full header")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// Builds a real v2 batch with kafka-protocol's encoder, as a client would send it.
    pub fn make_batch(n: usize, pid: i64, epoch: i16, seq: i32) -> Bytes {
        make_batch_with(n, pid, epoch, seq, Compression::None)
    }

    /// [`make_batch`] with a codec.
    pub fn make_batch_with(
        n: usize,
        pid: i64,
        epoch: i16,
        seq: i32,
        compression: Compression,
    ) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder groups records whose offset-sequence gap is constant into one batch.
                sequence: seq + i as i32,
                timestamp: 1_700_000_000_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf.freeze()
    }

    #[test]
    fn valid_batch_passes_and_corruption_is_caught() {
        let b = make_batch(3, -1, -1, -1);
        let parts = split_and_validate(&b, 1 << 20).unwrap();
        assert_eq!(parts.len(), 1);
        let h = BatchHeader::parse(&parts[0]).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);

        let mut bad = b.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            split_and_validate(&Bytes::from(bad), 1 << 20),
            Err(BatchError::Corrupt(_))
        ));
        assert!(matches!(
            split_and_validate(&b, 10),
            Err(BatchError::TooLarge { .. })
        ));
        assert!(matches!(
            split_and_validate(&b.slice(..b.len() - 1), 1 << 20),
            Err(BatchError::Incomplete(_))
        ));
        let mut v1 = b.to_vec();
        v1[16] = 1;
        assert!(matches!(
            split_and_validate(&Bytes::from(v1), 1 << 20),
            Err(BatchError::UnsupportedMagic(1))
        ));
    }

    #[test]
    fn stamping_keeps_crc_valid() {
        let b = make_batch(2, -1, -1, -1);
        let mut v = b.to_vec();
        stamp(&mut v, 42, 7);
        let again = split_and_validate(&Bytes::from(v.clone()), 1 << 20).unwrap();
        let h = BatchHeader::parse(&again[0]).unwrap();
        assert_eq!((h.base_offset, h.leader_epoch), (42, 7));
        set_log_append_time(&mut v, 123);
        let h =
            BatchHeader::parse(&split_and_validate(&Bytes::from(v), 1 << 20).unwrap()[0]).unwrap();
        assert_eq!(h.max_timestamp, 123);
        assert!(h.uses_log_append_time());
    }
}
