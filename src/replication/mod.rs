//! Partition replication with Kafka's own protocol (issue 12; `../shared/CLUSTER.md`):
//!
//! - a broker that **leads** a partition tracks its followers (`tracker`, pure): their log
//!   end offsets arrive with their Fetch requests (replica id and broker epoch in
//!   `ReplicaState`), the high watermark becomes the lowest log end over the ISR, and ISR
//!   changes are proposed to the controller with the partition epoch as a guard
//!   (AlterPartition semantics, `PartitionChange::expected_partition_epoch`);
//! - a broker that **follows** runs one fetcher per leader (`fetcher`): it reconciles with
//!   OffsetForLeaderEpoch after every leadership change (KIP-101/279), truncates a diverged
//!   suffix, then fetches from its log end and appends the leader's batches byte for byte,
//!   taking the high watermark and log start from the responses;
//! - `on_image` turns every metadata image into these roles.
//!
//! A single node has none of this: its partitions keep the high watermark at the log end.

pub mod client;
pub mod fetcher;
pub mod tracker;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use crate::Broker;
use crate::cluster::image::Image;
use crate::cluster::records::{MetadataRecord, NO_LEADER, PartitionChange};
use crate::log::PartitionLog;
use tracker::LeaderState;

/// A partition this broker follows: whom to fetch from, in which leader epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    pub topic: String,
    pub leader: i32,
    pub leader_epoch: i32,
}

pub type FollowMap = BTreeMap<(Uuid, i32), Follow>;

/// How often the leader looks at its followers for ISR changes.
const ISR_CHECK: Duration = Duration::from_millis(200);
/// An ISR change not seen in the metadata after this long is proposed again. A proposal the
/// controller refuses or does not take is forgotten at once (`proposal_failed`); this only
/// bounds one whose outcome never arrives.
const ISR_RETRY_MS: i64 = 30_000;

pub struct Replication {
    me: i32,
    leaders: Mutex<HashMap<(Uuid, i32), LeaderState>>,
    follows: watch::Sender<Arc<FollowMap>>,
    fetchers: Mutex<HashMap<i32, tokio::task::JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
}

