//! Which groups this broker coordinates: those of the `__consumer_offsets` partitions it
//! leads. A partition's groups are loaded (its log replayed into the cache and the group
//! map) when this broker becomes its leader, and unloaded when it stops being one; requests
//! for its groups get COORDINATOR_LOAD_IN_PROGRESS meanwhile and NOT_COORDINATOR elsewhere.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kafka_protocol::ResponseError;

use super::classic::ClassicGroup;
use super::journal::{self, Entry, partition_for};
use super::offsets::{Committed, OffsetStore};
use super::{Group, GroupCoordinator, GroupRecord, lock};
use crate::log::Store;

/// The group and offset trees of a data dir written before groups lived in
/// `__consumer_offsets`, moved aside at the first start of this release.
pub struct Legacy {
    groups: sled::Tree,
    offsets: OffsetStore,
    store: std::sync::Arc<Store>,
}

impl Legacy {
    /// Moves the store's group and offset trees aside, once (a marker says it was done);
    /// `None` when there is nothing left to migrate.
    pub fn take_over(store: &std::sync::Arc<Store>) -> anyhow::Result<Option<Legacy>> {
        let marker = store.meta_tree("group_journal")?;
        let groups = store.meta_tree("groups_legacy")?;
        let offsets = store.meta_tree("offsets_legacy")?;
        if marker.get(b"moved")?.is_none() {
            for (from, to) in [("groups", &groups), ("offsets", &offsets)] {
                let t = store.meta_tree(from)?;
                let mut b = sled::Batch::default();
                for kv in t.iter() {
                    let (k, v) = kv?;
                    b.insert(k, v);
                }
                to.apply_batch(b)?;
            }
            marker.insert(b"moved", &[1u8])?;
            store.meta_tree("groups")?.flush()?;
            marker.flush()?;
            groups.flush()?;
            offsets.flush()?;
        }
        // The trees are a cache of what is loaded here; nothing is loaded at start.
        store.meta_tree("groups")?.clear()?;
        store.meta_tree("offsets")?.clear()?;
        if groups.is_empty() && offsets.is_empty() {
            return Ok(None);
        }
        Ok(Some(Legacy {
            groups,
            offsets: OffsetStore::new(offsets),
            store: store.clone(),
        }))
    }

    /// Whether any group to migrate hashes onto partition `p` of `n`.
    fn has_partition(&self, p: i32, n: i32) -> bool {
        self.group_ids().iter().any(|g| partition_for(g, n) == p)
    }

    fn group_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .groups
            .iter()
            .keys()
            .flatten()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect();
        ids.extend(self.offsets.groups());
        ids.sort();
        ids.dedup();
        ids
    }

    /// The entries that recreate `group` in the journal.
    fn entries(&self, group: &str) -> anyhow::Result<Vec<Entry>> {
        let mut out = Vec::new();
        if let Some(v) = self.groups.get(group.as_bytes())? {
            out.push(Entry::Group {
                group: group.to_string(),
                value: Some(bytes::Bytes::copy_from_slice(&v)),
            });
        }
        for (topic, partition, c) in self.offsets.all(group)? {
            out.push(Entry::Offset {
                group: group.to_string(),
                topic,
                partition,
                value: Some(c),
            });
        }
        Ok(out)
    }

    fn forget(&self, group: &str) -> anyhow::Result<()> {
        self.groups.remove(group.as_bytes())?;
        self.offsets.delete_group(group)?;
        Ok(())
    }
}

/// What a partition's records say: the last value of each key.
#[derive(Default)]
struct Replayed {
    groups: BTreeMap<String, Option<bytes::Bytes>>,
    offsets: BTreeMap<(String, String, i32), Option<Committed>>,
    pending: BTreeMap<(String, i64, String, i32), Option<Committed>>,
}

impl Replayed {
    fn apply(&mut self, e: Entry) {
        match e {
            Entry::Group { group, value } => {
                self.groups.insert(group, value);
            }
            Entry::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                self.offsets.insert((group, topic, partition), value);
            }
            Entry::Pending {
                group,
                producer_id,
                topic,
                partition,
                value,
            } => {
                self.pending
                    .insert((group, producer_id, topic, partition), value);
            }
        }
    }
}

impl GroupCoordinator {
    /// Whether the data dir held groups of an earlier release when this broker started.
    pub fn has_legacy(&self) -> bool {
        self.legacy.is_some()
    }

    /// Whether this broker coordinates `group` now: NOT_COORDINATOR when it does not lead the
    /// group's partition, COORDINATOR_LOAD_IN_PROGRESS while it loads it,
    /// COORDINATOR_NOT_AVAILABLE before `__consumer_offsets` exists (on a single node it is
    /// created here). A coordinator without a journal, in unit tests, coordinates
    /// everything.
    pub fn check(&self, group: &str) -> Result<(), ResponseError> {
        if !self.journal.is_enabled() {
            return Ok(());
        }
        if self.journal.partitions() == 0 {
            self.create_here()?;
        }
        self.journal.owned.check(&self.journal, group)
    }

    /// Whether partition `p` of `__consumer_offsets` is loaded here (its groups served).
    pub fn owns_partition(&self, p: i32) -> bool {
        !self.journal.is_enabled() || self.journal.owned.is_loaded(p)
    }

