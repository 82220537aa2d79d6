//! The metadata quorum on openraft 0.9. Everything openraft is kept behind this module: the
//! broker sees `MetadataQuorum`, which proposes record batches and awaits their commit,
//! publishes the image as committed records are applied, and says who leads (the Raft leader
//! is the active controller).
//!
//! - `store`: the log, vote and snapshots in a sled database under the node's directory; the
//!   state machine applies committed batches to the image with `image::apply_batch`, and its
//!   snapshots are the serialized image.
//! - `network`: openraft's RPCs as length-prefixed JSON frames over TCP.

mod member;
mod network;
mod observer;
mod store;
#[cfg(test)]
mod tests;
mod transport;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::image::{ApplyError, Image};
use super::records::RecordBatch;
pub use member::Member;
pub use network::Heartbeat;
use network::{CallError, Connection, Reply, Request};
pub use observer::MetadataObserver;
use observer::{ForObservers, Recent};
pub use transport::Transport;

/// A controller's id (Kafka's `node.id`).
pub type NodeId = u64;
/// What the quorum knows of a controller: its quorum address.
pub type Node = BasicNode;
/// The state machine's answer to one entry: applied, or refused by `apply`.
pub type Applied = Result<(), ApplyError>;

openraft::declare_raft_types!(
    /// openraft's type configuration for the metadata quorum.
    pub TypeConfig:
        D = RecordBatch,
        R = Applied,
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

type Raft = openraft::Raft<TypeConfig>;

/// How a controller joins the quorum.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: NodeId,
    /// Where the log, vote and snapshots live (a directory of their own).
    pub dir: PathBuf,
    /// Every voter's id and quorum address (Kafka's `controller.quorum.voters`), this node
    /// included. The first start of a fresh voter set forms the quorum from it.
    pub voters: BTreeMap<NodeId, String>,
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Per-RPC deadline for snapshot installation (the others follow the heartbeat).
    pub install_snapshot_timeout: Duration,
    /// A snapshot after this many entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log behind the latest snapshot.
    pub keep_behind_snapshot: u64,
    /// How long `propose` tries (finding a leader, forwarding) before it gives up.
    pub propose_timeout: Duration,
    /// The controller listener's security, both ways.
    pub transport: Arc<Transport>,
}

impl QuorumConfig {
    pub fn new(node_id: NodeId, dir: PathBuf, voters: BTreeMap<NodeId, String>) -> Self {
        QuorumConfig {
            node_id,
            dir,
            voters,
            heartbeat_interval: Duration::from_millis(60),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(600),
            install_snapshot_timeout: Duration::from_secs(5),
            snapshot_every: 1000,
            keep_behind_snapshot: 1000,
            propose_timeout: Duration::from_secs(10),
            transport: Arc::default(),
        }
    }

    fn raft_config(&self) -> anyhow::Result<Config> {
        let config = Config {
            cluster_name: "fjord-metadata".into(),
            heartbeat_interval: self.heartbeat_interval.as_millis() as u64,
            election_timeout_min: self.election_timeout_min.as_millis() as u64,
            election_timeout_max: self.election_timeout_max.as_millis() as u64,
            install_snapshot_timeout: self.install_snapshot_timeout.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_behind_snapshot,
            // Chunks stay far below the transport's frame limit, even as JSON.
            snapshot_max_chunk_size: 1 << 20,
            ..Default::default()
        };
        Ok(config.validate()?)
    }
}

/// Why a proposal did not commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// Committed, but `apply` refused it: the image is unchanged (every node refuses it alike).
    Rejected { index: u64, error: ApplyError },
    /// No leader could take it within the propose timeout; it was not appended.
    NoLeader { leader_hint: Option<NodeId> },
    /// The leader was asked but its answer was lost: the batch may or may not commit.
    Unknown(String),
    /// This node's quorum has stopped.
    Shutdown,
}

