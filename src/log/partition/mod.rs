//! One partition's commit log in its own sled tree.
//!
//! Key space of the tree (the first byte keeps the kinds apart and ordered):
//! - `b` + big-endian base offset -> the record batch exactly as served to consumers
//! - `i` + big-endian base offset -> its index entry (last offset, max timestamp, size)
//! - `p` + big-endian producer id -> that producer's idempotence state
//! - `s`                          -> partition state (log start offset, leader epoch)
//!
//! A batch, its index entry and its producer state are written in one atomic sled batch, so
//! after a crash the log, the index and the duplicate-detection cache always agree. The index
//! is loaded into memory at open (24 bytes per batch): offset and timestamp lookups, sizes
//! and retention never read batch bytes. Offsets are assigned under the partition's own
//! mutex; nothing on the append path is shared between partitions.
//!
//! Retention and compaction live in `maintenance`, transaction state in `txn`.

mod maintenance;
mod txn;

pub use maintenance::{CompactPolicy, CompactStats};
pub use txn::AbortedTxn;

use std::sync::{Arc, Mutex, Weak};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::log::batch::{self, BatchHeader, NO_PRODUCER_ID};
use crate::log::producer::{ProducerEntry, SequenceCheck};

const BATCH_PREFIX: u8 = b'b';
const INDEX_PREFIX: u8 = b'i';
const PRODUCER_PREFIX: u8 = b'p';
const STATE_KEY: &[u8] = b"s";

fn batch_key(offset: i64) -> [u8; 9] {
    let mut k = [BATCH_PREFIX; 9];
    k[1..].copy_from_slice(&(offset as u64).to_be_bytes());
    k
}

fn index_key(offset: i64) -> [u8; 9] {
    let mut k = [INDEX_PREFIX; 9];
    k[1..].copy_from_slice(&(offset as u64).to_be_bytes());
    k
}

/// One stored batch, as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub size: u32,
}

impl IndexEntry {
    fn encode(&self) -> [u8; 20] {
        let mut v = [0u8; 20];
        v[0..8].copy_from_slice(&self.last_offset.to_be_bytes());
        v[8..16].copy_from_slice(&self.max_timestamp.to_be_bytes());
        v[16..20].copy_from_slice(&self.size.to_be_bytes());
        v
    }

    fn decode(base_offset: i64, v: &[u8]) -> Option<Self> {
        Some(IndexEntry {
            base_offset,
            last_offset: i64::from_be_bytes(v.get(0..8)?.try_into().ok()?),
            max_timestamp: i64::from_be_bytes(v.get(8..16)?.try_into().ok()?),
            size: u32::from_be_bytes(v.get(16..20)?.try_into().ok()?),
        })
    }

    fn from_header(h: &BatchHeader, size: usize) -> Self {
        IndexEntry {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
            size: size as u32,
        }
    }
}

fn key_offset(k: &[u8]) -> i64 {
    u64::from_be_bytes(k[1..9].try_into().expect("9-byte key")) as i64
}

fn producer_key(pid: i64) -> [u8; 9] {
    let mut k = [PRODUCER_PREFIX; 9];
    k[1..].copy_from_slice(&(pid as u64).to_be_bytes());
    k
}

/// Errors an append can end in; the produce handler maps each to its Kafka code.
#[derive(Debug)]
pub enum AppendError {
    OutOfOrderSequence { expected: i32, got: i32 },
    InvalidProducerEpoch { current: i16, got: i16 },
    Storage(sled::Error),
}

impl From<sled::Error> for AppendError {
    fn from(e: sled::Error) -> Self {
        AppendError::Storage(e)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    /// True when the batch was a retry of one already stored.
    pub duplicate: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    OffsetOutOfRange { log_start: i64, high_watermark: i64 },
    Storage(String),
}

/// Batches read for a fetch, concatenated as they go on the wire.
#[derive(Debug, Default)]
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    /// First offset of the earliest open transaction, or the high watermark.
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For read_committed: transactions aborted within the returned range.
    pub aborted: Vec<AbortedTxn>,
}

