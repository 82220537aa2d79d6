//! Every broker setting, under the name a Kafka user would look for.
//!
//! Settings come from four layers, later ones winning: built-in defaults, a Kafka-style
//! `server.properties` file, `FJORD_*` environment variables (`FJORD_LOG_RETENTION_MS` is
//! `log.retention.ms`), and command-line flags. All layers go through one validator so an
//! unknown or malformed setting is reported the same way wherever it came from.
//!
//! Every name Kafka 4.3 defines is accepted (`kafka.rs`): those Fjord implements take
//! effect, synonyms (`log.retention.hours`/`minutes`, ...) resolve as in Kafka, broker
//! defaults of topic configs (`log.segment.bytes`, ...) become the topics' static defaults,
//! and the rest is accepted and reported once (`accept.rs`). A name Kafka does not define
//! is an error naming the closest known one.

mod accept;
pub mod cluster;
pub mod kafka;
mod listeners;
pub mod security;

pub use accept::{Ignored, classify, closest, kafka_setting};
pub use listeners::{Listener, parse_listeners};
pub use security::SecurityProtocol;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a setting's value came from; DescribeConfigs reports this to admin clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

/// A configuration error that names the offending setting.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The kind of value a setting holds, used to validate it once, at startup.
#[derive(Clone, Copy)]
enum Kind {
    Listeners,
    Path,
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// Server-side assignors for KIP-848 consumer groups, the first being the default.
    Assignors,
}

/// The table of broker settings: name, kind, default. The single list the validator,
/// the `--help` text and DescribeConfigs (broker resource) all read.
const SETTINGS: &[(&str, Kind, &str)] = &[
    ("listeners", Kind::Listeners, "PLAINTEXT://localhost:9092"),
    ("advertised.listeners", Kind::Listeners, ""),
    ("log.dirs", Kind::Path, "./fjord-data"),
    (
        "node.id",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "1",
    ),
    (
        "num.partitions",
        Kind::Int {
            min: 1,
            max: 100_000,
        },
        "1",
    ),
    (
        "default.replication.factor",
        Kind::Int {
            min: 1,
            max: i16::MAX as i64,
        },
        "1",
    ),
    ("auto.create.topics.enable", Kind::Bool, "true"),
    (
        "message.max.bytes",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "1048588",
    ),
    (
        "socket.request.max.bytes",
        Kind::Int {
            min: 1024,
            max: i32::MAX as i64,
        },
        "104857600",
    ),
    (
        "log.retention.ms",
        Kind::Int {
            min: -1,
            max: i64::MAX,
        },
        "604800000",
    ),
    (
        "log.retention.bytes",
        Kind::Int {
            min: -1,
            max: i64::MAX,
        },
        "-1",
    ),
    (
        "log.flush.interval.messages",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
        "9223372036854775807",
    ),
    ("group.initial.rebalance.delay.ms", I32, "3000"),
    ("group.min.session.timeout.ms", I32, "6000"),
    ("group.max.session.timeout.ms", I32, "1800000"),
    ("group.max.size", POSITIVE_I32, "2147483647"),
    ("group.consumer.heartbeat.interval.ms", POSITIVE_I32, "5000"),
    ("group.consumer.session.timeout.ms", POSITIVE_I32, "45000"),
    ("group.consumer.assignors", Kind::Assignors, "uniform,range"),
    ("offsets.retention.minutes", POSITIVE_I32, "10080"),
    (
        "offsets.retention.check.interval.ms",
        POSITIVE_I32,
        "600000",
    ),
    ("offset.metadata.max.bytes", I32, "4096"),
    ("offsets.topic.num.partitions", POSITIVE_I32, "50"),
    ("offsets.topic.replication.factor", POSITIVE_I32, "3"),
    ("offsets.topic.segment.bytes", POSITIVE_I32, "104857600"),
    ("offsets.commit.timeout.ms", POSITIVE_I32, "5000"),
    ("transaction.state.log.num.partitions", POSITIVE_I32, "50"),
    (
        "transaction.state.log.replication.factor",
        POSITIVE_I32,
        "3",
    ),
    ("transaction.state.log.min.isr", POSITIVE_I32, "2"),
    (
        "transaction.state.log.segment.bytes",
        POSITIVE_I32,
        "104857600",
    ),
    ("log.retention.check.interval.ms", POSITIVE_I32, "300000"),
    ("log.cleaner.enable", Kind::Bool, "true"),
    ("log.cleaner.backoff.ms", POSITIVE_I32, "15000"),
    ("transaction.max.timeout.ms", POSITIVE_I32, "900000"),
    ("transactional.id.expiration.ms", POSITIVE_I32, "604800000"),
    ("producer.id.expiration.ms", POSITIVE_I32, "86400000"),
    ("max.connections", POSITIVE_I32, "2147483647"),
    ("max.connections.per.ip", POSITIVE_I32, "2147483647"),
    ("connections.max.idle.ms", POSITIVE_I32, "600000"),
    (
        "queued.max.request.bytes",
        Kind::Int {
            min: -1,
            max: i32::MAX as i64,
        },
        "-1",
    ),
    (
        "fetch.max.bytes",
        Kind::Int {
            min: 1024,
            max: i32::MAX as i64,
        },
        "57671680",
    ),
    // Fjord's own (Kafka has no global cap on fetch responses): record bytes of fetch
    // responses held in memory across all connections, from read until written.
    (
        "queued.max.fetch.bytes",
        Kind::Int {
            min: -1,
            max: i32::MAX as i64,
        },
        "268435456",
    ),
];

