//! Security metadata on three nodes: a SCRAM credential and ACLs changed through one broker
//! are in every broker's metadata (the controller's records, mirrored), take effect there,
//! and are still there after a broker restarts.

mod cluster_common;
mod common;

use std::time::{Duration, Instant};

use cluster_common::*;
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;

/// Polls `f` on node `i` until it holds (bounded).
async fn eventually<F, Fut>(cl: &Cluster, i: usize, what: &str, f: F)
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f(cl.client(i).await).await {
        assert!(Instant::now() < deadline, "node {}: {what}", i + 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn users(mut c: Client) -> Vec<(String, Vec<(i8, i32)>)> {
    let r = c
        .call(
            0,
            &DescribeUserScramCredentialsRequest::default().with_users(None),
        )
        .await;
    r.results
        .iter()
        .map(|u| {
            (
                u.user.to_string(),
                u.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            )
        })
        .collect()
}

fn deny_anonymous_write(topic: &str) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(sb(topic))
        .with_resource_pattern_type(3)
        .with_principal(sb("User:ANONYMOUS"))
        .with_host(sb("*"))
        .with_operation(4)
        .with_permission_type(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_acls_reach_every_broker() {
    // Everyone may do anything no ACL speaks of; one DENY is then enough to test.
    let mut cl = Cluster::start_with(
        3,
        &[
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=true",
        ],
    );
    agreed(&cl, |v| v.0 == vec![1, 2, 3], Duration::from_secs(20)).await;
    let mut c1 = cl.client(0).await;
    let r = c1
        .call(
            0,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                    .with_name(sb("alice"))
                    .with_mechanism(2)
                    .with_iterations(8192)
                    .with_salt(bytes::Bytes::from_static(b"salt"))
                    .with_salted_password(bytes::Bytes::from(vec![7u8; 64])),
            ]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    for i in 0..3 {
        eventually(&cl, i, "alice's credential", |c| async move {
            users(c).await == vec![("alice".to_string(), vec![(2, 8192)])]
        })
        .await;
    }
    // A topic every node leads a partition of, then a DENY through node 2.
    assert_eq!(
        c1.call(5, &create_req("locked", 3, 3)).await.topics[0].error_code,
        0
    );
    let mut c2 = cl.client(1).await;
    let r = c2
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![deny_anonymous_write("locked")]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    for i in 0..3 {
        eventually(&cl, i, "the DENY refuses writes", |mut c| async move {
            let (code, _) = c.produce("locked", 0, plain(1), 1).await;
            code == ResponseError::TopicAuthorizationFailed.code()
        })
        .await;
    }
    // A restarted broker still has both.
    cl.terminate(2);
    cl.restart(2);
    eventually(&cl, 2, "the DENY after a restart", |mut c| async move {
        let (code, _) = c.produce("locked", 0, plain(1), 1).await;
        code == ResponseError::TopicAuthorizationFailed.code()
    })
    .await;
    eventually(&cl, 2, "alice after a restart", |c| async move {
        users(c).await.len() == 1
    })
    .await;
    // Removed through node 3: writes succeed again everywhere (on the leader).
    let mut c3 = cl.client(2).await;
    let r = c3
        .call(
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_type_filter(1)
                    .with_resource_name_filter(None)
                    .with_pattern_type_filter(1)
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_operation(1)
                    .with_permission_type(1),
            ]),
        )
        .await;
    assert_eq!(r.filter_results[0].matching_acls.len(), 1, "{r:?}");
    for i in 0..3 {
        eventually(&cl, i, "the DENY is gone", |mut c| async move {
            let (code, _) = c.produce("locked", 0, plain(1), 1).await;
            code != ResponseError::TopicAuthorizationFailed.code()
        })
        .await;
    }
}
