use super::*;

pub(crate) fn register(id: i32, epoch: i64, incarnation: u128) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBroker {
        broker_id: id,
        incarnation_id: Uuid::from_u128(incarnation),
        broker_epoch: epoch,
        endpoints: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092 + id as u16,
            security_protocol: 0,
        }],
        rack: None,
        fenced: true,
        in_controlled_shutdown: false,
    })
}

fn unfence(id: i32, epoch: i64) -> MetadataRecord {
    MetadataRecord::UnfenceBroker(UnfenceBroker { id, epoch })
}

fn fence(id: i32, epoch: i64) -> MetadataRecord {
    MetadataRecord::FenceBroker(FenceBroker { id, epoch })
}

const T: Uuid = Uuid::from_u128(0x100);

/// Three live brokers (epochs 1, 2, 3) and topic "t" with one partition on all three, led
/// by broker 1.
fn three_brokers_one_partition() -> Image {
    let mut img = Image::default();
    for id in 1..=3 {
        apply(&mut img, &register(id, id as i64, id as u128)).unwrap();
        apply(&mut img, &unfence(id, id as i64)).unwrap();
    }
    apply_batch(
        &mut img,
        &[
            MetadataRecord::Topic(TopicRecord {
                name: "t".into(),
                topic_id: T,
            }),
            partition(0, vec![1, 2, 3], vec![1, 2, 3], 1),
        ],
    )
    .unwrap();
    img
}

fn partition(id: i32, replicas: Vec<i32>, isr: Vec<i32>, leader: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: id,
        topic_id: T,
        replicas,
        isr,
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
    })
}

fn change(isr: Option<Vec<i32>>, leader: Option<i32>) -> MetadataRecord {
    MetadataRecord::PartitionChange(PartitionChange {
        partition_id: 0,
        topic_id: T,
        isr,
        leader,
        replicas: None,
        expected_partition_epoch: None,
        adding_replicas: None,
        removing_replicas: None,
    })
}

#[test]
fn registration_is_fenced_until_unfenced() {
    let mut img = Image::default();
    apply(&mut img, &register(1, 5, 1)).unwrap();
    let b = &img.brokers[&1];
    assert!(b.fenced);
    assert_eq!(b.epoch, 5);
    assert_eq!(img.last_broker_epoch, 5);
    assert!(img.live_brokers().is_empty());
    apply(&mut img, &unfence(1, 5)).unwrap();
    assert_eq!(img.live_brokers(), vec![1]);
}

#[test]
fn reregistration_with_new_incarnation_bumps_epoch() {
    let mut img = Image::default();
    apply(&mut img, &register(1, 5, 1)).unwrap();
    apply(&mut img, &unfence(1, 5)).unwrap();
    apply(&mut img, &register(1, 9, 2)).unwrap();
    let b = &img.brokers[&1];
    assert_eq!(b.epoch, 9);
    assert_eq!(b.incarnation_id, Uuid::from_u128(2));
    assert!(b.fenced, "a new incarnation starts fenced");
    // Not above the current epoch: refused, image unchanged.
    let before = img.clone();
    for epoch in [9, 3] {
        assert_eq!(
            apply(&mut img, &register(1, epoch, 3)),
            Err(ApplyError::StaleBrokerEpoch {
                broker: 1,
                current: 9,
                got: epoch
            })
        );
    }
    assert_eq!(img, before);
    // The old epoch can no longer unfence or fence it.
    assert!(matches!(
        apply(&mut img, &unfence(1, 5)),
        Err(ApplyError::StaleBrokerEpoch { .. })
    ));
    assert!(matches!(
        apply(&mut img, &fence(1, 5)),
        Err(ApplyError::StaleBrokerEpoch { .. })
    ));
}

#[test]
fn reregistration_while_leading_is_refused() {
    let mut img = three_brokers_one_partition();
    assert!(matches!(
        apply(&mut img, &register(1, 10, 99)),
        Err(ApplyError::BrokerStillLeads { broker: 1, .. })
    ));
}

