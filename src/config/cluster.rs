//! The cluster settings (Kafka's KRaft names). A node is part of a cluster when
//! `controller.quorum.voters` is set; without it, it is the single node it always was.

use std::collections::BTreeMap;

use super::{ConfigError, Source};

/// Settings of the cluster role that take effect (reported neither as ignored nor as not
/// built at startup).
pub const CLUSTER_SETTINGS: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.listener.names",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.mechanism.controller.protocol",
    "listener.security.protocol.map",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "replica.lag.time.max.ms",
    "replica.fetch.wait.max.ms",
    "unclean.leader.election.enable",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
];

/// How this node takes part in a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `process.roles` has `broker`: this node serves clients, registers and heartbeats.
    pub broker: bool,
    /// `process.roles` has `controller`: this node is a voter of the metadata quorum. A
    /// broker that is not one follows the quorum's log as an observer.
    pub controller: bool,
    /// Every voter of the metadata quorum: node id to its quorum address (`host:port`).
    /// Empty on a broker given only `controller.quorum.bootstrap.servers`.
    pub voters: BTreeMap<u64, String>,
    /// The quorum addresses a broker that is not a controller asks for the metadata log:
    /// the voters', or `controller.quorum.bootstrap.servers`.
    pub bootstrap_servers: Vec<String>,
    /// The listener other brokers use to reach this one (empty on a controller only).
    pub inter_broker_listener: String,
    /// Without a heartbeat for this long, the active controller fences a broker.
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// A follower that has not caught up for this long leaves the ISR (Kafka: 30 s).
    pub replica_lag_time_max_ms: u64,
    /// How long a follower's fetch waits at the leader for new data (Kafka: 500 ms).
    pub replica_fetch_wait_max_ms: u64,
    /// The static default of `unclean.leader.election.enable` (topics and the dynamic
    /// cluster default override it).
    pub unclean_leader_election: bool,
    /// Preferred replicas take their leaderships back (Kafka: true), checked every
    /// `leader.imbalance.check.interval.seconds` (300) for brokers whose share of
    /// preferred leaderships they do not hold is above the percentage (10).
    pub auto_leader_rebalance: bool,
    pub leader_imbalance_check_interval_ms: u64,
    pub leader_imbalance_per_broker_percentage: u64,
}

