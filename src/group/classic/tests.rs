use super::*;

fn settings() -> GroupSettings {
    crate::config::Config::default().group.clone()
}

fn req(member: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"m"))],
        require_known_member_id: true,
        supports_skip_assignment: true,
    }
}

fn now_result<T>(r: Reply<T>) -> T {
    match r {
        Reply::Now(t) => t,
        Reply::Wait(mut rx) => rx.try_recv().expect("completed"),
    }
}

#[test]
fn two_step_join_sync_heartbeat_leave() {
    let mut s = settings();
    s.initial_rebalance_delay_ms = 0;
    let t = Instant::now();
    let mut g = ClassicGroup::new("g");
    let first = now_result(g.join(req("", None), &s, t));
    assert_eq!(first.error, ResponseError::MemberIdRequired.code());
    let joined = now_result(g.join(req(&first.member_id, None), &s, t));
    assert_eq!((joined.error, joined.generation), (0, 1));
    assert_eq!(joined.leader, first.member_id);
    assert_eq!(joined.members.len(), 1);
    let id = joined.member_id.clone();
    let synced = now_result(g.sync(
        SyncRequest {
            member_id: &id,
            instance_id: None,
            generation: 1,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(id.clone(), Bytes::from_static(b"a"))],
        },
        t,
    ));
    assert_eq!(synced.assignment, Bytes::from_static(b"a"));
    assert_eq!(g.state, ClassicState::Stable);
    assert_eq!(g.heartbeat(&id, None, 1, t), Ok(()));
    assert_eq!(
        g.heartbeat(&id, None, 0, t),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        g.heartbeat("x", None, 1, t),
        Err(ResponseError::UnknownMemberId)
    );
    // A second member triggers a rebalance; the first learns via heartbeat.
    let m2 = now_result(g.join(req("", None), &s, t)).member_id;
    let mut rx2 = match g.join(req(&m2, None), &s, t) {
        Reply::Wait(rx) => rx,
        Reply::Now(_) => panic!("must wait for the others"),
    };
    assert_eq!(
        g.heartbeat(&id, None, 1, t),
        Err(ResponseError::RebalanceInProgress)
    );
    let r1 = now_result(g.join(req(&id, None), &s, t));
    let r2 = rx2.try_recv().unwrap();
    assert_eq!((r1.generation, r2.generation), (2, 2));
    assert_eq!(
        r1.members.len() + r2.members.len(),
        2,
        "only the leader sees members"
    );
    // Session expiry removes a silent member.
    let later = t + Duration::from_secs(11);
    g.sync(
        SyncRequest {
            member_id: &id,
            instance_id: None,
            generation: 2,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![],
        },
        t,
    );
    g.tick(later, &s);
    assert!(g.members.is_empty());
    assert_eq!(g.state, ClassicState::Empty);
}

#[test]
fn static_member_rejoins_without_rebalance() {
    let mut s = settings();
    s.initial_rebalance_delay_ms = 0;
    let t = Instant::now();
    let mut g = ClassicGroup::new("g");
    let a = now_result(g.join(req("", Some("a")), &s, t));
    let id = a.member_id.clone();
    now_result(g.sync(
        SyncRequest {
            member_id: &id,
            instance_id: Some("a"),
            generation: 1,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(id.clone(), Bytes::from_static(b"p0"))],
        },
        t,
    ));
    let again = now_result(g.join(req("", Some("a")), &s, t));
    assert_eq!(again.generation, 1, "no new generation");
    assert!(again.skip_assignment);
    assert_ne!(again.member_id, id);
    assert_eq!(
        g.heartbeat(&id, Some("a"), 1, t),
        Err(ResponseError::FencedInstanceId)
    );
    let synced = now_result(g.sync(
        SyncRequest {
            member_id: &again.member_id,
            instance_id: Some("a"),
            generation: 1,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![],
        },
        t,
    ));
    assert_eq!(synced.assignment, Bytes::from_static(b"p0"));
}

#[test]
fn static_member_with_new_metadata_bytes_keeps_the_generation() {
    let mut s = settings();
    s.initial_rebalance_delay_ms = 0;
    let t = Instant::now();
    let mut g = ClassicGroup::new("g");
    let a = now_result(g.join(req("", Some("a")), &s, t));
    now_result(g.sync(
        SyncRequest {
            member_id: &a.member_id,
            instance_id: Some("a"),
            generation: 1,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(a.member_id.clone(), Bytes::from_static(b"p0"))],
        },
        t,
    ));
    // Same protocol name, different metadata (the client embeds its generation).
    let mut again_req = req("", Some("a"));
    again_req.protocols = vec![("range".into(), Bytes::from_static(b"other-bytes"))];
    let again = now_result(g.join(again_req, &s, t));
    assert_eq!((again.error, again.generation), (0, 1));
    assert_eq!(g.state, ClassicState::Stable);
}

