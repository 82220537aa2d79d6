//! Topics and configs: CreateTopics, Metadata, DescribeConfigs, AlterConfigs,
//! IncrementalAlterConfigs, CreatePartitions, DescribeCluster, DescribeTopicPartitions,
//! ApiVersions, DeleteTopics, and requests the broker must refuse at the protocol level.

use std::time::Duration;

use kafka_protocol::messages::*;

use super::Pair;
use crate::common::*;

pub fn creatable(
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> create_topics_request::CreatableTopic {
    create_topics_request::CreatableTopic::default()
        .with_name(tn(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(sb(k))
                        .with_value(Some(sb(v)))
                })
                .collect(),
        )
}

pub fn create(
    topics: Vec<create_topics_request::CreatableTopic>,
    validate_only: bool,
) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
}

/// Kafka answers CreateTopics before the partitions have a leader: wait until Metadata
/// shows one for every partition of `topic` on both brokers.
pub async fn wait_ready(p: &mut Pair, topic: &str) {
    for _ in 0..100 {
        let req = MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(tn(topic))),
        ]));
        let (f, k) = p.quiet(12, &req).await;
        let led = |r: &MetadataResponse| {
            r.topics.first().is_some_and(|t| {
                t.error_code == 0
                    && !t.partitions.is_empty()
                    && t.partitions.iter().all(|p| p.leader_id.0 >= 0)
            })
        };
        if led(&f) && led(&k) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("topic {topic} has no leader on both brokers");
}

/// Kafka applies a dynamic config change when its metadata publisher gets to it, after the
/// AlterConfigs answer: wait until DescribeConfigs shows `value` for `key` of topic `topic`
/// on both brokers, then give Kafka's log manager (updated after the config image) a moment.
pub async fn wait_config(p: &mut Pair, topic: &str, key: &str, value: &str) {
    for _ in 0..100 {
        let (f, k) = p.quiet(4, &describe(2, topic, &[key])).await;
        let shows = |r: &DescribeConfigsResponse| {
            r.results.first().is_some_and(|res| {
                res.configs
                    .iter()
                    .any(|c| c.name.as_str() == key && c.value.as_deref() == Some(value))
            })
        };
        if shows(&f) && shows(&k) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{topic}: {key}={value} never showed on both brokers");
}

fn describe(resource_type: i8, name: &str, keys: &[&str]) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(sb(name))
                .with_configuration_keys(Some(keys.iter().map(|k| sb(k)).collect())),
        ])
}

fn incremental(
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    incremental_alter(2, name, ops, validate_only)
}

/// DescribeConfigs, compared with each resource's configs in name order (Kafka's order
/// follows its internal maps).
async fn configs(p: &mut Pair, name: &str, req: DescribeConfigsRequest) {
    let (mut f, mut k) = p.quiet(4, &req).await;
    for r in f.results.iter_mut().chain(k.results.iter_mut()) {
        r.configs.sort_by(|a, b| a.name.cmp(&b.name));
    }
    p.compare_values(name, f, k);
}

