//! Record-level access to a stored v2 batch, for the few places that need it (compaction,
//! keyless-record checks on compacted topics). The hot path never comes here.
//!
//! Records are kept as the exact bytes the producer sent: compaction drops whole records
//! and keeps the batch's base offset, base timestamp and last offset delta (as Kafka does),
//! so every surviving record's deltas stay valid and nothing is re-encoded.

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::log::batch::{self, BatchHeader, HEADER_LEN};

/// One record inside a batch: where its bytes are, and what compaction needs to know.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Byte range of the whole record (length prefix included) in the decompressed section.
    pub start: usize,
    pub end: usize,
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value_is_null: bool,
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
    // Zig-zag decoding.
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn bytes_field(b: &mut &[u8], section: &Bytes, base: usize) -> anyhow::Result<Option<Bytes>> {
    let len = varint(b)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if b.len() < len {
        bail!("field of {len} bytes overruns the record");
    }
    let start = base + (section.len() - base - b.len());
    let out = section.slice(start..start + len);
    b.advance(len);
    Ok(Some(out))
}

/// The most a batch's records may inflate to when decompressed. A tiny batch can claim or
/// expand to gigabytes (a "decompression bomb"); anything beyond this is refused.
pub const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// Reads at most `MAX_DECOMPRESSED` bytes from a streaming decoder.
fn bounded(mut r: impl std::io::Read) -> anyhow::Result<Bytes> {
    use std::io::Read;
    let mut out = Vec::new();
    (&mut r)
        .take(MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > MAX_DECOMPRESSED {
        bail!("records decompress to more than {MAX_DECOMPRESSED} bytes");
    }
    Ok(Bytes::from(out))
}

/// Snappy as Kafka clients write it: raw, or Java's xerial framing (magic, versions, then
/// length-prefixed raw blocks). Each block's declared length is checked before allocating.
fn snappy(body: &[u8]) -> anyhow::Result<Bytes> {
    const XERIAL: &[u8] = b"\x82SNAPPY\x00";
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |b: &[u8], total: usize| -> anyhow::Result<Vec<u8>> {
        let n = snap::raw::decompress_len(b)?;
        if total + n > MAX_DECOMPRESSED {
            bail!("records decompress to more than {MAX_DECOMPRESSED} bytes");
        }
        Ok(decoder.decompress_vec(b)?)
    };
    if body.len() >= 16 && &body[..8] == XERIAL {
        let mut rest = &body[16..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            if rest.len() < 4 {
                bail!("truncated snappy block header");
            }
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            rest = &rest[4..];
            if len > rest.len() {
                bail!("snappy block of {len} bytes overruns the batch");
            }
            out.extend(block(&rest[..len], out.len())?);
            rest = &rest[len..];
        }
        Ok(Bytes::from(out))
    } else {
        Ok(Bytes::from(block(body, 0)?))
    }
}

/// The records section of a batch, decompressed (bounded by [`MAX_DECOMPRESSED`]).
pub fn records_section(batch: &[u8]) -> anyhow::Result<Bytes> {
    let h = BatchHeader::parse(batch).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let body = &batch[HEADER_LEN..];
    match h.attributes & 0x07 {
        0 => Ok(Bytes::copy_from_slice(body)),
        1 => bounded(flate2::read::GzDecoder::new(body)),
        2 => snappy(body),
        3 => bounded(lz4::Decoder::new(body)?),
        4 => bounded(zstd::stream::read::Decoder::new(body)?),
        c => bail!("unknown compression codec {c}"),
    }
}

/// Walks the records of a decompressed section.
pub fn parse_records(section: &Bytes, count: i32) -> anyhow::Result<Vec<RawRecord>> {
    let mut out = Vec::with_capacity(count.clamp(0, 1 << 16) as usize);
    let mut pos = 0usize;
    for _ in 0..count {
        let mut b = &section[pos..];
        let before = b.len();
        let len = varint(&mut b)?;
        if len < 0 || len as usize > b.len() {
            bail!("record length {len} overruns the batch");
        }
        if len == 0 {
            bail!("empty record (a record holds at least its attributes byte)");
        }
        let start = pos;
        let body_start = pos + (before - b.len());
        let end = body_start + len as usize;
        let mut r = &section[body_start..end];
        let _attributes = r.get_i8();
        let timestamp_delta = varint(&mut r)?;
        let offset_delta = varint(&mut r)? as i32;
        let key = bytes_field(&mut r, &section.slice(..end), body_start).context("record key")?;
        let value = varint(&mut r)?;
        out.push(RawRecord {
            start,
            end,
            offset_delta,
            timestamp_delta,
            key,
            value_is_null: value < 0,
        });
        pos = end;
    }
    Ok(out)
}

/// Builds a batch holding only `keep` of `records`, with the original header's base offset,
/// base timestamp, last offset delta, producer fields and codec. Returns None if nothing is
/// kept.
pub fn rebuild(
    batch: &[u8],
    section: &Bytes,
    records: &[RawRecord],
    keep: &[bool],
) -> anyhow::Result<Option<Bytes>> {
    let h = BatchHeader::parse(batch).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut kept = BytesMut::new();
    let mut count = 0i32;
    let mut max_ts = i64::MIN;
    for (r, k) in records.iter().zip(keep) {
        if *k {
            kept.extend_from_slice(&section[r.start..r.end]);
            count += 1;
            max_ts = max_ts.max(h.base_timestamp.saturating_add(r.timestamp_delta));
        }
    }
    if count == 0 {
        return Ok(None);
    }
    let mut body = BytesMut::new();
    let raw = kept.freeze();
    let copy = |tmp: &mut BytesMut| {
        tmp.extend_from_slice(&raw);
        Ok(())
    };
    match h.attributes & 0x07 {
        0 => body.extend_from_slice(&raw),
        1 => Gzip::compress(&mut body, copy)?,
        2 => Snappy::compress(&mut body, copy)?,
        3 => Lz4::compress(&mut body, copy)?,
        4 => Zstd::compress(&mut body, copy)?,
        c => bail!("unknown compression codec {c}"),
    }
    // LogAppendTime batches keep the broker's timestamp.
    let max_timestamp = if h.uses_log_append_time() {
        h.max_timestamp
    } else {
        max_ts
    };
    let mut out = BytesMut::with_capacity(HEADER_LEN + body.len());
    out.put_i64(h.base_offset);
    out.put_i32((HEADER_LEN - 12 + body.len()) as i32);
    out.put_i32(h.leader_epoch);
    out.put_i8(2);
    out.put_u32(0); // CRC, filled below
    out.put_i16(h.attributes);
    out.put_i32(h.last_offset_delta);
    out.put_i64(h.base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(h.producer_id);
    out.put_i16(h.producer_epoch);
    out.put_i32(h.base_sequence);
    out.put_i32(count);
    out.extend_from_slice(&body);
    batch::fill_crc(&mut out);
    Ok(Some(out.freeze()))
}

/// True if any record in the batch has no key (refused on compacted topics).
pub fn has_keyless_record(batch: &[u8]) -> anyhow::Result<bool> {
    let h = BatchHeader::parse(batch).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let section = records_section(batch)?;
    Ok(parse_records(&section, h.records_count)?
        .iter()
        .any(|r| r.key.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    fn batch(compression: Compression) -> Bytes {
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: 100 + i,
                sequence: -1 + i as i32,
                timestamp: 1000 + i * 10,
                key: if i == 4 {
                    None
                } else {
                    Some(Bytes::from(format!("k{}", i % 2)))
                },
                value: if i == 3 {
                    None
                } else {
                    Some(Bytes::from(format!("v{i}")))
                },
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
    fn drop_records_keep_offsets_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = batch(c);
            let section = records_section(&b).unwrap();
            let recs = parse_records(&section, 5).unwrap();
            assert_eq!(recs.len(), 5);
            assert_eq!(recs[1].key.as_deref(), Some(&b"k1"[..]));
            assert!(recs[3].value_is_null);
            assert!(recs[4].key.is_none());
            assert!(has_keyless_record(&b).unwrap());
            let rebuilt = rebuild(&b, &section, &recs, &[false, true, false, true, false])
                .unwrap()
                .unwrap();
            // A valid CRC, the same base and last offset, only the kept records. (Producers
            // may not send such sparse batches, so split_and_validate would refuse it.)
            let h = BatchHeader::parse(&rebuilt).unwrap();
            assert_eq!(h.crc, crc32c::crc32c(&rebuilt[21..]));
            assert_eq!(h.total_len(), rebuilt.len());
            assert_eq!(
                (h.base_offset, h.last_offset(), h.records_count),
                (100, 104, 2)
            );
            assert_eq!(h.attributes & 7, c as i16);
            let mut bb = rebuilt.clone();
            let set = RecordBatchDecoder::decode(&mut bb).unwrap();
            let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, vec![101, 103]);
            assert_eq!(set.records[0].timestamp, 1010);
            assert!(rebuild(&b, &section, &recs, &[false; 5]).unwrap().is_none());
        }
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// Inputs found by fuzzing (fuzz/regressions/record_batch): each must be refused with an
    /// error, without a panic and without inflating past the cap.
    #[test]
    fn hostile_batches_are_refused() {
        let cases: [&[u8]; 3] = [
            include_bytes!("../../fuzz/regressions/record_batch/zero-length-record-panic.bin"),
            include_bytes!(
                "../../fuzz/regressions/record_batch/snappy-xerial-block-claims-4gib.bin"
            ),
            include_bytes!("../../fuzz/regressions/record_batch/zstd-99kb-inflates-to-3gib.bin"),
        ];
        for batch in cases {
            assert!(has_keyless_record(batch).is_err());
        }
    }
}
