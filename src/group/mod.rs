//! The group coordinator: classic and KIP-848 consumer groups side by side, committed
//! offsets, persistence and the timers (session expiry, rebalance deadlines, offsets
//! retention).
//!
//! Each group sits behind its own mutex; handlers lock one group, act, persist if the group
//! changed, and release the lock before awaiting anything (JoinGroup and SyncGroup wait on
//! oneshot channels that the group fills when the rebalance step completes).

pub mod assignor;
pub mod classic;
mod committing;
pub mod consumer;
pub mod journal;
pub mod offsets;
mod ownership;
pub mod records;
pub mod txn_offsets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use crate::config::GroupSettings;
use crate::log::Store;
use crate::meta::group_configs::GroupOverrides;
use crate::meta::topics::Topics;
use classic::{ClassicGroup, ClassicRecord, ClassicState};
use consumer::ConsumerGroup;
use offsets::OffsetStore;

pub enum Group {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

/// Locks a group (or the group map). A panic while the lock was held must not take every
/// later request on that group, and the timers, down with it: the poison is ignored. No
/// code path that holds a group lock is meant to panic; this is the last line of defence.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Group {
    /// A dead group was deleted: a handler that got its handle before the deletion must not
    /// act on it (its changes would be lost, or resurrect the group on disk).
    pub fn is_dead(&self) -> bool {
        matches!(self, Group::Classic(c) if c.state == ClassicState::Dead)
    }

    fn dead(id: &str) -> Group {
        let mut c = ClassicGroup::new(id);
        c.state = ClassicState::Dead;
        Group::Classic(c)
    }

    /// The group as a classic group for JoinGroup: an empty consumer group is converted in
    /// place (under the caller's lock, so nothing can convert it back before the join acts
    /// on it). A non-empty consumer group cannot take classic members.
    pub fn classic_for_join(&mut self, id: &str) -> Result<&mut ClassicGroup, ResponseError> {
        if let Group::Consumer(c) = self {
            if !c.is_empty() {
                return Err(ResponseError::InconsistentGroupProtocol);
            }
            *self = Group::Classic(ClassicGroup::new(id));
        }
        match self {
            Group::Classic(c) => Ok(c),
            Group::Consumer(_) => Err(ResponseError::InconsistentGroupProtocol),
        }
    }

    /// The group as a KIP-848 consumer group for ConsumerGroupHeartbeat: an empty classic
    /// group is converted in place, under the caller's lock. A non-empty classic group is
    /// not a consumer group.
    pub fn consumer_for_heartbeat(
        &mut self,
        id: &str,
        default_assignor: &str,
    ) -> Result<&mut ConsumerGroup, ResponseError> {
        if let Group::Classic(c) = self {
            if !c.is_empty() {
                return Err(ResponseError::GroupIdNotFound);
            }
            *self = Group::Consumer(ConsumerGroup::new(id, default_assignor));
        }
        match self {
            Group::Consumer(c) => Ok(c),
            Group::Classic(_) => Err(ResponseError::GroupIdNotFound),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Group::Classic(g) => g.is_empty(),
            Group::Consumer(g) => g.is_empty(),
        }
    }

