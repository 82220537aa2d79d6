use super::*;
use crate::log::batch::tests::make_batch;

fn open_at(dir: &std::path::Path, db: &sled::Db) -> PartitionLog {
    let tree = db.open_tree("t").unwrap();
    PartitionLog::open(tree, 0, dir.join("p"), Arc::default()).unwrap()
}

fn open() -> (tempfile::TempDir, sled::Db, PartitionLog) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let p = open_at(dir.path(), &db);
    (dir, db, p)
}

#[test]
fn append_read_and_recover() {
    let (dir, db, p) = open();
    let a = p.append(&make_batch(3, -1, -1, -1), None).unwrap();
    let b = p.append(&make_batch(2, -1, -1, -1), None).unwrap();
    assert_eq!((a.base_offset, b.base_offset), (0, 3));
    assert_eq!(p.high_watermark(), 5);
    // Offset 4 lives in the second batch, which is returned whole.
    let r = p.read(4, 1 << 20, true, false).unwrap();
    assert_eq!(BatchHeader::parse(&r.records).unwrap().base_offset, 3);
    let r = p.read(1, 1 << 20, true, false).unwrap();
    assert_eq!(BatchHeader::parse(&r.records).unwrap().base_offset, 0);
    assert_eq!(p.read(5, 100, true, false).unwrap().records.len(), 0);
    assert!(p.read(6, 100, true, false).is_err());
    // max_bytes smaller than one batch still yields one batch when min_one.
    let r = p.read(0, 1, true, false).unwrap();
    assert_eq!(BatchHeader::parse(&r.records).unwrap().records_count, 3);
    assert!(p.read(0, 1, false, false).unwrap().records.is_empty());
    drop(p);
    let p2 = open_at(dir.path(), &db);
    assert_eq!(p2.high_watermark(), 5);
    drop(dir);
}

#[test]
fn idempotent_retry_is_not_stored_twice() {
    let (_dir, _db, p) = open();
    let b = make_batch(2, 9, 0, 0);
    let first = p.append(&b, None).unwrap();
    let retry = p.append(&b, None).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, first.base_offset);
    assert_eq!(p.high_watermark(), 2);
    assert!(matches!(
        p.append(&make_batch(1, 9, 0, 5), None),
        Err(AppendError::OutOfOrderSequence {
            expected: 2,
            got: 5
        })
    ));
    p.append(&make_batch(1, 9, 1, 0), None).unwrap();
    assert!(matches!(
        p.append(&make_batch(1, 9, 0, 2), None),
        Err(AppendError::InvalidProducerEpoch { .. })
    ));
}

