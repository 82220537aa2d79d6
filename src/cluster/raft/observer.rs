//! A broker that is not a controller (`process.roles=broker`) follows the metadata log as an
//! observer, as Kafka's brokers do: it long-polls a voter (the leader when it knows it) for
//! the committed entries after the last one it applied, and applies them with the same pure
//! `image::apply_batch` the voters' state machine uses, so its image is the voters' image.
//! When the entries it asks for are no longer held in memory by the voter (a fresh observer,
//! or one far behind), the voter sends its whole image instead.
//!
//! - `Recent`: the voter's side, the last committed entries kept in memory for observers.
//! - `answer_fetch`: a voter's answer to one observer fetch.
//! - `MetadataObserver`: the observer's side, with the calls a broker needs (propose, which
//!   forwards to the leader; heartbeat; the leader's quorum status).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::network::{Connection, Reply, Request};
use super::{
    Forwarded, Heartbeat, NodeId, ProposeError, QuorumStatus, Raft, finish, forward, leader_of,
};
use crate::cluster::image::{Image, apply_batch};
use crate::cluster::records::RecordBatch;

/// Committed entries a voter keeps in memory for observers, and the most records they may
/// hold together (a topic with many partitions is one large batch).
const RECENT_ENTRIES: usize = 4096;
const RECENT_RECORDS: usize = 100_000;
/// How long a voter holds an observer's fetch when nothing new is committed.
const FETCH_WAIT: Duration = Duration::from_millis(1000);
/// An observer not heard from for this long is no longer listed by DescribeQuorum.
const OBSERVER_FORGOTTEN: Duration = Duration::from_secs(30);

/// The last committed entries (index, records; None for openraft's own entries), in order.
#[derive(Default)]
pub struct Recent {
    entries: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    entries: VecDeque<(u64, Option<RecordBatch>)>,
    records: usize,
}

fn records_in(b: &Option<RecordBatch>) -> usize {
    b.as_ref().map_or(0, |b| b.0.len())
}

impl Recent {
    pub fn push(&self, index: u64, batch: Option<RecordBatch>) {
        let mut w = self.entries.lock().unwrap();
        if w.entries.back().is_some_and(|(last, _)| *last + 1 != index) {
            // Not contiguous (a snapshot was installed): start again from here.
            w.entries.clear();
            w.records = 0;
        }
        w.records += records_in(&batch);
        w.entries.push_back((index, batch));
        while w.entries.len() > RECENT_ENTRIES
            || (w.records > RECENT_RECORDS && w.entries.len() > 1)
        {
            let (_, gone) = w.entries.pop_front().expect("not empty");
            w.records -= records_in(&gone);
        }
    }

    pub fn clear(&self) {
        let mut w = self.entries.lock().unwrap();
        w.entries.clear();
        w.records = 0;
    }

    /// The entries after `after` up to `upto`, if every one of them is still held.
    fn between(&self, after: u64, upto: u64) -> Option<Vec<(u64, Option<RecordBatch>)>> {
        let q = &self.entries.lock().unwrap().entries;
        let first = q.front()?.0;
        let last = q.back()?.0;
        if first > after + 1 || last < upto {
            return None;
        }
        Some(
            q.iter()
                .filter(|(i, _)| *i > after && *i <= upto)
                .cloned()
                .collect(),
        )
    }
}

/// An observer's request: the entries after `after` (the last one it applied).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fetch {
    pub observer: i32,
    pub after: u64,
}

/// What a voter sends an observer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Update {
    /// Nothing newer was committed while the fetch waited.
    Nothing,
    /// The committed entries after the observer's last, in order.
    Entries(Vec<(u64, Option<RecordBatch>)>),
    /// The voter's whole image (the entries are no longer held).
    Image(Box<Image>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchReply {
    /// The leader as the voter knows it: id and quorum address.
    pub leader: Option<(NodeId, String)>,
    pub update: Update,
}

/// What a voter keeps for observers: recent entries, its image, who fetched and how far.
pub struct ForObservers {
    pub recent: Arc<Recent>,
    pub image: watch::Receiver<Arc<Image>>,
    seen: Mutex<HashMap<i32, (u64, Instant)>>,
}

impl ForObservers {
    pub fn new(recent: Arc<Recent>, image: watch::Receiver<Arc<Image>>) -> Self {
        ForObservers {
            recent,
            image,
            seen: Mutex::default(),
        }
    }

    /// The observers heard from lately and the last entry each had applied.
    pub fn observers(&self) -> BTreeMap<i32, u64> {
        let now = Instant::now();
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (_, t))| now.duration_since(*t) < OBSERVER_FORGOTTEN)
            .map(|(id, (offset, _))| (*id, *offset))
            .collect()
    }
}

