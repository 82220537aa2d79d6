//! The quorum's transport: openraft's RPCs over TCP, one request and one reply per frame
//! (a 4-byte big-endian length, then JSON), at most `MAX_FRAME` bytes. Every call has a
//! deadline; a broken or timed-out connection is dropped and reopened on the next call.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::observer::{Fetch, FetchReply, ForObservers, answer_fetch};
use super::transport::Transport;
use super::{Applied, Liveness, Node, NodeId, QuorumStatus, Raft, TypeConfig};
use crate::cluster::records::RecordBatch;
use crate::security::connector::BoxStream;

/// The largest frame accepted. Snapshot chunks are capped well below it
/// (`snapshot_max_chunk_size`), and JSON at most triples a chunk's bytes.
pub const MAX_FRAME: usize = 16 << 20;

/// How long a server waits for the rest of a frame once its length has arrived.
const FRAME_BODY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize)]
pub(super) enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A proposal forwarded by a node that is not the leader.
    Propose(RecordBatch),
    /// A broker's heartbeat to the active controller.
    Heartbeat(Heartbeat),
    /// The quorum's state as this node sees it (DescribeQuorum asks the leader).
    Status,
    /// An observer (a broker that is not a voter) asks for the entries after its last.
    FetchMetadata(Fetch),
    /// A SASL message, before anything else on a SASL controller listener.
    Authenticate {
        mechanism: String,
        bytes: Vec<u8>,
    },
}

/// Kafka's BrokerHeartbeat, reduced to what the controller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// False when the broker is stopping (controlled shutdown): it must not be unfenced.
    pub wants_active: bool,
}

pub(super) type ProposeReply =
    Result<(u64, Applied), RaftError<NodeId, ClientWriteError<NodeId, Node>>>;

#[derive(Serialize, Deserialize)]
pub(super) enum Reply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Propose(ProposeReply),
    /// Whether the node that took the heartbeat is the leader (otherwise it was dropped).
    Heartbeat(bool),
    Status(QuorumStatus),
    Metadata(FetchReply),
    /// (whether authentication is complete, the server's SASL message, the session's
    /// lifetime in ms once complete, -1 when it does not end), or why it failed.
    Authenticate(Result<(bool, Vec<u8>, i64), String>),
}

pub(super) async fn write_frame<W: AsyncWriteExt + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> io::Result<()> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes is over {MAX_FRAME}", body.len()),
        ));
    }
    w.write_u32(body.len() as u32).await?;
    w.write_all(&body).await?;
    w.flush().await
}

/// Reads one frame; Ok(None) on a clean end of stream before a frame starts.
pub(super) async fn read_frame<R: AsyncReadExt + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    body_timeout: Option<Duration>,
) -> io::Result<Option<T>> {
    let len = match r.read_u32().await {
        Ok(n) => n as usize,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0; len];
    match body_timeout {
        Some(t) => tokio::time::timeout(t, r.read_exact(&mut body))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "frame body timed out"))??,
        None => r.read_exact(&mut body).await?,
    };
    Ok(Some(serde_json::from_slice(&body)?))
}

/// Serves the quorum's RPCs on `listener` until the returned task is aborted (which also
/// aborts every connection it serves).
pub(super) fn serve(
    listener: TcpListener,
    raft: Raft,
    liveness: Arc<Liveness>,
    observers: Arc<ForObservers>,
    transport: Arc<Transport>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        conns.spawn(serve_conn(
                            stream,
                            raft.clone(),
                            liveness.clone(),
                            observers.clone(),
                            transport.clone(),
                        ));
                    }
                    Err(e) => {
                        tracing::warn!("metadata quorum: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    })
}

async fn serve_conn(
    stream: TcpStream,
    raft: Raft,
    liveness: Arc<Liveness>,
    observers: Arc<ForObservers>,
    transport: Arc<Transport>,
) {
    let peer = stream.peer_addr().ok();
    let opened = match transport.accept(stream, &observers.image).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(
                listener = %transport.listener,
                peer = ?peer,
                "metadata quorum: connection refused: {e:#}"
            );
            return;
        }
    };
    let mut heartbeats_of = None;
    serve_requests(
        opened,
        raft,
        liveness.clone(),
        observers,
        &mut heartbeats_of,
    )
    .await;
    // The connection a broker heartbeats on closed: the controller checks at once whether
    // its process is gone, instead of waiting out the session timeout.
    if let Some((broker, epoch)) = heartbeats_of {
        liveness.connection_closed(broker, epoch);
    }
}

