//! Acknowledged means persisted for group metadata: the release binary runs as a child
//! process, is SIGKILLed right after OffsetCommit and ConsumerGroupHeartbeat answers, and
//! must remember both when it starts again on the same data dir.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::*;

struct Fjord {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn spawn(data: &std::path::Path) -> Fjord {
    let port = free_port();
    let mut c = Command::new(env!("CARGO_BIN_EXE_fjord"));
    c.env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("FJORD_") {
            c.env_remove(k);
        }
    }
    let child = c
        .args([
            "--override",
            &format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
        ])
        .args(["--override", &format!("log.dirs={}", data.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "broker did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Fjord { child, port }
}

impl Fjord {
    async fn client(&self) -> Client {
        Client::connect(format!("127.0.0.1:{}", self.port).parse().unwrap()).await
    }

    fn kill(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        self.child.wait().unwrap();
    }
}

impl Drop for Fjord {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn commit(group: &str, topic: &str, partition: i32, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(tn(topic))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset),
                ]),
        ])
}

async fn committed(c: &mut Client, group: &str, topic: &str, partition: i32) -> i64 {
    let r = c
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(sb(group)))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(tn(topic))
                        .with_partition_indexes(vec![partition]),
                ])),
        )
        .await;
    r.topics[0].partitions[0].committed_offset
}

fn heartbeat(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names((epoch == 0).then(|| vec![tn("t")]))
}

#[tokio::test]
async fn acknowledged_commits_and_joins_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let b = spawn(&data);
    let mut c = b.client().await;
    assert_eq!(c.create_topic("t", 4).await, 0);
    // Topic creation is not what this test is about: give it time to reach the disk.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // An acks=all produce flushes the store; a later metadata-only write must still get a
    // flush of its own rather than count as covered by that one.
    assert_eq!(c.produce("t", 0, plain(3), -1).await.0, 0);
    // Pipelined: the four commits are answered back to back, then the broker dies at once.
    let mut corrs = Vec::new();
    for p in 0..4 {
        corrs.push(c.send(8, &commit("g", "t", p, 100 + p as i64)).await);
    }
    for (p, corr) in corrs.into_iter().enumerate() {
        let r = c.recv::<OffsetCommitRequest>(8, corr).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0, "partition {p}");
    }
    b.kill();

    let b = spawn(&data);
    let mut c = b.client().await;
    for p in 0..4 {
        assert_eq!(
            committed(&mut c, "g", "t", p).await,
            100 + p as i64,
            "acknowledged commit of partition {p} lost"
        );
    }
    // A KIP-848 member that was told it joined must still be known after a crash.
    let j = c.call(1, &heartbeat("cg", "member-a", 0)).await;
    assert_eq!(j.error_code, 0);
    assert!(j.member_epoch > 0);
    b.kill();

    let b = spawn(&data);
    let mut c = b.client().await;
    let again = c
        .call(1, &heartbeat("cg", "member-a", j.member_epoch))
        .await;
    assert_eq!(
        (again.error_code, again.member_epoch),
        (0, j.member_epoch),
        "acknowledged join lost"
    );
    b.kill();
}
