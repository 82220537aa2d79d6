//! ACLs on one node, request by request: CreateAcls/DescribeAcls/DeleteAcls (who may, what is
//! refused, filters), SECURITY_DISABLED without an authorizer, and what a principal's ACLs
//! give it: Metadata hiding topics, TOPIC_AUTHORIZATION_FAILED, KIP-430 operation bits.

mod common;

use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret";"#;

async fn acl_broker() -> TestBroker {
    start_with(&[
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        (
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ),
        ("super.users", "User:admin"),
    ])
    .await
}

async fn login(b: &TestBroker, user: &str) -> Client {
    let mut c = Client::connect(b.addr).await;
    let h = c
        .call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(sb("PLAIN")),
        )
        .await;
    assert_eq!(h.error_code, 0);
    let a = c
        .call(
            2,
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(bytes::Bytes::from(format!("\0{user}\0{user}-secret"))),
        )
        .await;
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    c
}

/// An ALLOW (permission 3) or DENY (2) binding on a LITERAL (3) or PREFIXED (4) pattern.
fn creation(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
    permission: i8,
) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(sb(name))
        .with_resource_pattern_type(pattern)
        .with_principal(sb(principal))
        .with_host(sb("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

const TOPIC: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;
const ALLOW: i8 = 3;
const DENY: i8 = 2;

fn any_filter() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

fn topics_req(names: &[&str]) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(
            names
                .iter()
                .map(|n| metadata_request::MetadataRequestTopic::default().with_name(Some(tn(n))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(false)
        .with_include_topic_authorized_operations(true)
}

#[tokio::test]
async fn acls_are_managed_by_the_cluster_alterers_only() {
    let b = acl_broker().await;
    let mut admin = login(&b, "admin").await;
    let mut alice = login(&b, "alice").await;
    let acl = creation(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW);
    // alice is not a super user and has no ALTER on the cluster.
    let r = alice
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![acl.clone()]),
        )
        .await;
    assert_eq!(
        r.results[0].error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    let d = alice.call(3, &any_filter()).await;
    assert_eq!(
        d.error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    // The admin may; Kafka's refusals for a bad binding come per creation.
    let bad_principal = creation(TOPIC, "orders", LITERAL, "alice", READ, ALLOW);
    let bad_pattern = creation(TOPIC, "orders", 2, "User:alice", READ, ALLOW);
    let r = admin
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![
                acl,
                bad_principal,
                bad_pattern,
                creation(TOPIC, "ord", PREFIXED, "User:alice", WRITE, ALLOW),
            ]),
        )
        .await;
    let codes: Vec<i16> = r.results.iter().map(|x| x.error_code).collect();
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(codes, vec![0, invalid, invalid, 0], "{r:?}");
    let d = admin.call(3, &any_filter()).await;
    assert_eq!(d.error_code, 0);
    assert_eq!(d.resources.len(), 2, "{d:?}");
    // A MATCH filter on "orders" finds the literal and the prefixed pattern.
    let d = admin
        .call(
            3,
            &any_filter()
                .with_resource_type_filter(TOPIC)
                .with_resource_name_filter(Some(sb("orders")))
                .with_pattern_type_filter(2),
        )
        .await;
    assert_eq!(d.resources.len(), 2, "{d:?}");
    // DeleteAcls names what it removed.
    let r = admin
        .call(
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_type_filter(TOPIC)
                    .with_resource_name_filter(Some(sb("ord")))
                    .with_pattern_type_filter(PREFIXED)
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_operation(1)
                    .with_permission_type(1),
            ]),
        )
        .await;
    assert_eq!(r.filter_results[0].error_code, 0);
    assert_eq!(r.filter_results[0].matching_acls.len(), 1);
    assert_eq!(r.filter_results[0].matching_acls[0].operation, WRITE);
    assert_eq!(admin.call(3, &any_filter()).await.resources.len(), 1);
}

#[tokio::test]
async fn a_principal_sees_and_does_what_its_acls_allow() {
    let b = acl_broker().await;
    let mut admin = login(&b, "admin").await;
    for t in ["orders", "secrets"] {
        assert_eq!(admin.create_topic(t, 1).await, 0);
    }
    let r = admin
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![
                creation(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW),
                creation(TOPIC, "orders", LITERAL, "User:alice", WRITE, DENY),
            ]),
        )
        .await;
    assert!(r.results.iter().all(|x| x.error_code == 0), "{r:?}");
    let mut alice = login(&b, "alice").await;
    // All topics: only the one alice may describe (READ implies DESCRIBE).
    let all = alice
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    let names: Vec<String> = all
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert_eq!(names, vec!["orders"]);
    // Named: the other is TOPIC_AUTHORIZATION_FAILED (whether or not it exists).
    let m = alice
        .call(12, &topics_req(&["orders", "secrets", "nonexistent"]))
        .await;
    assert_eq!(m.topics[0].error_code, 0);
    assert_eq!(
        m.topics[1].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    assert_eq!(
        m.topics[2].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    // KIP-430: READ and DESCRIBE (implied) only; the DENY on WRITE shows.
    assert_eq!(
        m.topics[0].topic_authorized_operations,
        (1 << READ) | (1 << DESCRIBE)
    );
    // The admin (super user) has every topic operation.
    let m = admin.call(12, &topics_req(&["orders"])).await;
    let all_ops =
        (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
    assert_eq!(m.topics[0].topic_authorized_operations, all_ops);
    // Produce: denied by the DENY; fetch: allowed.
    let (code, _) = alice.produce("orders", 0, plain(1), -1).await;
    assert_eq!(code, ResponseError::TopicAuthorizationFailed.code());
    assert_eq!(alice.fetch("orders", 0, 0, 0).await.error_code, 0);
    assert_eq!(
        alice.fetch("secrets", 0, 0, 0).await.error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    // Creating topics needs CREATE; configs need DESCRIBE_CONFIGS.
    assert_eq!(
        alice.create_topic("mine", 1).await,
        ResponseError::TopicAuthorizationFailed.code()
    );
    let dc = alice
        .call(
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(sb("orders")),
            ]),
        )
        .await;
    assert_eq!(
        dc.results[0].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
}

#[tokio::test]
async fn without_an_authorizer_acl_requests_are_security_disabled() {
    let b = start().await;
    let mut c = b.client().await;
    let r = c
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![creation(
                TOPIC,
                "t",
                LITERAL,
                "User:alice",
                READ,
                ALLOW,
            )]),
        )
        .await;
    assert_eq!(
        r.results[0].error_code,
        ResponseError::SecurityDisabled.code()
    );
    assert_eq!(
        c.call(3, &any_filter()).await.error_code,
        ResponseError::SecurityDisabled.code()
    );
    // Everything is allowed, and KIP-430 says so.
    assert_eq!(c.create_topic("t", 1).await, 0);
    let m = c.call(12, &topics_req(&["t"])).await;
    assert_eq!(m.topics[0].error_code, 0);
    assert_ne!(m.topics[0].topic_authorized_operations, 0);
}

