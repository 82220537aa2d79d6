//! The broker's side of the coordinators' internal topics, `__consumer_offsets` (groups) and
//! `__transaction_state` (transactions): creating them (on the first FindCoordinator, as
//! Kafka does; on a single node also on first use, or at start when a data dir of an
//! earlier release has groups to move in), naming a key's coordinator (the leader of its
//! partition), keeping each coordinator's loaded partitions in line with this broker's
//! leaderships, and the partition-leader side of transactions (KIP-890 verification with a
//! coordinator that may be on another broker).

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::ResponseError;

use crate::Broker;
use crate::group::journal::{self, partition_for};
use crate::meta::topics::{Topic, TopicError};
use crate::txn::coordinator::TOPIC as TXN_TOPIC;

/// Which coordinator's topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Group,
    Transaction,
}

impl Kind {
    pub fn topic(self) -> &'static str {
        match self {
            Kind::Group => journal::TOPIC,
            Kind::Transaction => TXN_TOPIC,
        }
    }
}

impl Broker {
    /// The topic configs `__consumer_offsets` is created with (Kafka's).
    pub fn offsets_topic_configs(
        settings: &crate::config::GroupSettings,
    ) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                settings.offsets_topic_segment_bytes.to_string(),
            ),
            ("compression.type".to_string(), "producer".to_string()),
        ])
    }

    /// The topic configs `__transaction_state` is created with (Kafka's), for a replication
    /// factor of `rf`.
    pub fn txn_topic_configs(config: &crate::Config, rf: i32) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                config.txn_log_segment_bytes.to_string(),
            ),
            ("compression.type".to_string(), "uncompressed".to_string()),
            (
                "min.insync.replicas".to_string(),
                config.txn_log_min_isr.min(rf).max(1).to_string(),
            ),
        ])
    }

    /// Creates the coordinator topic of `kind` if it does not exist yet: here on a single
    /// node, through the controller in a cluster (the configured replication factor, at
    /// most the live brokers).
    pub async fn ensure_coordinator_topic(&self, kind: Kind) -> Result<(), ResponseError> {
        let name = kind.topic();
        if self.topics.get(name).is_some() {
            return Ok(());
        }
        let Some(node) = &self.cluster else {
            return match kind {
                Kind::Group => self.groups.create_here(),
                Kind::Transaction => self.txns.create_here(),
            };
        };
        // The configured replication factor, or the number of brokers if fewer; created only
        // once that many are live (until then COORDINATOR_NOT_AVAILABLE, which clients
        // retry), so a topic made while brokers restart does not get fewer replicas.
        let img = node.image();
        let (registered, live) = (img.brokers.len() as i32, img.live_brokers().len() as i32);
        let (n, rf, configs) = match kind {
            Kind::Group => {
                let s = &self.groups.settings;
                let rf = s.offsets_topic_replication_factor.min(registered);
                (
                    s.offsets_topic_num_partitions,
                    rf,
                    Self::offsets_topic_configs(s),
                )
            }
            Kind::Transaction => {
                let rf = self.config.txn_log_replication_factor.min(registered);
                (
                    self.config.txn_log_partitions,
                    rf,
                    Self::txn_topic_configs(&self.config, rf),
                )
            }
        };
        if rf < 1 || live < rf {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        match self
            .create_topic_in_cluster(name, n, rf, None, &configs, false)
            .await
        {
            Ok(_) => tracing::info!(partitions = n, replication_factor = rf, "created {name}"),
            Err(TopicError::AlreadyExists(_)) => {}
            Err(e) => {
                tracing::warn!(error = ?e, "cannot create {name}");
                return Err(ResponseError::CoordinatorNotAvailable);
            }
        }
        let b = self.arc();
        tokio::task::spawn_blocking(move || b.sync_coordinators())
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        Ok(())
    }

    /// The broker that coordinates `key` (a group or transactional id): the leader of its
    /// partition of the coordinator topic of `kind` (created first if needed).
    pub async fn coordinator_of(&self, kind: Kind, key: &str) -> Result<i32, ResponseError> {
        self.ensure_coordinator_topic(kind).await?;
        self.current_coordinator(kind, key)
    }

    /// [`Self::coordinator_of`] without creating anything.
    pub fn current_coordinator(&self, kind: Kind, key: &str) -> Result<i32, ResponseError> {
        let Some(node) = &self.cluster else {
            return Ok(self.node_id());
        };
        let Some(topic) = self.topics.get(kind.topic()) else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        let p = partition_for(key, topic.partitions.len() as i32);
        let img = node.image();
        match img.partition(&topic.id, p) {
            Some(s) if s.leader >= 0 && img.is_live(s.leader) => Ok(s.leader),
            _ => Err(ResponseError::CoordinatorNotAvailable),
        }
    }

    /// The leader of `topic`-`partition` (this broker on a single node); None when it has
    /// none.
    pub fn leader_of(&self, topic: &Topic, partition: i32) -> Option<i32> {
        let Some(node) = &self.cluster else {
            return Some(self.node_id());
        };
        let img = node.image();
        img.partition(&topic.id, partition)
            .map(|s| s.leader)
            .filter(|l| *l >= 0)
    }

    /// The address of broker `id` on the inter-broker listener.
    pub fn inter_broker_address(&self, id: i32) -> Option<String> {
        let node = self.cluster.as_ref()?;
        let img = node.image();
        let listener = &node.settings.inter_broker_listener;
        img.brokers.get(&id).and_then(|r| {
            r.endpoints
                .iter()
                .find(|e| &e.name == listener)
                .or_else(|| r.endpoints.first())
                .map(|e| format!("{}:{}", e.host, e.port))
        })
    }

    /// The leader epoch in which this broker leads partition `p` of `name`.
    fn leads_coordinator_partition(&self, name: &str, p: i32) -> Option<i32> {
        let topic = self.topics.get(name)?;
        let log = topic.partition(p)?;
        match &self.cluster {
            None => Some(log.leader_epoch()),
            Some(node) => {
                let img = node.image();
                let s = img.partition(&topic.id, p)?;
                (s.leader == self.node_id() && log.leads_in(s.leader_epoch))
                    .then_some(s.leader_epoch)
            }
        }
    }

    /// The coordinators acknowledge a change only while the ISR of its partition holds
    /// `min.insync.replicas` members (`transaction.state.log.min.isr` for transactions, the
    /// broker's `min.insync.replicas` for groups, as Kafka's topics are configured).
    pub fn install_min_isr_checks(&self) {
        for journal in [&self.groups.journal, self.txns.journal()] {
            let me = self.weak();
            let name = journal.topic();
            journal.set_min_isr_check(Box::new(move |p| {
                let b = me.upgrade()?;
                b.cluster.as_ref()?;
                let topic = b.topics.get(name)?;
                let isr = b.partition_view(&topic, p).isr.len();
                let min = b
                    .topic_config(&topic, "min.insync.replicas")
                    .parse::<usize>()
                    .unwrap_or(1)
                    .max(1);
                Some((isr, min))
            }));
        }
    }

    /// Loads the coordinators' partitions this broker has come to lead, unloads the others.
    /// Blocking.
    pub fn sync_coordinators(&self) {
        self.groups
            .sync_ownership(|p| self.leads_coordinator_partition(journal::TOPIC, p));
        self.txns
            .sync_ownership(|p| self.leads_coordinator_partition(TXN_TOPIC, p));
    }

    /// At start: creates `__consumer_offsets` on a single node whose data dir has groups of
    /// an earlier release to move into it, `__transaction_state` likewise for transactional
    /// ids (a cluster node moves them when the topic exists and it leads their partitions).
    pub fn prepare_coordinator_topics(&self) -> anyhow::Result<()> {
        if self.cluster.is_none() {
            if self.groups.has_legacy() && self.topics.get(journal::TOPIC).is_none() {
                tracing::info!(
                    "moving the groups of an earlier release into {}",
                    journal::TOPIC
                );
                self.groups
                    .create_here()
                    .map_err(|e| anyhow::anyhow!("creating {}: {e:?}", journal::TOPIC))?;
            }
            if self.txns.has_legacy() && self.topics.get(TXN_TOPIC).is_none() {
                tracing::info!(
                    "moving the transactional ids of an earlier release into {TXN_TOPIC}"
                );
                self.txns
                    .create_here()
                    .map_err(|e| anyhow::anyhow!("creating {TXN_TOPIC}: {e:?}"))?;
            }
        }
        self.sync_coordinators();
        Ok(())
    }

    /// KIP-890 on a partition leader: checks with the coordinator of transactional id `id`
    /// (here or on another broker) that `topic`-`partition` is in the producer's open
    /// transaction (`implicit_add`: adds it). Blocking. Ok(true) when the coordinator here
    /// added it (the caller makes that durable before appending).
    #[allow(clippy::too_many_arguments)]
    pub fn verify_txn_write(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
        implicit_add: bool,
    ) -> Result<bool, ResponseError> {
        match self.txns.check(id) {
            Ok(()) => {
                let added = self.txns.check_produce(
                    id,
                    producer_id,
                    epoch,
                    topic,
                    partition,
                    implicit_add,
                )?;
                // Also when this call added nothing: an earlier one may have added the
                // partition and failed before the coordinator's ISR had it.
                if self.cluster.is_some() {
                    let b = self.arc();
                    let id = id.to_string();
                    crate::txn::markers::block_on(async move {
                        b.txn_replicated(&id)
                            .await
                            .map_err(|e| anyhow::anyhow!("{e:?}"))
                    })
                    .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
                }
                Ok(added)
            }
            Err(_) if self.cluster.is_some() => {
                let coordinator = self.current_coordinator(Kind::Transaction, id)?;
                if coordinator == self.node_id() {
                    // Leading the partition but not loaded yet.
                    return Err(ResponseError::CoordinatorLoadInProgress);
                }
                crate::txn::markers::verify(
                    self,
                    coordinator,
                    id,
                    producer_id,
                    epoch,
                    topic,
                    partition,
                    implicit_add,
                )
                .map(|()| false)
            }
            Err(e) => Err(e),
        }
    }

    /// Waits until the state of transactional id `id` is on every ISR member of its
    /// partition (after a transition here).
    pub async fn txn_replicated(&self, id: &str) -> Result<(), ResponseError> {
        self.txns
            .replicated(id, self.groups.settings.offsets_commit_timeout_ms)
            .await
    }

    /// Keeps the loaded partitions in line with the leaderships, every 100 ms, until shutdown.
    pub fn spawn_coordinator_sync(
        self: &std::sync::Arc<Self>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        crate::supervise::supervise("coordinator loading", shutdown, move |mut sd| {
            let me = me.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = sd.changed() => break,
                        _ = tick.tick() => {
                            let b = me.clone();
                            let r = tokio::task::spawn_blocking(move || b.sync_coordinators()).await;
                            crate::supervise::log_join_error("coordinator loading", r);
                        }
                    }
                }
            }
        })
    }
}