impl std::fmt::Display for ProposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProposeError::Rejected { index, error } => {
                write!(f, "entry {index} refused by the state machine: {error}")
            }
            ProposeError::NoLeader { leader_hint } => {
                write!(
                    f,
                    "no metadata quorum leader reachable (hint {leader_hint:?})"
                )
            }
            ProposeError::Unknown(why) => write!(f, "outcome unknown: {why}"),
            ProposeError::Shutdown => write!(f, "the metadata quorum has stopped"),
        }
    }
}

impl std::error::Error for ProposeError {}

/// A snapshot of the quorum's state as this node sees it (for DescribeQuorum and logs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumStatus {
    pub node_id: NodeId,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub voters: BTreeSet<NodeId>,
    /// On the leader: each voter's last replicated index.
    pub replication: Option<BTreeMap<NodeId, Option<u64>>>,
    /// On the leader: the observers (brokers that are not voters) heard from lately, and the
    /// last entry each had applied.
    #[serde(default)]
    pub observers: BTreeMap<i32, u64>,
    /// The voters' quorum addresses.
    #[serde(default)]
    pub addresses: BTreeMap<NodeId, String>,
}

/// The heartbeats the active controller has received: per broker, the last one and when;
/// and the brokers whose heartbeat connection closed (a killed process closes its sockets).
#[derive(Default)]
pub struct Liveness {
    seen: std::sync::Mutex<std::collections::HashMap<i32, (Heartbeat, Instant)>>,
    closed: std::sync::Mutex<Vec<(i32, i64)>>,
}

impl Liveness {
    /// The connection that carried `broker`'s heartbeats (at `epoch`) closed.
    pub(crate) fn connection_closed(&self, broker: i32, epoch: i64) {
        self.closed.lock().unwrap().push((broker, epoch));
    }

    /// Forgets `broker`'s last heartbeat (it was fenced for being gone: a heartbeat it sent
    /// before dying must not unfence it again).
    pub fn forget(&self, broker: i32) {
        self.seen.lock().unwrap().remove(&broker);
    }

    /// The (broker, epoch) pairs whose heartbeat connection closed since the last call.
    pub fn take_closed(&self) -> Vec<(i32, i64)> {
        std::mem::take(&mut *self.closed.lock().unwrap())
    }

    fn record(&self, hb: Heartbeat) {
        self.seen
            .lock()
            .unwrap()
            .insert(hb.broker_id, (hb, Instant::now()));
    }

    /// The last heartbeat of `broker` and when it arrived.
    pub fn last(&self, broker: i32) -> Option<(Heartbeat, Instant)> {
        self.seen.lock().unwrap().get(&broker).copied()
    }

    /// Forgets every heartbeat (a new term: the new leader starts its clocks afresh).
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

/// One controller's membership in the metadata quorum.
pub struct MetadataQuorum {
    liveness: Arc<Liveness>,
    observers: Arc<ForObservers>,
    /// The connection heartbeats go over, to the leader it was opened to.
    heartbeat_conn: tokio::sync::Mutex<Option<(NodeId, Connection)>>,
    node_id: NodeId,
    raft: Raft,
    image: watch::Receiver<Arc<Image>>,
    server: tokio::task::JoinHandle<()>,
    store: Weak<store::Store>,
    addr: SocketAddr,
    propose_timeout: Duration,
    transport: Arc<Transport>,
}

impl MetadataQuorum {
    /// Binds this node's quorum address (its entry in `voters`) and starts.
    pub async fn start(config: QuorumConfig) -> anyhow::Result<MetadataQuorum> {
        let addr = config
            .voters
            .get(&config.node_id)
            .ok_or_else(|| anyhow::anyhow!("node {} is not among the voters", config.node_id))?;
        let listener = TcpListener::bind(addr).await?;
        Self::start_with_listener(config, listener).await
    }

