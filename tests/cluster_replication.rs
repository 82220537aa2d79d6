//! Replication across three `fjord` processes (issue 12): a topic with replication factor 3
//! and min.insync.replicas=2 keeps every acks=all write through a SIGKILL of its leader;
//! followers hold the leader's bytes; acks=all is refused when the ISR is too small; killed
//! replicas come back, catch up and rejoin the ISR.

mod cluster_common;
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster_common::*;
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;

/// (leader, leader epoch, ISR) of partition 0 of `topic` as node `i` sees it.
async fn partition0(cl: &Cluster, i: usize, topic: &str) -> Option<(i32, i32, Vec<i32>)> {
    let mut c = cl.client(i).await;
    let r = c
        .call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(tn(topic))),
            ])),
        )
        .await;
    let p = r.topics.first()?.partitions.first()?;
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort();
    Some((p.leader_id.0, p.leader_epoch, isr))
}

/// Waits until node `i` reports partition 0 of `topic` satisfying `ok`.
async fn wait_partition(
    cl: &Cluster,
    i: usize,
    topic: &str,
    ok: impl Fn(&(i32, i32, Vec<i32>)) -> bool,
    within: Duration,
) -> (i32, i32, Vec<i32>) {
    let deadline = Instant::now() + within;
    loop {
        let p = partition0(cl, i, topic).await;
        if let Some(p) = p.as_ref().filter(|p| ok(p)) {
            return p.clone();
        }
        assert!(
            Instant::now() < deadline,
            "partition state {p:?} not reached"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every record of partition 0 from `offset` on, read from node `i` (the leader) as
/// (offset, value).
async fn read_all(cl: &Cluster, i: usize, topic: &str) -> Vec<(i64, Option<Bytes>)> {
    let mut c = cl.client(i).await;
    let mut out = Vec::new();
    let mut offset = 0i64;
    loop {
        let p = c.fetch(topic, 0, offset, 100).await;
        assert_eq!(p.error_code, 0, "fetch at {offset}");
        let mut data = p.records.clone().unwrap_or_default();
        if data.is_empty() {
            return out;
        }
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut data).unwrap();
        for r in set.records {
            out.push((r.offset, r.value.clone()));
            offset = r.offset + 1;
        }
        if offset >= p.high_watermark {
            return out;
        }
    }
}

/// [`read_all`] until it returns at least `n` records (a new leader's high watermark
/// moves up once its followers have fetched), up to 10 s.
async fn read_at_least(cl: &Cluster, i: usize, topic: &str, n: usize) -> Vec<(i64, Option<Bytes>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = read_all(cl, i, topic).await;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn create_rf3(name: &str, min_isr: &str) -> CreateTopicsRequest {
    let mut r = create_req(name, 1, 3);
    r.topics[0].configs = vec![
        create_topics_request::CreatableTopicConfig::default()
            .with_name(sb("min.insync.replicas"))
            .with_value(Some(sb(min_isr))),
    ];
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_survives_the_leaders_death() {
    let mut cl = Cluster::start(3);
    agreed(&cl, |v| v.0 == vec![1, 2, 3], Duration::from_secs(20)).await;
    let mut c = cl.client(0).await;
    let r = c.call(7, &create_rf3("r3", "2")).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let (leader, epoch, isr) =
        wait_partition(&cl, 0, "r3", |p| p.0 > 0, Duration::from_secs(10)).await;
    assert_eq!(isr, vec![1, 2, 3]);
    let li = (leader - 1) as usize;

    // 40 acks=all batches of 5 records: each acknowledged once all three have it.
    let mut lc = cl.client(li).await;
    let mut acked = 0i64;
    for i in 0..40 {
        let (err, base) = lc
            .produce("r3", 0, batch(5, -1, -1, -1, Compression::None), -1)
            .await;
        assert_eq!(err, 0, "batch {i}");
        assert_eq!(base, acked);
        acked += 5;
    }
    // Consumers see them all on the leader (the high watermark passed them).
    assert_eq!(read_all(&cl, li, "r3").await.len(), acked as usize);

    // SIGKILL the leader: another ISR member leads, with a higher epoch, and holds every
    // acknowledged record.
    cl.kill(li);
    let other = (li + 1) % 3;
    let (new_leader, new_epoch, _) = wait_partition(
        &cl,
        other,
        "r3",
        |p| p.0 > 0 && p.0 != leader,
        Duration::from_secs(10),
    )
    .await;
    assert!(new_epoch > epoch);
    let ni = (new_leader - 1) as usize;
    let got = read_at_least(&cl, ni, "r3", acked as usize).await;
    assert_eq!(got.len(), acked as usize, "acknowledged records lost");
    for (i, (off, _)) in got.iter().enumerate() {
        assert_eq!(*off, i as i64);
    }
    // Two in the ISR still satisfy min.insync.replicas=2.
    let mut nc = cl.client(ni).await;
    let (err, base) = nc
        .produce("r3", 0, batch(5, -1, -1, -1, Compression::None), -1)
        .await;
    assert_eq!(err, 0);
    assert_eq!(base, acked);
    acked += 5;

    // The killed leader comes back, catches up from the new leader and rejoins the ISR.
    cl.restart(li);
    wait_partition(
        &cl,
        ni,
        "r3",
        |p| p.2 == vec![1, 2, 3],
        Duration::from_secs(20),
    )
    .await;
    // A topic that wants all three in sync: with the third node killed (and fenced), the
    // ISR is too small and acks=all is refused before the append; acks=1 still works.
    let r = nc.call(7, &create_rf3("r3-strict", "3")).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let (sl, ..) = wait_partition(
        &cl,
        ni,
        "r3-strict",
        |p| p.2.len() == 3,
        Duration::from_secs(10),
    )
    .await;
    let third = (0..3).find(|i| *i != li && *i != ni).unwrap();
    if sl == third as i32 + 1 {
        // Keep the test about followers: the strict topic's leader must survive.
        cl.kill(li);
        cl.restart(li);
    }
    cl.kill(third);
    let (sl, _, _) = wait_partition(
        &cl,
        ni,
        "r3-strict",
        |p| p.2.len() == 2 && p.0 > 0,
        Duration::from_secs(10),
    )
    .await;
    let mut sc = cl.client((sl - 1) as usize).await;
    let (err, _) = sc
        .produce("r3-strict", 0, batch(5, -1, -1, -1, Compression::None), -1)
        .await;
    assert_eq!(err, ResponseError::NotEnoughReplicas.code());
    let (err, base) = sc
        .produce("r3-strict", 0, batch(5, -1, -1, -1, Compression::None), 1)
        .await;
    assert_eq!((err, base), (0, 0));
    // min.insync.replicas=2 is still met for the first topic.
    let (nl, ..) = wait_partition(
        &cl,
        ni,
        "r3",
        |p| p.2.len() == 2 && p.0 > 0,
        Duration::from_secs(10),
    )
    .await;
    let mut nc2 = cl.client((nl - 1) as usize).await;
    let (err, base) = nc2
        .produce("r3", 0, batch(5, -1, -1, -1, Compression::None), -1)
        .await;
    assert_eq!((err, base), (0, acked));
    acked += 5;

    // The third comes back too and everything is in sync again.
    cl.restart(third);
    let (nl, ..) = wait_partition(
        &cl,
        ni,
        "r3",
        |p| p.2 == vec![1, 2, 3],
        Duration::from_secs(20),
    )
    .await;
    let ni = (nl - 1) as usize;
    let mut nc = cl.client(ni).await;
    let (err, base) = nc
        .produce("r3", 0, batch(5, -1, -1, -1, Compression::None), -1)
        .await;
    assert_eq!((err, base), (0, acked));
    acked += 5;

    // Every replica holds the same bytes: stop them all and compare the segment files.
    let md = nc
        .call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(tn("r3"))),
            ])),
        )
        .await;
    let part = format!("{}-0", md.topics[0].topic_id.simple());
    let dirs: Vec<_> = cl.nodes.iter().map(|n| n.dir.clone()).collect();
    for i in 0..3 {
        cl.terminate(i);
    }
    let segs: Vec<Vec<(String, Vec<u8>)>> = dirs.iter().map(|d| segment_files(d, &part)).collect();
    assert!(!segs[0].is_empty(), "no segment files found");
    let total: usize = segs[0].iter().map(|(_, b)| b.len()).sum();
    assert!(total > 0);
    assert_eq!(segs[0], segs[1], "replicas 1 and 2 differ");
    assert_eq!(segs[0], segs[2], "replicas 1 and 3 differ");
    let _ = acked;
}

