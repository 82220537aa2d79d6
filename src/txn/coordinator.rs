//! The transaction coordinator: one state machine per `transactional.id`, persisted in the
//! store's `meta/txn` tree.
//!
//! ```text
//!   Empty ──AddPartitions/AddOffsets/produce──> Ongoing ──EndTxn(commit)──> PrepareCommit ──markers──> CompleteCommit
//!     ^                                            │      ──EndTxn(abort)───> PrepareAbort  ──markers──> CompleteAbort
//!     └──────────── InitProducerId (epoch bump) ───┴── timeout / new instance: abort with a bumped epoch (fencing)
//! ```
//! What survives a crash at each step: every transition is persisted before it takes effect
//! (a failed write leaves the state as it was and answers a retriable error). A crash in
//! Ongoing leaves the transaction open; it is aborted by its timeout or by the next
//! InitProducerId. A crash in PrepareCommit/PrepareAbort is finished at startup, and
//! markers that cannot be written are retried by the timer while the state is Prepare*:
//! each partition writes a marker only if it still has the producer's transaction open or
//! has not yet seen the marker's epoch, so none is written twice.
//!
//! Storage, the clock and the partitions are behind [`TxnBackend`], so the transitions are
//! unit-tested with an in-memory backend (`tests.rs`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use super::backend::{BrokerBackend, TxnBackend};
use crate::group::GroupCoordinator;
use crate::group::offsets::Committed;
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

fn no_producer() -> i64 {
    -1
}

fn no_epoch() -> i16 {
    -1
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
    /// The producer id this one replaced when its epochs ran out, and the epoch the client
    /// ended its last transaction with: a retried EndTxn names them (KIP-890).
    #[serde(default = "no_producer")]
    pub prev_producer_id: i64,
    #[serde(default = "no_epoch")]
    pub prev_producer_epoch: i16,
    /// Set while a transaction that exhausted the epochs completes: the producer id that
    /// continues with epoch 0 once the markers are written.
    #[serde(default = "no_producer")]
    pub next_producer_id: i64,
}

impl TxnMeta {
    fn new(id: &str, producer_id: i64, timeout_ms: i32, now: i64) -> Self {
        TxnMeta {
            transactional_id: id.to_string(),
            producer_id,
            producer_epoch: -1,
            state: TxnState::Empty,
            timeout_ms,
            start_ms: -1,
            last_update_ms: now,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            pending_offsets: Vec::new(),
            prev_producer_id: -1,
            prev_producer_epoch: -1,
            next_producer_id: -1,
        }
    }
}

/// Epochs from here on are exhausted: the next bump moves to a new producer id. The last
/// usable epoch is kept free for the marker that fences or ends the last transaction.
const EXHAUSTED: i16 = i16::MAX - 1;

pub struct TxnCoordinator {
    backend: Box<dyn TxnBackend>,
    txns: Mutex<HashMap<String, Arc<Mutex<TxnMeta>>>>,
    /// `__transaction_state` (disabled in unit tests: everything is coordinated here).
    journal: Arc<crate::group::journal::Journal>,
    /// On a single node, how `__transaction_state` is created on first use.
    pub create_here: Option<loading::CreateHere>,
    pub max_timeout_ms: i64,
    /// `transactional.id.expiration.ms`: an id with no transaction activity for this long is
    /// forgotten.
    pub id_expiration_ms: i64,
}

/// Locks a transactional id's state; a panic elsewhere while it was held leaves the state as
/// it was persisted last, so the lock is taken over rather than propagated.
fn lock(h: &Mutex<TxnMeta>) -> std::sync::MutexGuard<'_, TxnMeta> {
    h.lock().unwrap_or_else(|p| p.into_inner())
}

fn fenced_or_ok(meta: &TxnMeta, pid: i64, epoch: i16) -> Result<(), ResponseError> {
    if pid != meta.producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    // Any other epoch than the current one is fenced, as in Kafka's coordinator.
    if epoch != meta.producer_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    Ok(())
}

