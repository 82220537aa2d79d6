use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::log::batch;

fn zigzag(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

/// One record: (timestamp delta, offset delta, key).
type Rec<'a> = (i64, i64, Option<&'a [u8]>);

struct Head {
    last_offset_delta: i32,
    base_ts: i64,
    max_ts: i64,
    pid: i64,
    seq: i32,
    count: i32,
    attributes: i16,
}

fn head(n: usize) -> Head {
    Head {
        last_offset_delta: n as i32 - 1,
        base_ts: 1_700_000_000_000,
        max_ts: 1_700_000_000_000 + n as i64 - 1,
        pid: -1,
        seq: -1,
        count: n as i32,
        attributes: 0,
    }
}

/// A raw v2 batch with exactly the given header fields and records, and a valid CRC.
fn raw(h: &Head, recs: &[Rec]) -> Bytes {
    let mut body = BytesMut::new();
    for (ts, off, key) in recs {
        let mut r = BytesMut::new();
        r.put_i8(0);
        zigzag(&mut r, *ts);
        zigzag(&mut r, *off);
        match key {
            Some(k) => {
                zigzag(&mut r, k.len() as i64);
                r.extend_from_slice(k);
            }
            None => zigzag(&mut r, -1),
        }
        zigzag(&mut r, 1);
        r.put_u8(b'v');
        zigzag(&mut r, 0);
        zigzag(&mut body, r.len() as i64);
        body.extend_from_slice(&r);
    }
    let mut out = BytesMut::new();
    out.put_i64(0);
    out.put_i32((batch::HEADER_LEN - 12 + body.len()) as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(0);
    out.put_i16(h.attributes);
    out.put_i32(h.last_offset_delta);
    out.put_i64(h.base_ts);
    out.put_i64(h.max_ts);
    out.put_i64(h.pid);
    out.put_i16(0);
    out.put_i32(h.seq);
    out.put_i32(h.count);
    out.extend_from_slice(&body);
    batch::fill_crc(&mut out);
    out.freeze()
}

fn recs(n: usize) -> Vec<Rec<'static>> {
    (0..n)
        .map(|i| (i as i64, i as i64, Some(&b"k"[..])))
        .collect()
}

const OPEN: Rules = Rules {
    compacted: false,
    create_time_range: None,
};

#[test]
fn a_valid_batch_passes_with_its_max_timestamp() {
    let b = raw(&head(3), &recs(3));
    assert!(batch::split_and_validate(&b, 1 << 20).is_ok());
    assert_eq!(
        validate(&b, "t-0", &OPEN),
        Ok(Validated {
            max_timestamp: 1_700_000_000_002
        })
    );
}

#[test]
fn unset_max_timestamp_is_recomputed_from_the_records() {
    for unset in [0, -1] {
        let mut h = head(3);
        h.max_ts = unset;
        let b = raw(&h, &recs(3));
        assert_eq!(
            validate(&b, "t-0", &OPEN).unwrap().max_timestamp,
            1_700_000_000_002
        );
    }
}

#[test]
fn a_zero_count_cannot_claim_two_billion_offsets() {
    let mut h = head(1);
    h.count = 0;
    h.last_offset_delta = i32::MAX - 1;
    let b = raw(&h, &[]);
    match validate(&b, "t-0", &OPEN) {
        Err(Rejection::Batch(m)) => {
            assert!(
                m.starts_with("Invalid reported count for record batch: 0"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn count_and_offsets_must_agree_with_the_records() {
    // The header says 3 records and offsets 0..=2, but only 2 records follow.
    let b = raw(&head(3), &recs(2));
    assert!(matches!(
        validate(&b, "t-0", &OPEN),
        Err(Rejection::Batch(_))
    ));
    // The header says 2 but 3 records follow.
    let b = raw(&head(2), &recs(3));
    assert!(matches!(validate(&b, "t-0", &OPEN), Err(Rejection::Batch(m)) if m.contains("remain")));
    // Count and last offset delta disagree.
    let mut h = head(3);
    h.last_offset_delta = 5;
    let b = raw(&h, &recs(3));
    assert!(
        matches!(validate(&b, "t-0", &OPEN), Err(Rejection::Batch(m)) if m.starts_with("Inconsistent batch offset range [0, 5] and count of records 3"))
    );
    // Offset deltas that repeat.
    let b = raw(&head(3), &[(0, 0, None), (0, 0, None), (0, 2, None)]);
    assert!(
        matches!(validate(&b, "t-0", &OPEN), Err(Rejection::Batch(m)) if m.contains("incremental offsets"))
    );
    // An idempotent batch without a sequence.
    let mut h = head(1);
    h.pid = 7;
    let b = raw(&h, &recs(1));
    assert!(
        matches!(validate(&b, "t-0", &OPEN), Err(Rejection::Batch(m)) if m.starts_with("Invalid sequence number -1"))
    );
}

#[test]
fn keyless_records_are_named_one_by_one_on_compacted_topics() {
    let rules = Rules {
        compacted: true,
        create_time_range: None,
    };
    let list: Vec<Rec> = (0..10)
        .map(|i| (0, i, if i % 3 == 0 { None } else { Some(&b"k"[..]) }))
        .collect();
    let b = raw(&head(10), &list);
    match validate(&b, "t-0", &rules) {
        Err(r @ Rejection::Records { .. }) => {
            let Rejection::Records { timestamp, errors } = &r else {
                unreachable!()
            };
            assert!(!timestamp);
            let idx: Vec<i32> = errors.iter().map(|e| e.0).collect();
            assert_eq!(idx, vec![0, 3, 6, 9]);
            assert!(r.summary().contains("4 record errors"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn timestamps_out_of_range_are_timestamp_errors() {
    let base = 1_700_000_000_000;
    let rules = Rules {
        compacted: false,
        create_time_range: Some((base + 1, base + 1)),
    };
    let b = raw(&head(3), &recs(3));
    match validate(&b, "t-0", &rules) {
        Err(Rejection::Records { timestamp, errors }) => {
            assert!(timestamp);
            assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 2]);
        }
        other => panic!("{other:?}"),
    }
    // A producer may not claim LogAppendTime.
    let mut h = head(1);
    h.attributes = 0x08;
    let b = raw(&h, &recs(1));
    assert!(matches!(
        validate(&b, "t-0", &OPEN),
        Err(Rejection::Records {
            timestamp: true,
            ..
        })
    ));
}

#[test]
fn compressed_batches_are_walked_too() {
    use kafka_protocol::records::Compression;
    for c in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let b = crate::log::batch::tests::make_batch_with(4, -1, -1, -1, c);
        assert_eq!(
            validate(&b, "t-0", &OPEN).unwrap().max_timestamp,
            1_700_000_000_003
        );
    }
    let bomb: &[u8] =
        include_bytes!("../../../fuzz/regressions/record_batch/zstd-99kb-inflates-to-3gib.bin");
    assert!(validate(bomb, "t-0", &OPEN).is_err());
}