    pub fn state_name(&self) -> &'static str {
        match self {
            Group::Classic(g) => g.state.name(),
            Group::Consumer(g) => g.state_name(),
        }
    }

    /// "classic" or "consumer", as ListGroups v5 reports the type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Group::Classic(_) => "classic",
            Group::Consumer(_) => "consumer",
        }
    }

    pub fn protocol_type(&self) -> String {
        match self {
            Group::Classic(g) => g.protocol_type.clone().unwrap_or_default(),
            Group::Consumer(_) => "consumer".to_string(),
        }
    }

    /// Who may commit offsets: anyone into an empty group (simple consumers, admin tools);
    /// otherwise only a current member at the current generation / member epoch.
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_or_epoch: i32,
    ) -> Result<(), ResponseError> {
        if generation_or_epoch < 0 && member_id.is_empty() {
            return if self.is_empty() {
                Ok(())
            } else {
                Err(ResponseError::UnknownMemberId)
            };
        }
        match self {
            Group::Classic(g) => {
                g.validate_offset_commit(member_id, instance_id, generation_or_epoch)
            }
            Group::Consumer(g) => g.validate_member_epoch(member_id, generation_or_epoch),
        }
    }

    fn dirty(&mut self) -> &mut bool {
        match self {
            Group::Classic(g) => &mut g.dirty,
            Group::Consumer(g) => &mut g.dirty,
        }
    }

    fn empty_since_ms(&self) -> Option<i64> {
        match self {
            Group::Classic(g) => g.empty_since_ms,
            Group::Consumer(g) => g.empty_since_ms,
        }
    }
}

#[derive(Deserialize)]
enum GroupRecord {
    Classic(ClassicRecord),
    Consumer(ConsumerGroup),
}

/// The same encoding as [`GroupRecord`], written without moving the group out of its lock.
#[derive(Serialize)]
enum GroupRecordRef<'a> {
    Classic(ClassicRecord),
    Consumer(&'a ConsumerGroup),
}

pub type GroupHandle = Arc<Mutex<Group>>;

/// The answer to a request whose group state or committed offsets could not be made
/// durable. Kafka's group coordinator (4.x, and the old GroupMetadataManager before it) maps
/// a KAFKA_STORAGE_ERROR from appending to its `__consumer_offsets` partition to
/// NOT_COORDINATOR (COORDINATOR_NOT_AVAILABLE is for a missing partition or too few
/// replicas, UNKNOWN_SERVER_ERROR for oversized records). Clients treat NOT_COORDINATOR as
/// retriable: they look the coordinator up again and retry, where KAFKA_STORAGE_ERROR would
/// be an unexpected, fatal error for an OffsetCommit or a heartbeat.
pub const PERSIST_FAILED: ResponseError = ResponseError::NotCoordinator;

/// Makes what a request changed in `group` durable before it is answered: the records the
/// coordinator appended to the group's `__consumer_offsets` partition are on disk (segment
/// files and index, when the request wrote), then on every ISR member (acks=all), within
/// `offsets.commit.timeout.ms`. The replication wait also covers a request that wrote
/// nothing: a retry must not be answered before what its first attempt wrote is replicated.
pub async fn durable(
    broker: &crate::Broker,
    group: &str,
    wrote: bool,
) -> Result<(), ResponseError> {
    if wrote {
        broker.store.flush_all_after_write().await.map_err(|e| {
            tracing::error!(group, error = %e, "cannot flush group metadata");
            PERSIST_FAILED
        })?;
    }
    broker
        .groups
        .journal
        .replicated_after(
            group,
            broker.groups.settings.offsets_commit_timeout_ms,
            wrote,
        )
        .await
}

pub struct GroupCoordinator {
    pub settings: GroupSettings,
    /// Group configs (KIP-848) that change the broker's settings for one group.
    overrides: std::sync::RwLock<HashMap<String, GroupOverrides>>,
    groups: Mutex<HashMap<String, GroupHandle>>,
    /// Committed offsets of the groups loaded here (a cache of the journal).
    pub offsets: OffsetStore,
    /// Persisted group forms of the groups loaded here (a cache of the journal).
    tree: sled::Tree,
    pub topics: Arc<Topics>,
    /// Where every change goes first: the group's `__consumer_offsets` partition.
    pub journal: journal::Journal,
    /// Groups and offsets a data dir of an earlier release kept in the store, moved into the
    /// journal as their partitions are loaded here.
    legacy: Option<ownership::Legacy>,
    /// Held while an offset change is appended and cached, so that the journal and the
    /// cache see offset changes in the same order (transactions commit offsets without the
    /// group lock).
    offsets_write: Mutex<()>,
    /// Offsets of open transactions, by group and producer id.
    pending: Mutex<txn_offsets::Pending>,
    /// Taken with `pending` held.
    marker_epochs: Mutex<txn_offsets::MarkerEpochs>,
    /// On a single node: the configs `__consumer_offsets` is created with when a group
    /// request comes before any FindCoordinator (which creates it in a cluster).
    pub create_here: Option<std::collections::BTreeMap<String, String>>,
}

