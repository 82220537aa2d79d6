//! Fetch: stored batches from the one holding the requested offset onward, within
//! `partition_max_bytes` and `max_bytes` (the first batch is always returned whole so an
//! oversized batch cannot stall a consumer, KIP-74), long-polling until `min_bytes` arrive
//! or `max_wait_ms` passes. The wait is woken by appends, not a sleep loop.
//!
//! Fetch sessions (KIP-227) are declined by answering session id 0, which every client
//! handles by sending full fetch requests; the response is always complete.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use tokio::sync::Notify;

use crate::Broker;
use crate::connection::RequestContext;
use crate::log::{PartitionLog, ReadError};
use crate::meta::topics::Topic;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: FetchRequest,
) -> anyhow::Result<FetchResponse> {
    let v = ctx.api_version;
    if v >= 7 && req.session_id != 0 {
        // We never hand out session ids, so an incremental fetch names one we do not know.
        return Ok(
            FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code())
        );
    }
    // Resolve topics once: v13+ identifies them by id.
    let topics: Vec<Option<Arc<Topic>>> = req
        .topics
        .iter()
        .map(|t| {
            if v >= 13 {
                broker.topics.get_by_id(t.topic_id)
            } else {
                broker.topics.get(t.topic.as_str())
            }
        })
        .collect();
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    let notify = Arc::new(Notify::new());
    let mut registered = false;
    loop {
        let (resp, bytes, had_error) = read_all(broker, v, &req, &topics);
        let now = tokio::time::Instant::now();
        if bytes >= min_bytes.max(1) || had_error || now >= deadline || min_bytes == 0 {
            return Ok(resp);
        }
        if !registered {
            // Register, then read again: an append between the read and the registration
            // would otherwise be missed until the timeout.
            for_each_log(&req, &topics, |log| log.register_waiter(&notify));
            registered = true;
            continue;
        }
        if tokio::time::timeout_at(deadline, notify.notified())
            .await
            .is_err()
        {
            let (resp, _, _) = read_all(broker, v, &req, &topics);
            return Ok(resp);
        }
        for_each_log(&req, &topics, |log| log.register_waiter(&notify));
    }
}

fn for_each_log(
    req: &FetchRequest,
    topics: &[Option<Arc<Topic>>],
    mut f: impl FnMut(&PartitionLog),
) {
    for (t, topic) in req.topics.iter().zip(topics) {
        if let Some(topic) = topic {
            for p in &t.partitions {
                if let Some(log) = topic.partition(p.partition) {
                    f(log);
                }
            }
        }
    }
}

/// One pass over every requested partition. Returns the response, the record bytes it holds,
/// and whether any partition has an error (errors are returned at once, not long-polled).
fn read_all(
    broker: &Broker,
    v: i16,
    req: &FetchRequest,
    topics: &[Option<Arc<Topic>>],
) -> (FetchResponse, usize, bool) {
    let mut budget = (req.max_bytes.max(0) as usize).min(broker.config.fetch_max_bytes);
    if v < 3 || req.max_bytes <= 0 {
        budget = broker.config.fetch_max_bytes;
    }
    let mut total = 0usize;
    // isolation_level 1 = READ_COMMITTED: stop at the last stable offset, list aborted txns.
    let read_committed = req.isolation_level == 1;
    let mut had_error = false;
    let mut responses = Vec::with_capacity(req.topics.len());
    for (t, topic) in req.topics.iter().zip(topics) {
        let mut tr = FetchableTopicResponse::default()
            .with_topic(t.topic.clone())
            .with_topic_id(t.topic_id);
        for p in &t.partitions {
            let mut pd = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1);
            let unknown = if v >= 13 {
                ResponseError::UnknownTopicId
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            let log = match topic {
                None => Err(unknown),
                Some(topic) => topic
                    .partition(p.partition)
                    .ok_or(ResponseError::UnknownTopicOrPartition),
            };
            let result = log.and_then(|log| {
                check_epoch(p.current_leader_epoch, log.leader_epoch())?;
                Ok(log)
            });
            match result {
                Err(e) => {
                    pd.error_code = e.code();
                    had_error = true;
                }
                Ok(log) => {
                    let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                    // Only the first partition with data may exceed the limits (KIP-74).
                    match log.read(p.fetch_offset, limit, total == 0, read_committed) {
                        Ok(r) => {
                            pd.high_watermark = r.high_watermark;
                            pd.last_stable_offset = r.last_stable_offset;
                            pd.log_start_offset = r.log_start_offset;
                            if read_committed {
                                pd.aborted_transactions = Some(
                                    r.aborted
                                        .iter()
                                        .map(|a| {
                                            AbortedTransaction::default()
                                                .with_producer_id(ProducerId(a.producer_id))
                                                .with_first_offset(a.first_offset)
                                        })
                                        .collect(),
                                );
                            }
                            total += r.records.len();
                            budget = budget.saturating_sub(r.records.len());
                            pd.records = Some(r.records);
                        }
                        Err(ReadError::OffsetOutOfRange {
                            log_start,
                            high_watermark,
                        }) => {
                            pd.error_code = ResponseError::OffsetOutOfRange.code();
                            pd.high_watermark = high_watermark;
                            pd.last_stable_offset = high_watermark;
                            pd.log_start_offset = log_start;
                            had_error = true;
                        }
                        Err(ReadError::Storage(e)) => {
                            tracing::error!(topic = t.topic.as_str(), partition = p.partition, error = %e, "read failed");
                            pd.error_code = ResponseError::KafkaStorageError.code();
                            had_error = true;
                        }
                    }
                    if pd.records.is_none() {
                        pd.records = Some(bytes::Bytes::new());
                    }
                }
            }
            tr.partitions.push(pd);
        }
        responses.push(tr);
    }
    (
        FetchResponse::default().with_responses(responses),
        total,
        had_error,
    )
}

/// Leader-epoch fencing shared by Fetch, ListOffsets and OffsetForLeaderEpoch: a client with
/// an older epoch has stale metadata, one with a newer epoch knows something we do not yet.
pub fn check_epoch(client_epoch: i32, ours: i32) -> Result<(), ResponseError> {
    if client_epoch == -1 || client_epoch == ours {
        Ok(())
    } else if client_epoch < ours {
        Err(ResponseError::FencedLeaderEpoch)
    } else {
        Err(ResponseError::UnknownLeaderEpoch)
    }
}