async fn serve_requests(
    opened: super::transport::Opened,
    raft: Raft,
    liveness: Arc<Liveness>,
    observers: Arc<ForObservers>,
    heartbeats_of: &mut Option<(i32, i64)>,
) {
    let (r, w) = tokio::io::split(opened.stream);
    let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
    loop {
        let req: Request = match read_frame(&mut r, Some(FRAME_BODY_TIMEOUT)).await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("metadata quorum: dropping connection: {e}");
                return;
            }
        };
        if opened.session_end.is_some_and(|t| Instant::now() >= t) {
            tracing::debug!("metadata quorum: a request after the SASL session ended: closing");
            return;
        }
        let reply = match req {
            Request::Append(rpc) => Reply::Append(raft.append_entries(rpc).await),
            Request::Vote(rpc) => Reply::Vote(raft.vote(rpc).await),
            Request::Snapshot(rpc) => Reply::Snapshot(raft.install_snapshot(rpc).await),
            Request::Propose(batch) => Reply::Propose(
                raft.client_write(batch)
                    .await
                    .map(|resp| (resp.log_id.index, resp.data)),
            ),
            Request::Heartbeat(hb) => {
                let leads = raft.metrics().borrow().current_leader == Some(raft_id(&raft));
                if leads {
                    *heartbeats_of = Some((hb.broker_id, hb.broker_epoch));
                    liveness.record(hb);
                }
                Reply::Heartbeat(leads)
            }
            Request::Status => Reply::Status(super::status_of(&raft, &observers)),
            Request::FetchMetadata(fetch) => {
                Reply::Metadata(answer_fetch(&raft, &observers, fetch).await)
            }
            Request::Authenticate { .. } => {
                Reply::Authenticate(Err("already authenticated, or not a SASL listener".into()))
            }
        };
        if write_frame(&mut w, &reply).await.is_err() {
            return;
        }
    }
}

fn raft_id(raft: &Raft) -> NodeId {
    raft.metrics().borrow().id
}

type Reader = BufReader<ReadHalf<BoxStream>>;
type Writer = BufWriter<WriteHalf<BoxStream>>;

/// One connection to a peer, opened on first use.
pub(super) struct Connection {
    addr: String,
    transport: Arc<Transport>,
    conn: Option<(Reader, Writer)>,
    /// When the connection's SASL session is to be given up (a new one opened).
    session_end: Option<Instant>,
}

/// Why a call failed: before anything was sent (so the request surely had no effect), or
/// after.
pub(super) enum CallError {
    Connect(io::Error),
    Io(io::Error),
}

impl CallError {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, Node, E> {
        match self {
            CallError::Connect(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Io(e) => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

impl Connection {
    pub(super) fn new(addr: String, transport: Arc<Transport>) -> Self {
        Connection {
            addr,
            transport,
            conn: None,
            session_end: None,
        }
    }

    /// Sends `req` and reads the reply, all within `timeout`.
    pub(super) async fn call(
        &mut self,
        req: &Request,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let result = tokio::time::timeout(timeout, self.call_inner(req)).await;
        let result = result.unwrap_or_else(|_| {
            Err(CallError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no reply from {} within {timeout:?}", self.addr),
            )))
        });
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn call_inner(&mut self, req: &Request) -> Result<Reply, CallError> {
        if self.session_end.is_some_and(|t| Instant::now() >= t) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let opened = self
                .transport
                .connect(&self.addr)
                .await
                .map_err(CallError::Connect)?;
            self.session_end = opened.session_end;
            let (r, w) = tokio::io::split(opened.stream);
            self.conn = Some((BufReader::new(r), BufWriter::new(w)));
        }
        let (r, w) = self.conn.as_mut().expect("connected above");
        write_frame(w, req).await.map_err(CallError::Io)?;
        match read_frame(r, None).await {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(CallError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed the connection",
            ))),
            Err(e) => Err(CallError::Io(e)),
        }
    }
}