impl GroupCoordinator {
    /// The broker's coordinator: groups live in `__consumer_offsets` and are loaded as this
    /// broker becomes the leader of their partitions ([`Self::sync_ownership`]). The store's
    /// group and offset trees are only a cache of the loaded partitions: emptied at start.
    /// What a data dir of an earlier release kept there (the only copy) is moved aside once
    /// and written to the journal when its partition is loaded.
    pub fn open(
        store: &Arc<Store>,
        topics: Arc<Topics>,
        settings: GroupSettings,
    ) -> anyhow::Result<Self> {
        let legacy = ownership::Legacy::take_over(store)?;
        let mut me = Self::load(store, topics.clone(), settings)?;
        lock(&me.groups).clear();
        me.journal = journal::Journal::new(topics, journal::TOPIC);
        me.legacy = legacy;
        Ok(me)
    }

    /// Restores groups (stable membership, epochs, assignments) and offsets from the store,
    /// with no journal: the coordinator on its own, for unit tests.
    pub fn load(
        store: &Store,
        topics: Arc<Topics>,
        settings: GroupSettings,
    ) -> anyhow::Result<Self> {
        let tree = store.meta_tree("groups")?;
        let offsets = OffsetStore::new(store.meta_tree("offsets")?);
        let now = Instant::now();
        let mut groups = HashMap::new();
        for kv in tree.iter() {
            let (k, v) = kv?;
            let id = String::from_utf8_lossy(&k).into_owned();
            let group = match serde_json::from_slice::<GroupRecord>(&v) {
                Ok(GroupRecord::Classic(r)) => {
                    Group::Classic(ClassicGroup::from_record(&id, r, now))
                }
                Ok(GroupRecord::Consumer(g)) => Group::Consumer(g.restored(now)),
                Err(e) => {
                    tracing::warn!(group = %id, error = %e, "cannot restore group; starting it empty");
                    Group::Classic(ClassicGroup::new(&id))
                }
            };
            groups.insert(id, Arc::new(Mutex::new(group)));
        }
        // Groups that only ever committed offsets (simple consumers, admin tools) exist too.
        for id in offsets.groups() {
            groups
                .entry(id.clone())
                .or_insert_with(|| Arc::new(Mutex::new(Group::Classic(ClassicGroup::new(&id)))));
        }
        if !groups.is_empty() {
            tracing::info!(groups = groups.len(), "restored consumer groups");
        }
        Ok(GroupCoordinator {
            settings,
            overrides: Default::default(),
            groups: Mutex::new(groups),
            offsets,
            tree,
            topics,
            journal: journal::Journal::default(),
            legacy: None,
            offsets_write: Mutex::default(),
            pending: Mutex::default(),
            marker_epochs: Mutex::default(),
            create_here: None,
        })
    }

    /// Records a group's configs (from AlterConfigs on its GROUP resource, or at startup).
    pub fn set_overrides(&self, id: &str, o: GroupOverrides) {
        let mut all = self.overrides.write().unwrap();
        if o.is_empty() {
            all.remove(id);
        } else {
            all.insert(id.to_string(), o);
        }
    }