    /// Starts on an already bound listener (tests bind ephemeral ports first).
    pub async fn start_with_listener(
        config: QuorumConfig,
        listener: TcpListener,
    ) -> anyhow::Result<MetadataQuorum> {
        let raft_config = Arc::new(config.raft_config()?);
        let dir = config.dir.clone();
        let db = tokio::task::spawn_blocking(move || store::Store::open(&dir)).await??;
        let (publish, image) = watch::channel(Arc::new(Image::default()));
        let recent = Arc::new(Recent::default());
        let sm = store::StateMachine::open(db.clone(), publish, recent.clone())?;
        let log = store::LogStore::new(db.clone());
        let weak = Arc::downgrade(&db);
        drop(db);
        let raft = Raft::new(
            config.node_id,
            raft_config,
            network::Network(config.transport.clone()),
            log,
            sm,
        )
        .await?;
        let addr = listener.local_addr()?;
        let liveness = Arc::new(Liveness::default());
        let observers = Arc::new(ForObservers::new(recent, image.clone()));
        let server = network::serve(
            listener,
            raft.clone(),
            liveness.clone(),
            observers.clone(),
            config.transport.clone(),
        );
        let members: BTreeMap<NodeId, Node> = config
            .voters
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        // Every voter of a fresh quorum initializes with the same membership (openraft
        // allows this); a node that already has a log, or has heard from a leader, is told
        // NotAllowed, which is expected.
        match raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(e) => {
                server.abort();
                let _ = raft.shutdown().await;
                return Err(e.into());
            }
        }
        Ok(MetadataQuorum {
            liveness,
            observers,
            heartbeat_conn: tokio::sync::Mutex::new(None),
            node_id: config.node_id,
            raft,
            image,
            server,
            store: weak,
            addr,
            propose_timeout: config.propose_timeout,
            transport: config.transport.clone(),
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The address the quorum listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The image, replaced each time committed entries are applied on this node.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Image>> {
        self.image.clone()
    }

    /// The current image on this node.
    pub fn image(&self) -> Arc<Image> {
        self.image.borrow().clone()
    }

    /// Waits until this node has applied the entry at `index` (for example one returned by
    /// `propose` on another node); the image then, or None on timeout.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Option<Arc<Image>> {
        let mut rx = self.image.clone();
        let ready = tokio::time::timeout(timeout, rx.wait_for(|img| img.offset >= index)).await;
        match ready {
            Ok(Ok(img)) => Some(img.clone()),
            _ => None,
        }
    }

    /// The leader (active controller) as this node knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.node_id)
    }

    /// Waits until this node knows a leader.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<NodeId> {
        let mut rx = self.raft.metrics();
        let found =
            tokio::time::timeout(timeout, rx.wait_for(|m| m.current_leader.is_some())).await;
        found.ok()?.ok()?.current_leader
    }

    pub fn status(&self) -> QuorumStatus {
        status_of(&self.raft, &self.observers)
    }