#[test]
fn log_start_advances() {
    let (_dir, _db, p) = open();
    for _ in 0..3 {
        p.append(&make_batch(2, -1, -1, -1), None).unwrap();
    }
    assert_eq!(p.advance_log_start(3).unwrap(), 3);
    assert!(matches!(
        p.read(1, 100, true, false),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    let r = p.read(3, 1 << 20, true, false).unwrap();
    assert_eq!(BatchHeader::parse(&r.records).unwrap().base_offset, 2);
}

/// Removes what the last `n` appends wrote to sled, as if sled lost its unflushed tail in
/// a crash while the segment files kept the bytes.
fn forget_last_index_entries(db: &sled::Db, p: PartitionLog, n: usize) {
    let tree = db.open_tree("t").unwrap();
    let index = p.index();
    drop(p);
    for e in &index[index.len() - n..] {
        tree.remove(index_key(e.base_offset)).unwrap();
    }
    for prefix in [b'p', b't', b'a'] {
        for k in tree.scan_prefix([prefix]).keys() {
            tree.remove(k.unwrap()).unwrap();
        }
    }
}

fn transactional(b: Bytes) -> Bytes {
    let mut m = BytesMut::from(&b[..]);
    let attrs = i16::from_be_bytes([m[21], m[22]]) | 0x10;
    m[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = crc32c::crc32c(&m[21..]);
    m[17..21].copy_from_slice(&crc.to_be_bytes());
    m.freeze()
}

/// A transactional write checked against an open transaction, but appended after the
/// coordinator aborted it (timeout or fencing), must not open a transaction here that no
/// marker will ever close: the LSO would be pinned for good.
#[test]
fn a_write_that_loses_the_race_with_its_abort_marker_is_refused() {
    let (_dir, _db, p) = open();
    p.append(&make_batch(1, -1, -1, -1), None).unwrap();
    // The coordinator checked the produce (guard taken first)...
    let guard = p.begin_txn_verification(11);
    // ...then aborted the transaction with a fencing epoch before the append landed.
    p.write_marker(11, 1, false, 0, 1_700_000_000_000).unwrap();
    let late = transactional(make_batch(1, 11, 0, 0));
    assert!(matches!(
        p.append_verified(&late, None, Some(guard)),
        Err(AppendError::InvalidProducerEpoch { current: 1, got: 0 })
    ));
    // Same producer epoch (EndTxn without an epoch bump): the guard is what refuses it.
    let guard = p.begin_txn_verification(12);
    p.write_marker(12, 0, true, 0, 1_700_000_000_000).unwrap();
    assert!(matches!(
        p.append_verified(&transactional(make_batch(1, 12, 0, 0)), None, Some(guard)),
        Err(AppendError::TxnNotVerified)
    ));
    assert!(p.open_transactions().is_empty());
    assert_eq!(p.last_stable_offset(), p.high_watermark());
    // A verified write opens its transaction normally, and the marker closes it.
    let guard = p.begin_txn_verification(13);
    p.append_verified(&transactional(make_batch(1, 13, 0, 0)), None, Some(guard))
        .unwrap();
    assert_eq!(p.open_transactions().len(), 1);
    p.write_marker(13, 0, true, 0, 1_700_000_000_000).unwrap();
    assert_eq!(p.last_stable_offset(), p.high_watermark());
    // A retried marker writes nothing twice.
    assert_eq!(
        p.write_marker(13, 0, true, 0, 1_700_000_000_000).unwrap(),
        None
    );
}

#[test]
fn batches_the_index_lost_are_recovered_from_the_segment_file() {
    let (dir, db, p) = open();
    p.append(&make_batch(2, -1, -1, -1), None).unwrap();
    let idem = make_batch(3, 9, 0, 0);
    p.append(&idem, None).unwrap();
    p.append(&transactional(make_batch(1, 11, 0, 0)), None)
        .unwrap();
    p.write_marker(11, 0, false, 0, 1_700_000_000_000).unwrap();
    forget_last_index_entries(&db, p, 3);
    let p = open_at(dir.path(), &db);
    assert_eq!(p.high_watermark(), 7);
    assert_eq!(p.index().len(), 4);
    // The producer state came back with the batch: its retry is still a duplicate.
    let retry = p.append(&idem, None).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, 2);
    // The transaction was opened and aborted again.
    assert!(p.open_transactions().is_empty());
    assert_eq!(p.aborted_between(0, 10).len(), 1);
    assert_eq!(p.last_stable_offset(), 7);
    let r = p.read(0, 1 << 20, true, false).unwrap();
    assert_eq!(r.records.len() as u64, p.size_bytes());
}

#[test]
fn a_torn_write_is_cut_off_and_appends_continue() {
    let (dir, db, p) = open();
    p.append(&make_batch(2, -1, -1, -1), None).unwrap();
    let full = make_batch(3, -1, -1, -1);
    drop(p);
    // Half a batch at the end of the file, as a crash mid-write leaves it.
    let seg = dir.path().join("p").join(format!("{:020}.log", 0));
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &full[..full.len() / 2]).unwrap();
    drop(f);
    let p = open_at(dir.path(), &db);
    assert_eq!(p.high_watermark(), 2);
    assert_eq!(p.append(&full, None).unwrap().base_offset, 2);
    drop(p);
    let p = open_at(dir.path(), &db);
    assert_eq!(p.high_watermark(), 5);
    let r = p.read(2, 1 << 20, true, false).unwrap();
    assert_eq!(BatchHeader::parse(&r.records).unwrap().base_offset, 2);
}

#[test]
fn index_entries_past_the_end_of_the_file_are_dropped() {
    let (dir, db, p) = open();
    p.append(&make_batch(2, -1, -1, -1), None).unwrap();
    let first = p.index()[0].size as u64;
    p.append(&make_batch(2, -1, -1, -1), None).unwrap();
    drop(p);
    // The file lost its last write (power loss without flush) but the index kept it.
    let seg = dir.path().join("p").join(format!("{:020}.log", 0));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(first)
        .unwrap();
    let p = open_at(dir.path(), &db);
    assert_eq!(p.high_watermark(), 2);
    assert_eq!(p.index().len(), 1);
}

#[test]
fn segments_roll_and_retention_deletes_whole_files() {
    let (dir, _db, p) = open();
    p.set_segment_bytes(1);
    for _ in 0..4 {
        p.append(&make_batch(2, -1, -1, -1), None).unwrap();
    }
    let files = |d: &std::path::Path| std::fs::read_dir(d.join("p")).unwrap().count();
    assert_eq!(files(dir.path()), 4);
    // Offsets 0..5 are in the first three files; the active (fourth) one always stays.
    p.advance_log_start(5).unwrap();
    assert_eq!(files(dir.path()), 2);
    let r = p.read(5, 1 << 20, true, false).unwrap();
    assert_eq!(BatchHeader::parse(&r.records).unwrap().base_offset, 4);
    assert_eq!(p.disk_bytes(), p.size_bytes());
}

#[test]
fn stores_from_before_segment_files_still_read() {
    // The layout of the previous release: batch bytes under `b`, a 20-byte index entry.
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let tree = db.open_tree("t").unwrap();
    let mut b = BytesMut::from(&make_batch(3, -1, -1, -1)[..]);
    batch::stamp(&mut b, 0, 0);
    let h = batch::stored_header(&b);
    let old = IndexEntry::from_header(&h, b.len(), Loc::Inline).encode();
    tree.insert(batch_key(0), &b[..]).unwrap();
    tree.insert(index_key(0), &old[..20]).unwrap();
    drop(tree);
    let p = open_at(dir.path(), &db);
    assert_eq!(p.high_watermark(), 3);
    let r = p.read(0, 1 << 20, true, false).unwrap();
    assert_eq!(&r.records[..], &b[..]);
    // New appends go to a segment file after it.
    assert_eq!(
        p.append(&make_batch(1, -1, -1, -1), None)
            .unwrap()
            .base_offset,
        3
    );
    assert_eq!(
        p.read(0, 1 << 20, true, false).unwrap().records.len() as u64,
        p.size_bytes()
    );
}

/// Compaction of a transactional changelog (Kafka Streams exactly-once): an aborted value
/// of a key must not remove its committed value, records of open transactions are not
/// cleaned, and the aborted records (and, past the horizon, their marker) are removed.
#[test]
fn compaction_keeps_committed_values_over_aborted_ones() {
    let (_dir, _db, p) = open();
    let ts = 1_700_000_000_000;
    // k0 committed at 0 (marker 1), k0 again at 2 but aborted (marker 3).
    p.append(&transactional(make_batch(1, 11, 0, 0)), None)
        .unwrap();
    p.write_marker(11, 0, true, 0, ts).unwrap();
    p.append(&transactional(make_batch(1, 11, 0, 1)), None)
        .unwrap();
    p.write_marker(11, 0, false, 0, ts).unwrap();
    // k0 in a transaction still open at 4, then a plain head batch at 5.
    p.append(&transactional(make_batch(1, 12, 0, 0)), None)
        .unwrap();
    p.append(&make_batch(1, -1, -1, -1), None).unwrap();
    assert_eq!(p.last_stable_offset(), 4);
    let policy = CompactPolicy {
        now_ms: ts + 1000,
        min_lag_ms: 0,
        delete_retention_ms: 86_400_000,
        min_dirty_ratio: 0.0,
    };
    p.compact(&policy).unwrap();
    let offsets =
        |p: &PartitionLog| -> Vec<i64> { p.index().iter().map(|e| e.base_offset).collect() };
    // The aborted record went; the committed k0, both markers, the open transaction and
    // the head stayed.
    assert_eq!(offsets(&p), vec![0, 1, 3, 4, 5]);
    let r = p.read(0, 1 << 20, true, true).unwrap();
    let recs = crate::log::records::parse_records(
        &crate::log::records::records_section(&r.records).unwrap(),
        1,
    )
    .unwrap();
    assert_eq!(recs[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(r.last_stable_offset, 4);
    // Past the delete horizon the ABORT marker and its aborted-index entry go too.
    let later = CompactPolicy {
        now_ms: ts + 2 * 86_400_000,
        ..policy
    };
    p.write_marker(12, 0, true, 0, ts).unwrap();
    p.append(&make_batch(1, -1, -1, -1), None).unwrap();
    p.compact(&later).unwrap();
    assert!(!offsets(&p).contains(&3));
    assert!(p.aborted_between(0, 100).is_empty());
    // Once committed, the transaction at 4 counts; the plain k0 at 5 is the latest of all.
    assert!(!offsets(&p).contains(&0));
    assert!(!offsets(&p).contains(&4));
    assert!(offsets(&p).contains(&5));
}

/// Bounded memory: producer state expires once idle (unless a transaction is open), and
/// aborted-transaction entries go with the log they describe.
#[test]
fn idle_producers_expire_and_aborted_entries_follow_the_log_start() {
    let (_dir, _db, p) = open();
    for pid in 100..150 {
        p.append(&make_batch(1, pid, 0, 0), None).unwrap();
    }
    p.append(&transactional(make_batch(1, 7, 0, 0)), None)
        .unwrap();
    p.write_marker(7, 0, false, 0, 1).unwrap();
    p.append(&transactional(make_batch(1, 8, 0, 0)), None)
        .unwrap();
    assert_eq!(p.producer_count(), 52);
    let now = crate::handlers::now_ms();
    assert_eq!(p.expire_producers(now, 60_000), 0);
    // An hour later every producer but the one with an open transaction is gone...
    assert_eq!(p.expire_producers(now + 3_600_000, 60_000), 51);
    assert_eq!(p.producer_count(), 1);
    p.checkpoint(true);
    // ...and a retry of an expired producer's batch is now out of order, as in Kafka.
    assert!(p.append(&make_batch(1, 100, 0, 1), None).is_err());
    assert_eq!(p.aborted_between(0, 100).len(), 1);
    p.advance_log_start(52).unwrap();
    assert!(p.aborted_between(0, 100).is_empty());
}