#[test]
fn fence_requires_leaderships_moved_first() {
    let mut img = three_brokers_one_partition();
    assert!(matches!(
        apply(&mut img, &fence(1, 1)),
        Err(ApplyError::BrokerStillLeads { broker: 1, .. })
    ));
    // Moving the leadership and fencing in one batch works.
    apply_batch(&mut img, &[change(Some(vec![2, 3]), Some(2)), fence(1, 1)]).unwrap();
    let p = img.partition(&T, 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 1));
    assert_eq!(p.isr, vec![2, 3]);
    assert!(img.brokers[&1].fenced);
    assert_eq!(img.live_brokers(), vec![2, 3]);
}

#[test]
fn a_fenced_broker_cannot_become_leader() {
    let mut img = three_brokers_one_partition();
    apply_batch(&mut img, &[change(None, Some(2)), fence(3, 3)]).unwrap();
    let before = img.clone();
    let err = apply(&mut img, &change(None, Some(3))).unwrap_err();
    assert!(matches!(err, ApplyError::InvalidPartition { .. }), "{err}");
    assert_eq!(img, before);
}

#[test]
fn isr_change_bumps_only_partition_epoch() {
    let mut img = three_brokers_one_partition();
    apply(&mut img, &change(Some(vec![1, 3]), None)).unwrap();
    let p = img.partition(&T, 0).unwrap();
    assert_eq!(p.isr, vec![1, 3]);
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 0, 1));
    apply(&mut img, &change(Some(vec![1, 2, 3]), None)).unwrap();
    let p = img.partition(&T, 0).unwrap();
    assert_eq!((p.leader_epoch, p.partition_epoch), (0, 2));
}

#[test]
fn leader_change_bumps_both_epochs() {
    let mut img = three_brokers_one_partition();
    apply(&mut img, &change(None, Some(3))).unwrap();
    let p = img.partition(&T, 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (3, 1, 1));
    // Going offline is a leadership change too.
    apply(&mut img, &change(Some(vec![3]), Some(NO_LEADER))).unwrap();
    let p = img.partition(&T, 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (-1, 2, 2));
}

#[test]
fn invalid_partition_changes_are_refused() {
    let mut img = three_brokers_one_partition();
    let before = img.clone();
    for bad in [
        change(Some(vec![2, 3]), None),    // leader 1 left the ISR
        change(Some(vec![1, 4]), None),    // 4 is not a replica
        change(Some(vec![]), None),        // empty ISR
        change(Some(vec![1, 1]), None),    // duplicate
        change(Some(vec![2, 3]), Some(1)), // leader outside ISR
        change(None, Some(7)),             // not a replica
    ] {
        assert!(apply(&mut img, &bad).is_err(), "{bad:?} was accepted");
    }
    let unknown = MetadataRecord::PartitionChange(PartitionChange {
        partition_id: 5,
        topic_id: T,
        isr: None,
        leader: Some(2),
        replicas: None,
        expected_partition_epoch: None,
        adding_replicas: None,
        removing_replicas: None,
    });
    assert_eq!(
        apply(&mut img, &unknown),
        Err(ApplyError::UnknownPartition {
            topic: T,
            partition: 5
        })
    );
    assert_eq!(img, before);
}

