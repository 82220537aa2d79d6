//! Log maintenance on one partition: time/size retention and key-based compaction.

use bytes::Bytes;

use super::{IndexEntry, Loc, PartitionLog, STATE_KEY, batch_key, index_key};
use crate::log::{batch, records};

/// Settings of one compaction pass (the topic's configs at the time).
#[derive(Debug, Clone, Copy)]
pub struct CompactPolicy {
    pub now_ms: i64,
    pub min_lag_ms: i64,
    pub delete_retention_ms: i64,
    pub min_dirty_ratio: f64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CompactStats {
    pub dirty_ratio: f64,
    pub records_removed: u64,
    pub batches_rewritten: u64,
    pub batches_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl PartitionLog {
    /// Time and size retention: drops the oldest batches whose max timestamp is older than
    /// `retention_ms`, and as many oldest batches as keep the partition within
    /// `retention_bytes` (-1 disables either). Returns the new log start offset if it moved.
    pub fn apply_retention(
        &self,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> anyhow::Result<Option<i64>> {
        let new_start = {
            let st = self.state.lock().unwrap();
            let mut n = 0;
            if retention_ms >= 0 {
                let cutoff = now_ms.saturating_sub(retention_ms);
                n = st
                    .index
                    .iter()
                    .take_while(|e| e.max_timestamp < cutoff)
                    .count();
            }
            if retention_bytes >= 0 {
                let mut size = st.bytes;
                let mut m = 0;
                for e in &st.index {
                    if size.saturating_sub(e.size as u64) < retention_bytes as u64 {
                        break;
                    }
                    size -= e.size as u64;
                    m += 1;
                }
                n = n.max(m);
            }
            if n == 0 {
                return Ok(None);
            }
            st.index[n - 1].last_offset + 1
        };
        self.advance_log_start(new_start).map(Some)
    }

    /// One compaction pass (see [`CompactPolicy`]): keeps the latest record of every key in
    /// the cleanable part of the log, drops tombstones older than `delete_retention_ms`, and
    /// leaves offsets, batch boundaries and the active head untouched.
    ///
    /// Transactions, as Kafka's cleaner treats them: only the log below the last stable
    /// offset is cleanable (an open transaction may still abort); records of aborted
    /// transactions never count as a key's latest value and are removed; an ABORT marker
    /// is removed once its transaction's records are gone and `delete_retention_ms` has
    /// passed since it was written, and its aborted-index entry with it.
    pub fn compact(&self, p: &CompactPolicy) -> anyhow::Result<CompactStats> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let (index, checkpoint, lso, aborted) = {
            let st = self.state.lock().unwrap();
            (
                st.index.clone(),
                st.cleaned_upto,
                st.last_stable_offset(),
                st.aborted.clone(),
            )
        };
        let mut stats = CompactStats::default();
        // The head (last batch), anything younger than min.compaction.lag.ms and anything
        // at or above the last stable offset stay as they are.
        let lag_cutoff = p.now_ms.saturating_sub(p.min_lag_ms);
        let end = index
            .iter()
            .take(index.len().saturating_sub(1))
            .take_while(|e| e.max_timestamp <= lag_cutoff && e.last_offset < lso)
            .count();
        // A data batch of an aborted transaction (below the LSO every transaction is closed).
        let is_aborted = |h: &batch::BatchHeader| {
            h.is_transactional()
                && aborted.iter().any(|a| {
                    a.producer_id == h.producer_id
                        && a.first_offset <= h.base_offset
                        && h.base_offset < a.last_offset
                })
        };
        if end == 0 {
            return Ok(stats);
        }
        let total: u64 = index[..end].iter().map(|e| e.size as u64).sum();
        let dirty: u64 = index[..end]
            .iter()
            .filter(|e| e.base_offset >= checkpoint)
            .map(|e| e.size as u64)
            .sum();
        stats.dirty_ratio = dirty as f64 / total.max(1) as f64;
        if dirty == 0 || stats.dirty_ratio < p.min_dirty_ratio {
            return Ok(stats);
        }
        // Pass 1: the latest offset of every key.
        let mut latest: std::collections::HashMap<Bytes, i64> = std::collections::HashMap::new();
        for e in &index[..end] {
            let Some(raw) = self.read_entry(e)? else {
                continue;
            };
            let h = batch::stored_header(&raw);
            if h.is_control() || is_aborted(&h) {
                continue;
            }
            let section = records::records_section(&raw)?;
            for r in records::parse_records(&section, h.records_count)? {
                if let Some(k) = r.key {
                    latest.insert(k, h.base_offset.saturating_add(r.offset_delta as i64));
                }
            }
        }
        // Pass 2: rewrite batches that lost records.
        let tombstone_cutoff = p.now_ms.saturating_sub(p.delete_retention_ms);
        let mut changes: Vec<(i64, Option<Bytes>)> = Vec::new();
        let mut markers_removed: Vec<i64> = Vec::new();
        for e in &index[..end] {
            let Some(raw) = self.read_entry(e)? else {
                continue;
            };
            let h = batch::stored_header(&raw);
            if h.is_control() {
                // An ABORT marker whose transaction lies wholly in the cleanable range: its
                // records go in this pass, so the marker can go once past the horizon.
                let marker_of = aborted
                    .iter()
                    .find(|a| a.last_offset == h.base_offset && a.producer_id == h.producer_id);
                if marker_of.is_some() && h.max_timestamp < tombstone_cutoff {
                    stats.records_removed += h.records_count.max(0) as u64;
                    changes.push((e.base_offset, None));
                    markers_removed.push(h.base_offset);
                }
                continue;
            }
            if is_aborted(&h) {
                stats.records_removed += h.records_count.max(0) as u64;
                changes.push((e.base_offset, None));
                continue;
            }
            let section = records::records_section(&raw)?;
            let recs = records::parse_records(&section, h.records_count)?;
            let keep: Vec<bool> = recs
                .iter()
                .map(|r| match &r.key {
                    // Keyless records never entered a compacted topic; if the policy changed
                    // later, they are kept rather than silently lost.
                    None => true,
                    Some(k) => {
                        let offset = h.base_offset.saturating_add(r.offset_delta as i64);
                        let newest = latest.get(k) == Some(&offset);
                        let expired_tombstone = r.value_is_null
                            && h.base_timestamp.saturating_add(r.timestamp_delta)
                                < tombstone_cutoff;
                        newest && !expired_tombstone
                    }
                })
                .collect();
            let dropped = keep.iter().filter(|k| !**k).count();
            if dropped == 0 {
                continue;
            }
            stats.records_removed += dropped as u64;
            changes.push((
                e.base_offset,
                records::rebuild(&raw, &section, &recs, &keep)?,
            ));
        }
        stats.bytes_before = total;
        // Rewritten batches are kept inline in the tree; the segment file they came from is
        // deleted once nothing in it is live.
        let mut st = self.state.lock().unwrap();
        // Pending append writes go first, or they would overwrite the rewritten entries.
        self.checkpoint_locked(&mut st);
        let mut w = sled::Batch::default();
        for (base, new) in &changes {
            let Ok(i) = st.index.binary_search_by_key(base, |e| e.base_offset) else {
                continue;
            };
            let old = st.index[i];
            match new {
                Some(bytes) => {
                    let h = batch::stored_header(bytes);
                    let entry = IndexEntry::from_header(&h, bytes.len(), Loc::Inline);
                    w.insert(&batch_key(*base), bytes.as_ref());
                    w.insert(&index_key(*base), &entry.encode()[..]);
                    st.bytes = st.bytes - old.size as u64 + entry.size as u64;
                    st.index[i] = entry;
                    stats.batches_rewritten += 1;
                }
                None => {
                    old.remove(&mut w);
                    st.bytes -= old.size as u64;
                    st.index.remove(i);
                    stats.batches_removed += 1;
                }
            }
            if let Loc::File { segment, .. } = old.loc {
                st.segs.drop_live(segment);
            }
        }
        for marker in &markers_removed {
            st.aborted.retain(|a| a.last_offset != *marker);
            w.remove(&super::txn::aborted_key(*marker));
        }
        st.cleaned_upto = index[end - 1].last_offset + 1;
        w.insert(
            STATE_KEY,
            Self::encode_state(st.log_start_offset, st.leader_epoch, st.cleaned_upto).to_vec(),
        );
        self.tree.apply_batch(w)?;
        st.rebuild_running_max();
        let last_clean = index[end - 1].base_offset;
        stats.bytes_after = st
            .index
            .iter()
            .take_while(|e| e.base_offset <= last_clean)
            .map(|e| e.size as u64)
            .sum();
        drop(st);
        self.delete_dead_segments()?;
        Ok(stats)
    }
}