const I32: Kind = Kind::Int {
    min: 0,
    max: i32::MAX as i64,
};
const POSITIVE_I32: Kind = Kind::Int {
    min: 1,
    max: i32::MAX as i64,
};

/// Names of every broker setting Fjord knows.
pub fn setting_names() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|(n, _, _)| *n)
}

/// Kafka's (or Fjord's) default for a broker setting.
pub fn default_of(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, d)| *d)
}

fn validate(key: &str, value: &str) -> Result<(), ConfigError> {
    let bad = |why: String| {
        ConfigError(format!(
            "invalid value {value:?} for setting `{key}`: {why}"
        ))
    };
    // The authorizer's own settings (StandardAuthorizer reads them; KafkaConfig does not
    // define them), checked when the broker starts.
    if matches!(key, "super.users" | "allow.everyone.if.no.acl.found") {
        return Ok(());
    }
    // A setting for one listener (`listener.name.<l>.ssl.keystore.location`) is checked as
    // the setting itself.
    if let Some((_, inner)) = security::listener_setting(key) {
        // Or for one mechanism there (`listener.name.<l>.oauthbearer.<setting>`).
        let inner = security::without_mechanism(inner);
        if let Some((ty, _)) = accept::kafka_setting(inner) {
            return accept::check_type(ty, value).map_err(bad);
        }
        // A mechanism's JAAS entry: `listener.name.<l>.plain.sasl.jaas.config`.
        if inner.ends_with(".sasl.jaas.config") {
            return Ok(());
        }
    }
    let Some((_, kind, _)) = SETTINGS.iter().find(|(n, _, _)| *n == key) else {
        let Some((ty, _)) = accept::kafka_setting(key) else {
            let known = setting_names().chain(kafka::KAFKA_BROKER_SETTINGS.iter().map(|s| s.0));
            return Err(ConfigError(match accept::closest(key, known) {
                Some(near) => format!("unknown setting `{key}`; did you mean `{near}`?"),
                None => {
                    format!("unknown setting `{key}`: Kafka defines no broker setting of that name")
                }
            }));
        };
        accept::check_type(ty, value).map_err(bad)?;
        // A broker default of a topic config is checked as the topic config would be.
        if let Some(def) = crate::meta::configs::topic_def_for_broker_config(key) {
            crate::meta::configs::validate_topic_config(def.name, Some(value)).map_err(bad)?;
        }
        return Ok(());
    };
    match *kind {
        Kind::Listeners => {
            if !(key == "advertised.listeners" && value.is_empty()) {
                parse_listeners(key, value)?;
            }
        }
        Kind::Path => {
            if value.trim().is_empty() {
                return Err(bad("must not be empty".into()));
            }
        }
        Kind::Int { min, max } => {
            let v: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad("not an integer".into()))?;
            if v < min || v > max {
                return Err(bad(format!("must be between {min} and {max}")));
            }
        }
        Kind::Bool => {
            if !matches!(value.trim(), "true" | "false") {
                return Err(bad("must be true or false".into()));
            }
        }
        Kind::Assignors => {
            let names: Vec<&str> = value.split(',').map(str::trim).collect();
            if names.is_empty() || names.iter().any(|n| !matches!(*n, "uniform" | "range")) {
                return Err(bad("must be a list of: uniform, range".into()));
            }
        }
    }
    Ok(())
}

