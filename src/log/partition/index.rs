//! The partition tree's key space and the index entry: where each batch's bytes are.

use crate::log::batch::BatchHeader;

pub(super) const BATCH_PREFIX: u8 = b'b';
pub(super) const INDEX_PREFIX: u8 = b'i';
pub(super) const PRODUCER_PREFIX: u8 = b'p';
pub(super) const STATE_KEY: &[u8] = b"s";
pub(super) const EPOCH_PREFIX: u8 = b'e';

/// The leader-epoch cache entry of `epoch` (value: its start offset).
pub(super) fn epoch_key(epoch: i32) -> [u8; 5] {
    let mut k = [EPOCH_PREFIX; 5];
    k[1..].copy_from_slice(&(epoch as u32).to_be_bytes());
    k
}

pub(super) fn batch_key(offset: i64) -> [u8; 9] {
    let mut k = [BATCH_PREFIX; 9];
    k[1..].copy_from_slice(&(offset as u64).to_be_bytes());
    k
}

pub(super) fn index_key(offset: i64) -> [u8; 9] {
    let mut k = [INDEX_PREFIX; 9];
    k[1..].copy_from_slice(&(offset as u64).to_be_bytes());
    k
}

/// Where a batch's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    /// In the tree under `batch_key(base_offset)`.
    Inline,
    /// In segment file `segment` (its base offset) at byte `pos`.
    File { segment: i64, pos: u64 },
}

/// One stored batch, as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub size: u32,
    pub loc: Loc,
}

impl IndexEntry {
    pub(super) fn encode(&self) -> [u8; 36] {
        let mut v = [0u8; 36];
        v[0..8].copy_from_slice(&self.last_offset.to_be_bytes());
        v[8..16].copy_from_slice(&self.max_timestamp.to_be_bytes());
        v[16..20].copy_from_slice(&self.size.to_be_bytes());
        let (segment, pos) = match self.loc {
            Loc::Inline => (-1i64, 0u64),
            Loc::File { segment, pos } => (segment, pos),
        };
        v[20..28].copy_from_slice(&segment.to_be_bytes());
        v[28..36].copy_from_slice(&pos.to_be_bytes());
        v
    }

    pub(super) fn decode(base_offset: i64, v: &[u8]) -> Option<Self> {
        // 20-byte entries come from stores written before segment files existed: their
        // batches are inline in the tree.
        let (segment, pos) = match v.len() {
            20 => (-1, 0),
            _ => (
                i64::from_be_bytes(v.get(20..28)?.try_into().ok()?),
                u64::from_be_bytes(v.get(28..36)?.try_into().ok()?),
            ),
        };
        Some(IndexEntry {
            base_offset,
            last_offset: i64::from_be_bytes(v.get(0..8)?.try_into().ok()?),
            max_timestamp: i64::from_be_bytes(v.get(8..16)?.try_into().ok()?),
            size: u32::from_be_bytes(v.get(16..20)?.try_into().ok()?),
            loc: if segment < 0 {
                Loc::Inline
            } else {
                Loc::File { segment, pos }
            },
        })
    }

    /// Removes the entry, and its bytes when they are inline, from the tree.
    pub(super) fn remove(&self, w: &mut sled::Batch) {
        w.remove(&index_key(self.base_offset));
        if self.loc == Loc::Inline {
            w.remove(&batch_key(self.base_offset));
        }
    }

    pub(super) fn from_header(h: &BatchHeader, size: usize, loc: Loc) -> Self {
        IndexEntry {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
            size: size as u32,
            loc,
        }
    }
}

pub(super) fn key_offset(k: &[u8]) -> i64 {
    u64::from_be_bytes(k[1..9].try_into().expect("9-byte key")) as i64
}

pub(super) fn producer_key(pid: i64) -> [u8; 9] {
    let mut k = [PRODUCER_PREFIX; 9];
    k[1..].copy_from_slice(&(pid as u64).to_be_bytes());
    k
}
