//! One module per Kafka API. A handler takes the decoded request, works against the domain
//! modules and returns the typed response; framing and versions live in `dispatch`.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::Broker;
use crate::meta::topics::TopicError;

pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

pub fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Kafka's error code and message for a topic-management failure.
pub fn topic_error(e: &TopicError) -> (i16, Option<StrBytes>) {
    let (err, msg) = match e {
        TopicError::InvalidName(m) => (ResponseError::InvalidTopicException, Some(m.clone())),
        TopicError::AlreadyExists(m) => (ResponseError::TopicAlreadyExists, Some(m.clone())),
        TopicError::UnknownTopic => (ResponseError::UnknownTopicOrPartition, None),
        TopicError::InvalidPartitions(m) => (ResponseError::InvalidPartitions, Some(m.clone())),
        TopicError::InvalidReplicationFactor(m) => {
            (ResponseError::InvalidReplicationFactor, Some(m.clone()))
        }
        TopicError::InvalidConfig(m) => (ResponseError::InvalidConfig, Some(m.clone())),
        TopicError::Storage(m) => (ResponseError::KafkaStorageError, Some(m.clone())),
        TopicError::InvalidReplicaAssignment(m) => {
            (ResponseError::InvalidReplicaAssignment, Some(m.clone()))
        }
        TopicError::Unavailable(m) => (ResponseError::RequestTimedOut, Some(m.clone())),
    };
    (err.code(), msg.map(str_bytes))
}

/// Acknowledged means persisted: waits until what a request changed in the store is on disk
/// before it is answered (sled's own flush, shared by concurrent callers; with flush-on-ack
/// the segment files too). Err is the Kafka error to answer instead.
pub async fn durable(broker: &Broker) -> Result<(), ResponseError> {
    let r = if broker.config.flush_on_ack() {
        broker.store.flush_all_after_write().await
    } else {
        broker.store.flush_meta().await
    };
    r.map_err(|e| {
        tracing::error!(error = %e, "flushing the store failed");
        ResponseError::KafkaStorageError
    })
}

/// [`durable`], then the state of transactional id `id` replicated to every ISR member of
/// its `__transaction_state` partition: a transaction's state is acknowledged only once it
/// survives its coordinator.
pub async fn txn_durable(broker: &Broker, id: &str) -> Result<(), ResponseError> {
    durable(broker).await?;
    broker.txn_replicated(id).await
}

/// For a response whose entries carry their own error codes: when [`durable`] failed
/// (`flushed`), every entry that had succeeded answers the storage error instead.
pub fn unless_durable<'a>(
    flushed: Result<(), ResponseError>,
    codes: impl IntoIterator<Item = &'a mut i16>,
) {
    if let Err(e) = flushed {
        for c in codes {
            if *c == 0 {
                *c = e.code();
            }
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
