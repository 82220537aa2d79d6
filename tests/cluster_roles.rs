//! Dedicated roles: three controllers (`process.roles=controller`) and two brokers
//! (`process.roles=broker`, one given the voters, one only the controllers' addresses in
//! `controller.quorum.bootstrap.servers`) as separate processes. The brokers follow the
//! metadata log as observers; the controllers serve no clients.

mod cluster_common;
mod common;

use std::time::{Duration, Instant};

use cluster_common::*;
use common::*;
use kafka_protocol::messages::*;

/// DescribeQuorum through a broker: (leader, voters, observers).
async fn quorum(c: &mut Client) -> (i32, Vec<i32>, Vec<i32>) {
    let req = DescribeQuorumRequest::default().with_topics(vec![
        describe_quorum_request::TopicData::default()
            .with_topic_name(tn("__cluster_metadata"))
            .with_partitions(vec![
                describe_quorum_request::PartitionData::default().with_partition_index(0),
            ]),
    ]);
    let r = c.call(2, &req).await;
    let p = &r.topics[0].partitions[0];
    let mut voters: Vec<i32> = p.current_voters.iter().map(|v| v.replica_id.0).collect();
    let mut observers: Vec<i32> = p.observers.iter().map(|v| v.replica_id.0).collect();
    voters.sort();
    observers.sort();
    (p.leader_id.0, voters, observers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedicated_controllers_and_brokers() {
    // Broker 5 finds the controllers through controller.quorum.bootstrap.servers.
    let roles = [
        "controller",
        "controller",
        "controller",
        "broker",
        "broker/bootstrap",
    ];
    let mut cl = Cluster::start_roles(&roles);
    // Only the brokers are brokers; each names itself as the controller clients reach.
    let v = agreed(&cl, |v| v.0 == vec![4, 5], Duration::from_secs(20)).await;
    assert_eq!(v.1, 4, "DescribeCluster names the lowest live broker");
    for i in [3, 4] {
        let mut c = cl.client(i).await;
        let m = c
            .call(12, &MetadataRequest::default().with_topics(None))
            .await;
        assert_eq!(m.controller_id.0, i as i32 + 1);
    }

    // The quorum: three voters, the two brokers observing it.
    let mut c4 = cl.client(3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (leader, voters, observers) = loop {
        let q = quorum(&mut c4).await;
        if q.2 == vec![4, 5] {
            break q;
        }
        assert!(Instant::now() < deadline, "observers not listed: {q:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(voters, vec![1, 2, 3]);
    assert_eq!(observers, vec![4, 5]);
    assert!((1..=3).contains(&leader), "leader {leader}");

    // A topic created through one broker is placed on both and served by its leaders
    // (replication factor 1: until partitions are replicated, a restarted broker's data is
    // only its own).
    let r = c4.call(7, &create_req("roles", 4, 1)).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let v = agreed(
        &cl,
        |v| leaders_of(v, "roles").len() == 4,
        Duration::from_secs(10),
    )
    .await;
    let leaders = leaders_of(&v, "roles");
    assert_eq!(
        leaders.iter().filter(|l| **l == 4).count(),
        2,
        "{leaders:?}"
    );
    for (p, leader) in leaders.iter().enumerate() {
        let mut lc = cl.client((*leader - 1) as usize).await;
        let (err, _) = lc.produce("roles", p as i32, plain(3), -1).await;
        assert_eq!(err, 0, "produce to leader {leader} of partition {p}");
    }

    // The active controller dies: another takes over and topics are created again.
    cl.kill((leader - 1) as usize);
    let killed_at = Instant::now();
    let mut c5 = cl.client(4).await;
    loop {
        let r = c5.call(7, &create_req("after-kill", 1, 2)).await;
        if r.topics[0].error_code == 0 {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(15),
            "no topic creation after the controller's death: {:?}",
            r.topics[0].error_message
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (new_leader, _, _) = quorum(&mut c5).await;
    assert!(new_leader != leader && (1..=3).contains(&new_leader));

    // A broker restarted after SIGKILL catches up with what it missed and serves its data.
    cl.kill(4);
    let r = c4.call(7, &create_req("while-down", 2, 1)).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    cl.restart(4);
    let v = agreed(
        &cl,
        |v| v.0 == vec![4, 5] && leaders_of(v, "while-down").len() == 2,
        Duration::from_secs(20),
    )
    .await;
    let leaders = leaders_of(&v, "roles");
    for (p, leader) in leaders.iter().enumerate() {
        let mut lc = cl.client((*leader - 1) as usize).await;
        let fd = lc.fetch("roles", p as i32, 0, 0).await;
        assert_eq!(fd.error_code, 0);
        let n = decode_records(fd.records.unwrap()).len();
        assert_eq!(n, 3, "partition {p}:\n{}", cl.nodes[4].log.lock().unwrap());
    }

    // The killed controller comes back as a voter; a controller stops cleanly on SIGTERM and
    // the two left still decide.
    cl.restart((leader - 1) as usize);
    let other = (1..=3).find(|id| *id != new_leader).unwrap();
    let status = cl.terminate((other - 1) as usize);
    assert!(status.success(), "controller {other} exit: {status:?}");
    let r = c4.call(7, &create_req("two-voters", 1, 2)).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}
