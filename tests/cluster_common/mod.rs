//! A cluster of `fjord` processes on loopback for the cluster tests: each node a child
//! process with its own ports and data dir, its stderr collected; and what the tests ask of
//! it (every node's view, agreement, configs).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use kafka_protocol::messages::*;

/// Free loopback ports, held until the nodes bind them (a small race, as in any such test).
pub fn free_ports(n: usize) -> Vec<u16> {
    let socks: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    socks
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

pub struct Node {
    pub id: i32,
    /// `process.roles`: `broker,controller`, `broker` or `controller`.
    pub roles: &'static str,
    pub port: u16,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub log: Arc<Mutex<String>>,
}

impl Node {
    /// Whether clients can talk to this node (it has the broker role).
    pub fn is_broker(&self) -> bool {
        self.roles.contains("broker")
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// `-o key=value` settings every node gets.
    pub extra: Vec<String>,
    pub voters: String,
    pub quorum_ports: Vec<u16>,
    pub _tmp: tempfile::TempDir,
}

pub fn fjord() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fjord"));
    c.env("RUST_LOG", "info,openraft=off");
    for (k, _) in std::env::vars() {
        if k.starts_with("FJORD_") {
            c.env_remove(k);
        }
    }
    c
}

/// Runs a node; its stderr is collected in `log`.
pub fn spawn_node(
    id: i32,
    roles: &str,
    port: u16,
    quorum_port: u16,
    voters: &str,
    dir: &Path,
) -> (Child, Arc<Mutex<String>>) {
    spawn_node_with(id, roles, port, quorum_port, voters, dir, &[])
}

/// [`spawn_node`] with more `-o key=value` settings.
pub fn spawn_node_with(
    id: i32,
    roles: &str,
    port: u16,
    quorum_port: u16,
    voters: &str,
    dir: &Path,
    extra: &[String],
) -> (Child, Arc<Mutex<String>>) {
    // "broker/bootstrap": a broker that finds the controllers through
    // `controller.quorum.bootstrap.servers` (their addresses) instead of the voters.
    let (roles, by_bootstrap) = match roles.split_once('/') {
        Some((r, _)) => (r, true),
        None => (roles, false),
    };
    let listeners = match roles {
        "controller" => format!("CONTROLLER://127.0.0.1:{quorum_port}"),
        "broker" => format!("PLAINTEXT://127.0.0.1:{port}"),
        _ => format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{quorum_port}"),
    };
    let quorum = if by_bootstrap {
        let addrs: Vec<&str> = voters
            .split(',')
            .map(|v| v.split_once('@').unwrap().1)
            .collect();
        format!("controller.quorum.bootstrap.servers={}", addrs.join(","))
    } else {
        format!("controller.quorum.voters={voters}")
    };
    let mut cmd = fjord();
    for o in extra {
        cmd.args(["-o", o]);
    }
    let mut child = cmd
        .args(["--log-dirs", dir.to_str().unwrap()])
        .args(["-o", &format!("node.id={id}")])
        .args(["-o", &format!("process.roles={roles}")])
        .args(["-o", &quorum])
        .args(["-o", "controller.listener.names=CONTROLLER"])
        .args(["-o", &format!("listeners={listeners}")])
        .args(["-o", "broker.session.timeout.ms=2000"])
        .args(["-o", "broker.heartbeat.interval.ms=250"])
        .args(["-o", "num.partitions=3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, log)
}

impl Cluster {
    /// `n` combined nodes, ids 1..=n.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_roles(&vec!["broker,controller"; n])
    }

    /// Node i+1 with `roles[i]`; the nodes with the controller role are the voters.
    pub fn start_roles(roles: &[&'static str]) -> Cluster {
        Cluster::start_roles_with(roles, &[])
    }

    /// `n` combined nodes with more settings.
    pub fn start_with(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_roles_with(&vec!["broker,controller"; n], extra)
    }

    pub fn start_roles_with(roles: &[&'static str], extra: &[&str]) -> Cluster {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let n = roles.len();
        let tmp = tempfile::tempdir().unwrap();
        let ports = free_ports(2 * n);
        let (client_ports, quorum_ports) = ports.split_at(n);
        let voters = (0..n)
            .filter(|i| roles[*i].contains("controller"))
            .map(|i| format!("{}@127.0.0.1:{}", i + 1, quorum_ports[i]))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (0..n)
            .map(|i| {
                let dir = tmp.path().join(format!("node-{}", i + 1));
                let (child, log) = spawn_node_with(
                    i as i32 + 1,
                    roles[i],
                    client_ports[i],
                    quorum_ports[i],
                    &voters,
                    &dir,
                    &extra,
                );
                Node {
                    id: i as i32 + 1,
                    roles: roles[i],
                    port: client_ports[i],
                    dir,
                    child: Some(child),
                    log,
                }
            })
            .collect();
        let c = Cluster {
            nodes,
            extra,
            voters,
            quorum_ports: quorum_ports.to_vec(),
            _tmp: tmp,
        };
        for i in 0..n {
            c.wait_started(i);
        }
        c
    }

    pub fn wait_started(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = self.nodes[i].log.lock().unwrap().clone();
            if log.contains("fjord started") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not start:\n{log}",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[i].port))
    }

    pub async fn client(&self, i: usize) -> Client {
        Client::connect(self.addr(i)).await
    }

    pub fn kill(&mut self, i: usize) {
        let mut child = self.nodes[i].child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn terminate(&mut self, i: usize) -> std::process::ExitStatus {
        let mut child = self.nodes[i].child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        wait_exit(&mut child, &self.nodes[i].log, Duration::from_secs(30))
    }

    pub fn restart(&mut self, i: usize) {
        let n = &self.nodes[i];
        let (child, log) = spawn_node_with(
            n.id,
            n.roles,
            n.port,
            self.quorum_ports[i],
            &self.voters,
            &n.dir.clone(),
            &self.extra,
        );
        self.nodes[i].child = Some(child);
        self.nodes[i].log = log;
        self.wait_started(i);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// What a node says of the cluster: brokers, controller, and each partition's leader and
/// epoch, by topic.
pub type View = (Vec<i32>, i32, Vec<(String, Vec<(i32, i32, i32)>)>);

pub async fn view(c: &mut Client) -> View {
    let r = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    let mut brokers: Vec<i32> = r.brokers.iter().map(|b| b.node_id.0).collect();
    brokers.sort();
    let mut topics: Vec<_> = r
        .topics
        .iter()
        .map(|t| {
            let mut parts: Vec<_> = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0, p.leader_epoch))
                .collect();
            parts.sort();
            (t.name.as_ref().unwrap().to_string(), parts)
        })
        .collect();
    topics.sort();
    // Metadata names the node asked as controller (it forwards admin requests, as Kafka's
    // KRaft brokers do); DescribeCluster names the active controller.
    let dc = c.call(0, &DescribeClusterRequest::default()).await;
    (brokers, dc.controller_id.0, topics)
}

/// Waits until every running node gives the same view, satisfying `ok`; that view.
pub async fn agreed(c: &Cluster, ok: impl Fn(&View) -> bool, within: Duration) -> View {
    let deadline = Instant::now() + within;
    loop {
        let mut views = Vec::new();
        for (i, n) in c.nodes.iter().enumerate() {
            if n.child.is_some() && n.is_broker() {
                views.push(view(&mut c.client(i).await).await);
            }
        }
        if views.windows(2).all(|w| w[0] == w[1]) && ok(&views[0]) {
            return views.remove(0);
        }
        assert!(Instant::now() < deadline, "nodes do not agree: {views:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// IncrementalAlterConfigs SET of one config, which must succeed.
pub async fn alter_ok(c: &mut Client, resource_type: i8, name: &str, key: &str, value: &str) {
    let r = c
        .call(
            1,
            &incremental_alter(resource_type, name, &[(key, 0, Some(value))], false),
        )
        .await;
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
}

/// Waits for a child to exit; kills it and fails if it does not within `within`.
pub fn wait_exit(
    child: &mut Child,
    log: &Mutex<String>,
    within: Duration,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit within {within:?}:\n{}", log.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn create_req(name: &str, partitions: i32, rf: i16) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(tn(name))
                .with_num_partitions(partitions)
                .with_replication_factor(rf),
        ])
        .with_timeout_ms(10000)
}

pub fn leaders_of(v: &View, topic: &str) -> Vec<i32> {
    v.2.iter()
        .find(|(t, _)| t == topic)
        .map(|(_, p)| p.iter().map(|x| x.1).collect())
        .unwrap_or_default()
}