/// The validated broker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listeners: Vec<Listener>,
    /// Each (broker) listener's security protocol.
    pub listener_protocols: BTreeMap<String, SecurityProtocol>,
    pub advertised_listeners: Vec<Listener>,
    pub log_dir: PathBuf,
    pub node_id: i32,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub message_max_bytes: i32,
    pub socket_request_max_bytes: i32,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    /// Acknowledge produce only after the store has flushed to disk when this is 1.
    pub log_flush_interval_messages: i64,
    pub log_retention_check_interval_ms: i64,
    pub log_cleaner_enable: bool,
    pub log_cleaner_backoff_ms: i64,
    pub transaction_max_timeout_ms: i64,
    /// A transactional id with no transaction activity for this long is forgotten.
    pub transactional_id_expiration_ms: i64,
    /// `__transaction_state`: partitions, replication factor (at most the live brokers),
    /// `min.insync.replicas` and segment size when it is created.
    pub txn_log_partitions: i32,
    pub txn_log_replication_factor: i32,
    pub txn_log_min_isr: i32,
    pub txn_log_segment_bytes: i64,
    /// An idempotent producer's state in a partition is dropped once its last write is
    /// this old (and it has no transaction open there).
    pub producer_id_expiration_ms: i64,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub connections_max_idle_ms: i64,
    /// Bytes of request frames read but not yet handled, across all connections; -1 = no cap.
    pub queued_max_request_bytes: i64,
    /// Cap on one fetch response, whatever the client asks for.
    pub fetch_max_bytes: usize,
    /// Record bytes of fetch responses held in memory across all connections, from read
    /// until written to the socket; -1 = no cap.
    pub queued_max_fetch_bytes: i64,
    pub group: GroupSettings,
    /// Set when this node is part of a cluster (`controller.quorum.voters`).
    pub cluster: Option<cluster::ClusterSettings>,
    /// Every setting with its effective value and where it came from (for DescribeConfigs).
    pub values: BTreeMap<String, (String, Source)>,
}

impl Default for Config {
    fn default() -> Self {
        ConfigBuilder::new().build().expect("defaults are valid")
    }
}

/// Group coordinator settings (Kafka's `group.*` and `offsets.*`).
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub initial_rebalance_delay_ms: i64,
    pub min_session_timeout_ms: i64,
    pub max_session_timeout_ms: i64,
    pub max_size: usize,
    pub consumer_heartbeat_interval_ms: i32,
    pub consumer_session_timeout_ms: i64,
    pub consumer_assignors: Vec<String>,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: usize,
    /// `__consumer_offsets`: partitions, replication factor (at most the live brokers) and
    /// segment size when it is created.
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i32,
    pub offsets_topic_segment_bytes: i64,
    /// How long a commit waits for the ISR before COORDINATOR_NOT_AVAILABLE.
    pub offsets_commit_timeout_ms: u64,
}