    /// Proposes a batch of records, applied atomically, and waits until it is committed and
    /// applied by the leader. On a follower the batch is forwarded to the leader. Returns the
    /// batch's log index; `wait_applied` waits for it on another node.
    pub async fn propose(&self, batch: impl Into<RecordBatch>) -> Result<u64, ProposeError> {
        let batch = batch.into();
        let deadline = Instant::now() + self.propose_timeout;
        let mut hint = None;
        while Instant::now() < deadline {
            let outcome = match self.raft.client_write(batch.clone()).await {
                Ok(resp) => Ok((resp.log_id.index, resp.data)),
                Err(e) => Err(e),
            };
            match outcome {
                Ok((index, applied)) => return finish(index, applied),
                Err(RaftError::Fatal(_)) => return Err(ProposeError::Shutdown),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    hint = f.leader_id;
                    if let (Some(id), Some(node)) = (f.leader_id, f.leader_node)
                        && id != self.node_id
                    {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match forward(&node.addr, &batch, left, &self.transport).await {
                            Forwarded::Done(index, applied) => return finish(index, applied),
                            Forwarded::Unknown(why) => return Err(ProposeError::Unknown(why)),
                            Forwarded::Retry => {}
                        }
                    }
                }
                Err(RaftError::APIError(e)) => return Err(ProposeError::Unknown(e.to_string())),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(ProposeError::NoLeader { leader_hint: hint })
    }

    /// The heartbeats this node took as the active controller.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// Sends a broker heartbeat to the active controller (recorded here when this node is
    /// it). True when the active controller took it.
    pub async fn heartbeat(&self, hb: Heartbeat, timeout: Duration) -> bool {
        if self.is_leader() {
            self.liveness.record(hb);
            return true;
        }
        match leader_of(&self.raft) {
            Some((leader, addr)) if leader != self.node_id => {
                network::heartbeat_to(
                    &self.heartbeat_conn,
                    leader,
                    addr,
                    hb,
                    timeout,
                    &self.transport,
                )
                .await
            }
            _ => false,
        }
    }

    /// The quorum's state as the leader sees it (asked of the leader when this node is not
    /// it), for DescribeQuorum; None when no leader answers.
    pub async fn leader_status(&self, timeout: Duration) -> Option<QuorumStatus> {
        let (leader, addr) = leader_of(&self.raft)?;
        if leader == self.node_id {
            return Some(self.status());
        }
        network::status_from(addr, timeout, self.transport.clone()).await
    }

    /// Stops Raft and the quorum's server without giving up the handle (for owners that
    /// share it); `shutdown` also waits for the store to close.
    pub async fn stop(&self) {
        self.server.abort();
        let _ = self.raft.shutdown().await;
    }

    /// Stops this node: Raft, its server and connections; returns once its directory is
    /// closed (so it can be opened again, in this process too).
    pub async fn shutdown(mut self) {
        self.server.abort();
        let _ = (&mut self.server).await;
        let _ = self.raft.shutdown().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.store.strong_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for MetadataQuorum {
    /// Dropped without `shutdown`: stop answering peers at once; Raft stops when its last
    /// handle is gone.
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The leader as `raft` knows it, with its quorum address.
fn leader_of(raft: &Raft) -> Option<(NodeId, String)> {
    let m = raft.metrics().borrow().clone();
    let leader = m.current_leader?;
    let addr = m
        .membership_config
        .membership()
        .get_node(&leader)?
        .addr
        .clone();
    Some((leader, addr))
}

fn status_of(raft: &Raft, observers: &ForObservers) -> QuorumStatus {
    let m = raft.metrics().borrow().clone();
    QuorumStatus {
        node_id: m.id,
        leader: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        voters: m.membership_config.voter_ids().collect(),
        replication: m.replication.map(|r| {
            r.into_iter()
                .map(|(id, l)| (id, l.map(|l| l.index)))
                .collect()
        }),
        addresses: m
            .membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect(),
        observers: if m.current_leader == Some(m.id) {
            observers.observers()
        } else {
            BTreeMap::new()
        },
    }
}

fn finish(index: u64, applied: Applied) -> Result<u64, ProposeError> {
    applied
        .map(|()| index)
        .map_err(|error| ProposeError::Rejected { index, error })
}

enum Forwarded {
    Done(u64, Applied),
    /// Surely not appended (unreachable, or no longer the leader): try again.
    Retry,
    Unknown(String),
}

async fn forward(
    addr: &str,
    batch: &RecordBatch,
    timeout: Duration,
    transport: &Arc<Transport>,
) -> Forwarded {
    let mut conn = Connection::new(addr.to_string(), transport.clone());
    match conn.call(&Request::Propose(batch.clone()), timeout).await {
        Ok(Reply::Propose(Ok((index, applied)))) => Forwarded::Done(index, applied),
        Ok(Reply::Propose(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))))) => {
            Forwarded::Retry
        }
        Ok(Reply::Propose(Err(e))) => Forwarded::Unknown(e.to_string()),
        Ok(_) => Forwarded::Unknown("unexpected reply to a forwarded proposal".into()),
        Err(CallError::Connect(_)) => Forwarded::Retry,
        Err(CallError::Io(e)) => Forwarded::Unknown(e.to_string()),
    }
}
