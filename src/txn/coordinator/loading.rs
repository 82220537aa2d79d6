//! Where transaction state lives in a cluster: the compacted internal topic
//! `__transaction_state`, as in Kafka. A transactional id belongs to partition
//! `abs(javaHash(id)) % transaction.state.log.num.partitions`; the partition's leader is its
//! coordinator. Every transition is a record there (Kafka's `TransactionLogKey` v0, the id;
//! a Fjord value: version 100, then the state as JSON), replicated to the ISR before the
//! client is answered; a broker that becomes the leader replays the partition and finishes
//! what its predecessor left in PrepareCommit/PrepareAbort (the timer writes the markers).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;

use super::{TxnCoordinator, TxnMeta};
use crate::group::journal::{self, KeyValue, partition_for};
use crate::meta::topics::Topics;

pub const TOPIC: &str = "__transaction_state";
const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 100;

fn key(id: &str) -> Bytes {
    let mut k = BytesMut::with_capacity(4 + id.len());
    k.put_i16(KEY_VERSION);
    k.put_i16(id.len() as i16);
    k.extend_from_slice(id.as_bytes());
    k.freeze()
}

/// The record of `id`'s state (None: the id is forgotten).
pub fn encode(id: &str, m: Option<&TxnMeta>) -> anyhow::Result<KeyValue> {
    let value = match m {
        None => None,
        Some(m) => {
            let json = serde_json::to_vec(m)?;
            let mut v = BytesMut::with_capacity(2 + json.len());
            v.put_i16(VALUE_VERSION);
            v.extend_from_slice(&json);
            Some(v.freeze())
        }
    };
    Ok((key(id), value))
}

/// The id a record is about and its state; None for records of other formats.
pub fn decode(k: &Bytes, v: Option<&Bytes>) -> Option<(String, Option<TxnMeta>)> {
    let mut k = k.clone();
    if k.remaining() < 4 || k.get_i16() != KEY_VERSION {
        return None;
    }
    let n = usize::try_from(k.get_i16()).ok()?;
    if k.remaining() < n {
        return None;
    }
    let id = String::from_utf8(k.split_to(n).to_vec()).ok()?;
    let meta = match v {
        None => None,
        Some(v) => {
            let mut v = v.clone();
            if v.remaining() < 2 || v.get_i16() != VALUE_VERSION {
                return None;
            }
            Some(serde_json::from_slice(&v).ok()?)
        }
    };
    Some((id, meta))
}

/// How a single node creates `__transaction_state` on first use.
pub struct CreateHere {
    pub topics: Arc<Topics>,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

impl TxnCoordinator {
    /// Whether this broker coordinates transactional id `id` now (see
    /// [`journal::Ownership::check`]); on a single node the topic is created on first use.
    /// Without a journal (unit tests) everything is coordinated here.
    pub fn check(&self, id: &str) -> Result<(), ResponseError> {
        if !self.journal.is_enabled() {
            return Ok(());
        }
        if self.journal.partitions() == 0 {
            self.create_here()?;
        }
        self.journal.owned.check(&self.journal, id)
    }

    /// The partition of `__transaction_state` that holds `id`, once the topic exists.
    pub fn partition_of(&self, id: &str) -> Option<i32> {
        self.journal.partition_of(id)
    }

    /// On a single node: creates `__transaction_state` and loads it.
    pub fn create_here(&self) -> Result<(), ResponseError> {
        let Some(c) = &self.create_here else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        journal::create_here(&c.topics, TOPIC, c.partitions, &c.configs)?;
        self.sync_ownership(|p| self.journal.log(p).map(|l| l.leader_epoch()));
        Ok(())
    }

    /// Loads the partitions this broker has come to lead (`leads(p)`: the leader epoch),
    /// unloads the others. Blocking: replays logs.
    pub fn sync_ownership(&self, leads: impl Fn(i32) -> Option<i32>) {
        let n = self.journal.partitions();
        self.journal.owned.sync(
            &self.journal,
            leads,
            |p| self.load_partition(p, n),
            |p| self.unload_partition(p, n),
        );
    }

    fn load_partition(&self, p: i32, n: i32) -> anyhow::Result<()> {
        let started = Instant::now();
        self.unload_partition(p, n);
        let log = self
            .journal
            .log(p)
            .ok_or_else(|| anyhow::anyhow!("no partition {p}"))?;
        let mut last: BTreeMap<String, Option<TxnMeta>> = BTreeMap::new();
        journal::replay_raw(&log, |k, v| {
            if let Some((id, m)) = decode(&k, v.as_ref()) {
                last.insert(id, m);
            }
        })?;
        // Transactional ids an earlier release kept in the store: into the journal, unless
        // it already knows them (persisting removes the store's copy).
        for m in self.backend.legacy()? {
            let id = m.transactional_id.clone();
            if partition_for(&id, n) != p || last.contains_key(&id) {
                continue;
            }
            self.backend.persist(&m)?;
            tracing::info!(transactional_id = %id, partition = p, "transactional id of an earlier release moved into {TOPIC}");
            last.insert(id, Some(m));
        }
        let mut preparing = 0;
        let mut map = self.txns.lock().unwrap_or_else(|p| p.into_inner());
        for (id, m) in last {
            if let Some(m) = m {
                preparing += usize::from(Self::preparing(m.state));
                map.insert(id, Arc::new(Mutex::new(m)));
            }
        }
        tracing::info!(
            partition = p,
            ids = map.len(),
            preparing,
            ms = started.elapsed().as_millis() as u64,
            "loaded {TOPIC} partition"
        );
        Ok(())
    }

    fn unload_partition(&self, p: i32, n: i32) {
        let mut map = self.txns.lock().unwrap_or_else(|p| p.into_inner());
        let gone: HashSet<String> = map
            .keys()
            .filter(|id| partition_for(id, n) == p)
            .cloned()
            .collect();
        map.retain(|id, _| !gone.contains(id));
    }

    /// Waits until the state of `id` written so far is on every ISR member of its partition
    /// (see [`journal::Journal::replicated`]).
    pub async fn replicated(&self, id: &str, timeout_ms: u64) -> Result<(), ResponseError> {
        self.journal.replicated(id, timeout_ms).await
    }

    /// Whether the store held transactional ids of an earlier release at start.
    pub fn has_legacy(&self) -> bool {
        self.backend.legacy().is_ok_and(|l| !l.is_empty())
    }

    /// Gives the broker to the backend (markers to other brokers).
    pub fn attach(&self, broker: std::sync::Weak<crate::Broker>) {
        self.backend.attach(broker);
    }

    /// The `__transaction_state` journal.
    pub fn journal(&self) -> &crate::group::journal::Journal {
        &self.journal
    }

    /// Whether partition `p` of `__transaction_state` is loaded here.
    pub fn is_loaded(&self, p: i32) -> bool {
        self.journal.owned.is_loaded(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_records_round_trip() {
        let m = TxnMeta::new("tid", 7, 1000, 5);
        let (k, v) = encode("tid", Some(&m)).unwrap();
        assert_eq!(
            &k[..],
            b"\x00\x00\x00\x03tid",
            "Kafka's TransactionLogKey v0"
        );
        let (id, back) = decode(&k, v.as_ref()).unwrap();
        assert_eq!(id, "tid");
        assert_eq!(back.unwrap().producer_id, 7);
        let (k, v) = encode("tid", None).unwrap();
        assert!(matches!(decode(&k, v.as_ref()), Some((id, None)) if id == "tid"));
    }
}
