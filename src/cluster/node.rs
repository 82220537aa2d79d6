//! This process as a node of a cluster (a broker, a controller, or both): its place in the
//! metadata quorum (a voter when it is a controller, an observer when only a broker), its
//! broker registration and heartbeats, and, while it is the active controller, the
//! controller's own duties (the cluster id, fencing brokers whose heartbeats
//! stop, unfencing those that come back). The decisions themselves are the pure functions of
//! `controller`; this module only runs them on time and proposes their records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use super::image::{ApplyError, Image};
use super::raft::{
    Heartbeat, Member, MetadataObserver, MetadataQuorum, ProposeError, QuorumConfig, QuorumStatus,
    Transport,
};
use super::records::*;
use super::{controller, election};
use crate::config::Config;
use crate::config::cluster::ClusterSettings;
use crate::config::security::SecurityProtocol;
use crate::security::connector::Connector;

/// How often the controller duties and a registering broker look at the image again.
const TICK: Duration = Duration::from_millis(100);

/// Why a cluster change was not made, in terms the Kafka handlers answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeError {
    /// The decision was refused (placement, or the image's own checks).
    Refused(ApplyError),
    /// No active controller took it in time (a retriable REQUEST_TIMED_OUT for the client).
    Unavailable(String),
}

impl From<ProposeError> for ChangeError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::Rejected { error, .. } => ChangeError::Refused(error),
            other => ChangeError::Unavailable(other.to_string()),
        }
    }
}

pub struct ClusterNode {
    pub node_id: i32,
    pub settings: ClusterSettings,
    /// How this broker reaches the others' inter-broker listener (TLS, SASL login).
    pub inter_broker: Arc<Connector>,
    quorum: Member,
    /// Random per process start: tells a restarted broker from a retrying one.
    incarnation: Uuid,
    endpoints: Vec<Endpoint>,
    /// This node's broker epoch once registered, -1 before.
    epoch: AtomicI64,
    /// Set by a controlled shutdown: heartbeats ask to stay fenced.
    stopping: AtomicBool,
    /// Stops the background duties.
    halt: watch::Sender<bool>,
}

impl ClusterNode {
    /// Joins the metadata quorum (a controller keeps its log under
    /// `<log.dirs>/__cluster_metadata`; a broker only follows it) and starts the broker and
    /// controller duties of this node's roles. `bootstrap_id` is the cluster id this node
    /// proposes if it is the first active controller of a fresh quorum.
    pub async fn start(
        config: &Config,
        settings: ClusterSettings,
        bootstrap_id: String,
    ) -> anyhow::Result<Arc<ClusterNode>> {
        let node_id = config.node_id;
        let inter_broker = Arc::new(
            match config
                .listener_protocols
                .get(&settings.inter_broker_listener)
            {
                Some(protocol) if settings.broker => Connector::new(
                    &config.values,
                    &settings.inter_broker_listener,
                    *protocol,
                    "sasl.mechanism.inter.broker.protocol",
                )?,
                _ => Connector::plaintext(),
            },
        );
        let propose_timeout = Duration::from_secs(8);
        let transport = Arc::new(quorum_transport(config, &settings)?);
        let quorum = if settings.controller {
            let mut qc = QuorumConfig::new(
                node_id as u64,
                config.log_dir.join("__cluster_metadata"),
                settings.voters.clone(),
            );
            qc.propose_timeout = propose_timeout;
            qc.transport = transport;
            let quorum = MetadataQuorum::start(qc).await.map_err(|e| {
                anyhow::anyhow!(
                    "metadata quorum: cannot start on {}: {e}",
                    settings.voters[&(node_id as u64)]
                )
            })?;
            Member::Voter(quorum)
        } else {
            Member::Observer(MetadataObserver::start(
                node_id,
                settings.bootstrap_servers.clone(),
                propose_timeout,
                transport,
            ))
        };
        let endpoints = config
            .advertised_listeners
            .iter()
            .map(|l| Endpoint {
                name: l.name.clone(),
                host: l.advertised_host(),
                port: l.port,
                security_protocol: 0,
            })
            .collect();
        let (halt, _) = watch::channel(false);
        let node = Arc::new(ClusterNode {
            node_id,
            settings,
            inter_broker,
            quorum,
            incarnation: Uuid::new_v4(),
            endpoints,
            epoch: AtomicI64::new(-1),
            stopping: AtomicBool::new(false),
            halt,
        });
        if node.settings.controller {
            tokio::spawn(controller_duties(node.clone(), bootstrap_id));
        }
        if node.settings.broker {
            tokio::spawn(broker_duties(node.clone()));
        }
        Ok(node)
    }

