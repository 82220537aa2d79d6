//! Kafka's broker settings that Fjord does not act on: accepted, so that an existing Kafka
//! configuration (its shipped `server.properties`, a docker-compose environment block)
//! starts Fjord unchanged, and reported once at startup. A name Kafka does not define is
//! still an error, with the closest known name suggested.

use super::kafka::{KAFKA_BROKER_SETTINGS, KafkaType, Update};

/// What Fjord does with a Kafka setting it does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Tuning for the JVM broker (thread pools, buffers, ...): means nothing here.
    NoMeaning,
    /// Belongs to a feature not built yet (named).
    NotBuilt(&'static str),
}

/// Prefixes of settings that belong to features Fjord has not built yet.
const NOT_BUILT: &[(&str, &str)] = &[
    (
        "ssl.",
        "TLS tuning (protocol versions and cipher suites are rustls's)",
    ),
    ("sasl.", "SASL tuning (Kerberos and login settings)"),
    ("security.", "security"),
    ("principal.builder", "authentication"),
    ("delegation.token", "delegation tokens"),
    (
        "controller.quorum.bootstrap.servers",
        "a dynamic controller quorum (a cluster lists its voters in controller.quorum.voters)",
    ),
    ("controller.", "tuning of the KRaft controller"),
    ("metadata.", "tuning of the KRaft metadata log"),
    (
        "initial.broker.registration",
        "tuning of the KRaft controller",
    ),
    ("replica.", "replication"),
    ("leader.replication.throttled", "replication throttling"),
    ("follower.replication.throttled", "replication throttling"),
    ("num.replica", "replication"),
    ("offsets.topic.", "replicated internal topics"),
    ("transaction.state.log.", "replicated internal topics"),
    ("remote.", "tiered storage"),
    ("log.local.retention", "tiered storage"),
    ("share.", "share groups"),
    ("group.share.", "share groups"),
    ("group.streams.", "streams groups"),
    ("quota.", "quotas"),
    ("client.quota", "quotas"),
    ("replication.quota", "quotas"),
    ("alter.log.dirs.replication.quota", "quotas"),
    ("metric.reporters", "metrics"),
    ("metrics.", "metrics"),
    ("kafka.metrics.", "metrics"),
    ("log.roll.", "time-based segment rolling"),
    ("create.topic.policy", "topic policies"),
    ("alter.config.policy", "config policies"),
];

/// Looks a name up among Kafka's broker settings.
pub fn kafka_setting(name: &str) -> Option<(KafkaType, Update)> {
    KAFKA_BROKER_SETTINGS
        .binary_search_by(|(n, _, _)| (*n).cmp(name))
        .ok()
        .map(|i| (KAFKA_BROKER_SETTINGS[i].1, KAFKA_BROKER_SETTINGS[i].2))
}

/// Why a Kafka setting has no effect in Fjord.
pub fn classify(name: &str) -> Ignored {
    NOT_BUILT
        .iter()
        .find(|(p, _)| name.starts_with(p))
        .map(|(_, f)| Ignored::NotBuilt(f))
        .unwrap_or(Ignored::NoMeaning)
}

/// Checks a value against Kafka's type for the setting.
pub fn check_type(ty: KafkaType, value: &str) -> Result<(), String> {
    let v = value.trim();
    let ok = match ty {
        KafkaType::Boolean => matches!(v.to_ascii_lowercase().as_str(), "true" | "false"),
        KafkaType::Short => v.parse::<i16>().is_ok(),
        KafkaType::Int => v.parse::<i32>().is_ok(),
        KafkaType::Long => v.parse::<i64>().is_ok(),
        KafkaType::Double => v.parse::<f64>().is_ok(),
        KafkaType::String | KafkaType::List | KafkaType::Class | KafkaType::Password => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected a value of type {ty:?}"))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known setting closest to `name`, if any is close enough to be a likely typo.
pub fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (edit_distance(name, k), k))
        .min()
        .filter(|(d, _)| *d <= (name.len() / 3).max(2))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_are_known_and_sorted() {
        assert!(KAFKA_BROKER_SETTINGS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(kafka_setting("num.network.threads").is_some());
        assert!(kafka_setting("no.such.setting").is_none());
        assert!(matches!(
            classify("ssl.cipher.suites"),
            Ignored::NotBuilt(_)
        ));
        assert_eq!(classify("num.io.threads"), Ignored::NoMeaning);
        assert!(check_type(KafkaType::Int, "8").is_ok());
        assert!(check_type(KafkaType::Int, "eight").is_err());
        let names = KAFKA_BROKER_SETTINGS.iter().map(|(n, _, _)| *n);
        assert_eq!(closest("log.retension.ms", names), Some("log.retention.ms"));
    }
}