pub async fn run(p: &mut Pair) {
    // ApiVersions: every API Fjord advertises, with the versions Kafka serves.
    let (f, k) = p
        .quiet(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(sb("fjord-diff"))
                .with_client_software_version(sb("1")),
        )
        .await;
    let ranges = |r: &ApiVersionsResponse| {
        r.api_keys
            .iter()
            .map(|a| {
                let name = ApiKey::try_from(a.api_key)
                    .map(|k| format!("{k:?}"))
                    .unwrap_or_default();
                (
                    a.api_key,
                    format!("{name} {}..={}", a.min_version, a.max_version),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut fr = ranges(&f);
    fr.sort();
    let kr: Vec<String> = ranges(&k)
        .into_iter()
        .filter(|(key, _)| fr.iter().any(|x| x.0 == *key))
        .map(|x| x.1)
        .collect();
    let fr: Vec<String> = fr.into_iter().map(|x| x.1).collect();
    p.compare_values("ApiVersions v3: ranges of the APIs Fjord serves", fr, kr);
    let features = |r: &ApiVersionsResponse| {
        let mut v: Vec<String> = r
            .finalized_features
            .iter()
            .map(|f| format!("{} {}", f.name, f.max_version_level))
            .collect();
        v.sort();
        v
    };
    p.compare_values(
        "ApiVersions v3: finalized features",
        features(&f),
        features(&k),
    );
    p.same("ApiVersions v0", 0, &ApiVersionsRequest::default())
        .await;

    // CreateTopics: success, then every refusal.
    let (f, k) = p
        .same(
            "CreateTopics v7: 3 partitions with configs",
            7,
            &create(
                vec![creatable(
                    "diff-a",
                    3,
                    &[("retention.ms", "86400000"), ("cleanup.policy", "delete")],
                )],
                false,
            ),
        )
        .await;
    let _ = (f, k);
    wait_ready(p, "diff-a").await;
    p.same(
        "CreateTopics v7: compacted topic",
        7,
        &create(
            vec![creatable("diff-c", 1, &[("cleanup.policy", "compact")])],
            false,
        ),
    )
    .await;
    wait_ready(p, "diff-c").await;
    p.same(
        "CreateTopics v7: already exists",
        7,
        &create(vec![creatable("diff-a", 3, &[])], false),
    )
    .await;
    p.same(
        "CreateTopics v7: illegal name",
        7,
        &create(vec![creatable("bad name!", 1, &[])], false),
    )
    .await;
    p.same(
        "CreateTopics v7: name too long",
        7,
        &create(vec![creatable(&"x".repeat(250), 1, &[])], false),
    )
    .await;
    p.same(
        "CreateTopics v7: zero partitions",
        7,
        &create(vec![creatable("diff-zero", 0, &[])], false),
    )
    .await;
    p.same(
        "CreateTopics v7: bad config value",
        7,
        &create(
            vec![creatable("diff-bad", 1, &[("retention.ms", "soon")])],
            false,
        ),
    )
    .await;
    p.same(
        "CreateTopics v7: unknown config",
        7,
        &create(
            vec![creatable("diff-bad", 1, &[("no.such.config", "1")])],
            false,
        ),
    )
    .await;
    p.same(
        "CreateTopics v7: validate only",
        7,
        &create(vec![creatable("diff-v", 2, &[])], true),
    )
    .await;
    let mut rf3 = creatable("diff-rf3", 1, &[]);
    rf3.replication_factor = 3;
    p.same(
        "CreateTopics v7: replication factor above the brokers",
        7,
        &create(vec![rf3], false),
    )
    .await;
    p.same(
        "CreateTopics v4: 2 partitions",
        4,
        &create(vec![creatable("diff-b", 2, &[])], false),
    )
    .await;
    wait_ready(p, "diff-b").await;

    // Metadata.
    let all = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(tn("diff-a"))),
        metadata_request::MetadataRequestTopic::default().with_name(Some(tn("diff-b"))),
    ]));
    p.same("Metadata v12: two topics", 12, &all).await;
    p.same("Metadata v9: two topics", 9, &all).await;
    let unknown = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(tn("diff-none"))),
        ]));
    p.same("Metadata v12: unknown topic, no auto-create", 12, &unknown)
        .await;
    let invalid = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(tn("bad name!"))),
        ]));
    p.same("Metadata v12: invalid topic name", 12, &invalid)
        .await;

    // DescribeConfigs: topic, broker, refusals.
    configs(
        p,
        "DescribeConfigs v4: topic keys",
        describe(
            2,
            "diff-a",
            &[
                "retention.ms",
                "cleanup.policy",
                "segment.bytes",
                "max.message.bytes",
                "min.insync.replicas",
            ],
        ),
    )
    .await;
    configs(
        p,
        "DescribeConfigs v4: broker keys",
        describe(
            4,
            "1",
            &[
                "log.retention.ms",
                "num.partitions",
                "message.max.bytes",
                "auto.create.topics.enable",
            ],
        ),
    )
    .await;
    configs(
        p,
        "DescribeConfigs v4: unknown topic",
        describe(2, "diff-none", &["retention.ms"]),
    )
    .await;
    configs(
        p,
        "DescribeConfigs v4: another broker id",
        describe(4, "7", &["num.partitions"]),
    )
    .await;

    // IncrementalAlterConfigs and AlterConfigs.
    p.same(
        "IncrementalAlterConfigs v1: set",
        1,
        &incremental("diff-a", &[("retention.ms", 0, Some("3600000"))], false),
    )
    .await;
    wait_config(p, "diff-a", "retention.ms", "3600000").await;
    configs(
        p,
        "DescribeConfigs v4: after set",
        describe(2, "diff-a", &["retention.ms"]),
    )
    .await;
    p.same(
        "IncrementalAlterConfigs v1: bad value",
        1,
        &incremental("diff-a", &[("retention.ms", 0, Some("soon"))], false),
    )
    .await;
    p.same(
        "IncrementalAlterConfigs v1: unknown key",
        1,
        &incremental("diff-a", &[("no.such.config", 0, Some("1"))], false),
    )
    .await;
    p.same(
        "IncrementalAlterConfigs v1: delete",
        1,
        &incremental("diff-a", &[("retention.ms", 1, None)], false),
    )
    .await;
    p.same(
        "IncrementalAlterConfigs v1: append to a list",
        1,
        &incremental("diff-a", &[("cleanup.policy", 2, Some("compact"))], false),
    )
    .await;
    p.same(
        "IncrementalAlterConfigs v1: subtract from a list",
        1,
        &incremental("diff-a", &[("cleanup.policy", 3, Some("compact"))], false),
    )
    .await;
    p.same(
        "IncrementalAlterConfigs v1: validate only",
        1,
        &incremental("diff-a", &[("retention.ms", 0, Some("1000"))], true),
    )
    .await;
    p.same(
        "IncrementalAlterConfigs v1: unknown topic",
        1,
        &incremental("diff-none", &[("retention.ms", 0, Some("1000"))], false),
    )
    .await;
    // The last change (the subtraction) leaves a value equal to the default: no value to
    // wait for, so give Kafka's metadata publisher a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    configs(
        p,
        "DescribeConfigs v4: after the changes",
        describe(2, "diff-a", &["retention.ms", "cleanup.policy"]),
    )
    .await;
    let alter = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(sb("diff-b"))
            .with_configs(vec![
                alter_configs_request::AlterableConfig::default()
                    .with_name(sb("retention.bytes"))
                    .with_value(Some(sb("1048576"))),
            ]),
    ]);
    p.same("AlterConfigs v2: replace", 2, &alter).await;
    wait_config(p, "diff-b", "retention.bytes", "1048576").await;
    configs(
        p,
        "DescribeConfigs v4: after replace",
        describe(2, "diff-b", &["retention.bytes", "retention.ms"]),
    )
    .await;

    // CreatePartitions.
    let grow = |name: &str, count: i32, validate_only: bool| {
        CreatePartitionsRequest::default()
            .with_timeout_ms(10_000)
            .with_validate_only(validate_only)
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(tn(name))
                    .with_count(count)
                    .with_assignments(None),
            ])
    };
    p.same("CreatePartitions v3: grow", 3, &grow("diff-b", 4, false))
        .await;
    wait_ready(p, "diff-b").await;
    p.same("CreatePartitions v3: shrink", 3, &grow("diff-b", 2, false))
        .await;
    p.same(
        "CreatePartitions v3: same count",
        3,
        &grow("diff-b", 4, false),
    )
    .await;
    p.same(
        "CreatePartitions v3: validate only",
        3,
        &grow("diff-b", 6, true),
    )
    .await;
    p.same(
        "CreatePartitions v3: unknown topic",
        3,
        &grow("diff-none", 6, false),
    )
    .await;

    // Cluster views.
    p.same("DescribeCluster v1", 1, &DescribeClusterRequest::default())
        .await;
    let dtp = DescribeTopicPartitionsRequest::default()
        .with_response_partition_limit(2000)
        .with_topics(vec![
            describe_topic_partitions_request::TopicRequest::default().with_name(tn("diff-b")),
            describe_topic_partitions_request::TopicRequest::default().with_name(tn("diff-none")),
        ]);
    p.same("DescribeTopicPartitions v0", 0, &dtp).await;
}