impl Replication {
    /// Made inside the runtime (fetchers are spawned from the blocking mirror).
    pub fn new(me: i32) -> Arc<Replication> {
        Arc::new(Replication {
            me,
            leaders: Mutex::new(HashMap::new()),
            follows: watch::channel(Arc::new(FollowMap::new())).0,
            fetchers: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Starts the leader's ISR duty; it ends with the broker.
    pub fn start(&self, broker: Weak<Broker>) {
        self.runtime.spawn(isr_duty(broker));
    }

    /// Takes the roles the image gives this broker: leader (the log's epoch starts, the
    /// followers are tracked), follower (a fetcher for the leader), or neither. Blocking
    /// work (the logs' state); called by the mirror after it applied the image.
    pub fn on_image(&self, broker: &Broker, img: &Image) {
        let now = crate::handlers::now_ms();
        let mut follows = FollowMap::new();
        let mut led = std::collections::HashSet::new();
        for (t, id, p) in img.partitions() {
            let Some(topic) = broker.topics.get(&t.name).filter(|l| l.id == t.id) else {
                continue;
            };
            let Some(log) = topic.partition(id) else {
                continue;
            };
            if !p.replicas.contains(&self.me) {
                // No longer a replica (a reassignment moved it): its copy goes.
                if log.log_end_offset() > log.log_start_offset() {
                    tracing::info!(topic = %t.name, partition = id, "no longer a replica: deleting the local copy");
                    if let Err(e) = log.truncate_to(log.log_start_offset()) {
                        tracing::error!(topic = %t.name, partition = id, error = %e, "cannot delete the local copy");
                    }
                }
                continue;
            }
            let key = (t.id, id);
            if p.leader == self.me {
                led.insert(key);
                let mut leaders = self.leaders.lock().unwrap();
                match leaders.get_mut(&key) {
                    Some(s) if s.leader_epoch == p.leader_epoch => {
                        s.update(p.partition_epoch, p.replicas.clone(), p.isr.clone(), now)
                    }
                    _ => {
                        tracing::info!(topic = %t.name, partition = id, epoch = p.leader_epoch, isr = ?p.isr, "leading");
                        leaders.insert(
                            key,
                            LeaderState::new(
                                self.me,
                                p.leader_epoch,
                                p.partition_epoch,
                                p.replicas.clone(),
                                p.isr.clone(),
                                log.log_end_offset(),
                                now,
                            ),
                        );
                    }
                }
                let s = &leaders[&key];
                // The high watermark follows the log end only while no other replica is (or
                // is being made) a member of the ISR.
                if let Err(e) = log.become_leader(p.leader_epoch, s.alone()) {
                    tracing::error!(topic = %t.name, partition = id, error = %e, "cannot take the leadership");
                    leaders.remove(&key);
                    continue;
                }
                if !s.alone() {
                    let hw = s.high_watermark(log.log_end_offset());
                    if hw >= 0 {
                        log.advance_high_watermark(hw);
                    }
                }
            } else {
                if let Err(e) = log.become_follower(p.leader_epoch) {
                    tracing::error!(topic = %t.name, partition = id, error = %e, "cannot store the leader epoch");
                    continue;
                }
                if p.leader != NO_LEADER {
                    follows.insert(
                        key,
                        Follow {
                            topic: t.name.clone(),
                            leader: p.leader,
                            leader_epoch: p.leader_epoch,
                        },
                    );
                }
            }
        }
        self.leaders.lock().unwrap().retain(|k, _| led.contains(k));
        let changed = self.follows.send_if_modified(|f| {
            if **f == follows {
                false
            } else {
                *f = Arc::new(follows.clone());
                true
            }
        });
        if changed {
            self.spawn_fetchers(broker, &follows);
        }
    }

    /// One fetcher per leader this broker follows partitions of (a fetcher ends by itself
    /// once its leader leads none of them).
    fn spawn_fetchers(&self, broker: &Broker, follows: &FollowMap) {
        let mut fetchers = self.fetchers.lock().unwrap();
        fetchers.retain(|_, h| !h.is_finished());
        for f in follows.values() {
            if let std::collections::hash_map::Entry::Vacant(e) = fetchers.entry(f.leader) {
                let task = fetcher::run(broker.weak(), f.leader, self.follows.subscribe());
                e.insert(self.runtime.spawn(task));
            }
        }
    }

    /// A follower fetched `partition` from `fetch_offset`: its progress counts toward the
    /// high watermark and the ISR. False when this broker does not lead the partition or
    /// `follower` is not one of its replicas.
    pub fn on_follower_fetch(
        &self,
        topic_id: Uuid,
        partition: i32,
        follower: i32,
        fetch_offset: i64,
        log: &PartitionLog,
    ) -> bool {
        let mut leaders = self.leaders.lock().unwrap();
        let Some(s) = leaders.get_mut(&(topic_id, partition)) else {
            return false;
        };
        let leo = log.log_end_offset();
        if !s.on_fetch(
            follower,
            fetch_offset.min(leo),
            leo,
            crate::handlers::now_ms(),
        ) {
            return false;
        }
        if !s.alone() {
            let hw = s.high_watermark(leo);
            if hw >= 0 {
                log.advance_high_watermark(hw);
            }
        }
        true
    }

    /// A proposed ISR change was not committed: forget it (the high watermark is computed
    /// over the ISR alone again), so the next check decides afresh.
    fn proposal_failed(&self, topic_id: Uuid, partition: i32, isr: &[i32]) {
        let mut leaders = self.leaders.lock().unwrap();
        if let Some(s) = leaders.get_mut(&(topic_id, partition))
            && s.pending.as_ref().is_some_and(|(p, _)| p == isr)
        {
            s.pending = None;
        }
    }

    /// The ISR changes the leader should propose now (with the partition epoch they apply
    /// to), marking them pending.
    fn isr_proposals(&self, broker: &Broker, img: &Image) -> Vec<PartitionChange> {
        let lag_max = broker
            .cluster
            .as_ref()
            .map_or(30_000, |n| n.settings.replica_lag_time_max_ms) as i64;
        let now = crate::handlers::now_ms();
        let mut out = Vec::new();
        let mut leaders = self.leaders.lock().unwrap();
        for ((tid, id), s) in leaders.iter_mut() {
            let Some(topic) = img.topics.get(tid) else {
                continue;
            };
            let Some(log) = broker
                .topics
                .get(&topic.name)
                .and_then(|t| t.partition(*id).cloned())
            else {
                continue;
            };
            // Alone again (a proposal to add a replica failed): the log end is committed.
            if s.alone() {
                log.set_hw_follows_leo(true);
            }
            let live = |b| img.is_live(b);
            let Some(mut isr) =
                s.isr_change(now, lag_max, log.high_watermark(), ISR_RETRY_MS, live)
            else {
                continue;
            };
            if isr.iter().any(|r| !s.isr.contains(r)) {
                // A replica is to join: freeze the high watermark first (a leader alone in
                // its ISR moves it with every append), then check the joiner against it
                // again, so that it holds everything committed when it joins.
                log.set_hw_follows_leo(false);
                match s.isr_change(now, lag_max, log.high_watermark(), ISR_RETRY_MS, live) {
                    Some(again) => isr = again,
                    None => {
                        log.set_hw_follows_leo(s.alone());
                        continue;
                    }
                }
            }
            {
                tracing::info!(topic = %topic.name, partition = id, from = ?s.isr, to = ?isr, "proposing an ISR change");
                // From now on the high watermark is computed over the maximal ISR.
                s.pending = Some((isr.clone(), now));
                out.push(PartitionChange {
                    partition_id: *id,
                    topic_id: *tid,
                    isr: Some(isr),
                    leader: None,
                    replicas: None,
                    expected_partition_epoch: Some(s.partition_epoch),
                    adding_replicas: None,
                    removing_replicas: None,
                });
            }
        }
        out
    }
}

/// The leader's side of ISR management: every `ISR_CHECK`, propose the ISR changes the
/// followers' progress calls for, each on its own (one refused change must not hold up
/// the others).
async fn isr_duty(broker: Weak<Broker>) {
    loop {
        tokio::time::sleep(ISR_CHECK).await;
        let Some(b) = broker.upgrade() else {
            return;
        };
        let (Some(node), Some(repl)) = (b.cluster.clone(), b.replication.clone()) else {
            return;
        };
        let img = node.image();
        for change in repl.isr_proposals(&b, &img) {
            let (node, repl) = (node.clone(), repl.clone());
            tokio::spawn(async move {
                let (tid, id) = (change.topic_id, change.partition_id);
                let isr = change.isr.clone().unwrap_or_default();
                if let Err(e) = node
                    .commit(vec![MetadataRecord::PartitionChange(change)])
                    .await
                {
                    tracing::debug!(error = ?e, "ISR change not taken");
                    repl.proposal_failed(tid, id, &isr);
                }
            });
        }
    }
}
