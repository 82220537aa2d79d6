//! The metadata log's records, modelled on Apache Kafka's KRaft metadata records
//! (`metadata/src/main/resources/common/metadata/*.json`). Each one is a fact decided by the
//! active controller; `image::apply` turns a sequence of them into the cluster's metadata image.
//!
//! They are serialized with serde (JSON in the Raft log and on the wire between controllers),
//! not in Kafka's binary record format: nothing outside the quorum reads them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// "No leader" in a partition record, as in Kafka.
pub const NO_LEADER: i32 = -1;

/// One listener of a broker, as announced at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The listener name (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Kafka's security protocol id (0 = PLAINTEXT).
    pub security_protocol: i16,
}

/// A broker process announcing itself (Kafka's `RegisterBrokerRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterBroker {
    pub broker_id: i32,
    /// Random per process start: a new incarnation is a restarted broker.
    pub incarnation_id: Uuid,
    /// Chosen by the controller; must be above the broker's previous epoch.
    pub broker_epoch: i64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// Kafka registers brokers fenced; a heartbeat that shows it caught up unfences it.
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

/// Kafka's `FenceBrokerRecord`: the broker may no longer lead or be in an ISR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceBroker {
    pub id: i32,
    /// The epoch of the registration being fenced (a stale fence is refused).
    pub epoch: i64,
}

/// Kafka's `UnfenceBrokerRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfenceBroker {
    pub id: i32,
    pub epoch: i64,
}

/// Kafka's `TopicRecord`: a topic exists, with this id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: Uuid,
}

/// Kafka's `RemoveTopicRecord`: the topic, its partitions and its configs are gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveTopic {
    pub topic_id: Uuid,
}

/// Kafka's `PartitionRecord`: a partition's full state, written when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub partition_id: i32,
    pub topic_id: Uuid,
    /// Preferred order: the first is the preferred leader.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// `NO_LEADER` (-1) when no replica may lead.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// Kafka's `PartitionChangeRecord`: a change to an existing partition. `None` means
/// "unchanged" (Kafka's null ISR and leader -2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChange {
    pub partition_id: i32,
    pub topic_id: Uuid,
    pub isr: Option<Vec<i32>>,
    /// `Some(NO_LEADER)` when the partition now has no leader.
    pub leader: Option<i32>,
    /// Reassignment (a later Kafka version's tagged field).
    pub replicas: Option<Vec<i32>>,
    /// AlterPartition's guard: the change applies only to this partition epoch (a leader
    /// changing its ISR on a state that has moved on is refused). None: unconditional.
    #[serde(default)]
    pub expected_partition_epoch: Option<i32>,
    /// A reassignment's replicas being added and removed (Kafka's `AddingReplicas` and
    /// `RemovingReplicas`); `Some(vec![])` ends it.
    #[serde(default)]
    pub adding_replicas: Option<Vec<i32>>,
    #[serde(default)]
    pub removing_replicas: Option<Vec<i32>>,
}

/// The kind of resource a `ConfigRecord` configures (Kafka's `ConfigResource.Type` ids in
/// the comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResource {
    /// 2; the resource name is the topic name.
    Topic,
    /// 4; the resource name is a broker id, or "" for the cluster-wide default.
    Broker,
    /// 32; the resource name is the group id.
    Group,
}

/// Kafka's `ConfigRecord`: sets (or, with `value: None`, deletes) one dynamic config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    pub resource_type: ConfigResource,
    pub resource_name: String,
    pub name: String,
    pub value: Option<String>,
}

/// Kafka's `ProducerIdsRecord`: the block `[first_producer_id, next_producer_id)` of
/// producer ids handed to a broker; the next block starts at `next_producer_id` or later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIds {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// The first producer id not yet handed out (Kafka's `ProducerIdsEnd`).
    pub next_producer_id: i64,
    /// The block's first id, which the image checks is not below any earlier block's end
    /// (a broker may skip ahead, past ids its data dir handed out before it joined the
    /// cluster's allocation). `None` in records that carried only the end.
    #[serde(default)]
    pub first_producer_id: Option<i64>,
}

/// The cluster's id, chosen once by the first active controller of a fresh quorum (Kafka
/// writes it at format time; Fjord has no format step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterId {
    pub cluster_id: String,
}

/// Kafka's `UserScramCredentialRecord`: a user's credential for one SCRAM mechanism (1 =
/// SCRAM-SHA-256, 2 = SCRAM-SHA-512): the salt, iteration count and derived keys, never the
/// password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserScramCredential {
    pub name: String,
    pub mechanism: i8,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// Kafka's `RemoveUserScramCredentialRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveUserScramCredential {
    pub name: String,
    pub mechanism: i8,
}

/// One metadata record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    RegisterBroker(RegisterBroker),
    FenceBroker(FenceBroker),
    UnfenceBroker(UnfenceBroker),
    Topic(TopicRecord),
    RemoveTopic(RemoveTopic),
    Partition(PartitionRecord),
    PartitionChange(PartitionChange),
    Config(ConfigRecord),
    ProducerIds(ProducerIds),
    ClusterId(ClusterId),
    UserScramCredential(UserScramCredential),
    RemoveUserScramCredential(RemoveUserScramCredential),
    /// Kafka's `AccessControlEntryRecord`: an ACL exists.
    AccessControlEntry(crate::security::acl::AclBinding),
    /// Kafka's `RemoveAccessControlEntryRecord`.
    RemoveAccessControlEntry(crate::security::acl::AclBinding),
}

/// What one Raft log entry carries: records that are applied together or not at all, as
/// Kafka's controller appends the records of one decision (a topic with its partitions, a
/// fence with the leader elections it causes) as one atomic batch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordBatch(pub Vec<MetadataRecord>);

impl From<MetadataRecord> for RecordBatch {
    fn from(r: MetadataRecord) -> Self {
        RecordBatch(vec![r])
    }
}

impl From<Vec<MetadataRecord>> for RecordBatch {
    fn from(v: Vec<MetadataRecord>) -> Self {
        RecordBatch(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json() {
        let batch = RecordBatch(vec![
            MetadataRecord::Topic(TopicRecord {
                name: "t".into(),
                topic_id: Uuid::from_u128(7),
            }),
            MetadataRecord::PartitionChange(PartitionChange {
                partition_id: 0,
                topic_id: Uuid::from_u128(7),
                isr: None,
                leader: Some(NO_LEADER),
                replicas: None,
                expected_partition_epoch: None,
                adding_replicas: None,
                removing_replicas: None,
            }),
            MetadataRecord::Config(ConfigRecord {
                resource_type: ConfigResource::Broker,
                resource_name: String::new(),
                name: "log.retention.ms".into(),
                value: None,
            }),
        ]);
        let json = serde_json::to_vec(&batch).unwrap();
        let back: RecordBatch = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, batch);
    }
}
