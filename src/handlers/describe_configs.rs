//! DescribeConfigs for topics and the broker: every config with its effective value, source
//! (dynamic topic, static broker, default), type, and synonyms when asked.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use crate::Broker;
use crate::config::Source;
use crate::connection::RequestContext;
use crate::meta::configs::{
    ConfigSource, ConfigType, ResolvedConfig, TOPIC_CONFIGS, resolve_topic_configs,
};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> anyhow::Result<DescribeConfigsResponse> {
    let v = ctx.api_version;
    let results = req
        .resources
        .iter()
        .map(|res| {
            let mut r = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let name = res.resource_name.as_str();
            let entries = match res.resource_type {
                RESOURCE_TOPIC => match broker.topics.get(name) {
                    Some(t) => Ok(resolve_topic_configs(&broker.config, &t.configs)),
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic {name} does not exist"),
                    )),
                },
                RESOURCE_BROKER => {
                    if name.is_empty() || name == broker.node_id().to_string() {
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
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            match entries {
                Ok(list) => {
                    let read_only = res.resource_type == RESOURCE_BROKER;
                    r.configs = list
                        .into_iter()
                        .filter(|c| {
                            // Null (and, as Kafka treats it, empty) means every key.
                            res.configuration_keys.as_ref().is_none_or(|keys| {
                                keys.is_empty() || keys.iter().any(|k| k.as_str() == c.name)
                            })
                        })
                        .map(|c| {
                            entry(
                                c,
                                read_only,
                                v,
                                req.include_synonyms,
                                req.include_documentation,
                            )
                        })
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

fn entry(
    c: ResolvedConfig,
    read_only: bool,
    v: i16,
    synonyms: bool,
    docs: bool,
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(c.name))
        .with_value(Some(str_bytes(c.value)))
        .with_read_only(read_only)
        .with_config_source(c.source as i8)
        .with_is_sensitive(false);
    if v >= 1 && synonyms {
        e.synonyms = c
            .synonyms
            .into_iter()
            .map(|(n, val, s)| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(n))
                    .with_value(Some(str_bytes(val)))
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

/// The broker's settings, plus the broker-wide defaults behind every topic config.
fn broker_configs(broker: &Broker) -> Vec<ResolvedConfig> {
    let mut out: Vec<ResolvedConfig> = broker
        .config
        .values
        .iter()
        .map(|(k, (val, src))| {
            let source = if *src == Source::Default {
                ConfigSource::Default
            } else {
                ConfigSource::StaticBroker
            };
            let name: &'static str = crate::config::setting_names()
                .find(|n| n == k)
                .unwrap_or("unknown");
            let config_type = if val == "true" || val == "false" {
                ConfigType::Boolean
            } else if val.parse::<i64>().is_ok() {
                ConfigType::Long
            } else {
                ConfigType::String
            };
            let mut synonyms = vec![(name.to_string(), val.clone(), source)];
            if source != ConfigSource::Default
                && let Some(d) = crate::config::default_of(name)
            {
                synonyms.push((name.to_string(), d.to_string(), ConfigSource::Default));
            }
            ResolvedConfig {
                name,
                value: val.clone(),
                source,
                config_type,
                doc: "",
                synonyms,
            }
        })
        .collect();
    for def in TOPIC_CONFIGS {
        if out.iter().any(|c| c.name == def.broker_synonym) {
            continue;
        }
        out.push(ResolvedConfig {
            name: def.broker_synonym,
            value: def.default.to_string(),
            source: ConfigSource::Default,
            config_type: def.config_type(),
            doc: def.doc,
            synonyms: vec![(
                def.broker_synonym.to_string(),
                def.default.to_string(),
                ConfigSource::Default,
            )],
        });
    }
    out.sort_by_key(|c| c.name);
    out
}
