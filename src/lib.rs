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
pub mod dev_cluster;
pub mod dispatch;
pub mod frame;
pub mod group;
pub mod handlers;
pub mod log;
pub mod meta;
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
    /// Broker configs changed at runtime (AlterConfigs).
    pub dynamic: meta::configs::Dynamic,
    pub cluster_id: String,
    /// Record bytes of fetch responses held in memory, from read until written to the
    /// socket (`queued.max.fetch.bytes`); None = no cap.
    pub fetch_memory: Option<Arc<handlers::fetch::MemoryBudget>>,
    /// The Arc this broker lives in, so handlers (which see `&Broker`) can hand it to the
    /// blocking pool.
    me: Weak<Broker>,
}

impl Broker {
    /// Opens the data dir and loads everything persisted there.
    pub fn open(config: Config) -> anyhow::Result<Arc<Broker>> {
        let store = Arc::new(log::Store::open(&config.log_dir)?);
        let topics = Arc::new(meta::topics::Topics::load(store.clone())?);
        let groups = Arc::new(group::GroupCoordinator::load(
            &store,
            topics.clone(),
            config.group.clone(),
        )?);
        let txns = Arc::new(txn::coordinator::TxnCoordinator::load(
            store.clone(),
            topics.clone(),
            groups.clone(),
            config.transaction_max_timeout_ms,
            config.transactional_id_expiration_ms,
        )?);
        let cluster_id = meta::cluster_id(&store)?;
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
        Ok(Arc::new_cyclic(|me| Broker {
            config,
            store,
            topics,
            groups,
            txns,
            dynamic,
            cluster_id,
            fetch_memory,
            me: me.clone(),
        }))
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

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The partition leader for every partition. A single node leads everything; when
    /// replication arrives this becomes a lookup in the replicated metadata.
    pub fn leader_for(&self, _topic: &meta::topics::Topic, _partition: i32) -> i32 {
        self.config.node_id
    }
}
