//! A coordinator's state as records of a compacted internal topic, as Kafka keeps it
//! (`__consumer_offsets` for groups, `__transaction_state` for transactions): a key (group or
//! transactional id) belongs to partition `abs(javaHash(key)) % partitions`, and the leader
//! of that partition coordinates it. Every change is appended there (and replicated with
//! acks=all) before it is acknowledged; a broker that becomes the partition's leader
//! rebuilds the state by replaying it. The group records' formats are in
//! [`super::records`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub use super::records::{Entry, TOPIC, decode, encode};
use crate::log::PartitionLog;
use crate::meta::topics::Topics;

/// The partition of `__consumer_offsets` that holds `group` (Kafka's
/// `Utils.abs(groupId.hashCode) % partitions`).
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let h = crate::cluster::view::java_string_hash(group);
    let h = if h == i32::MIN { 0 } else { h.abs() };
    h % partitions.max(1)
}

/// Creates a coordinator topic on a single node (all its partitions led here); the caller
/// then loads it. COORDINATOR_NOT_AVAILABLE if it cannot.
pub fn create_here(
    topics: &Topics,
    name: &str,
    partitions: i32,
    configs: &std::collections::BTreeMap<String, String>,
) -> Result<(), ResponseError> {
    match topics.create(name, partitions, configs.clone(), false) {
        Ok(_) => tracing::info!(partitions, "created {name}"),
        Err(crate::meta::topics::TopicError::AlreadyExists(_)) => {}
        Err(e) => {
            tracing::warn!(error = ?e, "cannot create {name}");
            return Err(ResponseError::CoordinatorNotAvailable);
        }
    }
    Ok(())
}

/// A key and its value (None: a tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

/// One batch of records, as a producer without idempotence would send it.
pub fn batch(records: &[KeyValue], now_ms: i64) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let (key, value) = (key.clone(), value.clone());
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The batch's base sequence is -1 (no producer id); the encoder keeps records
                // in one batch while offset minus sequence stays constant.
                sequence: (i as i32).wrapping_sub(1),
                timestamp: now_ms,
                key: Some(key),
                value,
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding an uncompressed batch cannot fail");
    buf.freeze()
}

/// Every entry of `log` from its start to its end, in order (a new leader's whole log: what
/// it holds is what the partition holds from now on).
pub fn replay(log: &PartitionLog, mut f: impl FnMut(Entry)) -> anyhow::Result<()> {
    replay_raw(log, |k, v| {
        if let Some(e) = decode(&k, v.as_ref()) {
            f(e);
        }
    })
}

/// Every keyed record of `log` from its start to its end, in order. Records of aborted or
/// open transactions are not skipped: nothing writes these topics transactionally.
pub fn replay_raw(
    log: &PartitionLog,
    mut f: impl FnMut(Bytes, Option<Bytes>),
) -> anyhow::Result<()> {
    let mut offset = log.log_start_offset();
    loop {
        let end = log.log_end_offset();
        if offset >= end {
            return Ok(());
        }
        let plan = log
            .plan_replica_read(offset, 1 << 20)
            .map_err(|e| anyhow::anyhow!("reading the log: {e:?}"))?;
        let read = log
            .read_planned(plan)
            .map_err(|e| anyhow::anyhow!("reading the log: {e:?}"))?;
        let mut buf = read.records;
        if buf.is_empty() {
            return Ok(());
        }
        while buf.has_remaining() {
            let set = RecordBatchDecoder::decode(&mut buf)?;
            for r in set.records {
                if r.offset < offset || r.control {
                    continue;
                }
                offset = r.offset + 1;
                if let Some(key) = r.key {
                    f(key, r.value);
                }
            }
        }
    }
}