/// Joins `ids` (in order, the first becomes leader) into a stable generation with the given
/// assignments, delay 0.
fn stable_static_group(s: &GroupSettings, t: Instant) -> (ClassicGroup, String, String) {
    let mut g = ClassicGroup::new("g");
    let a = match g.join(req("", Some("a")), s, t) {
        Reply::Now(r) => r,
        Reply::Wait(mut rx) => rx.try_recv().expect("a joined"),
    };
    // b joins: a new rebalance that a must rejoin.
    let mut rx_b = match g.join(req("", Some("b")), s, t) {
        Reply::Wait(rx) => rx,
        Reply::Now(_) => panic!("b must wait for a"),
    };
    let a2 = now_result(g.join(req(&a.member_id, Some("a")), s, t));
    let b = rx_b.try_recv().unwrap();
    assert_eq!((a2.generation, b.generation), (2, 2));
    assert_eq!(a2.leader, a.member_id);
    let (ida, idb) = (a.member_id.clone(), b.member_id.clone());
    let _ = g.sync(
        SyncRequest {
            member_id: &idb,
            instance_id: Some("b"),
            generation: 2,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![],
        },
        t,
    );
    now_result(g.sync(
        SyncRequest {
            member_id: &ida,
            instance_id: Some("a"),
            generation: 2,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![
                (ida.clone(), Bytes::from_static(b"pa")),
                (idb.clone(), Bytes::from_static(b"pb")),
            ],
        },
        t,
    ));
    assert_eq!(g.state, ClassicState::Stable);
    (g, ida, idb)
}

#[test]
fn static_leader_rejoining_before_v9_does_not_rebalance() {
    let mut s = settings();
    s.initial_rebalance_delay_ms = 0;
    let t = Instant::now();
    let (mut g, old_leader, b) = stable_static_group(&s, t);
    // The leader restarts (new process, no member id) and rejoins with JoinGroup v5.
    let mut r = req("", Some("a"));
    r.supports_skip_assignment = false;
    let again = now_result(g.join(r, &s, t));
    assert_eq!((again.error, again.generation), (0, 2), "same generation");
    assert_eq!(g.state, ClassicState::Stable, "no rebalance");
    // Told the old leader id, so it acts as a follower and runs no assignor.
    assert_eq!(again.leader, old_leader);
    assert!(again.members.is_empty() && !again.skip_assignment);
    // The other member is undisturbed.
    assert_eq!(g.heartbeat(&b, Some("b"), 2, t), Ok(()));
    let synced = now_result(g.sync(
        SyncRequest {
            member_id: &again.member_id,
            instance_id: Some("a"),
            generation: 2,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![],
        },
        t,
    ));
    assert_eq!(synced.assignment, Bytes::from_static(b"pa"));
    assert_eq!(g.leader.as_deref(), Some(again.member_id.as_str()));
}

#[test]
fn static_leader_rejoining_on_v9_skips_assignment() {
    let mut s = settings();
    s.initial_rebalance_delay_ms = 0;
    let t = Instant::now();
    let (mut g, _, b) = stable_static_group(&s, t);
    let again = now_result(g.join(req("", Some("a")), &s, t));
    assert_eq!((again.error, again.generation), (0, 2));
    assert_eq!(again.leader, again.member_id);
    assert!(again.skip_assignment);
    assert_eq!(again.members.len(), 2);
    assert_eq!(g.state, ClassicState::Stable);
    assert_eq!(g.heartbeat(&b, Some("b"), 2, t), Ok(()));
}

#[test]
fn first_join_of_a_new_group_completes_after_the_initial_delay_despite_a_pending_id() {
    let s = settings();
    let delay = Duration::from_millis(s.initial_rebalance_delay_ms as u64);
    let t = Instant::now();
    let mut g = ClassicGroup::new("g");
    // Subscribe, unsubscribe: the first member id is thrown away.
    let thrown = now_result(g.join(req("", None), &s, t));
    assert_eq!(thrown.error, ResponseError::MemberIdRequired.code());
    // Resubscribe.
    let id = now_result(g.join(req("", None), &s, t)).member_id;
    let mut rx = match g.join(req(&id, None), &s, t) {
        Reply::Wait(rx) => rx,
        Reply::Now(_) => panic!("waits for the initial delay"),
    };
    g.tick(t + delay + Duration::from_millis(10), &s);
    let joined = rx.try_recv().expect("completed after the initial delay");
    assert_eq!((joined.error, joined.generation), (0, 1));
}

#[test]
fn a_pending_member_expires_after_its_session_timeout() {
    let mut s = settings();
    s.initial_rebalance_delay_ms = 0;
    let t = Instant::now();
    let mut g = ClassicGroup::new("g");
    let a = now_result(g.join(req("", None), &s, t)).member_id;
    let a1 = now_result(g.join(req(&a, None), &s, t));
    assert_eq!(a1.generation, 1);
    let _ = g.sync(
        SyncRequest {
            member_id: &a,
            instance_id: None,
            generation: 1,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![],
        },
        t,
    );
    // A second consumer gets an id, throws it away and starts over.
    let thrown = now_result(g.join(req("", None), &s, t));
    assert_eq!(thrown.error, ResponseError::MemberIdRequired.code());
    let b = now_result(g.join(req("", None), &s, t)).member_id;
    let mut rx_b = match g.join(req(&b, None), &s, t) {
        Reply::Wait(rx) => rx,
        Reply::Now(_) => panic!("must wait"),
    };
    let mut rx_a = match g.join(req(&a, None), &s, t) {
        Reply::Wait(rx) => rx,
        Reply::Now(_) => panic!("waits for the pending member"),
    };
    // Everyone known has joined, but the thrown-away id is pending: heartbeat within the
    // session (10 s) and wait.
    g.tick(t + Duration::from_secs(5), &s);
    assert!(rx_a.try_recv().is_err());
    g.tick(t + Duration::from_millis(10_100), &s);
    let (ra, rb) = (rx_a.try_recv().unwrap(), rx_b.try_recv().unwrap());
    assert_eq!((ra.error, rb.error, ra.generation), (0, 0, 2));
}
