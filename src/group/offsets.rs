//! Committed offsets, persisted in the store's `meta/offsets` tree.
//!
//! Key: u16 length + group id, u16 length + topic, big-endian partition, so one group's
//! offsets form a contiguous range that can be listed or deleted with a prefix scan.
//! Value: offset i64, leader epoch i32, commit time i64, then the metadata string.

use bytes::{Buf, BufMut, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub commit_timestamp: i64,
    pub metadata: String,
}

pub struct OffsetStore {
    tree: sled::Tree,
}

fn group_prefix(group: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + group.len());
    k.put_u16(group.len() as u16);
    k.extend_from_slice(group.as_bytes());
    k
}

fn key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = group_prefix(group);
    k.put_u16(topic.len() as u16);
    k.extend_from_slice(topic.as_bytes());
    k.put_i32(partition);
    k
}

fn parse_key(k: &[u8]) -> Option<(String, String, i32)> {
    let mut b = k;
    if b.len() < 2 {
        return None;
    }
    let gl = b.get_u16() as usize;
    let group = String::from_utf8(b.get(..gl)?.to_vec()).ok()?;
    b.advance(gl);
    if b.len() < 2 {
        return None;
    }
    let tl = b.get_u16() as usize;
    let topic = String::from_utf8(b.get(..tl)?.to_vec()).ok()?;
    b.advance(tl);
    if b.len() != 4 {
        return None;
    }
    Some((group, topic, b.get_i32()))
}

fn encode(c: &Committed) -> Vec<u8> {
    let mut v = BytesMut::with_capacity(20 + c.metadata.len());
    v.put_i64(c.offset);
    v.put_i32(c.leader_epoch);
    v.put_i64(c.commit_timestamp);
    v.extend_from_slice(c.metadata.as_bytes());
    v.to_vec()
}

fn decode(mut v: &[u8]) -> Option<Committed> {
    if v.len() < 20 {
        return None;
    }
    Some(Committed {
        offset: v.get_i64(),
        leader_epoch: v.get_i32(),
        commit_timestamp: v.get_i64(),
        metadata: String::from_utf8_lossy(v).into_owned(),
    })
}

impl OffsetStore {
    pub fn new(tree: sled::Tree) -> Self {
        OffsetStore { tree }
    }

    /// Stores a set of commits for one group atomically.
    pub fn commit(&self, group: &str, commits: &[(String, i32, Committed)]) -> sled::Result<()> {
        let mut b = sled::Batch::default();
        for (topic, partition, c) in commits {
            b.insert(key(group, topic, *partition), encode(c));
        }
        self.tree.apply_batch(b)
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> sled::Result<Option<Committed>> {
        Ok(self
            .tree
            .get(key(group, topic, partition))?
            .and_then(|v| decode(&v)))
    }

    /// Every committed offset of a group, in (topic, partition) order.
    pub fn all(&self, group: &str) -> sled::Result<Vec<(String, i32, Committed)>> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(group_prefix(group)) {
            let (k, v) = kv?;
            if let (Some((g, t, p)), Some(c)) = (parse_key(&k), decode(&v))
                && g == group
            {
                out.push((t, p, c));
            }
        }
        Ok(out)
    }

    pub fn delete(&self, group: &str, topic: &str, partition: i32) -> sled::Result<()> {
        self.tree.remove(key(group, topic, partition))?;
        Ok(())
    }

    /// Deletes a commit only if it is still `expected` (offsets expiry must not delete a
    /// commit that replaced the one it judged expired). Returns whether it deleted.
    pub fn delete_if_unchanged(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        expected: &Committed,
    ) -> sled::Result<bool> {
        Ok(self
            .tree
            .compare_and_swap(
                key(group, topic, partition),
                Some(encode(expected)),
                None::<Vec<u8>>,
            )?
            .is_ok())
    }

    pub fn delete_group(&self, group: &str) -> sled::Result<()> {
        let mut b = sled::Batch::default();
        for kv in self.tree.scan_prefix(group_prefix(group)) {
            let (k, _) = kv?;
            b.remove(k);
        }
        self.tree.apply_batch(b)
    }

    /// Removes every group's committed offsets for `topic` (the topic was deleted: a topic
    /// created again under the name must not inherit them, as in Kafka). Returns how many.
    pub fn delete_topic(&self, topic: &str) -> sled::Result<usize> {
        let mut b = sled::Batch::default();
        let mut n = 0;
        for kv in self.tree.iter() {
            let (k, _) = kv?;
            if parse_key(&k).is_some_and(|(_, t, _)| t == topic) {
                b.remove(k);
                n += 1;
            }
        }
        self.tree.apply_batch(b)?;
        Ok(n)
    }

    /// Groups that have at least one committed offset (they exist even without members).
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (k, _) in self.tree.iter().flatten() {
            if let Some((g, _, _)) = parse_key(&k)
                && out.last() != Some(&g)
            {
                out.push(g);
            }
        }
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_a_topic_removes_its_offsets_in_every_group() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let s = OffsetStore::new(db.open_tree("o").unwrap());
        let c = Committed {
            offset: 2,
            leader_epoch: 0,
            commit_timestamp: 1,
            metadata: String::new(),
        };
        for g in ["a", "b"] {
            s.commit(
                g,
                &[("gone".into(), 0, c.clone()), ("kept".into(), 0, c.clone())],
            )
            .unwrap();
        }
        assert_eq!(s.delete_topic("gone").unwrap(), 2);
        assert!(s.get("a", "gone", 0).unwrap().is_none());
        assert!(s.get("b", "kept", 0).unwrap().is_some());
    }

    #[test]
    fn commit_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let s = OffsetStore::new(db.open_tree("o").unwrap());
        let c = |o| Committed {
            offset: o,
            leader_epoch: 0,
            commit_timestamp: 1,
            metadata: "m".into(),
        };
        s.commit("g", &[("t".into(), 0, c(5)), ("t".into(), 1, c(7))])
            .unwrap();
        s.commit("g2", &[("t".into(), 0, c(9))]).unwrap();
        assert_eq!(s.get("g", "t", 1).unwrap().unwrap().offset, 7);
        assert_eq!(s.all("g").unwrap().len(), 2);
        assert_eq!(s.groups(), vec!["g".to_string(), "g2".to_string()]);
        s.delete_group("g").unwrap();
        assert!(s.all("g").unwrap().is_empty());
        assert_eq!(s.get("g2", "t", 0).unwrap().unwrap().metadata, "m");
    }

    #[test]
    fn delete_if_unchanged_keeps_a_newer_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let s = OffsetStore::new(db.open_tree("o").unwrap());
        let c = |o| Committed {
            offset: o,
            leader_epoch: 0,
            commit_timestamp: o,
            metadata: String::new(),
        };
        s.commit("g", &[("t".into(), 0, c(1))]).unwrap();
        // Judged expired at 1, re-committed at 2 before the delete: the new commit stays.
        s.commit("g", &[("t".into(), 0, c(2))]).unwrap();
        assert!(!s.delete_if_unchanged("g", "t", 0, &c(1)).unwrap());
        assert_eq!(s.get("g", "t", 0).unwrap().unwrap().offset, 2);
        assert!(s.delete_if_unchanged("g", "t", 0, &c(2)).unwrap());
        assert!(s.get("g", "t", 0).unwrap().is_none());
    }
}
