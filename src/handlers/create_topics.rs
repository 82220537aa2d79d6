//! CreateTopics: Kafka's name rules, partition counts, replication factor (1, or -1 for the
//! broker default), per-topic configs validated against the topic config table, and
//! validate_only. Results carry the topic id and, from v5, the effective configs.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{str_bytes, topic_error};
use crate::Broker;
use crate::connection::RequestContext;
use crate::meta::configs::resolve_topic_configs;
use crate::meta::topics::TopicError;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> anyhow::Result<CreateTopicsResponse> {
    let mut results = Vec::with_capacity(req.topics.len());
    let mut seen = std::collections::HashSet::new();
    for t in &req.topics {
        let name = t.name.as_str();
        // kafka-protocol defaults the message to ""; Kafka sends null on success.
        let mut result = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_message(None);
        if !seen.insert(name.to_string()) {
            result.error_code = kafka_protocol::ResponseError::InvalidRequest.code();
            result.error_message =
                Some(str_bytes(format!("Duplicate topic name {name} in request")));
            results.push(result);
            continue;
        }
        match create_one(broker, t, req.validate_only).await {
            Ok((topic, configs, partitions)) => {
                result.topic_id = topic.id;
                result.num_partitions = partitions;
                result.replication_factor = 1;
                if ctx.api_version >= 5 {
                    let mut all =
                        resolve_topic_configs(&broker.config, &broker.dynamic.get(), &configs);
                    // In name order, as Kafka lists them.
                    all.sort_by_key(|c| c.name);
                    result.configs = Some(
                        all.into_iter()
                            .map(|c| {
                                CreatableTopicConfigs::default()
                                    .with_name(str_bytes(c.name))
                                    .with_value(Some(str_bytes(c.value)))
                                    .with_config_source(c.source as i8)
                            })
                            .collect(),
                    );
                }
                if !req.validate_only {
                    tracing::info!(
                        topic = name,
                        partitions = topic.partitions.len(),
                        "created topic"
                    );
                }
            }
            Err(e) => {
                let (code, msg) = topic_error(&e);
                result.error_code = code;
                result.error_message = msg;
                // Kafka reports -1 for the counts of a topic it did not create.
                result.num_partitions = -1;
                result.replication_factor = -1;
            }
        }
        results.push(result);
    }
    if !req.validate_only {
        super::unless_durable(
            super::durable(broker).await,
            results.iter_mut().map(|r| &mut r.error_code),
        );
    }
    Ok(CreateTopicsResponse::default().with_topics(results))
}

type Created = (
    std::sync::Arc<crate::meta::topics::Topic>,
    BTreeMap<String, String>,
    i32,
);

async fn create_one(
    broker: &Broker,
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    validate_only: bool,
) -> Result<Created, TopicError> {
    crate::meta::topics::validate_name(t.name.as_str())?;
    let partitions = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(TopicError::InvalidPartitions(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        for a in &t.assignments {
            if a.broker_ids.len() != 1 || a.broker_ids[0].0 != broker.node_id() {
                return Err(TopicError::InvalidReplicationFactor(format!(
                    "Replica assignment for partition {} must name exactly broker {}",
                    a.partition_index,
                    broker.node_id()
                )));
            }
        }
        t.assignments.len() as i32
    } else if t.num_partitions == -1 {
        broker.config.num_partitions
    } else {
        t.num_partitions
    };
    let rf = if t.replication_factor == -1 {
        broker.config.default_replication_factor
    } else {
        t.replication_factor
    };
    if rf != 1 && t.assignments.is_empty() {
        return Err(TopicError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered or some brokers have all their log directories cordoned."
        )));
    }
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let value = c.value.as_ref().map(|v| v.as_str().to_string());
        crate::meta::configs::validate_topic_config(c.name.as_str(), value.as_deref())
            .map_err(TopicError::InvalidConfig)?;
        configs.insert(c.name.as_str().to_string(), value.unwrap_or_default());
    }
    // Opening the partitions (sled trees, segment directories) is blocking work, up to
    // thousands of times: on the blocking pool.
    let (topics, name, cfg) = (
        broker.topics.clone(),
        t.name.as_str().to_string(),
        configs.clone(),
    );
    let topic =
        tokio::task::spawn_blocking(move || topics.create(&name, partitions, cfg, validate_only))
            .await
            .map_err(|e| TopicError::Storage(e.to_string()))??;
    Ok((topic, configs, partitions))
}