/// A voter's answer to an observer: waits up to `FETCH_WAIT` for an entry after `after`.
pub(super) async fn answer_fetch(raft: &Raft, served: &ForObservers, fetch: Fetch) -> FetchReply {
    served
        .seen
        .lock()
        .unwrap()
        .insert(fetch.observer, (fetch.after, Instant::now()));
    let mut rx = served.image.clone();
    let _ = tokio::time::timeout(FETCH_WAIT, rx.wait_for(|i| i.offset > fetch.after)).await;
    let image = rx.borrow().clone();
    let update = if image.offset <= fetch.after {
        Update::Nothing
    } else {
        match served.recent.between(fetch.after, image.offset) {
            Some(entries) => Update::Entries(entries),
            None => Update::Image(Box::new((*image).clone())),
        }
    };
    FetchReply {
        leader: leader_of(raft),
        update,
    }
}

/// Applies a voter's update to an observer's image; the new image, or None if unchanged.
pub fn apply_update(current: &Image, update: Update) -> Option<Image> {
    match update {
        Update::Nothing => None,
        Update::Image(img) if img.offset > current.offset || current.cluster_id.is_none() => {
            Some(*img)
        }
        Update::Image(_) => None,
        Update::Entries(entries) => {
            let mut img = current.clone();
            for (index, batch) in entries {
                if index <= img.offset && img.cluster_id.is_some() {
                    continue;
                }
                img.offset = index;
                if let Some(batch) = batch {
                    // A batch the state machine refused is refused here alike; the image
                    // stays as it was, as on every voter.
                    let _ = apply_batch(&mut img, &batch.0);
                }
            }
            (img.offset != current.offset).then_some(img)
        }
    }
}

/// A broker's view of the metadata quorum it is not a member of.
pub struct MetadataObserver {
    node_id: i32,
    image: watch::Receiver<Arc<Image>>,
    leader: Arc<Mutex<Option<(NodeId, String)>>>,
    heartbeat_conn: tokio::sync::Mutex<Option<(NodeId, Connection)>>,
    task: tokio::task::JoinHandle<()>,
    propose_timeout: Duration,
    transport: Arc<super::Transport>,
}

