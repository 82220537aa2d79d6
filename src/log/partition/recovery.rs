//! Bringing the index and the segment files back into agreement when a partition opens.
//!
//! An append writes the batch to its segment file first and the index entry to sled second.
//! The file write reaches the OS at once; sled buffers its writes for up to
//! `flush_every_ms`, so after the process is killed the files may hold batches the index
//! never saw. They were acknowledged, so they are re-indexed here, with the same producer
//! and transaction effects as their original append. The other way round (after a power
//! loss without the flush setting) an index entry may point past the end of its file; such
//! entries, and everything after them, are dropped.

use super::{IndexEntry, Loc, State, apply_effects, plan_effects, replica, txn};
use crate::log::batch::{self, BatchHeader, HEADER_LEN};

pub(super) fn recover(
    tree: &sled::Tree,
    st: &mut State,
    mut entries: Vec<IndexEntry>,
) -> anyhow::Result<()> {
    // 1. Index entries whose bytes are not (all) in their file.
    let missing = entries.iter().position(|e| match e.loc {
        Loc::Inline => false,
        Loc::File { segment, pos } => st
            .segs
            .len_of(segment)
            .is_none_or(|len| pos + e.size as u64 > len),
    });
    if let Some(i) = missing {
        tracing::warn!(
            from_offset = entries[i].base_offset,
            batches = entries.len() - i,
            "index entries point past the end of their segment file; dropping them"
        );
        let mut w = sled::Batch::default();
        for e in &entries[i..] {
            e.remove(&mut w);
        }
        tree.apply_batch(w)?;
        entries.truncate(i);
    }
    for e in entries {
        st.push(e);
    }
    if let Some(last) = st.index.last() {
        st.next_offset = (last.last_offset + 1).max(st.log_start_offset);
    }

    // 2. Batches in the files past the last indexed one.
    let last_file = st.index.iter().rev().find_map(|e| match e.loc {
        Loc::File { segment, pos } => Some((segment, pos + e.size as u64)),
        Loc::Inline => None,
    });
    let mut recovered = 0u64;
    let mut w = sled::Batch::default();
    for base in st.segs.bases() {
        let mut pos = match last_file {
            Some((seg, _)) if base < seg => continue,
            Some((seg, end)) if base == seg => end,
            _ => 0,
        };
        let len = st.segs.len_of(base).unwrap_or(0);
        let file = st.segs.file(base).expect("listed segment");
        while pos < len {
            let torn = |why: &str| {
                tracing::warn!(
                    segment = base,
                    position = pos,
                    reason = why,
                    "cutting a torn write off the end of a segment"
                );
            };
            let mut head = [0u8; HEADER_LEN];
            if len - pos < HEADER_LEN as u64 || file.read_exact_at(&mut head, pos).is_err() {
                torn("short header");
                st.segs.truncate(base, pos)?;
                break;
            }
            let h = BatchHeader::parse(&head).expect("full header");
            let size = h.batch_length as i64 + batch::LOG_OVERHEAD as i64;
            if h.magic != 2 || size < HEADER_LEN as i64 || pos + size as u64 > len {
                torn("bad length or magic");
                st.segs.truncate(base, pos)?;
                break;
            }
            if h.base_offset < st.next_offset {
                // Already below the log start (retention), or a write whose index entry
                // failed and that a later append overtook.
                pos += size as u64;
                continue;
            }
            let mut bytes = vec![0u8; size as usize];
            file.read_exact_at(&mut bytes, pos)?;
            if !batch::crc_matches(&bytes) {
                torn("CRC mismatch");
                st.segs.truncate(base, pos)?;
                break;
            }
            let marker = if h.is_control() {
                txn::marker_type(&bytes)
            } else {
                None
            };
            // A batch from an epoch already fenced does not roll the state back.
            let producer = replica::replayed_producer(st, &h);
            let entry =
                IndexEntry::from_header(&h, size as usize, Loc::File { segment: base, pos });
            let eff = plan_effects(st, &h, entry, producer, marker, &mut w);
            apply_effects(st, eff);
            recovered += 1;
            pos += size as u64;
        }
    }
    tree.apply_batch(w)?;
    if recovered > 0 {
        tracing::info!(
            batches = recovered,
            next_offset = st.next_offset,
            "re-indexed batches found in segment files past the index"
        );
    }
    Ok(())
}
