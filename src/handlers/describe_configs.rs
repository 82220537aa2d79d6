//! DescribeConfigs for topics and the broker: every config with its effective value, source
//! (dynamic topic, static broker, default), type, and synonyms when asked.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::meta::configs::{
    ConfigSource, ConfigType, ResolvedConfig, TOPIC_CONFIGS, broker_value_chain,
    resolve_topic_configs, topic_def_for_broker_config,
};
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> anyhow::Result<DescribeConfigsResponse> {
    let v = ctx.api_version;
    let authz = Authz::of(broker, ctx);
    let results = req
        .resources
        .iter()
        .map(|res| {
            let mut r = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let name = res.resource_name.as_str();
            let allowed =
                authz.config_resource(AclOperation::DescribeConfigs, res.resource_type, name);
            let entries = match res.resource_type {
                _ if allowed.is_err() => Err(allowed.clone().expect_err("checked")),
                RESOURCE_TOPIC => match broker.topics.get(name) {
                    Some(t) => Ok(resolve_topic_configs(
                        &broker.config,
                        &broker.dynamic.get(),
                        &t.configs,
                    )),
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic {name} does not exist"),
                    )),
                },
                RESOURCE_BROKER => {
                    if name.is_empty() {
                        // The cluster-default resource holds only what was set dynamically for
                        // it, each value its own only synonym (a broker override of the same
                        // name does not hide it), as in Kafka.
                        Ok(cluster_defaults(broker))
                    } else if name == broker.node_id().to_string() {
                        Ok(broker_configs(broker))
                    } else {
                        Err((
                            ResponseError::InvalidRequest,
                            format!(
                                "Unexpected broker id, expected {} but received {name}",
                                broker.node_id()
                            ),
                        ))
                    }
                }
                // Group configs exist whether or not the group does, as in Kafka.
                RESOURCE_GROUP if name.is_empty() => Err((
                    ResponseError::InvalidRequest,
                    "Group name must not be empty".to_string(),
                )),
                RESOURCE_GROUP => {
                    let dynamic = broker.dynamic.get();
                    let none = Default::default();
                    Ok(crate::meta::group_configs::resolve_group_configs(
                        &broker.config,
                        &dynamic,
                        dynamic.groups.get(name).unwrap_or(&none),
                    ))
                }
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            match entries {
                Ok(list) => {
                    r.configs = list
                        .into_iter()
                        .filter(|c| {
                            // Null (and, as Kafka treats it, empty) means every key.
                            res.configuration_keys.as_ref().is_none_or(|keys| {
                                keys.is_empty() || keys.iter().any(|k| k.as_str() == c.name)
                            })
                        })
                        .map(|c| entry(c, v, req.include_synonyms, req.include_documentation))
                        .collect();
                }
                Err((e, msg)) => {
                    r.error_code = e.code();
                    r.error_message = Some(str_bytes(msg));
                }
            }
            r
        })
        .collect();
    Ok(DescribeConfigsResponse::default().with_results(results))
}

fn entry(c: ResolvedConfig, v: i16, synonyms: bool, docs: bool) -> DescribeConfigsResourceResult {
    // A secret (a key store password, a private key, JAAS users) is never shown, as in Kafka.
    let sensitive = crate::config::security::is_sensitive(c.name);
    let mut e = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(c.name))
        .with_value((!c.null_value && !sensitive).then(|| str_bytes(c.value)))
        .with_read_only(c.read_only)
        .with_config_source(c.source as i8)
        .with_is_sensitive(sensitive)
        // Null unless asked for (v3+ with include_documentation), as Kafka sends it.
        .with_documentation(None);
    if v >= 1 && synonyms {
        e.synonyms = c
            .synonyms
            .into_iter()
            .map(|(n, val, s)| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(n))
                    .with_value((!sensitive).then(|| str_bytes(val)))
                    .with_source(s as i8)
            })
            .collect();
    }
    if v >= 3 {
        e.config_type = c.config_type as i8;
        if docs {
            e.documentation = Some(str_bytes(c.doc));
        }
    }
    e
}

