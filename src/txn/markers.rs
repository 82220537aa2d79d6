//! The transaction coordinator's requests to other brokers, as Kafka's coordinator and
//! partition leaders send them: WriteTxnMarkers to a partition's leader, and the leader's
//! AddPartitionsToTxn (v5, the broker-to-broker form of KIP-890) to the coordinator to
//! verify (or implicitly add) a transactional write. Both block the calling thread (they run
//! on the blocking pool, where the coordinator's state machine runs) for at most
//! [`TIMEOUT`].

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::Broker;
use crate::replication::client::Client;

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `f` to completion from a blocking-pool thread.
pub fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("no runtime to reach another broker from"))?;
    rt.block_on(f)
}

async fn connect(broker: &Broker, id: i32, what: &str) -> anyhow::Result<Client> {
    let addr = broker
        .inter_broker_address(id)
        .ok_or_else(|| anyhow::anyhow!("broker {id} has no address"))?;
    let connector = match &broker.cluster {
        Some(node) => node.inter_broker.clone(),
        None => std::sync::Arc::new(crate::security::connector::Connector::plaintext()),
    };
    Client::connect(
        &connector,
        &addr,
        format!("fjord-txn-{what}-{}", broker.node_id()),
        TIMEOUT,
    )
    .await
}

/// Writes a COMMIT/ABORT marker on broker `leader`, the leader of the partition.
pub fn send(
    broker: &Broker,
    leader: i32,
    topic: &str,
    partition: i32,
    producer_id: i64,
    epoch: i16,
    commit: bool,
) -> anyhow::Result<()> {
    let req = WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(0)
            .with_topics(vec![
                WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_indexes(vec![partition]),
            ]),
    ]);
    let resp = block_on(async {
        let mut c = connect(broker, leader, "markers").await?;
        c.call(1, &req, TIMEOUT).await
    })?;
    let code = resp
        .markers
        .iter()
        .flat_map(|m| m.topics.iter())
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.error_code)
        .find(|c| *c != 0)
        .unwrap_or(0);
    if code != 0 {
        anyhow::bail!(
            "broker {leader} refused the marker for {topic}-{partition}: {:?}",
            ResponseError::try_from_code(code)
        );
    }
    Ok(())
}

/// Asks coordinator `coordinator` whether `topic`-`partition` is part of the open
/// transaction of `id` (`implicit_add`: adds it, KIP-890 part 2). The coordinator's error
/// on failure.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    broker: &Broker,
    coordinator: i32,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topic: &str,
    partition: i32,
    implicit_add: bool,
) -> Result<(), ResponseError> {
    let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(id.to_string())))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_verify_only(!implicit_add)
            .with_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![partition]),
            ]),
    ]);
    let resp = block_on(async {
        let mut c = connect(broker, coordinator, "verify").await?;
        c.call(5, &req, TIMEOUT).await
    })
    .map_err(|e| {
        tracing::debug!(coordinator, error = %e, "cannot reach the transaction coordinator");
        ResponseError::CoordinatorNotAvailable
    })?;
    if resp.error_code != 0 {
        return Err(ResponseError::try_from_code(resp.error_code)
            .unwrap_or(ResponseError::UnknownServerError));
    }
    let code = resp
        .results_by_transaction
        .iter()
        .flat_map(|r| r.topic_results.iter())
        .flat_map(|t| t.results_by_partition.iter())
        .map(|p| p.partition_error_code)
        .find(|c| *c != 0)
        .unwrap_or(0);
    match code {
        0 => Ok(()),
        c => Err(ResponseError::try_from_code(c).unwrap_or(ResponseError::UnknownServerError)),
    }
}
