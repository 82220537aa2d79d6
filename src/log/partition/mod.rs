//! One partition's commit log: batch bytes in append-only segment files, everything else
//! in the partition's own sled tree.
//!
//! Key space of the tree (the first byte keeps the kinds apart and ordered):
//! - `i` + big-endian base offset -> index entry: last offset, max timestamp, size, and where
//!   the bytes are (segment file and position, or inline in the tree)
//! - `b` + big-endian base offset -> batch bytes of an inline entry (a batch rewritten by
//!   compaction; appends always go to a segment file)
//! - `p` + big-endian producer id -> that producer's idempotence state
//! - `s`                          -> partition state (log start offset, leader epoch)
//!
//! An append writes the batch to the active segment (`segment`) and updates the in-memory
//! index, producer state and transaction state; the segment file is the log. What the
//! append changed in the tree (index entry, producer and transaction state) is collected
//! and written to sled in one atomic batch every few hundred appends, megabytes or a
//! second (a checkpoint), not per append: sled's per-write cost was ~40% of the broker's CPU
//! under many small produce requests. Opening a partition re-indexes whatever the segment
//! files hold past the last checkpoint, with the same effects as the original appends
//! (`recovery`), so a batch the broker acknowledged survives the process dying. Offset and
//! timestamp lookups, sizes and retention never read batch bytes. Offsets are assigned under
//! the partition's own mutex; nothing on the append path is shared between partitions.
//!
//! The key space and index entries are in `index`, segment files in `segment`, the read
//! path in `read`, crash recovery in `recovery`, retention and compaction in `maintenance`,
//! transaction state in `txn`.

mod index;
mod maintenance;
mod read;
mod recovery;
mod replica;
pub mod segment;
mod txn;

pub use maintenance::{CompactPolicy, CompactStats};
pub use read::ReadPlan;
pub use replica::{EpochEnd, UNDEFINED_EPOCH};
pub use segment::DirtyFiles;
pub use txn::AbortedTxn;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::log::batch::{self, BatchHeader, NO_PRODUCER_ID};
use crate::log::producer::{ProducerEntry, SequenceCheck};
use index::{
    EPOCH_PREFIX, PRODUCER_PREFIX, STATE_KEY, batch_key, epoch_key, index_key, key_offset,
    producer_key,
};
pub use index::{IndexEntry, Loc};
use segment::Segments;

/// Errors an append can end in; the produce handler maps each to its Kafka code.
#[derive(Debug)]
pub enum AppendError {
    OutOfOrderSequence {
        expected: i32,
        got: i32,
    },
    InvalidProducerEpoch {
        current: i16,
        got: i16,
    },
    /// A transactional batch that would open a transaction here lost its verification: a
    /// marker closed the producer's transaction after the coordinator checked it.
    TxnNotVerified,
    /// This replica follows: only the leader's batches (`append_replica`) are appended here.
    NotLeader,
    Storage(String),
}

impl From<sled::Error> for AppendError {
    fn from(e: sled::Error) -> Self {
        AppendError::Storage(e.to_string())
    }
}