    /// Waits until the quorum has agreed on the cluster id (the first start of a fresh quorum
    /// waits for a majority of voters). Logs while it waits.
    pub async fn cluster_id(&self) -> String {
        let mut rx = self.quorum.subscribe();
        let started = Instant::now();
        loop {
            if let Some(id) = rx.borrow_and_update().cluster_id.clone() {
                return id;
            }
            match tokio::time::timeout(Duration::from_secs(5), rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => std::future::pending::<()>().await,
                Err(_) => tracing::info!(
                    waited_s = started.elapsed().as_secs(),
                    controllers = ?self.settings.bootstrap_servers,
                    "waiting for the metadata quorum (a majority of the voters must be up)"
                ),
            }
        }
    }

    /// Waits until this broker is registered and unfenced, up to `timeout`.
    pub async fn wait_active(&self, timeout: Duration) -> bool {
        let mut rx = self.quorum.subscribe();
        let me = self.node_id;
        let inc = self.incarnation;
        let ready = rx.wait_for(|img| {
            img.brokers
                .get(&me)
                .is_some_and(|b| b.incarnation_id == inc && !b.fenced)
        });
        matches!(tokio::time::timeout(timeout, ready).await, Ok(Ok(_)))
    }

    pub fn image(&self) -> Arc<Image> {
        self.quorum.image()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Image>> {
        self.quorum.subscribe()
    }

    /// The active controller's id as this node knows it (-1 if none).
    pub fn controller_id(&self) -> i32 {
        self.quorum.leader().map_or(-1, |l| l as i32)
    }

    pub fn quorum_status(&self) -> QuorumStatus {
        self.quorum.status()
    }

    /// The quorum's state as its leader sees it (DescribeQuorum), with the voters' addresses.
    pub async fn leader_status(&self) -> Option<QuorumStatus> {
        self.quorum.leader_status(Duration::from_secs(2)).await
    }

    pub fn broker_epoch(&self) -> i64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Waits until this node has applied the entry at `index`; the image then.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Option<Arc<Image>> {
        self.quorum.wait_applied(index, timeout).await
    }

    /// Proposes a decision and waits until this node has applied it, so that what the caller
    /// answers next already reflects it.
    pub async fn commit(&self, records: Vec<MetadataRecord>) -> Result<Arc<Image>, ChangeError> {
        let index = self.quorum.propose(records).await?;
        self.quorum
            .wait_applied(index, Duration::from_secs(10))
            .await
            .ok_or_else(|| {
                ChangeError::Unavailable("committed but not applied here in 10 s".into())
            })
    }

    /// A block of `size` producer ids for this broker, no id below `floor`: the block is
    /// proposed after the image's last one and taken only if no other block got there first
    /// (the image refuses overlapping blocks), so ids are unique across the cluster.
    pub async fn allocate_producer_ids(
        &self,
        floor: i64,
        size: i64,
        timeout: Duration,
    ) -> anyhow::Result<(i64, i64)> {
        let deadline = Instant::now() + timeout;
        loop {
            let first = self.quorum.image().next_producer_id.max(floor);
            let record = MetadataRecord::ProducerIds(ProducerIds {
                broker_id: self.node_id,
                broker_epoch: self.broker_epoch(),
                next_producer_id: first + size,
                first_producer_id: Some(first),
            });
            match self.commit(vec![record]).await {
                Ok(_) => return Ok((first, first + size)),
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = ?e, "producer id block refused; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => anyhow::bail!("no producer id block: {e:?}"),
            }
        }
    }

    /// Controlled shutdown: asks the active controller to fence this broker (its leaderships
    /// move first) and waits for it, up to 5 s. Heartbeats stop asking to be active.
    pub async fn controlled_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let img = self.quorum.image();
            match img.brokers.get(&self.node_id) {
                Some(b) if b.incarnation_id == self.incarnation && !b.fenced => {}
                _ => {
                    tracing::info!("controlled shutdown: this broker is fenced");
                    return;
                }
            }
            let hb = Heartbeat {
                broker_id: self.node_id,
                broker_epoch: self.broker_epoch(),
                wants_active: false,
            };
            self.quorum.heartbeat(hb, Duration::from_millis(500)).await;
            tokio::time::sleep(TICK).await;
        }
        tracing::warn!("controlled shutdown: not fenced within 5 s; stopping anyway");
    }

    /// Stops the duties and leaves the quorum.
    pub async fn stop(&self) {
        let _ = self.halt.send(true);
        self.quorum.stop().await;
    }
}

