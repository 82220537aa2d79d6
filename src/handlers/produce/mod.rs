//! Produce: validate each partition's record batch (v2 header, CRC-32C, size), check the
//! idempotent producer's sequence, assign offsets and store the bytes as received.
//! Errors are per partition; one bad partition never fails the others.

pub mod legacy;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};

use super::{now_ms, str_bytes};
use crate::Broker;
use crate::connection::RequestContext;
use crate::log::AppendError;
use crate::log::batch::{self, BatchError};
use crate::log::validate;
use crate::meta::topics::Topic;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ProduceRequest,
) -> anyhow::Result<ProduceResponse> {
    let v = ctx.api_version;
    // Authorization (Kafka's order): the transactional id for the whole request, then WRITE
    // on each topic. (An idempotent producer's right was checked at InitProducerId.)
    let authz = Authz::of(broker, ctx);
    let request_denied = match &req.transactional_id {
        Some(tid) if !authz.transactional_id(AclOperation::Write, tid.as_str()) => {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        }
        _ => None,
    };
    let mut any_appended = false;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    // Leaders named in NOT_LEADER_OR_FOLLOWER answers, with their addresses (KIP-951, v10+).
    let mut leaders = std::collections::BTreeSet::new();
    // acks=all appends on replicated partitions, answered once the ISR has them:
    // (topic response, partition response, topic, partition, offset the high watermark
    // must pass, min.insync.replicas, the leader epoch of the append).
    let mut waits: Vec<PendingAck> = Vec::new();
    for td in &req.topic_data {
        // v13+ names topics by id only (KIP-516).
        let topic = if v >= 13 {
            broker.topics.get_by_id(td.topic_id)
        } else {
            broker.topics.get(td.name.as_str())
        };
        let missing = if v >= 13 {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        let mut tr = TopicProduceResponse::default()
            .with_name(td.name.clone())
            .with_topic_id(td.topic_id);
        let denied = request_denied.or_else(|| {
            let name = topic.as_ref().map_or(td.name.as_str(), |t| t.name.as_str());
            (topic.is_some() || v < 13)
                .then(|| !authz.topic(AclOperation::Write, name))
                .filter(|d| *d)
                .map(|_| ResponseError::TopicAuthorizationFailed)
        });
        for pd in &td.partition_data {
            let mut pr = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let outcome = if let Some(e) = denied {
                Err(Refusal::of(e, None))
            } else if !matches!(req.acks, -1..=1) {
                Err(Refusal::of(ResponseError::InvalidRequiredAcks, None))
            } else {
                let not_leader = topic
                    .as_ref()
                    .and_then(|t| broker.check_leader(t, pd.index).err());
                match &topic {
                    None => Err(Refusal::of(missing, None)),
                    // The coordinators' own topics: what a client wrote there would be
                    // replayed as group or transaction state.
                    Some(t)
                        if t.name == crate::group::journal::TOPIC
                            || t.name == crate::txn::coordinator::TOPIC =>
                    {
                        Err(Refusal::new(
                            ResponseError::InvalidTopicException,
                            format!("Cannot append to internal topic {}", t.name),
                        ))
                    }
                    Some(_) if not_leader.is_some() => {
                        if let Some((id, epoch)) = not_leader.and_then(|n| n.leader)
                            && v >= 10
                        {
                            pr.current_leader = LeaderIdAndEpoch::default()
                                .with_leader_id(BrokerId(id))
                                .with_leader_epoch(epoch);
                            leaders.insert(id);
                        }
                        Err(Refusal::of(ResponseError::NotLeaderOrFollower, None))
                    }
                    // The append writes to the segment file and may roll it (directory
                    // fsync) or checkpoint to sled: on the blocking pool, not an async
                    // worker. Awaited before the next partition, and a connection handles
                    // one request at a time, so an idempotent producer's pipelined batches
                    // are still appended in the order sent.
                    // acks=all needs min.insync.replicas in the ISR before the append.
                    Some(t)
                        if req.acks == -1 && isr_size(broker, t, pd.index) < min_isr(broker, t) =>
                    {
                        Err(Refusal::new(
                            ResponseError::NotEnoughReplicas,
                            format!(
                                "The size of the current ISR {} is insufficient to satisfy the min.isr requirement of {} for partition {}-{}",
                                isr_size(broker, t, pd.index),
                                min_isr(broker, t),
                                t.name,
                                pd.index
                            ),
                        ))
                    }
                    Some(t) => {
                        let (broker, t, records) = (broker.arc(), t.clone(), pd.records.clone());
                        let (index, tid) = (pd.index, req.transactional_id.clone());
                        tokio::task::spawn_blocking(move || {
                            append_partition(
                                &broker,
                                &t,
                                index,
                                records.as_ref(),
                                tid.as_ref().map(|t| t.as_str()),
                                v,
                            )
                        })
                        .await?
                    }
                }
            };
            match outcome {
                Ok((info, log_append_time)) => {
                    if req.acks == -1
                        && broker.replication.is_some()
                        && let Some(t) = &topic
                    {
                        waits.push((
                            responses.len(),
                            tr.partition_responses.len(),
                            t.clone(),
                            pd.index,
                            info.last_offset + 1,
                            min_isr(broker, t),
                            info.leader_epoch,
                        ));
                    }
                    pr.base_offset = info.base_offset;
                    pr.log_start_offset = info.log_start_offset;
                    pr.log_append_time_ms = log_append_time.unwrap_or(-1);
                    any_appended |= !info.duplicate;
                }
                Err(refusal) => {
                    pr.error_code = refusal.error.code();
                    pr.log_start_offset = refusal.log_start;
                    if v >= 8 {
                        pr.record_errors = refusal
                            .record_errors
                            .into_iter()
                            .map(|(i, m)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(i)
                                    .with_batch_index_error_message(Some(str_bytes(m)))
                            })
                            .collect();
                        pr.error_message = refusal.message.map(str_bytes);
                    }
                }
            }
            tr.partition_responses.push(pr);
        }
        responses.push(tr);
    }
    // Durable acknowledgement, when configured: one flush covers every partition written by
    // this request, and concurrent requests share sled's flush.
    if any_appended && req.acks != 0 && broker.config.flush_on_ack() {
        broker.store.flush().await?;
    }
    // acks=all: each partition's answer waits until its high watermark passes the batch
    // (every ISR member has it), bounded by the request's timeout.
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(req.timeout_ms.max(0) as u64);
    for (ti, pi, t, index, target, min, epoch) in waits {
        if let Err(e) = await_isr(broker, &t, index, target, min, epoch, deadline).await {
            let pr = &mut responses[ti].partition_responses[pi];
            pr.error_code = e.code();
            pr.base_offset = -1;
            pr.log_append_time_ms = -1;
        }
    }
    let node_endpoints = leaders
        .into_iter()
        .filter_map(|id| broker.broker_address(id, &ctx.listener))
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.id))
                .with_host(str_bytes(b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.map(str_bytes))
        })
        .collect();
    Ok(ProduceResponse::default()
        .with_responses(responses)
        .with_node_endpoints(node_endpoints))
}