impl TxnCoordinator {
    /// The broker's coordinator: state in `__transaction_state`, loaded as this broker
    /// becomes the leader of its partitions ([`Self::sync_ownership`]). State a data dir of
    /// an earlier release kept in the store (`meta/txn`) is loaded at start, served while
    /// this broker coordinates it and written to the topic with its next transition.
    pub fn load(
        store: Arc<Store>,
        topics: Arc<Topics>,
        groups: Arc<GroupCoordinator>,
        pids: Arc<super::producer_ids::ProducerIds>,
        max_timeout_ms: i64,
        id_expiration_ms: i64,
    ) -> anyhow::Result<Self> {
        let journal = Arc::new(crate::group::journal::Journal::new(
            topics.clone(),
            loading::TOPIC,
        ));
        let backend = BrokerBackend {
            tree: store.meta_tree("txn")?,
            store,
            topics,
            groups,
            pids,
            journal: journal.clone(),
            broker: Default::default(),
        };
        let mut me = Self::with_backend(Box::new(backend), max_timeout_ms, id_expiration_ms)?;
        me.journal = journal;
        Ok(me)
    }

    /// Restores every transactional id from `backend` and finishes what was being committed
    /// or aborted when the broker stopped (markers are retried later if they fail now).
    pub fn with_backend(
        backend: Box<dyn TxnBackend>,
        max_timeout_ms: i64,
        id_expiration_ms: i64,
    ) -> anyhow::Result<Self> {
        let mut txns = HashMap::new();
        for meta in backend.load()? {
            txns.insert(meta.transactional_id.clone(), Arc::new(Mutex::new(meta)));
        }
        let me = TxnCoordinator {
            backend,
            txns: Mutex::new(txns),
            journal: Default::default(),
            create_here: None,
            max_timeout_ms,
            id_expiration_ms,
        };
        for (id, h) in me.all() {
            let mut m = lock(&h);
            if Self::preparing(m.state) {
                tracing::info!(transactional_id = %id, state = m.state.name(), "completing a transaction interrupted by the restart");
                me.complete(&mut m);
            }
        }
        Ok(me)
    }

