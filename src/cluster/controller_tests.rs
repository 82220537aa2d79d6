use super::*;
use crate::cluster::image::apply_batch;

fn endpoint(id: i32) -> Vec<Endpoint> {
    vec![Endpoint {
        name: "PLAINTEXT".into(),
        host: "127.0.0.1".into(),
        port: 19092 + id as u16,
        security_protocol: 0,
    }]
}

/// `n` registered and unfenced brokers 1..=n.
fn cluster(n: i32) -> Image {
    let mut img = Image::default();
    for id in 1..=n {
        let r = register_broker(&img, id, Uuid::from_u128(id as u128), endpoint(id), None);
        apply_batch(&mut img, &r.records).unwrap();
        let u = unfence_broker(&img, id).unwrap();
        apply_batch(&mut img, &u).unwrap();
    }
    img
}

fn create(img: &mut Image, name: &str, partitions: i32, rf: i32) -> Uuid {
    let id = Uuid::new_v4();
    let records = create_topic(img, name, id, partitions, rf, None, &[]).unwrap();
    apply_batch(img, &records).unwrap();
    id
}

#[test]
fn registration_epochs_and_retries() {
    let mut img = cluster(3);
    let epochs: Vec<i64> = (1..=3).map(|b| img.brokers[&b].epoch).collect();
    assert_eq!(epochs, vec![1, 2, 3]);
    // A retry of the same incarnation: same epoch, nothing written.
    let again = register_broker(&img, 2, Uuid::from_u128(2), endpoint(2), None);
    assert_eq!(again.broker_epoch, 2);
    assert!(again.records.is_empty());
    // A restart (new incarnation): an epoch above all, fenced until it catches up.
    let restart = register_broker(&img, 2, Uuid::from_u128(22), endpoint(2), None);
    assert_eq!(restart.broker_epoch, 4);
    apply_batch(&mut img, &restart.records).unwrap();
    assert_eq!(img.brokers[&2].epoch, 4);
    assert!(img.brokers[&2].fenced);
}

#[test]
fn restart_of_a_leader_moves_its_leaderships() {
    let mut img = cluster(3);
    let t = create(&mut img, "t", 3, 3);
    let led: Vec<i32> = (0..3)
        .map(|p| img.partition(&t, p).unwrap().leader)
        .collect();
    let p = led.iter().position(|l| *l == 1).unwrap() as i32;
    let restart = register_broker(&img, 1, Uuid::from_u128(11), endpoint(1), None);
    apply_batch(&mut img, &restart.records).unwrap();
    assert!(img.led_by(1).is_empty());
    let state = img.partition(&t, p).unwrap();
    assert_ne!(state.leader, 1);
    assert!(!state.isr.contains(&1));
    assert_eq!((state.leader_epoch, state.partition_epoch), (1, 1));
}

#[test]
fn fencing_moves_leaders_shrinks_isrs_and_bumps_epochs() {
    let mut img = cluster(3);
    let t = create(&mut img, "t", 6, 2);
    let before = img.clone();
    let records = fence_broker(&img, 2).unwrap();
    apply_batch(&mut img, &records).unwrap();
    assert!(img.brokers[&2].fenced);
    assert!(img.led_by(2).is_empty());
    for p in 0..6 {
        let (old, new) = (
            before.partition(&t, p).unwrap(),
            img.partition(&t, p).unwrap(),
        );
        assert!(!new.isr.contains(&2), "{p}: {new:?}");
        assert_ne!(new.leader, NO_LEADER, "a live ISR member remains for {p}");
        if old.leader == 2 {
            assert_eq!(new.leader_epoch, old.leader_epoch + 1);
            assert_eq!(new.partition_epoch, old.partition_epoch + 1);
            // The other ISR member takes over.
            assert_eq!(new.leader, *old.isr.iter().find(|b| **b != 2).unwrap());
        } else if old.isr.contains(&2) {
            assert_eq!(new.leader_epoch, old.leader_epoch);
            assert_eq!(new.partition_epoch, old.partition_epoch + 1);
        } else {
            assert_eq!(new, old);
        }
    }
    // Fencing again is a no-op decision.
    assert!(fence_broker(&img, 2).is_none());
    assert!(fence_broker(&img, 42).is_none());
}