/// The segment files of partition directory `part` (e.g. `r3-0`) under a data dir.
fn segment_files(dir: &std::path::Path, part: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log")
                && p.parent()
                    .and_then(|x| x.file_name())
                    .is_some_and(|n| n.to_string_lossy().ends_with(part))
            {
                out.push((
                    p.file_name().unwrap().to_string_lossy().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn elect_req(kind: i8, topic: &str) -> ElectLeadersRequest {
    ElectLeadersRequest::default()
        .with_election_type(kind)
        .with_topic_partitions(Some(vec![
            elect_leaders_request::TopicPartitions::default()
                .with_topic(tn(topic))
                .with_partitions(vec![0]),
        ]))
        .with_timeout_ms(10000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_leaders_come_back_and_unclean_elections_need_consent() {
    // Three controllers and two brokers, so that both brokers can be down with the quorum
    // still up; preferred leaders are checked every second.
    let roles = [
        "broker,controller",
        "broker,controller",
        "broker,controller",
        "broker",
        "broker",
    ];
    let mut cl = Cluster::start_roles_with(&roles, &["leader.imbalance.check.interval.seconds=1"]);
    agreed(&cl, |v| v.0 == vec![1, 2, 3, 4, 5], Duration::from_secs(20)).await;
    let mut c = cl.client(0).await;

    // Preferred leader: a controlled shutdown moves the leadership away, the restarted
    // broker catches up, rejoins the ISR and takes it back by itself.
    let r = c.call(7, &create_req("pref", 1, 3)).await;
    assert_eq!(r.topics[0].error_code, 0);
    let (preferred, ..) =
        wait_partition(&cl, 0, "pref", |p| p.2.len() == 3, Duration::from_secs(10)).await;
    let pi = (preferred - 1) as usize;
    cl.terminate(pi);
    let other = if pi == 0 { 1 } else { 0 };
    wait_partition(
        &cl,
        other,
        "pref",
        |p| p.0 > 0 && p.0 != preferred,
        Duration::from_secs(10),
    )
    .await;
    cl.restart(pi);
    wait_partition(
        &cl,
        other,
        "pref",
        |p| p.0 == preferred && p.2.len() == 3,
        Duration::from_secs(20),
    )
    .await;
    let mut c = cl.client(other).await;
    let r = c.call(2, &elect_req(0, "pref")).await;
    let p = &r.replica_election_results[0].partition_result[0];
    assert_eq!(p.error_code, ResponseError::ElectionNotNeeded.code());

    // Unclean: a partition on brokers 4 and 5 only.
    let mut req = create_req("dirty", -1, -1);
    req.topics[0].assignments = vec![
        create_topics_request::CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(vec![BrokerId(4), BrokerId(5)]),
    ];
    let r = c.call(7, &req).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    wait_partition(
        &cl,
        0,
        "dirty",
        |p| p.0 == 4 && p.2 == vec![4, 5],
        Duration::from_secs(10),
    )
    .await;
    // 5 dies, 4 takes writes alone, then dies too: the partition is offline with ISR [4].
    cl.kill(4);
    wait_partition(&cl, 0, "dirty", |p| p.2 == vec![4], Duration::from_secs(10)).await;
    let mut c4 = cl.client(3).await;
    let (err, _) = c4
        .produce("dirty", 0, batch(3, -1, -1, -1, Compression::None), 1)
        .await;
    assert_eq!(err, 0);
    cl.kill(3);
    cl.restart(4);
    wait_partition(
        &cl,
        0,
        "dirty",
        |p| p.0 == -1 && p.2 == vec![4],
        Duration::from_secs(10),
    )
    .await;
    // 5 is live but out of sync: not elected without consent.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(partition0(&cl, 0, "dirty").await.unwrap().0, -1);
    assert_eq!(
        c.call(2, &elect_req(0, "dirty"))
            .await
            .replica_election_results[0]
            .partition_result[0]
            .error_code,
        ResponseError::PreferredLeaderNotAvailable.code()
    );
    // ElectLeaders UNCLEAN: 5 leads, alone in the ISR, with what it has.
    let r = c.call(2, &elect_req(1, "dirty")).await;
    assert_eq!(
        r.replica_election_results[0].partition_result[0].error_code,
        0
    );
    let (l, ..) = wait_partition(
        &cl,
        0,
        "dirty",
        |p| p.0 == 5 && p.2 == vec![5],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(l, 5);
    // And by config: 5 dies, 4 comes back out of sync; the topic allows unclean elections.
    cl.kill(4);
    wait_partition(&cl, 0, "dirty", |p| p.0 == -1, Duration::from_secs(10)).await;
    cl.restart(3);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(partition0(&cl, 0, "dirty").await.unwrap().0, -1);
    alter_ok(&mut c, 2, "dirty", "unclean.leader.election.enable", "true").await;
    wait_partition(
        &cl,
        0,
        "dirty",
        |p| p.0 == 4 && p.2 == vec![4],
        Duration::from_secs(10),
    )
    .await;
}

fn reassign_req(topic: &str, replicas: Option<Vec<i32>>) -> AlterPartitionReassignmentsRequest {
    AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10000)
        .with_allow_replication_factor_change(true)
        .with_topics(vec![
            alter_partition_reassignments_request::ReassignableTopic::default()
                .with_name(tn(topic))
                .with_partitions(vec![
                    alter_partition_reassignments_request::ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect())),
                ]),
        ])
}

/// Replicas of partition 0 of `topic` as node `i` sees them.
async fn replicas0(cl: &Cluster, i: usize, topic: &str) -> Vec<i32> {
    let mut c = cl.client(i).await;
    let r = c
        .call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(tn(topic))),
            ])),
        )
        .await;
    r.topics[0].partitions[0]
        .replica_nodes
        .iter()
        .map(|b| b.0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reassignment_copies_the_data_and_removes_the_old_copy() {
    let mut cl = Cluster::start(3);
    agreed(&cl, |v| v.0 == vec![1, 2, 3], Duration::from_secs(20)).await;
    let mut c = cl.client(1).await;
    let mut req = create_req("move", -1, -1);
    req.topics[0].assignments = vec![
        create_topics_request::CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(vec![BrokerId(1), BrokerId(2)]),
    ];
    assert_eq!(c.call(7, &req).await.topics[0].error_code, 0);
    let (leader, ..) = wait_partition(
        &cl,
        1,
        "move",
        |p| p.0 == 1 && p.2 == vec![1, 2],
        Duration::from_secs(10),
    )
    .await;
    let mut lc = cl.client((leader - 1) as usize).await;
    for _ in 0..10 {
        let (err, _) = lc
            .produce("move", 0, batch(3, -1, -1, -1, Compression::None), -1)
            .await;
        assert_eq!(err, 0);
    }
    // [1, 2] -> [2, 3]: 3 copies the data from the leader, 1 lets go of it.
    let r = c.call(1, &reassign_req("move", Some(vec![2, 3]))).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(
        r.responses[0].partitions[0].error_code, 0,
        "{:?}",
        r.responses[0].partitions[0].error_message
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ongoing = c
            .call(0, &ListPartitionReassignmentsRequest::default())
            .await;
        if ongoing.topics.is_empty() && replicas0(&cl, 1, "move").await == vec![2, 3] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reassignment did not complete: {ongoing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (leader, _, isr) = wait_partition(
        &cl,
        1,
        "move",
        |p| p.0 > 1 && p.2 == vec![2, 3],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        read_at_least(&cl, (leader - 1) as usize, "move", 30)
            .await
            .len(),
        30
    );
    assert_eq!(isr, vec![2, 3]);
    // Nothing to cancel now.
    let r = c.call(1, &reassign_req("move", None)).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::NoReassignmentInProgress.code()
    );
    // A reassignment to a broker that is down stays in progress, is listed, and can be
    // cancelled.
    cl.kill(0);
    let r = c.call(1, &reassign_req("move", Some(vec![2, 3, 1]))).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    let ongoing = c
        .call(0, &ListPartitionReassignmentsRequest::default())
        .await;
    let p = &ongoing.topics[0].partitions[0];
    assert_eq!(p.adding_replicas, vec![BrokerId(1)]);
    let r = c.call(1, &reassign_req("move", None)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    assert!(
        c.call(0, &ListPartitionReassignmentsRequest::default())
            .await
            .topics
            .is_empty()
    );
    assert_eq!(replicas0(&cl, 1, "move").await, vec![2, 3]);
    // Node 1 comes back and deletes what it held; 2 and 3 hold the same bytes.
    cl.restart(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let md = c
        .call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(tn("move"))),
            ])),
        )
        .await;
    let part = format!("{}-0", md.topics[0].topic_id.simple());
    let dirs: Vec<_> = cl.nodes.iter().map(|n| n.dir.clone()).collect();
    for i in 0..3 {
        cl.terminate(i);
    }
    let segs: Vec<_> = dirs.iter().map(|d| segment_files(d, &part)).collect();
    let bytes = |s: &Vec<(String, Vec<u8>)>| s.iter().map(|(_, b)| b.len()).sum::<usize>();
    assert_eq!(bytes(&segs[0]), 0, "node 1 still holds the partition");
    assert!(bytes(&segs[1]) > 0);
    assert_eq!(segs[1], segs[2]);
}
