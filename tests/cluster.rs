//! Three `fjord` processes on loopback forming a cluster: registration, placement, routing to
//! leaders, controller failover with SIGKILL, restarts, controlled shutdown, and the data dirs
//! a cluster node refuses.

mod cluster_common;
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster_common::*;
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_place_route_and_survive_kills() {
    let mut cl = Cluster::start(3);
    let v = agreed(
        &cl,
        |v| v.0 == vec![1, 2, 3] && v.1 > 0,
        Duration::from_secs(20),
    )
    .await;
    assert!((1..=3).contains(&v.1), "controller {:?}", v.1);

    // Metadata names the node asked (it takes admin requests and forwards them).
    for i in 0..3 {
        let r = cl
            .client(i)
            .await
            .call(12, &MetadataRequest::default().with_topics(None))
            .await;
        assert_eq!(r.controller_id.0, i as i32 + 1);
    }
    // DescribeCluster names the same controller and the three brokers.
    let mut c2 = cl.client(1).await;
    let dc = c2.call(1, &DescribeClusterRequest::default()).await;
    assert_eq!(dc.brokers.len(), 3);
    assert_eq!(dc.controller_id.0, v.1);

    // Placement: 6 partitions of RF 1 through node 2, two led by each broker; RF 4 refused.
    let r = c2.call(7, &create_req("spread", 6, 1)).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let r = c2.call(7, &create_req("too-many", 1, 4)).await;
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::InvalidReplicationFactor.code()
    );
    let r = c2.call(7, &create_req("spread", 1, 1)).await;
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::TopicAlreadyExists.code()
    );
    let v = agreed(
        &cl,
        |v| leaders_of(v, "spread").len() == 6,
        Duration::from_secs(10),
    )
    .await;
    let leaders = leaders_of(&v, "spread");
    for b in 1..=3 {
        assert_eq!(
            leaders.iter().filter(|l| **l == b).count(),
            2,
            "{leaders:?}"
        );
    }

    // Routing: the leader takes a batch; another broker answers NOT_LEADER_OR_FOLLOWER and
    // names the leader (KIP-951); fetch likewise.
    for (p, leader) in leaders.iter().enumerate() {
        let p = p as i32;
        let li = (*leader - 1) as usize;
        let other = (li + 1) % 3;
        let mut lc = cl.client(li).await;
        let (err, _) = lc.produce("spread", p, plain(5), -1).await;
        assert_eq!(err, 0, "produce to leader {leader} of partition {p}");
        let mut oc = cl.client(other).await;
        let r = oc.call(11, &produce_req("spread", p, plain(1), -1)).await;
        let pr = &r.responses[0].partition_responses[0];
        assert_eq!(pr.error_code, ResponseError::NotLeaderOrFollower.code());
        assert_eq!(pr.current_leader.leader_id.0, *leader);
        assert!(r.node_endpoints.iter().any(|e| e.node_id.0 == *leader));
        let fd = oc.fetch("spread", p, 0, 0).await;
        assert_eq!(fd.error_code, ResponseError::NotLeaderOrFollower.code());
        let fd = lc.fetch("spread", p, 0, 0).await;
        assert_eq!(fd.error_code, 0);
        assert_eq!(decode_records(fd.records.unwrap()).len(), 5);
    }

    // A topic config changed through one node is seen on another.
    let mut c1 = cl.client(0).await;
    alter_ok(&mut c1, 2, "spread", "retention.ms", "3600000").await;
    let mut c3 = cl.client(2).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (val, _) = described(&mut c3, 2, "spread", "retention.ms").await;
        if val.as_deref() == Some("3600000") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "config not seen on node 3: {val:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The cluster-wide broker default, changed through node 1, is node 3's too; so is a
    // group config.
    alter_ok(&mut c1, 4, "", "log.retention.ms", "7200000").await;
    alter_ok(&mut c1, 32, "g1", "consumer.session.timeout.ms", "50000").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (broker, source) = described(&mut c3, 4, "3", "log.retention.ms").await;
        let (group, _) = described(&mut c3, 32, "g1", "consumer.session.timeout.ms").await;
        if broker.as_deref() == Some("7200000") && group.as_deref() == Some("50000") {
            // 3 = DYNAMIC_DEFAULT_BROKER_CONFIG
            assert_eq!(source, 3);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "configs not seen on node 3: {broker:?} {group:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Auto-creation through a broker goes through the controller too.
    let r = c3
        .call(
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    metadata_request::MetadataRequestTopic::default().with_name(Some(tn("auto"))),
                ]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    agreed(
        &cl,
        |v| leaders_of(v, "auto").len() == 3,
        Duration::from_secs(10),
    )
    .await;

    // SIGKILL the active controller: another is elected, topic creation works again, the
    // killed broker is fenced after its session and its partitions lose their leader.
    let controller = agreed(&cl, |v| v.1 > 0, Duration::from_secs(5)).await.1;
    let ci = (controller - 1) as usize;
    let survivor = (ci + 1) % 3;
    cl.kill(ci);
    let killed_at = Instant::now();
    let mut sc = cl.client(survivor).await;
    loop {
        let r = sc.call(7, &create_req("after-kill", 2, 1)).await;
        if r.topics[0].error_code == 0 {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(15),
            "no topic creation after the controller died: {:?}",
            r.topics[0]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "topic creation again {:?} after SIGKILL of the controller",
        killed_at.elapsed()
    );
    let v = agreed(
        &cl,
        |v| v.0.len() == 2 && v.1 > 0 && v.1 != controller,
        Duration::from_secs(15),
    )
    .await;
    let spread = leaders_of(&v, "spread");
    assert_eq!(spread.iter().filter(|l| **l == -1).count(), 2, "{spread:?}");
    assert!(!spread.contains(&controller));

    // The killed node comes back: registered again, it leads its partitions with a higher
    // leader epoch, knows the topic created while it was down, and still has its records.
    cl.restart(ci);
    let v = agreed(
        &cl,
        |v| v.0 == vec![1, 2, 3] && !leaders_of(v, "spread").contains(&-1),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(leaders_of(&v, "spread"), leaders);
    assert_eq!(leaders_of(&v, "after-kill").len(), 2);
    let epochs: Vec<i32> =
        v.2.iter()
            .find(|t| t.0 == "spread")
            .unwrap()
            .1
            .iter()
            .map(|p| p.2)
            .collect();
    for (p, leader) in leaders.iter().enumerate() {
        let expected = if *leader == controller { 2 } else { 0 };
        assert_eq!(epochs[p], expected, "leader epochs {epochs:?}");
        let mut lc = cl.client((*leader - 1) as usize).await;
        let fd = lc.fetch("spread", p as i32, 0, 0).await;
        assert_eq!(fd.error_code, 0);
        assert_eq!(decode_records(fd.records.unwrap()).len(), 5);
    }

    // Delete through the restarted node: gone on every node.
    let mut rc = cl.client(ci).await;
    let r = rc
        .call(
            4,
            &DeleteTopicsRequest::default()
                .with_topic_names(vec![tn("after-kill")])
                .with_timeout_ms(10000),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    agreed(
        &cl,
        |v| leaders_of(v, "after-kill").is_empty(),
        Duration::from_secs(10),
    )
    .await;

    // A clean stop (SIGTERM) fences the broker at once (controlled shutdown), well within
    // its session timeout.
    let other = (ci + 2) % 3;
    let status = cl.terminate(other);
    assert!(status.success());
    let stopped = Instant::now();
    agreed(&cl, |v| v.0.len() == 2, Duration::from_secs(10)).await;
    assert!(
        stopped.elapsed() < Duration::from_millis(1900),
        "{:?}",
        stopped.elapsed()
    );
    cl.restart(other);
    agreed(&cl, |v| v.0 == vec![1, 2, 3], Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_foreign_data_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    // A single node's data dir with a topic cannot join a cluster.
    let single = tmp.path().join("single");
    {
        let mut b = start_in(&single, &[]).await;
        let mut c = b.client().await;
        assert_eq!(c.create_topic("kept", 1).await, 0);
        b.stop().await;
    }
    let ports = free_ports(2);
    let voters = format!("1@127.0.0.1:{}", ports[1]);
    let out = fjord()
        .args(["--log-dirs", single.to_str().unwrap()])
        .args(["-o", "node.id=1", "-o", "process.roles=broker,controller"])
        .args(["-o", &format!("controller.quorum.voters={voters}")])
        .args(["-o", "controller.listener.names=CONTROLLER"])
        .args([
            "-o",
            &format!(
                "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                ports[0], ports[1]
            ),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("single node"), "{err}");
    // ... and still opens as the single node it is.
    let mut b = start_in(&single, &[]).await;
    let mut c = b.client().await;
    let r = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    assert_eq!(r.topics.len(), 1);
    b.stop().await;

    // A node of cluster Y whose data dir is one of cluster X's (the wrong disk) refuses to
    // start: its quorum log says Y, its data says X.
    let mut x = Cluster::start(1);
    let x_dir = x.nodes[0].dir.clone();
    assert!(x.terminate(0).success());
    let mut y = Cluster::start(2);
    assert!(y.terminate(1).success());
    let y_dir = y.nodes[1].dir.clone();
    std::fs::remove_dir_all(x_dir.join("__cluster_metadata")).unwrap();
    std::fs::rename(
        y_dir.join("__cluster_metadata"),
        x_dir.join("__cluster_metadata"),
    )
    .unwrap();
    let (mut child, log) = spawn_node(
        2,
        "broker,controller",
        y.nodes[1].port,
        y.quorum_ports[1],
        &y.voters,
        &x_dir,
    );
    // A node on another cluster's data must exit by itself.
    let status = wait_exit(&mut child, &log, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(100));
    let text = log.lock().unwrap().clone();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("belongs to cluster"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_its_quorum_waits_and_still_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let ports = free_ports(4);
    let voters = format!(
        "1@127.0.0.1:{},2@127.0.0.1:{},3@127.0.0.1:{}",
        ports[1], ports[2], ports[3]
    );
    let (mut child, log) = spawn_node(
        1,
        "broker,controller",
        ports[0],
        ports[1],
        &voters,
        tmp.path(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{}",
        log.lock().unwrap()
    );
    assert!(!log.lock().unwrap().contains("fjord started"));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_exit(&mut child, &log, Duration::from_secs(10));
    assert!(status.success(), "{}", log.lock().unwrap());
}
