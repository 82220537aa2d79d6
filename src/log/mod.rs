//! Partition logs over sled: the narrow storage interface the handlers use.
//!
//! `Store` owns the sled database and the directory of segment files; everything else
//! reaches storage through it or through a `PartitionLog`. Batch bytes live in append-only
//! segment files (`<data dir>/logs/<topic id>-<partition>/`), sled holds the offset index,
//! producer and transaction state and all broker metadata.

pub mod batch;
pub mod partition;
pub mod producer;
pub mod records;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use partition::{
    AppendError, AppendInfo, DirtyFiles, EpochEnd, PartitionLog, ReadError, ReadPlan, ReadResult,
    UNDEFINED_EPOCH,
};

/// sled's page cache; its default (1 GiB) would dwarf the broker's own footprint. Batch
/// bytes do not go through it, so it only caches indexes and metadata.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

pub struct Store {
    db: sled::Db,
    logs: PathBuf,
    dirty: Arc<DirtyFiles>,
    /// Group commit: one flush at a time, and `synced` = appends it covered.
    flush_lock: tokio::sync::Mutex<()>,
    synced: AtomicU64,
    meta: Arc<MetaFlusher>,
}

/// sled flushes, one at a time, shared by every caller that asked before one started (group
/// commit). They run on the caller's (blocking) thread with `Db::flush`, never as
/// `flush_async` jobs: many concurrent `flush_async` calls fill sled's small I/O pool with
/// flushes waiting for writes that need a slot in that same pool, and with an `apply_batch`
/// waiting for the write lock the whole store deadlocks (seen under a Java group test).
struct MetaFlusher {
    db: sled::Db,
    /// Flushes asked for so far; a caller's ticket is this after its increment.
    requested: AtomicU64,
    /// Held while flushing; holds the last ticket a finished flush covered.
    done: std::sync::Mutex<u64>,
}

impl MetaFlusher {
    fn flush(&self) -> anyhow::Result<()> {
        let ticket = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        if *done >= ticket {
            return Ok(());
        }
        let covers = self.requested.load(Ordering::Acquire);
        self.db.flush()?;
        *done = covers;
        Ok(())
    }
}

impl Store {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir.join("store"))
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(200))
            .open()?;
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        Ok(Store {
            logs,
            dirty: Arc::default(),
            flush_lock: tokio::sync::Mutex::new(()),
            synced: AtomicU64::new(0),
            meta: Arc::new(MetaFlusher {
                db: db.clone(),
                requested: AtomicU64::new(0),
                done: std::sync::Mutex::new(0),
            }),
            db,
        })
    }

    fn partition_dir(&self, topic_id: uuid::Uuid, partition: i32) -> PathBuf {
        self.logs.join(format!("{}-{partition}", topic_id.simple()))
    }

    fn partition_tree_name(topic_id: uuid::Uuid, partition: i32) -> String {
        format!("partition/{}/{partition}", topic_id.simple())
    }

    pub fn open_partition(
        &self,
        topic_id: uuid::Uuid,
        partition: i32,
        leader_epoch: i32,
    ) -> anyhow::Result<Arc<PartitionLog>> {
        let tree = self
            .db
            .open_tree(Self::partition_tree_name(topic_id, partition))?;
        Ok(Arc::new(PartitionLog::open(
            tree,
            leader_epoch,
            self.partition_dir(topic_id, partition),
            self.dirty.clone(),
        )?))
    }

    pub fn drop_partition(&self, topic_id: uuid::Uuid, partition: i32) -> anyhow::Result<()> {
        self.db
            .drop_tree(Self::partition_tree_name(topic_id, partition))?;
        let dir = self.partition_dir(topic_id, partition);
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        Ok(())
    }

    /// A tree for broker metadata (topics, cluster id, producer ids, later groups).
    pub fn meta_tree(&self, name: &str) -> anyhow::Result<sled::Tree> {
        Ok(self.db.open_tree(format!("meta/{name}"))?)
    }

    /// A cluster-unique, never-reused id (producer ids).
    pub fn next_id(&self) -> anyhow::Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Waits until the store's metadata written so far (topics, offsets, group and
    /// transaction state, partition state) is on disk. sled buffers writes in process memory
    /// for up to its flush interval, so a process kill would lose them; segment files are
    /// written with pwrite and survive a process kill without this.
    pub async fn flush_meta(&self) -> anyhow::Result<()> {
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || meta.flush()).await?
    }

    /// Everything written so far on disk (segment files, then sled), for synchronous callers
    /// on the blocking pool; not shared with concurrent flushes.
    pub fn flush_all_blocking(&self) -> anyhow::Result<()> {
        let covers = self.dirty.appends();
        self.dirty.sync_all()?;
        self.meta.flush()?;
        self.synced.fetch_max(covers, Ordering::AcqRel);
        Ok(())
    }

    /// [`Store::flush_meta`] for synchronous callers (on the blocking pool).
    pub fn flush_meta_blocking(&self) -> anyhow::Result<()> {
        self.meta.flush()
    }

    /// [`Store::flush`] (segment files and sled) for a caller that has just written
    /// metadata: such writes are not segment appends, so `flush` alone could answer
    /// "already covered" after a flush that started before them; counting the write first
    /// makes sure a flush that started after it runs. Concurrent callers share one flush.
    pub async fn flush_all_after_write(&self) -> anyhow::Result<()> {
        self.dirty.count_write();
        self.flush().await
    }

    /// Waits until everything written so far is on disk: the segment files written since
    /// the last flush, then sled. Concurrent callers share the work (group commit): a caller
    /// whose appends were covered by a flush that started after them returns at once.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let mine = self.dirty.appends();
        let _one = self.flush_lock.lock().await;
        if self.synced.load(Ordering::Acquire) >= mine && mine > 0 {
            return Ok(());
        }
        let covers = self.dirty.appends();
        let dirty = self.dirty.clone();
        tokio::task::spawn_blocking(move || dirty.sync_all()).await??;
        self.flush_meta().await?;
        self.synced.fetch_max(covers, Ordering::AcqRel);
        Ok(())
    }
}