/// What Kafka leaves out or refuses for topics the principal may not describe: a KIP-848
/// heartbeat subscribing to one, a group assigned one, a transaction's partitions, a created
/// topic's configs.
#[tokio::test]
async fn topics_that_may_not_be_described_stay_hidden_in_groups_transactions_and_creations() {
    const GROUP: i8 = 3;
    const TXN_ID: i8 = 5;
    const CREATE: i8 = 5;
    let b = acl_broker().await;
    let mut admin = login(&b, "admin").await;
    for t in ["orders", "secrets"] {
        assert_eq!(admin.create_topic(t, 1).await, 0);
    }
    let r = admin
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![
                creation(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW),
                creation(TOPIC, "mine", LITERAL, "User:alice", CREATE, ALLOW),
                creation(GROUP, "g", PREFIXED, "User:alice", READ, ALLOW),
                creation(TXN_ID, "t", LITERAL, "User:alice", DESCRIBE, ALLOW),
            ]),
        )
        .await;
    assert!(r.results.iter().all(|x| x.error_code == 0), "{r:?}");
    let mut alice = login(&b, "alice").await;
    let heartbeat = |group: &str, topics: &[&str]| {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_member_id(sb(&uuid::Uuid::new_v4().to_string()))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(topics.iter().map(|t| tn(t)).collect()))
            .with_topic_partitions(Some(vec![]))
    };

    // ConsumerGroupHeartbeat: one subscribed topic alice may not describe refuses it all.
    let r = alice
        .call(1, &heartbeat("g1", &["orders", "secrets"]))
        .await;
    assert_eq!(r.error_code, ResponseError::TopicAuthorizationFailed.code());
    assert_eq!(r.error_message, None);
    let r = alice.call(1, &heartbeat("g1", &["orders"])).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);

    // ConsumerGroupDescribe: a group assigned "secrets" is refused to alice, with Kafka's
    // message and no members; her own group is described.
    let r = admin.call(1, &heartbeat("g2", &["secrets"])).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let d = alice
        .call(
            1,
            &ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![GroupId(sb("g1")), GroupId(sb("g2"))]),
        )
        .await;
    assert_eq!(d.groups[0].error_code, 0);
    assert_eq!(d.groups[0].members.len(), 1);
    assert_eq!(
        d.groups[1].error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    assert!(d.groups[1].members.is_empty());
    assert!(
        d.groups[1]
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("not authorized to describe"))
    );

    // DescribeTransactions: the partitions of "secrets" are left out for alice.
    let init = admin
        .call(
            5,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(sb("t"))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(init.error_code, 0);
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(sb("t")))
        .with_v3_and_below_producer_id(init.producer_id)
        .with_v3_and_below_producer_epoch(init.producer_epoch)
        .with_v3_and_below_topics(
            ["orders", "secrets"]
                .iter()
                .map(|t| {
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(tn(t))
                        .with_partitions(vec![0])
                })
                .collect(),
        );
    let r = admin.call(3, &add).await;
    assert!(
        r.results_by_topic_v3_and_below
            .iter()
            .all(|t| t.results_by_partition[0].partition_error_code == 0),
        "{r:?}"
    );
    let describe = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(sb("t"))]);
    let topics = |r: &DescribeTransactionsResponse| -> Vec<String> {
        r.transaction_states[0]
            .topics
            .iter()
            .map(|t| t.topic.to_string())
            .collect()
    };
    let all = admin.call(0, &describe).await;
    assert_eq!(topics(&all).len(), 2);
    let mine = alice.call(0, &describe).await;
    assert_eq!(mine.transaction_states[0].error_code, 0);
    assert_eq!(topics(&mine), vec!["orders"]);

    // CreateTopics: created, but without DESCRIBE_CONFIGS no configs or counts.
    let create = CreateTopicsRequest::default()
        .with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(tn("mine"))
                .with_num_partitions(2)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(10_000);
    let r = alice.call(7, &create).await;
    let t = &r.topics[0];
    assert_eq!(t.error_code, 0);
    assert_eq!(
        t.topic_config_error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );
    assert_eq!((t.num_partitions, t.replication_factor), (-1, -1));
    assert_eq!(t.configs.as_ref().map(Vec::len), Some(0));
    assert!(!t.topic_id.is_nil());
}
