//! AlterConfigs (replace a resource's whole set of dynamic configs) and, sharing the logic,
//! IncrementalAlterConfigs (SET / DELETE / APPEND / SUBTRACT per key), for topics, for
//! broker settings (this broker by id, or the cluster default with an empty name) and for
//! group configs (KIP-848).
//!
//! A broker resource takes every setting Kafka 4.3 lets change at runtime: per-broker ones on
//! the broker, cluster-wide ones on the broker and on the cluster default. Those Fjord acts on
//! (the broker defaults of topic configs) take effect; the others are stored, described with
//! their source, and reported once as having no effect. Read-only settings and names Kafka
//! does not define are refused.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::Broker;
use crate::cluster::records::ConfigResource;
use crate::config::kafka::{KafkaType, Update};
use crate::connection::RequestContext;
use crate::meta::configs::{AlterOp, apply_changes, topic_config_def, topic_def_for_broker_config};
use crate::meta::group_configs::{
    GroupOverrides, apply_group_changes, group_config_def, validate_group_configs,
};
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;

/// Logs, once per name for the life of the process, a config that was stored but that Fjord
/// does not act on.
fn warn_no_effect_once(kind: &str, name: &str, why: &str) {
    static WARNED: std::sync::Mutex<Option<std::collections::HashSet<String>>> =
        std::sync::Mutex::new(None);
    let mut w = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if w.get_or_insert_with(Default::default)
        .insert(format!("{kind}/{name}"))
    {
        tracing::warn!(
            config = name,
            "{kind} config stored, but it has no effect in Fjord: {why}"
        );
    }
}

/// Kafka's message for a value that does not parse as the setting's type.
fn check_kafka_value(name: &str, ty: KafkaType, value: &str) -> Result<(), String> {
    let v = value.trim();
    let wrong = |ty: &str| {
        format!("Invalid value {value} for configuration {name}: Not a number of type {ty}")
    };
    match ty {
        KafkaType::Boolean
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
        {
            Err(format!(
                "Invalid value {value} for configuration {name}: Expected value to be either true or false"
            ))
        }
        KafkaType::Short if v.parse::<i16>().is_err() => Err(wrong("SHORT")),
        KafkaType::Int if v.parse::<i32>().is_err() => Err(wrong("INT")),
        KafkaType::Long if v.parse::<i64>().is_err() => Err(wrong("LONG")),
        KafkaType::Double if v.parse::<f64>().is_err() => Err(wrong("DOUBLE")),
        _ => Ok(()),
    }
}

/// Checks a broker resource's changes as Kafka does before any is applied: read-only
/// settings, per-broker settings on the cluster default, names Kafka does not define, and
/// values of the wrong type are refused.
fn check_broker_changes(
    changes: &[(String, AlterOp)],
    cluster_wide: bool,
) -> Result<(), (ResponseError, String)> {
    let update = |n: &str| crate::config::kafka_setting(n).map(|(_, u)| u);
    let list = |u: Update| {
        let names: Vec<&str> = changes
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| update(n) == Some(u))
            .collect();
        format!("[{}]", names.join(", "))
    };
    if changes
        .iter()
        .any(|(n, _)| update(n) == Some(Update::ReadOnly))
    {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "Cannot update these configs dynamically: {}",
                list(Update::ReadOnly)
            ),
        ));
    }
    if cluster_wide
        && changes
            .iter()
            .any(|(n, _)| update(n) == Some(Update::PerBroker))
    {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {}",
                list(Update::PerBroker)
            ),
        ));
    }
    for (name, op) in changes {
        let Some((ty, _)) = crate::config::kafka_setting(name) else {
            if topic_def_for_broker_config(name).is_some() {
                continue;
            }
            let known = crate::config::kafka::KAFKA_BROKER_SETTINGS
                .iter()
                .map(|s| s.0);
            let hint = match crate::config::closest(name, known) {
                Some(near) => format!(" (did you mean {near}?)"),
                None => String::new(),
            };
            return Err((
                ResponseError::InvalidConfig,
                format!("Unknown broker config name: {name}{hint}"),
            ));
        };
        if let AlterOp::Set(v) = op {
            check_kafka_value(name, ty, v).map_err(|m| (ResponseError::InvalidRequest, m))?;
        }
    }
    Ok(())
}