/// Sleeps one tick; false once the node is stopping.
async fn tick(halt: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => !*halt.borrow(),
        _ = halt.changed() => false,
    }
}

/// The broker's side: register (again, whenever the image lacks this incarnation) and send a
/// heartbeat every `broker.heartbeat.interval.ms`.
async fn broker_duties(node: Arc<ClusterNode>) {
    let mut halt = node.halt.subscribe();
    let interval = Duration::from_millis(node.settings.heartbeat_interval_ms);
    let mut wait = TICK;
    while tick(&mut halt, wait).await {
        let img = node.quorum.image();
        if img.cluster_id.is_none() {
            wait = TICK;
            continue;
        }
        let current = img
            .brokers
            .get(&node.node_id)
            .filter(|b| b.incarnation_id == node.incarnation);
        let Some(reg) = current else {
            if node.stopping.load(Ordering::SeqCst) {
                return;
            }
            let r = controller::register_broker(
                &img,
                node.node_id,
                node.incarnation,
                node.endpoints.clone(),
                None,
            );
            match node.quorum.propose(r.records).await {
                Ok(_) => tracing::info!(
                    broker_epoch = r.broker_epoch,
                    "registered with the controller"
                ),
                Err(e) => tracing::debug!(error = %e, "registration not taken yet; retrying"),
            }
            wait = TICK;
            continue;
        };
        node.epoch.store(reg.epoch, Ordering::Relaxed);
        let hb = Heartbeat {
            broker_id: node.node_id,
            broker_epoch: reg.epoch,
            wants_active: !node.stopping.load(Ordering::SeqCst),
        };
        let taken = node.quorum.heartbeat(hb, interval).await;
        // Until the controller has taken a heartbeat and unfenced us, try again soon.
        wait = if taken && !reg.fenced {
            interval
        } else {
            TICK * 2
        };
    }
}

