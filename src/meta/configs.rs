//! Topic-level configuration: the keys Kafka defines, their defaults, their broker-wide
//! synonyms and validation. One table feeds CreateTopics validation and DescribeConfigs.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Source};

/// Value types as DescribeConfigs v3+ reports them (`ConfigType` in Kafka).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

impl ConfigType {
    /// The type Kafka gives a broker setting, if Kafka defines it.
    pub fn of_kafka_setting(name: &str) -> Option<ConfigType> {
        use crate::config::kafka::KafkaType as K;
        let (ty, _) = crate::config::kafka_setting(name)?;
        Some(match ty {
            K::Boolean => ConfigType::Boolean,
            K::Short => ConfigType::Short,
            K::Int => ConfigType::Int,
            K::Long => ConfigType::Long,
            K::Double => ConfigType::Double,
            K::String => ConfigType::String,
            K::List => ConfigType::List,
            K::Class => ConfigType::Class,
            K::Password => ConfigType::Password,
        })
    }
}

/// Broker settings whose Kafka default is null (their effective default lives in a
/// synonym, e.g. `log.retention.hours`): as a default they are no synonym of anything.
pub const NULL_DEFAULT: &[&str] = &[
    "log.flush.interval.ms",
    "log.retention.ms",
    "log.roll.jitter.ms",
    "log.roll.ms",
];

/// Where the default of a null-default broker setting comes from: (setting, synonym, its
/// default).
const FALLBACK_DEFAULT: &[(&str, &str, &str)] = &[
    ("log.retention.ms", "log.retention.hours", "168"),
    ("log.roll.ms", "log.roll.hours", "168"),
    ("log.roll.jitter.ms", "log.roll.jitter.hours", "0"),
];

/// Topic configs Kafka gives no broker-level synonym.
const NO_BROKER_SYNONYM: &[&str] = &[
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
];

#[derive(Clone, Copy)]
enum Rule {
    Long(i64),
    Int(i64),
    /// An int within [min, max] (KIP-390 compression levels).
    IntIn(i64, i64),
    Ratio,
    Bool,
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    AnyList,
}

pub struct TopicConfigDef {
    pub name: &'static str,
    /// Broker setting that supplies the default for every topic (Kafka's synonym).
    pub broker_synonym: &'static str,
    pub default: &'static str,
    rule: Rule,
    pub doc: &'static str,
}

impl TopicConfigDef {
    pub fn config_type(&self) -> ConfigType {
        match self.rule {
            Rule::Long(_) => ConfigType::Long,
            Rule::Int(_) | Rule::IntIn(..) => ConfigType::Int,
            Rule::Ratio => ConfigType::Double,
            Rule::Bool => ConfigType::Boolean,
            Rule::OneOf(_) => ConfigType::String,
            Rule::ListOf(_) | Rule::AnyList => ConfigType::List,
        }
    }
}

const L: i64 = i64::MAX;

macro_rules! def {
    ($name:expr, $syn:expr, $default:expr, $rule:expr, $doc:expr) => {
        TopicConfigDef {
            name: $name,
            broker_synonym: $syn,
            default: $default,
            rule: $rule,
            doc: $doc,
        }
    };
}

pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def!(
        "cleanup.policy",
        "log.cleanup.policy",
        "delete",
        Rule::ListOf(&["delete", "compact"]),
        "Retention policy: delete old data, compact by key, or both."
    ),
    // KIP-390 levels: accepted and described. Fjord stores batches as the producer
    // compressed them and never re-compresses, so they have no effect.
    def!(
        "compression.gzip.level",
        "compression.gzip.level",
        "-1",
        Rule::IntIn(-1, 9),
        "Gzip level when the broker compresses (-1 is the codec's default)."
    ),
    def!(
        "compression.lz4.level",
        "compression.lz4.level",
        "9",
        Rule::IntIn(1, 17),
        "LZ4 level when the broker compresses."
    ),
    def!(
        "compression.zstd.level",
        "compression.zstd.level",
        "3",
        Rule::IntIn(-131072, 22),
        "Zstd level when the broker compresses."
    ),
    def!(
        "compression.type",
        "compression.type",
        "producer",
        Rule::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "Final compression type; 'producer' keeps the producer's codec."
    ),
    def!(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        "86400000",
        Rule::Long(0),
        "How long tombstones are kept on compacted topics."
    ),
    def!(
        "file.delete.delay.ms",
        "log.segment.delete.delay.ms",
        "60000",
        Rule::Long(0),
        "Delay before deleting a unit of storage."
    ),
    def!(
        "flush.messages",
        "log.flush.interval.messages",
        "9223372036854775807",
        Rule::Long(1),
        "Messages between forced flushes; 1 acknowledges only after a flush."
    ),
    def!(
        "flush.ms",
        "log.flush.interval.ms",
        "9223372036854775807",
        Rule::Long(0),
        "Time between forced flushes."
    ),
    def!(
        "index.interval.bytes",
        "log.index.interval.bytes",
        "4096",
        Rule::Int(0),
        "Bytes between offset index entries."
    ),
    def!(
        "local.retention.bytes",
        "log.local.retention.bytes",
        "-2",
        Rule::Long(-2),
        "Local retention size for tiered storage."
    ),
    def!(
        "local.retention.ms",
        "log.local.retention.ms",
        "-2",
        Rule::Long(-2),
        "Local retention time for tiered storage."
    ),
    def!(
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        "9223372036854775807",
        Rule::Long(1),
        "Maximum time a record stays uncompacted."
    ),
    def!(
        "max.message.bytes",
        "message.max.bytes",
        "1048588",
        Rule::Int(0),
        "Largest record batch size allowed."
    ),
    def!(
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        "3600000",
        Rule::Long(0),
        "Allowed future skew of a record timestamp."
    ),
    def!(
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        "9223372036854775807",
        Rule::Long(0),
        "Allowed past skew of a record timestamp."
    ),
    def!(
        "message.timestamp.type",
        "log.message.timestamp.type",
        "CreateTime",
        Rule::OneOf(&["CreateTime", "LogAppendTime"]),
        "Whether timestamps are the producer's or the broker's."
    ),
    def!(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        "0.5",
        Rule::Ratio,
        "Dirty fraction that triggers compaction."
    ),
    def!(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        "0",
        Rule::Long(0),
        "Minimum time a record stays uncompacted."
    ),
    def!(
        "min.insync.replicas",
        "min.insync.replicas",
        "1",
        Rule::Int(1),
        "Replicas that must acknowledge an acks=all write."
    ),
    def!(
        "preallocate",
        "log.preallocate",
        "false",
        Rule::Bool,
        "Preallocate storage files."
    ),
    // Tiered storage (KIP-950): accepted and described; there is no remote log.
    def!(
        "remote.log.copy.disable",
        "remote.log.copy.disable",
        "false",
        Rule::Bool,
        "Stop copying log segments to remote storage."
    ),
    def!(
        "remote.log.delete.on.disable",
        "remote.log.delete.on.disable",
        "false",
        Rule::Bool,
        "Delete remote data when tiered storage is disabled for the topic."
    ),
    def!(
        "remote.storage.enable",
        "remote.log.storage.system.enable",
        "false",
        Rule::Bool,
        "Tiered storage for this topic."
    ),
    def!(
        "retention.bytes",
        "log.retention.bytes",
        "-1",
        Rule::Long(-1),
        "Maximum partition size before old data is deleted; -1 is unlimited."
    ),
    def!(
        "retention.ms",
        "log.retention.ms",
        "604800000",
        Rule::Long(-1),
        "Maximum age of data before it is deleted; -1 is forever."
    ),
    def!(
        "segment.bytes",
        "log.segment.bytes",
        "1073741824",
        Rule::Int(1_048_576),
        "Size of a unit of deletion."
    ),
    def!(
        "segment.index.bytes",
        "log.index.size.max.bytes",
        "10485760",
        Rule::Int(4),
        "Size of the offset index per unit."
    ),
    def!(
        "segment.jitter.ms",
        "log.roll.jitter.ms",
        "0",
        Rule::Long(0),
        "Jitter applied to segment.ms."
    ),
    def!(
        "segment.ms",
        "log.roll.ms",
        "604800000",
        Rule::Long(1),
        "Time after which a new unit of deletion starts."
    ),
    def!(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        "false",
        Rule::Bool,
        "Allow out-of-sync replicas to lead."
    ),
    def!(
        "follower.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
        "",
        Rule::AnyList,
        "Replicas throttled on the follower side."
    ),
    def!(
        "leader.replication.throttled.replicas",
        "leader.replication.throttled.replicas",
        "",
        Rule::AnyList,
        "Replicas throttled on the leader side."
    ),
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one topic config; the error message names the key and the bad value, as Kafka's
/// INVALID_CONFIG messages do.
pub fn validate_topic_config(name: &str, value: Option<&str>) -> Result<(), String> {
    let def = topic_config_def(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
    let Some(value) = value else {
        return Err(format!("Null value not supported for topic config {name}"));
    };
    let v = value.trim();
    let bad = |why: &str| format!("Invalid value {value} for configuration {name}: {why}");
    match def.rule {
        Rule::Long(min) | Rule::Int(min) => {
            let max = if matches!(def.rule, Rule::Int(_)) {
                i32::MAX as i64
            } else {
                L
            };
            let n: i64 = v.parse().map_err(|_| bad("Not a number"))?;
            if n < min || n > max {
                return Err(bad(&format!("Value must be at least {min}")));
            }
        }
        Rule::IntIn(min, max) => {
            let n: i64 = v.parse().map_err(|_| bad("Not a number"))?;
            if n < min || n > max {
                return Err(bad(&format!("Value must be between {min} and {max}")));
            }
        }
        Rule::Ratio => {
            let f: f64 = v.parse().map_err(|_| bad("Not a number"))?;
            if !(0.0..=1.0).contains(&f) {
                return Err(bad("Value must be between 0 and 1"));
            }
        }
        Rule::Bool => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return Err(bad("Expected value to be either true or false"));
            }
        }
        Rule::OneOf(opts) => {
            if !opts.contains(&v) {
                return Err(bad(&format!("String must be one of: {}", opts.join(", "))));
            }
        }
        Rule::ListOf(opts) => {
            for item in v.split(',').map(str::trim) {
                if !opts.contains(&item) {
                    return Err(bad(&format!(
                        "List values must be one of: {}",
                        opts.join(", ")
                    )));
                }
            }
        }
        Rule::AnyList => {}
    }
    Ok(())
}