    fn preparing(s: TxnState) -> bool {
        matches!(
            s,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }

    pub fn all(&self) -> Vec<(String, Arc<Mutex<TxnMeta>>)> {
        let mut v: Vec<_> = self
            .txns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn get(&self, id: &str) -> Option<Arc<Mutex<TxnMeta>>> {
        self.txns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Persists `next` and only then makes it the state: a failed write leaves the id as it
    /// was, and the client gets a retriable error instead of a state that a restart forgets.
    fn transition(&self, m: &mut TxnMeta, mut next: TxnMeta) -> Result<(), ResponseError> {
        next.last_update_ms = self.backend.now_ms();
        if let Err(e) = self.backend.persist(&next) {
            tracing::error!(transactional_id = %next.transactional_id, error = %e, "cannot persist transaction state");
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        *m = next;
        Ok(())
    }

    fn new_producer_id(&self) -> Result<i64, ResponseError> {
        self.backend.new_producer_id().map_err(|e| {
            tracing::error!(error = %e, "cannot allocate a producer id");
            ResponseError::CoordinatorNotAvailable
        })
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
            let mut map = self.txns.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(id) {
                Some(h) => h.clone(),
                None => {
                    let pid = self.new_producer_id()?;
                    let meta = TxnMeta::new(id, pid, timeout_ms, self.backend.now_ms());
                    let h = Arc::new(Mutex::new(meta));
                    map.insert(id.to_string(), h.clone());
                    h
                }
            }
        };
        let mut m = lock(&handle);
        // KIP-360: a producer re-initialising names its current id and epoch.
        if req_pid >= 0 && (req_pid != m.producer_id || req_epoch != m.producer_epoch) {
            return Err(if req_pid != m.producer_id {
                ResponseError::InvalidProducerIdMapping
            } else {
                ResponseError::ProducerFenced
            });
        }
        match m.state {
            TxnState::Ongoing => {
                // The previous instance left a transaction open: abort it under a new epoch
                // so its late writes are fenced.
                tracing::info!(
                    transactional_id = id,
                    "aborting the previous instance's transaction"
                );
                self.fence_and_abort(&mut m)?;
            }
            s if Self::preparing(s) => {
                self.complete(&mut m);
            }
            _ => {}
        }
        if Self::preparing(m.state) {
            // Markers could not all be written yet; the timer retries them.
            return Err(ResponseError::ConcurrentTransactions);
        }
        let mut next = m.clone();
        if next.producer_epoch >= EXHAUSTED {
            // Epochs are exhausted: continue under a fresh producer id.
            next.prev_producer_id = next.producer_id;
            next.producer_id = self.new_producer_id()?;
            next.producer_epoch = 0;
        } else {
            next.producer_epoch += 1;
        }
        next.timeout_ms = timeout_ms;
        next.state = TxnState::Empty;
        next.start_ms = -1;
        next.partitions.clear();
        next.groups.clear();
        next.pending_offsets.clear();
        self.transition(&mut m, next)?;
        Ok((m.producer_id, m.producer_epoch))
    }

    /// Aborts the open transaction under the next epoch (timeout, or a new instance), so
    /// that every partition of it fences the old epoch.
    fn fence_and_abort(&self, m: &mut TxnMeta) -> Result<(), ResponseError> {
        let mut next = m.clone();
        // Working epochs stay below EXHAUSTED, so the fencing epoch always exists.
        next.producer_epoch = m.producer_epoch.saturating_add(1);
        next.state = TxnState::PrepareAbort;
        self.transition(m, next)?;
        self.complete(m);
        Ok(())
    }

    fn begin(&self, m: &mut TxnMeta) -> Result<TxnMeta, ResponseError> {
        let mut next = m.clone();
        match m.state {
            TxnState::Ongoing => {}
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                next.state = TxnState::Ongoing;
                next.start_ms = self.backend.now_ms();
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ResponseError::ConcurrentTransactions);
            }
            TxnState::Dead => return Err(ResponseError::InvalidTxnState),
        }
        Ok(next)
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
        let mut m = lock(&h);
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
        let mut next = self.begin(&mut m)?;
        next.partitions.extend(parts.iter().cloned());
        self.transition(&mut m, next)
    }

    /// AddOffsetsToTxn: the group's offsets become part of the transaction; so does the
    /// group's partition of `__consumer_offsets` (`offsets_partition`), which gets a marker
    /// when the transaction ends, as in Kafka.
    pub fn add_offsets(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        group: &str,
        offsets_partition: Option<i32>,
    ) -> Result<(), ResponseError> {
        let h = self.locked(id)?;
        let mut m = lock(&h);
        fenced_or_ok(&m, pid, epoch)?;
        let mut next = self.begin(&mut m)?;
        next.groups.insert(group.to_string());
        if let Some(p) = offsets_partition {
            next.partitions
                .insert((crate::group::journal::TOPIC.to_string(), p));
        }
        self.transition(&mut m, next)
    }

    /// Offsets held in the transaction's own state until it commits, as releases before
    /// offsets moved to the group's coordinator staged them (TxnOffsetCommit now holds them
    /// in `__consumer_offsets`, [`crate::group::GroupCoordinator::stage_txn_offsets`]); a
    /// transaction of such a release still completes them. Tests stage them to cover that.
    #[cfg(test)]
    pub fn stage_offsets(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        offsets: Vec<PendingOffset>,
    ) -> Result<(), ResponseError> {
        let h = self.locked(id)?;
        let mut m = lock(&h);
        fenced_or_ok(&m, pid, epoch)?;
        let mut next = self.begin(&mut m)?;
        for o in offsets {
            next.groups.insert(o.group.clone());
            next.pending_offsets.retain(|p| {
                !(p.group == o.group && p.topic == o.topic && p.partition == o.partition)
            });
            next.pending_offsets.push(o);
        }
        self.transition(&mut m, next)
    }

    /// Checks a transactional produce: the producer must be the current instance and the
    /// partition part of its transaction. `implicit_add` (KIP-890 clients) adds it instead.
    /// The caller then appends only if the partition's verification guard, taken before
    /// this check, survived (no marker was written in between). Ok(true) when the partition
    /// was added (the caller makes that durable before acknowledging).
    pub fn check_produce(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
        implicit_add: bool,
    ) -> Result<bool, ResponseError> {
        let h = self.locked(id)?;
        let mut m = lock(&h);
        if pid != m.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch < m.producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        let key = (topic.to_string(), partition);
        if m.state == TxnState::Ongoing && m.partitions.contains(&key) {
            return Ok(false);
        }
        if !implicit_add {
            return Err(ResponseError::InvalidTxnState);
        }
        let mut next = self.begin(&mut m)?;
        next.partitions.insert(key);
        self.transition(&mut m, next).map(|()| true)
    }

    /// EndTxn. With `bump_epoch` (EndTxn v5, KIP-890) every commit/abort moves the producer
    /// to a new epoch, written into the markers and returned to the client; a retry of a
    /// completed EndTxn then arrives with the previous epoch. When the epochs run out the
    /// producer continues under a new producer id with epoch 0, as Kafka does. Without
    /// `bump_epoch` (v0-4) the epoch must match exactly and markers carry it unchanged.
    ///
    /// The answer comes once the outcome is persisted (PrepareCommit/PrepareAbort); markers
    /// that cannot be written now are retried by the timer, and the id answers
    /// CONCURRENT_TRANSACTIONS until they are.
    pub fn end_txn(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        bump_epoch: bool,
    ) -> Result<(i64, i16), ResponseError> {
        let h = self.locked(id)?;
        let mut m = lock(&h);
        let done = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        if pid != m.producer_id {
            // A retry of the EndTxn that moved the producer to a new id.
            if bump_epoch
                && pid == m.prev_producer_id
                && epoch == m.prev_producer_epoch
                && m.state == done
            {
                return Ok((m.producer_id, m.producer_epoch));
            }
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        let current = m.producer_epoch;
        if Self::preparing(m.state) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        let previous = current.checked_sub(1);
        let is_retry = if bump_epoch {
            Some(epoch) == previous
        } else {
            epoch == current
        };
        if epoch != current && !(bump_epoch && Some(epoch) == previous) {
            return Err(ResponseError::ProducerFenced);
        }
        if epoch == current && m.state == TxnState::Ongoing {
            let mut next = m.clone();
            next.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            next.prev_producer_epoch = epoch;
            if bump_epoch {
                // Working epochs stay below EXHAUSTED, so epoch + 1 exists.
                next.producer_epoch = epoch.saturating_add(1);
                if epoch >= EXHAUSTED {
                    next.next_producer_id = self.new_producer_id()?;
                }
            }
            self.transition(&mut m, next)?;
            let answer = if m.next_producer_id >= 0 {
                (m.next_producer_id, 0)
            } else {
                (m.producer_id, m.producer_epoch)
            };
            self.complete(&mut m);
            return Ok(answer);
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
            let mut next = m.clone();
            next.prev_producer_epoch = epoch;
            if current >= EXHAUSTED {
                next.prev_producer_id = next.producer_id;
                next.producer_id = self.new_producer_id()?;
                next.producer_epoch = 0;
            } else {
                next.producer_epoch = current + 1;
            }
            next.state = TxnState::CompleteAbort;
            self.transition(&mut m, next)?;
            return Ok((m.producer_id, m.producer_epoch));
        }
        // An older epoch is only a retry candidate against a completed transaction; against
        // an empty or open one (a zombie of the previous instance) it is fenced.
        if epoch != current && matches!(m.state, TxnState::Empty | TxnState::Ongoing) {
            return Err(ResponseError::ProducerFenced);
        }
        Err(ResponseError::InvalidTxnState)
    }

    /// Finishes a prepared transaction: writes its markers (with the epoch the Prepare state
    /// recorded, fencing older ones), applies or drops staged offsets, and records the
    /// outcome. If a marker or the offsets cannot be written, the state stays Prepare* and
    /// the timer retries; markers are idempotent. Returns whether it completed.
    fn complete(&self, m: &mut TxnMeta) -> bool {
        // The outcome must survive this coordinator before any partition learns it: a new
        // coordinator that loaded the transaction as Ongoing could abort what some
        // partitions already committed.
        if let Err(e) = self.backend.replicated(&m.transactional_id) {
            tracing::warn!(transactional_id = %m.transactional_id, error = %e, "transaction outcome not replicated yet; markers wait");
            return false;
        }
        let commit = m.state == TxnState::PrepareCommit;
        let epoch = m.producer_epoch;
        let mut failed = 0usize;
        for (topic, partition) in &m.partitions {
            if let Err(e) =
                self.backend
                    .write_marker(topic, *partition, m.producer_id, epoch, commit)
            {
                failed += 1;
                tracing::warn!(transactional_id = %m.transactional_id, topic = %topic, partition, error = %e, "cannot write transaction marker; will retry");
            }
        }
        if failed > 0 {
            return false;
        }
        let now = self.backend.now_ms();
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
                if let Err(e) = self.backend.commit_offsets(group, &offsets) {
                    tracing::warn!(group, error = %e, "cannot commit transactional offsets; will retry");
                    return false;
                }
            }
        }
        let mut next = m.clone();
        next.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        if next.next_producer_id >= 0 {
            next.prev_producer_id = next.producer_id;
            next.producer_id = next.next_producer_id;
            next.producer_epoch = 0;
            next.next_producer_id = -1;
        }
        next.partitions.clear();
        next.groups.clear();
        next.pending_offsets.clear();
        // The start time stays, as Kafka reports it for a completed transaction.

        if self.transition(m, next).is_err() {
            return false;
        }
        tracing::debug!(transactional_id = %m.transactional_id, commit, epoch, "transaction completed");
        true
    }

