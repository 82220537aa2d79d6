//! Topic administration and metadata through the wire protocol.

mod common;

use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;

#[tokio::test]
async fn create_validate_describe_delete() {
    let b = start().await;
    let mut c = b.client().await;
    let topic = |name: &str, parts: i32| {
        create_topics_request::CreatableTopic::default()
            .with_name(tn(name))
            .with_num_partitions(parts)
            .with_replication_factor(-1)
    };
    let with_cfg = topic("cfg", 4).with_configs(vec![
        create_topics_request::CreatableTopicConfig::default()
            .with_name(sb("retention.ms"))
            .with_value(Some(sb("3600000"))),
    ]);
    let bad_cfg = topic("badcfg", 1).with_configs(vec![
        create_topics_request::CreatableTopicConfig::default()
            .with_name(sb("retention.ms"))
            .with_value(Some(sb("soon"))),
    ]);
    let unknown_cfg = topic("unknowncfg", 1).with_configs(vec![
        create_topics_request::CreatableTopicConfig::default()
            .with_name(sb("no.such.config"))
            .with_value(Some(sb("1"))),
    ]);
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(1000)
        .with_topics(vec![
            with_cfg,
            topic("bad name!", 1),
            topic("zero", 0),
            topic("rf3", 1).with_replication_factor(3),
            bad_cfg,
            unknown_cfg,
            topic(&"x".repeat(250), 1),
        ]);
    let r = c.call(7, &req).await;
    let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        vec![
            0,
            ResponseError::InvalidTopicException.code(),
            ResponseError::InvalidPartitions.code(),
            ResponseError::InvalidReplicationFactor.code(),
            ResponseError::InvalidConfig.code(),
            ResponseError::InvalidConfig.code(),
            ResponseError::InvalidTopicException.code(),
        ]
    );
    assert_eq!(r.topics[0].num_partitions, 4);
    assert!(!r.topics[0].topic_id.is_nil());
    assert!(
        r.topics[4]
            .error_message
            .as_ref()
            .unwrap()
            .contains("retention.ms")
    );
    // Already exists.
    let again = c
        .call(
            7,
            &CreateTopicsRequest::default().with_topics(vec![topic("cfg", 1)]),
        )
        .await;
    assert_eq!(
        again.topics[0].error_code,
        ResponseError::TopicAlreadyExists.code()
    );
    // validate_only creates nothing.
    let v = c
        .call(
            7,
            &CreateTopicsRequest::default()
                .with_validate_only(true)
                .with_topics(vec![topic("dry", 2)]),
        )
        .await;
    assert_eq!(v.topics[0].error_code, 0);
    let m = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    assert_eq!(m.topics.len(), 1);

    // DescribeConfigs reports the override as a dynamic topic config and defaults as default.
    let d = c
        .call(
            4,
            &DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(sb("cfg")),
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(sb("1")),
                ]),
        )
        .await;
    let t = &d.results[0];
    assert_eq!(t.error_code, 0);
    let rt = t
        .configs
        .iter()
        .find(|e| e.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(
        (rt.value.as_ref().unwrap().as_str(), rt.config_source),
        ("3600000", 1)
    );
    let cp = t
        .configs
        .iter()
        .find(|e| e.name.as_str() == "cleanup.policy")
        .unwrap();
    assert_eq!(
        (cp.value.as_ref().unwrap().as_str(), cp.config_source),
        ("delete", 5)
    );
    assert!(
        d.results[1]
            .configs
            .iter()
            .any(|e| e.name.as_str() == "num.partitions")
    );

    // CreatePartitions grows, never shrinks.
    let cp = c
        .call(
            3,
            &CreatePartitionsRequest::default().with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(tn("cfg"))
                    .with_count(6),
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(tn("cfg"))
                    .with_count(2),
            ]),
        )
        .await;
    assert_eq!(cp.results[0].error_code, 0);
    assert_eq!(
        cp.results[1].error_code,
        ResponseError::InvalidPartitions.code()
    );

    // DeleteTopics by id (v6) and then unknown by name.
    let m = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    assert_eq!(m.topics[0].partitions.len(), 6);
    let id = m.topics[0].topic_id;
    let del = c
        .call(
            6,
            &DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_topic_id(id),
            ]),
        )
        .await;
    assert_eq!(del.responses[0].error_code, 0);
    assert_eq!(del.responses[0].name.as_ref().unwrap().as_str(), "cfg");
    let del = c
        .call(
            5,
            &DeleteTopicsRequest::default().with_topic_names(vec![tn("cfg")]),
        )
        .await;
    assert_eq!(
        del.responses[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[tokio::test]
async fn metadata_auto_create_and_unknown_topics() {
    let b = start_with(&[("num.partitions", "3")]).await;
    let mut c = b.client().await;
    let req = |name: &str, auto: bool| {
        MetadataRequest::default()
            .with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(tn(name))),
            ]))
            .with_allow_auto_topic_creation(auto)
    };
    let r = c.call(12, &req("auto", true)).await;
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].partitions.len(), 3);
    assert_eq!(r.topics[0].partitions[0].leader_id.0, 1);
    assert_eq!(r.controller_id.0, 1);
    assert!(r.cluster_id.is_some());
    assert_eq!(r.brokers[0].port as u16, b.addr.port());
    let r = c.call(12, &req("manual", false)).await;
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let r = c.call(12, &req("bad/name", true)).await;
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );

    let off = start_with(&[("auto.create.topics.enable", "false")]).await;
    let mut c = off.client().await;
    let r = c.call(12, &req("nope", true)).await;
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let (err, _) = c.produce("nope", 0, plain(1), 1).await;
    assert_eq!(err, ResponseError::UnknownTopicOrPartition.code());
}

