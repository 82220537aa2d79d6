//! Fjord: a single-binary broker that speaks the Apache Kafka wire protocol.
//!
//! Request flow: `server` accepts connections, `connection` frames requests and keeps
//! responses in order, `dispatch` maps each API key to its handler in `handlers`, and the
//! handlers work against the domain modules (`log`, `meta`, `txn`).

pub mod alloc;
pub mod cleaner;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod coordinator_topics;
pub mod dev_cluster;
pub mod dispatch;
pub mod frame;
pub mod group;
pub mod handlers;
pub mod log;
pub mod meta;
pub mod replication;
pub mod security;
pub mod server;
pub mod supervise;
pub mod txn;

use std::sync::{Arc, Weak};

pub use config::Config;

#[global_allocator]
static GLOBAL: alloc::FjordAlloc = alloc::FjordAlloc;
pub use server::{Server, ServerHandle};

/// Shared broker state handed to every handler.
pub struct Broker {
    pub config: Config,
    pub store: Arc<log::Store>,
    pub topics: Arc<meta::topics::Topics>,
    pub groups: Arc<group::GroupCoordinator>,
    pub txns: Arc<txn::coordinator::TxnCoordinator>,
    /// Producer ids: the store's own on a single node, blocks from the controller in a
    /// cluster.
    pub pids: Arc<txn::producer_ids::ProducerIds>,
    /// Broker configs changed at runtime (AlterConfigs).
    pub dynamic: meta::configs::Dynamic,
    pub cluster_id: String,
    /// Record bytes of fetch responses held in memory, from read until written to the
    /// socket (`queued.max.fetch.bytes`); None = no cap.
    pub fetch_memory: Option<Arc<handlers::fetch::MemoryBudget>>,
    /// This node's part in a cluster; None for a single node.
    pub cluster: Option<Arc<cluster::node::ClusterNode>>,
    /// Partition replication (leaders' follower tracking, followers' fetchers); None for a
    /// single node.
    pub replication: Option<Arc<replication::Replication>>,
    /// SCRAM credentials and ACLs (the image's on a cluster node).
    pub security: security::store::SecurityStore,
    /// The Arc this broker lives in, so handlers (which see `&Broker`) can hand it to the
    /// blocking pool.
    me: Weak<Broker>,
}

impl Broker {
    /// Opens the data dir and loads everything persisted there.
    pub fn open(config: Config) -> anyhow::Result<Arc<Broker>> {
        let store = Arc::new(log::Store::open(&config.log_dir)?);
        let cluster_id = meta::cluster_id(&store)?;
        let broker = Self::assemble(config, store, cluster_id, None)?;
        broker.prepare_coordinator_topics()?;
        Ok(broker)
    }

    /// Opens the data dir of a cluster node: joins the metadata quorum, learns (or
    /// bootstraps) the cluster id, refuses a data dir of another cluster or of a single node,
    /// then loads what is persisted and brings the local topics in line with the image.
    pub async fn open_in_cluster(config: Config) -> anyhow::Result<Arc<Broker>> {
        let settings = config.cluster.clone().expect("a cluster node");
        let store = Arc::new(log::Store::open(&config.log_dir)?);
        let (joined, local_id) = meta::cluster_membership(&store)?;
        if !joined && !store.meta_tree("topics")?.is_empty() {
            anyhow::bail!(
                "data dir {} holds the topics of a single node; a single node's data cannot join a \
                 cluster (start it without controller.quorum.voters, or use another log.dirs)",
                config.log_dir.display()
            );
        }
        let bootstrap = local_id.clone().unwrap_or_else(meta::new_cluster_id);
        let node = cluster::node::ClusterNode::start(&config, settings, bootstrap).await?;
        let cluster_id = node.cluster_id().await;
        if joined
            && let Some(local) = &local_id
            && *local != cluster_id
        {
            node.stop().await;
            anyhow::bail!(
                "data dir {} belongs to cluster {local}, but the metadata quorum's cluster is \
                 {cluster_id}; refusing to start",
                config.log_dir.display()
            );
        }
        meta::join_cluster(&store, &cluster_id)?;
        cluster::node::write_meta_properties(&config.log_dir, &cluster_id, config.node_id)?;
        let broker = Self::assemble(config, store, cluster_id, Some(node.clone()))?;
        // The local topics were made from an image at least this new: wait for one (the
        // first voter heard from may lag) before applying it.
        let done = meta::mirrored_offset(&broker.store)?;
        let img = match node
            .wait_applied(done, std::time::Duration::from_secs(30))
            .await
        {
            Some(img) => img,
            None => {
                tracing::warn!(
                    applied_here = done,
                    "the metadata image is older than the one this node applied last; local \
                     topics are left as they are until it catches up"
                );
                node.image()
            }
        };
        if let Some(r) = &broker.replication {
            r.start(broker.weak());
        }
        let b = broker.clone();
        tokio::task::spawn_blocking(move || cluster::mirror::mirror(&b, &img)).await?;
        let wait = std::time::Duration::from_millis(node.settings.session_timeout_ms);
        if !node.wait_active(wait).await {
            tracing::warn!(
                "not registered and unfenced by the controller within {} ms; serving anyway",
                wait.as_millis()
            );
        }
        Ok(broker)
    }

