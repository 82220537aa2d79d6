//! `fjord dev-cluster`: a local cluster of combined broker+controller nodes (or, with
//! `--controllers K`, K dedicated controllers and the rest brokers), each a child process of
//! this executable, for development and for trying out broker failures by hand.
//!
//! Node `i` (1..=N) is `node.id=i` with its client listener on `base-port+i-1`, its controller
//! quorum listener on `base-port+100+i-1`, both on 127.0.0.1, and its data in
//! `<data-dir>/node-i`. Each child's output is copied to this process's stderr with a
//! `[node-i] ` prefix. Once every node has logged "fjord started", one line
//! `bootstrap: host:port,...` goes to stdout. SIGINT/SIGTERM stops the nodes with SIGTERM,
//! and SIGKILL for those still running after 15 s.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Ports are base+0..8 for clients and base+100..108 for the quorum: up to 9 nodes cannot
/// collide.
pub const MAX_NODES: u32 = 9;
/// The quorum port of a node is its client port plus this.
pub const QUORUM_PORT_OFFSET: u16 = 100;
/// What a node logs once clients can connect.
pub const READY_MARKER: &str = "fjord started";
const HOST: &str = "127.0.0.1";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// After SIGKILL, how long to wait for the kernel to report the exits before giving up.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the children are checked for an exit.
const POLL: Duration = Duration::from_millis(100);

/// Arguments of `fjord dev-cluster`.
#[derive(clap::Args, Debug, Clone)]
pub struct DevClusterArgs {
    /// Number of nodes, 1 to 9; node i gets node.id=i.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// 0: every node is a combined broker and controller. K > 0: nodes 1..=K are dedicated
    /// controllers (process.roles=controller, no client port) and the others brokers only.
    #[arg(long, default_value_t = 0)]
    pub controllers: u32,
    /// Client port of node 1. Node i listens for clients on base-port+i-1 and for the
    /// controller quorum on base-port+100+i-1, on 127.0.0.1.
    #[arg(long, default_value_t = 9092)]
    pub base_port: u16,
    /// Parent of the nodes' data directories: node i keeps its data in DIR/node-i.
    #[arg(long, value_name = "DIR", default_value = "./fjord-data/dev-cluster")]
    pub data_dir: PathBuf,
    /// A setting for every node as key=value (repeatable). Applied after the cluster's own
    /// settings, so it wins over them.
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub id: u32,
    /// `process.roles`.
    pub roles: &'static str,
    pub client_port: u16,
    pub quorum_port: u16,
    pub data_dir: PathBuf,
}

/// The validated layout of a cluster: nodes, ports, data dirs and the extra settings.
#[derive(Debug, Clone)]
pub struct Plan {
    pub nodes: Vec<NodePlan>,
    pub overrides: Vec<String>,
}

impl DevClusterArgs {
    /// Checks the arguments and lays out the nodes. Touches nothing on disk.
    pub fn plan(&self) -> Result<Plan, String> {
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return Err(format!(
                "--nodes must be between 1 and {MAX_NODES}, got {}",
                self.nodes
            ));
        }
        let last_quorum =
            u32::from(self.base_port) + u32::from(QUORUM_PORT_OFFSET) + self.nodes - 1;
        if self.base_port == 0 || last_quorum > u32::from(u16::MAX) {
            return Err(format!(
                "--base-port {} leaves no room for {} nodes: the ports used are base-port..base-port+{} \
                 and base-port+{}..{last_quorum}, which must lie in 1..=65535",
                self.base_port,
                self.nodes,
                self.nodes - 1,
                QUORUM_PORT_OFFSET,
            ));
        }
        if self.controllers >= self.nodes {
            return Err(format!(
                "--controllers {} leaves no broker among {} nodes",
                self.controllers, self.nodes
            ));
        }
        // A bad setting fails here once, not in every node.
        for o in &self.overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| format!("--override {o:?}: expected key=value"))?;
            crate::config::ConfigBuilder::new()
                .set(k, v, crate::config::Source::Flag)
                .map_err(|e| format!("--override: {e}"))?;
        }
        let nodes = (1..=self.nodes)
            .map(|id| {
                let client_port = self.base_port + (id - 1) as u16;
                let roles = match self.controllers {
                    0 => "broker,controller",
                    k if id <= k => "controller",
                    _ => "broker",
                };
                NodePlan {
                    id,
                    roles,
                    client_port,
                    quorum_port: client_port + QUORUM_PORT_OFFSET,
                    data_dir: self.data_dir.join(format!("node-{id}")),
                }
            })
            .collect();
        Ok(Plan {
            nodes,
            overrides: self.overrides.clone(),
        })
    }
}

