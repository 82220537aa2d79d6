//! Offsets committed inside a transaction (TxnOffsetCommit): held by the group's coordinator
//! as pending records in its `__consumer_offsets` partition until the transaction
//! coordinator's marker for that partition arrives (WriteTxnMarkers, as in Kafka); a commit
//! turns them into committed offsets, an abort drops them. Either way they leave the
//! partition as tombstones in the same batch.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::ResponseError;

use super::journal::{self, Entry, partition_for};
use super::offsets::Committed;
use super::{GroupCoordinator, PERSIST_FAILED, lock};

/// Pending offsets per group, per producer id.
pub type Pending = HashMap<String, HashMap<i64, BTreeMap<(String, i32), Committed>>>;

/// The epoch of the last marker each producer id's transaction wrote to each partition: a
/// TxnOffsetCommit from an older epoch (a zombie verified before the marker, staging after
/// it) is refused instead of left pending. Kept in memory, at most this many entries.
#[derive(Default)]
pub struct MarkerEpochs(HashMap<(i32, i64), i16>);

const MARKER_EPOCHS_MAX: usize = 100_000;

impl GroupCoordinator {
    /// Holds `offsets` of `group` for the transaction of `producer_id`. Call with the group
    /// locked (after its member checks).
    pub fn stage_txn_offsets(
        &self,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        offsets: &[(String, i32, Committed)],
    ) -> Result<(), ResponseError> {
        super::committing::check_metadata(offsets)?;
        let entries: Vec<Entry> = offsets
            .iter()
            .map(|(t, p, c)| Entry::Pending {
                group: group.to_string(),
                producer_id,
                topic: t.clone(),
                partition: *p,
                value: Some(c.clone()),
            })
            .collect();
        let mut pending = lock(&self.pending);
        // (Without a journal, in unit tests, every group is in partition 0.)
        let p = self.journal.partition_of(group).unwrap_or(0);
        if lock(&self.marker_epochs)
            .0
            .get(&(p, producer_id))
            .is_some_and(|e| *e > producer_epoch)
        {
            return Err(ResponseError::ProducerFenced);
        }
        self.journal.append(&entries)?;
        let mine = pending
            .entry(group.to_string())
            .or_default()
            .entry(producer_id)
            .or_default();
        for (t, p, c) in offsets {
            mine.insert((t.clone(), *p), c.clone());
        }
        Ok(())
    }

    /// The transaction of `producer_id` ended: its pending offsets in the groups of
    /// `__consumer_offsets` partition `partition` are committed (`commit`) or dropped. A
    /// marker written again finds nothing left to do.
    pub fn complete_txn(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        let n = self.journal.partitions();
        let mut pending = lock(&self.pending);
        {
            let mut epochs = lock(&self.marker_epochs);
            if epochs.0.len() >= MARKER_EPOCHS_MAX {
                epochs.0.clear();
            }
            let e = epochs
                .0
                .entry((partition, producer_id))
                .or_insert(producer_epoch);
            *e = (*e).max(producer_epoch);
        }
        let groups: Vec<String> = pending
            .iter()
            .filter(|(g, by_pid)| {
                (n == 0 || partition_for(g, n) == partition) && by_pid.contains_key(&producer_id)
            })
            .map(|(g, _)| g.clone())
            .collect();
        for group in groups {
            let offsets = pending
                .get(&group)
                .and_then(|b| b.get(&producer_id))
                .cloned()
                .unwrap_or_default();
            let mut entries = Vec::new();
            let mut commits = Vec::new();
            for ((t, p), c) in &offsets {
                if commit {
                    let c = Committed {
                        commit_timestamp: now_ms,
                        ..c.clone()
                    };
                    entries.push(Entry::Offset {
                        group: group.clone(),
                        topic: t.clone(),
                        partition: *p,
                        value: Some(c.clone()),
                    });
                    commits.push((t.clone(), *p, c));
                }
                entries.push(Entry::Pending {
                    group: group.clone(),
                    producer_id,
                    topic: t.clone(),
                    partition: *p,
                    value: None,
                });
            }
            {
                let _order = lock(&self.offsets_write);
                self.journal.append(&entries)?;
                if !commits.is_empty() {
                    self.get_or_create_empty(&group);
                    self.offsets.commit(&group, &commits).map_err(|e| {
                        tracing::error!(group = %group, error = %e, "cannot cache offsets");
                        PERSIST_FAILED
                    })?;
                }
            }
            if let Some(by_pid) = pending.get_mut(&group) {
                by_pid.remove(&producer_id);
                if by_pid.is_empty() {
                    pending.remove(&group);
                }
            }
            tracing::debug!(group = %group, producer_id, commit, offsets = offsets.len(), "transactional offsets completed");
        }
        Ok(())
    }