/// Applies changes to broker settings that are not the broker default of a topic config.
fn apply_plain_broker_changes(
    out: &mut std::collections::BTreeMap<String, String>,
    changes: &[(String, AlterOp)],
    current_value: impl Fn(&str) -> String,
) -> Result<(), String> {
    for (name, op) in changes {
        let is_list = crate::config::kafka_setting(name).is_some_and(|(t, _)| t == KafkaType::List);
        match op {
            AlterOp::Set(v) => {
                out.insert(name.clone(), v.trim().to_string());
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
                out.insert(name.clone(), op.apply_to_list(&base));
            }
        }
    }
    Ok(())
}

/// Applies one resource's changes; `replace` drops every override not named (AlterConfigs).
/// A topic's change on a cluster node goes through the controller.
pub async fn alter_resource(
    broker: &Broker,
    authz: &Authz,
    resource_type: i8,
    name: &str,
    changes: &[(String, AlterOp)],
    replace: bool,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    authz.config_resource(AclOperation::AlterConfigs, resource_type, name)?;
    match alter_resource_here(broker, resource_type, name, changes, replace, validate_only)? {
        None => Ok(()),
        Some((resource, name, new)) => {
            broker
                .set_configs_in_cluster(resource, &name, new)
                .await
                .map_err(|e| {
                    let (code, msg) = super::topic_error(&e);
                    (
                        ResponseError::try_from_code(code)
                            .unwrap_or(ResponseError::UnknownServerError),
                        msg.map(|m| m.to_string()).unwrap_or_default(),
                    )
                })?;
            tracing::info!(resource = ?resource, name = %name, "configs changed");
            Ok(())
        }
    }
}

/// A resource's new configs, for the controller to commit (on a cluster node).
type Pending = Option<(ConfigResource, String, BTreeMap<String, String>)>;