/// Layers settings and validates each as it arrives.
pub struct ConfigBuilder {
    values: BTreeMap<String, (String, Source)>,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigBuilder {
    pub fn new() -> Self {
        let values = SETTINGS
            .iter()
            .map(|(n, _, d)| (n.to_string(), (d.to_string(), Source::Default)))
            .collect();
        Self { values }
    }

    pub fn set(
        &mut self,
        key: &str,
        value: &str,
        source: Source,
    ) -> Result<&mut Self, ConfigError> {
        let key = key.trim();
        let value = value.trim();
        validate(key, value)?;
        self.values
            .insert(key.to_string(), (value.to_string(), source));
        Ok(self)
    }

    /// Reads a Kafka-style properties file: `key=value` (or `key: value`) lines, `#`/`!` comments.
    pub fn load_properties(&mut self, path: &Path) -> Result<&mut Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .or_else(|| line.split_once(':'))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{}:{}: expected key=value, got {line:?}",
                        path.display(),
                        n + 1
                    ))
                })?;
            self.set(k, v, Source::File)
                .map_err(|e| ConfigError(format!("{}:{}: {e}", path.display(), n + 1)))?;
        }
        Ok(self)
    }

    /// Applies the environment the way the `apache/kafka` container image does
    /// (`KAFKA_NODE_ID=1` is `node.id`; `__` stands for `_` and `___` for `-`), so an
    /// existing docker-compose environment block works with Fjord's image. The image's own
    /// variables that are not settings (heap, JVM and log4j options, ...) are skipped.
    pub fn load_kafka_env<I: IntoIterator<Item = (String, String)>>(
        &mut self,
        vars: I,
    ) -> Result<&mut Self, ConfigError> {
        const NOT_SETTINGS: &[&str] = &[
            "KAFKA_VERSION",
            "KAFKA_HOME",
            "KAFKA_HEAP_OPTS",
            "KAFKA_LOG4J_OPTS",
            "KAFKA_OPTS",
            "KAFKA_JMX_OPTS",
            "KAFKA_JVM_PERFORMANCE_OPTS",
            "KAFKA_GC_LOG_OPTS",
            "KAFKA_LOG4J_ROOT_LOGLEVEL",
            "KAFKA_LOG4J_LOGGERS",
            "KAFKA_TOOLS_LOG4J_LOGLEVEL",
            "KAFKA_JMX_HOSTNAME",
            "KAFKA_JMX_PORT",
            "KAFKA_DEBUG",
            "KAFKA_LOG_DIR",
        ];
        for (k, v) in vars {
            let Some(rest) = k.strip_prefix("KAFKA_") else {
                continue;
            };
            if NOT_SETTINGS.contains(&k.as_str()) {
                continue;
            }
            let key = rest
                .to_ascii_lowercase()
                .replace("___", "\u{0}")
                .replace("__", "\u{1}")
                .replace('_', ".")
                .replace('\u{0}', "-")
                .replace('\u{1}', "_");
            self.set(&key, &v, Source::Env)
                .map_err(|e| ConfigError(format!("environment variable {k}: {e}")))?;
        }
        Ok(self)
    }

    /// Applies `FJORD_*` variables: `FJORD_LOG_RETENTION_MS=1000` sets `log.retention.ms`.
    pub fn load_env<I: IntoIterator<Item = (String, String)>>(
        &mut self,
        vars: I,
    ) -> Result<&mut Self, ConfigError> {
        for (k, v) in vars {
            if let Some(rest) = k.strip_prefix("FJORD_") {
                let key = rest.to_ascii_lowercase().replace('_', ".");
                self.set(&key, &v, Source::Env)
                    .map_err(|e| ConfigError(format!("environment variable {k}: {e}")))?;
            }
        }
        Ok(self)
    }

    /// Kafka's synonyms: `log.retention.ms` wins over `log.retention.minutes`, which wins
    /// over `log.retention.hours` (likewise `log.roll.*`). The winning synonym's value and
    /// source become the canonical setting's.
    fn resolve_synonyms(&mut self) -> Result<(), ConfigError> {
        for (canonical, synonyms) in [
            (
                "log.retention.ms",
                &[
                    ("log.retention.minutes", 60_000i64),
                    ("log.retention.hours", 3_600_000),
                ][..],
            ),
            ("log.roll.ms", &[("log.roll.hours", 3_600_000)][..]),
            (
                "log.roll.jitter.ms",
                &[("log.roll.jitter.hours", 3_600_000)][..],
            ),
        ] {
            if self
                .values
                .get(canonical)
                .is_some_and(|(_, s)| *s != Source::Default)
            {
                continue;
            }
            for (name, unit) in synonyms {
                if let Some((v, src)) = self.values.get(*name).cloned() {
                    let n: i64 = v.trim().parse().map_err(|_| {
                        ConfigError(format!("invalid value {v:?} for setting `{name}`"))
                    })?;
                    let ms = if n < 0 { -1 } else { n.saturating_mul(*unit) };
                    self.values
                        .insert(canonical.to_string(), (ms.to_string(), src));
                    break;
                }
            }
        }
        Ok(())
    }

    pub fn build(&self) -> Result<Config, ConfigError> {
        let mut resolved = ConfigBuilder {
            values: self.values.clone(),
        };
        resolved.resolve_synonyms()?;
        let values = resolved.values;
        let get = |k: &str| values[k].0.clone();
        let int = |k: &str| get(k).parse::<i64>().expect("validated");
        // Listeners named in `controller.listener.names` belong to the KRaft controller
        // role (Kafka's shipped server.properties has one); not built yet, so not bound.
        let controller_names: Vec<String> = values
            .get("controller.listener.names")
            .map(|(v, _)| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        let mut listeners = parse_listeners("listeners", &get("listeners"))?;
        listeners.retain(|l| !controller_names.contains(&l.name));
        // A dedicated controller serves no clients: it may have only controller listeners.
        let controller_only = values
            .get("process.roles")
            .is_some_and(|(v, _)| v.split(',').map(str::trim).eq(["controller"]))
            && values
                .get("controller.quorum.voters")
                .is_some_and(|(v, _)| !v.trim().is_empty());
        if listeners.is_empty() && !controller_only {
            return Err(ConfigError(
                "setting `listeners`: every listener is a controller listener; a broker listener is required".into(),
            ));
        }
        let adv = get("advertised.listeners");
        let advertised_listeners = if adv.is_empty() {
            listeners.clone()
        } else {
            let mut adv = parse_listeners("advertised.listeners", &adv)?;
            adv.retain(|a| !controller_names.contains(&a.name));
            for a in &adv {
                if !listeners.iter().any(|l| l.name == a.name) {
                    return Err(ConfigError(format!(
                        "setting `advertised.listeners`: listener {} is not in `listeners`",
                        a.name
                    )));
                }
            }
            adv
        };
        let listeners_names: Vec<String> = listeners.iter().map(|l| l.name.clone()).collect();
        let listener_protocols = security::protocols(&values, &listeners_names)?;
        let queued = int("queued.max.request.bytes");
        if queued > 0 && queued < int("socket.request.max.bytes") {
            return Err(ConfigError(format!(
                "setting `queued.max.request.bytes` ({queued}) must be at least `socket.request.max.bytes` ({}) or -1",
                int("socket.request.max.bytes")
            )));
        }
        if int("queued.max.fetch.bytes") == 0 {
            return Err(ConfigError(
                "setting `queued.max.fetch.bytes` must be positive or -1 (no cap)".into(),
            ));
        }
        Ok(Config {
            listeners,
            advertised_listeners,
            log_dir: PathBuf::from(get("log.dirs").split(',').next().unwrap_or("").trim()),
            node_id: int("node.id") as i32,
            num_partitions: int("num.partitions") as i32,
            default_replication_factor: int("default.replication.factor") as i16,
            auto_create_topics_enable: get("auto.create.topics.enable") == "true",
            message_max_bytes: int("message.max.bytes") as i32,
            socket_request_max_bytes: int("socket.request.max.bytes") as i32,
            log_retention_ms: int("log.retention.ms"),
            log_retention_bytes: int("log.retention.bytes"),
            log_flush_interval_messages: int("log.flush.interval.messages"),
            log_retention_check_interval_ms: int("log.retention.check.interval.ms"),
            log_cleaner_enable: get("log.cleaner.enable") == "true",
            log_cleaner_backoff_ms: int("log.cleaner.backoff.ms"),
            transaction_max_timeout_ms: int("transaction.max.timeout.ms"),
            transactional_id_expiration_ms: int("transactional.id.expiration.ms"),
            txn_log_partitions: int("transaction.state.log.num.partitions") as i32,
            txn_log_replication_factor: int("transaction.state.log.replication.factor") as i32,
            txn_log_min_isr: int("transaction.state.log.min.isr") as i32,
            txn_log_segment_bytes: int("transaction.state.log.segment.bytes"),
            producer_id_expiration_ms: int("producer.id.expiration.ms"),
            max_connections: int("max.connections") as usize,
            max_connections_per_ip: int("max.connections.per.ip") as usize,
            connections_max_idle_ms: int("connections.max.idle.ms"),
            queued_max_request_bytes: int("queued.max.request.bytes"),
            fetch_max_bytes: int("fetch.max.bytes") as usize,
            queued_max_fetch_bytes: int("queued.max.fetch.bytes"),
            group: GroupSettings {
                initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms"),
                min_session_timeout_ms: int("group.min.session.timeout.ms"),
                max_session_timeout_ms: int("group.max.session.timeout.ms"),
                max_size: int("group.max.size") as usize,
                consumer_heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms") as i32,
                consumer_session_timeout_ms: int("group.consumer.session.timeout.ms"),
                consumer_assignors: get("group.consumer.assignors")
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect(),
                offsets_retention_ms: int("offsets.retention.minutes") * 60_000,
                offsets_retention_check_interval_ms: int("offsets.retention.check.interval.ms"),
                offset_metadata_max_bytes: int("offset.metadata.max.bytes") as usize,
                offsets_topic_num_partitions: int("offsets.topic.num.partitions") as i32,
                offsets_topic_replication_factor: int("offsets.topic.replication.factor") as i32,
                offsets_topic_segment_bytes: int("offsets.topic.segment.bytes"),
                offsets_commit_timeout_ms: int("offsets.commit.timeout.ms") as u64,
            },
            cluster: cluster::parse(&values, int("node.id") as i32, &listeners_names)?,
            listener_protocols,
            values,
        })
    }
}

