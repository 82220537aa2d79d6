//! Group coordinator through the wire protocol: classic rebalances, offsets, admin and the
//! KIP-848 heartbeat.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;

const FAST: &[(&str, &str)] = &[("group.initial.rebalance.delay.ms", "0")];

fn join_req(group: &str, member: &str, protocol_type: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(sb(member))
        .with_protocol_type(sb(protocol_type))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(sb("range"))
                .with_metadata(Bytes::from_static(b"meta")),
        ])
}

/// KIP-394 two-step join; returns the JoinGroup response.
async fn join(c: &mut Client, group: &str, protocol_type: &str) -> JoinGroupResponse {
    let first = c.call(9, &join_req(group, "", protocol_type)).await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    c.call(9, &join_req(group, first.member_id.as_str(), protocol_type))
        .await
}

fn sync_req(
    group: &str,
    generation: i32,
    member: &str,
    assignments: Vec<(&str, &'static [u8])>,
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id(generation)
        .with_member_id(sb(member))
        .with_protocol_type(Some(sb("consumer")))
        .with_protocol_name(Some(sb("range")))
        .with_assignments(
            assignments
                .into_iter()
                .map(|(m, a)| {
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(sb(m))
                        .with_assignment(Bytes::from_static(a))
                })
                .collect(),
        )
}

fn commit_req(
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(sb(member))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(tn(topic))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(0)
                        .with_committed_metadata(Some(sb("note"))),
                ]),
        ])
}

async fn fetch_offset(c: &mut Client, group: &str, topic: &str) -> (i64, String) {
    let r = c
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(sb(group)))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(tn(topic))
                        .with_partition_indexes(vec![0]),
                ])),
        )
        .await;
    let p = &r.topics[0].partitions[0];
    (
        p.committed_offset,
        p.metadata
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn find_coordinator_single_and_batched() {
    let b = start().await;
    let mut c = b.client().await;
    let r = c
        .call(
            3,
            &FindCoordinatorRequest::default()
                .with_key(sb("g"))
                .with_key_type(0),
        )
        .await;
    assert_eq!(
        (r.error_code, r.node_id.0, r.port as u16),
        (0, 1, b.addr.port())
    );
    let r = c
        .call(
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![sb("a"), sb("b")]),
        )
        .await;
    assert_eq!(r.coordinators.len(), 2);
    assert!(
        r.coordinators
            .iter()
            .all(|x| x.error_code == 0 && x.node_id.0 == 1)
    );
}