/// The active controller's duties, done by whichever node leads the quorum.
async fn controller_duties(node: Arc<ClusterNode>, bootstrap_id: String) {
    let mut halt = node.halt.subscribe();
    let session = Duration::from_millis(node.settings.session_timeout_ms);
    let mut leader_since: Option<Instant> = None;
    let mut probed_term = false;
    let mut last_rebalance = Instant::now();
    while tick(&mut halt, TICK).await {
        if !node.quorum.is_leader() {
            leader_since = None;
            probed_term = false;
            continue;
        }
        let since = *leader_since.get_or_insert_with(|| {
            // A new term: heartbeats sent to the old leader do not count here; every broker
            // gets a full session from now.
            if let Some(l) = node.quorum.liveness() {
                l.clear();
            }
            tracing::info!("this node is now the active controller");
            Instant::now()
        });
        let img = node.quorum.image();
        // Brokers whose process may be gone: their heartbeat connection closed, or (at the
        // start of a term) every other live broker. A refused connection settles it.
        let mut suspects: Vec<(i32, i64, u32)> = node
            .quorum
            .liveness()
            .map(|l| l.take_closed())
            .unwrap_or_default()
            .into_iter()
            .map(|(b, e)| (b, e, 3))
            .collect();
        if !probed_term {
            probed_term = true;
            suspects.extend(
                img.brokers
                    .values()
                    .filter(|b| !b.fenced && b.id != node.node_id)
                    .map(|b| (b.id, b.epoch, 1)),
            );
        }
        for (id, epoch, tries) in suspects {
            let Some(b) = img
                .brokers
                .get(&id)
                .filter(|b| !b.fenced && b.epoch == epoch)
            else {
                continue;
            };
            if !process_gone(b, &node.settings.inter_broker_listener, tries).await {
                continue;
            }
            tracing::warn!(
                broker = id,
                "the broker's process is gone (connection refused): fencing it"
            );
            if let Some(l) = node.quorum.liveness() {
                l.forget(id);
            }
            if let Some(records) = controller::fence_broker(&img, id)
                && let Err(e) = node.quorum.propose(records).await
            {
                tracing::warn!(error = %e, "controller: the fence was not committed");
            }
        }
        let img = node.quorum.image();
        let mut records = duty(&img, &node, since, session, &bootstrap_id);
        // Offline partitions of topics that allow an unclean election.
        if records.is_none() && img.cluster_id.is_some() {
            let recs =
                election::unclean_recoveries(&img, |t| unclean_allowed(&img, &node.settings, t));
            if !recs.is_empty() {
                tracing::warn!(
                    partitions = recs.len(),
                    "unclean leader election for offline partitions"
                );
                records = Some(recs);
            }
        }
        // Reassignments whose added replicas are in sync complete.
        if records.is_none() {
            let recs = super::reassign::completions(&img);
            if !recs.is_empty() {
                tracing::info!(
                    partitions = recs.len(),
                    "completing partition reassignments"
                );
                records = Some(recs);
            }
        }
        // Preferred replicas take their leaderships back.
        if records.is_none()
            && node.settings.auto_leader_rebalance
            && last_rebalance.elapsed()
                >= Duration::from_millis(node.settings.leader_imbalance_check_interval_ms)
        {
            last_rebalance = Instant::now();
            let recs =
                election::rebalance(&img, node.settings.leader_imbalance_per_broker_percentage);
            if !recs.is_empty() {
                tracing::info!(
                    partitions = recs.len(),
                    "preferred replicas take their leaderships back"
                );
                records = Some(recs);
            }
        }
        let Some(records) = records else {
            continue;
        };
        if let Err(e) = node.quorum.propose(records).await {
            tracing::warn!(error = %e, "controller: a decision was not committed");
            if !tick(&mut halt, Duration::from_millis(500)).await {
                return;
            }
        }
    }
}

/// `unclean.leader.election.enable` for `topic`: its own config, else the dynamic cluster
/// default, else the static one.
fn unclean_allowed(img: &Image, settings: &ClusterSettings, topic: &str) -> bool {
    const KEY: &str = "unclean.leader.election.enable";
    img.topic_by_name(topic)
        .and_then(|t| t.configs.get(KEY))
        .or_else(|| img.broker_configs.get("").and_then(|c| c.get(KEY)))
        .map_or(settings.unclean_leader_election, |v| v == "true")
}

/// Whether broker `b`'s process is gone: its listener refuses connections (a killed
/// process's listening socket is closed by the kernel at once; a paused or unreachable one
/// still accepts, or times out, and is left to the session timeout). Up to `tries` tries
/// 100 ms apart (after a closed connection, for the moment between a killed process's
/// connections closing and its listener closing).
async fn process_gone(b: &super::image::BrokerRegistration, listener: &str, tries: u32) -> bool {
    let Some(e) = b
        .endpoints
        .iter()
        .find(|e| e.name == listener)
        .or_else(|| b.endpoints.first())
    else {
        return false;
    };
    let addr = format!("{}:{}", e.host, e.port);
    for i in 0..tries {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let attempt = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(&addr),
        )
        .await;
        if let Ok(Err(e)) = attempt
            && e.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
    }
    false
}

/// The security of the quorum's connections: the protocol of the first of
/// `controller.listener.names` (which brokers use to reach the controllers, as in Kafka).
fn quorum_transport(config: &Config, settings: &ClusterSettings) -> anyhow::Result<Transport> {
    let Some(name) = config
        .values
        .get("controller.listener.names")
        .and_then(|(v, _)| v.split(',').map(str::trim).find(|n| !n.is_empty()))
        .map(str::to_string)
    else {
        return Ok(Transport::default());
    };
    // A controller listener the map does not name stays PLAINTEXT, as it always was here
    // (Kafka would refuse to start); a map that names it with an unknown protocol is an error.
    let mapped = config
        .values
        .get("listener.security.protocol.map")
        .is_some_and(|(m, _)| {
            m.split(',')
                .filter_map(|e| e.split_once(':'))
                .any(|(l, _)| l.trim() == name)
        });
    let protocol = if mapped || SecurityProtocol::parse(&name).is_some() {
        crate::config::security::protocols(&config.values, std::slice::from_ref(&name))
            .map_err(|e| anyhow::anyhow!("{}", e.0))?[&name]
    } else {
        SecurityProtocol::Plaintext
    };
    Transport::new(&config.values, &name, protocol, settings.controller)
        .map_err(|e| anyhow::anyhow!("controller listener {name} ({}): {e:#}", protocol.name()))
}