/// Reads the cluster settings from the resolved values; None for a single node.
/// `broker_listeners` are the names of the (non-controller) listeners.
pub fn parse(
    values: &BTreeMap<String, (String, Source)>,
    node_id: i32,
    broker_listeners: &[String],
) -> Result<Option<ClusterSettings>, ConfigError> {
    let get = |k: &str| {
        values
            .get(k)
            .map(|(v, _)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let roles: Vec<String> = get("process.roles")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    for r in &roles {
        if r != "broker" && r != "controller" {
            return Err(ConfigError(format!(
                "setting `process.roles`: unknown role {r:?} (broker, controller)"
            )));
        }
    }
    let voters_text = get("controller.quorum.voters");
    if voters_text.is_none()
        && roles == ["broker"]
        && let Some(servers) = get("controller.quorum.bootstrap.servers")
    {
        // A broker only needs to reach the controllers: it follows the log as an observer.
        let bootstrap_servers = parse_bootstrap_servers(&servers)?;
        return finish(
            &get,
            broker_listeners,
            true,
            false,
            BTreeMap::new(),
            bootstrap_servers,
        );
    }
    let Some(voters_text) = voters_text else {
        // Kafka's shipped server.properties names a dynamic quorum
        // (`controller.quorum.bootstrap.servers`) and no voters: that is a single node here,
        // and the setting is reported at startup as not built.
        if !roles.is_empty()
            && roles != ["broker", "controller"]
            && roles != ["controller", "broker"]
        {
            return Err(ConfigError(format!(
                "setting `process.roles` is {:?} but `controller.quorum.voters` is not set: \
                 a node on its own is a combined broker and controller",
                roles.join(",")
            )));
        }
        return Ok(None);
    };
    let broker = roles.iter().any(|r| r == "broker");
    let controller = roles.iter().any(|r| r == "controller");
    if !broker && !controller {
        return Err(ConfigError(
            "setting `process.roles` is required with `controller.quorum.voters` (broker, \
             controller, or broker,controller)"
                .into(),
        ));
    }
    let voters = parse_voters(&voters_text)?;
    let is_voter = voters.contains_key(&(node_id as u64));
    if controller && !is_voter {
        return Err(ConfigError(format!(
            "setting `controller.quorum.voters`: this node (node.id={node_id}) is a controller \
             and must be one of the voters"
        )));
    }
    if !controller && is_voter {
        return Err(ConfigError(format!(
            "setting `controller.quorum.voters`: this node (node.id={node_id}) is a broker only \
             and must not be one of the voters (its node.id must differ from every controller's)"
        )));
    }
    let bootstrap_servers = voters.values().cloned().collect();
    finish(
        &get,
        broker_listeners,
        broker,
        controller,
        voters,
        bootstrap_servers,
    )
}

/// The settings every cluster node has, checked, with its roles and quorum addresses.
/// One setting as a values map (what [`super::security::protocols`] reads).
fn get_all(
    get: &dyn Fn(&str) -> Option<String>,
    key: &str,
) -> BTreeMap<String, (String, super::Source)> {
    get(key)
        .map(|v| BTreeMap::from([(key.to_string(), (v, super::Source::File))]))
        .unwrap_or_default()
}

fn finish(
    get: &dyn Fn(&str) -> Option<String>,
    broker_listeners: &[String],
    broker: bool,
    controller: bool,
    voters: BTreeMap<u64, String>,
    bootstrap_servers: Vec<String>,
) -> Result<Option<ClusterSettings>, ConfigError> {
    if broker && broker_listeners.is_empty() {
        return Err(ConfigError(
            "setting `listeners`: a broker needs a listener that is not a controller listener"
                .into(),
        ));
    }
    let inter_broker_listener = match (
        get("inter.broker.listener.name"),
        get("security.inter.broker.protocol"),
    ) {
        (Some(_), Some(_)) => {
            return Err(ConfigError(
                "settings `inter.broker.listener.name` and `security.inter.broker.protocol`: \
                 give only one"
                    .into(),
            ));
        }
        (Some(l), None) => l,
        // As Kafka: the listener named after the protocol.
        (None, Some(p)) => p.trim().to_ascii_uppercase(),
        // Kafka's default (`security.inter.broker.protocol=PLAINTEXT`): the plaintext
        // listener, else the first.
        (None, None) => super::security::protocols(
            &get_all(get, "listener.security.protocol.map"),
            broker_listeners,
        )
        .ok()
        .and_then(|p| {
            broker_listeners
                .iter()
                .find(|l| p.get(*l) == Some(&super::SecurityProtocol::Plaintext))
                .cloned()
        })
        .or_else(|| broker_listeners.first().cloned())
        .unwrap_or_default(),
    };
    if broker && !broker_listeners.contains(&inter_broker_listener) {
        return Err(ConfigError(format!(
            "setting `inter.broker.listener.name`: {inter_broker_listener} is not a broker listener \
             of `listeners`"
        )));
    }
    let ms = |k: &str, default: u64| -> Result<u64, ConfigError> {
        match get(k) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ConfigError(format!("setting `{k}`: {v:?} is not a positive number"))
            }),
        }
    };
    let session_timeout_ms = ms("broker.session.timeout.ms", 9000)?;
    let heartbeat_interval_ms = ms("broker.heartbeat.interval.ms", 2000)?;
    if heartbeat_interval_ms >= session_timeout_ms {
        return Err(ConfigError(format!(
            "setting `broker.heartbeat.interval.ms` ({heartbeat_interval_ms}) must be below \
             `broker.session.timeout.ms` ({session_timeout_ms})"
        )));
    }
    let flag = |k: &str, default: bool| -> Result<bool, ConfigError> {
        match get(k).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(ConfigError(format!(
                "setting `{k}`: {v:?} is not true or false"
            ))),
        }
    };
    let unclean_leader_election = flag("unclean.leader.election.enable", false)?;
    let auto_leader_rebalance = flag("auto.leader.rebalance.enable", true)?;
    let leader_imbalance_check_interval_ms =
        ms("leader.imbalance.check.interval.seconds", 300)?.saturating_mul(1000);
    let leader_imbalance_per_broker_percentage = match get("leader.imbalance.per.broker.percentage")
    {
        None => 10,
        Some(v) => v.parse::<u64>().map_err(|_| {
            ConfigError(format!(
                "setting `leader.imbalance.per.broker.percentage`: {v:?} is not a number"
            ))
        })?,
    };
    let replica_lag_time_max_ms = ms("replica.lag.time.max.ms", 30_000)?;
    let replica_fetch_wait_max_ms = ms("replica.fetch.wait.max.ms", 500)?;
    Ok(Some(ClusterSettings {
        broker,
        controller,
        voters,
        bootstrap_servers,
        inter_broker_listener,
        session_timeout_ms,
        heartbeat_interval_ms,
        replica_lag_time_max_ms,
        replica_fetch_wait_max_ms,
        unclean_leader_election,
        auto_leader_rebalance,
        leader_imbalance_check_interval_ms,
        leader_imbalance_per_broker_percentage,
    }))
}