/// One change requested by AlterConfigs (always `Set`, replacing everything) or
/// IncrementalAlterConfigs.
#[derive(Debug, Clone)]
pub enum AlterOp {
    Set(String),
    Delete,
    /// Add items to a list config (`cleanup.policy`).
    Append(String),
    /// Remove items from a list config.
    Subtract(String),
}

impl AlterOp {
    /// The list `base` (comma-separated) after this APPEND or SUBTRACT of its items:
    /// appended items not already there go last, subtracted ones are removed wherever they
    /// are. SET and DELETE leave `base` as it is.
    pub fn apply_to_list(&self, base: &str) -> String {
        let mut items: Vec<&str> = base
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let (AlterOp::Append(v) | AlterOp::Subtract(v)) = self else {
            return items.join(",");
        };
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if matches!(self, AlterOp::Append(_)) {
                if !items.contains(&item) {
                    items.push(item);
                }
            } else {
                items.retain(|i| *i != item);
            }
        }
        items.join(",")
    }
}

impl AlterOp {
    /// IncrementalAlterConfigs operation codes.
    pub fn from_code(code: i8, value: Option<String>) -> Result<AlterOp, String> {
        let need = |v: Option<String>| {
            v.ok_or_else(|| "a value is required for this operation".to_string())
        };
        Ok(match code {
            0 => AlterOp::Set(need(value)?),
            1 => AlterOp::Delete,
            2 => AlterOp::Append(need(value)?),
            3 => AlterOp::Subtract(need(value)?),
            other => return Err(format!("unknown config operation {other}")),
        })
    }
}

/// Applies changes to a set of overrides. `lookup` finds the definition of a name (topic
/// configs, or the topic config a broker config feeds); `current_value` gives the effective
/// value a list operation starts from when there is no override yet.
pub fn apply_changes(
    overrides: &BTreeMap<String, String>,
    changes: &[(String, AlterOp)],
    lookup: impl Fn(&str) -> Option<&'static TopicConfigDef>,
    current_value: impl Fn(&str) -> String,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = overrides.clone();
    for (name, op) in changes {
        let def =
            lookup(name).ok_or_else(|| format!("Unknown or read-only config name: {name}"))?;
        let is_list = matches!(def.rule, Rule::ListOf(_) | Rule::AnyList);
        match op {
            AlterOp::Set(v) => {
                validate_topic_config(def.name, Some(v)).map_err(|e| e.replace(def.name, name))?;
                out.insert(name.clone(), v.clone());
            }
            AlterOp::Delete => {
                out.remove(name);
            }
            AlterOp::Append(_) | AlterOp::Subtract(_) => {
                if !is_list {
                    return Err(format!(
                        "Config {name} is not a list: APPEND and SUBTRACT do not apply"
                    ));
                }
                let base = out
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| current_value(name));
                let joined = op.apply_to_list(&base);
                if !joined.is_empty() {
                    validate_topic_config(def.name, Some(&joined))
                        .map_err(|e| e.replace(def.name, name))?;
                }
                out.insert(name.clone(), joined);
            }
        }
    }
    Ok(out)
}