/// The next thing the active controller must do, if any: set the cluster id, fence a broker
/// whose session expired (or that asked in a controlled shutdown), unfence one that
/// heartbeats again.
fn duty(
    img: &Image,
    node: &ClusterNode,
    leader_since: Instant,
    session: Duration,
    bootstrap_id: &str,
) -> Option<Vec<MetadataRecord>> {
    if img.cluster_id.is_none() {
        tracing::info!(cluster_id = bootstrap_id, "bootstrapping the cluster id");
        return Some(vec![MetadataRecord::ClusterId(ClusterId {
            cluster_id: bootstrap_id.to_string(),
        })]);
    }
    let now = Instant::now();
    for b in img.brokers.values() {
        let last = node
            .quorum
            .liveness()
            .and_then(|l| l.last(b.id))
            .filter(|(hb, _)| hb.broker_epoch == b.epoch);
        if !b.fenced {
            let heard = last.map_or(leader_since, |(_, t)| t.max(leader_since));
            let stopping = last.is_some_and(|(hb, _)| !hb.wants_active);
            if stopping || now.duration_since(heard) > session {
                if stopping {
                    tracing::info!(broker = b.id, "controlled shutdown: fencing broker");
                } else {
                    tracing::warn!(
                        broker = b.id,
                        silent_ms = now.duration_since(heard).as_millis() as u64,
                        "no heartbeat within broker.session.timeout.ms: fencing broker"
                    );
                }
                return controller::fence_broker(img, b.id);
            }
        } else if let Some((hb, t)) = last
            && hb.wants_active
            && now.duration_since(t) < session
        {
            tracing::info!(broker = b.id, epoch = b.epoch, "unfencing broker");
            return controller::unfence_broker(img, b.id);
        }
    }
    None
}

/// Writes Kafka's `meta.properties` in the data dir (what `kafka-storage info` reads).
pub fn write_meta_properties(
    dir: &std::path::Path,
    cluster_id: &str,
    node_id: i32,
) -> std::io::Result<()> {
    let text =
        format!("#Written by Fjord\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n");
    let tmp = dir.join("meta.properties.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join("meta.properties"))
}

/// A resource's configs as Config records: set the new values, delete the ones gone.
pub fn config_records(
    resource_type: ConfigResource,
    resource_name: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let set = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), Some(v.clone())));
    let gone = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| (k.clone(), None));
    set.chain(gone)
        .map(|(name, value)| {
            MetadataRecord::Config(ConfigRecord {
                resource_type,
                resource_name: resource_name.to_string(),
                name,
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_records_set_and_delete() {
        let old: BTreeMap<_, _> = [("a".to_string(), "1".to_string()), ("b".into(), "2".into())]
            .into_iter()
            .collect();
        let new: BTreeMap<_, _> = [("a".to_string(), "1".to_string()), ("c".into(), "3".into())]
            .into_iter()
            .collect();
        let r = config_records(ConfigResource::Topic, "t", &old, &new);
        assert_eq!(r.len(), 2);
        let mut img = Image::default();
        crate::cluster::image::apply(
            &mut img,
            &MetadataRecord::Topic(TopicRecord {
                name: "t".into(),
                topic_id: Uuid::from_u128(1),
            }),
        )
        .unwrap();
        for (k, v) in &old {
            let rec = config_records(
                ConfigResource::Topic,
                "t",
                &BTreeMap::new(),
                &[(k.clone(), v.clone())].into(),
            );
            crate::cluster::image::apply_batch(&mut img, &rec).unwrap();
        }
        crate::cluster::image::apply_batch(&mut img, &r).unwrap();
        assert_eq!(img.topic_by_name("t").unwrap().configs, new);
    }
}
