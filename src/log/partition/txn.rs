//! Transaction state of one partition: which producers have a transaction open here (this
//! sets the last stable offset), the COMMIT/ABORT control batches that close them, and the
//! index of aborted transactions that read_committed fetches return.
//!
//! Keys in the partition tree:
//! - `t` + producer id -> first offset of its open transaction
//! - `a` + marker offset -> (producer id, first offset) of an aborted transaction

use bytes::{BufMut, Bytes, BytesMut};

use super::{AppendError, Effects, PartitionLog, State, producer_key};
use crate::log::batch;
use crate::log::batch::BatchHeader;
use crate::log::producer::ProducerEntry;

pub(super) fn ongoing_key(pid: i64) -> [u8; 9] {
    let mut k = [b't'; 9];
    k[1..].copy_from_slice(&(pid as u64).to_be_bytes());
    k
}

pub(super) fn aborted_key(marker_offset: i64) -> [u8; 9] {
    let mut k = [b'a'; 9];
    k[1..].copy_from_slice(&(marker_offset as u64).to_be_bytes());
    k
}

/// A transaction that was aborted in this partition: its records lie between
/// `first_offset` and `last_offset` (the ABORT marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

pub(super) fn load(tree: &sled::Tree, st: &mut State) -> sled::Result<()> {
    for kv in tree.scan_prefix([b't']) {
        let (k, v) = kv?;
        if k.len() == 9 && v.len() == 8 {
            let pid = u64::from_be_bytes(k[1..9].try_into().unwrap()) as i64;
            st.ongoing
                .insert(pid, i64::from_be_bytes(v[..8].try_into().unwrap()));
        }
    }
    for kv in tree.scan_prefix([b'a']) {
        let (k, v) = kv?;
        if k.len() == 9 && v.len() == 16 {
            st.aborted.push(AbortedTxn {
                producer_id: i64::from_be_bytes(v[0..8].try_into().unwrap()),
                first_offset: i64::from_be_bytes(v[8..16].try_into().unwrap()),
                last_offset: u64::from_be_bytes(k[1..9].try_into().unwrap()) as i64,
            });
        }
    }
    st.max_aborted_span = st
        .aborted
        .iter()
        .map(|a| a.last_offset.saturating_sub(a.first_offset))
        .max()
        .unwrap_or(0);
    Ok(())
}

impl State {
    pub(super) fn last_stable_offset(&self) -> i64 {
        self.ongoing
            .values()
            .copied()
            .min()
            .unwrap_or(self.high_watermark)
            .min(self.high_watermark)
    }
}

