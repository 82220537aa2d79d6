//! What the transaction coordinator needs from the rest of the broker, behind one trait so
//! that its state machine runs in unit tests with in-memory storage and a hand-set clock.

#[cfg(test)]
use std::collections::HashMap;
use std::sync::Arc;

use super::coordinator::TxnMeta;
use crate::group::GroupCoordinator;
use crate::group::offsets::Committed;
use crate::log::Store;
use crate::meta::topics::Topics;

/// Storage, clock and the partitions' side of a transaction.
pub trait TxnBackend: Send + Sync {
    fn now_ms(&self) -> i64;
    /// Every persisted transactional id's state.
    fn load(&self) -> anyhow::Result<Vec<TxnMeta>>;
    fn persist(&self, m: &TxnMeta) -> anyhow::Result<()>;
    fn remove(&self, transactional_id: &str) -> anyhow::Result<()>;
    /// A producer id never handed out before.
    fn new_producer_id(&self) -> anyhow::Result<i64>;
    /// Writes a COMMIT/ABORT marker with `epoch` to one partition of the transaction (a
    /// partition that no longer exists needs none). Must be idempotent: a marker already
    /// written, with nothing left to close or fence, is not written again.
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> anyhow::Result<()>;
    /// Applies a committed transaction's offsets to a group.
    fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, Committed)],
    ) -> anyhow::Result<()>;
}

/// The coordinator epoch written into markers; a single coordinator never changes.
const COORDINATOR_EPOCH: i32 = 0;

/// The broker's backend: the store's `meta/txn` tree, its id generator, the partition logs
/// and the group coordinator.
pub struct BrokerBackend {
    pub tree: sled::Tree,
    pub store: Arc<Store>,
    pub topics: Arc<Topics>,
    pub groups: Arc<GroupCoordinator>,
    pub pids: Arc<super::producer_ids::ProducerIds>,
}

impl TxnBackend for BrokerBackend {
    fn now_ms(&self) -> i64 {
        crate::handlers::now_ms()
    }

    fn load(&self) -> anyhow::Result<Vec<TxnMeta>> {
        let mut out = Vec::new();
        for kv in self.tree.iter() {
            let (_, v) = kv?;
            out.push(serde_json::from_slice(&v)?);
        }
        Ok(out)
    }

    fn persist(&self, m: &TxnMeta) -> anyhow::Result<()> {
        self.tree
            .insert(m.transactional_id.as_bytes(), serde_json::to_vec(m)?)?;
        Ok(())
    }

    fn remove(&self, transactional_id: &str) -> anyhow::Result<()> {
        self.tree.remove(transactional_id.as_bytes())?;
        Ok(())
    }

    fn new_producer_id(&self) -> anyhow::Result<i64> {
        self.pids
            .try_next()?
            .ok_or_else(|| anyhow::anyhow!("no producer id block at hand yet"))
    }

    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> anyhow::Result<()> {
        let Some(log) = self
            .topics
            .get(topic)
            .and_then(|t| t.partition(partition).cloned())
        else {
            // Deleted with its data: nothing to mark.
            return Ok(());
        };
        log.write_marker(producer_id, epoch, commit, COORDINATOR_EPOCH, self.now_ms())
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(())
    }

    fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, Committed)],
    ) -> anyhow::Result<()> {
        self.groups.get_or_create_empty(group);
        self.groups.offsets.commit(group, offsets)?;
        Ok(())
    }
}

/// A shared backend: tests keep one handle to inspect what the coordinator did.
#[cfg(test)]
impl<T: TxnBackend> TxnBackend for Arc<T> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
    fn load(&self) -> anyhow::Result<Vec<TxnMeta>> {
        (**self).load()
    }
    fn persist(&self, m: &TxnMeta) -> anyhow::Result<()> {
        (**self).persist(m)
    }
    fn remove(&self, id: &str) -> anyhow::Result<()> {
        (**self).remove(id)
    }
    fn new_producer_id(&self) -> anyhow::Result<i64> {
        (**self).new_producer_id()
    }
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        pid: i64,
        epoch: i16,
        commit: bool,
    ) -> anyhow::Result<()> {
        (**self).write_marker(topic, partition, pid, epoch, commit)
    }
    fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, Committed)],
    ) -> anyhow::Result<()> {
        (**self).commit_offsets(group, offsets)
    }
}

/// A marker the test backend saw: (topic, partition, producer id, epoch, commit).
#[cfg(test)]
pub type MarkerSeen = (String, i32, i64, i16, bool);

/// An in-memory backend with a settable clock, for the state machine's unit tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemBackend {
    pub now: std::sync::atomic::AtomicI64,
    pub stored: std::sync::Mutex<HashMap<String, TxnMeta>>,
    pub next_pid: std::sync::atomic::AtomicI64,
    pub markers: std::sync::Mutex<Vec<MarkerSeen>>,
    pub offsets: std::sync::Mutex<Vec<(String, String, i32, i64)>>,
    /// Marker writes fail while this is set.
    pub fail_markers: std::sync::atomic::AtomicBool,
    pub fail_persist: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl TxnBackend for MemBackend {
    fn now_ms(&self) -> i64 {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn load(&self) -> anyhow::Result<Vec<TxnMeta>> {
        Ok(self.stored.lock().unwrap().values().cloned().collect())
    }
    fn persist(&self, m: &TxnMeta) -> anyhow::Result<()> {
        if self.fail_persist.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("disk full");
        }
        self.stored
            .lock()
            .unwrap()
            .insert(m.transactional_id.clone(), m.clone());
        Ok(())
    }
    fn remove(&self, id: &str) -> anyhow::Result<()> {
        self.stored.lock().unwrap().remove(id);
        Ok(())
    }
    fn new_producer_id(&self) -> anyhow::Result<i64> {
        Ok(1000
            + self
                .next_pid
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst))
    }
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> anyhow::Result<()> {
        if self.fail_markers.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("partition unavailable");
        }
        self.markers.lock().unwrap().push((
            topic.to_string(),
            partition,
            producer_id,
            epoch,
            commit,
        ));
        Ok(())
    }
    fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, Committed)],
    ) -> anyhow::Result<()> {
        let mut o = self.offsets.lock().unwrap();
        for (t, p, c) in offsets {
            o.push((group.to_string(), t.clone(), *p, c.offset));
        }
        Ok(())
    }
}