    /// The group settings for group `id`: the broker's, with the group's configs applied.
    pub fn settings_for(&self, id: &str) -> std::borrow::Cow<'_, GroupSettings> {
        let Some(o) = self.overrides.read().unwrap().get(id).copied() else {
            return std::borrow::Cow::Borrowed(&self.settings);
        };
        let mut s = self.settings.clone();
        if let Some(v) = o.consumer_session_timeout_ms {
            s.consumer_session_timeout_ms = v;
        }
        if let Some(v) = o.consumer_heartbeat_interval_ms {
            s.consumer_heartbeat_interval_ms = v;
        }
        std::borrow::Cow::Owned(s)
    }

    pub fn get(&self, id: &str) -> Option<GroupHandle> {
        lock(&self.groups).get(id).cloned()
    }

    /// The default server assignor for new consumer groups.
    pub fn default_assignor(&self) -> String {
        self.settings
            .consumer_assignors
            .first()
            .cloned()
            .unwrap_or_else(|| "uniform".into())
    }

    /// Runs `f` on group `id` under its lock: validate, act and write in one critical
    /// section. With `create`, a missing group is created empty (classic until a
    /// ConsumerGroupHeartbeat converts it); without, a missing group gives `None`. A handle
    /// that a concurrent DeleteGroups (or offsets expiry) killed is never acted on: the group
    /// is looked up again.
    pub fn with_group<R>(
        &self,
        id: &str,
        create: bool,
        f: impl FnOnce(&mut Group) -> R,
    ) -> Option<R> {
        loop {
            let h = if create {
                self.get_or_create_empty(id)
            } else {
                self.get(id)?
            };
            let mut g = lock(&h);
            // A dead group has already left the map (it is removed under its own lock).
            if g.is_dead() {
                continue;
            }
            return Some(f(&mut g));
        }
    }

    /// For simple offset commits: the group, created empty if it does not exist.
    pub fn get_or_create_empty(&self, id: &str) -> GroupHandle {
        lock(&self.groups)
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Group::Classic(ClassicGroup::new(id)))))
            .clone()
    }

    pub fn list(&self) -> Vec<(String, GroupHandle)> {
        let mut v: Vec<(String, GroupHandle)> = lock(&self.groups)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Saves the group if it changed since the last save. Call with the group locked.
    /// Returns whether it wrote (the caller then flushes with [`durable`] before answering);
    /// on failure the group stays dirty, so the next save tries again.
    pub fn persist(&self, id: &str, g: &mut Group) -> Result<bool, ResponseError> {
        if g.is_dead() || !std::mem::take(g.dirty()) {
            return Ok(false);
        }
        let rec = match g {
            Group::Classic(c) => serde_json::to_vec(&GroupRecordRef::Classic(c.to_record())),
            Group::Consumer(c) => serde_json::to_vec(&GroupRecordRef::Consumer(c)),
        };
        let bytes = match rec {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(group = id, error = %e, "cannot encode group");
                *g.dirty() = true;
                return Err(PERSIST_FAILED);
            }
        };
        let entry = journal::Entry::Group {
            group: id.to_string(),
            value: Some(bytes.clone().into()),
        };
        if let Err(e) = self.journal.append(&[entry]) {
            *g.dirty() = true;
            return Err(e);
        }
        self.tree
            .insert(id.as_bytes(), bytes)
            .map(|_| true)
            .map_err(|e| {
                tracing::error!(group = id, error = %e, "cannot cache group");
                PERSIST_FAILED
            })
    }

    /// DeleteGroups: only empty groups; their offsets go too.
    pub fn delete(&self, id: &str) -> Result<(), ResponseError> {
        let h = self.get(id).ok_or(ResponseError::GroupIdNotFound)?;
        let mut g = lock(&h);
        if g.is_dead() {
            return Err(ResponseError::GroupIdNotFound);
        }
        if !g.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        let failed = |e: sled::Error| {
            tracing::error!(group = id, error = %e, "cannot delete group");
            PERSIST_FAILED
        };
        // Lock order: group, pending, offsets_write; no transaction's offsets may land
        // between the read and the tombstones.
        let mut pending = lock(&self.pending);
        let _order = lock(&self.offsets_write);
        let mut entries: Vec<journal::Entry> = self
            .offsets
            .all(id)
            .map_err(failed)?
            .into_iter()
            .map(|(topic, partition, _)| journal::Entry::Offset {
                group: id.to_string(),
                topic,
                partition,
                value: None,
            })
            .collect();
        for (pid, offsets) in pending.get(id).into_iter().flatten() {
            for (topic, partition) in offsets.keys() {
                entries.push(journal::Entry::Pending {
                    group: id.to_string(),
                    producer_id: *pid,
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                });
            }
        }
        entries.push(journal::Entry::Group {
            group: id.to_string(),
            value: None,
        });
        self.journal.append(&entries)?;
        pending.remove(id);
        self.tree.remove(id.as_bytes()).map_err(failed)?;
        self.offsets.delete_group(id).map_err(failed)?;
        self.bury(id, &h, &mut g);
        tracing::info!(group = id, "deleted group");
        Ok(())
    }

    /// Marks a group dead and takes it out of the map, with its lock held (lock order: a
    /// group, then the map; nothing takes a group lock while holding the map's).
    fn bury(&self, id: &str, h: &GroupHandle, g: &mut Group) {
        *g = Group::dead(id);
        let mut map = lock(&self.groups);
        if map.get(id).is_some_and(|x| Arc::ptr_eq(x, h)) {
            map.remove(id);
        }
    }

    /// One round of timers over every group.
    pub fn tick(&self, now: Instant) {
        for (id, h) in self.list() {
            let mut g = lock(&h);
            match &mut *g {
                Group::Classic(c) if c.state == ClassicState::Dead => continue,
                Group::Classic(c) => c.tick(now, &self.settings),
                Group::Consumer(c) => c.tick(now, &self.settings_for(&id)),
            }
            // A failure is logged and retried on the next tick; nobody is waiting for it.
            let _ = self.persist(&id, &mut g);
        }
    }

    /// Runs the timers until shutdown. A tick that panics is logged and the timers go on
    /// (see [`crate::supervise`]).
    pub fn spawn_timers(
        self: &Arc<Self>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        crate::supervise::supervise("group timers", shutdown, move |sd| {
            me.clone().run_timers(sd)
        })
    }

    async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let check_every =
            Duration::from_millis(self.settings.offsets_retention_check_interval_ms.max(1) as u64);
        let mut last_check = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.tick(now);
                    if now.duration_since(last_check) >= check_every {
                        last_check = now;
                        self.expire_offsets(crate::handlers::now_ms());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::offsets::Committed;

    #[test]
    fn offsets_expire_after_the_group_has_been_empty_for_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let topics =
            Arc::new(Topics::load(Arc::new(Store::open(&dir.path().join("t")).unwrap())).unwrap());
        let settings = crate::Config::default().group.clone();
        let retention = settings.offsets_retention_ms;
        let coord = GroupCoordinator::load(&store, topics, settings).unwrap();
        let now = crate::handlers::now_ms();
        let c = |ts| Committed {
            offset: 1,
            leader_epoch: 0,
            commit_timestamp: ts,
            metadata: String::new(),
        };
        coord.get_or_create_empty("old");
        coord.get_or_create_empty("fresh");
        coord
            .offsets
            .commit("old", &[("t".into(), 0, c(now - 2 * retention))])
            .unwrap();
        coord
            .offsets
            .commit("fresh", &[("t".into(), 0, c(now + retention / 2))])
            .unwrap();
        // Both groups became empty when created (now), so nothing expires yet...
        coord.expire_offsets(now);
        assert_eq!(coord.offsets.all("old").unwrap().len(), 1);
        // ...and a retention period later the old commit is gone; the later one stays until
        // a retention period after its own commit.
        coord.expire_offsets(now + retention + 1000);
        assert!(coord.offsets.all("old").unwrap().is_empty());
        assert!(
            coord.get("old").is_none(),
            "an empty group without offsets is removed"
        );
        assert_eq!(coord.offsets.all("fresh").unwrap().len(), 1);
        coord.expire_offsets(now + 2 * retention + 2);
        assert!(coord.offsets.all("fresh").unwrap().is_empty());
    }
}
