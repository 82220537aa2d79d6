//! Metadata: brokers, cluster id, controller, and topics with their partitions' leaders and
//! leader epochs. Unknown topics are auto-created when both the broker
//! (`auto.create.topics.enable`) and the client (`allow_auto_topic_creation`) allow it.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use super::{str_bytes, topic_error, topic_name};
use crate::Broker;
use crate::connection::RequestContext;
use crate::meta::topics::{Topic, TopicError, validate_name};
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authz::Authz;

pub fn broker_entries(broker: &Broker, ctx: &RequestContext) -> Vec<MetadataResponseBroker> {
    broker
        .brokers_view(&ctx.listener)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(str_bytes(b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.map(str_bytes))
        })
        .collect()
}

pub fn partitions_of(broker: &Broker, t: &Topic) -> Vec<MetadataResponsePartition> {
    let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect::<Vec<_>>();
    (0..t.partitions.len() as i32)
        .map(|i| {
            let p = broker.partition_view(t, i);
            let error = if p.leader < 0 {
                ResponseError::LeaderNotAvailable.code()
            } else {
                0
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(i)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(p.replicas))
                .with_isr_nodes(ids(p.isr))
                .with_offline_replicas(ids(p.offline))
        })
        .collect()
}

fn topic_entry(broker: &Broker, t: &Topic, ops: Option<&Authz>) -> MetadataResponseTopic {
    let mut e = MetadataResponseTopic::default()
        .with_name(Some(topic_name(&t.name)))
        .with_topic_id(t.id)
        .with_is_internal(t.is_internal())
        .with_partitions(partitions_of(broker, t));
    if let Some(authz) = ops {
        e.topic_authorized_operations = authz.operations(ResourceType::Topic, &t.name);
    }
    e
}

fn denied_entry(name: Option<&str>, id: uuid::Uuid) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(topic_name))
        .with_topic_id(id)
        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
}

/// Looks a topic up, creating it when auto-creation is allowed (on the blocking pool:
/// opening partitions is disk work, and may wait for another topic change to finish).
pub async fn get_or_create(
    broker: &Broker,
    name: &str,
    allow_auto: bool,
) -> Result<Arc<Topic>, TopicError> {
    if let Some(t) = broker.topics.get(name) {
        return Ok(t);
    }
    validate_name(name)?;
    if !(allow_auto && broker.config.auto_create_topics_enable) {
        return Err(TopicError::UnknownTopic);
    }
    let n = broker.config.num_partitions;
    let created = if broker.cluster.is_some() {
        let rf = broker.config.default_replication_factor as i32;
        match broker
            .create_topic_in_cluster(name, n, rf, None, &BTreeMap::new(), false)
            .await
        {
            Ok(_) => broker.topics.get(name).ok_or(TopicError::UnknownTopic),
            Err(e) => Err(e),
        }
    } else {
        let (topics, owned) = (broker.topics.clone(), name.to_string());
        tokio::task::spawn_blocking(move || topics.create(&owned, n, BTreeMap::new(), false))
            .await
            .unwrap_or_else(|e| Err(TopicError::Storage(e.to_string())))
    };
    match created {
        Ok(t) => {
            tracing::info!(
                topic = name,
                partitions = t.partitions.len(),
                "auto-created topic"
            );
            Ok(t)
        }
        // Lost a race with another creator: use theirs.
        Err(TopicError::AlreadyExists(_)) => {
            broker.topics.get(name).ok_or(TopicError::UnknownTopic)
        }
        Err(e) => Err(e),
    }
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: MetadataRequest,
) -> anyhow::Result<MetadataResponse> {
    let v = ctx.api_version;
    // Authorization: all-topics requests list only the topics the principal may DESCRIBE;
    // a named topic it may not gets TOPIC_AUTHORIZATION_FAILED; auto-creation needs CREATE
    // on the cluster or the topic.
    let authz = Authz::of(broker, ctx);
    let ops = (v >= 8 && req.include_topic_authorized_operations).then_some(&authz);
    let visible =
        |t: &&Arc<Topic>| authz.sees(AclOperation::Describe, ResourceType::Topic, &t.name);
    // v0 has no null array: an empty list means "all topics". v4+ lets the client opt out of
    // auto-creation; earlier versions always allowed it.
    let allow_auto = v < 4 || req.allow_auto_topic_creation;
    let topics = match &req.topics {
        None => broker
            .topics
            .list()
            .iter()
            .filter(visible)
            .map(|t| topic_entry(broker, t, ops))
            .collect(),
        Some(list) if list.is_empty() && v == 0 => broker
            .topics
            .list()
            .iter()
            .filter(visible)
            .map(|t| topic_entry(broker, t, ops))
            .collect(),
        Some(list) => {
            let mut entries = Vec::with_capacity(list.len());
            for rt in list {
                entries.push(match &rt.name {
                    Some(name) if !authz.topic(AclOperation::Describe, name.as_str()) => {
                        denied_entry(Some(name.as_str()), rt.topic_id)
                    }
                    Some(name) => {
                        let exists = broker.topics.get(name.as_str()).is_some();
                        let may_create = exists
                            || !(allow_auto && broker.config.auto_create_topics_enable)
                            || authz.cluster(AclOperation::Create)
                            || authz.topic(AclOperation::Create, name.as_str());
                        if !may_create {
                            denied_entry(Some(name.as_str()), rt.topic_id)
                        } else {
                            match get_or_create(broker, name.as_str(), allow_auto).await {
                                Ok(t) => topic_entry(broker, &t, ops),
                                Err(e) => MetadataResponseTopic::default()
                                    .with_name(Some(name.clone()))
                                    .with_error_code(topic_error(&e).0),
                            }
                        }
                    }
                    None => match broker.topics.get_by_id(rt.topic_id) {
                        Some(t) if !authz.topic(AclOperation::Describe, &t.name) => {
                            denied_entry(None, rt.topic_id)
                        }
                        Some(t) => topic_entry(broker, &t, ops),
                        None => MetadataResponseTopic::default()
                            .with_topic_id(rt.topic_id)
                            .with_error_code(ResponseError::UnknownTopicId.code()),
                    },
                });
            }
            entries
        }
    };
    let mut resp = MetadataResponse::default()
        .with_brokers(broker_entries(broker, ctx))
        .with_cluster_id(Some(str_bytes(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(broker.metadata_controller_id()))
        .with_topics(topics);
    if (8..=10).contains(&v) && req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations =
            authz.operations(ResourceType::Cluster, crate::security::acl::CLUSTER_NAME);
    }
    Ok(resp)
}