/// Where DescribeConfigs says a value came from (Kafka's `ConfigSource` ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
    /// A group config set with (Incremental)AlterConfigs on a GROUP resource (KIP-848).
    DynamicGroup = 8,
}

/// Broker configs changed at runtime with (Incremental)AlterConfigs: for this broker
/// (resource name = node id) or as the cluster-wide default (empty resource name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicConfigs {
    pub broker: BTreeMap<String, String>,
    pub cluster: BTreeMap<String, String>,
    /// Group configs (the GROUP resource, KIP-848), by group id.
    #[serde(default)]
    pub groups: BTreeMap<String, BTreeMap<String, String>>,
}

/// The dynamic broker configs, persisted in the store's `meta/config` tree.
pub struct Dynamic {
    tree: sled::Tree,
    current: RwLock<DynamicConfigs>,
}

impl Dynamic {
    pub fn load(tree: sled::Tree) -> anyhow::Result<Self> {
        let current = match tree.get("dynamic")? {
            Some(v) => serde_json::from_slice(&v)?,
            None => DynamicConfigs::default(),
        };
        Ok(Dynamic {
            tree,
            current: RwLock::new(current),
        })
    }

    pub fn get(&self) -> std::sync::RwLockReadGuard<'_, DynamicConfigs> {
        self.current.read().unwrap()
    }

    pub fn set(&self, new: DynamicConfigs) -> anyhow::Result<()> {
        self.tree.insert("dynamic", serde_json::to_vec(&new)?)?;
        *self.current.write().unwrap() = new;
        Ok(())
    }
}

/// The topic config a broker-level name supplies the default for (`log.retention.ms` ->
/// `retention.ms`): these are the broker configs that may change at runtime.
pub fn topic_def_for_broker_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.broker_synonym == name)
}

/// One resolved config entry with the chain of places it could come from, most specific first.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
    pub config_type: ConfigType,
    pub doc: &'static str,
    /// (synonym name, value, source) — Kafka's `synonyms` list.
    pub synonyms: Vec<(String, String, ConfigSource)>,
    /// Broker settings that cannot change at runtime.
    pub read_only: bool,
    /// Reported as null (a broker setting whose Kafka default is null and that is unset).
    pub null_value: bool,
}

/// The broker-level value of a broker config, most specific layer first: dynamic for this
/// broker, dynamic cluster default, static (file/env/flag), default.
pub fn broker_value_chain(
    cfg: &Config,
    dynamic: &DynamicConfigs,
    name: &str,
    default: &str,
) -> Vec<(String, ConfigSource)> {
    let mut chain = Vec::new();
    if let Some(v) = dynamic.broker.get(name) {
        chain.push((v.clone(), ConfigSource::DynamicBroker));
    }
    if let Some(v) = dynamic.cluster.get(name) {
        chain.push((v.clone(), ConfigSource::DynamicDefaultBroker));
    }
    match cfg.values.get(name) {
        Some((v, src)) if *src != Source::Default => {
            chain.push((v.clone(), ConfigSource::StaticBroker))
        }
        Some((v, _)) => chain.push((v.clone(), ConfigSource::Default)),
        None => chain.push((default.to_string(), ConfigSource::Default)),
    }
    if chain.last().map(|c| c.1) != Some(ConfigSource::Default) {
        let d = cfg
            .values
            .get(name)
            .filter(|(_, s)| *s == Source::Default)
            .map(|(v, _)| v.clone());
        chain.push((
            d.unwrap_or_else(|| {
                crate::config::default_of(name)
                    .unwrap_or(default)
                    .to_string()
            }),
            ConfigSource::Default,
        ));
    }
    chain
}