/// A coordinator's internal topic (`__consumer_offsets`, `__transaction_state`): appends
/// keyed by the partition of a group or transactional id, and what was appended last to
/// each partition (the offset the high watermark must pass, the leader epoch it was
/// appended in).
#[derive(Default)]
pub struct Journal {
    topics: Option<Arc<Topics>>,
    topic: &'static str,
    last: Mutex<HashMap<i32, (i64, i32)>>,
    /// The partitions this broker leads and has loaded (or is loading).
    pub owned: Ownership,
    /// A partition's ISR size and its topic's `min.insync.replicas` (given by the broker,
    /// which has the metadata; none in unit tests).
    min_isr: std::sync::OnceLock<IsrCheck>,
}

/// See [`Journal::set_min_isr_check`].
pub type IsrCheck = Box<dyn Fn(i32) -> Option<(usize, usize)> + Send + Sync>;

impl Journal {
    pub fn new(topics: Arc<Topics>, topic: &'static str) -> Self {
        Journal {
            topics: Some(topics),
            topic,
            last: Mutex::default(),
            owned: Ownership::default(),
            min_isr: std::sync::OnceLock::new(),
        }
    }

    /// How a partition's ISR size and `min.insync.replicas` are found: a change is
    /// acknowledged only while the ISR that has it is that large (Kafka's coordinators append
    /// with acks=all and map NOT_ENOUGH_REPLICAS to COORDINATOR_NOT_AVAILABLE).
    pub fn set_min_isr_check(&self, check: IsrCheck) {
        let _ = self.min_isr.set(check);
    }

    /// COORDINATOR_NOT_AVAILABLE while partition `p`'s ISR is below its minimum.
    fn check_min_isr(&self, p: i32) -> Result<(), ResponseError> {
        match self.min_isr.get().and_then(|f| f(p)) {
            Some((isr, min)) if isr < min => {
                tracing::debug!(
                    topic = self.topic,
                    partition = p,
                    isr,
                    min,
                    "the ISR is below min.insync.replicas: not acknowledged"
                );
                Err(ResponseError::CoordinatorNotAvailable)
            }
            _ => Ok(()),
        }
    }

