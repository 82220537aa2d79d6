use super::*;

fn settings() -> GroupSettings {
    crate::config::Config::default().group.clone()
}

fn hb(id: &str, epoch: i32, owned: Option<Assignment>) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: id.to_string(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed: Some(vec!["t".into()]),
        regex: None,
        server_assignor: None,
        owned,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
    }
}

#[test]
fn revoke_before_reassign() {
    let tid = Uuid::new_v4();
    let topics = move |n: &str| (n == "t").then_some((tid, 6));
    let all = || vec!["t".to_string()];
    let s = settings();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    let a = g.heartbeat(hb("a", 0, None), &topics, &all, &s, t);
    assert_eq!(a.member_epoch, 1, "one join is one epoch");
    let a_parts = a.assignment.clone().unwrap();
    assert_eq!(a_parts[&tid].len(), 6);
    // b joins: it gets nothing until a has revoked.
    let b = g.heartbeat(hb("b", 0, None), &topics, &all, &s, t);
    assert_eq!(
        b.assignment
            .unwrap()
            .values()
            .map(|p| p.len())
            .sum::<usize>(),
        0
    );
    let a2 = g.heartbeat(hb("a", 1, Some(a_parts.clone())), &topics, &all, &s, t);
    let kept = a2.assignment.unwrap();
    assert_eq!(kept[&tid].len(), 3);
    assert_eq!(a2.member_epoch, 1, "epoch waits for the revocation");
    // a confirms; it moves to epoch 2; b then gets the freed partitions.
    let a3 = g.heartbeat(hb("a", 1, Some(kept.clone())), &topics, &all, &s, t);
    assert_eq!(a3.member_epoch, 2);
    let b2 = g.heartbeat(
        hb("b", b.member_epoch, Some(Assignment::new())),
        &topics,
        &all,
        &s,
        t,
    );
    let got = b2.assignment.unwrap();
    assert_eq!(got[&tid].len(), 3);
    assert!(got[&tid].is_disjoint(&kept[&tid]));
    assert_eq!(g.state_name(), "Stable");
    // A wrong epoch is fenced.
    let f = g.heartbeat(hb("a", 7, None), &topics, &all, &s, t);
    assert_eq!(f.error.unwrap().0, ResponseError::FencedMemberEpoch);
}
