//! Client races on one group id, through the real handlers: ConsumerGroupHeartbeat and
//! JoinGroup flip an empty group between the KIP-848 and the classic protocol while
//! OffsetCommit and DeleteGroups run against it. Nothing may panic or poison a lock, and
//! session expiry must still work afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fjord::Broker;
use fjord::config::{ConfigBuilder, Source};
use fjord::connection::RequestContext;
use fjord::handlers;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn ctx(api_version: i16) -> RequestContext {
    RequestContext {
        peer: "127.0.0.1:1".parse().unwrap(),
        listener: "PLAINTEXT".into(),
        client_id: Some("race".into()),
        api_version,
        correlation_id: 0,
        principal: std::sync::Arc::from("User:ANONYMOUS"),
    }
}

fn broker(dir: &std::path::Path) -> Arc<Broker> {
    let mut b = ConfigBuilder::new();
    b.set("log.dirs", dir.to_str().unwrap(), Source::Flag)
        .unwrap();
    b.set("group.initial.rebalance.delay.ms", "0", Source::Flag)
        .unwrap();
    Broker::open(b.build().unwrap()).unwrap()
}

fn cg_heartbeat(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names((epoch == 0).then(|| vec![TopicName(sb("t"))]))
}

fn join_req(group: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(sb("range"))
                .with_metadata(Bytes::from_static(b"m")),
        ])
}

fn commit_req(group: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb("t")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn protocol_flips_on_one_group_do_not_panic_and_expiry_survives() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    const ROUNDS: usize = 4000;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..3 {
        let b1 = b.clone();
        // KIP-848 members join (converting an empty classic group) and leave again.
        tasks.spawn(async move {
            for i in 0..ROUNDS {
                let m = format!("m{w}-{i}");
                let r = handlers::consumer_group_heartbeat::handle(
                    &b1,
                    &ctx(1),
                    cg_heartbeat("g", &m, 0),
                )
                .await
                .unwrap();
                if r.error_code == 0 {
                    handlers::consumer_group_heartbeat::handle(
                        &b1,
                        &ctx(1),
                        cg_heartbeat("g", &m, -1),
                    )
                    .await
                    .unwrap();
                }
            }
        });
        let b2 = b.clone();
        // Classic joiners (v4: the first join only obtains a member id, so the group stays
        // empty) convert it back.
        tasks.spawn(async move {
            for _ in 0..ROUNDS {
                handlers::join_group::handle(&b2, &ctx(4), join_req("g"))
                    .await
                    .unwrap();
            }
        });
    }
    {
        let b = b.clone();
        tasks.spawn(async move {
            for i in 0..ROUNDS / 5 {
                handlers::offset_commit::handle(&b, &ctx(8), commit_req("g"))
                    .await
                    .unwrap();
                if i % 10 == 0 {
                    handlers::delete_groups::handle(
                        &b,
                        &ctx(2),
                        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("g"))]),
                    )
                    .await
                    .unwrap();
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("a handler panicked");
    }
    // The group still works, and the timers still expire a silent member.
    let mut joined = None;
    for _ in 0..10 {
        let r =
            handlers::consumer_group_heartbeat::handle(&b, &ctx(1), cg_heartbeat("g", "last", 0))
                .await
                .unwrap();
        if r.error_code == 0 {
            joined = Some(r);
            break;
        }
    }
    assert!(joined.is_some(), "a member can join after the races");
    let session = b.groups.settings.consumer_session_timeout_ms as u64;
    b.groups
        .tick(Instant::now() + Duration::from_millis(session + 1000));
    let g = b.groups.get("g").expect("group exists");
    assert!(
        fjord::group::lock(&g).is_empty(),
        "session expiry removed the silent member"
    );
}