    pub fn topic(&self) -> &'static str {
        self.topic
    }

    /// The partition that holds `key` (a group or transactional id), once the topic exists.
    pub fn partition_of(&self, key: &str) -> Option<i32> {
        let n = self.partitions();
        (n > 0).then(|| partition_for(key, n))
    }

    /// Whether changes go to `__consumer_offsets` (not in unit tests of the coordinator).
    pub fn is_enabled(&self) -> bool {
        self.topics.is_some()
    }

    /// The number of partitions of `__consumer_offsets` here; 0 before it exists.
    pub fn partitions(&self) -> i32 {
        self.topics
            .as_ref()
            .and_then(|t| t.get(self.topic))
            .map_or(0, |t| t.partitions.len() as i32)
    }

    pub fn log(&self, partition: i32) -> Option<Arc<PartitionLog>> {
        self.topics
            .as_ref()?
            .get(self.topic)?
            .partition(partition)
            .cloned()
    }

    /// Appends `entries` (all of one group) to the group's partition. Call with the group
    /// locked, so that the log holds its changes in the order they were made.
    /// NOT_COORDINATOR when this broker does not lead the partition.
    pub fn append(&self, entries: &[Entry]) -> Result<(), ResponseError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let records: Vec<KeyValue> = entries.iter().map(encode).collect();
        self.append_raw(first.group(), &records)
    }

    /// Appends `records` to the partition of `key` (see [`Self::append`]).
    pub fn append_raw(&self, key: &str, records: &[KeyValue]) -> Result<(), ResponseError> {
        if records.is_empty() {
            return Ok(());
        }
        let n = self.partitions();
        if n == 0 {
            // Tests of the coordinator alone run without the topic.
            return if self.topics.is_none() {
                Ok(())
            } else {
                Err(ResponseError::CoordinatorNotAvailable)
            };
        }
        let p = partition_for(key, n);
        let log = self.log(p).ok_or(ResponseError::CoordinatorNotAvailable)?;
        // Only in the leader epoch the partition was loaded (or is being loaded) in: a
        // request that passed its check under an earlier leadership must not write into the
        // partition a new load is replaying.
        match self.owned.epoch_of(p) {
            Some(e) if log.leads_in(e) => {}
            _ => return Err(ResponseError::NotCoordinator),
        }
        let info = log
            .append(&batch(records, crate::handlers::now_ms()), None)
            .map_err(|e| {
                tracing::debug!(topic = self.topic, partition = p, error = ?e, "cannot append");
                ResponseError::NotCoordinator
            })?;
        let mut last = super::lock(&self.last);
        let slot = last.entry(p).or_insert((0, info.leader_epoch));
        if info.last_offset + 1 > slot.0 || info.leader_epoch != slot.1 {
            *slot = (info.last_offset + 1, info.leader_epoch);
        }
        Ok(())
    }

    /// Waits until everything appended to `key`'s partition so far is on every ISR member
    /// (acks=all), up to `timeout_ms`. Errors as Kafka's coordinator maps them: the
    /// leadership gone is NOT_COORDINATOR, a timeout COORDINATOR_NOT_AVAILABLE.
    pub async fn replicated(&self, key: &str, timeout_ms: u64) -> Result<(), ResponseError> {
        self.replicated_after(key, timeout_ms, true).await
    }

    /// [`Self::replicated`] for a request that changed something (`wrote`) or not: one that
    /// wrote nothing waits for the replication of what is there (an earlier attempt's
    /// change) but is not refused for a small ISR, as Kafka refuses only writes for it.
    pub async fn replicated_after(
        &self,
        key: &str,
        timeout_ms: u64,
        wrote: bool,
    ) -> Result<(), ResponseError> {
        match self.partition_of(key) {
            Some(p) => self.wait_partition(p, timeout_ms, wrote).await,
            None => Ok(()),
        }
    }

    /// [`Self::replicated`] for partition `p`.
    pub async fn replicated_partition(&self, p: i32, timeout_ms: u64) -> Result<(), ResponseError> {
        self.wait_partition(p, timeout_ms, true).await
    }

    async fn wait_partition(
        &self,
        p: i32,
        timeout_ms: u64,
        check_isr: bool,
    ) -> Result<(), ResponseError> {
        let log = self.log(p).ok_or(ResponseError::NotCoordinator)?;
        let owned = self
            .owned
            .epoch_of(p)
            .ok_or(ResponseError::NotCoordinator)?;
        // What this broker appended in the leadership it serves now; when it appended
        // nothing yet in it (a new leader, maybe one that led the partition before: its
        // old entry is from another epoch), everything its log holds, which it loaded from
        // and which must be on the new ISR too (a transaction found in PrepareCommit, say).
        let (target, epoch) = match super::lock(&self.last).get(&p).copied() {
            Some((target, epoch)) if epoch == owned => (target, epoch),
            _ => (log.log_end_offset(), owned),
        };
        if check_isr {
            self.check_min_isr(p)?;
        }
        await_hw(&log, target, epoch, timeout_ms)
            .await
            .map_err(|e| match e {
                ResponseError::NotLeaderOrFollower => ResponseError::NotCoordinator,
                _ => ResponseError::CoordinatorNotAvailable,
            })?;
        // The ISR that has it may have shrunk meanwhile (Kafka's
        // NOT_ENOUGH_REPLICAS_AFTER_APPEND).
        if check_isr {
            self.check_min_isr(p)?;
        }
        Ok(())
    }
}

/// Waits until `log`'s high watermark reaches `target` while this replica leads in `epoch`
/// (every ISR member of that leadership has what is below it), up to `timeout_ms`:
/// NOT_LEADER_OR_FOLLOWER once the leadership moved, REQUEST_TIMED_OUT at the timeout.
pub async fn await_hw(
    log: &PartitionLog,
    target: i64,
    epoch: i32,
    timeout_ms: u64,
) -> Result<(), ResponseError> {
    let mut hw = log.watch_high_watermark();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
    loop {
        if *hw.borrow_and_update() >= target {
            return if log.leads_in(epoch) {
                Ok(())
            } else {
                Err(ResponseError::NotLeaderOrFollower)
            };
        }
        if !log.leads_in(epoch) {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        tokio::select! {
            r = hw.changed() => if r.is_err() { return Err(ResponseError::NotLeaderOrFollower) },
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            _ = tokio::time::sleep_until(deadline) => return Err(ResponseError::RequestTimedOut),
        }
    }
}

/// A partition of a coordinator's topic that this broker leads: in which leader epoch, and
/// whether its state is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    pub epoch: i32,
    pub loaded: bool,
}