#[test]
fn partitions_go_offline_and_come_back_with_their_last_isr_member() {
    let mut img = cluster(2);
    let t = create(&mut img, "t", 2, 1);
    let on1 = (0..2)
        .find(|p| img.partition(&t, *p).unwrap().leader == 1)
        .unwrap();
    let r = fence_broker(&img, 1).unwrap();
    apply_batch(&mut img, &r).unwrap();
    let p = img.partition(&t, on1).unwrap();
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_epoch),
        (NO_LEADER, vec![1], 1)
    );
    // Unfencing elects it again.
    let r = unfence_broker(&img, 1).unwrap();
    apply_batch(&mut img, &r).unwrap();
    let p = img.partition(&t, on1).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 2, 2));
    assert!(unfence_broker(&img, 1).is_none());
}

#[test]
fn create_topic_places_evenly_and_refuses_too_many_replicas() {
    let mut img = cluster(3);
    for i in 0..30 {
        create(&mut img, &format!("t{i}"), 1, 2);
    }
    for b in 1..=3 {
        assert_eq!(img.led_by(b).len(), 10, "broker {b}");
    }
    let err = create_topic(&img, "big", Uuid::new_v4(), 1, 4, None, &[]).unwrap_err();
    assert_eq!(err.error_code(), 38);
    // Fenced brokers do not count.
    let r = fence_broker(&img, 3).unwrap();
    apply_batch(&mut img, &r).unwrap();
    let err = create_topic(&img, "big", Uuid::new_v4(), 1, 3, None, &[]).unwrap_err();
    assert!(err.to_string().contains("only 2 broker(s)"), "{err}");
}

#[test]
fn create_topic_with_assignment_and_configs() {
    let mut img = cluster(3);
    let r = fence_broker(&img, 3).unwrap();
    apply_batch(&mut img, &r).unwrap();
    let id = Uuid::new_v4();
    let configs = [("cleanup.policy".to_string(), "compact".to_string())];
    let records = create_topic(
        &img,
        "c",
        id,
        0,
        0,
        Some(vec![vec![3, 2], vec![1, 3]]),
        &configs,
    )
    .unwrap();
    apply_batch(&mut img, &records).unwrap();
    let t = img.topic_by_name("c").unwrap();
    assert_eq!(t.configs["cleanup.policy"], "compact");
    // Fenced 3 is a replica but not in the ISR, and does not lead.
    let p0 = &t.partitions[&0];
    assert_eq!(
        (p0.replicas.clone(), p0.isr.clone(), p0.leader),
        (vec![3, 2], vec![2], 2)
    );
    let p1 = &t.partitions[&1];
    assert_eq!((p1.isr.clone(), p1.leader), (vec![1], 1));
    let err = create_topic(&img, "d", Uuid::new_v4(), 0, 0, Some(vec![vec![3]]), &[]);
    assert_eq!(err.unwrap_err().error_code(), 39);
}

#[test]
fn create_partitions_and_delete_topic() {
    let mut img = cluster(3);
    let t = create(&mut img, "t", 2, 2);
    assert_eq!(
        create_partitions(&img, t, 2, None)
            .unwrap_err()
            .error_code(),
        37
    );
    let r = create_partitions(&img, t, 5, None).unwrap();
    apply_batch(&mut img, &r).unwrap();
    let topic = &img.topics[&t];
    assert_eq!(topic.partitions.len(), 5);
    assert!(topic.partitions.values().all(|p| p.replicas.len() == 2));
    let explicit = create_partitions(&img, t, 6, Some(vec![vec![3, 1]])).unwrap();
    apply_batch(&mut img, &explicit).unwrap();
    assert_eq!(img.topics[&t].partitions[&5].replicas, vec![3, 1]);
    assert!(create_partitions(&img, t, 8, Some(vec![vec![1, 2]])).is_err());
    let r = delete_topic(&img, "t").unwrap();
    apply_batch(&mut img, &r).unwrap();
    assert!(img.topics.is_empty());
    assert!(delete_topic(&img, "t").is_none());
}
