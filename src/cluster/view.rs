//! What the request handlers ask of the cluster, answered from the metadata image on a
//! cluster node and from the node itself on a single node: partition leaders and replicas,
//! the brokers a client may connect to, the active controller, coordinators, and the
//! topic changes that go through the controller.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::controller;
use super::image::ApplyError;
use super::node::{ChangeError, config_records};
use super::placement::PlacementError;
use super::records::{ConfigResource, NO_LEADER};
use crate::Broker;
use crate::meta::topics::{Topic, TopicError};

/// One partition as Metadata and DescribeTopicPartitions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas on brokers that are fenced or gone.
    pub offline: Vec<i32>,
}

/// A broker a client can connect to, at the address of the listener it came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerView {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// Why this broker does not serve a partition's data: it is not the leader. `leader` is the
/// current leader (with its epoch and address) when there is one, for KIP-951 responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLeader {
    pub leader: Option<(i32, i32)>,
}

impl Broker {
    /// Leader, replicas and ISR of one partition.
    pub fn partition_view(&self, topic: &Topic, partition: i32) -> PartitionView {
        let local_epoch = || {
            topic
                .partition(partition)
                .map_or(0, |log| log.leader_epoch())
        };
        let Some(node) = &self.cluster else {
            let me = self.node_id();
            return PartitionView {
                leader: me,
                leader_epoch: local_epoch(),
                replicas: vec![me],
                isr: vec![me],
                offline: Vec::new(),
            };
        };
        let img = node.image();
        match img.partition(&topic.id, partition) {
            Some(p) => PartitionView {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                offline: p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|b| !img.is_live(*b))
                    .collect(),
            },
            None => PartitionView {
                leader: NO_LEADER,
                leader_epoch: local_epoch(),
                replicas: Vec::new(),
                isr: Vec::new(),
                offline: Vec::new(),
            },
        }
    }

    /// Ok when this broker leads the partition (always, on a single node).
    pub fn check_leader(&self, topic: &Topic, partition: i32) -> Result<(), NotLeader> {
        let Some(node) = &self.cluster else {
            return Ok(());
        };
        let img = node.image();
        match img.partition(&topic.id, partition) {
            Some(p) if p.leader == self.node_id() => Ok(()),
            Some(p) if p.leader != NO_LEADER => Err(NotLeader {
                leader: Some((p.leader, p.leader_epoch)),
            }),
            Some(_) => Err(NotLeader { leader: None }),
            // No such partition in the metadata: the caller answers as for any unknown
            // partition.
            None => Ok(()),
        }
    }

    /// The live brokers, with the address of `listener` (a single node: itself).
    pub fn brokers_view(&self, listener: &str) -> Vec<BrokerView> {
        let Some(node) = &self.cluster else {
            let adv = self.config.advertised_for(listener);
            return vec![BrokerView {
                id: self.node_id(),
                host: adv.advertised_host(),
                port: adv.port,
                rack: None,
            }];
        };
        let img = node.image();
        img.brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let e = b
                    .endpoints
                    .iter()
                    .find(|e| e.name == listener)
                    .or_else(|| b.endpoints.first())?;
                Some(BrokerView {
                    id: b.id,
                    host: e.host.clone(),
                    port: e.port,
                    rack: b.rack.clone(),
                })
            })
            .collect()
    }

    /// The address of broker `id` on `listener`, if it is live.
    pub fn broker_address(&self, id: i32, listener: &str) -> Option<BrokerView> {
        self.brokers_view(listener).into_iter().find(|b| b.id == id)
    }

    /// The active controller's id (this node on a single node; -1 while none is known).
    pub fn controller_id(&self) -> i32 {
        match &self.cluster {
            None => self.node_id(),
            // A dedicated controller is no broker a client could reach: name a live broker
            // (the lowest id, the same on every node), as Kafka's brokers name one; admin
            // requests sent to it go through to the controller.
            Some(node) => {
                let id = node.controller_id();
                let img = node.image();
                if img.brokers.get(&id).is_some_and(|b| !b.fenced) {
                    id
                } else {
                    img.live_brokers()
                        .into_iter()
                        .min()
                        .unwrap_or_else(|| self.node_id())
                }
            }
        }
    }

    /// The controller Metadata names: on a cluster node, this node, as a KRaft broker of Kafka
    /// names a live broker there. Admin requests sent to it go through the active controller,
    /// so clients never wait on a controller that has just died (DescribeCluster and
    /// DescribeQuorum name the active one).
    pub fn metadata_controller_id(&self) -> i32 {
        self.node_id()
    }

    /// Creates a topic through the controller and waits until it exists here.
    pub async fn create_topic_in_cluster(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        assignment: Option<Vec<Vec<i32>>>,
        configs: &BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Uuid, TopicError> {
        let node = self.cluster.as_ref().expect("a cluster node");
        let img = node.image();
        if img.topic_ids.contains_key(name) {
            return Err(TopicError::AlreadyExists(format!(
                "Topic '{name}' already exists."
            )));
        }
        let id = Uuid::new_v4();
        let configs: Vec<(String, String)> = configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let records = controller::create_topic(
            &img,
            name,
            id,
            partitions,
            replication_factor,
            assignment,
            &configs,
        )
        .map_err(placement_error)?;
        if validate_only {
            return Ok(id);
        }
        node.commit(records).await.map_err(change_error)?;
        self.wait_local(|| self.topics.get(name).is_some_and(|t| t.id == id))
            .await;
        Ok(id)
    }

    /// Grows a topic through the controller.
    pub async fn create_partitions_in_cluster(
        &self,
        name: &str,
        total: i32,
        assignment: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let node = self.cluster.as_ref().expect("a cluster node");
        let img = node.image();
        let t = img.topic_by_name(name).ok_or(TopicError::UnknownTopic)?;
        let current = t.partitions.len() as i32;
        if total <= current {
            return Err(TopicError::InvalidPartitions(if total == current {
                format!("Topic already has {current} partition(s).")
            } else {
                format!(
                    "The topic {name} currently has {current} partition(s); {total} would not be an increase."
                )
            }));
        }
        let records = controller::create_partitions(&img, t.id, total, assignment)
            .map_err(placement_error)?;
        if validate_only {
            return Ok(());
        }
        node.commit(records).await.map_err(change_error)?;
        self.wait_local(|| {
            self.topics
                .get(name)
                .is_some_and(|t| t.partitions.len() as i32 >= total)
        })
        .await;
        Ok(())
    }

    /// Deletes a topic through the controller; its id.
    pub async fn delete_topic_in_cluster(&self, name: &str) -> Result<Uuid, TopicError> {
        let node = self.cluster.as_ref().expect("a cluster node");
        let img = node.image();
        let id = *img.topic_ids.get(name).ok_or(TopicError::UnknownTopic)?;
        let records = controller::delete_topic(&img, name).ok_or(TopicError::UnknownTopic)?;
        node.commit(records).await.map_err(change_error)?;
        self.wait_local(|| self.topics.get(name).is_none_or(|t| t.id != id))
            .await;
        Ok(id)
    }

    /// Replaces the dynamic configs of a topic, a broker ("" = the cluster-wide default) or
    /// a group through the controller, and waits until this node applies them.
    pub async fn set_configs_in_cluster(
        &self,
        resource: ConfigResource,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let node = self.cluster.as_ref().expect("a cluster node");
        let img = node.image();
        let empty = BTreeMap::new();
        let old = match resource {
            ConfigResource::Topic => {
                &img.topic_by_name(name)
                    .ok_or(TopicError::UnknownTopic)?
                    .configs
            }
            ConfigResource::Broker => img.broker_configs.get(name).unwrap_or(&empty),
            ConfigResource::Group => img.group_configs.get(name).unwrap_or(&empty),
        };
        let records = config_records(resource, name, old, &configs);
        if records.is_empty() {
            return Ok(());
        }
        node.commit(records).await.map_err(change_error)?;
        let me = self.node_id().to_string();
        self.wait_local(|| match resource {
            ConfigResource::Topic => self.topics.get(name).is_some_and(|t| t.configs == configs),
            ConfigResource::Broker if name.is_empty() => self.dynamic.get().cluster == configs,
            ConfigResource::Broker if name == me => self.dynamic.get().broker == configs,
            ConfigResource::Broker => true,
            ConfigResource::Group => {
                self.dynamic.get().groups.get(name).unwrap_or(&empty) == &configs
            }
        })
        .await;
        Ok(())
    }

    /// Waits (bounded) until the local mirror shows a committed change.
    async fn wait_local(&self, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn placement_error(e: PlacementError) -> TopicError {
    match e {
        PlacementError::InvalidPartitions(_) => TopicError::InvalidPartitions(e.to_string()),
        PlacementError::InvalidReplicationFactor { .. } => {
            TopicError::InvalidReplicationFactor(e.to_string())
        }
        PlacementError::InvalidReplicaAssignment(m) => TopicError::InvalidReplicaAssignment(m),
    }
}

fn change_error(e: ChangeError) -> TopicError {
    match e {
        ChangeError::Refused(ApplyError::TopicExists(n)) => {
            TopicError::AlreadyExists(format!("Topic '{n}' already exists."))
        }
        ChangeError::Refused(ApplyError::UnknownTopic(_) | ApplyError::UnknownTopicName(_)) => {
            TopicError::UnknownTopic
        }
        ChangeError::Refused(e) => TopicError::InvalidReplicaAssignment(e.to_string()),
        ChangeError::Unavailable(m) => TopicError::Unavailable(m),
    }
}

/// Java's `String.hashCode`, which Kafka's coordinator lookup uses.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_java() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash(""), 0);
    }
}
