//! Groups: FindCoordinator, the classic protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup), offsets (OffsetCommit, OffsetFetch, OffsetDelete), DescribeGroups,
//! ListGroups, DeleteGroups, and KIP-848 (ConsumerGroupHeartbeat, ConsumerGroupDescribe).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;

use super::Pair;
use crate::common::*;

/// Kafka creates `__consumer_offsets` on the first FindCoordinator and answers
/// COORDINATOR_NOT_AVAILABLE until it is ready: wait for both brokers first.
pub async fn warm_up(p: &mut Pair, key_type: i8, key: &str) {
    let req = FindCoordinatorRequest::default()
        .with_key_type(key_type)
        .with_coordinator_keys(vec![sb(key)]);
    for _ in 0..150 {
        let (f, k) = p.quiet(4, &req).await;
        if f.coordinators[0].error_code == 0 && k.coordinators[0].error_code == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Found is not loaded: ask the coordinator itself until it answers.
    for _ in 0..150 {
        let ready = if key_type == 0 {
            let req = OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(sb(key)))
                    .with_topics(None),
            ]);
            let (f, k) = p.quiet(9, &req).await;
            f.groups[0].error_code == 0 && k.groups[0].error_code == 0
        } else {
            let req = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(sb("diff-warm-up"))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let (f, k) = p.quiet(5, &req).await;
            f.error_code == 0 && k.error_code == 0
        };
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("coordinator for {key} not ready");
}

fn join(group: &str, member: &str, session_ms: i32, protocol_type: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(sb(member))
        .with_protocol_type(sb(protocol_type))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(sb("range"))
                .with_metadata(Bytes::from_static(&[
                    0, 1, 0, 0, 0, 1, 0, 6, b'd', b'i', b'f', b'f', b'-', b'a', 0, 0, 0, 0,
                ])),
        ])
}

fn commit(group: &str, member: &str, generation: i32, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_generation_id_or_member_epoch(generation)
        .with_retention_time_ms(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(tn("diff-a"))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(1)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(sb("m"))),
                ]),
        ])
}

fn fetch_offsets(group: &str) -> OffsetFetchRequest {
    OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(sb(group)))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(tn("diff-a"))
                    .with_partition_indexes(vec![0, 1]),
            ])),
    ])
}

fn heartbeat(group: &str, member: &str, generation: i32) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_generation_id(generation)
}

