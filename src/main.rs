//! The `fjord` command: parse settings, start the broker, stop cleanly on SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fjord::config::{ConfigBuilder, Source};

/// A Kafka-compatible broker in one binary. Settings use Kafka's names; each can also be
/// given as a FJORD_* environment variable (FJORD_LOG_RETENTION_MS for log.retention.ms) or
/// in a server.properties file. Flags win over the environment, which wins over the file.
#[derive(Parser, Debug)]
#[command(
    name = "fjord",
    version,
    about,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
struct Cli {
    // Without a subcommand, `fjord` starts one node with the settings below.
    #[command(subcommand)]
    command: Option<Command>,
    /// Kafka-style properties file (key=value lines).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also read settings from KAFKA_* environment variables as the apache/kafka container
    /// image does (KAFKA_NODE_ID is node.id; after FJORD_* variables, before flags).
    #[arg(long)]
    kafka_env: bool,
    /// Any setting as key=value, e.g. --override log.retention.ms=60000 (repeatable).
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// listeners: comma-separated NAME://host:port [default: PLAINTEXT://localhost:9092,
    /// which binds 127.0.0.1 and ::1].
    #[arg(long)]
    listeners: Option<String>,
    /// advertised.listeners: addresses given to clients in Metadata [default: listeners].
    #[arg(long)]
    advertised_listeners: Option<String>,
    /// log.dirs: data directory [default: ./fjord-data].
    #[arg(long)]
    log_dirs: Option<String>,
    /// node.id: this broker's id [default: 1].
    #[arg(long)]
    node_id: Option<String>,
    /// num.partitions: partitions of auto-created topics [default: 1].
    #[arg(long)]
    num_partitions: Option<String>,
    /// default.replication.factor [default: 1].
    #[arg(long)]
    default_replication_factor: Option<String>,
    /// auto.create.topics.enable [default: true].
    #[arg(long)]
    auto_create_topics_enable: Option<String>,
    /// message.max.bytes: largest record batch accepted [default: 1048588].
    #[arg(long)]
    message_max_bytes: Option<String>,
    /// socket.request.max.bytes: largest request frame [default: 104857600].
    #[arg(long)]
    socket_request_max_bytes: Option<String>,
    /// log.retention.ms [default: 604800000, 7 days].
    #[arg(long)]
    log_retention_ms: Option<String>,
    /// log.flush.interval.messages: 1 = acknowledge produce only after a disk flush.
    #[arg(long)]
    log_flush_interval_messages: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Start a local cluster of combined broker+controller nodes on 127.0.0.1.
    ///
    /// Each node is a child process with its output prefixed `[node-i] ` on stderr. Once every
    /// node has started, `bootstrap: host:port,...` goes to stdout; Ctrl-C stops them all.
    DevCluster(fjord::dev_cluster::DevClusterArgs),
}

impl Cli {
    fn flag_settings(&self) -> Vec<(&'static str, &String)> {
        let pairs = [
            ("listeners", &self.listeners),
            ("advertised.listeners", &self.advertised_listeners),
            ("log.dirs", &self.log_dirs),
            ("node.id", &self.node_id),
            ("num.partitions", &self.num_partitions),
            (
                "default.replication.factor",
                &self.default_replication_factor,
            ),
            ("auto.create.topics.enable", &self.auto_create_topics_enable),
            ("message.max.bytes", &self.message_max_bytes),
            ("socket.request.max.bytes", &self.socket_request_max_bytes),
            ("log.retention.ms", &self.log_retention_ms),
            (
                "log.flush.interval.messages",
                &self.log_flush_interval_messages,
            ),
        ];
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect()
    }
}

fn build_config(cli: &Cli) -> Result<fjord::Config, String> {
    let mut b = ConfigBuilder::new();
    if let Some(path) = &cli.config {
        b.load_properties(path).map_err(|e| e.to_string())?;
    }
    b.load_env(std::env::vars()).map_err(|e| e.to_string())?;
    if cli.kafka_env {
        b.load_kafka_env(std::env::vars())
            .map_err(|e| e.to_string())?;
    }
    for (k, v) in cli.flag_settings() {
        b.set(k, v, Source::Flag)
            .map_err(|e| format!("flag --{}: {e}", k.replace('.', "-")))?;
    }
    for o in &cli.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("--override {o:?}: expected key=value"))?;
        b.set(k, v, Source::Flag)
            .map_err(|e| format!("--override: {e}"))?;
    }
    b.build().map_err(|e| e.to_string())
}

/// Installs the SIGINT/SIGTERM handlers. Done before the listeners open: a signal that
/// arrives as soon as the port answers must still mean a clean shutdown, not a kill.
fn install_signal_handlers() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    }
}

/// A dedicated controller (`process.roles=controller`): the metadata quorum and the active
/// controller's duties, no client listener, until SIGTERM or SIGINT.
async fn run_controller(
    config: fjord::Config,
    mut signalled: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> ExitCode {
    let started = tokio::select! {
        r = fjord::cluster::controller_node::start(&config) => r,
        _ = signalled.as_mut() => {
            tracing::info!("stopped before the controller started");
            return ExitCode::SUCCESS;
        }
    };
    let node = match started {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("fjord: cannot start: {e:#}");
            return ExitCode::from(1);
        }
    };
    let voters = &node.settings.voters;
    tracing::info!(
        node_id = config.node_id,
        quorum = %voters[&(config.node_id as u64)],
        data_dir = %config.log_dir.display(),
        cluster_id = %node.image().cluster_id.clone().unwrap_or_default(),
        "fjord started (controller only)"
    );
    signalled.await;
    node.stop().await;
    tracing::info!("fjord stopped");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    fjord::alloc::tune_malloc();
    let cli = Cli::parse();
    if let Some(Command::DevCluster(args)) = cli.command {
        return fjord::dev_cluster::run(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=off")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match build_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fjord: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    for (name, why) in config.ignored_settings() {
        match why {
            fjord::config::Ignored::NoMeaning => {
                tracing::info!("setting `{name}` is accepted and has no effect in Fjord")
            }
            fjord::config::Ignored::NotBuilt(feature) => tracing::warn!(
                "setting `{name}` is accepted but has no effect yet: {feature} is not built"
            ),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let mut signalled = std::pin::pin!(install_signal_handlers());
        if config.cluster.as_ref().is_some_and(|c| !c.broker) {
            return run_controller(config, signalled).await;
        }
        let listeners: Vec<String> = config.listeners.iter().map(|l| l.to_string()).collect();
        let data = config.log_dir.clone();
        // A cluster node waits in `bind` for its quorum; a signal meanwhile still stops it.
        let bound = tokio::select! {
            r = fjord::Server::bind(config) => r,
            _ = signalled.as_mut() => {
                tracing::info!("stopped before the broker started");
                return ExitCode::SUCCESS;
            }
        };
        let server = match bound {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                eprintln!("fjord: cannot start: {e:#}");
                return ExitCode::from(1);
            }
        };
        let handle = server.start();
        tracing::info!(listeners = ?listeners, data_dir = %data.display(), cluster_id = %handle.broker.cluster_id, "fjord started");
        signalled.await;
        handle.shutdown().await;
        tracing::info!("fjord stopped");
        ExitCode::SUCCESS
    })
}
