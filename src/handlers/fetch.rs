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
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, ProducerId};
use kafka_protocol::protocol::Decodable;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::Broker;
use crate::connection::RequestContext;
use crate::frame::Frame;
use crate::log::{PartitionLog, ReadError, ReadPlan, ReadResult};
use crate::meta::topics::Topic;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

/// The broker-wide cap on record bytes of fetch responses in memory
/// (`queued.max.fetch.bytes`), like `queued.max.request.bytes` for requests. A fetch takes
/// its share after choosing the batches it will return and before reading them; the share
/// travels with the response frame and is given back once the frame has been written.
pub struct MemoryBudget {
    sem: Arc<Semaphore>,
    total: usize,
}

impl MemoryBudget {
    pub fn new(total: usize) -> Self {
        // acquire_many takes a u32; the setting is at most i32::MAX anyway.
        let total = total.clamp(1, u32::MAX as usize);
        MemoryBudget {
            sem: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Waits for `want` bytes, clamped to the whole budget: a fetch bigger than the budget
    /// waits until it has the budget to itself and then proceeds, so it cannot wait forever.
    pub async fn acquire(&self, want: usize) -> OwnedSemaphorePermit {
        let n = want.clamp(1, self.total) as u32;
        self.sem
            .clone()
            .acquire_many_owned(n)
            .await
            .expect("the fetch memory semaphore is never closed")
    }

    /// Bytes not held by any fetch right now.
    pub fn available(&self) -> usize {
        self.sem.available_permits()
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

/// The API table's entry point (decoding only, tests); requests from connections go through
/// `respond`, which keeps the memory share with the frame.
pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: FetchRequest,
) -> anyhow::Result<FetchResponse> {
    Ok(serve(broker, ctx, req).await?.0)
}

/// Decodes and answers a Fetch; the frame holds the response's share of
/// `queued.max.fetch.bytes` until it is dropped after being written.
pub async fn respond(
    broker: &Broker,
    ctx: &RequestContext,
    mut body: bytes::Bytes,
) -> anyhow::Result<Frame> {
    let version = ctx.api_version;
    let req = FetchRequest::decode(&mut body, version)
        .map_err(|e| anyhow::anyhow!("cannot decode Fetch v{version}: {e}"))?;
    let (resp, memory) = serve(broker, ctx, req).await?;
    let mut frame = crate::frame::encode_response(ApiKey::Fetch, ctx, resp)?;
    frame.memory = memory;
    Ok(frame)
}

async fn serve(
    broker: &Broker,
    ctx: &RequestContext,
    req: FetchRequest,
) -> anyhow::Result<(FetchResponse, Option<OwnedSemaphorePermit>)> {
    let v = ctx.api_version;
    if v >= 7 && req.session_id != 0 {
        // We never hand out session ids, so an incremental fetch names one we do not know.
        return Ok((
            FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code()),
            None,
        ));
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
    // A follower's fetch (KIP-903 moved the replica id into ReplicaState in v15): its fetch
    // offsets are its log ends, which move the leader's high watermark and ISR, and it
    // reads up to the log end rather than the high watermark.
    let replica_id = if v >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let replica = replica_id >= 0;
    // Authorization: a follower needs CLUSTER_ACTION, a consumer READ on each topic.
    let authz = Authz::of(broker, ctx);
    if replica && !authz.cluster(AclOperation::ClusterAction) {
        return Ok((
            FetchResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
            None,
        ));
    }
    let denied: Vec<bool> = req
        .topics
        .iter()
        .zip(&topics)
        .map(|(t, topic)| {
            !replica
                && authz.enabled()
                && (topic.is_some() || v < 13)
                && !authz.topic(
                    AclOperation::Read,
                    topic.as_ref().map_or(t.topic.as_str(), |t| t.name.as_str()),
                )
        })
        .collect();
    if replica && let Some(repl) = &broker.replication {
        for (t, topic) in req.topics.iter().zip(&topics) {
            let Some(topic) = topic else { continue };
            for p in &t.partitions {
                if broker.check_leader(topic, p.partition).is_ok()
                    && let Some(log) = topic.partition(p.partition)
                    && check_epoch(p.current_leader_epoch, log.leader_epoch()).is_ok()
                {
                    repl.on_follower_fetch(topic.id, p.partition, replica_id, p.fetch_offset, log);
                }
            }
        }
    }
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    let notify = Arc::new(Notify::new());
    let mut registered = false;
    loop {
        let (resp, bytes, had_error, memory) =
            read_all(broker, v, &ctx.listener, &req, &topics, &denied, replica).await?;
        let now = tokio::time::Instant::now();
        if bytes >= min_bytes.max(1) || had_error || now >= deadline || min_bytes == 0 {
            return Ok((resp, memory));
        }
        // Not answering yet: what was read is dropped, and its memory share with it.
        drop(memory);
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
            let (resp, _, _, memory) =
                read_all(broker, v, &ctx.listener, &req, &topics, &denied, replica).await?;
            return Ok((resp, memory));
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

/// A partition read: where its answer goes (topic and partition position in the response),
/// the log and what to read from it.
type PlannedRead = (usize, usize, Arc<PartitionLog>, ReadPlan);

/// One pass over every requested partition: choose the batches of each under its lock,
/// take their size from the fetch memory budget, read them on the blocking pool. Returns
/// the response, the record bytes it holds, whether any partition has an error (errors are
/// returned at once, not long-polled) and the memory share those bytes hold.
async fn read_all(
    broker: &Broker,
    v: i16,
    listener: &str,
    req: &FetchRequest,
    topics: &[Option<Arc<Topic>>],
    denied: &[bool],
    replica: bool,
) -> anyhow::Result<(FetchResponse, usize, bool, Option<OwnedSemaphorePermit>)> {
    let mut budget = (req.max_bytes.max(0) as usize).min(broker.config.fetch_max_bytes);
    if v < 3 || req.max_bytes <= 0 {
        budget = broker.config.fetch_max_bytes;
    }
    let mut planned = 0usize;
    // isolation_level 1 = READ_COMMITTED: stop at the last stable offset, list aborted txns.
    let read_committed = req.isolation_level == 1;
    let mut had_error = false;
    let mut responses = Vec::with_capacity(req.topics.len());
    let mut reads: Vec<PlannedRead> = Vec::new();
    let mut leaders = std::collections::BTreeSet::new();
    for (ti, (t, topic)) in req.topics.iter().zip(topics).enumerate() {
        let mut tr = FetchableTopicResponse::default()
            .with_topic(t.topic.clone())
            .with_topic_id(t.topic_id);
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut pd = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                // Only read_committed fetches carry the list (null otherwise, as in Kafka).
                .with_aborted_transactions(None);
            let unknown = if v >= 13 {
                ResponseError::UnknownTopicId
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            let log = match topic {
                _ if denied[ti] => Err(ResponseError::TopicAuthorizationFailed),
                None => {
                    // Kafka's answer for an unknown topic carries an empty list here.
                    pd.aborted_transactions = Some(Vec::new());
                    Err(unknown)
                }
                Some(topic) => match broker.check_leader(topic, p.partition) {
                    // Not the leader here: the client refreshes its metadata, or (v12+,
                    // KIP-951) goes straight to the leader named in the answer.
                    Err(nl) => {
                        if let Some((id, epoch)) = nl.leader
                            && v >= 12
                        {
                            pd.current_leader = LeaderIdAndEpoch::default()
                                .with_leader_id(BrokerId(id))
                                .with_leader_epoch(epoch);
                            leaders.insert(id);
                        }
                        Err(ResponseError::NotLeaderOrFollower)
                    }
                    Ok(()) => topic.partition(p.partition).ok_or_else(|| {
                        pd.aborted_transactions = Some(Vec::new());
                        ResponseError::UnknownTopicOrPartition
                    }),
                },
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
                    pd.records = Some(bytes::Bytes::new());
                    let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                    // Only the first partition with data may exceed the limits (KIP-74).
                    let plan = if replica {
                        log.plan_replica_read(p.fetch_offset, limit)
                    } else {
                        log.plan_read(p.fetch_offset, limit, planned == 0, read_committed)
                    };
                    match plan {
                        Ok(plan) => {
                            let n = plan.bytes();
                            planned += n;
                            budget = budget.saturating_sub(n);
                            reads.push((ti, pi, log.clone(), plan));
                        }
                        Err(e) => {
                            // A follower below the log start is told where it starts.
                            let start = match (&e, replica) {
                                (ReadError::OffsetOutOfRange { log_start, .. }, true) => *log_start,
                                _ => -1,
                            };
                            had_error |= read_error(&mut pd, t.topic.as_str(), e);
                            if start >= 0 {
                                pd.log_start_offset = start;
                            }
                        }
                    }
                }
            }
            tr.partitions.push(pd);
        }
        responses.push(tr);
    }
    // The memory share: a fetch waits for the bytes it will read, and reads fewer when the
    // whole budget is smaller (keeping at least the first batch, so it still progresses).
    let mut memory = None;
    if planned > 0
        && let Some(m) = &broker.fetch_memory
    {
        let permit = m.acquire(planned).await;
        let granted = permit.num_permits();
        if granted < planned {
            let mut left = granted;
            let mut first = true;
            for (_, _, _, plan) in reads.iter_mut() {
                plan.truncate(left, first);
                let n = plan.bytes();
                first &= n == 0;
                left = left.saturating_sub(n);
            }
        }
        memory = Some(permit);
    }
    // The reads: preads that may block on the disk go to the blocking pool, never to the
    // async workers. Plans with nothing to read only carry offsets and are answered here.
    let results: Vec<(usize, usize, Result<ReadResult, ReadError>)> = if planned == 0 {
        reads
            .into_iter()
            .map(|(ti, pi, log, plan)| (ti, pi, log.read_planned(plan)))
            .collect()
    } else {
        tokio::task::spawn_blocking(move || {
            reads
                .into_iter()
                .map(|(ti, pi, log, plan)| (ti, pi, log.read_planned(plan)))
                .collect()
        })
        .await?
    };
    let mut total = 0usize;
    for (ti, pi, r) in results {
        let pd = &mut responses[ti].partitions[pi];
        match r {
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
                pd.records = Some(r.records);
            }
            Err(e) => {
                let topic = req.topics[ti].topic.as_str().to_string();
                had_error |= read_error(pd, &topic, e);
            }
        }
    }
    // Keep only what the response holds: a read can come out shorter than its plan.
    if let Some(permit) = memory.as_mut()
        && total < permit.num_permits()
    {
        drop(permit.split(permit.num_permits() - total.max(1)));
    }
    if total == 0 {
        memory = None;
    }
    let node_endpoints = leaders
        .into_iter()
        .filter_map(|id| broker.broker_address(id, listener))
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.id))
                .with_host(crate::handlers::str_bytes(b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.map(crate::handlers::str_bytes))
        })
        .collect();
    Ok((
        FetchResponse::default()
            .with_responses(responses)
            .with_node_endpoints(node_endpoints),
        total,
        had_error,
        memory,
    ))
}

/// Sets a partition's error from a failed read; returns true (it is an error).
fn read_error(pd: &mut PartitionData, topic: &str, e: ReadError) -> bool {
    match e {
        // Kafka answers an out-of-range fetch with no offsets at all (-1); the consumer
        // asks ListOffsets for the ends it resets to.
        ReadError::OffsetOutOfRange { .. } => {
            pd.error_code = ResponseError::OffsetOutOfRange.code();
            pd.high_watermark = -1;
            pd.last_stable_offset = -1;
            pd.log_start_offset = -1;
        }
        ReadError::Storage(e) => {
            tracing::error!(topic, partition = pd.partition_index, error = %e, "read failed");
            pd.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    true
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
