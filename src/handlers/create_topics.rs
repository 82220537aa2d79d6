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
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> anyhow::Result<CreateTopicsResponse> {
    let mut results = Vec::with_capacity(req.topics.len());
    let mut seen = std::collections::HashSet::new();
    let authz = Authz::of(broker, ctx);
    for t in &req.topics {
        let name = t.name.as_str();
        // kafka-protocol defaults the message to ""; Kafka sends null on success.
        let mut result = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_message(None);
        // CREATE on the cluster or on the topic.
        if !authz.cluster_sees(AclOperation::Create) && !authz.topic(AclOperation::Create, name) {
            result.error_code = kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
            result.error_message = Some(str_bytes("Authorization failed."));
            result.num_partitions = -1;
            result.replication_factor = -1;
            results.push(result);
            continue;
        }
        if !seen.insert(name.to_string()) {
            result.error_code = kafka_protocol::ResponseError::InvalidRequest.code();
            result.error_message =
                Some(str_bytes(format!("Duplicate topic name {name} in request")));
            results.push(result);
            continue;
        }
        match create_one(broker, t, req.validate_only).await {
            Ok((topic, configs, partitions, rf)) => {
                result.topic_id = topic.id;
                result.num_partitions = partitions;
                result.replication_factor = rf;
                // As Kafka: the configs and counts only for a principal that may describe
                // the topic's configs; otherwise the config error says why they are missing.
                if ctx.api_version >= 5
                    && !authz.sees(AclOperation::DescribeConfigs, ResourceType::Topic, name)
                {
                    result.num_partitions = -1;
                    result.replication_factor = -1;
                    result.configs = Some(Vec::new());
                    result.topic_config_error_code =
                        kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
                } else if ctx.api_version >= 5 {
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
    i16,
);

async fn create_one(
    broker: &Broker,
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    validate_only: bool,
) -> Result<Created, TopicError> {
    crate::meta::topics::validate_name(t.name.as_str())?;
    let cluster = broker.cluster.is_some();
    let mut assignment: Option<Vec<Vec<i32>>> = None;
    let partitions = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(TopicError::InvalidPartitions(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        let mut rows: Vec<_> = t.assignments.iter().collect();
        rows.sort_by_key(|a| a.partition_index);
        for (i, a) in rows.iter().enumerate() {
            if a.partition_index != i as i32 {
                return Err(TopicError::InvalidReplicaAssignment(
                    "Partitions should be numbered consecutively from 0.".into(),
                ));
            }
            if !cluster && (a.broker_ids.len() != 1 || a.broker_ids[0].0 != broker.node_id()) {
                return Err(TopicError::InvalidReplicationFactor(format!(
                    "Replica assignment for partition {} must name exactly broker {}",
                    a.partition_index,
                    broker.node_id()
                )));
            }
        }
        assignment = Some(
            rows.iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect(),
        );
        t.assignments.len() as i32
    } else if t.num_partitions == -1 {
        broker.config.num_partitions
    } else {
        t.num_partitions
    };
    let rf = match (&assignment, t.replication_factor) {
        (Some(a), _) => a.first().map_or(1, |r| r.len() as i16),
        (None, -1) => broker.config.default_replication_factor,
        (None, rf) => rf,
    };
    if rf != 1 && !cluster {
        return Err(TopicError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered or some brokers have all their log directories cordoned."
        )));
    }
    if rf < 1 {
        return Err(TopicError::InvalidReplicationFactor(
            "Replication factor must be larger than 0, or -1 to use the default value.".into(),
        ));
    }
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let value = c.value.as_ref().map(|v| v.as_str().to_string());
        crate::meta::configs::validate_topic_config(c.name.as_str(), value.as_deref())
            .map_err(TopicError::InvalidConfig)?;
        configs.insert(c.name.as_str().to_string(), value.unwrap_or_default());
    }
    // Opening the partitions (sled trees, segment directories) is blocking work, up to
    // thousands of times: on the blocking pool. In a cluster the local registry only
    // validates here (name collisions, counts); the controller decides and every node's
    // mirror creates the topic.
    let (topics, name, cfg) = (
        broker.topics.clone(),
        t.name.as_str().to_string(),
        configs.clone(),
    );
    let local_only = validate_only || cluster;
    let topic =
        tokio::task::spawn_blocking(move || topics.create(&name, partitions, cfg, local_only))
            .await
            .map_err(|e| TopicError::Storage(e.to_string()))??;
    if !cluster {
        return Ok((topic, configs, partitions, rf));
    }
    let id = broker
        .create_topic_in_cluster(
            t.name.as_str(),
            partitions,
            rf as i32,
            assignment,
            &configs,
            validate_only,
        )
        .await?;
    let topic = match broker.topics.get(t.name.as_str()) {
        Some(local) if local.id == id => local,
        _ => topic,
    };
    Ok((topic, configs, partitions, rf))
}
