//! The read side of a partition: fetches, timestamp lookups and single batches.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{IndexEntry, Loc, PartitionLog, ReadError, ReadResult, batch_key, segment};

/// What a fetch of one partition will read: whole batches chosen from the index under the
/// partition's lock (cheap), whose bytes `read_planned` reads after the lock is released,
/// on whichever thread may block on the disk.
pub struct ReadPlan {
    offset: i64,
    read_committed: bool,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    entries: Vec<IndexEntry>,
    files: Vec<(i64, Arc<segment::SegmentFile>)>,
}

impl ReadPlan {
    /// The bytes the plan will read.
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.size as usize).sum()
    }

    /// Drops batches from the end until at most `max_bytes` remain, keeping the first one
    /// when `keep_one` (an oversized first batch must still reach the consumer, KIP-74).
    pub fn truncate(&mut self, max_bytes: usize, keep_one: bool) {
        let mut total = 0usize;
        let keep = self
            .entries
            .iter()
            .position(|e| {
                total += e.size as usize;
                total > max_bytes
            })
            .unwrap_or(self.entries.len());
        let keep = if keep_one { keep.max(1) } else { keep };
        self.entries.truncate(keep);
    }
}

impl PartitionLog {
    /// Reads whole batches from the one containing `offset` onward, up to `max_bytes`
    /// (always at least one batch when `min_one`, so a consumer can pass an oversized batch).
    /// `plan_read` then `read_planned`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
    ) -> Result<ReadResult, ReadError> {
        let plan = self.plan_read(offset, max_bytes, min_one, read_committed)?;
        self.read_planned(plan)
    }

    /// Chooses the batches a consumer's read of up to `max_bytes` from `offset` returns,
    /// under the lock; reads nothing. Consumers read below the high watermark
    /// (read_committed ones below the last stable offset).
    pub fn plan_read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
    ) -> Result<ReadPlan, ReadError> {
        self.plan(offset, max_bytes, min_one, read_committed, false)
    }

    /// [`plan_read`](Self::plan_read) for a follower: up to the log end offset.
    pub fn plan_replica_read(&self, offset: i64, max_bytes: usize) -> Result<ReadPlan, ReadError> {
        self.plan(offset, max_bytes, true, false, true)
    }

    fn plan(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
        replica: bool,
    ) -> Result<ReadPlan, ReadError> {
        let st = self.state.lock().unwrap();
        let (hw, lso, log_start) = (
            st.high_watermark,
            st.last_stable_offset(),
            st.log_start_offset,
        );
        // In range up to the log end (Kafka's check): between the high watermark and the
        // log end a consumer gets nothing yet.
        if offset < log_start || offset > st.next_offset {
            return Err(ReadError::OffsetOutOfRange {
                log_start,
                high_watermark: hw,
            });
        }
        let upper = if replica {
            st.next_offset
        } else if read_committed {
            lso
        } else {
            hw
        };
        let mut plan: Vec<IndexEntry> = Vec::new();
        let mut total = 0usize;
        if let Some(start) = st.position(offset) {
            for e in &st.index[start..] {
                if e.base_offset >= upper {
                    break;
                }
                let size = e.size as usize;
                if total + size > max_bytes && !(plan.is_empty() && min_one) {
                    break;
                }
                plan.push(*e);
                total += size;
                if total >= max_bytes {
                    break;
                }
            }
        }
        let mut files = Vec::new();
        for e in &plan {
            if let Loc::File { segment, .. } = e.loc
                && files.last().is_none_or(|(s, _)| *s != segment)
                && let Some(f) = st.segs.file(segment)
            {
                files.push((segment, f));
            }
        }
        Ok(ReadPlan {
            offset,
            read_committed,
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log_start,
            entries: plan,
            files,
        })
    }

    /// Reads the bytes of a plan: consecutive batches of a segment file in one `pread`. May
    /// block on the disk.
    pub fn read_planned(&self, plan: ReadPlan) -> Result<ReadResult, ReadError> {
        let mut out = ReadResult {
            records: Bytes::new(),
            high_watermark: plan.high_watermark,
            last_stable_offset: plan.last_stable_offset,
            log_start_offset: plan.log_start_offset,
            aborted: Vec::new(),
        };
        if plan.entries.is_empty() {
            return Ok(out);
        }
        let (buf, n) = self
            .read_entries(&plan.entries, &plan.files)
            .map_err(ReadError::Storage)?;
        if plan.read_committed && n > 0 {
            out.aborted = self.aborted_between(plan.offset, plan.entries[n - 1].last_offset);
        }
        out.records = buf;
        Ok(out)
    }

    /// Reads the bytes of `plan` (consecutive index entries) into one buffer. Returns the
    /// buffer and how many entries it holds: an inline batch removed meanwhile by compaction
    /// or retention ends the read early.
    fn read_entries(
        &self,
        plan: &[IndexEntry],
        files: &[(i64, Arc<segment::SegmentFile>)],
    ) -> Result<(Bytes, usize), String> {
        let total: usize = plan.iter().map(|e| e.size as usize).sum();
        let mut buf = BytesMut::with_capacity(total);
        let mut i = 0usize;
        while i < plan.len() {
            match plan[i].loc {
                Loc::Inline => match self.tree.get(batch_key(plan[i].base_offset)) {
                    Ok(Some(v)) if v.len() == plan[i].size as usize => {
                        buf.extend_from_slice(&v);
                        i += 1;
                    }
                    Ok(_) => break,
                    Err(e) => return Err(e.to_string()),
                },
                Loc::File { segment, pos } => {
                    // Extend the run while the next batch follows in the same file.
                    let mut j = i + 1;
                    let mut end = pos + plan[i].size as u64;
                    while j < plan.len() && plan[j].loc == (Loc::File { segment, pos: end }) {
                        end += plan[j].size as u64;
                        j += 1;
                    }
                    let Some((_, f)) = files.iter().find(|(s, _)| *s == segment) else {
                        break;
                    };
                    f.read_append(&mut buf, (end - pos) as usize, pos)
                        .map_err(|e| format!("reading segment {segment}: {e}"))?;
                    i = j;
                }
            }
        }
        Ok((buf.freeze(), i))
    }

    /// The bytes of one indexed batch, or None if it is gone.
    pub(super) fn read_entry(&self, e: &IndexEntry) -> anyhow::Result<Option<Bytes>> {
        let files = match e.loc {
            Loc::Inline => Vec::new(),
            Loc::File { segment, .. } => {
                let st = self.state.lock().unwrap();
                match st.segs.file(segment) {
                    Some(f) => vec![(segment, f)],
                    None => return Ok(None),
                }
            }
        };
        let (buf, n) = self
            .read_entries(std::slice::from_ref(e), &files)
            .map_err(anyhow::Error::msg)?;
        Ok((n == 1).then_some(buf))
    }

    /// The stored batch at `base_offset` (timestamp lookups).
    pub fn batch_at(&self, base_offset: i64) -> anyhow::Result<Option<Bytes>> {
        let entry = {
            let st = self.state.lock().unwrap();
            match st
                .index
                .binary_search_by_key(&base_offset, |e| e.base_offset)
            {
                Ok(i) => st.index[i],
                Err(_) => return Ok(None),
            }
        };
        self.read_entry(&entry)
    }

    /// The first batch that holds a record with timestamp >= `ts`.
    pub fn first_batch_at_or_after_time(&self, ts: i64) -> Option<IndexEntry> {
        let st = self.state.lock().unwrap();
        let i = st.running_max_ts.partition_point(|m| *m < ts);
        st.index.get(i).copied()
    }

    /// The batch holding the largest timestamp (the first such batch on ties).
    pub fn batch_with_max_timestamp(&self) -> Option<IndexEntry> {
        let st = self.state.lock().unwrap();
        let max = *st.running_max_ts.last()?;
        let i = st.running_max_ts.partition_point(|m| *m < max);
        st.index.get(i).copied()
    }

    /// A copy of the index (retention and compaction decide from it).
    pub fn index(&self) -> Vec<IndexEntry> {
        self.state.lock().unwrap().index.clone()
    }
}