    fn assemble(
        config: Config,
        store: Arc<log::Store>,
        cluster_id: String,
        cluster: Option<Arc<cluster::node::ClusterNode>>,
    ) -> anyhow::Result<Arc<Broker>> {
        let topics = Arc::new(meta::topics::Topics::load(store.clone())?);
        let mut groups =
            group::GroupCoordinator::open(&store, topics.clone(), config.group.clone())?;
        if cluster.is_none() {
            groups.create_here = Some(Broker::offsets_topic_configs(&config.group));
        }
        let groups = Arc::new(groups);
        let pids = Arc::new(match &cluster {
            Some(node) => txn::producer_ids::ProducerIds::cluster(node.clone(), &store)?,
            None => txn::producer_ids::ProducerIds::local(store.clone()),
        });
        let mut txns = txn::coordinator::TxnCoordinator::load(
            store.clone(),
            topics.clone(),
            groups.clone(),
            pids.clone(),
            config.transaction_max_timeout_ms,
            config.transactional_id_expiration_ms,
        )?;
        if cluster.is_none() {
            txns.create_here = Some(txn::coordinator::CreateHere {
                topics: topics.clone(),
                partitions: config.txn_log_partitions,
                configs: Broker::txn_topic_configs(&config, 1),
            });
        }
        let txns = Arc::new(txns);
        let dynamic = meta::configs::Dynamic::load(store.meta_tree("config")?)?;
        for (group, configs) in &dynamic.get().groups {
            groups.set_overrides(
                group,
                meta::group_configs::GroupOverrides::from_configs(configs),
            );
        }
        let fetch_memory = (config.queued_max_fetch_bytes > 0).then(|| {
            Arc::new(handlers::fetch::MemoryBudget::new(
                config.queued_max_fetch_bytes as usize,
            ))
        });
        let replication = cluster
            .as_ref()
            .map(|_| replication::Replication::new(config.node_id));
        let authz = security::store::AuthorizerSettings::from_values(&config.values)?;
        if authz.enabled
            && let Some(node) = &cluster
            && !node.inter_broker.authenticates()
        {
            tracing::warn!(
                "ACLs in a cluster: brokers reach each other over the inter-broker listener \
                 unauthenticated, as User:ANONYMOUS, and need CLUSTER_ACTION on the \
                 cluster (follower fetches, transaction markers); grant it (or list \
                 User:ANONYMOUS in super.users) only if clients cannot reach that listener, \
                 or set inter.broker.listener.name to a SASL listener or an SSL one with \
                 ssl.client.auth=required"
            );
        }
        let security = match &cluster {
            Some(_) => security::store::SecurityStore::mirrored(authz),
            None => security::store::SecurityStore::load(store.meta_tree("security")?, authz)?,
        };
        Ok(Arc::new_cyclic(|me| Broker {
            config,
            store,
            topics,
            groups,
            txns,
            pids,
            dynamic,
            cluster_id,
            fetch_memory,
            cluster,
            replication,
            security,
            me: me.clone(),
        }))
        .inspect(|b| {
            b.txns.attach(b.weak());
            b.install_min_isr_checks();
        })
    }

    /// This broker, for tasks that must end with it.
    pub fn weak(&self) -> Weak<Broker> {
        self.me.clone()
    }

    /// This broker as an `Arc`, for work moved to the blocking pool (`spawn_blocking`).
    pub fn arc(&self) -> Arc<Broker> {
        self.me
            .upgrade()
            .expect("the broker outlives the requests it handles")
    }

    /// The effective value of a topic config for `topic` (override, dynamic, static, default).
    pub fn topic_config(&self, topic: &meta::topics::Topic, name: &str) -> String {
        meta::configs::topic_config_value(&self.config, &self.dynamic.get(), &topic.configs, name)
    }

    /// Whether `cleanup.policy` of `topic` includes `policy` ("delete" or "compact").
    pub fn topic_has_cleanup_policy(&self, topic: &meta::topics::Topic, policy: &str) -> bool {
        self.topic_config(topic, "cleanup.policy")
            .split(',')
            .any(|p| p.trim() == policy)
    }

    /// Deletes a topic's data here, with its committed offsets in every group (blocking
    /// work: partition trees and files). Used by DeleteTopics on a single node and by a
    /// cluster node's mirror.
    pub fn delete_topic_here(&self, name: &str) -> Result<uuid::Uuid, meta::topics::TopicError> {
        let t = self.topics.delete(name)?;
        // The groups coordinated here; each group's coordinator does the same for its own.
        let k = self.groups.delete_topic_offsets(name);
        if k > 0 {
            tracing::info!(topic = %name, offsets = k, "removed committed offsets of the deleted topic");
        }
        Ok(t.id)
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }
}
