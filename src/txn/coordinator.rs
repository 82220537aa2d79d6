//! The transaction coordinator: one state machine per `transactional.id`, persisted in the
//! store's `meta/txn` tree.
//!
//! ```text
//!   Empty ──AddPartitions/AddOffsets/produce──> Ongoing ──EndTxn(commit)──> PrepareCommit ──markers──> CompleteCommit
//!     ^                                            │      ──EndTxn(abort)───> PrepareAbort  ──markers──> CompleteAbort
//!     └──────────── InitProducerId (epoch bump) ───┴── timeout / new instance: abort with a bumped epoch (fencing)
//! ```
//! What survives a crash at each step: every transition is written to sled before the next
//! step starts. A crash in Ongoing leaves the transaction open; it is aborted by its timeout
//! or by the next InitProducerId. A crash in PrepareCommit/PrepareAbort is finished at
//! startup: markers are written to every partition that still has the producer's
//! transaction open (so none is written twice) and pending offsets are committed.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use crate::group::GroupCoordinator;
use crate::group::offsets::Committed;
use crate::handlers::now_ms;
use crate::log::Store;
use crate::meta::topics::Topics;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxnMeta {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub state: TxnState,
    pub timeout_ms: i32,
    /// When the current transaction started (ms since epoch), -1 when none is open.
    pub start_ms: i64,
    pub last_update_ms: i64,
    pub partitions: BTreeSet<(String, i32)>,
    pub groups: BTreeSet<String>,
    pub pending_offsets: Vec<PendingOffset>,
}

pub struct TxnCoordinator {
    tree: sled::Tree,
    store: Arc<Store>,
    topics: Arc<Topics>,
    groups: Arc<GroupCoordinator>,
    txns: Mutex<HashMap<String, Arc<Mutex<TxnMeta>>>>,
    pub max_timeout_ms: i64,
}

/// The coordinator epoch written into markers; a single coordinator never changes.
const COORDINATOR_EPOCH: i32 = 0;

fn fenced_or_ok(meta: &TxnMeta, pid: i64, epoch: i16) -> Result<(), ResponseError> {
    if pid != meta.producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if epoch < meta.producer_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if epoch > meta.producer_epoch {
        return Err(ResponseError::InvalidProducerEpoch);
    }
    Ok(())
}