/// Deletion, and what must be refused below the message level; run last.
pub async fn run_last(p: &mut Pair) {
    let del = |names: &[&str]| {
        DeleteTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(
                names
                    .iter()
                    .map(|n| {
                        delete_topics_request::DeleteTopicState::default().with_name(Some(tn(n)))
                    })
                    .collect(),
            )
    };
    p.same("DeleteTopics v6: delete", 6, &del(&["diff-b"]))
        .await;
    p.same("DeleteTopics v6: unknown topic", 6, &del(&["diff-none"]))
        .await;
    let by_id = DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            delete_topics_request::DeleteTopicState::default()
                .with_topic_id(uuid::Uuid::from_u128(0x5eed)),
        ]);
    p.same("DeleteTopics v6: unknown topic id", 6, &by_id).await;
    // An unsupported version of ApiVersions is answered with UNSUPPORTED_VERSION and the
    // versions served (v0 body); of any other API, the connection is closed.
    let mut fc = Client::connect(p.fjord_addr).await;
    let mut kc = Client::connect(p.kafka_addr).await;
    // Frames kafka-protocol will not encode: header (key, version 99, correlation id 7,
    // client id "x", no tags) and a minimal body.
    let raw = |key: i16, body: &[u8]| {
        let mut v = Vec::new();
        v.extend_from_slice(&key.to_be_bytes());
        v.extend_from_slice(&99i16.to_be_bytes());
        v.extend_from_slice(&7i32.to_be_bytes());
        v.extend_from_slice(&1i16.to_be_bytes());
        v.push(b'x');
        v.push(0);
        v.extend_from_slice(body);
        let mut f = (v.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&v);
        f
    };
    let frame = raw(18, &[1, 1, 0]);
    fc.send_raw(&frame).await.unwrap();
    kc.send_raw(&frame).await.unwrap();
    // Response: correlation id, then (v0 body) the error code.
    let code = |f: Option<bytes::Bytes>| f.map(|b| i16::from_be_bytes([b[4], b[5]]));
    let (ff, kf) = (fc.read_frame().await, kc.read_frame().await);
    p.compare_values("ApiVersions v99: error code", code(ff), code(kf));
    let mut fc = Client::connect(p.fjord_addr).await;
    let mut kc = Client::connect(p.kafka_addr).await;
    let frame = raw(3, &[1, 0, 0]);
    fc.send_raw(&frame).await.unwrap();
    kc.send_raw(&frame).await.unwrap();
    let (fcl, kcl) = (fc.closed().await, kc.closed().await);
    p.compare_values("Metadata v99: connection closed", fcl, kcl);
    // A frame that is not a request at all.
    let mut fc = Client::connect(p.fjord_addr).await;
    let mut kc = Client::connect(p.kafka_addr).await;
    let garbage = [0u8, 0, 0, 6, 0xff, 0xff, 0, 0, 0, 1];
    fc.send_raw(&garbage).await.unwrap();
    kc.send_raw(&garbage).await.unwrap();
    let (fcl, kcl) = (fc.closed().await, kc.closed().await);
    p.compare_values("Unknown API key: connection closed", fcl, kcl);
}