#[tokio::test]
async fn classic_rebalance_two_members_and_offsets() {
    let b = start_with(FAST).await;
    let mut a = b.client().await;
    let mut bb = b.client().await;
    a.create_topic("orders", 1).await;
    // First member forms generation 1 alone.
    let ja = join(&mut a, "g1", "consumer").await;
    assert_eq!((ja.error_code, ja.generation_id), (0, 1));
    let ida = ja.member_id.to_string();
    let s = a
        .call(5, &sync_req("g1", 1, &ida, vec![(&ida, b"all")]))
        .await;
    assert_eq!(s.assignment.as_ref(), b"all");
    // A second member joins: it waits until the first rejoins, then both see generation 2.
    let first = bb.call(9, &join_req("g1", "", "consumer")).await;
    let corr = bb
        .send(9, &join_req("g1", first.member_id.as_str(), "consumer"))
        .await;
    let hb = a
        .call(
            4,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(sb("g1")))
                .with_generation_id(1)
                .with_member_id(sb(&ida)),
        )
        .await;
    assert_eq!(hb.error_code, ResponseError::RebalanceInProgress.code());
    let ja2 = a.call(9, &join_req("g1", &ida, "consumer")).await;
    let jb = bb.recv::<JoinGroupRequest>(9, corr).await;
    assert_eq!((ja2.generation_id, jb.generation_id), (2, 2));
    let (leader, follower, lc, fc) = if ja2.leader == ja2.member_id {
        (
            ja2.member_id.to_string(),
            jb.member_id.to_string(),
            &mut a,
            &mut bb,
        )
    } else {
        (
            jb.member_id.to_string(),
            ja2.member_id.to_string(),
            &mut bb,
            &mut a,
        )
    };
    // The follower's sync waits for the leader's.
    let fcorr = fc.send(5, &sync_req("g1", 2, &follower, vec![])).await;
    let ls = lc
        .call(
            5,
            &sync_req("g1", 2, &leader, vec![(&leader, b"L"), (&follower, b"F")]),
        )
        .await;
    let fs = fc.recv::<SyncGroupRequest>(5, fcorr).await;
    assert_eq!(
        (ls.assignment.as_ref(), fs.assignment.as_ref()),
        (&b"L"[..], &b"F"[..])
    );

    // Offsets: members commit at the current generation; stale generations are refused.
    let r = lc
        .call(8, &commit_req("g1", 2, &leader, "orders", 42))
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let r = lc
        .call(8, &commit_req("g1", 1, &leader, "orders", 43))
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::IllegalGeneration.code()
    );
    let r = lc
        .call(8, &commit_req("g1", 2, "ghost", "orders", 43))
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownMemberId.code()
    );
    let r = lc.call(8, &commit_req("g1", -1, "", "orders", 43)).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownMemberId.code(),
        "no simple commits into an active group"
    );
    assert_eq!(
        fetch_offset(lc, "g1", "orders").await,
        (42, "note".to_string())
    );

    // DescribeGroups shows both members; DeleteGroups refuses a non-empty group.
    let d = lc
        .call(
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("g1"))]),
        )
        .await;
    assert_eq!(d.groups[0].group_state.as_str(), "Stable");
    assert_eq!(d.groups[0].members.len(), 2);
    let del = lc
        .call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("g1"))]),
        )
        .await;
    assert_eq!(
        del.results[0].error_code,
        ResponseError::NonEmptyGroup.code()
    );

    // Both leave (batched, v3+): the group is Empty and can be deleted with its offsets.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(sb("g1")))
        .with_members(vec![
            leave_group_request::MemberIdentity::default().with_member_id(sb(&leader)),
            leave_group_request::MemberIdentity::default().with_member_id(sb(&follower)),
        ]);
    let l = lc.call(5, &leave).await;
    assert!(l.members.iter().all(|m| m.error_code == 0));
    let lg = lc
        .call(
            5,
            &ListGroupsRequest::default().with_states_filter(vec![sb("Empty")]),
        )
        .await;
    assert_eq!(lg.groups.len(), 1);
    let del = lc
        .call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("g1"))]),
        )
        .await;
    assert_eq!(del.results[0].error_code, 0);
    assert_eq!(fetch_offset(lc, "g1", "orders").await.0, -1);
}

#[tokio::test]
async fn offsets_and_groups_survive_restart() {
    let mut b = start_with(FAST).await;
    let mut c = b.client().await;
    c.create_topic("t", 1).await;
    // A simple (group-less) commit, as admin tools and assign() consumers do.
    let r = c.call(8, &commit_req("simple", -1, "", "t", 7)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    // A Connect-style group (non-consumer protocol type) that stays stable.
    let j = join(&mut c, "connect-cluster", "connect").await;
    let id = j.member_id.to_string();
    c.call(
        5,
        &sync_req("connect-cluster", 1, &id, vec![(&id, b"tasks")])
            .with_protocol_type(Some(sb("connect"))),
    )
    .await;
    drop(c);
    b.restart(FAST).await;
    let mut c = b.client().await;
    assert_eq!(
        fetch_offset(&mut c, "simple", "t").await,
        (7, "note".to_string())
    );
    let d = c
        .call(
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("connect-cluster"))]),
        )
        .await;
    assert_eq!(d.groups[0].group_state.as_str(), "Stable");
    assert_eq!(d.groups[0].protocol_type.as_str(), "connect");
    // The restored member keeps its session: its heartbeat is accepted.
    let hb = c
        .call(
            4,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(sb("connect-cluster")))
                .with_generation_id(1)
                .with_member_id(sb(&id)),
        )
        .await;
    assert_eq!(hb.error_code, 0);
    let lg = c
        .call(
            5,
            &ListGroupsRequest::default().with_types_filter(vec![sb("classic")]),
        )
        .await;
    assert_eq!(lg.groups.len(), 2);
}