#[derive(Debug, Clone)]
struct State {
    /// Offset the next record gets: the log end offset, and on a single node the high watermark.
    next_offset: i64,
    log_start_offset: i64,
    leader_epoch: i32,
    /// Compaction has cleaned every offset below this one.
    cleaned_upto: i64,
    /// Every stored batch in offset order.
    index: Vec<IndexEntry>,
    /// Open transactions: producer id -> offset of its first batch in this partition.
    ongoing: std::collections::BTreeMap<i64, i64>,
    /// Aborted transactions, ordered by the offset of their ABORT marker.
    aborted: Vec<AbortedTxn>,
    /// Running maximum of `max_timestamp` over `index[..=i]`: monotonic, so a timestamp
    /// lookup is a binary search (Kafka's time index works the same way).
    running_max_ts: Vec<i64>,
    bytes: u64,
}

impl State {
    fn push(&mut self, e: IndexEntry) {
        let prev = self.running_max_ts.last().copied().unwrap_or(i64::MIN);
        self.running_max_ts.push(prev.max(e.max_timestamp));
        self.bytes += e.size as u64;
        self.index.push(e);
    }

    /// Drops the first `n` entries.
    fn drop_front(&mut self, n: usize) {
        let gone: u64 = self.index[..n].iter().map(|e| e.size as u64).sum();
        self.bytes -= gone;
        self.index.drain(..n);
        self.rebuild_running_max();
    }

    fn rebuild_running_max(&mut self) {
        let mut m = i64::MIN;
        self.running_max_ts = self
            .index
            .iter()
            .map(|e| {
                m = m.max(e.max_timestamp);
                m
            })
            .collect();
    }

    /// Position of the batch holding `offset`, or of the first batch after it (gaps left by
    /// compaction), or None past the end.
    fn position(&self, offset: i64) -> Option<usize> {
        let i = self.index.partition_point(|e| e.last_offset < offset);
        (i < self.index.len()).then_some(i)
    }
}

pub struct PartitionLog {
    tree: sled::Tree,
    state: Mutex<State>,
    /// Serialises log maintenance (retention, DeleteRecords, compaction) on this partition;
    /// appends only take `state` and are never blocked by it for long.
    maintenance: Mutex<()>,
    /// Fetches parked on this partition, woken by the next append.
    waiters: Mutex<Vec<Weak<Notify>>>,
}

impl PartitionLog {
    /// Opens (or creates) the partition in `tree`, recovering the log end offset from the
    /// last stored batch.
    pub fn open(tree: sled::Tree, leader_epoch: i32) -> sled::Result<Self> {
        let (mut log_start_offset, mut epoch, mut cleaned_upto) = (0i64, leader_epoch, 0i64);
        if let Some(v) = tree.get(STATE_KEY)? {
            if v.len() >= 12 {
                log_start_offset = i64::from_be_bytes(v[0..8].try_into().unwrap());
                epoch = i32::from_be_bytes(v[8..12].try_into().unwrap());
            }
            if v.len() >= 20 {
                cleaned_upto = i64::from_be_bytes(v[12..20].try_into().unwrap());
            }
        } else {
            tree.insert(STATE_KEY, Self::encode_state(0, leader_epoch, 0).to_vec())?;
        }
        let mut st = State {
            next_offset: log_start_offset,
            log_start_offset,
            leader_epoch: epoch,
            cleaned_upto,
            index: Vec::new(),
            ongoing: Default::default(),
            aborted: Vec::new(),
            running_max_ts: Vec::new(),
            bytes: 0,
        };
        for kv in tree.range(index_key(0)..=index_key(i64::MAX)) {
            let (k, v) = kv?;
            if let Some(e) = IndexEntry::decode(key_offset(&k), &v) {
                st.push(e);
            }
        }
        if st.index.is_empty() {
            // Batches written before the index existed: rebuild it from their headers.
            let mut w = sled::Batch::default();
            for kv in tree.range(batch_key(0)..=batch_key(i64::MAX)) {
                let (_, v) = kv?;
                let e = IndexEntry::from_header(&batch::stored_header(&v), v.len());
                w.insert(&index_key(e.base_offset), &e.encode());
                st.push(e);
            }
            tree.apply_batch(w)?;
        }
        if let Some(last) = st.index.last() {
            st.next_offset = (last.last_offset + 1).max(log_start_offset);
        }
        txn::load(&tree, &mut st)?;
        Ok(PartitionLog {
            tree,
            state: Mutex::new(st),
            maintenance: Mutex::new(()),
            waiters: Mutex::new(Vec::new()),
        })
    }