/// Which partitions of a coordinator's topic this broker has loaded, and the rules both
/// coordinators follow: serve a key only while leading its partition in the epoch it was
/// loaded in.
#[derive(Default)]
pub struct Ownership {
    owned: Mutex<HashMap<i32, Owned>>,
    syncing: Mutex<()>,
}

impl Ownership {
    /// NOT_COORDINATOR when this broker does not lead `key`'s partition,
    /// COORDINATOR_LOAD_IN_PROGRESS while it loads it, COORDINATOR_NOT_AVAILABLE before the
    /// topic exists.
    pub fn check(&self, journal: &Journal, key: &str) -> Result<(), ResponseError> {
        let p = journal
            .partition_of(key)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        match super::lock(&self.owned).get(&p).copied() {
            Some(Owned {
                epoch,
                loaded: true,
            }) => {
                if journal.log(p).is_some_and(|l| l.leads_in(epoch)) {
                    Ok(())
                } else {
                    Err(ResponseError::NotCoordinator)
                }
            }
            Some(_) => Err(ResponseError::CoordinatorLoadInProgress),
            None => Err(ResponseError::NotCoordinator),
        }
    }

    /// The leader epoch partition `p` is loaded (or loading) in here.
    pub fn epoch_of(&self, p: i32) -> Option<i32> {
        super::lock(&self.owned).get(&p).map(|o| o.epoch)
    }

    /// Whether partition `p` is loaded here.
    pub fn is_loaded(&self, p: i32) -> bool {
        super::lock(&self.owned).get(&p).is_some_and(|o| o.loaded)
    }

