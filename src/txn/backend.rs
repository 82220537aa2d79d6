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
    /// State a data dir of an earlier release kept in the store, to move into the journal.
    fn legacy(&self) -> anyhow::Result<Vec<TxnMeta>> {
        Ok(Vec::new())
    }
    /// Gives the broker to a backend that sends markers to other brokers.
    fn attach(&self, _broker: std::sync::Weak<crate::Broker>) {}
    /// Waits until what was persisted for `transactional_id` is on every ISR member of its
    /// partition (blocking).
    fn replicated(&self, _transactional_id: &str) -> anyhow::Result<()> {
        Ok(())
    }
    /// Applies a committed transaction's offsets to a group (state of earlier releases:
    /// transactions now leave their offsets with the group's coordinator).
    fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, Committed)],
    ) -> anyhow::Result<()>;
}

/// The coordinator epoch written into markers.
const COORDINATOR_EPOCH: i32 = 0;

/// The broker's backend: `__transaction_state` (the journal), the store's `meta/txn` tree
/// (state of earlier releases), producer ids, the partition logs (markers here, or sent to
/// the partition's leader) and the group coordinator.
pub struct BrokerBackend {
    pub tree: sled::Tree,
    pub store: Arc<Store>,
    pub topics: Arc<Topics>,
    pub groups: Arc<GroupCoordinator>,
    pub pids: Arc<super::producer_ids::ProducerIds>,
    pub journal: Arc<crate::group::journal::Journal>,
    pub broker: std::sync::OnceLock<std::sync::Weak<crate::Broker>>,
}

impl TxnBackend for BrokerBackend {
    fn now_ms(&self) -> i64 {
        crate::handlers::now_ms()
    }

    fn load(&self) -> anyhow::Result<Vec<TxnMeta>> {
        // Nothing is coordinated before its partition is loaded.
        Ok(Vec::new())
    }

    fn legacy(&self) -> anyhow::Result<Vec<TxnMeta>> {
        let mut out = Vec::new();
        for kv in self.tree.iter() {
            let (k, v) = kv?;
            // One unreadable entry must not keep its partition from loading.
            match serde_json::from_slice(&v) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!(
                    transactional_id = %String::from_utf8_lossy(&k),
                    error = %e,
                    "cannot read a transactional id of an earlier release; skipped"
                ),
            }
        }
        Ok(out)
    }

    fn persist(&self, m: &TxnMeta) -> anyhow::Result<()> {
        let record = super::coordinator::loading_encode(&m.transactional_id, Some(m))?;
        self.journal
            .append_raw(&m.transactional_id, &[record])
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        // The journal holds it now; an earlier release's copy must not come back, and goes
        // only once the journal's copy is on disk.
        if self.tree.contains_key(m.transactional_id.as_bytes())? {
            self.store.flush_all_blocking()?;
            self.tree.remove(m.transactional_id.as_bytes())?;
        }
        Ok(())
    }

    fn remove(&self, transactional_id: &str) -> anyhow::Result<()> {
        let record = super::coordinator::loading_encode(transactional_id, None)?;
        self.journal
            .append_raw(transactional_id, &[record])
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if self.tree.contains_key(transactional_id.as_bytes())? {
            self.store.flush_all_blocking()?;
            self.tree.remove(transactional_id.as_bytes())?;
        }
        Ok(())
    }

    fn attach(&self, broker: std::sync::Weak<crate::Broker>) {
        let _ = self.broker.set(broker);
    }

    fn replicated(&self, transactional_id: &str) -> anyhow::Result<()> {
        let clustered = self
            .broker
            .get()
            .and_then(|b| b.upgrade())
            .is_some_and(|b| b.cluster.is_some());
        if !clustered {
            return Ok(());
        }
        super::markers::block_on(async {
            self.journal
                .replicated(transactional_id, super::markers::TIMEOUT.as_millis() as u64)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))
        })
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
        let Some(t) = self.topics.get(topic) else {
            // Deleted with its data: nothing to mark.
            return Ok(());
        };
        let Some(log) = t.partition(partition).cloned() else {
            return Ok(());
        };
        let broker = self.broker.get().and_then(|b| b.upgrade());
        let leader = match &broker {
            Some(b) => b.leader_of(&t, partition),
            None => None,
        };
        match leader {
            // Another broker leads the partition: the marker goes there.
            Some(id) if broker.as_ref().is_some_and(|b| b.node_id() != id) => {
                let b = broker.expect("checked");
                super::markers::send(&b, id, topic, partition, producer_id, epoch, commit)
            }
            _ if topic == crate::group::journal::TOPIC => {
                // Its pending offsets are known only once the partition is loaded here.
                if !self.groups.owns_partition(partition) {
                    anyhow::bail!("{topic}-{partition} is not loaded here yet");
                }
                self.groups
                    .complete_txn(partition, producer_id, epoch, commit, self.now_ms())
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                if broker.is_some_and(|b| b.cluster.is_some()) {
                    super::markers::block_on(async {
                        self.groups
                            .journal
                            .replicated_partition(
                                partition,
                                super::markers::TIMEOUT.as_millis() as u64,
                            )
                            .await
                            .map_err(|e| anyhow::anyhow!("{e:?}"))
                    })?;
                }
                Ok(())
            }
            _ => {
                log.write_marker(producer_id, epoch, commit, COORDINATOR_EPOCH, self.now_ms())
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                // In a cluster the marker counts once every ISR member has it.
                if broker.is_some_and(|b| b.cluster.is_some()) {
                    let (end, leader_epoch) = (log.log_end_offset(), log.leader_epoch());
                    super::markers::block_on(async {
                        crate::group::journal::await_hw(
                            &log,
                            end,
                            leader_epoch,
                            super::markers::TIMEOUT.as_millis() as u64,
                        )
                        .await
                        .map_err(|e| anyhow::anyhow!("marker not replicated: {e:?}"))
                    })?;
                }
                Ok(())
            }
        }
    }

    fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, Committed)],
    ) -> anyhow::Result<()> {
        self.groups.get_or_create_empty(group);
        self.groups
            .commit_offsets(group, offsets)
            .map_err(|e| anyhow::anyhow!("committing the offsets of group {group}: {e:?}"))
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