fn cg_heartbeat(
    group: &str,
    member: &str,
    epoch: i32,
    owned: Option<Vec<(uuid::Uuid, Vec<i32>)>>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(if epoch == 0 {
            Some(vec![tn("kip848")])
        } else {
            None
        })
        .with_topic_partitions(owned.map(|o| {
            o.into_iter()
                .map(|(id, ps)| {
                    consumer_group_heartbeat_request::TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(ps)
                })
                .collect()
        }))
}

fn parts(r: &ConsumerGroupHeartbeatResponse) -> Vec<(uuid::Uuid, Vec<i32>)> {
    r.assignment
        .as_ref()
        .map(|a| {
            a.topic_partitions
                .iter()
                .map(|t| (t.topic_id, t.partitions.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn consumer_protocol_heartbeat_reconciles() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("kip848", 4).await;
    let a = c.call(1, &cg_heartbeat("cg", "member-a", 0, None)).await;
    assert_eq!(a.error_code, 0);
    let a_parts = parts(&a);
    assert_eq!(a_parts[0].1.len(), 4);
    let bm = c.call(1, &cg_heartbeat("cg", "member-b", 0, None)).await;
    assert_eq!(bm.error_code, 0);
    // a is asked to give up half, confirms, and b then receives it.
    let a2 = c
        .call(
            1,
            &cg_heartbeat("cg", "member-a", a.member_epoch, Some(a_parts.clone())),
        )
        .await;
    let kept = parts(&a2);
    assert_eq!(kept[0].1.len(), 2);
    let a3 = c
        .call(
            1,
            &cg_heartbeat("cg", "member-a", a2.member_epoch, Some(kept.clone())),
        )
        .await;
    assert!(a3.member_epoch > a.member_epoch);
    let b2 = c
        .call(
            1,
            &cg_heartbeat("cg", "member-b", bm.member_epoch, Some(vec![])),
        )
        .await;
    let got = parts(&b2);
    assert_eq!(got[0].1.len(), 2);
    assert!(got[0].1.iter().all(|p| !kept[0].1.contains(p)));
    // Offsets from a member need its current epoch.
    let r = c
        .call(
            9,
            &commit_req("cg", b2.member_epoch, "member-b", "kip848", 5),
        )
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let r = c
        .call(
            9,
            &commit_req("cg", b2.member_epoch - 1, "member-b", "kip848", 5),
        )
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::StaleMemberEpoch.code()
    );
    let d = c
        .call(
            1,
            &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(sb("cg"))]),
        )
        .await;
    assert_eq!(d.groups[0].error_code, 0);
    assert_eq!(d.groups[0].members.len(), 2);
    assert_eq!(d.groups[0].group_state.as_str(), "Stable");
    // Fenced epoch and leave.
    let f = c.call(1, &cg_heartbeat("cg", "member-a", 99, None)).await;
    assert_eq!(f.error_code, ResponseError::FencedMemberEpoch.code());
    let l = c.call(1, &cg_heartbeat("cg", "member-a", -1, None)).await;
    assert_eq!((l.error_code, l.member_epoch), (0, -1));
    // A classic JoinGroup cannot enter a non-empty consumer group.
    let j = c.call(9, &join_req("cg", "", "consumer")).await;
    assert_eq!(
        j.error_code,
        ResponseError::InconsistentGroupProtocol.code()
    );
}

fn join_v(
    group: &str,
    member: &str,
    instance: Option<&str>,
    rebalance_ms: i32,
) -> JoinGroupRequest {
    join_req(group, member, "consumer")
        .with_session_timeout_ms(6_000)
        .with_rebalance_timeout_ms(rebalance_ms)
        .with_group_instance_id(instance.map(sb))
}

/// Issue 15, item 1: a client that subscribes, unsubscribes and resubscribes throws its
/// first (KIP-394) member id away. A new group's first join completes after the initial
/// delay whatever is pending; once the group exists, the thrown-away id expires after its
/// session timeout. Fjord used to keep it for 300 s and wait for it until the rebalance
/// timeout.
#[tokio::test]
async fn a_thrown_away_pending_member_id_does_not_stall_the_join() {
    let b = start_with(&[("group.initial.rebalance.delay.ms", "500")]).await;
    let mut c = b.client().await;
    let t = std::time::Instant::now();
    let thrown = c.call(5, &join_v("resub", "", None, 60_000)).await;
    assert_eq!(thrown.error_code, ResponseError::MemberIdRequired.code());
    let first = c.call(5, &join_v("resub", "", None, 60_000)).await;
    let a = first.member_id.to_string();
    let joined = c.call(5, &join_v("resub", &a, None, 60_000)).await;
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "first join took {:?}",
        t.elapsed()
    );
    let s = c
        .call(5, &sync_req("resub", 1, &a, vec![(&a, b"pa")]))
        .await;
    assert_eq!(s.error_code, 0);

    // The group is stable. A second consumer throws its first id away and resubscribes; the
    // join waits for the thrown-away ids (session 6 s) only until their sessions end.
    let mut c2 = b.client().await;
    let mut six = join_v("resub", "", None, 60_000);
    let thrown = c2.call(5, &six).await;
    assert_eq!(thrown.error_code, ResponseError::MemberIdRequired.code());
    let t = std::time::Instant::now();
    let second = c2.call(5, &six).await;
    six.member_id = second.member_id.clone();
    let corr = c2.send(5, &six).await;
    let a_again = c.call(5, &join_v("resub", &a, None, 60_000)).await;
    let b_joined = c2.recv::<JoinGroupRequest>(5, corr).await;
    assert_eq!((a_again.error_code, b_joined.error_code), (0, 0));
    assert_eq!(a_again.generation_id, 2);
    let took = t.elapsed();
    assert!(
        took < std::time::Duration::from_secs(9),
        "the join waited {took:?} for a member id nobody uses"
    );
}

