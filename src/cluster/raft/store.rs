//! Persistence of the metadata quorum in one sled database per node: the Raft log (tree
//! `log`, key = big-endian index, value = JSON entry), and in tree `meta` the vote, the
//! committed and purged log ids and the latest snapshot (its meta as JSON, the image bytes
//! beside it). The state machine is the image in
//! memory: at start it is the snapshot, and openraft re-applies the committed log after it.

use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, LogState, OptionalSend, RaftLogReader,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::observer::Recent;
use super::{Applied, Node, NodeId, TypeConfig};
use crate::cluster::image::{Image, apply_batch};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// A stored snapshot: its meta and the serialized image.
type StoredSnapshot = (SnapshotMeta<NodeId, Node>, Vec<u8>);

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"purged";
const SNAPSHOT_META: &[u8] = b"snapshot.meta";
const SNAPSHOT_DATA: &[u8] = b"snapshot.data";

/// The sled database of one node. Held in an `Arc` by the log store, its readers and the
/// state machine; the quorum handle keeps a `Weak` to know when it is closed.
pub struct Store {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

impl Store {
    /// Opens (or creates) the database in `dir`. A previous instance in this process may
    /// still be closing (its tasks end after `Raft::shutdown`), so a held lock is retried for
    /// a few seconds.
    pub fn open(dir: &Path) -> anyhow::Result<Arc<Store>> {
        std::fs::create_dir_all(dir)?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let db = loop {
            match sled::Config::new().path(dir).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if (e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("lock"))
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Arc::new(Store {
            log: db.open_tree("log")?,
            meta: db.open_tree("meta")?,
            db,
        }))
    }

    fn get_meta<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, AnyError> {
        match self.meta.get(key).map_err(|e| AnyError::new(&e))? {
            None => Ok(None),
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).map_err(|e| AnyError::new(&e))?,
            )),
        }
    }

    async fn put_meta<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), AnyError> {
        let bytes = serde_json::to_vec(value).map_err(|e| AnyError::new(&e))?;
        self.meta
            .insert(key, bytes)
            .map_err(|e| AnyError::new(&e))?;
        self.flush().await
    }

    async fn flush(&self) -> Result<(), AnyError> {
        self.db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| AnyError::new(&e))
    }

    /// Replaces the stored snapshot: its meta (JSON) and the image bytes, in one atomic batch.
    async fn put_snapshot(
        &self,
        meta: &SnapshotMeta<NodeId, Node>,
        data: &[u8],
    ) -> Result<(), AnyError> {
        let meta = serde_json::to_vec(meta).map_err(|e| AnyError::new(&e))?;
        let mut batch = sled::Batch::default();
        batch.insert(SNAPSHOT_META, meta);
        batch.insert(SNAPSHOT_DATA, data);
        self.meta
            .apply_batch(batch)
            .map_err(|e| AnyError::new(&e))?;
        self.flush().await
    }

    fn get_snapshot(&self) -> Result<Option<StoredSnapshot>, AnyError> {
        let Some(meta) = self.get_meta(SNAPSHOT_META)? else {
            return Ok(None);
        };
        let data = self
            .meta
            .get(SNAPSHOT_DATA)
            .map_err(|e| AnyError::new(&e))?
            .ok_or_else(|| AnyError::error("snapshot meta without its data"))?;
        Ok(Some((meta, data.to_vec())))
    }

    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>, AnyError> {
        match self.log.last().map_err(|e| AnyError::new(&e))? {
            None => Ok(None),
            Some((_, v)) => Ok(Some(
                serde_json::from_slice(&v).map_err(|e| AnyError::new(&e))?,
            )),
        }
    }
}

/// The Raft log and vote.
#[derive(Clone)]
pub struct LogStore {
    store: Arc<Store>,
}

