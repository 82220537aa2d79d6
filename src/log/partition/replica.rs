//! What a replicated partition needs beyond a single node's log (issue 12):
//!
//! - the **leader-epoch cache** (Kafka's `leader-epoch-checkpoint`, KIP-101): the first
//!   offset written in each leader epoch, kept in the tree under `e` + epoch and filled by
//!   every path that stores a batch (`plan_effects`), so OffsetForLeaderEpoch can say where
//!   any epoch ended and a follower can find where its log and the leader's part;
//! - the **high watermark** apart from the log end offset: a leader moves it to the lowest
//!   LEO of its ISR, a follower takes it from the leader;
//! - the **follower's append**, which stores the leader's batches byte for byte at the
//!   leader's offsets, with the same producer and transaction effects recovery gives them;
//! - **truncation** of a diverged suffix, after which the producer and transaction state is
//!   rebuilt from the batches that remain, as recovery would build it.

use bytes::Bytes;

use super::{
    AppendError, EPOCH_PREFIX, IndexEntry, Loc, PRODUCER_PREFIX, PartitionLog, STATE_KEY, State,
    apply_effects, batch_key, epoch_key, plan_effects, txn,
};
use crate::log::batch::{self, BatchHeader, HEADER_LEN, NO_PRODUCER_ID};
use crate::log::producer::ProducerEntry;

/// Kafka's UNDEFINED_EPOCH (and UNDEFINED_EPOCH_OFFSET, also -1).
pub const UNDEFINED_EPOCH: i32 = -1;

/// Where a leader epoch ended: the answer of OffsetForLeaderEpoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    pub epoch: i32,
    pub end_offset: i64,
}

impl EpochEnd {
    pub const UNDEFINED: EpochEnd = EpochEnd {
        epoch: UNDEFINED_EPOCH,
        end_offset: -1,
    };
}

/// Kafka's `LeaderEpochFileCache.endOffsetFor`: the largest epoch at or below `requested`
/// with the offset where the epoch after it starts (the log end offset for the latest
/// epoch). A requested epoch below every known one ends where the first known one starts;
/// one above every known one is undefined.
pub fn end_offset_for(epochs: &[(i32, i64)], leo: i64, requested: i32) -> EpochEnd {
    if requested == UNDEFINED_EPOCH {
        return EpochEnd::UNDEFINED;
    }
    match epochs.last() {
        None => return EpochEnd::UNDEFINED,
        Some((latest, _)) if *latest == requested => {
            return EpochEnd {
                epoch: requested,
                end_offset: leo,
            };
        }
        _ => {}
    }
    // The first entry with an epoch above the requested one.
    let higher = epochs.partition_point(|(e, _)| *e <= requested);
    let Some(&(_, next_start)) = epochs.get(higher) else {
        return EpochEnd::UNDEFINED;
    };
    match higher.checked_sub(1).map(|i| epochs[i]) {
        None => EpochEnd {
            epoch: requested,
            end_offset: next_start,
        },
        Some((floor, _)) => EpochEnd {
            epoch: floor,
            end_offset: next_start,
        },
    }
}

/// The offset a follower truncates to (KIP-279), given its own cache and log end, the
/// epoch it asked about (its latest) and the leader's answer.
pub fn truncation_offset(
    epochs: &[(i32, i64)],
    leo: i64,
    high_watermark: i64,
    leader: EpochEnd,
) -> i64 {
    if leader.epoch == UNDEFINED_EPOCH || leader.end_offset < 0 {
        // The leader knows no epoch at or below ours: nothing beyond the committed part is
        // known to be shared.
        return high_watermark.min(leo);
    }
    // Our own end of the epoch the leader answered with; both logs agree below the smaller.
    // (Where we lack that epoch, the end of the largest one below it: cutting more than
    // needed is safe, the rest is fetched again.)
    let ours = end_offset_for(epochs, leo, leader.epoch);
    let ours = if ours.end_offset >= 0 {
        ours.end_offset
    } else {
        leo
    };
    leader.end_offset.min(ours).min(leo)
}

pub(super) fn load_epochs(tree: &sled::Tree, st: &mut State) -> sled::Result<()> {
    for kv in tree.scan_prefix([EPOCH_PREFIX]) {
        let (k, v) = kv?;
        if k.len() == 5 && v.len() == 8 {
            let epoch = u32::from_be_bytes(k[1..5].try_into().unwrap()) as i32;
            st.epochs
                .push((epoch, i64::from_be_bytes(v[..8].try_into().unwrap())));
        }
    }
    Ok(())
}

