//! The group coordinator's records in `__consumer_offsets`. Committed offsets use Kafka's
//! own `OffsetCommitKey` (version 1: group, topic, partition) and `OffsetCommitValue`
//! (version 3: offset, leader epoch, metadata, commit timestamp), so Kafka's tools read them.
//! A group's membership uses Kafka's `GroupMetadataKey` (version 2: group) with a Fjord value
//! (version [`GROUP_VALUE_VERSION`], then the group's JSON form, the same as the store kept
//! before). A transaction's pending offsets use a Fjord key (version 100). A null value
//! (tombstone) deletes the key; compaction keeps the last value of each key.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::offsets::Committed;

pub const TOPIC: &str = "__consumer_offsets";
const OFFSET_KEY_VERSION: i16 = 1;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_KEY_VERSION: i16 = 2;
/// Not one of Kafka's `GroupMetadataValue` versions (0-4): Kafka's formatter will not read it.
pub const GROUP_VALUE_VERSION: i16 = 100;
/// A transaction's offset commit waiting for the transaction's outcome (Fjord's key: Kafka
/// writes these as transactional `OffsetCommitKey` records completed by a control marker).
const PENDING_KEY_VERSION: i16 = 100;

/// One change of the coordinator's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A committed offset, or its deletion.
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<Committed>,
    },
    /// A group's persisted form (JSON), or its deletion.
    Group { group: String, value: Option<Bytes> },
    /// An offset a transaction committed (TxnOffsetCommit), applied when the transaction
    /// commits; deleted (tombstone) once the transaction ends either way.
    Pending {
        group: String,
        producer_id: i64,
        topic: String,
        partition: i32,
        value: Option<Committed>,
    },
}

impl Entry {
    pub fn group(&self) -> &str {
        match self {
            Entry::Offset { group, .. }
            | Entry::Group { group, .. }
            | Entry::Pending { group, .. } => group,
        }
    }
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.extend_from_slice(s.as_bytes());
}

fn get_str(b: &mut Bytes) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let n = b.get_i16();
    let n = usize::try_from(n).ok()?;
    if b.remaining() < n {
        return None;
    }
    String::from_utf8(b.split_to(n).to_vec()).ok()
}

fn offset_value(c: &Committed) -> Bytes {
    let mut v = BytesMut::new();
    v.put_i16(OFFSET_VALUE_VERSION);
    v.put_i64(c.offset);
    v.put_i32(c.leader_epoch);
    put_str(&mut v, &c.metadata);
    v.put_i64(c.commit_timestamp);
    v.freeze()
}

pub fn encode(e: &Entry) -> (Bytes, Option<Bytes>) {
    let mut k = BytesMut::new();
    match e {
        Entry::Pending {
            group,
            producer_id,
            topic,
            partition,
            value,
        } => {
            k.put_i16(PENDING_KEY_VERSION);
            put_str(&mut k, group);
            k.put_i64(*producer_id);
            put_str(&mut k, topic);
            k.put_i32(*partition);
            (k.freeze(), value.as_ref().map(offset_value))
        }
        Entry::Offset {
            group,
            topic,
            partition,
            value,
        } => {
            k.put_i16(OFFSET_KEY_VERSION);
            put_str(&mut k, group);
            put_str(&mut k, topic);
            k.put_i32(*partition);
            (k.freeze(), value.as_ref().map(offset_value))
        }
        Entry::Group { group, value } => {
            k.put_i16(GROUP_KEY_VERSION);
            put_str(&mut k, group);
            let v = value.as_ref().map(|json| {
                let mut v = BytesMut::with_capacity(2 + json.len());
                v.put_i16(GROUP_VALUE_VERSION);
                v.extend_from_slice(json);
                v.freeze()
            });
            (k.freeze(), v)
        }
    }
}

/// The entry a record holds; `None` for keys this broker does not know (other versions
/// Kafka writes, which a Fjord data dir never holds) or damaged records.
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Option<Entry> {
    let mut k = key.clone();
    if k.remaining() < 2 {
        return None;
    }
    match k.get_i16() {
        0 | OFFSET_KEY_VERSION => {
            let group = get_str(&mut k)?;
            let topic = get_str(&mut k)?;
            if k.remaining() < 4 {
                return None;
            }
            let partition = k.get_i32();
            let value = match value {
                None => None,
                Some(v) => Some(decode_offset(&mut v.clone())?),
            };
            Some(Entry::Offset {
                group,
                topic,
                partition,
                value,
            })
        }
        PENDING_KEY_VERSION => {
            let group = get_str(&mut k)?;
            if k.remaining() < 8 {
                return None;
            }
            let producer_id = k.get_i64();
            let topic = get_str(&mut k)?;
            if k.remaining() < 4 {
                return None;
            }
            let partition = k.get_i32();
            let value = match value {
                None => None,
                Some(v) => Some(decode_offset(&mut v.clone())?),
            };
            Some(Entry::Pending {
                group,
                producer_id,
                topic,
                partition,
                value,
            })
        }
        GROUP_KEY_VERSION => {
            let group = get_str(&mut k)?;
            let value = match value {
                None => None,
                Some(v) => {
                    let mut v = v.clone();
                    if v.remaining() < 2 || v.get_i16() != GROUP_VALUE_VERSION {
                        return None;
                    }
                    Some(v)
                }
            };
            Some(Entry::Group { group, value })
        }
        _ => None,
    }
}

fn decode_offset(v: &mut Bytes) -> Option<Committed> {
    if v.remaining() < 2 {
        return None;
    }
    let version = v.get_i16();
    if !(0..=3).contains(&version) || v.remaining() < 8 {
        return None;
    }
    let offset = v.get_i64();
    let leader_epoch = if version >= 3 {
        if v.remaining() < 4 {
            return None;
        }
        v.get_i32()
    } else {
        -1
    };
    let metadata = get_str(v)?;
    if v.remaining() < 8 {
        return None;
    }
    let commit_timestamp = v.get_i64();
    Some(Committed {
        offset,
        leader_epoch,
        commit_timestamp,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_kafka_formats() {
        let c = Committed {
            offset: 42,
            leader_epoch: 3,
            commit_timestamp: 1_700_000_000_123,
            metadata: "meta".into(),
        };
        let entries = [
            Entry::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
                value: Some(c.clone()),
            },
            Entry::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 8,
                value: None,
            },
            Entry::Group {
                group: "g".into(),
                value: Some(Bytes::from_static(b"{\"x\":1}")),
            },
            Entry::Group {
                group: "g".into(),
                value: None,
            },
            Entry::Pending {
                group: "g".into(),
                producer_id: 7,
                topic: "t".into(),
                partition: 1,
                value: Some(c.clone()),
            },
            Entry::Pending {
                group: "g".into(),
                producer_id: 7,
                topic: "t".into(),
                partition: 1,
                value: None,
            },
        ];
        for e in &entries {
            let (k, v) = encode(e);
            assert_eq!(decode(&k, v.as_ref()).as_ref(), Some(e));
        }
        // Kafka's OffsetCommitKey v1: version, group, topic, partition.
        let (k, v) = encode(&entries[0]);
        assert_eq!(&k[..], b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x07");
        // OffsetCommitValue v3: version, offset, leader epoch, metadata, commit timestamp.
        let v = v.unwrap();
        assert_eq!(&v[..2], b"\x00\x03");
        assert_eq!(v.len(), 2 + 8 + 4 + 2 + 4 + 8);
        assert_eq!(decode(&Bytes::from_static(b"\x00\x09zz"), None), None);
    }
}