    /// On a single node, creates `__consumer_offsets` and loads it (its partitions are all
    /// led here); COORDINATOR_NOT_AVAILABLE in a cluster, where FindCoordinator creates it.
    pub fn create_here(&self) -> Result<(), ResponseError> {
        let Some(configs) = &self.create_here else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        journal::create_here(
            &self.topics,
            journal::TOPIC,
            self.settings.offsets_topic_num_partitions,
            configs,
        )?;
        self.sync_ownership(|p| self.journal.log(p).map(|l| l.leader_epoch()));
        Ok(())
    }

    /// Brings the loaded partitions in line with the leaderships: `leads(p)` is the leader
    /// epoch in which this broker leads partition `p` (None when it does not). Blocking:
    /// replays logs.
    pub fn sync_ownership(&self, leads: impl Fn(i32) -> Option<i32>) {
        let n = self.journal.partitions();
        self.journal.owned.sync(
            &self.journal,
            leads,
            |p| self.load_partition(p, n),
            |p| self.drop_groups(p, n),
        );
    }

    /// Replays partition `p` into the cache and the group map, then serves its groups.
    fn load_partition(&self, p: i32, n: i32) -> anyhow::Result<()> {
        let started = Instant::now();
        self.drop_groups(p, n);
        let Some(log) = self.journal.log(p) else {
            anyhow::bail!("no partition {p}");
        };
        // Group forms and offsets, the last value of each key.
        let mut r = Replayed::default();
        let mut records = 0u64;
        journal::replay(&log, |e| {
            records += 1;
            r.apply(e);
        })?;
        let Replayed {
            mut groups,
            mut offsets,
            pending,
        } = r;
        self.restore_pending(pending);
        // Groups an earlier release kept in the store: into the journal, unless it already
        // knows them.
        if let Some(legacy) = &self.legacy
            && legacy.has_partition(p, n)
        {
            let known: HashSet<&str> = groups
                .keys()
                .map(String::as_str)
                .chain(offsets.keys().map(|(g, _, _)| g.as_str()))
                .collect();
            let mut migrated = Vec::new();
            for g in legacy.group_ids() {
                if partition_for(&g, n) != p || known.contains(g.as_str()) {
                    continue;
                }
                let entries = legacy.entries(&g)?;
                self.journal
                    .append(&entries)
                    .map_err(|e| anyhow::anyhow!("migrating group {g}: {e:?}"))?;
                migrated.push((g, entries));
            }
            // On disk (segment files and index) before the store forgets them.
            legacy.store.flush_all_blocking()?;
            for (g, entries) in migrated {
                let mut r = Replayed::default();
                for e in entries {
                    r.apply(e);
                }
                groups.extend(r.groups);
                offsets.extend(r.offsets);
                legacy.forget(&g)?;
                tracing::info!(group = %g, partition = p, "group of an earlier release moved into {}", journal::TOPIC);
            }
        }
        // The cache, then the groups.
        let mut by_group: BTreeMap<String, Vec<(String, i32, Committed)>> = BTreeMap::new();
        for ((g, t, part), c) in offsets {
            if let Some(c) = c {
                by_group.entry(g).or_default().push((t, part, c));
            }
        }
        for (g, commits) in &by_group {
            self.offsets.commit(g, commits)?;
        }
        let now = Instant::now();
        let mut loaded = Vec::new();
        for (id, value) in &groups {
            let Some(json) = value else { continue };
            self.tree.insert(id.as_bytes(), json.to_vec())?;
            let group = match serde_json::from_slice::<GroupRecord>(json) {
                Ok(GroupRecord::Classic(r)) => {
                    Group::Classic(ClassicGroup::from_record(id, r, now))
                }
                Ok(GroupRecord::Consumer(g)) => Group::Consumer(g.restored(now)),
                Err(e) => {
                    tracing::warn!(group = %id, error = %e, "cannot restore group; starting it empty");
                    Group::Classic(ClassicGroup::new(id))
                }
            };
            loaded.push((id.clone(), group));
        }
        for g in by_group.keys() {
            if !groups.get(g).is_some_and(Option::is_some) {
                loaded.push((g.clone(), Group::Classic(ClassicGroup::new(g))));
            }
        }
        let count = loaded.len();
        {
            let mut map = lock(&self.groups);
            for (id, g) in loaded {
                map.insert(id, Arc::new(Mutex::new(g)));
            }
        }
        tracing::info!(
            partition = p,
            groups = count,
            records,
            ms = started.elapsed().as_millis() as u64,
            "loaded {} partition",
            journal::TOPIC
        );
        Ok(())
    }

    /// Takes partition `p`'s groups out of the map and the cache.
    fn drop_groups(&self, p: i32, n: i32) {
        self.drop_pending(p, n);
        for (id, h) in self.list() {
            if partition_for(&id, n) != p {
                continue;
            }
            let mut g = lock(&h);
            self.bury(&id, &h, &mut g);
        }
        let cached: Vec<String> = self
            .tree
            .iter()
            .keys()
            .flatten()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .chain(self.offsets.groups())
            .filter(|g| partition_for(g, n) == p)
            .collect();
        for g in cached {
            let _ = self.tree.remove(g.as_bytes());
            let _ = self.offsets.delete_group(&g);
        }
    }
}
