//! The coordinator's writes of committed offsets: each goes to the group's partition of
//! `__consumer_offsets` first, then to the cache of loaded groups (commits, deletions,
//! offsets of deleted topics, offsets retention).

use kafka_protocol::ResponseError;

use super::{GroupCoordinator, PERSIST_FAILED, journal, lock, offsets};

/// The records hold metadata strings with an i16 length (Kafka's format): a longer one
/// could not be read back.
pub(super) fn check_metadata(
    commits: &[(String, i32, offsets::Committed)],
) -> Result<(), ResponseError> {
    if commits
        .iter()
        .any(|(_, _, c)| c.metadata.len() > i16::MAX as usize)
    {
        return Err(ResponseError::OffsetMetadataTooLarge);
    }
    Ok(())
}

impl GroupCoordinator {
    /// Stores committed offsets of `group`: appended to its partition, then cached. Call with
    /// the group locked ([`Self::with_group`]).
    pub fn commit_offsets(
        &self,
        group: &str,
        commits: &[(String, i32, offsets::Committed)],
    ) -> Result<(), ResponseError> {
        check_metadata(commits)?;
        let entries: Vec<journal::Entry> = commits
            .iter()
            .map(|(t, p, c)| journal::Entry::Offset {
                group: group.to_string(),
                topic: t.clone(),
                partition: *p,
                value: Some(c.clone()),
            })
            .collect();
        let _order = lock(&self.offsets_write);
        self.journal.append(&entries)?;
        self.offsets.commit(group, commits).map_err(|e| {
            tracing::error!(group, error = %e, "cannot cache offsets");
            PERSIST_FAILED
        })
    }

    /// Deletes committed offsets of `group` (tombstones in its partition). Call with the
    /// group locked.
    pub fn delete_offsets(
        &self,
        group: &str,
        which: &[(String, i32)],
    ) -> Result<(), ResponseError> {
        let entries: Vec<journal::Entry> = which
            .iter()
            .map(|(t, p)| journal::Entry::Offset {
                group: group.to_string(),
                topic: t.clone(),
                partition: *p,
                value: None,
            })
            .collect();
        let _order = lock(&self.offsets_write);
        self.journal.append(&entries)?;
        for (t, p) in which {
            self.offsets.delete(group, t, *p).map_err(|e| {
                tracing::error!(group, error = %e, "cannot delete cached offset");
                PERSIST_FAILED
            })?;
        }
        Ok(())
    }

    /// Every loaded group's committed offsets of `topic` are deleted (the topic was deleted:
    /// a topic created again under the name must not inherit them, as in Kafka). Returns how
    /// many.
    pub fn delete_topic_offsets(&self, topic: &str) -> usize {
        let mut n = 0;
        for (id, _) in self.list() {
            self.with_group(&id, false, |_| {
                let which: Vec<(String, i32)> = self
                    .offsets
                    .all(&id)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(t, _, _)| t == topic)
                    .map(|(t, p, _)| (t, p))
                    .collect();
                if !which.is_empty() && self.delete_offsets(&id, &which).is_ok() {
                    n += which.len();
                }
            });
        }
        n
    }

    /// Offsets retention (KIP-211): once a group is empty, each offset expires
    /// `offsets.retention.minutes` after the later of its commit and the group emptying.
    /// A group with no members and no offsets left is removed.
    ///
    /// Each group is judged and trimmed under its lock, which OffsetCommit holds while it
    /// validates and writes; and an offset is only deleted if it is still the commit that was
    /// judged expired, so even a writer outside the group lock (a transaction's commit) keeps
    /// a fresh offset.
    pub fn expire_offsets(&self, now_ms: i64) {
        let retention = self.settings.offsets_retention_ms;
        for (id, h) in self.list() {
            let mut g = lock(&h);
            if g.is_dead() || !g.is_empty() {
                continue;
            }
            let empty_since = g.empty_since_ms().unwrap_or(0);
            let Ok(all) = self.offsets.all(&id) else {
                continue;
            };
            let mut left = all.len();
            for (topic, partition, c) in all {
                if now_ms - c.commit_timestamp.max(empty_since) <= retention {
                    continue;
                }
                // A transaction may have committed a newer offset meanwhile (it does not take
                // the group lock): only the commit judged expired is deleted.
                let _order = lock(&self.offsets_write);
                if !self
                    .offsets
                    .get(&id, &topic, partition)
                    .is_ok_and(|now| now.as_ref() == Some(&c))
                {
                    continue;
                }
                let tombstone = journal::Entry::Offset {
                    group: id.clone(),
                    topic: topic.clone(),
                    partition,
                    value: None,
                };
                if self.journal.append(&[tombstone]).is_ok()
                    && self.offsets.delete(&id, &topic, partition).is_ok()
                {
                    left -= 1;
                    tracing::debug!(group = %id, topic = %topic, partition, "committed offset expired");
                }
            }
            if left == 0
                && now_ms - empty_since > retention
                && self.offsets.all(&id).is_ok_and(|a| a.is_empty())
                && self
                    .journal
                    .append(&[journal::Entry::Group {
                        group: id.clone(),
                        value: None,
                    }])
                    .is_ok()
                && self.tree.remove(id.as_bytes()).is_ok()
            {
                self.bury(&id, &h, &mut g);
                tracing::debug!(group = %id, "empty group without offsets removed");
            }
        }
    }
}