impl TxnCoordinator {
    pub fn load(
        store: Arc<Store>,
        topics: Arc<Topics>,
        groups: Arc<GroupCoordinator>,
        max_timeout_ms: i64,
    ) -> anyhow::Result<Self> {
        let tree = store.meta_tree("txn")?;
        let mut txns = HashMap::new();
        for kv in tree.iter() {
            let (_, v) = kv?;
            let meta: TxnMeta = serde_json::from_slice(&v)?;
            txns.insert(meta.transactional_id.clone(), Arc::new(Mutex::new(meta)));
        }
        let me = TxnCoordinator {
            tree,
            store,
            topics,
            groups,
            txns: Mutex::new(txns),
            max_timeout_ms,
        };
        // Finish whatever was being committed or aborted when the broker stopped.
        for (id, h) in me.all() {
            let mut m = h.lock().unwrap();
            match m.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    let commit = m.state == TxnState::PrepareCommit;
                    let epoch = m.producer_epoch;
                    tracing::info!(transactional_id = %id, commit, "completing a transaction interrupted by the restart");
                    me.complete(&mut m, commit, epoch);
                }
                _ => {}
            }
        }
        Ok(me)
    }

    pub fn all(&self) -> Vec<(String, Arc<Mutex<TxnMeta>>)> {
        let mut v: Vec<_> = self
            .txns
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn get(&self, id: &str) -> Option<Arc<Mutex<TxnMeta>>> {
        self.txns.lock().unwrap().get(id).cloned()
    }

    fn persist(&self, m: &mut TxnMeta) {
        m.last_update_ms = now_ms();
        match serde_json::to_vec(m) {
            Ok(v) => {
                if let Err(e) = self.tree.insert(m.transactional_id.as_bytes(), v) {
                    tracing::error!(transactional_id = %m.transactional_id, error = %e, "cannot persist transaction state");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode transaction state"),
        }
    }

    fn new_producer_id(&self) -> Result<i64, ResponseError> {
        super::next_producer_id(&self.store).map_err(|_| ResponseError::KafkaStorageError)
    }

    /// InitProducerId with a transactional id: a new instance gets the next epoch (fencing
    /// the previous one) and any transaction it left open is aborted first.
    pub fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        req_pid: i64,
        req_epoch: i16,
    ) -> Result<(i64, i16), ResponseError> {
        if timeout_ms <= 0 || timeout_ms as i64 > self.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let handle = {
            let mut map = self.txns.lock().unwrap();
            match map.get(id) {
                Some(h) => h.clone(),
                None => {
                    let pid = self.new_producer_id()?;
                    let h = Arc::new(Mutex::new(TxnMeta {
                        transactional_id: id.to_string(),
                        producer_id: pid,
                        producer_epoch: -1,
                        state: TxnState::Empty,
                        timeout_ms,
                        start_ms: -1,
                        last_update_ms: now_ms(),
                        partitions: BTreeSet::new(),
                        groups: BTreeSet::new(),
                        pending_offsets: Vec::new(),
                    }));
                    map.insert(id.to_string(), h.clone());
                    h
                }
            }
        };
        let mut m = handle.lock().unwrap();
        // KIP-360: a producer re-initialising names its current id and epoch.
        if req_pid >= 0 && (req_pid != m.producer_id || req_epoch != m.producer_epoch) {
            return Err(if req_pid != m.producer_id {
                ResponseError::InvalidProducerIdMapping
            } else {
                ResponseError::ProducerFenced
            });
        }
        match m.state {
            TxnState::Ongoing | TxnState::PrepareEpochFence => {
                // The previous instance left a transaction open: abort it under a new epoch
                // so its late writes are fenced.
                let fence = m.producer_epoch.saturating_add(1);
                tracing::info!(
                    transactional_id = id,
                    epoch = fence,
                    "aborting the previous instance's transaction"
                );
                m.state = TxnState::PrepareEpochFence;
                self.persist(&mut m);
                self.complete(&mut m, false, fence);
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                let commit = m.state == TxnState::PrepareCommit;
                let epoch = m.producer_epoch;
                self.complete(&mut m, commit, epoch);
            }
            _ => {}
        }
        if m.producer_epoch >= i16::MAX - 1 {
            // Epochs are exhausted: continue under a fresh producer id.
            m.producer_id = self.new_producer_id()?;
            m.producer_epoch = 0;
        } else {
            m.producer_epoch += 1;
        }
        m.timeout_ms = timeout_ms;
        m.state = TxnState::Empty;
        m.start_ms = -1;
        m.partitions.clear();
        m.groups.clear();
        m.pending_offsets.clear();
        self.persist(&mut m);
        Ok((m.producer_id, m.producer_epoch))
    }

    fn begin_if_needed(m: &mut TxnMeta) -> Result<(), ResponseError> {
        match m.state {
            TxnState::Ongoing => Ok(()),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                m.state = TxnState::Ongoing;
                m.start_ms = now_ms();
                Ok(())
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Dead => Err(ResponseError::InvalidTxnState),
        }
    }

    fn locked(&self, id: &str) -> Result<Arc<Mutex<TxnMeta>>, ResponseError> {
        self.get(id).ok_or(ResponseError::InvalidProducerIdMapping)
    }

    /// AddPartitionsToTxn (and the implicit add of KIP-890 produce requests).
    pub fn add_partitions(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &[(String, i32)],
        verify_only: bool,
    ) -> Result<(), ResponseError> {
        let h = self.locked(id)?;
        let mut m = h.lock().unwrap();
        fenced_or_ok(&m, pid, epoch)?;
        if verify_only {
            return if m.state == TxnState::Ongoing && parts.iter().all(|p| m.partitions.contains(p))
            {
                Ok(())
            } else {
                Err(ResponseError::InvalidTxnState)
            };
        }
        if parts.iter().all(|p| m.partitions.contains(p)) && m.state == TxnState::Ongoing {
            return Ok(());
        }
        Self::begin_if_needed(&mut m)?;
        m.partitions.extend(parts.iter().cloned());
        self.persist(&mut m);
        Ok(())
    }

    /// AddOffsetsToTxn: the group's offsets become part of the transaction.
    pub fn add_offsets(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        group: &str,
    ) -> Result<(), ResponseError> {
        let h = self.locked(id)?;
        let mut m = h.lock().unwrap();
        fenced_or_ok(&m, pid, epoch)?;
        Self::begin_if_needed(&mut m)?;
        m.groups.insert(group.to_string());
        self.persist(&mut m);
        Ok(())
    }

    /// TxnOffsetCommit: offsets held until the transaction commits (dropped on abort).
    pub fn stage_offsets(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        offsets: Vec<PendingOffset>,
    ) -> Result<(), ResponseError> {
        let h = self.locked(id)?;
        let mut m = h.lock().unwrap();
        fenced_or_ok(&m, pid, epoch)?;
        Self::begin_if_needed(&mut m)?;
        for o in offsets {
            m.groups.insert(o.group.clone());
            m.pending_offsets.retain(|p| {
                !(p.group == o.group && p.topic == o.topic && p.partition == o.partition)
            });
            m.pending_offsets.push(o);
        }
        self.persist(&mut m);
        Ok(())
    }

    /// True if a transaction has an uncommitted offset for this group partition
    /// (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.all().iter().any(|(_, h)| {
            let m = h.lock().unwrap();
            m.state == TxnState::Ongoing
                && m.pending_offsets
                    .iter()
                    .any(|p| p.group == group && p.topic == topic && p.partition == partition)
        })
    }

    /// Checks a transactional produce: the producer must be the current instance and the
    /// partition part of its transaction. `implicit_add` (KIP-890 clients) adds it instead.
    pub fn check_produce(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
        implicit_add: bool,
    ) -> Result<(), ResponseError> {
        let h = self.locked(id)?;
        let mut m = h.lock().unwrap();
        if pid != m.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch < m.producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        let key = (topic.to_string(), partition);
        if m.state == TxnState::Ongoing && m.partitions.contains(&key) {
            return Ok(());
        }
        if !implicit_add {
            return Err(ResponseError::InvalidTxnState);
        }
        Self::begin_if_needed(&mut m)?;
        m.partitions.insert(key);
        self.persist(&mut m);
        Ok(())
    }

    /// EndTxn. With `bump_epoch` (EndTxn v5, KIP-890) every commit/abort moves the producer
    /// to a new epoch, written into the markers and returned to the client; a retry of a
    /// completed EndTxn then arrives with the previous epoch. Without it (v0-4) the epoch
    /// must match exactly and markers carry it unchanged.
    pub fn end_txn(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        bump_epoch: bool,
    ) -> Result<(i64, i16), ResponseError> {
        let h = self.locked(id)?;
        let mut m = h.lock().unwrap();
        if pid != m.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        let current = m.producer_epoch;
        let done = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        let is_retry = if bump_epoch {
            epoch == current - 1
        } else {
            epoch == current
        };
        if matches!(
            m.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        ) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if epoch != current && !(bump_epoch && epoch == current - 1) {
            return Err(ResponseError::ProducerFenced);
        }
        if epoch == current && m.state == TxnState::Ongoing {
            m.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            let marker_epoch = if bump_epoch { epoch + 1 } else { epoch };
            m.producer_epoch = marker_epoch;
            self.persist(&mut m);
            self.complete(&mut m, commit, marker_epoch);
            return Ok((m.producer_id, m.producer_epoch));
        }
        // A completed EndTxn whose response was lost: same outcome again.
        if is_retry && m.state == done {
            return Ok((m.producer_id, m.producer_epoch));
        }
        // KIP-890: aborting with nothing open (the client aborts after an error) still moves
        // the producer to a new epoch; nothing is written.
        if bump_epoch
            && !commit
            && epoch == current
            && matches!(
                m.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            )
        {
            m.producer_epoch += 1;
            m.state = TxnState::CompleteAbort;
            self.persist(&mut m);
            return Ok((m.producer_id, m.producer_epoch));
        }
        // An older epoch is only a retry candidate against a completed transaction; against
        // an empty or open one (a zombie of the previous instance) it is fenced.
        if epoch != current && matches!(m.state, TxnState::Empty | TxnState::Ongoing) {
            return Err(ResponseError::ProducerFenced);
        }
        Err(ResponseError::InvalidTxnState)
    }

    /// Writes the markers, applies or drops staged offsets, and records the outcome.
    fn complete(&self, m: &mut TxnMeta, commit: bool, marker_epoch: i16) {
        let now = now_ms();
        for (topic, partition) in &m.partitions {
            let Some(t) = self.topics.get(topic) else {
                continue;
            };
            let Some(log) = t.partition(*partition) else {
                continue;
            };
            if let Err(e) =
                log.write_marker(m.producer_id, marker_epoch, commit, COORDINATOR_EPOCH, now)
            {
                tracing::error!(topic = %topic, partition, error = ?e, "cannot write transaction marker");
            }
        }
        if commit && !m.pending_offsets.is_empty() {
            let mut by_group: HashMap<&str, Vec<(String, i32, Committed)>> = HashMap::new();
            for p in &m.pending_offsets {
                by_group.entry(&p.group).or_default().push((
                    p.topic.clone(),
                    p.partition,
                    Committed {
                        offset: p.offset,
                        leader_epoch: p.leader_epoch,
                        commit_timestamp: now,
                        metadata: p.metadata.clone(),
                    },
                ));
            }
            for (group, offsets) in by_group {
                self.groups.get_or_create_empty(group);
                if let Err(e) = self.groups.offsets.commit(group, &offsets) {
                    tracing::error!(group, error = %e, "cannot commit transactional offsets");
                }
            }
        }
        m.producer_epoch = marker_epoch;
        m.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        m.partitions.clear();
        m.groups.clear();
        m.pending_offsets.clear();
        m.start_ms = -1;
        self.persist(m);
        tracing::debug!(transactional_id = %m.transactional_id, commit, epoch = marker_epoch, "transaction completed");
    }

    /// Aborts transactions open longer than their timeout, fencing the producer.
    pub fn expire(&self, now: i64) {
        for (id, h) in self.all() {
            let mut m = h.lock().unwrap();
            if m.state == TxnState::Ongoing
                && m.start_ms >= 0
                && now - m.start_ms > m.timeout_ms as i64
            {
                let fence = m.producer_epoch.saturating_add(1);
                tracing::info!(transactional_id = %id, timeout_ms = m.timeout_ms, "transaction timed out: aborting");
                m.state = TxnState::PrepareAbort;
                self.persist(&mut m);
                self.complete(&mut m, false, fence);
            }
        }
    }

    /// The transaction timeout timer, supervised: a tick that panics is logged (see
    /// [`crate::supervise`]) and the timer goes on.
    pub fn spawn_timer(
        self: &Arc<Self>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        crate::supervise::supervise("transaction timer", shutdown, move |mut shutdown| {
            let me = me.clone();
            async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        _ = tick.tick() => {
                            let me = me.clone();
                            let r = tokio::task::spawn_blocking(move || me.expire(now_ms())).await;
                            crate::supervise::log_join_error("transaction timer", r);
                        }
                    }
                }
            }
        })
    }
}