/// The partition's ISR size as the metadata has it (1 on a single node).
fn isr_size(broker: &Broker, topic: &Topic, partition: i32) -> usize {
    broker.partition_view(topic, partition).isr.len()
}

/// The topic's `min.insync.replicas` (the broker's default when it has none).
fn min_isr(broker: &Broker, topic: &Topic) -> usize {
    broker
        .topic_config(topic, "min.insync.replicas")
        .parse::<usize>()
        .unwrap_or(1)
        .max(1)
}

/// Waits until the partition's high watermark reaches `target`: every ISR member holds the
/// batch. NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrinks below `min` meanwhile,
/// NOT_LEADER_OR_FOLLOWER when this broker stops leading in `epoch` (the append's),
/// REQUEST_TIMED_OUT at `deadline`.
async fn await_isr(
    broker: &Broker,
    topic: &Topic,
    partition: i32,
    target: i64,
    min: usize,
    epoch: i32,
    deadline: tokio::time::Instant,
) -> Result<(), ResponseError> {
    let Some(log) = topic.partition(partition) else {
        return Err(ResponseError::UnknownTopicOrPartition);
    };
    let mut hw = log.watch_high_watermark();
    loop {
        // The high watermark passed the batch while this replica still led in the epoch it
        // took it in: every ISR member of that leadership has it. (Once the leadership moved,
        // the batch may have been truncated away, whatever the high watermark says now.)
        if *hw.borrow_and_update() >= target {
            return if log.leads_in(epoch) {
                Ok(())
            } else {
                Err(ResponseError::NotLeaderOrFollower)
            };
        }
        if !log.leads_in(epoch) {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        if broker.check_leader(topic, partition).is_err() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        if isr_size(broker, topic, partition) < min {
            return Err(ResponseError::NotEnoughReplicasAfterAppend);
        }
        tokio::select! {
            r = hw.changed() => if r.is_err() { return Err(ResponseError::NotLeaderOrFollower) },
            // The ISR and the leadership change without a high watermark move.
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            _ = tokio::time::sleep_until(deadline) => return Err(ResponseError::RequestTimedOut),
        }
    }
}

/// An acks=all append waiting for the ISR: (topic response, partition response, topic,
/// partition, offset the high watermark must pass, min.insync.replicas, leader epoch).
type PendingAck = (usize, usize, std::sync::Arc<Topic>, i32, i64, usize, i32);

/// A transactional write that cannot join its transaction: Produce v11+ clients understand
/// TRANSACTION_ABORTABLE (KIP-890), older ones get INVALID_TXN_STATE.
fn txn_state_error(version: i16) -> ResponseError {
    if version >= 11 {
        ResponseError::TransactionAbortable
    } else {
        ResponseError::InvalidTxnState
    }
}

type Outcome = Result<(crate::log::AppendInfo, Option<i64>), Refusal>;

/// Why a partition's batch was not appended: the error code, its message, and for record
/// validation errors the index and message of every refused record (KIP-467).
struct Refusal {
    error: ResponseError,
    message: Option<String>,
    record_errors: Vec<(i32, String)>,
    /// The partition's log start offset, for refusals made while appending (validation,
    /// sequence and epoch checks), as Kafka reports them; -1 otherwise.
    log_start: i64,
}

impl Refusal {
    fn of(error: ResponseError, message: Option<String>) -> Self {
        Refusal {
            error,
            message,
            record_errors: Vec::new(),
            log_start: -1,
        }
    }

    fn at(mut self, log: &crate::log::PartitionLog) -> Self {
        self.log_start = log.log_start_offset();
        self
    }

    fn new(error: ResponseError, message: String) -> Self {
        Self::of(error, Some(message))
    }
}

fn append_partition(
    broker: &Broker,
    topic: &Topic,
    index: i32,
    records: Option<&bytes::Bytes>,
    transactional_id: Option<&str>,
    version: i16,
) -> Outcome {
    let Some(log) = topic.partition(index) else {
        return Err(Refusal::of(ResponseError::UnknownTopicOrPartition, None));
    };
    let Some(records) = records else {
        return Err(Refusal::of(
            ResponseError::CorruptMessage,
            Some("null record set".into()),
        ));
    };
    let max: usize = broker
        .topic_config(topic, "max.message.bytes")
        .parse()
        .unwrap_or(broker.config.message_max_bytes as usize);
    let batches = batch::split_and_validate(records, max).map_err(|e| {
        tracing::debug!(topic = %topic.name, partition = index, error = ?e, "rejected record batch");
        let (code, message) = match e {
            BatchError::Corrupt(m) => (ResponseError::CorruptMessage, Some(m)),
            BatchError::Incomplete(m) => (ResponseError::InvalidRecord, Some(m)),
            BatchError::UnsupportedMagic(_) => (
                ResponseError::InvalidRecord,
                Some(format!(
                    "Produce requests with version {version} are only allowed to contain record batches with magic version 2"
                )),
            ),
            BatchError::TooLarge { size, max } => (
                ResponseError::MessageTooLarge,
                Some(format!("record batch of {size} bytes exceeds the limit of {max}")),
            ),
        };
        Refusal::of(code, message)
    })?;
    if batches.len() != 1 {
        return Err(Refusal::of(
            ResponseError::InvalidRecord,
            Some(
                "Produce requests with version 3 or above must contain exactly one record batch"
                    .into(),
            ),
        ));
    }
    let h = batch::BatchHeader::parse(&batches[0]).expect("validated");
    // Transactional data must come from the current instance of a transactional id and go
    // to a partition of its open transaction. Produce v12+ clients (KIP-890) do not send
    // AddPartitionsToTxn: the partition joins the transaction here.
    let mut guard = None;
    match (h.is_transactional(), transactional_id) {
        (true, Some(tid)) => {
            // KIP-890 verification: the guard is taken before the coordinator's check, and
            // a marker written between the check and the append voids it.
            guard = Some(log.begin_txn_verification(h.producer_id));
            // The coordinator may be on another broker (asked with AddPartitionsToTxn), but
            // not again once the transaction is open here.
            let open_here =
                broker.cluster.is_some() && log.in_transaction(h.producer_id, h.producer_epoch);
            let added = if open_here {
                Ok(false)
            } else {
                broker.verify_txn_write(
                    tid,
                    h.producer_id,
                    h.producer_epoch,
                    &topic.name,
                    index,
                    version >= 12,
                )
            }
            .map_err(|e| {
                let e = match e {
                    ResponseError::InvalidTxnState => txn_state_error(version),
                    // The coordinator is moving or busy: retriable for the producer, as
                    // Kafka's leader answers.
                    ResponseError::CoordinatorNotAvailable
                    | ResponseError::NotCoordinator
                    | ResponseError::CoordinatorLoadInProgress
                    | ResponseError::ConcurrentTransactions => ResponseError::NotEnoughReplicas,
                    e => e,
                };
                Refusal::of(e, None)
            })?;
            // The partition joined the transaction: that must be on disk (and on the
            // coordinator's ISR) before the batch is, or a crash in between leaves records in
            // the log whose transaction the coordinator does not know, which no marker would
            // ever close (the LSO stuck).
            if added && let Err(e) = broker.store.flush_all_blocking() {
                tracing::error!(error = %e, "cannot flush transaction state");
                return Err(Refusal::of(ResponseError::CoordinatorNotAvailable, None));
            }
        }
        (true, None) => {
            return Err(Refusal::of(
                ResponseError::InvalidTxnState,
                Some("transactional records require a transactional id".into()),
            ));
        }
        (false, Some(_)) => {
            return Err(Refusal::of(
                ResponseError::InvalidTxnState,
                Some("a transactional producer must send transactional records".into()),
            ));
        }
        (false, None) => {}
    }
    // Kafka's LogValidator: batch and record checks, KIP-937 timestamp bounds, keys on
    // compacted topics, and the batch's true max timestamp.
    let create_time = broker.topic_config(topic, "message.timestamp.type") == "CreateTime";
    let rules = validate::Rules {
        compacted: broker.topic_has_cleanup_policy(topic, "compact"),
        create_time_range: create_time.then(|| {
            let now = now_ms();
            let bound = |key: &str| {
                broker
                    .topic_config(topic, key)
                    .parse::<i64>()
                    .unwrap_or(i64::MAX)
            };
            (
                now.saturating_sub(bound("message.timestamp.before.max.ms")),
                now.saturating_add(bound("message.timestamp.after.max.ms")),
            )
        }),
    };
    let tp = format!("{}-{index}", topic.name);
    let mut batch = batches[0].clone();
    match validate::validate(&batch, &tp, &rules) {
        Ok(v) => {
            // A producer that left maxTimestamp unset (0 or -1) or wrong gets it rewritten
            // from its records, as Kafka does: retention and time lookups trust it.
            if create_time && v.max_timestamp != h.max_timestamp {
                let mut fixed = bytes::BytesMut::from(&batch[..]);
                batch::set_max_timestamp(&mut fixed, v.max_timestamp);
                batch = fixed.freeze();
            }
        }
        Err(r) => {
            tracing::debug!(topic = %topic.name, partition = index, reason = %r.summary(), "rejected record batch");
            return Err(match r {
                validate::Rejection::Batch(m) => Refusal::new(ResponseError::InvalidRecord, m),
                validate::Rejection::Records {
                    timestamp,
                    ref errors,
                } => Refusal {
                    error: if timestamp {
                        ResponseError::InvalidTimestamp
                    } else {
                        ResponseError::InvalidRecord
                    },
                    message: Some(r.summary()),
                    record_errors: errors.clone(),
                    log_start: -1,
                },
            }
            .at(log));
        }
    }
    let log_append_time =
        (broker.topic_config(topic, "message.timestamp.type") == "LogAppendTime").then(now_ms);
    match log.append_verified(&batch, log_append_time, guard) {
        Ok(info) => Ok((info, log_append_time)),
        Err(AppendError::OutOfOrderSequence { expected, got }) => Err(Refusal::of(
            ResponseError::OutOfOrderSequenceNumber,
            Some(format!("expected sequence {expected}, got {got}")),
        )
        .at(log)),
        Err(AppendError::InvalidProducerEpoch { current, got }) => Err(Refusal::of(
            ResponseError::InvalidProducerEpoch,
            Some(format!(
                "producer epoch {got} is older than the current epoch {current}"
            )),
        )
        .at(log)),
        Err(AppendError::TxnNotVerified) => Err(Refusal::new(
            txn_state_error(version),
            "the transaction ended before this write could join it".into(),
        )
        .at(log)),
        Err(AppendError::NotLeader) => Err(Refusal::of(ResponseError::NotLeaderOrFollower, None)),
        Err(AppendError::Storage(e)) => {
            tracing::error!(topic = %topic.name, partition = index, error = %e, "append failed");
            Err(Refusal::of(
                ResponseError::KafkaStorageError,
                Some(e.to_string()),
            ))
        }
    }
}