/// Sends a broker heartbeat to the active controller `leader` at `addr` over the connection
/// kept in `slot` (opened anew when the leader changed). True when the leader took it.
pub(super) async fn heartbeat_to(
    slot: &tokio::sync::Mutex<Option<(NodeId, Connection)>>,
    leader: NodeId,
    addr: String,
    hb: Heartbeat,
    timeout: Duration,
    transport: &Arc<Transport>,
) -> bool {
    let mut slot = slot.lock().await;
    if slot.as_ref().is_none_or(|(id, _)| *id != leader) {
        *slot = Some((leader, Connection::new(addr, transport.clone())));
    }
    let (_, conn) = slot.as_mut().expect("set above");
    matches!(
        conn.call(&Request::Heartbeat(hb), timeout).await,
        Ok(Reply::Heartbeat(true))
    )
}

/// The quorum's state as the node at `addr` (the leader) reports it.
pub(super) async fn status_from(
    addr: String,
    timeout: Duration,
    transport: Arc<Transport>,
) -> Option<QuorumStatus> {
    match Connection::new(addr, transport)
        .call(&Request::Status, timeout)
        .await
    {
        Ok(Reply::Status(s)) => Some(s),
        _ => None,
    }
}

/// Makes a `Connection` per peer for openraft.
pub(super) struct Network(pub(super) Arc<Transport>);

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            conn: Connection::new(node.addr.clone(), self.0.clone()),
        }
    }
}

pub(super) struct Peer {
    target: NodeId,
    conn: Connection,
}

fn unexpected<E: std::error::Error>(what: &str) -> RPCError<NodeId, Node, E> {
    let e = io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected reply to {what}"),
    );
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        match self
            .conn
            .call(&Request::Append(rpc), option.hard_ttl())
            .await
        {
            Ok(Reply::Append(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unexpected("append")),
            Err(e) => Err(e.into_rpc()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .conn
            .call(&Request::Snapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(Reply::Snapshot(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unexpected("install_snapshot")),
            Err(e) => Err(e.into_rpc()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        match self.conn.call(&Request::Vote(rpc), option.hard_ttl()).await {
            Ok(Reply::Vote(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unexpected("vote")),
            Err(e) => Err(e.into_rpc()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_bounded() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &vec![1u32, 2, 3]).await.unwrap();
        let got: Option<Vec<u32>> = read_frame(&mut b, None).await.unwrap();
        assert_eq!(got, Some(vec![1, 2, 3]));
        // A length over the limit is refused before anything is allocated.
        a.write_u32(MAX_FRAME as u32 + 1).await.unwrap();
        let err = read_frame::<_, Vec<u32>>(&mut b, None).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // A body that never completes times out.
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_u32(10).await.unwrap();
        a.write_all(b"[").await.unwrap();
        let err = read_frame::<_, Vec<u32>>(&mut b, Some(Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // End of stream between frames is a clean end.
        drop(a);
        let (a, mut b) = tokio::io::duplex(16);
        drop(a);
        assert!(read_frame::<_, u32>(&mut b, None).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn calls_fail_fast_on_closed_ports_and_time_out_on_silent_peers() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let mut conn = Connection::new(addr, Default::default());
        let req = Request::Propose(RecordBatch::default());
        let r = conn.call(&req, Duration::from_secs(2)).await;
        assert!(matches!(r, Err(CallError::Connect(_))));

        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut conn =
            Connection::new(silent.local_addr().unwrap().to_string(), Default::default());
        let started = std::time::Instant::now();
        let r = conn.call(&req, Duration::from_millis(200)).await;
        assert!(matches!(r, Err(CallError::Io(ref e)) if e.kind() == io::ErrorKind::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(silent);
    }
}
