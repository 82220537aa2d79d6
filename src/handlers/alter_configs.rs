//! AlterConfigs (replace a resource's whole set of dynamic configs) and, sharing the logic,
//! IncrementalAlterConfigs (SET / DELETE / APPEND / SUBTRACT per key), for topics and for
//! broker-wide defaults (this broker by id, or the cluster default with an empty name).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::meta::configs::{AlterOp, apply_changes, topic_config_def, topic_def_for_broker_config};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// Applies one resource's changes; `replace` drops every override not named (AlterConfigs).
pub fn alter_resource(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    changes: &[(String, AlterOp)],
    replace: bool,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
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
                broker
                    .topics
                    .set_configs(name, new)
                    .map_err(|e| (ResponseError::KafkaStorageError, format!("{e:?}")))?;
                tracing::info!(topic = name, "topic configs changed");
            }
            Ok(())
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
            let cfg = &broker.config;
            let snapshot = all.clone();
            let new = apply_changes(&base, changes, topic_def_for_broker_config, |n| {
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
            })
            .map_err(invalid)?;
            if !validate_only {
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
            Ok(())
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
    _ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> anyhow::Result<AlterConfigsResponse> {
    let mut responses: Vec<AlterConfigsResourceResponse> = req
        .resources
        .iter()
        .map(|res| {
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
            let r = changes.and_then(|ch| {
                alter_resource(
                    broker,
                    res.resource_type,
                    res.resource_name.as_str(),
                    &ch,
                    true,
                    req.validate_only,
                )
            });
            response_entry(res.resource_type, &res.resource_name, r)
        })
        .collect();
    if !req.validate_only {
        super::unless_durable(
            super::durable(broker).await,
            responses.iter_mut().map(|r| &mut r.error_code),
        );
    }
    Ok(AlterConfigsResponse::default().with_responses(responses))
}