#[test]
fn invalid_topics_and_partitions_are_refused() {
    let mut img = three_brokers_one_partition();
    let before = img.clone();
    let topic = |name: &str, id: u128| {
        MetadataRecord::Topic(TopicRecord {
            name: name.into(),
            topic_id: Uuid::from_u128(id),
        })
    };
    assert_eq!(
        apply(&mut img, &topic("t", 5)),
        Err(ApplyError::TopicExists("t".into()))
    );
    assert_eq!(
        apply(&mut img, &topic("u", 0x100)),
        Err(ApplyError::TopicIdExists(T))
    );
    assert!(apply(&mut img, &topic("", 6)).is_err());
    assert!(apply(&mut img, &topic("v", 0)).is_err());
    assert!(matches!(
        apply(&mut img, &partition(0, vec![1], vec![1], 1)),
        Err(ApplyError::PartitionExists { .. })
    ));
    for bad in [
        partition(1, vec![], vec![], -1),
        partition(1, vec![1, 9], vec![1], 1), // 9 is not registered
        partition(1, vec![1, 1], vec![1], 1),
        partition(1, vec![1, 2], vec![3], 3),
        partition(-1, vec![1], vec![1], 1),
    ] {
        assert!(apply(&mut img, &bad).is_err(), "{bad:?} was accepted");
    }
    let orphan = MetadataRecord::Partition(PartitionRecord {
        partition_id: 0,
        topic_id: Uuid::from_u128(0x999),
        replicas: vec![1],
        isr: vec![1],
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
    });
    assert_eq!(
        apply(&mut img, &orphan),
        Err(ApplyError::UnknownTopic(Uuid::from_u128(0x999)))
    );
    assert_eq!(img, before);
}

#[test]
fn batch_is_all_or_nothing() {
    let mut img = three_brokers_one_partition();
    let before = img.clone();
    let err = apply_batch(
        &mut img,
        &[
            change(None, Some(2)),
            MetadataRecord::RemoveTopic(RemoveTopic {
                topic_id: Uuid::from_u128(1),
            }),
        ],
    );
    assert!(err.is_err());
    assert_eq!(img, before);
}

#[test]
fn remove_topic_drops_partitions_and_configs() {
    let mut img = three_brokers_one_partition();
    let cfg = MetadataRecord::Config(ConfigRecord {
        resource_type: ConfigResource::Topic,
        resource_name: "t".into(),
        name: "retention.ms".into(),
        value: Some("1000".into()),
    });
    apply(&mut img, &cfg).unwrap();
    apply(
        &mut img,
        &MetadataRecord::RemoveTopic(RemoveTopic { topic_id: T }),
    )
    .unwrap();
    assert!(img.topic_by_name("t").is_none());
    assert!(img.topics.is_empty());
    assert!(img.led_by(1).is_empty());
    assert_eq!(
        apply(
            &mut img,
            &MetadataRecord::RemoveTopic(RemoveTopic { topic_id: T })
        ),
        Err(ApplyError::UnknownTopic(T))
    );
    // The name can be used again, with a new id, and starts without the old configs.
    apply(
        &mut img,
        &MetadataRecord::Topic(TopicRecord {
            name: "t".into(),
            topic_id: Uuid::from_u128(0x200),
        }),
    )
    .unwrap();
    assert!(img.topic_by_name("t").unwrap().configs.is_empty());
    // Config for a removed topic is refused.
    apply(
        &mut img,
        &MetadataRecord::RemoveTopic(RemoveTopic {
            topic_id: Uuid::from_u128(0x200),
        }),
    )
    .unwrap();
    assert_eq!(
        apply(&mut img, &cfg),
        Err(ApplyError::UnknownTopicName("t".into()))
    );
}

