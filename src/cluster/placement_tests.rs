use std::collections::BTreeMap;

use super::*;

fn counts(assignments: &[Vec<i32>]) -> (BTreeMap<i32, usize>, BTreeMap<i32, usize>) {
    let mut leaders = BTreeMap::new();
    let mut replicas = BTreeMap::new();
    for a in assignments {
        *leaders.entry(a[0]).or_insert(0) += 1;
        for b in a {
            *replicas.entry(*b).or_insert(0) += 1;
        }
    }
    (leaders, replicas)
}

fn spread(m: &BTreeMap<i32, usize>, brokers: &[i32]) -> usize {
    let v: Vec<usize> = brokers.iter().map(|b| *m.get(b).unwrap_or(&0)).collect();
    v.iter().max().unwrap() - v.iter().min().unwrap()
}

#[test]
fn replication_factor_above_live_brokers_is_refused() {
    assert_eq!(
        place(&[1, 2], 3, 3, 0),
        Err(PlacementError::InvalidReplicationFactor {
            requested: 3,
            live: 2
        })
    );
    assert_eq!(place(&[1, 2], 3, 3, 0).unwrap_err().error_code(), 38);
    assert!(place(&[1, 2], 3, 0, 0).is_err());
    assert!(place(&[], 1, 1, 0).is_err());
    assert_eq!(
        place(&[1, 2], 0, 1, 0),
        Err(PlacementError::InvalidPartitions(0))
    );
}

#[test]
fn replicas_are_distinct_live_brokers() {
    let live = [3, 1, 7, 5];
    for rf in 1..=4 {
        for start in 0..10 {
            for a in place(&live, 12, rf, start).unwrap() {
                assert_eq!(a.len(), rf as usize);
                let mut s = a.clone();
                s.sort();
                s.dedup();
                assert_eq!(s.len(), a.len(), "{a:?}");
                assert!(a.iter().all(|b| live.contains(b)));
            }
        }
    }
}

#[test]
fn one_topic_spreads_leaders_and_replicas_evenly() {
    let live = [1, 2, 3, 4, 5];
    for (partitions, rf) in [(10, 3), (5, 2), (20, 5), (15, 1)] {
        let a = place(&live, partitions, rf, 0).unwrap();
        let (leaders, replicas) = counts(&a);
        assert_eq!(spread(&leaders, &live), 0, "leaders {leaders:?}");
        assert_eq!(spread(&replicas, &live), 0, "replicas {replicas:?}");
    }
}

#[test]
fn many_topics_spread_evenly_with_a_rotating_start() {
    // The controller starts each topic where the partitions so far end: 200 topics of 1 to
    // 4 partitions on 5 brokers, replication factor 3.
    let live = [1, 2, 3, 4, 5];
    let mut all = Vec::new();
    for t in 0..200 {
        let partitions = 1 + t % 4;
        all.extend(place(&live, partitions, 3, all.len()).unwrap());
    }
    let (leaders, replicas) = counts(&all);
    assert!(spread(&leaders, &live) <= 1, "leaders {leaders:?}");
    assert!(spread(&replicas, &live) <= 2, "replicas {replicas:?}");
    // And followers do not always sit next to the leader: every (leader, follower) pair
    // occurs.
    let mut pairs = std::collections::BTreeSet::new();
    for a in &all {
        for f in &a[1..] {
            pairs.insert((a[0], *f));
        }
    }
    assert_eq!(pairs.len(), 5 * 4);
}

#[test]
fn single_partition_topics_do_not_pile_on_one_broker() {
    let live = [1, 2, 3];
    let mut all = Vec::new();
    for _ in 0..30 {
        all.extend(place(&live, 1, 1, all.len()).unwrap());
    }
    let (leaders, _) = counts(&all);
    assert_eq!(spread(&leaders, &live), 0, "{leaders:?}");
}

#[test]
fn election_picks_first_live_isr_member_in_preferred_order() {
    let live = |b: i32| b != 2;
    assert_eq!(elect_leader(&[2, 3, 1], &[1, 2, 3], live), 3);
    assert_eq!(elect_leader(&[1, 2, 3], &[3, 2], live), 3);
    assert_eq!(elect_leader(&[1, 2, 3], &[2], live), NO_LEADER);
}

fn state(replicas: Vec<i32>, isr: Vec<i32>, leader: i32) -> PartitionState {
    PartitionState {
        replicas,
        isr,
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        adding: vec![],
        removing: vec![],
    }
}

#[test]
fn fencing_moves_leadership_and_shrinks_isr() {
    let all_live = |_| true;
    // Leader fenced: next ISR member in preferred order leads.
    assert_eq!(
        on_fence(&state(vec![1, 2, 3], vec![1, 2, 3], 1), 1, all_live),
        Some((vec![2, 3], 2))
    );
    // A follower fenced: it only leaves the ISR.
    assert_eq!(
        on_fence(&state(vec![1, 2, 3], vec![1, 2, 3], 1), 3, all_live),
        Some((vec![1, 2], 1))
    );
    // Not involved: no change.
    assert_eq!(
        on_fence(&state(vec![1, 2, 3], vec![1, 2], 1), 3, all_live),
        None
    );
    // The last ISR member stays in the ISR, and the partition goes offline.
    assert_eq!(
        on_fence(&state(vec![1, 2], vec![1], 1), 1, all_live),
        Some((vec![1], NO_LEADER))
    );
    // The other ISR member is fenced too: offline.
    assert_eq!(
        on_fence(&state(vec![1, 2], vec![1, 2], 1), 1, |b| b != 2),
        Some((vec![2], NO_LEADER))
    );
}

#[test]
fn explicit_assignments_are_validated() {
    use crate::cluster::image::apply;
    use crate::cluster::records::*;
    let mut img = Image::default();
    for id in 1..=3 {
        apply(
            &mut img,
            &MetadataRecord::RegisterBroker(RegisterBroker {
                broker_id: id,
                incarnation_id: uuid::Uuid::from_u128(id as u128),
                broker_epoch: id as i64,
                endpoints: vec![],
                rack: None,
                fenced: true,
                in_controlled_shutdown: false,
            }),
        )
        .unwrap();
        if id != 3 {
            apply(
                &mut img,
                &MetadataRecord::UnfenceBroker(UnfenceBroker {
                    id,
                    epoch: id as i64,
                }),
            )
            .unwrap();
        }
    }
    assert!(validate_assignment(&img, &[vec![1, 2], vec![2, 3]]).is_ok());
    for bad in [
        vec![],
        vec![vec![]],
        vec![vec![1, 2], vec![2]],
        vec![vec![1, 1]],
        vec![vec![1, 9]],
        vec![vec![3]],
    ] {
        let err = validate_assignment(&img, &bad).unwrap_err();
        assert_eq!(err.error_code(), 39, "{bad:?}: {err}");
    }
}