/// The change made here, or (Some) the resource's new configs for the controller to commit.
fn alter_resource_here(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    changes: &[(String, AlterOp)],
    replace: bool,
    validate_only: bool,
) -> Result<Pending, (ResponseError, String)> {
    let invalid = |m: String| (ResponseError::InvalidConfig, m);
    match resource_type {
        RESOURCE_TOPIC => {
            let topic = broker.topics.get(name).ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic {name} does not exist"),
                )
            })?;
            let base = if replace {
                Default::default()
            } else {
                topic.configs.clone()
            };
            let new = apply_changes(&base, changes, topic_config_def, |n| {
                broker.topic_config(&topic, n)
            })
            .map_err(invalid)?;
            if !validate_only {
                if broker.cluster.is_some() {
                    return Ok(Some((ConfigResource::Topic, name.to_string(), new)));
                }
                broker
                    .topics
                    .set_configs(name, new)
                    .map_err(|e| (ResponseError::KafkaStorageError, format!("{e:?}")))?;
                tracing::info!(topic = name, "topic configs changed");
            }
            Ok(None)
        }
        RESOURCE_BROKER => {
            let cluster_wide = name.is_empty();
            if !cluster_wide && name != broker.node_id().to_string() {
                return Err((
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {} but received {name}",
                        broker.node_id()
                    ),
                ));
            }
            let mut all = broker.dynamic.get().clone();
            let current = if cluster_wide {
                &all.cluster
            } else {
                &all.broker
            };
            let base = if replace {
                Default::default()
            } else {
                current.clone()
            };
            check_broker_changes(changes, cluster_wide)?;
            let cfg = &broker.config;
            let snapshot = all.clone();
            let current_value = |n: &str| {
                crate::meta::configs::broker_value_chain(
                    cfg,
                    &snapshot,
                    n,
                    topic_def_for_broker_config(n)
                        .map(|d| d.default)
                        .unwrap_or(""),
                )
                .remove(0)
                .0
            };
            let (topic_backed, plain): (Vec<_>, Vec<_>) = changes
                .iter()
                .cloned()
                .partition(|(n, _)| topic_def_for_broker_config(n).is_some());
            let mut new = apply_changes(
                &base,
                &topic_backed,
                topic_def_for_broker_config,
                current_value,
            )
            .map_err(invalid)?;
            apply_plain_broker_changes(&mut new, &plain, current_value).map_err(invalid)?;
            if !validate_only {
                for (n, op) in &plain {
                    if !matches!(op, AlterOp::Delete) {
                        let why = match crate::config::classify(n) {
                            _ if crate::config::setting_names().any(|k| k == n) => {
                                "Fjord reads it only at startup (server.properties or --override)"
                                    .to_string()
                            }
                            crate::config::Ignored::NotBuilt(f) => format!("{f} is not built"),
                            crate::config::Ignored::NoMeaning => {
                                "it tunes the JVM broker".to_string()
                            }
                        };
                        warn_no_effect_once("broker", n, &why);
                    }
                }
            }
            if !validate_only {
                if broker.cluster.is_some() {
                    return Ok(Some((ConfigResource::Broker, name.to_string(), new)));
                }
                if cluster_wide {
                    all.cluster = new;
                } else {
                    all.broker = new;
                }
                broker
                    .dynamic
                    .set(all)
                    .map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))?;
                tracing::info!(
                    resource = if cluster_wide {
                        "cluster default"
                    } else {
                        name
                    },
                    "broker configs changed"
                );
            }
            Ok(None)
        }
        RESOURCE_GROUP => {
            if name.is_empty() {
                return Err((
                    ResponseError::InvalidRequest,
                    "Default group resources are not allowed.".to_string(),
                ));
            }
            let mut all = broker.dynamic.get().clone();
            let base = if replace {
                Default::default()
            } else {
                all.groups.get(name).cloned().unwrap_or_default()
            };
            let new = apply_group_changes(&base, changes).map_err(invalid)?;
            validate_group_configs(&broker.config, &all, &new).map_err(invalid)?;
            if !validate_only {
                for (n, op) in changes {
                    if let (Some(why), false) = (
                        group_config_def(n).and_then(|d| d.no_effect),
                        matches!(op, AlterOp::Delete),
                    ) {
                        warn_no_effect_once("group", n, why);
                    }
                }
                if broker.cluster.is_some() {
                    return Ok(Some((ConfigResource::Group, name.to_string(), new)));
                }
                let overrides = GroupOverrides::from_configs(&new);
                if new.is_empty() {
                    all.groups.remove(name);
                } else {
                    all.groups.insert(name.to_string(), new);
                }
                broker
                    .dynamic
                    .set(all)
                    .map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))?;
                broker.groups.set_overrides(name, overrides);
                tracing::info!(group = name, "group configs changed");
            }
            Ok(None)
        }
        other => Err((
            ResponseError::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

pub fn response_entry(
    resource_type: i8,
    name: &StrBytes,
    r: Result<(), (ResponseError, String)>,
) -> AlterConfigsResourceResponse {
    let mut e = AlterConfigsResourceResponse::default()
        .with_error_message(None)
        .with_resource_type(resource_type)
        .with_resource_name(name.clone());
    if let Err((code, msg)) = r {
        e.error_code = code.code();
        e.error_message = Some(str_bytes(msg));
    }
    e
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> anyhow::Result<AlterConfigsResponse> {
    let authz = Authz::of(broker, ctx);
    let mut responses: Vec<AlterConfigsResourceResponse> = Vec::new();
    for res in &req.resources {
        let changes: Result<Vec<(String, AlterOp)>, (ResponseError, String)> = res
            .configs
            .iter()
            .map(|c| match &c.value {
                Some(v) => Ok((c.name.to_string(), AlterOp::Set(v.to_string()))),
                None => Err((
                    ResponseError::InvalidRequest,
                    format!("Null value not supported for {}", c.name.as_str()),
                )),
            })
            .collect();
        let r = match changes {
            Ok(ch) => {
                alter_resource(
                    broker,
                    &authz,
                    res.resource_type,
                    res.resource_name.as_str(),
                    &ch,
                    true,
                    req.validate_only,
                )
                .await
            }
            Err(e) => Err(e),
        };
        responses.push(response_entry(res.resource_type, &res.resource_name, r));
    }
    if !req.validate_only {
        super::unless_durable(
            super::durable(broker).await,
            responses.iter_mut().map(|r| &mut r.error_code),
        );
    }
    Ok(AlterConfigsResponse::default().with_responses(responses))
}