    /// Whether a transaction holds an offset of this group partition not yet committed
    /// (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        lock(&self.pending).get(group).is_some_and(|by_pid| {
            by_pid
                .values()
                .any(|o| o.contains_key(&(topic.to_string(), partition)))
        })
    }

    /// Pending offsets replayed from a partition (the last value of each key).
    pub(super) fn restore_pending(
        &self,
        replayed: BTreeMap<(String, i64, String, i32), Option<Committed>>,
    ) {
        let mut pending = lock(&self.pending);
        for ((g, pid, t, p), c) in replayed {
            if let Some(c) = c {
                pending
                    .entry(g)
                    .or_default()
                    .entry(pid)
                    .or_default()
                    .insert((t, p), c);
            }
        }
    }

    /// Forgets the pending offsets of partition `p`'s groups (unloaded here).
    pub(super) fn drop_pending(&self, p: i32, n: i32) {
        lock(&self.pending).retain(|g, _| journal::partition_for(g, n) != p);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::log::Store;
    use crate::meta::topics::Topics;

    #[test]
    fn pending_offsets_wait_for_the_transaction_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let topics = Arc::new(Topics::load(store.clone()).unwrap());
        let settings = crate::Config::default().group.clone();
        let coord = GroupCoordinator::load(&store, topics, settings).unwrap();
        let c = |o| Committed {
            offset: o,
            leader_epoch: -1,
            commit_timestamp: 1,
            metadata: String::new(),
        };
        coord.get_or_create_empty("g");
        coord
            .stage_txn_offsets("g", 7, 0, &[("t".into(), 0, c(5))])
            .unwrap();
        coord
            .stage_txn_offsets("g", 8, 0, &[("t".into(), 1, c(9))])
            .unwrap();
        assert!(coord.has_pending_offset("g", "t", 0));
        assert!(
            coord.offsets.get("g", "t", 0).unwrap().is_none(),
            "not before the commit"
        );
        // Producer 7 commits, producer 8 aborts; each marker only touches its own offsets.
        coord.complete_txn(0, 7, 0, true, 100).unwrap();
        assert_eq!(coord.offsets.get("g", "t", 0).unwrap().unwrap().offset, 5);
        assert!(!coord.has_pending_offset("g", "t", 0));
        assert!(coord.has_pending_offset("g", "t", 1));
        coord.complete_txn(0, 8, 1, false, 100).unwrap();
        assert!(coord.offsets.get("g", "t", 1).unwrap().is_none(), "aborted");
        assert!(!coord.has_pending_offset("g", "t", 1));
        // A marker written again finds nothing left to do.
        coord.complete_txn(0, 7, 0, true, 200).unwrap();
        assert_eq!(
            coord
                .offsets
                .get("g", "t", 0)
                .unwrap()
                .unwrap()
                .commit_timestamp,
            100
        );
        // Producer 8 was fenced by its abort marker (epoch 1): its old instance cannot stage
        // offsets that no marker would ever complete; the next epoch can.
        assert_eq!(
            coord.stage_txn_offsets("g", 8, 0, &[("t".into(), 1, c(3))]),
            Err(ResponseError::ProducerFenced)
        );
        coord
            .stage_txn_offsets("g", 8, 1, &[("t".into(), 1, c(3))])
            .unwrap();
        assert!(coord.has_pending_offset("g", "t", 1));
    }
}
