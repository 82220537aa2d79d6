//! A follower's fetcher: one task per leader this broker follows partitions of. It
//! reconciles each partition with OffsetForLeaderEpoch whenever the leader epoch it follows
//! changes (truncating a suffix the leader does not have), then fetches from its log end
//! with Fetch v17 (replica id and broker epoch in `ReplicaState`, as Kafka 4's followers
//! do) and appends what comes back exactly as received.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use uuid::Uuid;

use super::client::Client;
use super::{Follow, FollowMap};
use crate::Broker;
use crate::log::{EpochEnd, PartitionLog};
use crate::security::connector::Refused;

const FETCH_VERSION: i16 = 17;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
/// Kafka's `replica.fetch.max.bytes` and `replica.fetch.response.max.bytes` defaults.
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 10 << 20;
const BACKOFF: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

type Key = (Uuid, i32);

/// Fetches from `leader` until it leads none of the partitions this broker follows.
pub async fn run(broker: Weak<Broker>, leader: i32, follows: watch::Receiver<Arc<FollowMap>>) {
    let mut conn: Option<Client> = None;
    // The last connection attempt was refused (TLS or SASL): warned about already.
    let mut refused = false;
    // The leader epoch each partition was reconciled in.
    let mut reconciled: HashMap<Key, i32> = HashMap::new();
    loop {
        let plan: Vec<(Key, Follow)> = follows
            .borrow()
            .iter()
            .filter(|(_, f)| f.leader == leader)
            .map(|(k, f)| (*k, f.clone()))
            .collect();
        if plan.is_empty() {
            tracing::debug!(leader, "no partition to fetch from this leader any more");
            return;
        }
        reconciled.retain(|k, e| plan.iter().any(|(p, f)| p == k && f.leader_epoch == *e));
        let Some(b) = broker.upgrade() else {
            return;
        };
        let Some(node) = b.cluster.clone() else {
            return;
        };
        if conn.is_none() {
            let Some(addr) = b.inter_broker_address(leader) else {
                drop(b);
                tokio::time::sleep(BACKOFF).await;
                continue;
            };
            let id = format!("fjord-replica-fetcher-{}-{leader}", b.node_id());
            match Client::connect(&node.inter_broker, &addr, id, CONNECT_TIMEOUT).await {
                Ok(c) => {
                    refused = false;
                    conn = Some(c)
                }
                Err(e) => {
                    if e.downcast_ref::<Refused>().is_some() {
                        // A security misconfiguration: said once per streak of failures.
                        if !refused {
                            tracing::warn!(leader, error = %e, "the leader refused this follower's connection (TLS or SASL on the inter-broker listener)");
                        }
                        refused = true;
                    } else {
                        tracing::debug!(leader, error = %e, "cannot reach the leader");
                    }
                    drop(b);
                    tokio::time::sleep(BACKOFF * 2).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected");
        let me = b.node_id();
        // 1. Reconcile the partitions whose leader epoch is new to us.
        let need: Vec<&(Key, Follow)> = plan
            .iter()
            .filter(|(k, f)| reconciled.get(k) != Some(&f.leader_epoch))
            .collect();
        if !need.is_empty() {
            match reconcile(&b, c, me, &need).await {
                Ok(done) => reconciled.extend(done),
                Err(e) => {
                    tracing::debug!(leader, error = %e, "OffsetForLeaderEpoch failed");
                    conn = None;
                    drop(b);
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            }
        }
        // 2. Fetch the reconciled ones.
        let fetchable: Vec<(Key, Arc<PartitionLog>, i32)> = plan
            .iter()
            .filter(|(k, f)| reconciled.get(k) == Some(&f.leader_epoch))
            .filter_map(|(k, f)| Some((*k, local_log(&b, k)?, f.leader_epoch)))
            .collect();
        if fetchable.is_empty() {
            drop(b);
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        let wait_ms = node.settings.replica_fetch_wait_max_ms;
        let req = fetch_request(me, node.broker_epoch(), wait_ms, &fetchable);
        drop(b);
        let timeout = Duration::from_millis(wait_ms) + Duration::from_secs(10);
        let resp = match c.call(FETCH_VERSION, &req, timeout).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(leader, error = %e, "fetch from the leader failed");
                conn = None;
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        let Some(b) = broker.upgrade() else {
            return;
        };
        let logs: HashMap<Key, (Arc<PartitionLog>, i32)> =
            fetchable.into_iter().map(|(k, l, e)| (k, (l, e))).collect();
        drop(b);
        let failed = tokio::task::spawn_blocking(move || apply(&logs, resp))
            .await
            .unwrap_or_default();
        if !failed.is_empty() {
            for k in &failed {
                reconciled.remove(k);
            }
            tokio::time::sleep(BACKOFF).await;
        }
    }
}

fn local_log(b: &Broker, (tid, id): &Key) -> Option<Arc<PartitionLog>> {
    b.topics.get_by_id(*tid)?.partition(*id).cloned()
}

/// Asks the leader where our latest epoch ended there and truncates to the common point.
/// Returns the partitions reconciled, with the leader epoch they were reconciled in.
async fn reconcile(
    b: &Broker,
    c: &mut Client,
    me: i32,
    need: &[&(Key, Follow)],
) -> anyhow::Result<Vec<(Key, i32)>> {
    let mut done = Vec::new();
    let mut asked: Vec<(Key, Arc<PartitionLog>, i32)> = Vec::new();
    let mut by_topic: std::collections::BTreeMap<String, Vec<OffsetForLeaderPartition>> =
        Default::default();
    for ((k, f), log) in need
        .iter()
        .filter_map(|x| local_log(b, &x.0).map(|l| (*x, l)))
    {
        match log.latest_epoch() {
            // An empty log that never led: nothing to cut.
            None => done.push((*k, f.leader_epoch)),
            Some(latest) => {
                by_topic.entry(f.topic.clone()).or_default().push(
                    OffsetForLeaderPartition::default()
                        .with_partition(k.1)
                        .with_current_leader_epoch(f.leader_epoch)
                        .with_leader_epoch(latest),
                );
                asked.push((*k, log, f.leader_epoch));
            }
        }
    }
    if asked.is_empty() {
        return Ok(done);
    }
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(me))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp = c
        .call(
            OFFSET_FOR_LEADER_EPOCH_VERSION,
            &req,
            Duration::from_secs(10),
        )
        .await?;
    let mut cut = Vec::new();
    for t in &resp.topics {
        for p in &t.partitions {
            let Some((k, log, epoch)) = asked
                .iter()
                .find(|(k, _, _)| k.1 == p.partition && local_topic_is(b, k, t.topic.as_str()))
            else {
                continue;
            };
            if p.error_code != 0 {
                tracing::debug!(topic = %t.topic.as_str(), partition = p.partition, error = p.error_code, "leader refused OffsetForLeaderEpoch");
                continue;
            }
            let (to, settled) = log.truncation_offset(EpochEnd {
                epoch: p.leader_epoch,
                end_offset: p.end_offset,
            });
            cut.push((*k, log.clone(), to, *epoch, settled));
        }
    }
    let truncated = tokio::task::spawn_blocking(move || {
        cut.into_iter()
            .filter_map(|(k, log, to, epoch, settled)| {
                // Not settled, the cut also drops the epochs above the leader's answer
                // that started at our log end.
                if (to < log.log_end_offset() || !settled)
                    && let Err(e) = log.truncate_following(to, epoch)
                {
                    tracing::warn!(error = %e, "truncation not done");
                    return None;
                }
                // An intermediate point (the leader answered with an epoch we lack): ask
                // again with what is now our latest epoch.
                settled.then_some((k, epoch))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    done.extend(truncated);
    Ok(done)
}

fn local_topic_is(b: &Broker, k: &Key, name: &str) -> bool {
    b.topics.get(name).is_some_and(|t| t.id == k.0)
}

fn fetch_request(
    me: i32,
    broker_epoch: i64,
    wait_ms: u64,
    parts: &[(Key, Arc<PartitionLog>, i32)],
) -> FetchRequest {
    let mut topics: std::collections::BTreeMap<Uuid, Vec<FetchPartition>> = Default::default();
    for ((tid, id), log, epoch) in parts {
        topics.entry(*tid).or_default().push(
            FetchPartition::default()
                .with_partition(*id)
                .with_current_leader_epoch(*epoch)
                .with_fetch_offset(log.log_end_offset())
                .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
                .with_log_start_offset(log.log_start_offset())
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    FetchRequest::default()
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(me))
                .with_replica_epoch(broker_epoch),
        )
        .with_max_wait_ms(wait_ms as i32)
        .with_min_bytes(1)
        .with_max_bytes(RESPONSE_MAX_BYTES)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(tid, ps)| FetchTopic::default().with_topic_id(tid).with_partitions(ps))
                .collect(),
        )
}

/// Appends what the leader sent and takes its high watermark and log start. Returns the
/// partitions that must be reconciled again (the leader refused them or their data did not
/// fit this log).
fn apply(logs: &HashMap<Key, (Arc<PartitionLog>, i32)>, resp: FetchResponse) -> Vec<Key> {
    let mut failed = Vec::new();
    if resp.error_code != 0 {
        tracing::debug!(error = resp.error_code, "the leader refused the fetch");
        return logs.keys().copied().collect();
    }
    for t in resp.responses {
        for p in t.partitions {
            let key = (t.topic_id, p.partition_index);
            // Every change below is made only while this replica still follows in the
            // epoch the fetch was sent in: a late answer of a former leader changes nothing.
            let Some((log, epoch)) = logs.get(&key) else {
                continue;
            };
            let epoch = *epoch;
            // Our log ends below the leader's log start (a new replica of a partition whose
            // beginning retention removed): start where the leader's log starts.
            if p.error_code == ResponseError::OffsetOutOfRange.code()
                && p.log_start_offset > log.log_end_offset()
            {
                if let Err(e) = log.reset_to(p.log_start_offset, epoch) {
                    tracing::warn!(error = %e, "cannot restart the log at the leader's log start");
                    failed.push(key);
                }
                continue;
            }
            if p.error_code != 0 {
                let e = ResponseError::try_from_code(p.error_code);
                tracing::debug!(topic = %t.topic_id, partition = p.partition_index, error = ?e, "the leader refused a partition");
                failed.push(key);
                continue;
            }
            if let Some(records) = &p.records
                && !records.is_empty()
                && let Err(e) = log.append_replica(records, epoch)
            {
                tracing::warn!(topic = %t.topic_id, partition = p.partition_index, error = ?e, "cannot append the leader's batches");
                failed.push(key);
                continue;
            }
            log.set_follower_high_watermark(p.high_watermark, epoch);
            if p.log_start_offset > log.log_start_offset()
                && log.follows(epoch)
                && let Err(e) = log.advance_log_start(p.log_start_offset)
            {
                tracing::warn!(error = %e, "cannot move the log start as the leader did");
            }
        }
    }
    failed
}
