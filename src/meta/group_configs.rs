//! Group configs (KIP-848): the GROUP config resource (type 32) of DescribeConfigs,
//! AlterConfigs and IncrementalAlterConfigs. The names, types, defaults, broker synonyms and
//! bounds are Kafka 4.3's `GroupConfig` (read off its ConfigDef and `validateValues`); each
//! value is checked against the broker's `group.*.min.*` / `group.*.max.*` settings, and the
//! consumer session timeout and heartbeat interval apply to the group's KIP-848 members.

use std::collections::BTreeMap;

use super::configs::{
    AlterOp, ConfigSource, ConfigType, DynamicConfigs, ResolvedConfig, broker_value_chain,
};
use crate::config::Config;

#[derive(Clone, Copy)]
enum Kind {
    /// An INT of at least this much (Kafka's `atLeast`).
    Int(i64),
    Bool,
    OneOf(&'static [&'static str]),
    /// `latest`, `earliest` or `by_duration:<ISO-8601 duration>`.
    AutoOffsetReset,
}

pub struct GroupConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    kind: Kind,
    /// The broker setting that supplies the default (Kafka's synonym).
    pub broker_synonym: Option<&'static str>,
    /// (broker setting, its Kafka default) bounding the value from below / above.
    min: Option<(&'static str, i64)>,
    max: Option<(&'static str, i64)>,
    /// Kafka checks the bounds of the assignment intervals only when the group sets them.
    bounds_only_when_set: bool,
    /// What Fjord does with it (None: it takes effect).
    pub no_effect: Option<&'static str>,
    pub doc: &'static str,
}

impl GroupConfigDef {
    pub fn config_type(&self) -> ConfigType {
        match self.kind {
            Kind::Int(_) => ConfigType::Int,
            Kind::Bool => ConfigType::Boolean,
            Kind::OneOf(_) | Kind::AutoOffsetReset => ConfigType::String,
        }
    }
}

#[allow(clippy::too_many_arguments)]
const fn def(
    name: &'static str,
    default: &'static str,
    kind: Kind,
    broker_synonym: Option<&'static str>,
    min: Option<(&'static str, i64)>,
    max: Option<(&'static str, i64)>,
    no_effect: Option<&'static str>,
    doc: &'static str,
) -> GroupConfigDef {
    GroupConfigDef {
        name,
        default,
        kind,
        broker_synonym,
        min,
        max,
        bounds_only_when_set: false,
        no_effect,
        doc,
    }
}

const fn only_when_set(mut d: GroupConfigDef) -> GroupConfigDef {
    d.bounds_only_when_set = true;
    d
}

const SHARE: Option<&str> = Some("share groups are not built");
const STREAMS: Option<&str> = Some("streams groups are not built");

/// In the order Kafka checks their bounds.
pub const GROUP_CONFIGS: &[GroupConfigDef] = &[
    def(
        "consumer.heartbeat.interval.ms",
        "5000",
        Kind::Int(1),
        Some("group.consumer.heartbeat.interval.ms"),
        Some(("group.consumer.min.heartbeat.interval.ms", 5000)),
        Some(("group.consumer.max.heartbeat.interval.ms", 15000)),
        None,
        "The heartbeat interval given to the members.",
    ),
    def(
        "consumer.session.timeout.ms",
        "45000",
        Kind::Int(1),
        Some("group.consumer.session.timeout.ms"),
        Some(("group.consumer.min.session.timeout.ms", 45000)),
        Some(("group.consumer.max.session.timeout.ms", 60000)),
        None,
        "The timeout to detect client failures when using the consumer group protocol.",
    ),
    only_when_set(def(
        "consumer.assignment.interval.ms",
        "1000",
        Kind::Int(0),
        Some("group.consumer.assignment.interval.ms"),
        Some(("group.consumer.min.assignment.interval.ms", 0)),
        Some(("group.consumer.max.assignment.interval.ms", 15000)),
        Some("Fjord computes assignments at once"),
        "The minimum time between two assignments of the group.",
    )),
    def(
        "share.heartbeat.interval.ms",
        "5000",
        Kind::Int(1),
        Some("group.share.heartbeat.interval.ms"),
        Some(("group.share.min.heartbeat.interval.ms", 5000)),
        Some(("group.share.max.heartbeat.interval.ms", 15000)),
        SHARE,
        "The heartbeat interval given to the members of a share group.",
    ),
    def(
        "share.session.timeout.ms",
        "45000",
        Kind::Int(1),
        Some("group.share.session.timeout.ms"),
        Some(("group.share.min.session.timeout.ms", 45000)),
        Some(("group.share.max.session.timeout.ms", 60000)),
        SHARE,
        "The timeout to detect client failures when using the share group protocol.",
    ),
    def(
        "share.record.lock.duration.ms",
        "30000",
        Kind::Int(1000),
        Some("group.share.record.lock.duration.ms"),
        Some(("group.share.min.record.lock.duration.ms", 15000)),
        Some(("group.share.max.record.lock.duration.ms", 60000)),
        SHARE,
        "The record acquisition lock duration in milliseconds for share groups.",
    ),
    def(
        "share.delivery.count.limit",
        "5",
        Kind::Int(2),
        Some("group.share.delivery.count.limit"),
        Some(("group.share.min.delivery.count.limit", 2)),
        Some(("group.share.max.delivery.count.limit", 10)),
        SHARE,
        "The maximum number of delivery attempts for a record delivered to a share group.",
    ),
    def(
        "share.partition.max.record.locks",
        "2000",
        Kind::Int(100),
        Some("group.share.partition.max.record.locks"),
        Some(("group.share.min.partition.max.record.locks", 100)),
        Some(("group.share.max.partition.max.record.locks", 4000)),
        SHARE,
        "Share-group record lock limit per share-partition.",
    ),
    only_when_set(def(
        "share.assignment.interval.ms",
        "1000",
        Kind::Int(0),
        Some("group.share.assignment.interval.ms"),
        Some(("group.share.min.assignment.interval.ms", 0)),
        Some(("group.share.max.assignment.interval.ms", 15000)),
        SHARE,
        "The minimum time between two assignments of the share group.",
    )),
    def(
        "streams.heartbeat.interval.ms",
        "5000",
        Kind::Int(1),
        Some("group.streams.heartbeat.interval.ms"),
        Some(("group.streams.min.heartbeat.interval.ms", 5000)),
        Some(("group.streams.max.heartbeat.interval.ms", 15000)),
        STREAMS,
        "The heartbeat interval given to the members of a streams group.",
    ),
    def(
        "streams.session.timeout.ms",
        "45000",
        Kind::Int(1),
        Some("group.streams.session.timeout.ms"),
        Some(("group.streams.min.session.timeout.ms", 45000)),
        Some(("group.streams.max.session.timeout.ms", 60000)),
        STREAMS,
        "The timeout to detect client failures when using the streams group protocol.",
    ),
    def(
        "streams.num.standby.replicas",
        "0",
        Kind::Int(0),
        Some("group.streams.num.standby.replicas"),
        None,
        Some(("group.streams.max.standby.replicas", 2)),
        STREAMS,
        "The number of standby replicas for each task.",
    ),
    only_when_set(def(
        "streams.assignment.interval.ms",
        "1000",
        Kind::Int(0),
        Some("group.streams.assignment.interval.ms"),
        Some(("group.streams.min.assignment.interval.ms", 0)),
        Some(("group.streams.max.assignment.interval.ms", 15000)),
        STREAMS,
        "The minimum time between two assignments of the streams group.",
    )),
    def(
        "streams.initial.rebalance.delay.ms",
        "3000",
        Kind::Int(0),
        Some("group.streams.initial.rebalance.delay.ms"),
        None,
        None,
        STREAMS,
        "The delay before the first rebalance of a new streams group.",
    ),
    def(
        "share.auto.offset.reset",
        "latest",
        Kind::AutoOffsetReset,
        None,
        None,
        None,
        SHARE,
        "The strategy to initialize the share-partition start offset.",
    ),
    def(
        "share.isolation.level",
        "read_uncommitted",
        Kind::OneOf(&["read_committed", "read_uncommitted"]),
        None,
        None,
        None,
        SHARE,
        "Controls how to read records written transactionally.",
    ),
    def(
        "share.renew.acknowledge.enable",
        "true",
        Kind::Bool,
        None,
        None,
        None,
        SHARE,
        "Whether the renew acknowledge type is enabled for the share group.",
    ),
];

pub fn group_config_def(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

/// An integer broker setting: dynamic, static, or Kafka's default.
fn broker_int(cfg: &Config, dynamic: &DynamicConfigs, name: &str, default: i64) -> i64 {
    broker_value_chain(cfg, dynamic, name, &default.to_string())
        .into_iter()
        .find_map(|(v, _)| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The value a group gets when it sets nothing: its broker synonym, else Kafka's default.
fn broker_default(cfg: &Config, dynamic: &DynamicConfigs, d: &GroupConfigDef) -> String {
    match d.broker_synonym {
        Some(syn) => broker_value_chain(cfg, dynamic, syn, d.default).remove(0).0,
        None => d.default.to_string(),
    }
}

fn parse_value(d: &GroupConfigDef, v: &str) -> Result<Option<i64>, String> {
    let bad = |why: String| format!("Invalid value {v} for configuration {}: {why}", d.name);
    let t = v.trim();
    match d.kind {
        Kind::Int(at_least) => {
            let n: i32 = t
                .parse()
                .map_err(|_| bad("Not a number of type INT".into()))?;
            if (n as i64) < at_least {
                return Err(bad(format!("Value must be at least {at_least}")));
            }
            Ok(Some(n as i64))
        }
        Kind::Bool => {
            if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
                Ok(None)
            } else {
                Err(bad("Expected value to be either true or false".into()))
            }
        }
        Kind::OneOf(opts) => {
            if opts.contains(&t) {
                Ok(None)
            } else {
                Err(bad(format!("String must be one of: {}", opts.join(", "))))
            }
        }
        Kind::AutoOffsetReset => {
            let lower = t.to_ascii_lowercase();
            let ok = lower == "latest"
                || lower == "earliest"
                || lower
                    .strip_prefix("by_duration:")
                    .is_some_and(|d| d.starts_with('p') && d.len() > 1 && !d.starts_with("p-"));
            if ok {
                Ok(None)
            } else {
                Err(bad(format!(
                    "Invalid value `{v}` for configuration {}. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.",
                    d.name
                )))
            }
        }
    }
}

/// Checks a group's whole set of configs (after the change) as Kafka's
/// `GroupConfig.validate` does: names, types, then the broker's bounds.
pub fn validate_group_configs(
    cfg: &Config,
    dynamic: &DynamicConfigs,
    configs: &BTreeMap<String, String>,
) -> Result<(), String> {
    for name in configs.keys() {
        if group_config_def(name).is_none() {
            return Err(format!("Unknown group config name: {name}"));
        }
    }
    let mut ints: BTreeMap<&str, i64> = BTreeMap::new();
    for d in GROUP_CONFIGS {
        let v = configs
            .get(d.name)
            .cloned()
            .unwrap_or_else(|| broker_default(cfg, dynamic, d));
        if let Some(n) = parse_value(d, &v)? {
            ints.insert(d.name, n);
        }
    }
    for d in GROUP_CONFIGS {
        let Some(&n) = ints.get(d.name) else { continue };
        if d.bounds_only_when_set && !configs.contains_key(d.name) {
            continue;
        }
        if let Some((min, default)) = d.min
            && n < broker_int(cfg, dynamic, min, default)
        {
            return Err(format!("{} must be greater than or equal to {min}", d.name));
        }
        if let Some((max, default)) = d.max
            && n > broker_int(cfg, dynamic, max, default)
        {
            return Err(format!("{} must be less than or equal to {max}", d.name));
        }
    }
    for kind in ["consumer", "share", "streams"] {
        let session = format!("{kind}.session.timeout.ms");
        let heartbeat = format!("{kind}.heartbeat.interval.ms");
        if ints[session.as_str()] <= ints[heartbeat.as_str()] {
            return Err(format!("{session} must be greater than {heartbeat}"));
        }
    }
    Ok(())
}

/// Applies AlterConfigs / IncrementalAlterConfigs changes to a group's configs. Values are
/// checked afterwards, on the whole result, by [`validate_group_configs`].
pub fn apply_group_changes(
    current: &BTreeMap<String, String>,
    changes: &[(String, AlterOp)],
) -> Result<BTreeMap<String, String>, String> {
    let mut out = current.clone();
    for (name, op) in changes {
        if group_config_def(name).is_none() {
            return Err(format!("Unknown group config name: {name}"));
        }
        match op {
            AlterOp::Set(v) => {
                out.insert(name.clone(), v.trim().to_string());
            }
            AlterOp::Delete => {
                out.remove(name);
            }
            AlterOp::Append(_) | AlterOp::Subtract(_) => {
                return Err(format!(
                    "Config {name} is not a list: APPEND and SUBTRACT do not apply"
                ));
            }
        }
    }
    Ok(out)
}

/// Every group config of one group, with the group's own values (source
/// DYNAMIC_GROUP_CONFIG) ahead of the broker synonym they default to, as Kafka lists them.
pub fn resolve_group_configs(
    cfg: &Config,
    dynamic: &DynamicConfigs,
    configs: &BTreeMap<String, String>,
) -> Vec<ResolvedConfig> {
    let mut out: Vec<ResolvedConfig> = GROUP_CONFIGS
        .iter()
        .map(|d| {
            let mut synonyms = Vec::new();
            if let Some(v) = configs.get(d.name) {
                synonyms.push((d.name.to_string(), v.clone(), ConfigSource::DynamicGroup));
            }
            match d.broker_synonym {
                Some(syn) => synonyms.extend(
                    broker_value_chain(cfg, dynamic, syn, d.default)
                        .into_iter()
                        .map(|(v, s)| (syn.to_string(), v, s)),
                ),
                None => synonyms.push((
                    d.name.to_string(),
                    d.default.to_string(),
                    ConfigSource::Default,
                )),
            }
            let (_, value, source) = synonyms[0].clone();
            ResolvedConfig {
                name: d.name,
                value,
                source,
                config_type: d.config_type(),
                doc: d.doc,
                synonyms,
                read_only: false,
                null_value: false,
            }
        })
        .collect();
    out.sort_by_key(|c| c.name);
    out
}

/// What a group's configs change in how Fjord runs its KIP-848 members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupOverrides {
    pub consumer_session_timeout_ms: Option<i64>,
    pub consumer_heartbeat_interval_ms: Option<i32>,
}

impl GroupOverrides {
    pub fn from_configs(configs: &BTreeMap<String, String>) -> Self {
        let int = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
        GroupOverrides {
            consumer_session_timeout_ms: int("consumer.session.timeout.ms"),
            consumer_heartbeat_interval_ms: int("consumer.heartbeat.interval.ms").map(|v| v as i32),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == GroupOverrides::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigBuilder, Source};

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bounds_and_messages_are_kafkas() {
        let cfg = Config::default();
        let d = DynamicConfigs::default();
        let check = |p: &[(&str, &str)]| validate_group_configs(&cfg, &d, &set(p));
        assert!(check(&[("consumer.session.timeout.ms", "50000")]).is_ok());
        assert_eq!(
            check(&[("consumer.session.timeout.ms", "1000")]).unwrap_err(),
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            check(&[("consumer.heartbeat.interval.ms", "60000")]).unwrap_err(),
            "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"
        );
        assert_eq!(
            check(&[("consumer.session.timeout.ms", "abc")]).unwrap_err(),
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"
        );
        assert_eq!(
            check(&[("no.such", "1")]).unwrap_err(),
            "Unknown group config name: no.such"
        );
        assert!(check(&[("share.isolation.level", "read_committed")]).is_ok());
        assert!(check(&[("share.auto.offset.reset", "by_duration:PT1H")]).is_ok());
        assert!(check(&[("share.auto.offset.reset", "bogus")]).is_err());
        // The bounds are the broker's.
        let mut b = ConfigBuilder::new();
        b.set(
            "group.consumer.min.session.timeout.ms",
            "1000",
            Source::Flag,
        )
        .unwrap();
        b.set(
            "group.consumer.min.heartbeat.interval.ms",
            "100",
            Source::Flag,
        )
        .unwrap();
        let low = b.build().unwrap();
        assert!(
            validate_group_configs(
                &low,
                &d,
                &set(&[
                    ("consumer.session.timeout.ms", "2000"),
                    ("consumer.heartbeat.interval.ms", "500")
                ])
            )
            .is_ok()
        );
        assert_eq!(
            validate_group_configs(
                &low,
                &d,
                &set(&[
                    ("consumer.session.timeout.ms", "2000"),
                    ("consumer.heartbeat.interval.ms", "2000")
                ])
            )
            .unwrap_err(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
    }

    #[test]
    fn describe_lists_every_config_with_the_group_value_first() {
        let cfg = Config::default();
        let all = resolve_group_configs(
            &cfg,
            &DynamicConfigs::default(),
            &set(&[("consumer.session.timeout.ms", "50000")]),
        );
        assert_eq!(all.len(), 17);
        let s = all
            .iter()
            .find(|c| c.name == "consumer.session.timeout.ms")
            .unwrap();
        assert_eq!(
            (s.value.as_str(), s.source),
            ("50000", ConfigSource::DynamicGroup)
        );
        assert_eq!(s.synonyms[1].0, "group.consumer.session.timeout.ms");
        let r = all
            .iter()
            .find(|c| c.name == "share.auto.offset.reset")
            .unwrap();
        assert_eq!(
            r.synonyms,
            vec![(
                "share.auto.offset.reset".to_string(),
                "latest".to_string(),
                ConfigSource::Default
            )]
        );
    }
}
