//! Partition logs over sled: the narrow storage interface the handlers use.
//!
//! `Store` owns the sled database; everything else reaches storage through it or through a
//! `PartitionLog`. Keeping the surface this small is what lets the engine be swapped (e.g.
//! for append-only segment files with sled as the index) without touching a handler.

pub mod batch;
pub mod partition;
pub mod producer;
pub mod records;

use std::path::Path;
use std::sync::Arc;

pub use partition::{AppendError, AppendInfo, PartitionLog, ReadError, ReadResult};

/// sled's page cache; its default (1 GiB) would dwarf the broker's own footprint.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

pub struct Store {
    db: sled::Db,
}

impl Store {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir.join("store"))
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(200))
            .open()?;
        Ok(Store { db })
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
        Ok(Arc::new(PartitionLog::open(tree, leader_epoch)?))
    }

    pub fn drop_partition(&self, topic_id: uuid::Uuid, partition: i32) -> anyhow::Result<()> {
        self.db
            .drop_tree(Self::partition_tree_name(topic_id, partition))?;
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

    /// Waits until everything written so far is on disk. Concurrent callers share the work:
    /// sled flushes all pending writes at once, so a later caller usually finds little left.
    pub async fn flush(&self) -> anyhow::Result<()> {
        self.db.flush_async().await?;
        Ok(())
    }
}