#[test]
fn configs_set_and_delete() {
    let mut img = three_brokers_one_partition();
    let base = img.clone();
    let cfg = |ty, res: &str, name: &str, value: Option<&str>| {
        MetadataRecord::Config(ConfigRecord {
            resource_type: ty,
            resource_name: res.into(),
            name: name.into(),
            value: value.map(String::from),
        })
    };
    apply(
        &mut img,
        &cfg(
            ConfigResource::Topic,
            "t",
            "cleanup.policy",
            Some("compact"),
        ),
    )
    .unwrap();
    apply(
        &mut img,
        &cfg(ConfigResource::Broker, "", "log.retention.ms", Some("5")),
    )
    .unwrap();
    apply(
        &mut img,
        &cfg(ConfigResource::Broker, "2", "log.retention.ms", Some("6")),
    )
    .unwrap();
    apply(
        &mut img,
        &cfg(
            ConfigResource::Group,
            "g",
            "consumer.session.timeout.ms",
            Some("45000"),
        ),
    )
    .unwrap();
    assert_eq!(
        img.topic_by_name("t").unwrap().configs["cleanup.policy"],
        "compact"
    );
    assert_eq!(img.broker_configs[""]["log.retention.ms"], "5");
    assert_eq!(img.broker_configs["2"]["log.retention.ms"], "6");
    assert_eq!(
        img.group_configs["g"]["consumer.session.timeout.ms"],
        "45000"
    );
    // Overwrite, then delete everything: back to the start.
    apply(
        &mut img,
        &cfg(ConfigResource::Topic, "t", "cleanup.policy", Some("delete")),
    )
    .unwrap();
    assert_eq!(
        img.topic_by_name("t").unwrap().configs["cleanup.policy"],
        "delete"
    );
    apply(
        &mut img,
        &cfg(ConfigResource::Topic, "t", "cleanup.policy", None),
    )
    .unwrap();
    apply(
        &mut img,
        &cfg(ConfigResource::Broker, "", "log.retention.ms", None),
    )
    .unwrap();
    apply(
        &mut img,
        &cfg(ConfigResource::Broker, "2", "log.retention.ms", None),
    )
    .unwrap();
    apply(
        &mut img,
        &cfg(
            ConfigResource::Group,
            "g",
            "consumer.session.timeout.ms",
            None,
        ),
    )
    .unwrap();
    assert_eq!(img, base);
    // Refused: unknown topic, a broker resource that is not an id, empty names.
    assert!(
        apply(
            &mut img,
            &cfg(ConfigResource::Topic, "nope", "a", Some("1"))
        )
        .is_err()
    );
    assert!(apply(&mut img, &cfg(ConfigResource::Broker, "x", "a", Some("1"))).is_err());
    assert!(apply(&mut img, &cfg(ConfigResource::Group, "", "a", Some("1"))).is_err());
    assert!(apply(&mut img, &cfg(ConfigResource::Broker, "", "", Some("1"))).is_err());
    assert_eq!(img, base);
}

#[test]
fn producer_id_blocks_only_move_forward() {
    let mut img = three_brokers_one_partition();
    let block = |broker, epoch, next| {
        MetadataRecord::ProducerIds(ProducerIds {
            broker_id: broker,
            broker_epoch: epoch,
            next_producer_id: next,
            first_producer_id: None,
        })
    };
    apply(&mut img, &block(1, 1, 1000)).unwrap();
    assert_eq!(img.next_producer_id, 1000);
    assert_eq!(
        apply(&mut img, &block(2, 2, 1000)),
        Err(ApplyError::StaleProducerIds {
            current: 1000,
            got: 1000
        })
    );
    assert!(matches!(
        apply(&mut img, &block(2, 7, 2000)),
        Err(ApplyError::StaleBrokerEpoch { .. })
    ));
    apply(&mut img, &block(2, 2, 2000)).unwrap();
    assert_eq!(img.next_producer_id, 2000);
    // A block says where it starts: one proposed from an older image (starting below the
    // current end) is refused; one skipping ahead is taken.
    let from = |first, next| {
        MetadataRecord::ProducerIds(ProducerIds {
            broker_id: 1,
            broker_epoch: 1,
            next_producer_id: next,
            first_producer_id: Some(first),
        })
    };
    assert!(apply(&mut img, &from(1500, 2500)).is_err());
    assert!(
        apply(&mut img, &from(2000, 2000)).is_err(),
        "an empty block"
    );
    apply(&mut img, &from(5000, 6000)).unwrap();
    assert_eq!(img.next_producer_id, 6000);
}

#[test]
fn image_round_trips_through_json() {
    let mut img = three_brokers_one_partition();
    apply(
        &mut img,
        &MetadataRecord::Config(ConfigRecord {
            resource_type: ConfigResource::Broker,
            resource_name: "".into(),
            name: "a".into(),
            value: Some("b".into()),
        }),
    )
    .unwrap();
    img.offset = 42;
    let back: Image = serde_json::from_slice(&serde_json::to_vec(&img).unwrap()).unwrap();
    assert_eq!(back, img);
}