    /// The timer's work: aborts transactions open longer than their timeout (fencing the
    /// producer), retries markers of prepared transactions, and forgets transactional ids
    /// idle for `transactional.id.expiration.ms`.
    pub fn expire(&self) {
        let now = self.backend.now_ms();
        for (id, h) in self.all() {
            let mut m = lock(&h);
            if m.state == TxnState::Ongoing
                && m.start_ms >= 0
                && now - m.start_ms > m.timeout_ms as i64
            {
                tracing::info!(transactional_id = %id, timeout_ms = m.timeout_ms, "transaction timed out: aborting");
                let _ = self.fence_and_abort(&mut m);
            } else if Self::preparing(m.state) {
                self.complete(&mut m);
            } else if matches!(
                m.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            ) && now - m.last_update_ms > self.id_expiration_ms
            {
                if let Err(e) = self.backend.remove(&id) {
                    tracing::warn!(transactional_id = %id, error = %e, "cannot remove an expired transactional id");
                    continue;
                }
                m.state = TxnState::Dead;
                drop(m);
                self.txns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                tracing::debug!(transactional_id = %id, "transactional id expired");
            }
        }
    }

    /// The number of transactional ids held (tests, soak figures).
    pub fn len(&self) -> usize {
        self.txns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
                            let r = tokio::task::spawn_blocking(move || me.expire()).await;
                            crate::supervise::log_join_error("transaction timer", r);
                        }
                    }
                }
            }
        })
    }
}

mod loading;
pub use loading::{CreateHere, TOPIC, encode as loading_encode};

#[cfg(test)]
mod tests;
