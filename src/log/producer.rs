//! Idempotent-producer state for one partition: the producer's epoch and its last few
//! batches, so a retried batch is recognised and answered with its original offset.
//!
//! This mirrors Kafka's ProducerStateManager for the non-transactional case: a producer keeps
//! at most 5 batches in flight per partition, so remembering the last 5 is enough to detect
//! every duplicate a well-behaved producer can send.

use std::collections::VecDeque;

use crate::log::batch::BatchHeader;

/// Batches remembered per producer; matches the producer's `max.in.flight.requests` cap.
pub const CACHED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<CachedBatch>,
}

/// What the sequence check decided for an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Accept,
    /// Already stored: answer with the original batch, store nothing.
    Duplicate(CachedBatch),
    /// A gap or reordering: OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder { expected: i32, got: i32 },
    /// The producer has been superseded by a newer epoch: INVALID_PRODUCER_EPOCH.
    StaleEpoch { current: i16, got: i16 },
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

impl ProducerEntry {
    pub fn check(entry: Option<&ProducerEntry>, h: &BatchHeader) -> SequenceCheck {
        let Some(e) = entry else {
            // A producer we have never seen must start at sequence 0; anything else means
            // earlier batches went missing.
            return if h.base_sequence == 0 {
                SequenceCheck::Accept
            } else {
                SequenceCheck::OutOfOrder {
                    expected: 0,
                    got: h.base_sequence,
                }
            };
        };
        if h.producer_epoch < e.epoch {
            return SequenceCheck::StaleEpoch {
                current: e.epoch,
                got: h.producer_epoch,
            };
        }
        if h.producer_epoch > e.epoch {
            // A bumped epoch restarts the sequence.
            return if h.base_sequence == 0 {
                SequenceCheck::Accept
            } else {
                SequenceCheck::OutOfOrder {
                    expected: 0,
                    got: h.base_sequence,
                }
            };
        }
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return SequenceCheck::Duplicate(*b);
        }
        let expected = e.batches.back().map(|b| next_seq(b.last_seq)).unwrap_or(0);
        if h.base_sequence != expected {
            return SequenceCheck::OutOfOrder {
                expected,
                got: h.base_sequence,
            };
        }
        SequenceCheck::Accept
    }

    /// Records an appended batch (`h.base_offset` already assigned).
    pub fn record(entry: Option<ProducerEntry>, h: &BatchHeader) -> ProducerEntry {
        let mut e = match entry {
            Some(e) if e.epoch == h.producer_epoch => e,
            _ => ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
            },
        };
        if e.batches.len() == CACHED_BATCHES {
            e.batches.pop_front();
        }
        e.batches.push_back(CachedBatch {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset_delta: h.last_offset_delta,
            max_timestamp: h.max_timestamp,
        });
        e
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(3 + self.batches.len() * 28);
        v.extend_from_slice(&self.epoch.to_be_bytes());
        v.push(self.batches.len() as u8);
        for b in &self.batches {
            v.extend_from_slice(&b.first_seq.to_be_bytes());
            v.extend_from_slice(&b.last_seq.to_be_bytes());
            v.extend_from_slice(&b.base_offset.to_be_bytes());
            v.extend_from_slice(&b.last_offset_delta.to_be_bytes());
            v.extend_from_slice(&b.max_timestamp.to_be_bytes());
        }
        v
    }

    pub fn decode(v: &[u8]) -> Option<ProducerEntry> {
        let epoch = i16::from_be_bytes(v.get(0..2)?.try_into().ok()?);
        let n = *v.get(2)? as usize;
        let mut batches = VecDeque::with_capacity(n);
        let mut p = 3;
        for _ in 0..n {
            let s = v.get(p..p + 28)?;
            batches.push_back(CachedBatch {
                first_seq: i32::from_be_bytes(s[0..4].try_into().ok()?),
                last_seq: i32::from_be_bytes(s[4..8].try_into().ok()?),
                base_offset: i64::from_be_bytes(s[8..16].try_into().ok()?),
                last_offset_delta: i32::from_be_bytes(s[16..20].try_into().ok()?),
                max_timestamp: i64::from_be_bytes(s[20..28].try_into().ok()?),
            });
            p += 28;
        }
        Some(ProducerEntry { epoch, batches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(epoch: i16, seq: i32, n: i32, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 0,
            leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: n - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: 7,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: n,
        }
    }

    #[test]
    fn sequence_rules() {
        let h0 = header(0, 0, 3, 10);
        assert_eq!(ProducerEntry::check(None, &h0), SequenceCheck::Accept);
        let e = ProducerEntry::record(None, &h0);
        assert!(
            matches!(ProducerEntry::check(Some(&e), &h0), SequenceCheck::Duplicate(b) if b.base_offset == 10)
        );
        assert_eq!(
            ProducerEntry::check(Some(&e), &header(0, 3, 1, 0)),
            SequenceCheck::Accept
        );
        assert!(matches!(
            ProducerEntry::check(Some(&e), &header(0, 5, 1, 0)),
            SequenceCheck::OutOfOrder {
                expected: 3,
                got: 5
            }
        ));
        let e1 = ProducerEntry::record(Some(e.clone()), &header(1, 0, 1, 20));
        assert!(matches!(
            ProducerEntry::check(Some(&e1), &header(0, 3, 1, 0)),
            SequenceCheck::StaleEpoch { .. }
        ));
        assert_eq!(ProducerEntry::decode(&e1.encode()), Some(e1));
    }
}
