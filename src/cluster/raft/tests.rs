//! In-process quorums of three on 127.0.0.1 ephemeral ports.

use std::time::{Duration, Instant};

use tempfile::TempDir;
use uuid::Uuid;

use super::*;
use crate::cluster::controller;
use crate::cluster::records::*;

const WAIT: Duration = Duration::from_secs(10);

struct Cluster {
    dirs: Vec<TempDir>,
    voters: BTreeMap<NodeId, String>,
    nodes: BTreeMap<NodeId, MetadataQuorum>,
    tune: fn(&mut QuorumConfig),
}

impl Cluster {
    async fn start(tune: fn(&mut QuorumConfig)) -> Cluster {
        let mut listeners = Vec::new();
        let mut voters = BTreeMap::new();
        for id in 1..=3u64 {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            voters.insert(id, l.local_addr().unwrap().to_string());
            listeners.push((id, l));
        }
        let mut c = Cluster {
            dirs: (0..3).map(|_| TempDir::new().unwrap()).collect(),
            voters,
            nodes: BTreeMap::new(),
            tune,
        };
        for (id, l) in listeners {
            let node = MetadataQuorum::start_with_listener(c.config(id), l)
                .await
                .unwrap();
            c.nodes.insert(id, node);
        }
        c
    }

    fn config(&self, id: NodeId) -> QuorumConfig {
        let dir = self.dirs[id as usize - 1].path().join("metadata");
        let mut config = QuorumConfig::new(id, dir, self.voters.clone());
        (self.tune)(&mut config);
        config
    }

    async fn stop(&mut self, id: NodeId) {
        self.nodes.remove(&id).unwrap().shutdown().await;
    }

    /// Starts a stopped node again from its directory, on its old address.
    async fn restart(&mut self, id: NodeId) {
        let node = MetadataQuorum::start(self.config(id)).await.unwrap();
        self.nodes.insert(id, node);
    }