    fn encode_state(log_start: i64, epoch: i32, cleaned_upto: i64) -> [u8; 20] {
        let mut s = [0u8; 20];
        s[0..8].copy_from_slice(&log_start.to_be_bytes());
        s[8..12].copy_from_slice(&epoch.to_be_bytes());
        s[12..20].copy_from_slice(&cleaned_upto.to_be_bytes());
        s
    }

    pub fn high_watermark(&self) -> i64 {
        self.state.lock().unwrap().next_offset
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.lock().unwrap().log_start_offset
    }

    pub fn leader_epoch(&self) -> i32 {
        self.state.lock().unwrap().leader_epoch
    }

    /// Appends one validated batch. Idempotent batches are checked against the producer's
    /// state first: a retry is answered with the original offsets and not stored again.
    /// `log_append_time` is Some(now) when the topic uses LogAppendTime.
    pub fn append(
        &self,
        batch: &Bytes,
        log_append_time: Option<i64>,
    ) -> Result<AppendInfo, AppendError> {
        let h = BatchHeader::parse(batch).expect("validated by the caller");
        let mut st = self.state.lock().unwrap();
        let mut producer = None;
        if h.producer_id != NO_PRODUCER_ID {
            let entry = match self.tree.get(producer_key(h.producer_id))? {
                Some(v) => ProducerEntry::decode(&v),
                None => None,
            };
            match ProducerEntry::check(entry.as_ref(), &h) {
                SequenceCheck::Accept => producer = Some(entry),
                SequenceCheck::Duplicate(b) => {
                    return Ok(AppendInfo {
                        base_offset: b.base_offset,
                        last_offset: b.base_offset + b.last_offset_delta as i64,
                        log_start_offset: st.log_start_offset,
                        duplicate: true,
                    });
                }
                SequenceCheck::OutOfOrder { expected, got } => {
                    return Err(AppendError::OutOfOrderSequence { expected, got });
                }
                SequenceCheck::StaleEpoch { current, got } => {
                    return Err(AppendError::InvalidProducerEpoch { current, got });
                }
            }
        }

        let base = st.next_offset;
        let mut bytes = BytesMut::from(&batch[..]);
        batch::stamp(&mut bytes, base, st.leader_epoch);
        if let Some(now) = log_append_time {
            batch::set_log_append_time(&mut bytes, now);
        }
        let mut stored = h;
        stored.base_offset = base;
        if let Some(now) = log_append_time {
            stored.max_timestamp = now;
        }
        let entry = IndexEntry::from_header(&stored, bytes.len());
        let mut write = sled::Batch::default();
        write.insert(&batch_key(base), bytes.as_ref());
        write.insert(&index_key(base), &entry.encode());
        if let Some(entry) = producer {
            let e = ProducerEntry::record(entry, &stored);
            write.insert(&producer_key(h.producer_id), e.encode());
        }
        // The first transactional batch of a producer opens its transaction here; the last
        // stable offset cannot pass it until the marker arrives.
        let opens_txn = h.is_transactional() && !st.ongoing.contains_key(&h.producer_id);
        if opens_txn {
            write.insert(&txn::ongoing_key(h.producer_id), &base.to_be_bytes());
        }
        self.tree.apply_batch(write)?;
        st.next_offset = stored.last_offset() + 1;
        st.push(entry);
        if opens_txn {
            st.ongoing.insert(h.producer_id, base);
        }
        let info = AppendInfo {
            base_offset: base,
            last_offset: stored.last_offset(),
            log_start_offset: st.log_start_offset,
            duplicate: false,
        };
        drop(st);
        self.wake_waiters();
        Ok(info)
    }

    fn wake_waiters(&self) {
        let mut w = self.waiters.lock().unwrap();
        if w.is_empty() {
            return;
        }
        for n in w.drain(..) {
            if let Some(n) = n.upgrade() {
                n.notify_one();
            }
        }
    }