fn zigzag(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

/// A COMMIT or ABORT control batch: one record whose key is (version 0, type 0=abort /
/// 1=commit) and value (version 0, coordinator epoch), as Kafka's EndTxnMarker.
pub fn control_batch(
    pid: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Bytes {
    let mut key = BytesMut::new();
    key.put_i16(0);
    key.put_i16(if commit { 1 } else { 0 });
    let mut value = BytesMut::new();
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let mut body = BytesMut::new();
    body.put_i8(0); // attributes
    zigzag(&mut body, 0); // timestamp delta
    zigzag(&mut body, 0); // offset delta
    zigzag(&mut body, key.len() as i64);
    body.extend_from_slice(&key);
    zigzag(&mut body, value.len() as i64);
    body.extend_from_slice(&value);
    zigzag(&mut body, 0); // headers
    let mut record = BytesMut::new();
    zigzag(&mut record, body.len() as i64);
    record.extend_from_slice(&body);

    let mut out = BytesMut::with_capacity(batch::HEADER_LEN + record.len());
    out.put_i64(0);
    out.put_i32((batch::HEADER_LEN - 12 + record.len()) as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(0);
    out.put_i16(0x10 | 0x20); // transactional | control
    out.put_i32(0);
    out.put_i64(now_ms);
    out.put_i64(now_ms);
    out.put_i64(pid);
    out.put_i16(epoch);
    out.put_i32(-1);
    out.put_i32(1);
    out.extend_from_slice(&record);
    batch::fill_crc(&mut out);
    out.freeze()
}

/// The state a COMMIT/ABORT marker `h` changes: it closes the producer's open transaction
/// here (recording an abort in the aborted index), and a newer epoch on the marker (KIP-890
/// bumps it at every commit/abort) resets the producer's sequence state.
pub(super) fn plan_marker(
    st: &State,
    h: &BatchHeader,
    commit: bool,
    w: &mut sled::Batch,
    eff: &mut Effects,
) {
    let pid = h.producer_id;
    if let Some(first) = st.ongoing.get(&pid).copied() {
        w.remove(&ongoing_key(pid));
        if !commit {
            let mut v = [0u8; 16];
            v[0..8].copy_from_slice(&pid.to_be_bytes());
            v[8..16].copy_from_slice(&first.to_be_bytes());
            w.insert(&aborted_key(h.base_offset), &v);
        }
        eff.closes_txn = Some((pid, first, commit));
    }
    if st
        .producers
        .get(&pid)
        .is_none_or(|e| e.epoch < h.producer_epoch)
    {
        let fresh = ProducerEntry {
            epoch: h.producer_epoch,
            batches: Default::default(),
        };
        w.insert(&producer_key(pid), fresh.encode());
        eff.producer = Some((pid, fresh));
    }
}

/// Whether a control batch is a COMMIT (true) or ABORT (false) marker: the type in its one
/// record's key. None for a control batch of another kind.
pub(super) fn marker_type(batch: &[u8]) -> Option<bool> {
    let h = batch::BatchHeader::parse(batch).ok()?;
    let section = crate::log::records::records_section(batch).ok()?;
    let recs = crate::log::records::parse_records(&section, h.records_count).ok()?;
    let key = recs.first()?.key.as_ref()?;
    match i16::from_be_bytes(key.get(2..4)?.try_into().ok()?) {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

impl PartitionLog {
    /// Closes `pid`'s open transaction here with a COMMIT or ABORT marker. The marker's
    /// epoch becomes the producer's epoch here, so batches from an older epoch are fenced
    /// from now on, even in a partition the producer has not written to yet (a write checked
    /// against the transaction but not yet appended). Returns the marker's offset, or None
    /// when there was nothing to close or fence (a retried marker writes nothing twice).
    /// Any pending verification of the producer is void from now on.
    pub fn write_marker(
        &self,
        pid: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<Option<i64>, AppendError> {
        let mut st = self.state.lock().unwrap();
        if !st.leading {
            return Err(AppendError::NotLeader);
        }
        st.verifying.remove(&pid);
        let known_epoch = st.producers.get(&pid).map(|e| e.epoch);
        if !st.ongoing.contains_key(&pid) && known_epoch.is_some_and(|e| e >= epoch) {
            return Ok(None);
        }
        let base = st.next_offset;
        let mut bytes =
            BytesMut::from(&control_batch(pid, epoch, commit, coordinator_epoch, now_ms)[..]);
        batch::stamp(&mut bytes, base, st.leader_epoch);
        let h = batch::stored_header(&bytes);
        self.store(&mut st, &[&bytes], &h, None, Some(commit))?;
        let hw = st.high_watermark;
        drop(st);
        self.wake_waiters(hw);
        Ok(Some(base))
    }

    /// Aborted transactions whose records may appear in a fetch of [from, to]. The list is
    /// ordered by marker offset: a binary search finds the first marker at or after `from`,
    /// and the scan stops once markers lie further past `to` than any transaction spans,
    /// so a read_committed fetch costs what it returns, not the partition's history.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let st = self.state.lock().unwrap();
        let start = st.aborted.partition_point(|a| a.last_offset < from);
        let stop = to.saturating_add(st.max_aborted_span);
        st.aborted[start..]
            .iter()
            .take_while(|a| a.last_offset <= stop)
            .filter(|a| a.first_offset <= to)
            .copied()
            .collect()
    }

    pub fn last_stable_offset(&self) -> i64 {
        self.state.lock().unwrap().last_stable_offset()
    }

    /// Producers with a transaction open here: (producer id, first offset).
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.state
            .lock()
            .unwrap()
            .ongoing
            .iter()
            .map(|(p, o)| (*p, *o))
            .collect()
    }

    /// Idempotence state of every producer that wrote here (DescribeProducers):
    /// (producer id, epoch, last sequence, last timestamp).
    /// Whether `pid` has a transaction open here under `epoch`: the partition is part of it
    /// already, so a further write needs no check with the coordinator (as in Kafka).
    pub fn in_transaction(&self, pid: i64, epoch: i16) -> bool {
        let st = self.state.lock().unwrap();
        st.ongoing.contains_key(&pid) && st.producers.get(&pid).is_some_and(|e| e.epoch == epoch)
    }

    pub fn producers(&self) -> Vec<(i64, i16, i32, i64)> {
        let st = self.state.lock().unwrap();
        let mut out: Vec<_> = st
            .producers
            .iter()
            .map(|(pid, e)| {
                let last = e.batches.back();
                (
                    *pid,
                    e.epoch,
                    last.map(|b| b.last_seq).unwrap_or(-1),
                    last.map(|b| b.max_timestamp).unwrap_or(-1),
                )
            })
            .collect();
        out.sort();
        out
    }
}