/// A log written before the cache existed (an earlier release) gets one from its batch
/// headers, once: a header read per batch.
pub(super) fn seed_epochs(tree: &sled::Tree, st: &mut State) -> anyhow::Result<()> {
    if !st.epochs.is_empty() || st.index.is_empty() {
        return Ok(());
    }
    let mut w = sled::Batch::default();
    for e in st.index.clone() {
        let Some(head) = read_batch(tree, st, &e, true)? else {
            continue;
        };
        let h = BatchHeader::parse(&head).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if h.leader_epoch >= 0 && st.epochs.last().is_none_or(|(x, _)| h.leader_epoch > *x) {
            st.epochs.push((h.leader_epoch, e.base_offset));
            w.insert(&epoch_key(h.leader_epoch), &e.base_offset.to_be_bytes());
        }
    }
    tree.apply_batch(w)?;
    Ok(())
}

/// The bytes of one indexed batch (only its header when `header_only`), read under the
/// state lock the caller holds. None if they are gone.
fn read_batch(
    tree: &sled::Tree,
    st: &State,
    e: &IndexEntry,
    header_only: bool,
) -> anyhow::Result<Option<Vec<u8>>> {
    match e.loc {
        Loc::Inline => Ok(tree.get(batch_key(e.base_offset))?.map(|v| v.to_vec())),
        Loc::File { segment, pos } => {
            let Some(f) = st.segs.file(segment) else {
                return Ok(None);
            };
            let len = if header_only {
                HEADER_LEN
            } else {
                e.size as usize
            };
            let mut buf = vec![0u8; len];
            f.read_exact_at(&mut buf, pos)?;
            Ok(Some(buf))
        }
    }
}

/// The producer state a stored batch updates without checks (recovery, followers): the
/// state before it, unless the batch comes from an epoch already fenced here.
pub(super) fn replayed_producer(st: &State, h: &BatchHeader) -> Option<Option<ProducerEntry>> {
    if h.producer_id == NO_PRODUCER_ID || h.is_control() {
        return None;
    }
    let before = st.producers.get(&h.producer_id).cloned();
    match &before {
        Some(b) if b.epoch > h.producer_epoch => None,
        _ => Some(before),
    }
}