impl MetadataObserver {
    /// Starts following the quorum whose voters listen on some of `servers` (the voters'
    /// addresses, or `controller.quorum.bootstrap.servers`).
    pub fn start(
        node_id: i32,
        servers: Vec<String>,
        propose_timeout: Duration,
        transport: Arc<super::Transport>,
    ) -> MetadataObserver {
        assert!(!servers.is_empty(), "an observer needs a quorum address");
        let (publish, image) = watch::channel(Arc::new(Image::default()));
        let leader = Arc::new(Mutex::new(None));
        let task = tokio::spawn(follow(
            node_id,
            servers,
            publish,
            leader.clone(),
            transport.clone(),
        ));
        MetadataObserver {
            node_id,
            image,
            leader,
            heartbeat_conn: tokio::sync::Mutex::new(None),
            task,
            propose_timeout,
            transport,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Image>> {
        self.image.clone()
    }

    pub fn image(&self) -> Arc<Image> {
        self.image.borrow().clone()
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader.lock().unwrap().as_ref().map(|(id, _)| *id)
    }

    fn leader_addr(&self) -> Option<(NodeId, String)> {
        self.leader.lock().unwrap().clone()
    }

    /// This observer's own state (it has no log of its own: what it applied).
    pub fn status(&self) -> QuorumStatus {
        let applied = self.image.borrow().offset;
        QuorumStatus {
            node_id: self.node_id as NodeId,
            leader: self.leader(),
            term: 0,
            last_log_index: Some(applied),
            last_applied: Some(applied),
            voters: Default::default(),
            replication: None,
            observers: BTreeMap::new(),
            addresses: BTreeMap::new(),
        }
    }

    /// Forwards a batch to the leader and waits until it is committed there.
    pub async fn propose(&self, batch: RecordBatch) -> Result<u64, ProposeError> {
        let deadline = Instant::now() + self.propose_timeout;
        let mut hint = None;
        while Instant::now() < deadline {
            if let Some((id, addr)) = self.leader_addr() {
                hint = Some(id);
                let left = deadline.saturating_duration_since(Instant::now());
                match forward(&addr, &batch, left, &self.transport).await {
                    Forwarded::Done(index, applied) => return finish(index, applied),
                    Forwarded::Unknown(why) => return Err(ProposeError::Unknown(why)),
                    Forwarded::Retry => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(ProposeError::NoLeader { leader_hint: hint })
    }

    /// Sends a heartbeat to the active controller; true when it took it.
    pub async fn heartbeat(&self, hb: Heartbeat, timeout: Duration) -> bool {
        let Some((leader, addr)) = self.leader_addr() else {
            return false;
        };
        let taken = super::network::heartbeat_to(
            &self.heartbeat_conn,
            leader,
            addr,
            hb,
            timeout,
            &self.transport,
        )
        .await;
        if !taken {
            // Ask anew who leads rather than heartbeating a former leader.
            let mut l = self.leader.lock().unwrap();
            if l.as_ref().is_some_and(|(id, _)| *id == leader) {
                *l = None;
            }
        }
        taken
    }

    /// The quorum's state as its leader reports it.
    pub async fn leader_status(&self, timeout: Duration) -> Option<QuorumStatus> {
        let (_, addr) = self.leader_addr()?;
        super::network::status_from(addr, timeout, self.transport.clone()).await
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for MetadataObserver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The observer's fetch loop: from the leader when known, otherwise from each voter in turn.
async fn follow(
    node_id: i32,
    addrs: Vec<String>,
    publish: watch::Sender<Arc<Image>>,
    leader: Arc<Mutex<Option<(NodeId, String)>>>,
    transport: Arc<super::Transport>,
) {
    let mut next = node_id.unsigned_abs() as usize;
    let mut conn: Option<Connection> = None;
    let mut conn_addr = String::new();
    let mut failures = 0u32;
    loop {
        let target = match leader.lock().unwrap().clone() {
            Some((_, addr)) => addr,
            None => addrs[next % addrs.len()].clone(),
        };
        if conn.is_none() || conn_addr != target {
            conn = Some(Connection::new(target.clone(), transport.clone()));
            conn_addr = target.clone();
        }
        let after = publish.borrow().offset;
        let req = Request::FetchMetadata(Fetch {
            observer: node_id,
            after,
        });
        let call = conn
            .as_mut()
            .expect("set above")
            .call(&req, FETCH_WAIT + Duration::from_secs(2));
        match call.await {
            Ok(Reply::Metadata(reply)) => {
                failures = 0;
                *leader.lock().unwrap() = reply.leader;
                let current = publish.borrow().clone();
                if let Some(img) = apply_update(&current, reply.update) {
                    publish.send_replace(Arc::new(img));
                }
            }
            other => {
                if failures.is_multiple_of(50) {
                    let why = match other {
                        Err(super::network::CallError::Connect(e))
                        | Err(super::network::CallError::Io(e)) => e.to_string(),
                        Ok(_) => "unexpected reply".into(),
                    };
                    tracing::info!(voter = %target, error = %why, "metadata fetch failed; trying another voter");
                }
                failures += 1;
                *leader.lock().unwrap() = None;
                conn = None;
                next += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::records::{ClusterId, MetadataRecord, TopicRecord};
    use uuid::Uuid;

    fn batch(r: MetadataRecord) -> Option<RecordBatch> {
        Some(RecordBatch(vec![r]))
    }

    #[test]
    fn recent_entries_cover_or_say_they_do_not() {
        let r = Recent::default();
        for i in 5..10 {
            r.push(i, None);
        }
        assert_eq!(r.between(4, 9).unwrap().len(), 5);
        assert_eq!(r.between(7, 9).unwrap().len(), 2);
        assert!(r.between(3, 9).is_none(), "entry 4 is not held");
        assert!(r.between(7, 10).is_none(), "entry 10 is not there yet");
        // A gap (snapshot installed) starts the window again.
        r.push(20, None);
        assert!(r.between(8, 20).is_none());
        assert_eq!(r.between(19, 20).unwrap().len(), 1);
        // Large batches push old ones out by their records.
        let big = Some(RecordBatch(vec![
            MetadataRecord::ClusterId(ClusterId {
                cluster_id: "c".into()
            });
            RECENT_RECORDS / 2 + 1
        ]));
        r.push(21, big.clone());
        r.push(22, big);
        assert!(r.between(20, 22).is_none());
        assert_eq!(r.between(21, 22).unwrap().len(), 1);
    }

    #[test]
    fn updates_apply_as_the_state_machine_does() {
        let id = MetadataRecord::ClusterId(ClusterId {
            cluster_id: "c".into(),
        });
        let topic = MetadataRecord::Topic(TopicRecord {
            name: "t".into(),
            topic_id: Uuid::from_u128(1),
        });
        let entries = vec![(0, None), (1, batch(id)), (2, batch(topic.clone()))];
        let mut voter = Image::default();
        for (i, b) in &entries {
            voter.offset = *i;
            if let Some(b) = b {
                apply_batch(&mut voter, &b.0).unwrap();
            }
        }
        let observer = apply_update(&Image::default(), Update::Entries(entries.clone())).unwrap();
        assert_eq!(observer, voter);
        // The same entries again change nothing; a refused batch moves only the offset.
        assert!(apply_update(&observer, Update::Entries(entries)).is_none());
        let again = apply_update(&observer, Update::Entries(vec![(3, batch(topic))])).unwrap();
        assert_eq!(again.offset, 3);
        assert_eq!(again.topics, observer.topics);
        // A whole image replaces an older one, never a newer one.
        assert!(apply_update(&again, Update::Image(Box::new(voter.clone()))).is_none());
        let fresh = apply_update(&Image::default(), Update::Image(Box::new(voter.clone())));
        assert_eq!(fresh.unwrap(), voter);
    }
}