/// The dynamic cluster-wide defaults (the broker resource with an empty name).
fn cluster_defaults(broker: &Broker) -> Vec<ResolvedConfig> {
    let all = broker_configs(broker);
    let dynamic = broker.dynamic.get();
    dynamic
        .cluster
        .iter()
        .filter_map(|(name, value)| {
            let c = all.iter().find(|c| c.name == name.as_str())?;
            Some(ResolvedConfig {
                name: c.name,
                value: value.clone(),
                source: ConfigSource::DynamicDefaultBroker,
                config_type: c.config_type,
                doc: c.doc,
                synonyms: vec![(
                    name.clone(),
                    value.clone(),
                    ConfigSource::DynamicDefaultBroker,
                )],
                read_only: false,
                null_value: false,
            })
        })
        .collect()
}

/// The broker's settings, plus the broker-wide defaults behind every topic config, each with
/// its layers (dynamic broker, dynamic cluster default, static, default).
fn broker_configs(broker: &Broker) -> Vec<ResolvedConfig> {
    let dynamic = broker.dynamic.get();
    let mut names: Vec<(&'static str, &'static str, ConfigType, &'static str)> =
        crate::config::setting_names()
            .map(|n| {
                let d = crate::config::default_of(n).unwrap_or("");
                let t = ConfigType::of_kafka_setting(n).unwrap_or(if d == "true" || d == "false" {
                    ConfigType::Boolean
                } else if d.parse::<i64>().is_ok() {
                    ConfigType::Long
                } else {
                    ConfigType::String
                });
                (n, d, t, "")
            })
            .collect();
    for def in TOPIC_CONFIGS {
        if !names.iter().any(|(n, ..)| *n == def.broker_synonym) {
            let t = ConfigType::of_kafka_setting(def.broker_synonym).unwrap_or(def.config_type());
            names.push((def.broker_synonym, def.default, t, def.doc));
        }
    }
    // Kafka settings Fjord does not act on are listed once they have a dynamic value (their
    // Kafka default is not known here, so only the layers that are set).
    let mut unknown_default: Vec<&'static str> = Vec::new();
    for n in dynamic.broker.keys().chain(dynamic.cluster.keys()) {
        if let Some(i) = crate::config::kafka::KAFKA_BROKER_SETTINGS
            .iter()
            .position(|(k, ..)| k == n)
        {
            let k = crate::config::kafka::KAFKA_BROKER_SETTINGS[i].0;
            if !names.iter().any(|(x, ..)| *x == k) {
                let t = ConfigType::of_kafka_setting(k).unwrap_or(ConfigType::String);
                names.push((k, "", t, ""));
                unknown_default.push(k);
            }
        }
    }
    let mut out: Vec<ResolvedConfig> = names
        .into_iter()
        .map(|(name, default, config_type, doc)| {
            let mut chain = broker_value_chain(&broker.config, &dynamic, name, default);
            let (value, source) = chain[0].clone();
            // Kafka reports these unset (null), their default coming from a synonym.
            let null_default = crate::meta::configs::NULL_DEFAULT.contains(&name);
            if null_default {
                chain.retain(|(_, s)| *s != ConfigSource::Default);
            }
            if unknown_default.contains(&name) && !broker.config.values.contains_key(name) {
                chain.retain(|(_, s)| *s != ConfigSource::Default);
            }
            ResolvedConfig {
                name,
                value,
                source,
                config_type,
                doc,
                synonyms: chain
                    .into_iter()
                    .map(|(v, s)| (name.to_string(), v, s))
                    .collect(),
                // Kafka's own rule: dynamically updatable settings are not read-only.
                read_only: match crate::config::kafka_setting(name) {
                    Some((_, u)) => u == crate::config::kafka::Update::ReadOnly,
                    None => topic_def_for_broker_config(name).is_none(),
                },
                null_value: null_default && source == ConfigSource::Default,
            }
        })
        .collect();
    out.sort_by_key(|c| c.name);
    out
}
