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

/// Two topics, "t" (its partition count adjustable) and "u" (2 partitions), the settings,
/// and a session timeout short enough to reason about. Time is whatever `Instant` a test
/// passes in: nothing here reads the clock.
struct World {
    t: Uuid,
    u: Uuid,
    t_partitions: std::cell::Cell<i32>,
    s: GroupSettings,
}

impl World {
    fn new() -> Self {
        let mut s = settings();
        s.consumer_session_timeout_ms = 10_000;
        World {
            t: Uuid::new_v4(),
            u: Uuid::new_v4(),
            t_partitions: std::cell::Cell::new(6),
            s,
        }
    }

    fn beat(&self, g: &mut ConsumerGroup, req: HeartbeatRequest, now: Instant) -> HeartbeatResult {
        let topics = |n: &str| match n {
            "t" => Some((self.t, self.t_partitions.get())),
            "u" => Some((self.u, 2)),
            _ => None,
        };
        let all = || vec!["t".to_string(), "u".to_string()];
        g.heartbeat(req, &topics, &all, &self.s, now)
    }

    /// A member that joined and then settled (acknowledged every revocation): returns its
    /// epoch and partitions.
    fn settle(&self, g: &mut ConsumerGroup, id: &str, now: Instant) -> (i32, Assignment) {
        let m = g.member(id).unwrap();
        let (mut epoch, mut owned) = (m.member_epoch, m.assigned.clone());
        for _ in 0..4 {
            let r = self.beat(g, hb(id, epoch, Some(owned.clone())), now);
            assert!(r.error.is_none(), "{:?}", r.error);
            epoch = r.member_epoch;
            if let Some(a) = r.assignment {
                owned = a;
            }
        }
        (epoch, owned)
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(|p| p.len()).sum()
}

fn code(r: &HeartbeatResult) -> Option<ResponseError> {
    r.error.as_ref().map(|e| e.0)
}

fn with_instance(mut r: HeartbeatRequest, instance: &str) -> HeartbeatRequest {
    r.instance_id = Some(instance.to_string());
    r
}

#[test]
fn a_join_bumps_the_group_and_assignment_epochs_and_assigns() {
    let w = World::new();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    assert_eq!(
        (g.group_epoch, g.assignment_epoch, g.state_name()),
        (0, 0, "Empty")
    );
    let a = w.beat(&mut g, hb("a", 0, None), t);
    assert!(a.error.is_none());
    assert_eq!(
        (g.group_epoch, g.assignment_epoch, a.member_epoch),
        (1, 1, 1)
    );
    assert_eq!(count(a.assignment.as_ref().unwrap()), 6);
    assert!(g.dirty, "a join is persisted");
    assert!(g.empty_since_ms.is_none());
    assert_eq!(g.state_name(), "Stable");
    // A steady heartbeat changes nothing: no epoch, no assignment resent, nothing to save.
    g.dirty = false;
    let again = w.beat(&mut g, hb("a", 1, a.assignment.clone()), t);
    assert_eq!((again.member_epoch, g.group_epoch), (1, 1));
    assert!(again.assignment.is_none());
    assert!(!g.dirty);
}

#[test]
fn stale_and_fenced_member_epochs() {
    let w = World::new();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    let a = w.beat(&mut g, hb("a", 0, None), t);
    let all = a.assignment.unwrap();
    let b = w.beat(&mut g, hb("b", 0, Some(Assignment::new())), t);
    assert_eq!((g.group_epoch, b.member_epoch), (2, 2));
    // a is asked to revoke half and stays at epoch 1 until it confirms.
    let a1 = w.beat(&mut g, hb("a", 1, Some(all.clone())), t);
    let kept = a1.assignment.unwrap();
    assert_eq!((a1.member_epoch, count(&kept)), (1, 3));
    let f = w.beat(&mut g, hb("a", 7, None), t);
    assert_eq!(code(&f), Some(ResponseError::FencedMemberEpoch));
    let a2 = w.beat(&mut g, hb("a", 1, Some(kept.clone())), t);
    assert_eq!(a2.member_epoch, 2);
    // a lost that response and repeats epoch 1 with what it owns: accepted, told epoch 2.
    let lost = w.beat(&mut g, hb("a", 1, Some(kept.clone())), t);
    assert_eq!((code(&lost), lost.member_epoch), (None, 2));
    // ...but not while claiming partitions it has given up.
    let greedy = w.beat(&mut g, hb("a", 1, Some(all)), t);
    assert_eq!(code(&greedy), Some(ResponseError::FencedMemberEpoch));
    // OffsetCommit/OffsetFetch: older is stale, newer is fenced.
    assert_eq!(g.validate_member_epoch("a", 2), Ok(()));
    assert_eq!(
        g.validate_member_epoch("a", 1),
        Err(ResponseError::StaleMemberEpoch)
    );
    assert_eq!(
        g.validate_member_epoch("a", 3),
        Err(ResponseError::FencedMemberEpoch)
    );
    assert_eq!(
        g.validate_member_epoch("zz", 2),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn unknown_members_and_bad_requests() {
    let w = World::new();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    w.beat(&mut g, hb("a", 0, None), t);
    let ghost = w.beat(&mut g, hb("ghost", 3, None), t);
    assert_eq!(code(&ghost), Some(ResponseError::UnknownMemberId));
    let ghost_leave = w.beat(&mut g, hb("ghost", -1, None), t);
    assert_eq!(code(&ghost_leave), Some(ResponseError::UnknownMemberId));
    let mut no_sub = hb("c", 0, None);
    no_sub.subscribed = None;
    assert_eq!(
        code(&w.beat(&mut g, no_sub, t)),
        Some(ResponseError::InvalidRequest)
    );
    let mut bad_assignor = hb("c", 0, None);
    bad_assignor.server_assignor = Some("sticky-of-my-own".into());
    assert_eq!(
        code(&w.beat(&mut g, bad_assignor, t)),
        Some(ResponseError::UnsupportedAssignor)
    );
    assert_eq!(g.members.len(), 1, "failed requests add nobody");
    assert_eq!(g.group_epoch, 1);
}

#[test]
fn a_partition_waits_until_its_previous_owner_revoked_it() {
    let w = World::new();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    let all = w.beat(&mut g, hb("a", 0, None), t).assignment.unwrap();
    let b = w.beat(&mut g, hb("b", 0, Some(Assignment::new())), t);
    assert_eq!(count(b.assignment.as_ref().unwrap()), 0);
    let kept = w
        .beat(&mut g, hb("a", 1, Some(all.clone())), t)
        .assignment
        .unwrap();
    // a keeps listing the revoked partitions: they stay out of b's reach.
    for _ in 0..3 {
        let a = w.beat(&mut g, hb("a", 1, Some(all.clone())), t);
        assert_eq!(a.member_epoch, 1);
        let b = w.beat(&mut g, hb("b", 2, Some(Assignment::new())), t);
        assert!(b.assignment.is_none_or(|x| count(&x) == 0));
        assert_eq!(g.state_name(), "Reconciling");
    }
    w.beat(&mut g, hb("a", 1, Some(kept.clone())), t);
    let got = w
        .beat(&mut g, hb("b", 2, Some(Assignment::new())), t)
        .assignment
        .unwrap();
    assert_eq!(count(&got), 3);
    assert!(got[&w.t].is_disjoint(&kept[&w.t]));
    assert_eq!(g.state_name(), "Stable");
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_removed() {
    let w = World::new();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    let all = w.beat(&mut g, hb("a", 0, None), t).assignment.unwrap();
    w.beat(&mut g, hb("b", 0, Some(Assignment::new())), t);
    // a is asked to revoke (rebalance timeout 30 s) and never confirms, though it stays
    // alive; b heartbeats too.
    w.beat(&mut g, hb("a", 1, Some(all.clone())), t);
    let s9 = t + Duration::from_secs(9);
    w.beat(&mut g, hb("a", 1, Some(all.clone())), s9);
    w.beat(&mut g, hb("b", 2, Some(Assignment::new())), s9);
    let s18 = t + Duration::from_secs(18);
    w.beat(&mut g, hb("a", 1, Some(all.clone())), s18);
    w.beat(&mut g, hb("b", 2, Some(Assignment::new())), s18);
    let s27 = t + Duration::from_secs(27);
    w.beat(&mut g, hb("a", 1, Some(all.clone())), s27);
    w.beat(&mut g, hb("b", 2, Some(Assignment::new())), s27);
    g.tick(t + Duration::from_millis(29_999), &w.s);
    assert!(g.member("a").is_some());
    g.tick(t + Duration::from_secs(30), &w.s);
    assert!(g.member("a").is_none(), "revocation timeout");
    assert_eq!(g.group_epoch, 3);
    let b = w.beat(
        &mut g,
        hb("b", 2, Some(Assignment::new())),
        t + Duration::from_secs(30),
    );
    assert_eq!((b.member_epoch, count(&b.assignment.unwrap())), (3, 6));
}

#[test]
fn a_silent_member_expires_with_its_session() {
    let w = World::new();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    let a = w.beat(&mut g, hb("a", 0, None), t);
    // Heartbeats keep the session alive.
    w.beat(
        &mut g,
        hb("a", 1, a.assignment.clone()),
        t + Duration::from_secs(8),
    );
    g.tick(t + Duration::from_secs(15), &w.s);
    assert!(g.member("a").is_some());
    g.dirty = false;
    g.tick(t + Duration::from_secs(18), &w.s);
    assert!(
        g.member("a").is_some(),
        "exactly the session timeout is not over it"
    );
    g.tick(t + Duration::from_millis(18_001), &w.s);
    assert!(g.is_empty());
    assert_eq!((g.state_name(), g.group_epoch), ("Empty", 2));
    assert!(g.dirty && g.empty_since_ms.is_some());
    let late = w.beat(&mut g, hb("a", 1, None), t + Duration::from_secs(19));
    assert_eq!(code(&late), Some(ResponseError::UnknownMemberId));
}

#[test]
fn a_static_member_leaves_for_a_while_and_comes_back_to_its_partitions() {
    let w = World::new();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    w.beat(&mut g, with_instance(hb("a", 0, None), "i-a"), t);
    w.beat(&mut g, hb("b", 0, Some(Assignment::new())), t);
    let (a_epoch, a_parts) = w.settle(&mut g, "a", t);
    let (b_epoch, b_parts) = w.settle(&mut g, "b", t);
    assert_eq!(
        (a_epoch, b_epoch, count(&a_parts), count(&b_parts)),
        (2, 2, 3, 3)
    );
    let epoch = g.group_epoch;
    // Epoch -2: a static member's temporary leave. It keeps its partitions; nobody moves.
    let left = w.beat(&mut g, with_instance(hb("a", -2, None), "i-a"), t);
    assert_eq!((code(&left), left.member_epoch), (None, -2));
    assert_eq!(g.group_epoch, epoch);
    let b = w.beat(&mut g, hb("b", b_epoch, Some(b_parts.clone())), t);
    assert!(b.assignment.is_none(), "b does not get a's partitions");
    // It restarts with a new member id and the same instance id: same epoch and partitions,
    // no new group epoch, and the old incarnation is gone.
    let later = t + Duration::from_secs(5);
    let back = w.beat(&mut g, with_instance(hb("a2", 0, None), "i-a"), later);
    assert!(back.error.is_none());
    assert_eq!(
        (back.member_id.as_str(), back.member_epoch),
        ("a2", a_epoch)
    );
    assert_eq!(back.assignment.unwrap(), a_parts);
    assert_eq!(g.group_epoch, epoch);
    assert!(g.member("a").is_none());
    let old = w.beat(&mut g, hb("a", a_epoch, None), later);
    assert_eq!(code(&old), Some(ResponseError::UnknownMemberId));
    // Away for longer than its session: it is removed, and b gets everything.
    w.beat(&mut g, with_instance(hb("a2", -2, None), "i-a"), later);
    let gone = later + Duration::from_millis(10_001);
    w.beat(&mut g, hb("b", b_epoch, Some(b_parts.clone())), gone);
    g.tick(gone, &w.s);
    assert!(g.member("a2").is_none());
    let b = w.beat(&mut g, hb("b", b_epoch, Some(b_parts)), gone);
    assert_eq!(count(&b.assignment.unwrap()), 6);
    assert_eq!(b.member_epoch, epoch + 1);
}

#[test]
fn leaving_with_epoch_minus_one_frees_the_partitions_at_once() {
    let w = World::new();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    w.beat(&mut g, hb("a", 0, None), t);
    w.beat(
        &mut g,
        with_instance(hb("b", 0, Some(Assignment::new())), "i-b"),
        t,
    );
    let (a_epoch, a_parts) = w.settle(&mut g, "a", t);
    w.settle(&mut g, "b", t);
    let epoch = g.group_epoch;
    // A static member leaving for good (-1) is removed like a dynamic one.
    let left = w.beat(&mut g, with_instance(hb("b", -1, None), "i-b"), t);
    assert_eq!((code(&left), left.member_epoch), (None, -1));
    assert!(g.member("b").is_none());
    assert_eq!(g.group_epoch, epoch + 1);
    let a = w.beat(&mut g, hb("a", a_epoch, Some(a_parts)), t);
    assert_eq!(
        (a.member_epoch, count(&a.assignment.unwrap())),
        (epoch + 1, 6)
    );
    let last = w.beat(&mut g, hb("a", -1, None), t);
    assert_eq!(last.member_epoch, -1);
    assert!(g.is_empty() && g.empty_since_ms.is_some());
}

#[test]
fn subscription_and_metadata_changes_bump_the_epochs() {
    let w = World::new();
    let t = Instant::now();
    let mut g = ConsumerGroup::new("g", "uniform");
    let a = w.beat(&mut g, hb("a", 0, None), t);
    let owned = a.assignment.unwrap();
    // Subscribing to u as well: one new group epoch, a target for it, and a gets u too.
    let mut more = hb("a", 1, Some(owned));
    more.subscribed = Some(vec!["u".into(), "t".into()]);
    let r = w.beat(&mut g, more, t);
    assert_eq!(
        (g.group_epoch, g.assignment_epoch, r.member_epoch),
        (2, 2, 2)
    );
    let owned = r.assignment.unwrap();
    assert_eq!((owned[&w.t].len(), owned[&w.u].len()), (6, 2));
    // The same subscription in another order (or repeated) is no change.
    let mut same = hb("a", 2, Some(owned.clone()));
    same.subscribed = Some(vec!["t".into(), "u".into(), "t".into()]);
    let r = w.beat(&mut g, same, t);
    assert_eq!((g.group_epoch, r.member_epoch), (2, 2));
    // t grows to 8 partitions: a new epoch, and a gets the new ones.
    w.t_partitions.set(8);
    let mut grown = hb("a", 2, Some(owned));
    grown.subscribed = None;
    let r = w.beat(&mut g, grown, t);
    assert_eq!(
        (g.group_epoch, g.assignment_epoch, r.member_epoch),
        (3, 3, 3)
    );
    assert_eq!(r.assignment.unwrap()[&w.t].len(), 8);
}