impl LogStore {
    pub fn new(store: Arc<Store>) -> Self {
        LogStore { store }
    }
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(key(*i)),
            Bound::Excluded(i) => Bound::Excluded(key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in self.store.log.range((Bound::Included(key(start)), end)) {
            let (_, v) = item.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            let entry: Entry<TypeConfig> = serde_json::from_slice(&v)
                .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self
            .store
            .get_meta(PURGED)
            .map_err(StorageIOError::read_logs)?;
        let last = self.store.last_entry().map_err(StorageIOError::read_logs)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.map(|e| e.log_id).or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.store
            .put_meta(VOTE, vote)
            .await
            .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        Ok(self
            .store
            .get_meta(VOTE)
            .map_err(StorageIOError::read_vote)?)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        // Not flushed on its own: it rides on the next flush. Losing it only means a
        // restarted node waits for the leader to tell it what is committed.
        let bytes =
            serde_json::to_vec(&committed).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        self.store
            .meta
            .insert(COMMITTED, bytes)
            .map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        let c: Option<Option<LogId<NodeId>>> = self
            .store
            .get_meta(COMMITTED)
            .map_err(StorageIOError::read)?;
        Ok(c.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry)
                .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
            batch.insert(&key(entry.log_id.index), bytes);
        }
        self.store
            .log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        let flushed = self.store.flush().await;
        callback.log_io_completed(flushed.map_err(|e| std::io::Error::other(e.to_string())));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.remove_range(key(log_id.index).., false).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.store
            .put_meta(PURGED, &Some(log_id))
            .await
            .map_err(StorageIOError::write_logs)?;
        self.remove_range(..=key(log_id.index), true).await
    }
}

impl LogStore {
    async fn remove_range<R: RangeBounds<[u8; 8]>>(
        &mut self,
        range: R,
        _purge: bool,
    ) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        for item in self.store.log.range(range) {
            let (k, _) = item.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
            batch.remove(k);
        }
        self.store
            .log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        self.store
            .flush()
            .await
            .map_err(StorageIOError::write_logs)?;
        Ok(())
    }
}

/// The state machine: the image, and what openraft needs to know about it.
pub struct StateMachine {
    store: Arc<Store>,
    image: Arc<Image>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    publish: watch::Sender<Arc<Image>>,
    /// The last applied entries, kept for observers.
    recent: Arc<Recent>,
    snapshots_built: u64,
}

impl StateMachine {
    /// The state machine at the latest snapshot (or empty), publishing to `publish`.
    pub fn open(
        store: Arc<Store>,
        publish: watch::Sender<Arc<Image>>,
        recent: Arc<Recent>,
    ) -> anyhow::Result<Self> {
        let snap = store.get_snapshot()?;
        let mut sm = StateMachine {
            store,
            image: Arc::new(Image::default()),
            last_applied: None,
            membership: StoredMembership::default(),
            publish,
            recent,
            snapshots_built: 0,
        };
        if let Some((meta, data)) = snap {
            sm.image = Arc::new(serde_json::from_slice(&data)?);
            sm.last_applied = meta.last_log_id;
            sm.membership = meta.last_membership;
        }
        sm.publish.send_replace(sm.image.clone());
        Ok(sm)
    }
}

/// Builds a snapshot from a copy of the image taken when openraft asked for it.
pub struct SnapshotBuilder {
    store: Arc<Store>,
    image: Arc<Image>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let data = serde_json::to_vec(&*self.image)
            .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.seq),
            None => format!("--{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        self.store
            .put_snapshot(&meta, &data)
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut image = (*self.image).clone();
        let mut out = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            image.offset = entry.log_id.index;
            let (applied, batch) = match entry.payload {
                EntryPayload::Blank => (Ok(()), None),
                EntryPayload::Normal(batch) => (apply_batch(&mut image, &batch.0), Some(batch)),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    (Ok(()), None)
                }
            };
            self.recent.push(entry.log_id.index, batch);
            out.push(applied);
        }
        self.image = Arc::new(image);
        self.publish.send_replace(self.image.clone());
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots_built += 1;
        SnapshotBuilder {
            store: self.store.clone(),
            image: self.image.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            seq: self.snapshots_built,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let image: Image = serde_json::from_slice(&data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        self.store
            .put_snapshot(meta, &data)
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        self.image = Arc::new(image);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.recent.clear();
        self.publish.send_replace(self.image.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let snap = self
            .store
            .get_snapshot()
            .map_err(|e| StorageIOError::read_snapshot(None, e))?;
        Ok(snap.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
