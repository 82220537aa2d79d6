//! Produce: validate each partition's record batch (v2 header, CRC-32C, size), check the
//! idempotent producer's sequence, assign offsets and store the bytes as received.
//! Errors are per partition; one bad partition never fails the others.

pub mod legacy;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{now_ms, str_bytes};
use crate::Broker;
use crate::connection::RequestContext;
use crate::log::AppendError;
use crate::log::batch::{self, BatchError};
use crate::meta::topics::Topic;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ProduceRequest,
) -> anyhow::Result<ProduceResponse> {
    let v = ctx.api_version;
    let mut any_appended = false;
    let mut responses = Vec::with_capacity(req.topic_data.len());
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
        for pd in &td.partition_data {
            let mut pr = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let outcome = if !matches!(req.acks, -1..=1) {
                Err((ResponseError::InvalidRequiredAcks, None))
            } else {
                match &topic {
                    None => Err((missing, None)),
                    // The append writes to the segment file and may roll it (directory
                    // fsync) or checkpoint to sled: on the blocking pool, not an async
                    // worker. Awaited before the next partition, and a connection handles
                    // one request at a time, so an idempotent producer's pipelined batches
                    // are still appended in the order sent.
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
                    pr.base_offset = info.base_offset;
                    pr.log_start_offset = info.log_start_offset;
                    pr.log_append_time_ms = log_append_time.unwrap_or(-1);
                    any_appended |= !info.duplicate;
                }
                Err((err, msg)) => {
                    pr.error_code = err.code();
                    if v >= 8 {
                        if err == ResponseError::InvalidRecord {
                            pr.record_errors = vec![
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(0)
                                    .with_batch_index_error_message(msg.clone().map(str_bytes)),
                            ];
                        }
                        pr.error_message = msg.map(str_bytes);
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
    Ok(ProduceResponse::default().with_responses(responses))
}

type Outcome = Result<(crate::log::AppendInfo, Option<i64>), (ResponseError, Option<String>)>;

fn append_partition(
    broker: &Broker,
    topic: &Topic,
    index: i32,
    records: Option<&bytes::Bytes>,
    transactional_id: Option<&str>,
    version: i16,
) -> Outcome {
    let Some(log) = topic.partition(index) else {
        return Err((ResponseError::UnknownTopicOrPartition, None));
    };
    let Some(records) = records else {
        return Err((
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
        match e {
            BatchError::Corrupt(m) => (ResponseError::CorruptMessage, Some(m)),
            BatchError::UnsupportedMagic(m) => (
                ResponseError::UnsupportedForMessageFormat,
                Some(format!("message format v{m} is not supported; use record batch v2")),
            ),
            BatchError::TooLarge { size, max } => (
                ResponseError::MessageTooLarge,
                Some(format!("record batch of {size} bytes exceeds the limit of {max}")),
            ),
            BatchError::Invalid(m) => (ResponseError::InvalidRecord, Some(m)),
        }
    })?;
    if batches.len() != 1 {
        return Err((
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
    match (h.is_transactional(), transactional_id) {
        (true, Some(tid)) => {
            broker
                .txns
                .check_produce(
                    tid,
                    h.producer_id,
                    h.producer_epoch,
                    &topic.name,
                    index,
                    version >= 12,
                )
                .map_err(|e| (e, None))?;
        }
        (true, None) => {
            return Err((
                ResponseError::InvalidTxnState,
                Some("transactional records require a transactional id".into()),
            ));
        }
        (false, Some(_)) => {
            return Err((
                ResponseError::InvalidTxnState,
                Some("a transactional producer must send transactional records".into()),
            ));
        }
        (false, None) => {}
    }
    // KIP-937 timestamp bounds for CreateTime topics: the batch's max timestamp may not be
    // too far in the future, nor its base (first) timestamp too far in the past.
    if broker.topic_config(topic, "message.timestamp.type") == "CreateTime" {
        let now = now_ms();
        let after: i64 = broker
            .topic_config(topic, "message.timestamp.after.max.ms")
            .parse()
            .unwrap_or(i64::MAX);
        let before: i64 = broker
            .topic_config(topic, "message.timestamp.before.max.ms")
            .parse()
            .unwrap_or(i64::MAX);
        if h.max_timestamp > now.saturating_add(after)
            || (h.base_timestamp >= 0 && h.base_timestamp < now.saturating_sub(before))
        {
            return Err((
                ResponseError::InvalidTimestamp,
                Some(format!(
                    "Timestamp {} of a record is out of range (message.timestamp.before.max.ms={before}, message.timestamp.after.max.ms={after})",
                    if h.max_timestamp > now.saturating_add(after) {
                        h.max_timestamp
                    } else {
                        h.base_timestamp
                    }
                )),
            ));
        }
    }
    // A compacted topic keeps the latest value per key: a record without a key has no place.
    if broker.topic_has_cleanup_policy(topic, "compact") {
        match crate::log::records::has_keyless_record(&batches[0]) {
            Ok(false) => {}
            Ok(true) => {
                return Err((
                    ResponseError::InvalidRecord,
                    Some(format!(
                        "Compacted topic {} cannot accept a record without a key",
                        topic.name
                    )),
                ));
            }
            Err(e) => return Err((ResponseError::CorruptMessage, Some(e.to_string()))),
        }
    }
    let log_append_time =
        (broker.topic_config(topic, "message.timestamp.type") == "LogAppendTime").then(now_ms);
    match log.append(&batches[0], log_append_time) {
        Ok(info) => Ok((info, log_append_time)),
        Err(AppendError::OutOfOrderSequence { expected, got }) => Err((
            ResponseError::OutOfOrderSequenceNumber,
            Some(format!("expected sequence {expected}, got {got}")),
        )),
        Err(AppendError::InvalidProducerEpoch { current, got }) => Err((
            ResponseError::InvalidProducerEpoch,
            Some(format!(
                "producer epoch {got} is older than the current epoch {current}"
            )),
        )),
        Err(AppendError::Storage(e)) => {
            tracing::error!(topic = %topic.name, partition = index, error = %e, "append failed");
            Err((ResponseError::KafkaStorageError, Some(e.to_string())))
        }
    }
}