impl Plan {
    /// `controller.quorum.voters`: `id@host:quorum-port` of every node.
    pub fn voters(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.roles.contains("controller"))
            .map(|n| format!("{}@{HOST}:{}", n.id, n.quorum_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client addresses of every node, comma-separated, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.roles.contains("broker"))
            .map(|n| format!("{HOST}:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The command-line arguments of one node's process.
    pub fn node_args(&self, node: &NodePlan) -> Vec<String> {
        let client = format!("PLAINTEXT://{HOST}:{}", node.client_port);
        let quorum = format!("CONTROLLER://{HOST}:{}", node.quorum_port);
        let listeners = match node.roles {
            "controller" => quorum,
            "broker" => client.clone(),
            _ => format!("{client},{quorum}"),
        };
        let mut settings = vec![
            format!("node.id={}", node.id),
            format!("process.roles={}", node.roles),
            format!("controller.quorum.voters={}", self.voters()),
            "controller.listener.names=CONTROLLER".to_string(),
            format!("listeners={listeners}"),
        ];
        if node.roles.contains("broker") {
            // Explicit, so a FJORD_ADVERTISED_LISTENERS in the environment cannot send
            // clients elsewhere.
            settings.push(format!("advertised.listeners={client}"));
        }
        settings.extend([format!("log.dirs={}", node.data_dir.display())]);
        settings
            .into_iter()
            .chain(self.overrides.iter().cloned())
            .flat_map(|s| ["--override".to_string(), s])
            .collect()
    }
}

/// Runs `fjord dev-cluster` until a signal, a failed start or every node's exit.
/// Exit code 2 for bad arguments, 1 when the cluster could not start or every node died,
/// 0 after a stop on SIGINT/SIGTERM.
pub fn run(args: DevClusterArgs) -> ExitCode {
    let plan = match args.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fjord dev-cluster: {e}");
            return ExitCode::from(2);
        }
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fjord dev-cluster: cannot find the fjord executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One thread: the children are forked from the main thread, which lives as long as the
    // process, so their parent-death signal (see `die_with_parent`) fires only when this
    // process goes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(supervise(&exe, &plan))
}

/// A running child.
struct Node {
    id: u32,
    child: Child,
    ready: bool,
    status: Option<ExitStatus>,
    /// The tasks copying the child's stdout and stderr; they end when the child's pipes close.
    copiers: Vec<JoinHandle<()>>,
}

impl Node {
    fn running(&self) -> bool {
        self.status.is_none()
    }

    /// SIGTERM: the node shuts down cleanly. `Child::id` is None once the child is reaped,
    /// so a recycled pid is never signalled.
    fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }

    fn kill(&mut self) {
        let _ = self.child.start_kill();
    }
}

struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

async fn supervise(exe: &Path, plan: &Plan) -> ExitCode {
    // Before the first child: a Ctrl-C during startup must stop the nodes, not orphan them.
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fjord dev-cluster: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<usize>();
    let mut nodes: Vec<Node> = Vec::new();
    for (idx, np) in plan.nodes.iter().enumerate() {
        match spawn_node(exe, plan, np, idx, &ready_tx) {
            Ok(n) => nodes.push(n),
            Err(e) => {
                eprintln!("fjord dev-cluster: cannot start node-{}: {e}", np.id);
                stop(&mut nodes, &mut signals).await;
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!(
        "fjord dev-cluster: {} nodes launched; waiting for each to log {READY_MARKER:?}",
        nodes.len()
    );
    let deadline = Instant::now() + START_TIMEOUT;
    let mut started = false;
    let mut poll = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            Some(idx) = ready_rx.recv() => {
                nodes[idx].ready = true;
                if !started && nodes.iter().all(|n| n.ready) {
                    started = true;
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "bootstrap: {}", plan.bootstrap());
                    let _ = out.flush();
                    eprintln!(
                        "fjord dev-cluster: all {} nodes started; Ctrl-C stops them",
                        nodes.len()
                    );
                }
            }
            _ = poll.tick() => {
                for n in nodes.iter_mut().filter(|n| n.running()) {
                    let Ok(Some(status)) = n.child.try_wait() else { continue };
                    n.status = Some(status);
                    let when = if started { "unexpectedly" } else { "during startup" };
                    eprintln!("fjord dev-cluster: node-{} exited {when} ({status})", n.id);
                }
                if !started && nodes.iter().any(|n| !n.running()) {
                    // It will never log that it started: no cluster to wait for.
                    eprintln!("fjord dev-cluster: stopping the other nodes");
                    stop(&mut nodes, &mut signals).await;
                    return ExitCode::FAILURE;
                }
                if nodes.iter().all(|n| !n.running()) {
                    eprintln!("fjord dev-cluster: every node has exited");
                    drain(&mut nodes).await;
                    return ExitCode::FAILURE;
                }
            }
            _ = tokio::time::sleep_until(deadline), if !started => {
                let waiting: Vec<String> = nodes
                    .iter()
                    .filter(|n| !n.ready)
                    .map(|n| format!("node-{}", n.id))
                    .collect();
                eprintln!(
                    "fjord dev-cluster: {} did not log {READY_MARKER:?} within {} s; stopping the nodes",
                    waiting.join(", "),
                    START_TIMEOUT.as_secs()
                );
                stop(&mut nodes, &mut signals).await;
                return ExitCode::FAILURE;
            }
            name = signals.recv() => {
                eprintln!("fjord dev-cluster: {name} received; stopping the nodes");
                break;
            }
        }
    }
    stop(&mut nodes, &mut signals).await;
    ExitCode::SUCCESS
}

fn spawn_node(
    exe: &Path,
    plan: &Plan,
    np: &NodePlan,
    idx: usize,
    ready_tx: &mpsc::UnboundedSender<usize>,
) -> std::io::Result<Node> {
    std::fs::create_dir_all(&np.data_dir).map_err(|e| {
        std::io::Error::new(e.kind(), format!("create {}: {e}", np.data_dir.display()))
    })?;
    let mut cmd = Command::new(exe);
    cmd.args(plan.node_args(np))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C in the terminal reaches only this supervisor,
        // which stops the nodes itself (and can wait for them).
        .process_group(0);
    let supervisor = std::process::id() as libc::pid_t;
    // SAFETY: the hook runs between fork and exec and calls only prctl and getppid, which
    // are async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || die_with_parent(supervisor));
    }
    let mut child = cmd.spawn()?;
    let prefix = format!("[node-{}] ", np.id);
    let mut copiers = Vec::new();
    if let Some(out) = child.stdout.take() {
        copiers.push(tokio::spawn(copy_lines(
            out,
            prefix.clone(),
            idx,
            ready_tx.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        copiers.push(tokio::spawn(copy_lines(err, prefix, idx, ready_tx.clone())));
    }
    Ok(Node {
        id: np.id,
        child,
        ready: false,
        status: None,
        copiers,
    })
}

/// In the child before exec: on Linux, get SIGTERM when the supervisor dies, so a
/// supervisor killed with SIGKILL leaves no nodes holding the ports.
#[cfg(target_os = "linux")]
fn die_with_parent(supervisor: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid have no memory-safety preconditions.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The supervisor died before prctl: nobody would stop this node.
        if libc::getppid() != supervisor {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_supervisor: libc::pid_t) -> std::io::Result<()> {
    Ok(())
}

/// Copies `out` line by line to stderr behind `prefix`, and reports node `idx` ready the
/// first time a line contains READY_MARKER.
async fn copy_lines(
    out: impl AsyncRead + Unpin,
    prefix: String,
    idx: usize,
    ready_tx: mpsc::UnboundedSender<usize>,
) {
    let mut reader = BufReader::new(out);
    let mut buf = Vec::new();
    let mut reported = false;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim_end_matches(['\n', '\r']);
        // One write per line, so lines of different nodes never interleave.
        let _ = std::io::stderr().write_all(format!("{prefix}{line}\n").as_bytes());
        if !reported && line.contains(READY_MARKER) {
            reported = true;
            let _ = ready_tx.send(idx);
        }
    }
}

/// Stops every running node: SIGTERM, then SIGKILL for those still running after
/// STOP_TIMEOUT or on a second SIGINT/SIGTERM. Returns once all have exited (or did not
/// even after SIGKILL) and their last output has been copied.
async fn stop(nodes: &mut [Node], signals: &mut Signals) {
    for n in nodes.iter().filter(|n| n.running()) {
        n.terminate();
    }
    let mut deadline = Instant::now() + STOP_TIMEOUT;
    let mut killed = false;
    let mut poll = tokio::time::interval(POLL);
    loop {
        for n in nodes.iter_mut().filter(|n| n.running()) {
            if let Ok(Some(status)) = n.child.try_wait() {
                n.status = Some(status);
                if !status.success() {
                    eprintln!("fjord dev-cluster: node-{} stopped ({status})", n.id);
                }
            }
        }
        if nodes.iter().all(|n| !n.running()) {
            break;
        }
        let kill_why = tokio::select! {
            _ = poll.tick() => continue,
            _ = tokio::time::sleep_until(deadline) => {
                if killed {
                    let left: Vec<String> = nodes
                        .iter()
                        .filter(|n| n.running())
                        .map(|n| format!("node-{} (pid {:?})", n.id, n.child.id()))
                        .collect();
                    eprintln!("fjord dev-cluster: still running after SIGKILL: {}", left.join(", "));
                    return;
                }
                format!("still running after {} s", STOP_TIMEOUT.as_secs())
            }
            name = signals.recv(), if !killed => format!("{name} received again"),
        };
        let running: Vec<String> = nodes
            .iter()
            .filter(|n| n.running())
            .map(|n| format!("node-{}", n.id))
            .collect();
        eprintln!(
            "fjord dev-cluster: {kill_why}; sending SIGKILL to {}",
            running.join(", ")
        );
        for n in nodes.iter_mut().filter(|n| n.running()) {
            n.kill();
        }
        killed = true;
        deadline = Instant::now() + KILL_TIMEOUT;
    }
    drain(nodes).await;
}

/// Waits briefly for the copiers to pass on the nodes' last lines.
async fn drain(nodes: &mut [Node]) {
    let copiers: Vec<JoinHandle<()>> = nodes.iter_mut().flat_map(|n| n.copiers.drain(..)).collect();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        for c in copiers {
            let _ = c.await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(nodes: u32, base_port: u16) -> DevClusterArgs {
        DevClusterArgs {
            nodes,
            controllers: 0,
            base_port,
            data_dir: PathBuf::from("/data"),
            overrides: vec![],
        }
    }

    #[test]
    fn default_layout() {
        let plan = args(3, 9092).plan().unwrap();
        assert_eq!(
            plan.bootstrap(),
            "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
        );
        assert_eq!(
            plan.voters(),
            "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194"
        );
        assert_eq!(
            plan.nodes[1],
            NodePlan {
                id: 2,
                roles: "broker,controller",
                client_port: 9093,
                quorum_port: 9193,
                data_dir: PathBuf::from("/data/node-2"),
            }
        );
    }

    #[test]
    fn node_args_are_overrides_with_the_users_last() {
        let mut a = args(2, 9092);
        a.overrides = vec!["log.retention.ms=1000".into()];
        let plan = a.plan().unwrap();
        let argv = plan.node_args(&plan.nodes[1]);
        let settings: Vec<&str> = argv
            .chunks(2)
            .map(|c| {
                assert_eq!(c[0], "--override");
                c[1].as_str()
            })
            .collect();
        assert_eq!(
            settings,
            [
                "node.id=2",
                "process.roles=broker,controller",
                "controller.quorum.voters=1@127.0.0.1:9192,2@127.0.0.1:9193",
                "controller.listener.names=CONTROLLER",
                "listeners=PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:9193",
                "advertised.listeners=PLAINTEXT://127.0.0.1:9093",
                "log.dirs=/data/node-2",
                "log.retention.ms=1000",
            ]
        );
        // Every setting the node is given is one the broker accepts.
        let mut b = crate::config::ConfigBuilder::new();
        for s in &settings {
            let (k, v) = s.split_once('=').unwrap();
            b.set(k, v, crate::config::Source::Flag).unwrap();
        }
        b.build().unwrap();
    }

    #[test]
    fn dedicated_controllers_and_brokers() {
        let mut a = args(5, 9092);
        a.controllers = 3;
        let plan = a.plan().unwrap();
        assert_eq!(plan.bootstrap(), "127.0.0.1:9095,127.0.0.1:9096");
        assert_eq!(
            plan.voters(),
            "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194"
        );
        for (i, want) in [(0, "controller"), (4, "broker")] {
            let argv = plan.node_args(&plan.nodes[i]);
            assert!(argv.contains(&format!("process.roles={want}")), "{argv:?}");
            let mut b = crate::config::ConfigBuilder::new();
            for s in argv.chunks(2).map(|c| c[1].as_str()) {
                let (k, v) = s.split_once('=').unwrap();
                b.set(k, v, crate::config::Source::Flag).unwrap();
            }
            let config = b.build().unwrap();
            let cluster = config.cluster.unwrap();
            assert_eq!(cluster.controller, want == "controller");
            assert_eq!(cluster.broker, want == "broker");
        }
        a.controllers = 5;
        assert!(a.plan().unwrap_err().contains("--controllers"));
    }

    #[test]
    fn nine_nodes_use_eighteen_distinct_ports() {
        let plan = args(9, 9092).plan().unwrap();
        let mut ports: Vec<u16> = plan
            .nodes
            .iter()
            .flat_map(|n| [n.client_port, n.quorum_port])
            .collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 18);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(args(0, 9092).plan().unwrap_err().contains("--nodes"));
        assert!(args(10, 9092).plan().unwrap_err().contains("--nodes"));
        assert!(args(3, 0).plan().unwrap_err().contains("--base-port"));
        // The last quorum port of 3 nodes is base-port+102.
        assert!(args(3, 65433).plan().is_ok());
        assert!(args(3, 65434).plan().unwrap_err().contains("--base-port"));
        let mut a = args(3, 9092);
        a.overrides = vec!["log.retention.ms".into()];
        assert!(a.plan().unwrap_err().contains("key=value"));
        a.overrides = vec!["no.such.setting=1".into()];
        assert!(a.plan().unwrap_err().contains("no.such.setting"));
    }
}