/// `host:port,host:port`: Kafka's `controller.quorum.bootstrap.servers`.
pub fn parse_bootstrap_servers(text: &str) -> Result<Vec<String>, ConfigError> {
    let servers: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for a in &servers {
        let ok = a
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !ok {
            return Err(ConfigError(format!(
                "setting `controller.quorum.bootstrap.servers`: {a:?} is not host:port"
            )));
        }
    }
    if servers.is_empty() {
        return Err(ConfigError(
            "setting `controller.quorum.bootstrap.servers`: no address".into(),
        ));
    }
    Ok(servers)
}

/// `1@host:port,2@host:port`: Kafka's static voter list.
pub fn parse_voters(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let bad = |why: &str| {
        ConfigError(format!(
            "setting `controller.quorum.voters`: {why} in {text:?} (expected id@host:port,...)"
        ))
    };
    let mut voters = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item.split_once('@').ok_or_else(|| bad("no '@'"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| bad("a voter id is not a number"))?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("a voter address is not host:port"));
        }
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(bad("a voter id appears twice"));
        }
    }
    if voters.is_empty() {
        return Err(bad("no voters"));
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, (String, Source)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), (v.to_string(), Source::Flag)))
            .collect()
    }

    #[test]
    fn single_node_without_voters() {
        assert_eq!(parse(&values(&[]), 1, &["PLAINTEXT".into()]).unwrap(), None);
        let v = values(&[("process.roles", "broker,controller")]);
        assert_eq!(parse(&v, 1, &["PLAINTEXT".into()]).unwrap(), None);
        let v = values(&[("process.roles", "broker")]);
        assert!(parse(&v, 1, &["PLAINTEXT".into()]).is_err());
    }

    #[test]
    fn combined_node() {
        let v = values(&[
            ("process.roles", "broker,controller"),
            (
                "controller.quorum.voters",
                "1@127.0.0.1:9193, 2@127.0.0.1:9194",
            ),
            ("broker.session.timeout.ms", "3000"),
        ]);
        let c = parse(&v, 2, &["PLAINTEXT".into()]).unwrap().unwrap();
        assert_eq!(c.voters.len(), 2);
        assert_eq!(c.voters[&2], "127.0.0.1:9194");
        assert_eq!(c.session_timeout_ms, 3000);
        assert_eq!(c.heartbeat_interval_ms, 2000);
        assert_eq!(c.inter_broker_listener, "PLAINTEXT");
        assert!(c.broker && c.controller);
        // A controller that is not a voter, a bad list.
        assert!(parse(&v, 3, &["PLAINTEXT".into()]).is_err());
        assert!(parse_voters("1@a:1,1@b:2").is_err());
        assert!(parse_voters("x@a:1").is_err());
        assert!(parse_voters("1@a").is_err());
        // Brokers may talk to each other over TLS; Kafka's older setting names the
        // listener by its protocol.
        let mut w = v.clone();
        w.insert(
            "listener.security.protocol.map".into(),
            ("PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL".into(), Source::Flag),
        );
        w.insert(
            "inter.broker.listener.name".into(),
            ("INTERNAL".into(), Source::Flag),
        );
        let l = ["PLAINTEXT".to_string(), "INTERNAL".to_string()];
        assert_eq!(
            parse(&w, 1, &l).unwrap().unwrap().inter_broker_listener,
            "INTERNAL"
        );
        let mut s = v.clone();
        s.insert(
            "security.inter.broker.protocol".into(),
            ("sasl_ssl".into(), Source::Flag),
        );
        let l = ["PLAINTEXT".to_string(), "SASL_SSL".to_string()];
        assert_eq!(
            parse(&s, 1, &l).unwrap().unwrap().inter_broker_listener,
            "SASL_SSL"
        );
        s.insert(
            "inter.broker.listener.name".into(),
            ("PLAINTEXT".into(), Source::Flag),
        );
        assert!(parse(&s, 1, &l).is_err(), "both settings");
    }

    #[test]
    fn dedicated_roles() {
        let voters = (
            "controller.quorum.voters",
            "1@127.0.0.1:9193,2@127.0.0.1:9194",
        );
        // A broker only: not a voter, needs a broker listener.
        let b = values(&[("process.roles", "broker"), voters]);
        let c = parse(&b, 5, &["PLAINTEXT".into()]).unwrap().unwrap();
        assert!(c.broker && !c.controller);
        assert!(parse(&b, 1, &["PLAINTEXT".into()]).is_err(), "a voter's id");
        assert!(parse(&b, 5, &[]).is_err(), "no broker listener");
        // A controller only: a voter, no broker listener needed.
        let k = values(&[("process.roles", "controller"), voters]);
        let c = parse(&k, 2, &[]).unwrap().unwrap();
        assert!(!c.broker && c.controller);
        assert_eq!(c.inter_broker_listener, "");
        assert!(parse(&k, 5, &[]).is_err(), "not a voter");
        // Voters without any role.
        assert!(parse(&values(&[voters]), 1, &["PLAINTEXT".into()]).is_err());
        // A broker may find the controllers through bootstrap servers instead (Kafka 4's
        // way); a combined node with them alone is still a single node.
        let bs = (
            "controller.quorum.bootstrap.servers",
            "127.0.0.1:9193, 127.0.0.1:9194",
        );
        let c = parse(
            &values(&[("process.roles", "broker"), bs]),
            5,
            &["PLAINTEXT".into()],
        )
        .unwrap()
        .unwrap();
        assert!(c.broker && !c.controller && c.voters.is_empty());
        assert_eq!(c.bootstrap_servers, ["127.0.0.1:9193", "127.0.0.1:9194"]);
        let v = values(&[("process.roles", "broker,controller"), bs]);
        assert_eq!(parse(&v, 1, &["PLAINTEXT".into()]).unwrap(), None);
        let v = values(&[
            ("process.roles", "broker"),
            ("controller.quorum.bootstrap.servers", "nohost"),
        ]);
        assert!(parse(&v, 5, &["PLAINTEXT".into()]).is_err());
    }
}