impl PartitionLog {
    /// The newest leader epoch in the cache (None for a log that never held a batch and
    /// never had a leader).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.state.lock().unwrap().epochs.last().map(|(e, _)| *e)
    }

    /// Where `epoch` ended in this log (OffsetForLeaderEpoch).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> EpochEnd {
        let st = self.state.lock().unwrap();
        end_offset_for(&st.epochs, st.next_offset, epoch)
    }

    /// The offset a follower truncates to, given the leader's answer for our latest epoch,
    /// and whether that settles it: when the leader answered with an epoch this log does not
    /// have, the cut is only an intermediate point and the follower asks again (KIP-279).
    pub fn truncation_offset(&self, leader: EpochEnd) -> (i64, bool) {
        let st = self.state.lock().unwrap();
        let to = truncation_offset(&st.epochs, st.next_offset, st.high_watermark, leader);
        let settled = leader.epoch == UNDEFINED_EPOCH
            || st.epochs.iter().any(|(e, _)| *e == leader.epoch)
            || st.epochs.first().is_none_or(|(e, _)| leader.epoch < *e);
        (to, settled)
    }

    /// Whether this replica leads in `epoch` (what an acks=all answer requires).
    pub fn leads_in(&self, epoch: i32) -> bool {
        let st = self.state.lock().unwrap();
        st.leading && st.leader_epoch == epoch
    }

    /// Whether this replica follows in `epoch`.
    pub fn follows(&self, epoch: i32) -> bool {
        Self::follows_in(&self.state.lock().unwrap(), epoch).is_ok()
    }

    /// Whether this replica follows in `epoch`: what the leader of `epoch` sent may change it.
    fn follows_in(st: &State, epoch: i32) -> Result<(), AppendError> {
        if st.leading || st.leader_epoch != epoch {
            return Err(AppendError::NotLeader);
        }
        Ok(())
    }

    /// This replica leads from `epoch` on: the epoch starts at the log end offset (so
    /// OffsetForLeaderEpoch answers for it before anything is written in it), and the high
    /// watermark follows the log end while `alone` (the ISR is this replica only).
    pub fn become_leader(&self, epoch: i32, alone: bool) -> anyhow::Result<()> {
        self.set_leader_epoch(epoch)?;
        let mut st = self.state.lock().unwrap();
        if st.epochs.last().is_none_or(|(e, _)| epoch > *e) {
            // Earlier epochs' entries may still wait for the checkpoint: they go first.
            self.checkpoint_locked(&mut st);
            let start = st.next_offset;
            self.tree.insert(epoch_key(epoch), &start.to_be_bytes())?;
            st.epochs.push((epoch, start));
        }
        st.hw_follows_leo = alone;
        st.leading = true;
        let hw = if alone {
            st.high_watermark = st.next_offset;
            Some(st.high_watermark)
        } else {
            None
        };
        drop(st);
        if let Some(hw) = hw {
            self.wake_waiters(hw);
        }
        Ok(())
    }

    /// This replica follows: its high watermark comes from the leader from now on.
    pub fn become_follower(&self, epoch: i32) -> anyhow::Result<()> {
        self.set_leader_epoch(epoch)?;
        let mut st = self.state.lock().unwrap();
        st.hw_follows_leo = false;
        st.leading = false;
        Ok(())
    }

    /// Whether the high watermark moves with the log end (a leader alone in its ISR).
    pub fn set_hw_follows_leo(&self, on: bool) {
        let mut st = self.state.lock().unwrap();
        st.hw_follows_leo = on;
        if on && st.high_watermark < st.next_offset {
            st.high_watermark = st.next_offset;
            let hw = st.high_watermark;
            drop(st);
            self.wake_waiters(hw);
        }
    }

    /// A leader moves its high watermark forward (never back, never past its log end).
    /// Returns the high watermark after the call.
    pub fn advance_high_watermark(&self, hw: i64) -> i64 {
        let mut st = self.state.lock().unwrap();
        let hw = hw.min(st.next_offset);
        if hw <= st.high_watermark {
            return st.high_watermark;
        }
        st.high_watermark = hw;
        drop(st);
        self.wake_waiters(hw);
        hw
    }

    /// A follower takes the high watermark of the leader of `epoch`, bounded by its own log
    /// end (ignored once this replica leads or follows in another epoch).
    pub fn set_follower_high_watermark(&self, leader_hw: i64, epoch: i32) {
        let mut st = self.state.lock().unwrap();
        if Self::follows_in(&st, epoch).is_err() {
            return;
        }
        let hw = leader_hw.min(st.next_offset).max(st.log_start_offset);
        if hw != st.high_watermark {
            st.high_watermark = hw;
            drop(st);
            self.wake_waiters(hw);
        }
    }

    /// Appends batches fetched from the leader exactly as received (their offsets, epochs
    /// and bytes), skipping any this log already holds. Producer and transaction state
    /// follow from the batches as in recovery. Returns the log end offset after.
    pub fn append_replica(&self, records: &Bytes, epoch: i32) -> Result<i64, AppendError> {
        let batches = batch::split_and_validate(records, usize::MAX)
            .map_err(|e| AppendError::Storage(format!("corrupt batch from the leader: {e:?}")))?;
        let mut st = self.state.lock().unwrap();
        // A fetch response of another epoch's leader (one that arrives after this replica
        // became the leader, or after the leadership moved on) is stale: its batches could
        // land after a newer epoch's start.
        Self::follows_in(&st, epoch)?;
        for b in &batches {
            let h = BatchHeader::parse(b).expect("validated");
            if h.last_offset_delta < 0
                || h.base_offset < 0
                || h.base_offset
                    .checked_add(h.last_offset_delta as i64 + 1)
                    .is_none()
                || h.leader_epoch > epoch
            {
                return Err(AppendError::Storage(format!(
                    "the leader sent a batch with impossible offsets or epoch (base {}, delta {}, epoch {})",
                    h.base_offset, h.last_offset_delta, h.leader_epoch
                )));
            }
            if h.last_offset() < st.next_offset {
                continue;
            }
            if h.base_offset < st.next_offset {
                return Err(AppendError::Storage(format!(
                    "the leader's batch at {} overlaps this log's end {}",
                    h.base_offset, st.next_offset
                )));
            }
            let marker = if h.is_control() {
                txn::marker_type(b)
            } else {
                None
            };
            let producer = replayed_producer(&st, &h);
            self.store(&mut st, &[&b[..]], &h, producer, marker)?;
        }
        let (leo, hw) = (st.next_offset, st.high_watermark);
        drop(st);
        self.wake_waiters(hw);
        Ok(leo)
    }

    /// Removes every batch at or after `offset` (a batch that straddles it goes whole), and
    /// rebuilds the producer and transaction state from what remains. Files are cut first,
    /// the index second: a crash in between leaves index entries past the end of their file,
    /// which opening drops.
    pub fn truncate_to(&self, offset: i64) -> anyhow::Result<()> {
        self.truncate_in(offset, None)
    }

    /// [`truncate_to`](Self::truncate_to) by a follower of the leader of `epoch`: refused
    /// once this replica leads or follows in another epoch.
    pub fn truncate_following(&self, offset: i64, epoch: i32) -> anyhow::Result<()> {
        self.truncate_in(offset, Some(epoch))
    }

    fn truncate_in(&self, offset: i64, epoch: Option<i32>) -> anyhow::Result<()> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.state.lock().unwrap();
        if let Some(e) = epoch {
            Self::follows_in(&st, e)
                .map_err(|_| anyhow::anyhow!("no longer following in epoch {e}"))?;
        }
        if offset >= st.next_offset {
            if epoch.is_some() && st.epochs.last().is_some_and(|(_, s)| *s >= offset) {
                // Epochs that started at the log end hold no batch; a follower cut there
                // forgets them as a truncation would, so that its latest epoch goes down
                // (KIP-279's intermediate step asks again with it: keeping them asked the
                // same question forever).
                self.checkpoint_locked(&mut st);
                let mut gone = sled::Batch::default();
                while st.epochs.last().is_some_and(|(_, start)| *start >= offset) {
                    let (e, _) = st.epochs.pop().expect("checked");
                    gone.remove(&epoch_key(e));
                }
                self.tree.apply_batch(gone)?;
                self.tree.flush()?;
            }
            return Ok(());
        }
        self.checkpoint_locked(&mut st);
        if st.pending_appends > 0 {
            anyhow::bail!("the index checkpoint failed; not truncating");
        }
        let keep = st.index.partition_point(|e| e.last_offset < offset);
        let removed: Vec<IndexEntry> = st.index[keep..].to_vec();
        let new_end = removed
            .first()
            .map_or(offset, |e| e.base_offset)
            .max(st.log_start_offset);
        tracing::info!(
            from = new_end,
            log_end = st.next_offset,
            batches = removed.len(),
            "truncating a diverged suffix of the log"
        );
        // 1. The epoch cache first, durably: a crash after the files are cut must not leave
        //    entries for epochs whose batches are gone (too little truncation later), while
        //    entries missing for batches that survive only cause more truncation (safe).
        let mut gone = sled::Batch::default();
        while st.epochs.last().is_some_and(|(_, start)| *start >= new_end) {
            let (e, _) = st.epochs.pop().expect("checked");
            gone.remove(&epoch_key(e));
        }
        self.tree.apply_batch(gone)?;
        self.tree.flush()?;
        // 2. The files: each segment cut where its first removed batch starts.
        let mut cut: std::collections::BTreeMap<i64, u64> = Default::default();
        for e in &removed {
            if let Loc::File { segment, pos } = e.loc {
                let p = cut.entry(segment).or_insert(pos);
                *p = (*p).min(pos);
            }
        }
        for (&segment, &pos) in &cut {
            if pos == 0 {
                st.segs.delete(segment)?;
            } else {
                st.segs.truncate(segment, pos)?;
            }
        }
        // 3. The index and the state derived from the batches.
        let mut w = sled::Batch::default();
        for e in &removed {
            e.remove(&mut w);
        }
        st.index.truncate(keep);
        st.cleaned_upto = st.cleaned_upto.min(new_end);
        self.rebuild_derived(&mut st, &mut w)?;
        st.next_offset = new_end;
        st.high_watermark = st.high_watermark.min(new_end);
        w.insert(
            STATE_KEY,
            Self::encode_state(st.log_start_offset, st.leader_epoch, st.cleaned_upto).to_vec(),
        );
        self.tree.apply_batch(w)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Empties the log and starts it again at `offset` (a follower whose log ends below the
    /// leader's log start: what it lacks is gone from the leader too).
    pub fn reset_to(&self, offset: i64, epoch: i32) -> anyhow::Result<()> {
        let start = self.log_start_offset();
        self.truncate_following(start, epoch)?;
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.state.lock().unwrap();
        if st.next_offset != start || !st.index.is_empty() {
            anyhow::bail!("the log changed while it was being reset");
        }
        // Every segment file is empty or gone; the next append starts one at `offset`.
        for base in st.segs.bases() {
            st.segs.delete(base)?;
        }
        let mut w = sled::Batch::default();
        for (e, _) in std::mem::take(&mut st.epochs) {
            w.remove(&epoch_key(e));
        }
        st.log_start_offset = offset;
        st.next_offset = offset;
        st.high_watermark = offset;
        st.cleaned_upto = offset;
        w.insert(
            STATE_KEY,
            Self::encode_state(offset, st.leader_epoch, offset).to_vec(),
        );
        self.tree.apply_batch(w)?;
        self.tree.flush()?;
        tracing::info!(
            offset,
            "log emptied and restarted at the leader's log start"
        );
        Ok(())
    }

    /// Rebuilds the index's derived state (sizes, timestamps, live counts) and the producer
    /// and transaction state by replaying the remaining batches, as recovery does.
    fn rebuild_derived(&self, st: &mut State, w: &mut sled::Batch) -> anyhow::Result<()> {
        let entries = std::mem::take(&mut st.index);
        st.running_max_ts.clear();
        st.bytes = 0;
        st.segs.clear_live();
        st.producers.clear();
        st.ongoing.clear();
        st.aborted.clear();
        st.max_aborted_span = 0;
        for prefix in [PRODUCER_PREFIX, b't', b'a'] {
            for k in self.tree.scan_prefix([prefix]).keys() {
                w.remove(k?);
            }
        }
        let epochs = std::mem::take(&mut st.epochs);
        st.epochs = epochs.clone();
        for e in entries {
            let Some(head) = read_batch(&self.tree, st, &e, true)? else {
                continue;
            };
            let mut h = BatchHeader::parse(&head).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            h.base_offset = e.base_offset;
            let marker = if h.is_control() {
                read_batch(&self.tree, st, &e, false)?.and_then(|b| txn::marker_type(&b))
            } else {
                None
            };
            let producer = replayed_producer(st, &h);
            let mut eff = plan_effects(st, &h, e, producer, marker, w);
            eff.new_epoch = None;
            apply_effects(st, eff);
        }
        st.epochs = epochs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_follow_kafkas_cache() {
        let cache = [(1, 0), (3, 10), (4, 25)];
        let at = |e| end_offset_for(&cache, 40, e);
        assert_eq!(
            at(4),
            EpochEnd {
                epoch: 4,
                end_offset: 40
            }
        );
        assert_eq!(
            at(3),
            EpochEnd {
                epoch: 3,
                end_offset: 25
            }
        );
        // Epoch 2 was never used here: the largest below it is 1, which ended at 10.
        assert_eq!(
            at(2),
            EpochEnd {
                epoch: 1,
                end_offset: 10
            }
        );
        assert_eq!(
            at(1),
            EpochEnd {
                epoch: 1,
                end_offset: 10
            }
        );
        // Below every known epoch: it ended where the first known one starts.
        assert_eq!(
            at(0),
            EpochEnd {
                epoch: 0,
                end_offset: 0
            }
        );
        assert_eq!(at(5), EpochEnd::UNDEFINED);
        assert_eq!(at(UNDEFINED_EPOCH), EpochEnd::UNDEFINED);
        assert_eq!(end_offset_for(&[], 0, 3), EpochEnd::UNDEFINED);
    }

    #[test]
    fn truncation_points() {
        // Follower wrote 10..20 in epoch 3 that the new leader (epoch 4) never had: the
        // leader's epoch 3 ended at 15.
        let follower = [(1, 0), (3, 10)];
        let leader_says = EpochEnd {
            epoch: 3,
            end_offset: 15,
        };
        assert_eq!(truncation_offset(&follower, 20, 12, leader_says), 15);
        // The leader never had epoch 3: its largest below is 1, ending at 8; ours ends at 10.
        let leader_says = EpochEnd {
            epoch: 1,
            end_offset: 8,
        };
        assert_eq!(truncation_offset(&follower, 20, 5, leader_says), 8);
        // A leader further ahead in the same epoch: nothing to cut.
        let leader_says = EpochEnd {
            epoch: 3,
            end_offset: 30,
        };
        assert_eq!(truncation_offset(&follower, 20, 5, leader_says), 20);
        // Undefined: back to the high watermark.
        assert_eq!(truncation_offset(&follower, 20, 5, EpochEnd::UNDEFINED), 5);
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod log_tests;