/// Issue 15, item 2: a static leader that restarts and rejoins with JoinGroup v5 keeps the
/// generation; the other member keeps its partitions (Kafka's behaviour for every version).
#[tokio::test]
async fn a_restarted_static_leader_on_join_group_v5_does_not_rebalance() {
    let b = start_with(FAST).await;
    let (mut ca, mut cb) = (b.client().await, b.client().await);
    let a1 = ca.call(5, &join_v("st", "", Some("ia"), 10_000)).await;
    assert_eq!((a1.error_code, a1.generation_id), (0, 1));
    let a = a1.member_id.to_string();
    let s = ca.call(5, &sync_req("st", 1, &a, vec![(&a, b"all")])).await;
    assert_eq!(s.error_code, 0);
    let corr = cb.send(5, &join_v("st", "", Some("ib"), 10_000)).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let a2 = ca.call(5, &join_v("st", &a, Some("ia"), 10_000)).await;
    let b2 = cb.recv::<JoinGroupRequest>(5, corr).await;
    assert_eq!((a2.generation_id, b2.generation_id), (2, 2));
    assert_eq!(a2.leader.as_str(), a);
    let bid = b2.member_id.to_string();
    let corr = cb
        .send(
            5,
            &sync_req("st", 2, &bid, vec![]).with_group_instance_id(Some(sb("ib"))),
        )
        .await;
    let sa = ca
        .call(
            5,
            &sync_req("st", 2, &a, vec![(&a, b"pa"), (&bid, b"pb")])
                .with_group_instance_id(Some(sb("ia"))),
        )
        .await;
    let sb_ = cb.recv::<SyncGroupRequest>(5, corr).await;
    assert_eq!((sa.error_code, sb_.error_code), (0, 0));
    assert_eq!(sb_.assignment.as_ref(), b"pb");

    // The leader's process restarts: a new connection, no member id, the same instance id.
    drop(ca);
    let mut ca = b.client().await;
    let again = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        ca.call(5, &join_v("st", "", Some("ia"), 10_000)),
    )
    .await
    .expect("answered at once: no rebalance");
    assert_eq!((again.error_code, again.generation_id), (0, 2));
    assert_ne!(again.member_id.as_str(), a);
    // Told the old leader id, so it does not run the assignor.
    assert_eq!(again.leader.as_str(), a);
    assert!(again.members.is_empty());
    // The other member is not asked to rejoin and keeps its partitions.
    let hb = cb
        .call(
            3,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(sb("st")))
                .with_generation_id(2)
                .with_member_id(sb(&bid))
                .with_group_instance_id(Some(sb("ib"))),
        )
        .await;
    assert_eq!(hb.error_code, 0);
    let s = ca
        .call(
            5,
            &sync_req("st", 2, again.member_id.as_str(), vec![])
                .with_group_instance_id(Some(sb("ia"))),
        )
        .await;
    assert_eq!((s.error_code, s.assignment.as_ref()), (0, &b"pa"[..]));
}