impl Config {
    /// The advertised address for a listener name (the one a client connected through).
    pub fn advertised_for(&self, listener: &str) -> &Listener {
        self.advertised_listeners
            .iter()
            .find(|l| l.name == listener)
            .unwrap_or(&self.advertised_listeners[0])
    }

    pub fn flush_on_ack(&self) -> bool {
        self.log_flush_interval_messages == 1
    }

    /// Settings given (not defaulted) that are Kafka's but have no effect in Fjord, with
    /// why: logged once at startup.
    pub fn ignored_settings(&self) -> Vec<(String, Ignored)> {
        self.values
            .iter()
            .filter(|(k, (_, src))| {
                *src != Source::Default
                    && !SETTINGS.iter().any(|(n, _, _)| n == k)
                    && !matches!(k.as_str(), "log.retention.minutes" | "log.retention.hours")
                    && !cluster::CLUSTER_SETTINGS.contains(&k.as_str())
                    && !security::is_security_setting(k)
            })
            // A broker that is not a controller finds the quorum through it.
            .filter(|(k, _)| {
                k.as_str() != "controller.quorum.bootstrap.servers"
                    || self.cluster.as_ref().is_none_or(|c| c.controller)
            })
            .filter_map(|(k, _)| {
                let why = accept::classify(k);
                // Broker defaults of topic configs take effect, unless their feature is
                // not built.
                let topic_default = crate::meta::configs::topic_def_for_broker_config(k).is_some();
                match why {
                    Ignored::NoMeaning if topic_default => None,
                    _ => Some((k.clone(), why)),
                }
            })
            .collect()
    }
}

