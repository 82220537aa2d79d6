//! The topic registry: names, ids, partition counts and per-topic configs, persisted in the
//! store's `meta/topics` tree and mirrored in memory for lookups on every request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::log::{PartitionLog, Store};
use crate::meta::configs::validate_topic_config;

/// Kafka's longest legal topic name.
pub const MAX_NAME_LEN: usize = 249;

#[derive(Serialize, Deserialize)]
struct TopicRecord {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
    leader_epoch: i32,
}

/// One topic; replaced wholesale (copy-on-write) when its partitions or configs change, so
/// readers never lock.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub configs: BTreeMap<String, String>,
    pub leader_epoch: i32,
    pub partitions: Vec<Arc<PartitionLog>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<PartitionLog>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicError {
    InvalidName(String),
    AlreadyExists(String),
    UnknownTopic,
    InvalidPartitions(String),
    InvalidReplicationFactor(String),
    InvalidConfig(String),
    Storage(String),
    /// An explicit replica assignment that cannot be honoured (cluster).
    InvalidReplicaAssignment(String),
    /// The cluster's controller did not take the change in time (retriable).
    Unavailable(String),
}

/// Kafka's topic name rules: 1-249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    let bad = |why: String| TopicError::InvalidName(why);
    if name.is_empty() {
        return Err(bad("Topic name is illegal, it can't be empty".into()));
    }
    if name == "." || name == ".." {
        return Err(bad("Topic name cannot be \".\" or \"..\"".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad(format!(
            "Topic name is illegal, it can't be longer than {MAX_NAME_LEN} characters, topic name: {name}"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(bad(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

pub struct Topics {
    store: Arc<Store>,
    tree: sled::Tree,
    /// What every request looks topics up in. Its write lock is held only to publish a
    /// topic that is complete, never while partitions are opened or files removed.
    map: RwLock<IndexMap<String, Arc<Topic>>>,
    /// Serialises changes to the registry (create, delete, partitions, configs), which do
    /// their slow part (opening thousands of partition logs) without the map's write lock.
    /// A std mutex: callers on the async runtime go through `spawn_blocking`.
    admin: Mutex<()>,
}

impl Topics {
    pub fn load(store: Arc<Store>) -> anyhow::Result<Self> {
        let tree = store.meta_tree("topics")?;
        let mut map = IndexMap::new();
        for kv in tree.iter() {
            let (_, v) = kv?;
            let rec: TopicRecord = serde_json::from_slice(&v)?;
            let partitions = (0..rec.partitions)
                .map(|p| store.open_partition(rec.id, p, rec.leader_epoch))
                .collect::<anyhow::Result<Vec<_>>>()?;
            map.insert(
                rec.name.clone(),
                Arc::new(Topic {
                    name: rec.name,
                    id: rec.id,
                    configs: rec.configs,
                    leader_epoch: rec.leader_epoch,
                    partitions,
                }),
            );
        }
        Ok(Topics {
            store,
            tree,
            map: RwLock::new(map),
            admin: Mutex::new(()),
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.map.read().unwrap().get(name).cloned()
    }

    pub fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.map
            .read()
            .unwrap()
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<Topic>> {
        self.map.read().unwrap().values().cloned().collect()
    }

    fn persist(&self, t: &Topic) -> Result<(), TopicError> {
        let rec = TopicRecord {
            name: t.name.clone(),
            id: t.id,
            partitions: t.partitions.len() as i32,
            configs: t.configs.clone(),
            leader_epoch: t.leader_epoch,
        };
        let v = serde_json::to_vec(&rec).map_err(|e| TopicError::Storage(e.to_string()))?;
        self.tree
            .insert(t.name.as_bytes(), v)
            .map_err(|e| TopicError::Storage(e.to_string()))?;
        Ok(())
    }

    /// Validates and (unless `validate_only`) creates a topic. Returns the topic as it is or
    /// would be.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        self.create_inner(name, None, partitions, configs, validate_only)
    }

    /// Creates a topic the cluster's metadata already holds, under its id there.
    pub fn create_with_id(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        self.create_inner(name, Some(id), partitions, configs, false)
    }

    fn create_inner(
        &self,
        name: &str,
        id: Option<Uuid>,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        validate_name(name)?;
        if partitions <= 0 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions was set to an invalid non-positive value: {partitions}"
            )));
        }
        if partitions > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {partitions} exceeds the limit of 100000"
            )));
        }
        for (k, v) in &configs {
            validate_topic_config(k, Some(v)).map_err(TopicError::InvalidConfig)?;
        }
        let _admin = self.admin();
        {
            let map = self.map.read().unwrap();
            if map.contains_key(name) {
                return Err(TopicError::AlreadyExists(format!(
                    "Topic '{name}' already exists."
                )));
            }
            // Kafka refuses names that differ only by '.' vs '_' because metric names collide.
            let collides = |n: &str| n.replace('.', "_") == name.replace('.', "_");
            if let Some(other) = map.keys().find(|n| collides(n)) {
                return Err(TopicError::InvalidName(format!(
                    "Topic '{name}' collides with existing topic: {other}"
                )));
            }
        }
        let id = id.unwrap_or_else(Uuid::new_v4);
        if validate_only {
            return Ok(Arc::new(Topic {
                name: name.to_string(),
                id,
                configs,
                leader_epoch: 0,
                partitions: Vec::new(),
            }));
        }
        // Every partition is opened before the topic is published: no request sees part of
        // it, and lookups are not blocked meanwhile (the admin lock keeps out other changes).
        let parts = self.open_partitions(id, 0..partitions, 0)?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            configs,
            leader_epoch: 0,
            partitions: parts,
        });
        if let Err(e) = self.persist(&topic) {
            drop(topic);
            self.drop_partitions(id, 0..partitions);
            return Err(e);
        }
        self.map
            .write()
            .unwrap()
            .insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    fn admin(&self) -> std::sync::MutexGuard<'_, ()> {
        self.admin.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens (creates) partitions `range` of topic `id`; on failure removes what it opened.
    fn open_partitions(
        &self,
        id: Uuid,
        range: std::ops::Range<i32>,
        leader_epoch: i32,
    ) -> Result<Vec<Arc<PartitionLog>>, TopicError> {
        let mut parts = Vec::with_capacity(range.len());
        for p in range.clone() {
            match self.store.open_partition(id, p, leader_epoch) {
                Ok(log) => parts.push(log),
                Err(e) => {
                    drop(parts);
                    self.drop_partitions(id, range);
                    return Err(TopicError::Storage(e.to_string()));
                }
            }
        }
        Ok(parts)
    }

    /// Removes the data of partitions `range` of topic `id` (best effort, logged).
    fn drop_partitions(&self, id: Uuid, range: std::ops::Range<i32>) {
        for p in range {
            if let Err(e) = self.store.drop_partition(id, p) {
                tracing::warn!(topic_id = %id, partition = p, error = %e, "dropping partition data failed");
            }
        }
    }

    pub fn delete(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin();
        let topic = {
            // The record and the map entry go together, or a concurrent `set_configs`
            // could write the record back.
            let mut map = self.map.write().unwrap();
            let topic = map.get(name).cloned().ok_or(TopicError::UnknownTopic)?;
            self.tree
                .remove(name.as_bytes())
                .map_err(|e| TopicError::Storage(e.to_string()))?;
            map.shift_remove(name);
            topic
        };
        self.drop_partitions(topic.id, 0..topic.partitions.len() as i32);
        Ok(topic)
    }

    /// Replaces a topic's config overrides (AlterConfigs). The caller has validated them.
    pub fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        // Quick (one tree write), so under the map's lock rather than the admin lock: a
        // concurrent `add_partitions` takes the configs from the map when it publishes.
        let mut map = self.map.write().unwrap();
        let topic = map.get(name).cloned().ok_or(TopicError::UnknownTopic)?;
        let updated = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            configs,
            leader_epoch: topic.leader_epoch,
            partitions: topic.partitions.clone(),
        });
        self.persist(&updated)?;
        map.insert(name.to_string(), updated);
        Ok(())
    }

    /// Grows a topic to `count` partitions (CreatePartitions); shrinking is not allowed.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.admin();
        let topic = self.get(name).ok_or(TopicError::UnknownTopic)?;
        let current = topic.partitions.len() as i32;
        if count < current {
            return Err(TopicError::InvalidPartitions(format!(
                "The topic {name} currently has {current} partition(s); {count} would not be an increase."
            )));
        }
        if count == current {
            return Err(TopicError::InvalidPartitions(format!(
                "Topic already has {current} partition(s)."
            )));
        }
        if count > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {count} exceeds the limit of 100000"
            )));
        }
        if validate_only {
            return Ok(());
        }
        // The new partitions are opened before the grown topic replaces the old one.
        let mut parts = topic.partitions.clone();
        parts.extend(self.open_partitions(topic.id, current..count, topic.leader_epoch)?);
        let mut map = self.map.write().unwrap();
        // Configs as they are now: `set_configs` does not wait for the admin lock.
        let configs = map
            .get(name)
            .map_or_else(|| topic.configs.clone(), |t| t.configs.clone());
        let updated = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            configs,
            leader_epoch: topic.leader_epoch,
            partitions: parts,
        });
        if let Err(e) = self.persist(&updated) {
            drop((map, updated));
            self.drop_partitions(topic.id, current..count);
            return Err(e);
        }
        map.insert(name.to_string(), updated);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("orders-v1.x_y").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            assert!(
                matches!(validate_name(bad), Err(TopicError::InvalidName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn create_persist_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let topics = Topics::load(store.clone()).unwrap();
        let t = topics.create("a.b", 3, BTreeMap::new(), false).unwrap();
        assert!(matches!(
            topics.create("a.b", 1, BTreeMap::new(), false),
            Err(TopicError::AlreadyExists(_))
        ));
        assert!(matches!(
            topics.create("a_b", 1, BTreeMap::new(), false),
            Err(TopicError::InvalidName(_))
        ));
        topics.add_partitions("a.b", 5, false).unwrap();
        drop(topics);
        let topics = Topics::load(store).unwrap();
        let again = topics.get("a.b").unwrap();
        assert_eq!((again.id, again.partitions.len()), (t.id, 5));
        topics.delete("a.b").unwrap();
        assert!(topics.get("a.b").is_none());
    }

    /// Creating a topic with thousands of partitions opens them before publishing it: other
    /// lookups are not held up meanwhile, and the topic is never seen half built.
    #[test]
    fn lookups_go_on_while_a_big_topic_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let topics = Arc::new(Topics::load(store).unwrap());
        topics.create("other", 1, BTreeMap::new(), false).unwrap();
        let n = 2000;
        let creator = {
            let topics = topics.clone();
            std::thread::spawn(move || {
                let t0 = std::time::Instant::now();
                topics.create("big", n, BTreeMap::new(), false).unwrap();
                t0.elapsed()
            })
        };
        let mut slowest = std::time::Duration::ZERO;
        let mut lookups = 0u64;
        while !creator.is_finished() {
            let t0 = std::time::Instant::now();
            assert!(topics.get("other").is_some());
            let big = topics.get("big");
            slowest = slowest.max(t0.elapsed());
            lookups += 1;
            if let Some(big) = big {
                assert_eq!(
                    big.partitions.len(),
                    n as usize,
                    "a half-built topic is visible"
                );
            }
        }
        let took = creator.join().unwrap();
        assert_eq!(topics.get("big").unwrap().partitions.len(), n as usize);
        assert!(
            slowest < took / 4,
            "a lookup waited {slowest:?} while creating {n} partitions took {took:?} ({lookups} lookups)"
        );
    }
}