fn group_config_req(
    group: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> IncrementalAlterConfigsRequest {
    incremental_alter(32, group, ops, false)
}

fn describe_group_configs(group: &str) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(32)
                .with_resource_name(sb(group)),
        ])
}

/// Issue 15, item 3: group configs (KIP-848) are described, altered within the broker's
/// bounds, survive a restart, and set the heartbeat interval and session timeout of the
/// group's members.
#[tokio::test]
async fn group_configs_are_validated_stored_and_applied() {
    let settings = &[
        ("group.consumer.min.session.timeout.ms", "1000"),
        ("group.consumer.min.heartbeat.interval.ms", "100"),
    ];
    let mut b = start_with(settings).await;
    let mut c = b.client().await;
    c.create_topic("kip848", 2).await;
    let d = c.call(4, &describe_group_configs("gc")).await;
    assert_eq!(
        d.results[0].error_code, 0,
        "{:?}",
        d.results[0].error_message
    );
    assert_eq!(d.results[0].configs.len(), 17);
    let r = c
        .call(
            1,
            &group_config_req(
                "gc",
                &[
                    ("consumer.session.timeout.ms", 0, Some("2000")),
                    ("consumer.heartbeat.interval.ms", 0, Some("300")),
                ],
            ),
        )
        .await;
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
    // Out of the broker's bounds, unknown, and not a number: refused as Kafka does.
    for (k, v, msg) in [
        (
            "consumer.session.timeout.ms",
            "999999",
            "consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms",
        ),
        (
            "no.such.config",
            "1",
            "Unknown group config name: no.such.config",
        ),
        (
            "consumer.heartbeat.interval.ms",
            "x",
            "Invalid value x for configuration consumer.heartbeat.interval.ms: Not a number of type INT",
        ),
    ] {
        let r = c.call(1, &group_config_req("gc", &[(k, 0, Some(v))])).await;
        assert_eq!(
            r.responses[0].error_code,
            ResponseError::InvalidConfig.code()
        );
        assert_eq!(r.responses[0].error_message.as_deref(), Some(msg));
    }
    let d = c.call(4, &describe_group_configs("gc")).await;
    let e = d.results[0]
        .configs
        .iter()
        .find(|e| e.name.as_str() == "consumer.session.timeout.ms")
        .unwrap();
    assert_eq!((e.value.as_deref(), e.config_source), (Some("2000"), 8));
    assert_eq!(
        e.synonyms[1].name.as_str(),
        "group.consumer.session.timeout.ms"
    );

    // The member is told the group's heartbeat interval, and expires after its session.
    let m = c.call(1, &cg_heartbeat("gc", "m1", 0, None)).await;
    assert_eq!((m.error_code, m.heartbeat_interval_ms), (0, 300));
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let late = c
        .call(1, &cg_heartbeat("gc", "m1", m.member_epoch, None))
        .await;
    assert_eq!(late.error_code, ResponseError::UnknownMemberId.code());

    // Stored durably.
    drop(c);
    b.restart(settings).await;
    let mut c = b.client().await;
    let d = c.call(4, &describe_group_configs("gc")).await;
    let e = d.results[0]
        .configs
        .iter()
        .find(|e| e.name.as_str() == "consumer.heartbeat.interval.ms")
        .unwrap();
    assert_eq!((e.value.as_deref(), e.config_source), (Some("300"), 8));
    let m = c.call(1, &cg_heartbeat("gc", "m2", 0, None)).await;
    assert_eq!((m.error_code, m.heartbeat_interval_ms), (0, 300));
}