    /// Registers a fetch to be woken by the next append to this partition.
    pub fn register_waiter(&self, n: &Arc<Notify>) {
        let mut w = self.waiters.lock().unwrap();
        w.retain(|x| x.strong_count() > 0);
        w.push(Arc::downgrade(n));
    }

    /// Reads whole batches from the one containing `offset` onward, up to `max_bytes`
    /// (always at least one batch when `min_one`, so a consumer can pass an oversized batch).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
    ) -> Result<ReadResult, ReadError> {
        let (hw, lso, log_start, start) = {
            let st = self.state.lock().unwrap();
            (
                st.next_offset,
                st.last_stable_offset(),
                st.log_start_offset,
                st.position(offset).map(|i| st.index[i].base_offset),
            )
        };
        if offset < log_start || offset > hw {
            return Err(ReadError::OffsetOutOfRange {
                log_start,
                high_watermark: hw,
            });
        }
        let mut out = ReadResult {
            records: Bytes::new(),
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log_start,
            aborted: Vec::new(),
        };
        let Some(start) = start else {
            return Ok(out);
        };
        // read_committed consumers stop at the last stable offset.
        let upper = if read_committed { lso } else { hw };
        let storage = |e: sled::Error| ReadError::Storage(e.to_string());
        let mut buf = BytesMut::new();
        let mut last_offset = offset;
        for kv in self.tree.range(batch_key(start)..batch_key(upper)) {
            let (_, v) = kv.map_err(storage)?;
            if buf.len() + v.len() > max_bytes && !(buf.is_empty() && min_one) {
                break;
            }
            buf.extend_from_slice(&v);
            last_offset = batch::stored_header(&v).last_offset();
            if buf.len() >= max_bytes {
                break;
            }
        }
        if read_committed && !buf.is_empty() {
            out.aborted = self.aborted_between(offset, last_offset);
        }
        out.records = buf.freeze();
        Ok(out)
    }

    /// The stored batch at `base_offset` (timestamp lookups, compaction).
    pub fn batch_at(&self, base_offset: i64) -> sled::Result<Option<sled::IVec>> {
        self.tree.get(batch_key(base_offset))
    }

    /// The first batch that holds a record with timestamp >= `ts`.
    pub fn first_batch_at_or_after_time(&self, ts: i64) -> Option<IndexEntry> {
        let st = self.state.lock().unwrap();
        let i = st.running_max_ts.partition_point(|m| *m < ts);
        st.index.get(i).copied()
    }

    /// The batch holding the largest timestamp (the first such batch on ties).
    pub fn batch_with_max_timestamp(&self) -> Option<IndexEntry> {
        let st = self.state.lock().unwrap();
        let max = *st.running_max_ts.last()?;
        let i = st.running_max_ts.partition_point(|m| *m < max);
        st.index.get(i).copied()
    }

    /// A copy of the index (retention and compaction decide from it).
    pub fn index(&self) -> Vec<IndexEntry> {
        self.state.lock().unwrap().index.clone()
    }

    /// Moves the log start offset forward (DeleteRecords, retention) and drops whole batches
    /// that lie entirely before it. Returns the new log start offset.
    pub fn advance_log_start(&self, new_start: i64) -> sled::Result<i64> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.state.lock().unwrap();
        let new_start = new_start.min(st.next_offset);
        if new_start <= st.log_start_offset {
            return Ok(st.log_start_offset);
        }
        let n = st.index.partition_point(|e| e.last_offset < new_start);
        let mut w = sled::Batch::default();
        for e in &st.index[..n] {
            w.remove(&batch_key(e.base_offset));
            w.remove(&index_key(e.base_offset));
        }
        w.insert(
            STATE_KEY,
            Self::encode_state(new_start, st.leader_epoch, st.cleaned_upto).to_vec(),
        );
        self.tree.apply_batch(w)?;
        st.drop_front(n);
        st.log_start_offset = new_start;
        Ok(new_start)
    }

    /// Bytes stored for this partition's batches.
    pub fn size_bytes(&self) -> u64 {
        self.state.lock().unwrap().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;

    fn open() -> (tempfile::TempDir, sled::Db, PartitionLog) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let p = PartitionLog::open(db.open_tree("t").unwrap(), 0).unwrap();
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
        let p2 = PartitionLog::open(db.open_tree("t").unwrap(), 0).unwrap();
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
}