impl From<std::io::Error> for AppendError {
    fn from(e: std::io::Error) -> Self {
        AppendError::Storage(e.to_string())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    /// True when the batch was a retry of one already stored.
    pub duplicate: bool,
    /// The leader epoch this replica led in when it took the batch (acks=all answers only
    /// if it still leads in it once the high watermark passes the batch).
    pub leader_epoch: i32,
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

struct State {
    /// Offset the next record gets: the log end offset (LEO).
    next_offset: i64,
    /// Offsets below it are committed: on every replica of the ISR. Consumers read up to
    /// here. Equal to the LEO while `hw_follows_leo` (a single node, or a leader alone in
    /// its ISR); otherwise the replication layer moves it (`set_high_watermark`).
    high_watermark: i64,
    hw_follows_leo: bool,
    /// Whether this replica leads (always on a single node). A follower refuses produce
    /// appends and markers; a leader refuses a fetched batch that arrives late.
    leading: bool,
    /// The leader-epoch cache (Kafka's leader-epoch-checkpoint): (epoch, first offset
    /// written in it), ascending in both. Kept in the tree under `e` + epoch.
    epochs: Vec<(i32, i64)>,
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
    /// The most offsets any aborted transaction spans (first record to marker); bounds the
    /// scan in `aborted_between`.
    max_aborted_span: i64,
    /// Running maximum of `max_timestamp` over `index[..=i]`: monotonic, so a timestamp
    /// lookup is a binary search (Kafka's time index works the same way).
    running_max_ts: Vec<i64>,
    bytes: u64,
    segs: Segments,
    /// Idempotence state of every producer that wrote here (the tree holds it as of the
    /// last checkpoint).
    producers: std::collections::HashMap<i64, ProducerEntry>,
    /// Tree writes of the appends since the last checkpoint, and how much they cover.
    pending: sled::Batch,
    pending_appends: usize,
    pending_bytes: u64,
    pending_since: Option<std::time::Instant>,
    /// When each producer last wrote here (broker time, in memory only: after a restart a
    /// producer's clock starts again at the first expiry pass).
    producer_seen_ms: std::collections::HashMap<i64, i64>,
    /// KIP-890 verification guards: producer id -> the guard its pending first
    /// transactional write here holds. A marker voids them.
    verifying: std::collections::HashMap<i64, u64>,
    next_guard: u64,
}

/// A checkpoint is written after this many appends, bytes of batches or time, whichever
/// comes first; recovery re-reads at most that much of the segment files.
const CHECKPOINT_APPENDS: usize = 1024;
const CHECKPOINT_BYTES: u64 = 16 << 20;
const CHECKPOINT_AGE: std::time::Duration = std::time::Duration::from_secs(1);

impl State {
    fn push(&mut self, e: IndexEntry) {
        let prev = self.running_max_ts.last().copied().unwrap_or(i64::MIN);
        self.running_max_ts.push(prev.max(e.max_timestamp));
        self.bytes += e.size as u64;
        if let Loc::File { segment, .. } = e.loc {
            self.segs.add_live(segment);
        }
        self.index.push(e);
    }

    /// Drops the first `n` entries.
    fn drop_front(&mut self, n: usize) {
        for i in 0..n {
            self.bytes -= self.index[i].size as u64;
            if let Loc::File { segment, .. } = self.index[i].loc {
                self.segs.drop_live(segment);
            }
        }
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

/// What storing one batch changes beyond the log itself, decided before the sled write and
/// applied to the in-memory state after it succeeded.
struct Effects {
    entry: IndexEntry,
    /// The batch opens a new leader epoch in the epoch cache.
    new_epoch: Option<i32>,
    /// A transactional producer's first batch here opens its transaction.
    opens_txn: Option<i64>,
    /// A marker closes (producer id, first offset, commit?).
    closes_txn: Option<(i64, i64, bool)>,
    /// The producer's new idempotence state.
    producer: Option<(i64, ProducerEntry)>,
}

pub struct PartitionLog {
    tree: sled::Tree,
    state: Mutex<State>,
    /// The topic's `segment.bytes`: when the active segment file is full, a new one starts.
    segment_bytes: AtomicU64,
    /// Serialises log maintenance (retention, DeleteRecords, compaction) on this partition;
    /// appends only take `state` and are never blocked by it for long.
    maintenance: Mutex<()>,
    /// Fetches parked on this partition, woken by the next append.
    waiters: Mutex<Vec<Weak<Notify>>>,
    /// The high watermark as it moves (acks=all waits on it).
    hw: tokio::sync::watch::Sender<i64>,
}

impl PartitionLog {
    /// Opens (or creates) the partition: its state and index from `tree`, its segment files
    /// from `dir`, then re-indexes any batch the files hold past the index (see `recovery`).
    pub fn open(
        tree: sled::Tree,
        leader_epoch: i32,
        dir: PathBuf,
        dirty: Arc<DirtyFiles>,
    ) -> anyhow::Result<Self> {
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
            high_watermark: log_start_offset,
            hw_follows_leo: true,
            leading: true,
            epochs: Vec::new(),
            log_start_offset,
            leader_epoch: epoch,
            cleaned_upto,
            index: Vec::new(),
            ongoing: Default::default(),
            aborted: Vec::new(),
            max_aborted_span: 0,
            running_max_ts: Vec::new(),
            bytes: 0,
            segs: Segments::open(dir, dirty)?,
            producers: Default::default(),
            pending: Default::default(),
            pending_appends: 0,
            pending_bytes: 0,
            pending_since: None,
            producer_seen_ms: Default::default(),
            verifying: Default::default(),
            next_guard: 0,
        };
        for kv in tree.scan_prefix([PRODUCER_PREFIX]) {
            let (k, v) = kv?;
            if k.len() == 9
                && let Some(e) = ProducerEntry::decode(&v)
            {
                st.producers.insert(key_offset(&k), e);
            }
        }
        let mut entries = Vec::new();
        for kv in tree.range(index_key(0)..=index_key(i64::MAX)) {
            let (k, v) = kv?;
            if let Some(e) = IndexEntry::decode(key_offset(&k), &v) {
                entries.push(e);
            }
        }
        txn::load(&tree, &mut st)?;
        replica::load_epochs(&tree, &mut st)?;
        recovery::recover(&tree, &mut st, entries)?;
        // Whatever is in the log when it opens counts as committed until the replication
        // layer says otherwise (a follower takes the leader's high watermark at its first
        // fetch, before it may join the ISR).
        st.high_watermark = st.next_offset;
        replica::seed_epochs(&tree, &mut st)?;
        let hw = st.high_watermark;
        let log = PartitionLog {
            tree,
            state: Mutex::new(st),
            segment_bytes: AtomicU64::new(segment::DEFAULT_SEGMENT_BYTES),
            maintenance: Mutex::new(()),
            waiters: Mutex::new(Vec::new()),
            hw: tokio::sync::watch::channel(hw).0,
        };
        log.delete_dead_segments()?;
        Ok(log)
    }

    fn encode_state(log_start: i64, epoch: i32, cleaned_upto: i64) -> [u8; 20] {
        let mut s = [0u8; 20];
        s[0..8].copy_from_slice(&log_start.to_be_bytes());
        s[8..12].copy_from_slice(&epoch.to_be_bytes());
        s[12..20].copy_from_slice(&cleaned_upto.to_be_bytes());
        s
    }

    /// The high watermark: consumers read below it.
    pub fn high_watermark(&self) -> i64 {
        self.state.lock().unwrap().high_watermark
    }

    /// The log end offset: the offset the next record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.state.lock().unwrap().next_offset
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.lock().unwrap().log_start_offset
    }

    pub fn leader_epoch(&self) -> i32 {
        self.state.lock().unwrap().leader_epoch
    }

    /// Adopts the leader epoch the cluster's metadata gives this partition (never lowers
    /// it): batches appended from now on carry it, and requests are checked against it.
    pub fn set_leader_epoch(&self, epoch: i32) -> anyhow::Result<()> {
        let mut st = self.state.lock().unwrap();
        if epoch <= st.leader_epoch {
            return Ok(());
        }
        st.leader_epoch = epoch;
        self.tree.insert(
            STATE_KEY,
            Self::encode_state(st.log_start_offset, epoch, st.cleaned_upto).to_vec(),
        )?;
        Ok(())
    }

    /// The topic's `segment.bytes` (applied from the next roll on).
    pub fn set_segment_bytes(&self, bytes: u64) {
        self.segment_bytes.store(bytes.max(1), Ordering::Relaxed);
    }

    /// Appends one validated batch. Idempotent batches are checked against the producer's
    /// state first: a retry is answered with the original offsets and not stored again.
    /// `log_append_time` is Some(now) when the topic uses LogAppendTime.
    pub fn append(
        &self,
        batch: &Bytes,
        log_append_time: Option<i64>,
    ) -> Result<AppendInfo, AppendError> {
        self.append_verified(batch, log_append_time, None)
    }

    /// Starts KIP-890 verification of a transactional producer's write here: the guard
    /// returned is void once a marker for `pid` is written. Take it before asking the
    /// transaction coordinator, and append with it.
    pub fn begin_txn_verification(&self, pid: i64) -> u64 {
        let mut st = self.state.lock().unwrap();
        st.next_guard += 1;
        let g = st.next_guard;
        st.verifying.insert(pid, g);
        g
    }

    /// [`append`](Self::append), and with `guard` a transactional batch that would open a
    /// transaction here is refused unless its verification guard survived: otherwise a
    /// write checked against an open transaction, but appended after that transaction's
    /// marker, would open a transaction nothing ever closes and pin the LSO.
    pub fn append_verified(
        &self,
        batch: &Bytes,
        log_append_time: Option<i64>,
        guard: Option<u64>,
    ) -> Result<AppendInfo, AppendError> {
        let h = BatchHeader::parse(batch).expect("validated by the caller");
        let mut st = self.state.lock().unwrap();
        if !st.leading {
            return Err(AppendError::NotLeader);
        }
        let mut producer = None;
        if h.producer_id != NO_PRODUCER_ID {
            let entry = st.producers.get(&h.producer_id).cloned();
            match ProducerEntry::check(entry.as_ref(), &h) {
                SequenceCheck::Accept => producer = Some(entry),
                SequenceCheck::Duplicate(b) => {
                    return Ok(AppendInfo {
                        base_offset: b.base_offset,
                        last_offset: b.base_offset.saturating_add(b.last_offset_delta as i64),
                        log_start_offset: st.log_start_offset,
                        duplicate: true,
                        leader_epoch: st.leader_epoch,
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
        if let Some(g) = guard
            && h.is_transactional()
            && !st.ongoing.contains_key(&h.producer_id)
        {
            if st.verifying.get(&h.producer_id) != Some(&g) {
                return Err(AppendError::TxnNotVerified);
            }
            st.verifying.remove(&h.producer_id);
        }

        let base = st.next_offset;
        let epoch = st.leader_epoch;
        let mut stored = h;
        stored.base_offset = base;
        stored.leader_epoch = epoch;
        match log_append_time {
            // The timestamp type and max timestamp are inside the CRC: rewrite a copy.
            Some(now) => {
                stored.max_timestamp = now;
                let mut bytes = BytesMut::from(&batch[..]);
                batch::stamp(&mut bytes, base, epoch);
                batch::set_log_append_time(&mut bytes, now);
                self.store(&mut st, &[&bytes], &stored, producer, None)?;
            }
            // Base offset and leader epoch are outside it: only the first 16 bytes change,
            // and the batch goes to the file straight from the request buffer.
            None => {
                let mut head = [0u8; 16];
                head.copy_from_slice(&batch[..16]);
                batch::stamp(&mut head, base, epoch);
                self.store(&mut st, &[&head, &batch[16..]], &stored, producer, None)?;
            }
        }
        let info = AppendInfo {
            base_offset: base,
            last_offset: stored.last_offset(),
            log_start_offset: st.log_start_offset,
            duplicate: false,
            leader_epoch: epoch,
        };
        let hw = st.high_watermark;
        drop(st);
        self.wake_waiters(hw);
        Ok(info)
    }

    /// Writes one batch (`parts`, whose header is `h` with its offset assigned) to the
    /// active segment and records it: index entry, producer state (`producer` is the state
    /// before this batch, for idempotent batches) and transaction state (`marker` is
    /// Some(commit) for a control batch), in memory now and in the tree at the next
    /// checkpoint.
    fn store(
        &self,
        st: &mut State,
        parts: &[&[u8]],
        h: &BatchHeader,
        producer: Option<Option<ProducerEntry>>,
        marker: Option<bool>,
    ) -> Result<(), AppendError> {
        let size: usize = parts.iter().map(|p| p.len()).sum();
        let seg_bytes = self.segment_bytes.load(Ordering::Relaxed);
        let (segment, pos) = st.segs.append(h.base_offset, seg_bytes, parts)?;
        let entry = IndexEntry::from_header(h, size, Loc::File { segment, pos });
        let mut w = std::mem::take(&mut st.pending);
        let eff = plan_effects(st, h, entry, producer, marker, &mut w);
        st.pending = w;
        apply_effects(st, eff);
        st.pending_appends += 1;
        st.pending_bytes += size as u64;
        let since = *st.pending_since.get_or_insert_with(std::time::Instant::now);
        if st.pending_appends >= CHECKPOINT_APPENDS
            || st.pending_bytes >= CHECKPOINT_BYTES
            || since.elapsed() >= CHECKPOINT_AGE
        {
            self.checkpoint_locked(st);
        }
        Ok(())
    }

    /// Writes the tree changes of the appends since the last checkpoint, in one atomic
    /// batch. A failure is logged and the changes are kept for the next try: the batches
    /// themselves are safe in the segment files, and recovery re-indexes them.
    fn checkpoint_locked(&self, st: &mut State) {
        if st.pending_appends == 0 {
            return;
        }
        let w = std::mem::take(&mut st.pending);
        match self.tree.apply_batch(w.clone()) {
            Ok(()) => {
                st.pending_appends = 0;
                st.pending_bytes = 0;
                st.pending_since = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "writing the partition index checkpoint failed");
                st.pending = w;
            }
        }
    }

    /// Forgets the idempotence state of producers that have not written here for
    /// `expiration_ms` (`producer.id.expiration.ms`) and have no transaction open here, as
    /// Kafka does: without this the state of every short-lived producer stays forever.
    /// Returns how many were dropped.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        let mut st = self.state.lock().unwrap();
        let st = &mut *st;
        let mut expired = Vec::new();
        for pid in st.producers.keys() {
            let seen = *st.producer_seen_ms.entry(*pid).or_insert(now_ms);
            if now_ms.saturating_sub(seen) >= expiration_ms && !st.ongoing.contains_key(pid) {
                expired.push(*pid);
            }
        }
        for pid in &expired {
            st.producers.remove(pid);
            st.producer_seen_ms.remove(pid);
            st.pending.remove(&producer_key(*pid));
        }
        if !expired.is_empty() {
            // Written with the next checkpoint, which this makes due.
            st.pending_appends += 1;
            st.pending_since.get_or_insert_with(std::time::Instant::now);
        }
        expired.len()
    }

    /// Idempotent producers whose state this partition holds.
    pub fn producer_count(&self) -> usize {
        self.state.lock().unwrap().producers.len()
    }

    /// Writes the index checkpoint if it is older than the checkpoint interval (for
    /// partitions that stopped receiving appends) or when `force` (shutdown, maintenance).
    pub fn checkpoint(&self, force: bool) {
        let mut st = self.state.lock().unwrap();
        if force
            || st
                .pending_since
                .is_some_and(|t| t.elapsed() >= CHECKPOINT_AGE)
        {
            self.checkpoint_locked(&mut st);
        }
    }

    /// Publishes the high watermark `hw` and wakes the parked fetches (after an append, or
    /// when the high watermark moved).
    fn wake_waiters(&self, hw: i64) {
        self.hw.send_if_modified(|h| {
            let changed = *h != hw;
            *h = hw;
            changed
        });
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

    /// The high watermark as it moves.
    pub fn watch_high_watermark(&self) -> tokio::sync::watch::Receiver<i64> {
        self.hw.subscribe()
    }

    /// Registers a fetch to be woken by the next append to this partition.
    pub fn register_waiter(&self, n: &Arc<Notify>) {
        let mut w = self.waiters.lock().unwrap();
        w.retain(|x| x.strong_count() > 0);
        w.push(Arc::downgrade(n));
    }

    /// Moves the log start offset forward (DeleteRecords, retention) and drops whole batches
    /// that lie entirely before it; segment files left with nothing live are deleted.
    /// Returns the new log start offset.
    pub fn advance_log_start(&self, new_start: i64) -> anyhow::Result<i64> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let new_start = {
            let mut st = self.state.lock().unwrap();
            let new_start = new_start.min(st.next_offset);
            if new_start <= st.log_start_offset {
                return Ok(st.log_start_offset);
            }
            // Pending append writes go first, or they would re-insert the entries removed here.
            self.checkpoint_locked(&mut st);
            let n = st.index.partition_point(|e| e.last_offset < new_start);
            let mut w = sled::Batch::default();
            for e in &st.index[..n] {
                e.remove(&mut w);
            }
            // Aborted transactions whose marker is gone no longer concern any reader.
            let gone = st.aborted.partition_point(|a| a.last_offset < new_start);
            for a in st.aborted.drain(..gone) {
                w.remove(&txn::aborted_key(a.last_offset));
            }
            w.insert(
                STATE_KEY,
                Self::encode_state(new_start, st.leader_epoch, st.cleaned_upto).to_vec(),
            );
            self.tree.apply_batch(w)?;
            st.drop_front(n);
            st.log_start_offset = new_start;
            new_start
        };
        self.delete_dead_segments()?;
        Ok(new_start)
    }

    /// Deletes segment files that no index entry points into, after making the index
    /// durable: a crash must not leave entries naming a file that is gone.
    fn delete_dead_segments(&self) -> anyhow::Result<()> {
        let dead = self.state.lock().unwrap().segs.dead();
        if dead.is_empty() {
            return Ok(());
        }
        self.tree.flush()?;
        let mut st = self.state.lock().unwrap();
        let still_dead = st.segs.dead();
        for base in dead.into_iter().filter(|b| still_dead.contains(b)) {
            st.segs.delete(base)?;
        }
        Ok(())
    }

    /// Bytes stored for this partition's batches.
    pub fn size_bytes(&self) -> u64 {
        self.state.lock().unwrap().bytes
    }

    /// Bytes the partition's segment files take (including batches retention or compaction
    /// dropped from a segment that still holds live ones).
    pub fn disk_bytes(&self) -> u64 {
        self.state.lock().unwrap().segs.disk_bytes()
    }
}

/// Fills `w` with the index entry and the producer and transaction state that storing the
/// batch `h` implies, and returns the same changes for the in-memory state. Append, markers
/// and recovery all go through here, so a batch re-indexed after a crash changes the state
/// exactly as its original append did.
fn plan_effects(
    st: &State,
    h: &BatchHeader,
    entry: IndexEntry,
    producer: Option<Option<ProducerEntry>>,
    marker: Option<bool>,
    w: &mut sled::Batch,
) -> Effects {
    let mut eff = Effects {
        entry,
        new_epoch: None,
        opens_txn: None,
        closes_txn: None,
        producer: None,
    };
    w.insert(&index_key(h.base_offset), &entry.encode()[..]);
    if h.leader_epoch >= 0 && st.epochs.last().is_none_or(|(e, _)| h.leader_epoch > *e) {
        w.insert(&epoch_key(h.leader_epoch), &h.base_offset.to_be_bytes());
        eff.new_epoch = Some(h.leader_epoch);
    }
    if let Some(before) = producer {
        let after = ProducerEntry::record(before, h);
        w.insert(&producer_key(h.producer_id), after.encode());
        eff.producer = Some((h.producer_id, after));
    }
    match marker {
        Some(commit) => txn::plan_marker(st, h, commit, w, &mut eff),
        None => {
            if h.is_transactional() && !st.ongoing.contains_key(&h.producer_id) {
                w.insert(
                    &txn::ongoing_key(h.producer_id),
                    &h.base_offset.to_be_bytes(),
                );
                eff.opens_txn = Some(h.producer_id);
            }
        }
    }
    eff
}

fn apply_effects(st: &mut State, eff: Effects) {
    if let Some((pid, e)) = eff.producer {
        st.producers.insert(pid, e);
        st.producer_seen_ms.insert(pid, crate::handlers::now_ms());
    }
    st.next_offset = eff.entry.last_offset + 1;
    if st.hw_follows_leo {
        st.high_watermark = st.next_offset;
    }
    if let Some(e) = eff.new_epoch {
        st.epochs.push((e, eff.entry.base_offset));
    }
    st.push(eff.entry);
    if let Some(pid) = eff.opens_txn {
        st.ongoing.insert(pid, eff.entry.base_offset);
    }
    if let Some((pid, first, commit)) = eff.closes_txn {
        st.ongoing.remove(&pid);
        if !commit {
            st.aborted.push(AbortedTxn {
                producer_id: pid,
                first_offset: first,
                last_offset: eff.entry.base_offset,
            });
            st.max_aborted_span = st
                .max_aborted_span
                .max(eff.entry.base_offset.saturating_sub(first));
        }
    }
}

#[cfg(test)]
mod offload_tests;
#[cfg(test)]
mod tests;