fn broker_config_req(
    broker: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> IncrementalAlterConfigsRequest {
    incremental_alter(4, broker, ops, false)
}

/// Issue 15, item 4: every broker setting Kafka lets change at runtime is accepted and
/// described with its source; read-only ones, per-broker ones at the cluster level, unknown
/// names and ill-typed values are refused.
#[tokio::test]
async fn broker_dynamic_configs_take_kafkas_names() {
    let b = start().await;
    let mut c = b.client().await;
    let ok = |r: &IncrementalAlterConfigsResponse| {
        (
            r.responses[0].error_code,
            r.responses[0].error_message.as_ref().map(|s| s.to_string()),
        )
    };
    let r = c
        .call(
            1,
            &broker_config_req(
                "1",
                &[("sasl.kerberos.min.time.before.relogin", 0, Some("120000"))],
            ),
        )
        .await;
    assert_eq!(ok(&r), (0, None));
    let r = c
        .call(
            1,
            &broker_config_req("", &[("background.threads", 0, Some("12"))]),
        )
        .await;
    assert_eq!(ok(&r), (0, None));
    let refused = [
        (
            "",
            "sasl.kerberos.min.time.before.relogin",
            "1",
            ResponseError::InvalidRequest,
            "Cannot update these configs at default cluster level, broker id must be specified: [sasl.kerberos.min.time.before.relogin]",
        ),
        (
            "1",
            "group.max.size",
            "5",
            ResponseError::InvalidRequest,
            "Cannot update these configs dynamically: [group.max.size]",
        ),
        (
            "1",
            "num.io.threads",
            "abc",
            ResponseError::InvalidRequest,
            "Invalid value abc for configuration num.io.threads: Not a number of type INT",
        ),
        (
            "1",
            "no.such.setting",
            "1",
            ResponseError::InvalidConfig,
            "Unknown broker config name: no.such.setting",
        ),
        (
            "1",
            "num.io.thread",
            "8",
            ResponseError::InvalidConfig,
            "Unknown broker config name: num.io.thread (did you mean num.io.threads?)",
        ),
    ];
    for (res, k, v, code, msg) in refused {
        let r = c.call(1, &broker_config_req(res, &[(k, 0, Some(v))])).await;
        assert_eq!(ok(&r), (code.code(), Some(msg.to_string())), "{k}");
    }
    let d = c
        .call(
            4,
            &DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(sb("1")),
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(sb("")),
                ]),
        )
        .await;
    let find = |i: usize, n: &str| {
        d.results[i]
            .configs
            .iter()
            .find(|e| e.name.as_str() == n)
            .map(|e| {
                (
                    e.value.as_ref().map(|s| s.to_string()),
                    e.config_source,
                    e.read_only,
                )
            })
    };
    assert_eq!(
        find(0, "sasl.kerberos.min.time.before.relogin"),
        Some((Some("120000".into()), 2, false))
    );
    assert_eq!(
        find(0, "background.threads"),
        Some((Some("12".into()), 3, false))
    );
    assert_eq!(
        find(1, "background.threads"),
        Some((Some("12".into()), 3, false))
    );
    // Deleted again.
    let r = c
        .call(
            1,
            &broker_config_req("1", &[("sasl.kerberos.min.time.before.relogin", 1, None)]),
        )
        .await;
    assert_eq!(ok(&r), (0, None));
}