    /// The leader every running node agrees on.
    async fn agreed_leader(&self, not: Option<NodeId>) -> NodeId {
        let deadline = Instant::now() + WAIT;
        loop {
            let leaders: BTreeSet<Option<NodeId>> =
                self.nodes.values().map(|n| n.leader()).collect();
            if let [Some(l)] = leaders.iter().copied().collect::<Vec<_>>()[..]
                && Some(l) != not
                && self.nodes.contains_key(&l)
            {
                return l;
            }
            assert!(Instant::now() < deadline, "no agreed leader: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every running node has applied `index`; their images, which must agree.
    async fn converged(&self, index: u64) -> Arc<Image> {
        let mut images = Vec::new();
        for (id, n) in &self.nodes {
            let img = n.wait_applied(index, WAIT).await;
            images.push(img.unwrap_or_else(|| panic!("node {id} did not apply {index}")));
        }
        // Blank entries of new leaders may follow; compare what the records built.
        let strip = |img: &Image| Image {
            offset: 0,
            ..img.clone()
        };
        for img in &images[1..] {
            assert_eq!(strip(img), strip(&images[0]));
        }
        images[0].clone()
    }
}

fn endpoint(id: i32) -> Vec<Endpoint> {
    vec![Endpoint {
        name: "PLAINTEXT".into(),
        host: "127.0.0.1".into(),
        port: 9000 + id as u16,
        security_protocol: 0,
    }]
}

/// Registers and unfences broker `id` through `node`; the last index.
async fn join_broker(node: &MetadataQuorum, id: i32) -> u64 {
    let reg = controller::register_broker(
        &node.image(),
        id,
        Uuid::from_u128(id as u128),
        endpoint(id),
        None,
    );
    node.propose(reg.records).await.unwrap();
    // The image on a follower may lag the commit: wait for the registration first.
    let mut rx = node.subscribe();
    let _ = tokio::time::timeout(WAIT, rx.wait_for(|i| i.brokers.contains_key(&id))).await;
    let unfence = controller::unfence_broker(&node.image(), id).unwrap();
    node.propose(unfence).await.unwrap()
}

fn fast(c: &mut QuorumConfig) {
    c.propose_timeout = Duration::from_secs(8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_commit_fail_over_and_catch_up() {
    tokio::time::timeout(Duration::from_secs(50), async {
        let mut c = Cluster::start(fast).await;
        let leader = c.agreed_leader(None).await;
        println!("initial leader: node {leader}");

        // Proposals at every node, leader or not, commit (followers forward).
        let mut last = 0;
        for (broker, node) in (1..=3).zip(c.nodes.values()) {
            last = join_broker(node, broker).await;
        }
        let img = c.converged(last).await;
        assert_eq!(img.live_brokers(), vec![1, 2, 3]);

        let follower = *c.nodes.keys().find(|id| **id != leader).unwrap();
        let fnode = &c.nodes[&follower];
        let records =
            controller::create_topic(&fnode.image(), "orders", Uuid::new_v4(), 6, 3, None, &[])
                .unwrap();
        last = fnode.propose(records.clone()).await.unwrap();
        let img = c.converged(last).await;
        assert_eq!(img.topic_by_name("orders").unwrap().partitions.len(), 6);

        // A batch that apply refuses commits as a no-op and says why, on every node.
        let err = fnode.propose(records).await.unwrap_err();
        assert!(
            matches!(
                err,
                ProposeError::Rejected {
                    error: ApplyError::TopicExists(_),
                    ..
                }
            ),
            "{err}"
        );

        // The leader stops: another is elected and nothing committed is lost.
        let before = c.converged(last).await;
        let stopped_at = Instant::now();
        c.stop(leader).await;
        let new_leader = c.agreed_leader(Some(leader)).await;
        let took = stopped_at.elapsed();
        println!(
            "re-election after the leader stopped: {took:?} (node {leader} -> node {new_leader})"
        );
        assert!(took < Duration::from_secs(10));
        let survivor = c.nodes.values().next().unwrap();
        last = survivor
            .propose(MetadataRecord::Config(ConfigRecord {
                resource_type: ConfigResource::Topic,
                resource_name: "orders".into(),
                name: "retention.ms".into(),
                value: Some("60000".into()),
            }))
            .await
            .unwrap();
        let after = c.converged(last).await;
        assert_eq!(after.brokers, before.brokers);
        assert_eq!(
            after.topic_by_name("orders").unwrap().partitions,
            before.topic_by_name("orders").unwrap().partitions
        );
        assert_eq!(
            after.topic_by_name("orders").unwrap().configs["retention.ms"],
            "60000"
        );

        // The old leader restarts from its directory and catches up to the same image.
        c.restart(leader).await;
        let img = c.converged(last).await;
        assert_eq!(
            img.topic_by_name("orders").unwrap().configs["retention.ms"],
            "60000"
        );
        assert_eq!(c.nodes[&leader].image().brokers, after.brokers);

        for id in [1, 2, 3] {
            c.stop(id).await;
        }
    })
    .await
    .expect("test over its time bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_election_times() {
    tokio::time::timeout(Duration::from_secs(55), async {
        let mut c = Cluster::start(fast).await;
        let mut times = Vec::new();
        for round in 0..4 {
            let leader = c.agreed_leader(None).await;
            // Something committed under this leader, so the election has to carry it.
            let node = &c.nodes[&leader];
            let index = node
                .propose(MetadataRecord::Config(ConfigRecord {
                    resource_type: ConfigResource::Broker,
                    resource_name: String::new(),
                    name: "round".into(),
                    value: Some(round.to_string()),
                }))
                .await
                .unwrap();
            c.converged(index).await;
            let t = Instant::now();
            c.stop(leader).await;
            let stop = t.elapsed();
            let new_leader = c.agreed_leader(Some(leader)).await;
            let took = t.elapsed();
            times.push(took);
            assert!(took < Duration::from_secs(10));
            let img = c.converged(index).await;
            assert_eq!(img.broker_configs[""]["round"], round.to_string());
            println!(
                "round {round}: node {leader} stopped (in {stop:?}), node {new_leader} leads after {took:?}"
            );
            c.restart(leader).await;
        }
        times.sort();
        println!(
            "re-election over {} leader stops: median {:?}, max {:?}",
            times.len(),
            times[times.len() / 2],
            times[times.len() - 1]
        );
        for id in [1, 2, 3] {
            c.stop(id).await;
        }
    })
    .await
    .expect("test over its time bound");
}

fn small_snapshots(c: &mut QuorumConfig) {
    fast(c);
    c.snapshot_every = 5;
    c.keep_behind_snapshot = 0;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_snapshot_catches_up_from_it() {
    tokio::time::timeout(Duration::from_secs(50), async {
        let mut c = Cluster::start(small_snapshots).await;
        let leader = c.agreed_leader(None).await;
        let lagging = *c.nodes.keys().find(|id| **id != leader).unwrap();
        c.stop(lagging).await;
        let node = &c.nodes[&leader];
        let mut last = join_broker(node, 1).await;
        for i in 0..30 {
            let records = controller::create_topic(
                &node.image(),
                &format!("t{i}"),
                Uuid::new_v4(),
                2,
                1,
                None,
                &[],
            )
            .unwrap();
            last = node.propose(records).await.unwrap();
        }
        // The leader's log before its snapshot is purged, so the restarted node must take
        // the snapshot.
        let deadline = Instant::now() + WAIT;
        while c.nodes[&leader].raft.metrics().borrow().purged.is_none() {
            assert!(Instant::now() < deadline, "the leader never purged its log");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.restart(lagging).await;
        let img = c.converged(last).await;
        assert_eq!(img.topics.len(), 30);
        let purged = c.nodes[&leader].raft.metrics().borrow().purged;
        println!("leader purged its log up to {purged:?}; snapshot sent to node {lagging}");
        let mut metrics = c.nodes[&lagging].raft.metrics();
        tokio::time::timeout(WAIT, metrics.wait_for(|m| m.snapshot.is_some()))
            .await
            .expect("the lagging node installed no snapshot")
            .unwrap();

        // And every node restarts from its own snapshot and log to the same image.
        for id in [1, 2, 3] {
            c.stop(id).await;
        }
        for id in [1, 2, 3] {
            c.restart(id).await;
        }
        c.agreed_leader(None).await;
        let again = c.converged(last).await;
        assert_eq!(again.topics, img.topics);
        for id in [1, 2, 3] {
            c.stop(id).await;
        }
    })
    .await
    .expect("test over its time bound");
}

/// Waits until `observer` has applied `index`; its image.
async fn observed(observer: &MetadataObserver, index: u64) -> Arc<Image> {
    let mut rx = observer.subscribe();
    let ready = tokio::time::timeout(WAIT, rx.wait_for(|i| i.offset >= index)).await;
    ready
        .unwrap_or_else(|_| panic!("the observer did not apply {index}"))
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_follows_proposes_and_survives_the_leader() {
    tokio::time::timeout(Duration::from_secs(50), async {
        let mut c = Cluster::start(small_snapshots).await;
        let leader = c.agreed_leader(None).await;
        // An observer from the start follows entry by entry; it proposes through the leader.
        let early = MetadataObserver::start(
            7,
            c.voters.values().cloned().collect(),
            Duration::from_secs(8),
            Default::default(),
        );
        let mut last = join_broker(&c.nodes[&leader], 1).await;
        observed(&early, last).await;
        for i in 0..12 {
            let records = controller::create_topic(
                &early.image(),
                &format!("t{i}"),
                Uuid::new_v4(),
                1,
                1,
                None,
                &[],
            )
            .unwrap_or_else(|e| panic!("t{i}: {e:?}"));
            last = early.propose(RecordBatch(records)).await.unwrap();
            observed(&early, last).await;
        }
        let img = c.converged(last).await;
        assert_eq!(*observed(&early, last).await, *img);
        assert_eq!(early.leader(), Some(leader));

        // Every voter restarts: their logs now begin at a snapshot, so a new observer gets a
        // whole image, then entries.
        for id in [1, 2, 3] {
            c.stop(id).await;
        }
        for id in [1, 2, 3] {
            c.restart(id).await;
        }
        let leader = c.agreed_leader(None).await;
        let late = MetadataObserver::start(
            8,
            c.voters.values().cloned().collect(),
            Duration::from_secs(8),
            Default::default(),
        );
        let seen = observed(&late, last).await;
        assert_eq!(seen.topics, img.topics);

        // The leader stops: both observers find the new one, propose and follow.
        c.stop(leader).await;
        c.agreed_leader(Some(leader)).await;
        let records =
            controller::create_topic(&late.image(), "after", Uuid::new_v4(), 1, 1, None, &[])
                .unwrap();
        last = late.propose(RecordBatch(records)).await.unwrap();
        let img = c.converged(last).await;
        assert_eq!(observed(&late, last).await.topics, img.topics);
        assert_eq!(observed(&early, last).await.topics, img.topics);
        // The active controller lists both as observers.
        let s = c.nodes.values().find(|n| n.is_leader()).unwrap().status();
        assert_eq!(s.observers.keys().copied().collect::<Vec<_>>(), vec![7, 8]);
        for id in c.nodes.keys().copied().collect::<Vec<_>>() {
            c.stop(id).await;
        }
    })
    .await
    .expect("test over its time bound");
}