/// Settings as the resolved values hold them (all from the file), for tests.
#[cfg(test)]
pub(crate) fn test_values(kv: &[(&str, &str)]) -> BTreeMap<String, (String, Source)> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), (v.to_string(), Source::File)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_and_validation() {
        let mut b = ConfigBuilder::new();
        b.load_env(vec![
            ("FJORD_NUM_PARTITIONS".to_string(), "6".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ])
        .unwrap();
        let c = b.build().unwrap();
        assert_eq!(c.num_partitions, 6);
        assert_eq!(c.values["num.partitions"].1, Source::Env);
        let err = b.set("num.partitions", "zero", Source::Flag).err().unwrap();
        assert!(err.0.contains("num.partitions"), "{err}");
        let err = b.set("no.such.thing", "1", Source::Flag).err().unwrap();
        assert!(err.0.contains("no.such.thing"), "{err}");
    }

    #[test]
    fn listener_protocols_are_checked() {
        let mut b = ConfigBuilder::new();
        b.set(
            "listeners",
            "PLAINTEXT://127.0.0.1:9092,SECURE://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094",
            Source::File,
        )
        .unwrap();
        b.set("controller.listener.names", "CONTROLLER", Source::File)
            .unwrap();
        b.set(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,SECURE:SSL,CONTROLLER:PLAINTEXT",
            Source::File,
        )
        .unwrap();
        let c = b.build().unwrap();
        assert_eq!(c.listener_protocols["SECURE"], SecurityProtocol::Ssl);
        assert!(!c.listener_protocols.contains_key("CONTROLLER"));
        b.set(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,SECURE:SSL,CONTROLLER:SSL",
            Source::File,
        )
        .unwrap();
        // The quorum's transport speaks TLS (and SASL) too.
        let c = b.build().unwrap();
        assert!(!c.listener_protocols.contains_key("CONTROLLER"));
    }

    #[test]
    fn kafka_names_synonyms_and_topic_defaults() {
        let mut b = ConfigBuilder::new();
        b.set("log.retention.hours", "168", Source::File).unwrap();
        b.set("num.io.threads", "8", Source::File).unwrap();
        b.set("log.segment.bytes", "2097152", Source::File).unwrap();
        b.set("ssl.cipher.suites", "TLS_AES_128_GCM_SHA256", Source::File)
            .unwrap();
        b.set("ssl.keystore.location", "/k", Source::File).unwrap();
        assert!(b.set("num.io.threads", "eight", Source::File).is_err());
        assert!(b.set("log.segment.bytes", "10", Source::File).is_err());
        let c = b.build().unwrap();
        assert_eq!(c.log_retention_ms, 168 * 3_600_000);
        assert_eq!(c.values["log.retention.ms"].1, Source::File);
        // minutes win over hours, ms over both.
        b.set("log.retention.minutes", "5", Source::File).unwrap();
        assert_eq!(b.build().unwrap().log_retention_ms, 300_000);
        b.set("log.retention.ms", "7", Source::Flag).unwrap();
        assert_eq!(b.build().unwrap().log_retention_ms, 7);
        let ignored = c.ignored_settings();
        assert!(ignored.contains(&("num.io.threads".into(), Ignored::NoMeaning)));
        assert!(ignored.iter().any(|(k, _)| k == "ssl.cipher.suites"));
        // Acted on by SSL listeners.
        assert!(!ignored.iter().any(|(k, _)| k == "ssl.keystore.location"));
        // log.segment.bytes takes effect as the static default of segment.bytes.
        assert!(!ignored.iter().any(|(k, _)| k == "log.segment.bytes"));
        let mut k = ConfigBuilder::new();
        k.load_kafka_env(vec![
            ("KAFKA_NUM_PARTITIONS".into(), "4".into()),
            ("KAFKA_HEAP_OPTS".into(), "-Xmx1G".into()),
            ("KAFKA_LOG_CLEANER_ENABLE".into(), "false".into()),
            ("CLUSTER_ID".into(), "x".into()),
        ])
        .unwrap();
        let c = k.build().unwrap();
        assert_eq!(c.num_partitions, 4);
        assert!(!c.log_cleaner_enable);
    }
}