    /// Brings the loaded partitions in line with the leaderships: `leads(p)` is the leader
    /// epoch in which this broker leads `p`. `load(p, epoch)` replays a partition, `unload`
    /// drops one. One sync at a time.
    pub fn sync(
        &self,
        journal: &Journal,
        leads: impl Fn(i32) -> Option<i32>,
        load: impl Fn(i32) -> anyhow::Result<()>,
        unload: impl Fn(i32),
    ) {
        let _one = super::lock(&self.syncing);
        for p in 0..journal.partitions() {
            let want = leads(p);
            let have = super::lock(&self.owned).get(&p).copied();
            match (want, have) {
                (Some(e), Some(o)) if o.epoch == e && o.loaded => {}
                (Some(epoch), _) => {
                    super::lock(&self.owned).insert(
                        p,
                        Owned {
                            epoch,
                            loaded: false,
                        },
                    );
                    match load(p) {
                        Ok(()) => {
                            let mut owned = super::lock(&self.owned);
                            if owned.get(&p).is_some_and(|o| o.epoch == epoch) {
                                owned.insert(
                                    p,
                                    Owned {
                                        epoch,
                                        loaded: true,
                                    },
                                );
                            }
                        }
                        Err(err) => {
                            tracing::error!(topic = journal.topic(), partition = p, error = %err, "cannot load");
                            super::lock(&self.owned).remove(&p);
                        }
                    }
                }
                (None, Some(_)) => {
                    super::lock(&self.owned).remove(&p);
                    unload(p);
                    tracing::info!(topic = journal.topic(), partition = p, "unloaded");
                }
                (None, None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::offsets::Committed;

    #[test]
    fn groups_map_to_partitions_as_kafka_does() {
        // Java: Math.abs("my-group".hashCode()) % 50
        let h = crate::cluster::view::java_string_hash("my-group");
        assert_eq!(partition_for("my-group", 50), h.abs() % 50);
        assert!((0..50).contains(&partition_for("", 50)));
        assert_eq!(partition_for("anything", 1), 0);
    }

    #[test]
    fn a_batch_replays_to_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(crate::log::Store::open(dir.path()).unwrap());
        let topics = Arc::new(Topics::load(store).unwrap());
        topics.create(TOPIC, 1, Default::default(), false).unwrap();
        let j = Journal::new(topics.clone(), TOPIC);

        let e = |o| Entry::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(Committed {
                offset: o,
                leader_epoch: -1,
                commit_timestamp: 1,
                metadata: String::new(),
            }),
        };
        // Appends go only to a partition loaded here, in its leader epoch.
        assert_eq!(j.append(&[e(1)]), Err(ResponseError::NotCoordinator));
        j.owned.sync(&j, |_| Some(0), |_| Ok(()), |_| {});
        j.append(&[e(1), e(2)]).unwrap();
        j.append(&[e(3)]).unwrap();
        assert_eq!(
            j.log(0).unwrap().log_end_offset(),
            3,
            "one batch per append"
        );
        let mut seen = Vec::new();
        replay(&j.log(0).unwrap(), |x| seen.push(x)).unwrap();
        assert_eq!(seen, vec![e(1), e(2), e(3)]);
    }

    #[tokio::test]
    async fn a_leader_again_waits_for_its_log_not_an_earlier_leaderships_append() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(crate::log::Store::open(dir.path()).unwrap());
        let topics = Arc::new(Topics::load(store).unwrap());
        topics.create(TOPIC, 1, Default::default(), false).unwrap();
        let j = Journal::new(topics.clone(), TOPIC);
        let log = j.log(0).unwrap();
        log.become_leader(1, true).unwrap();
        j.owned.sync(&j, |_| Some(1), |_| Ok(()), |_| {});
        let e = Entry::Group {
            group: "g".into(),
            value: None,
        };
        j.append(std::slice::from_ref(&e)).unwrap();
        j.replicated("g", 1000).await.unwrap();
        // Another broker leads epoch 2; this one leads again in epoch 3 and loads the
        // partition. Its last append is from epoch 1: what counts now is its whole log.
        log.become_follower(2).unwrap();
        log.become_leader(3, true).unwrap();
        j.owned.sync(&j, |_| Some(3), |_| Ok(()), |_| {});
        assert_eq!(j.replicated("g", 1000).await, Ok(()));
        // Not leading any more: NOT_COORDINATOR, not a wait.
        log.become_follower(4).unwrap();
        assert_eq!(
            j.replicated("g", 1000).await,
            Err(ResponseError::NotCoordinator)
        );
    }

    #[tokio::test]
    async fn nothing_is_acknowledged_while_the_isr_is_below_its_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(crate::log::Store::open(dir.path()).unwrap());
        let topics = Arc::new(Topics::load(store).unwrap());
        topics.create(TOPIC, 1, Default::default(), false).unwrap();
        let j = Journal::new(topics.clone(), TOPIC);
        let isr = Arc::new(std::sync::atomic::AtomicUsize::new(1));
        let seen = isr.clone();
        j.set_min_isr_check(Box::new(move |_| {
            Some((seen.load(std::sync::atomic::Ordering::SeqCst), 2))
        }));
        j.log(0).unwrap().become_leader(1, true).unwrap();
        j.owned.sync(&j, |_| Some(1), |_| Ok(()), |_| {});
        let e = Entry::Group {
            group: "g".into(),
            value: None,
        };
        j.append(std::slice::from_ref(&e)).unwrap();
        assert_eq!(
            j.replicated("g", 1000).await,
            Err(ResponseError::CoordinatorNotAvailable),
            "one in-sync replica of the two required"
        );
        assert_eq!(
            j.replicated_after("g", 1000, false).await,
            Ok(()),
            "a request that wrote nothing is not refused"
        );
        isr.store(2, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(j.replicated("g", 1000).await, Ok(()));
    }
}