pub async fn run(p: &mut Pair) {
    warm_up(p, 0, "diff-g").await;
    p.same(
        "FindCoordinator v4: group",
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![sb("diff-g")]),
    )
    .await;
    p.same(
        "FindCoordinator v3: group",
        3,
        &FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_key(sb("diff-g")),
    )
    .await;
    p.same(
        "FindCoordinator v4: bad key type",
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(7)
            .with_coordinator_keys(vec![sb("x")]),
    )
    .await;

    // Classic: the KIP-394 two-step join.
    p.same(
        "JoinGroup v9: invalid session timeout",
        9,
        &join("diff-g", "", 1, "consumer"),
    )
    .await;
    p.same(
        "JoinGroup v9: empty group id",
        9,
        &join("", "", 10_000, "consumer"),
    )
    .await;
    let (f, k) = p
        .same(
            "JoinGroup v9: member id required",
            9,
            &join("diff-g", "", 10_000, "consumer"),
        )
        .await;
    let (fm, km) = (f.member_id.to_string(), k.member_id.to_string());
    let (f, k) = p
        .each(
            "JoinGroup v9: join (after the initial delay)",
            9,
            &join("diff-g", &fm, 10_000, "consumer"),
            &join("diff-g", &km, 10_000, "consumer"),
        )
        .await;
    let (fg, kg) = (f.generation_id, k.generation_id);
    p.each(
        "JoinGroup v9: another protocol type",
        9,
        &join("diff-g", "", 10_000, "connect"),
        &join("diff-g", "", 10_000, "connect"),
    )
    .await;
    let sync = |m: &str, g: i32| {
        SyncGroupRequest::default()
            .with_group_id(GroupId(sb("diff-g")))
            .with_member_id(sb(m))
            .with_generation_id(g)
            .with_protocol_type(Some(sb("consumer")))
            .with_protocol_name(Some(sb("range")))
            .with_assignments(vec![
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(sb(m))
                    .with_assignment(Bytes::from_static(&[
                        0, 1, 0, 0, 0, 1, 0, 6, b'd', b'i', b'f', b'f', b'-', b'a', 0, 0, 0, 1, 0,
                        0, 0, 1, 0, 0, 0, 0,
                    ])),
            ])
    };
    p.each("SyncGroup v5: leader", 5, &sync(&fm, fg), &sync(&km, kg))
        .await;
    p.each(
        "SyncGroup v5: wrong generation",
        5,
        &sync(&fm, fg + 5),
        &sync(&km, kg + 5),
    )
    .await;
    p.each(
        "Heartbeat v4: stable",
        4,
        &heartbeat("diff-g", &fm, fg),
        &heartbeat("diff-g", &km, kg),
    )
    .await;
    p.each(
        "Heartbeat v4: wrong generation",
        4,
        &heartbeat("diff-g", &fm, fg + 1),
        &heartbeat("diff-g", &km, kg + 1),
    )
    .await;
    p.same(
        "Heartbeat v4: unknown member",
        4,
        &heartbeat("diff-g", "nobody", 1),
    )
    .await;
    p.same(
        "Heartbeat v4: unknown group",
        4,
        &heartbeat("diff-nogroup", "nobody", 1),
    )
    .await;

    // Offsets.
    p.each(
        "OffsetCommit v9: member commit",
        9,
        &commit("diff-g", &fm, fg, 3),
        &commit("diff-g", &km, kg, 3),
    )
    .await;
    p.each(
        "OffsetCommit v9: stale generation",
        9,
        &commit("diff-g", &fm, fg - 1, 4),
        &commit("diff-g", &km, kg - 1, 4),
    )
    .await;
    p.same(
        "OffsetCommit v9: unknown member",
        9,
        &commit("diff-g", "nobody", 1, 4),
    )
    .await;
    p.same(
        "OffsetCommit v9: simple commit into a non-empty group",
        9,
        &commit("diff-g", "", -1, 4),
    )
    .await;
    p.same("OffsetFetch v9: committed", 9, &fetch_offsets("diff-g"))
        .await;
    p.same(
        "OffsetFetch v9: unknown group",
        9,
        &fetch_offsets("diff-nogroup"),
    )
    .await;
    p.same(
        "DescribeGroups v5: stable group",
        5,
        &DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(sb("diff-g")), GroupId(sb("diff-nogroup"))]),
    )
    .await;
    p.same("ListGroups v5: all", 5, &ListGroupsRequest::default())
        .await;
    p.same(
        "DeleteGroups v2: non-empty",
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("diff-g"))]),
    )
    .await;
    let leave = |m: &str| {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(sb("diff-g")))
            .with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(sb(m)),
            ])
    };
    p.each("LeaveGroup v5: leave", 5, &leave(&fm), &leave(&km))
        .await;
    p.same("LeaveGroup v5: unknown member", 5, &leave("nobody"))
        .await;
    p.same(
        "DescribeGroups v5: empty group",
        5,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("diff-g"))]),
    )
    .await;
    p.same(
        "OffsetCommit v9: simple commit into the empty group",
        9,
        &commit("diff-g", "", -1, 5),
    )
    .await;
    let odel = OffsetDeleteRequest::default()
        .with_group_id(GroupId(sb("diff-g")))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(tn("diff-a"))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(1),
                ]),
        ]);
    p.same("OffsetDelete v0", 0, &odel).await;
    p.same(
        "OffsetFetch v9: after OffsetDelete",
        9,
        &fetch_offsets("diff-g"),
    )
    .await;
    p.same(
        "DeleteGroups v2: empty and unknown",
        2,
        &DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(sb("diff-g")), GroupId(sb("diff-nogroup"))]),
    )
    .await;

    // KIP-848.
    let member = uuid::Uuid::from_u128(0x848).simple().to_string();
    let hb = |epoch: i32, subscribe: bool| {
        let mut r = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(sb("diff-848")))
            .with_member_id(sb(&member))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(if subscribe { 30_000 } else { -1 });
        if subscribe {
            r = r
                .with_subscribed_topic_names(Some(vec![tn("diff-a")]))
                .with_server_assignor(Some(sb("uniform")))
                .with_topic_partitions(Some(vec![]));
        }
        r
    };
    p.same("ConsumerGroupHeartbeat v1: join", 1, &hb(0, true))
        .await;
    p.same("ConsumerGroupHeartbeat v1: fenced epoch", 1, &hb(7, false))
        .await;
    p.same("ConsumerGroupHeartbeat v1: empty member id", 1, &{
        let mut r = hb(0, true);
        r.member_id = sb("");
        r
    })
    .await;
    let describe = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![GroupId(sb("diff-848")), GroupId(sb("diff-nogroup"))]);
    let (mut f, mut k) = p.quiet(1, &describe).await;
    for r in [&mut f, &mut k] {
        r.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    }
    p.compare_values("ConsumerGroupDescribe v1", f, k);
    p.same("ConsumerGroupHeartbeat v1: leave", 1, &hb(-1, false))
        .await;
}