#[tokio::test]
async fn list_offsets_by_time_and_bounds() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("times", 1).await;
    // Records have timestamps 1_700_000_000_000 + i*1000.
    c.produce("times", 0, plain(5), 1).await;
    c.produce("times", 0, plain(5), 1).await;
    let ask = |ts: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(tn("times"))
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(ts),
                    ]),
            ])
    };
    let get = |r: ListOffsetsResponse| {
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset, p.timestamp)
    };
    assert_eq!(get(c.call(9, &ask(-2)).await), (0, 0, -1));
    assert_eq!(get(c.call(9, &ask(-1)).await), (0, 10, -1));
    assert_eq!(
        get(c.call(9, &ask(1_700_000_002_500)).await),
        (0, 3, 1_700_000_003_000)
    );
    assert_eq!(get(c.call(9, &ask(-3)).await), (0, 4, 1_700_000_004_000));
    assert_eq!(get(c.call(9, &ask(1_800_000_000_000)).await), (0, -1, -1));
    let e = c
        .call(
            4,
            &OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-2))
                .with_topics(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                        .with_topic(tn("times"))
                        .with_partitions(vec![
                            offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_current_leader_epoch(0)
                                .with_leader_epoch(0),
                        ]),
                ]),
        )
        .await;
    let p = &e.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 0, 10));
}

#[tokio::test]
async fn describe_cluster_and_topic_partitions_paging() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("a", 3).await;
    c.create_topic("b", 2).await;
    let d = c
        .call(1, &DescribeClusterRequest::default().with_endpoint_type(1))
        .await;
    assert_eq!(d.error_code, 0);
    assert_eq!(d.brokers.len(), 1);
    assert_eq!(d.controller_id.0, 1);
    let mut req = DescribeTopicPartitionsRequest::default().with_response_partition_limit(2);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let r = c.call(0, &req).await;
        for t in &r.topics {
            for p in &t.partitions {
                seen.push((
                    t.name.as_ref().unwrap().as_str().to_string(),
                    p.partition_index,
                ));
            }
        }
        match r.next_cursor {
            Some(cur) => {
                req.cursor = Some(
                    describe_topic_partitions_request::Cursor::default()
                        .with_topic_name(cur.topic_name)
                        .with_partition_index(cur.partition_index),
                )
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}