/// The broker-wide default of a topic config.
fn broker_default(
    cfg: &Config,
    dynamic: &DynamicConfigs,
    def: &TopicConfigDef,
) -> (String, ConfigSource) {
    broker_value_chain(cfg, dynamic, def.broker_synonym, def.default).remove(0)
}

/// Every topic config for a topic, with overrides applied and sources reported.
pub fn resolve_topic_configs(
    cfg: &Config,
    dynamic: &DynamicConfigs,
    overrides: &BTreeMap<String, String>,
) -> Vec<ResolvedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let chain = broker_value_chain(cfg, dynamic, def.broker_synonym, def.default);
            let mut synonyms = Vec::new();
            let (value, source) = match overrides.get(def.name) {
                Some(v) => {
                    synonyms.push((def.name.to_string(), v.clone(), ConfigSource::DynamicTopic));
                    (v.clone(), ConfigSource::DynamicTopic)
                }
                None => chain[0].clone(),
            };
            for (v, src) in chain {
                let null_default =
                    src == ConfigSource::Default && NULL_DEFAULT.contains(&def.broker_synonym);
                if !null_default && !NO_BROKER_SYNONYM.contains(&def.name) {
                    synonyms.push((def.broker_synonym.to_string(), v, src));
                }
            }
            // Once a null-default broker setting has a value somewhere, Kafka also lists the
            // default of the synonym its default comes from (log.retention.hours=168).
            if let Some((_, fallback, default)) = FALLBACK_DEFAULT
                .iter()
                .find(|(n, ..)| *n == def.broker_synonym)
                && synonyms.iter().any(|(n, ..)| n == def.broker_synonym)
            {
                synonyms.push((
                    fallback.to_string(),
                    default.to_string(),
                    ConfigSource::Default,
                ));
            }
            ResolvedConfig {
                name: def.name,
                value,
                source,
                config_type: def.config_type(),
                doc: def.doc,
                synonyms,
                read_only: false,
                null_value: false,
            }
        })
        .collect()
}

/// The effective value of one topic config.
pub fn topic_config_value(
    cfg: &Config,
    dynamic: &DynamicConfigs,
    overrides: &BTreeMap<String, String>,
    name: &str,
) -> String {
    if let Some(v) = overrides.get(name) {
        return v.clone();
    }
    topic_config_def(name)
        .map(|d| broker_default(cfg, dynamic, d).0)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigBuilder;

    #[test]
    fn list_append_and_subtract() {
        let add = |v: &str| AlterOp::Append(v.to_string());
        let sub = |v: &str| AlterOp::Subtract(v.to_string());
        assert_eq!(
            add("compact, delete").apply_to_list("delete"),
            "delete,compact"
        );
        assert_eq!(add("a,a,b").apply_to_list(""), "a,b");
        assert_eq!(sub("delete").apply_to_list("delete, compact"), "compact");
        assert_eq!(sub("c").apply_to_list("a,b"), "a,b");
        assert_eq!(AlterOp::Delete.apply_to_list("a, b"), "a,b");
    }

    #[test]
    fn validation_and_sources() {
        assert!(validate_topic_config("retention.ms", Some("1000")).is_ok());
        assert!(
            validate_topic_config("retention.ms", Some("-5"))
                .unwrap_err()
                .contains("retention.ms")
        );
        assert!(validate_topic_config("cleanup.policy", Some("compact,delete")).is_ok());
        assert!(validate_topic_config("cleanup.policy", Some("keep")).is_err());
        assert!(
            validate_topic_config("no.such", Some("1"))
                .unwrap_err()
                .contains("no.such")
        );

        let mut b = ConfigBuilder::new();
        b.set("log.retention.ms", "1000", Source::File).unwrap();
        let cfg = b.build().unwrap();
        let mut o = BTreeMap::new();
        o.insert("cleanup.policy".to_string(), "compact".to_string());
        let all = resolve_topic_configs(&cfg, &DynamicConfigs::default(), &o);
        let r = all.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!(
            (r.value.as_str(), r.source),
            ("1000", ConfigSource::StaticBroker)
        );
        let c = all.iter().find(|c| c.name == "cleanup.policy").unwrap();
        assert_eq!(c.source, ConfigSource::DynamicTopic);
        let m = all.iter().find(|c| c.name == "max.message.bytes").unwrap();
        assert_eq!(
            (m.value.as_str(), m.source),
            ("1048588", ConfigSource::Default)
        );
    }
}
