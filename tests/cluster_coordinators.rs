//! The coordinators on three nodes: `transaction.state.log.min.isr` holds back the
//! transaction coordinator's acknowledgements while `__transaction_state`'s ISR is too small
//! (COORDINATOR_NOT_AVAILABLE, which clients retry), and it serves again once the ISR grows
//! back. (Failover through real clients is the fault harness's: scripts/fault-test.sh.)

mod cluster_common;
mod common;

use std::time::{Duration, Instant};

use cluster_common::*;
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;

const TOPIC: &str = "__transaction_state";

/// Leader and sorted ISR of partition 0 of `__transaction_state`, as node `i` reports it.
async fn txn_partition(cl: &Cluster, i: usize) -> Option<(i32, Vec<i32>)> {
    let mut c = cl.client(i).await;
    let r = c
        .call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(tn(TOPIC))),
            ])),
        )
        .await;
    let t = r.topics.first().filter(|t| t.error_code == 0)?;
    let p = t.partitions.first()?;
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort();
    Some((p.leader_id.0, isr))
}

async fn wait_isr(cl: &Cluster, i: usize, want: &[i32], within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        let p = txn_partition(cl, i).await;
        if let Some((leader, isr)) = &p
            && *leader > 0
            && isr == want
        {
            return *leader;
        }
        assert!(Instant::now() < deadline, "ISR {want:?} not reached: {p:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn init(c: &mut Client, tid: &str) -> i16 {
    c.call(
        5,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(sb(tid))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )
    .await
    .error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transaction_coordinator_waits_for_its_min_isr() {
    let mut cl = Cluster::start_with(
        3,
        &[
            "transaction.state.log.num.partitions=1",
            "transaction.state.log.replication.factor=3",
            "transaction.state.log.min.isr=3",
        ],
    );
    agreed(&cl, |v| v.0 == vec![1, 2, 3], Duration::from_secs(20)).await;
    // FindCoordinator creates the topic (COORDINATOR_NOT_AVAILABLE until then).
    let mut c = cl.client(0).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let coordinator = loop {
        let r = c
            .call(
                3,
                &FindCoordinatorRequest::default()
                    .with_key(sb("app"))
                    .with_key_type(1),
            )
            .await;
        if r.error_code == 0 {
            break r.node_id.0;
        }
        assert!(Instant::now() < deadline, "no coordinator: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ci = (coordinator - 1) as usize;
    assert_eq!(
        wait_isr(&cl, ci, &[1, 2, 3], Duration::from_secs(20)).await,
        coordinator
    );
    let mut cc = cl.client(ci).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = init(&mut cc, "app").await;
        if e == 0 {
            break;
        }
        assert_eq!(e, ResponseError::CoordinatorLoadInProgress.code());
        assert!(Instant::now() < deadline, "InitProducerId kept failing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Another node dies: once fenced it leaves the ISR, two of the three required remain.
    let victim = (ci + 1) % 3;
    cl.kill(victim);
    let mut left: Vec<i32> = [1, 2, 3]
        .into_iter()
        .filter(|n| *n != victim as i32 + 1)
        .collect();
    left.sort();
    assert_eq!(
        wait_isr(&cl, ci, &left, Duration::from_secs(20)).await,
        coordinator
    );
    for tid in ["app", "other"] {
        assert_eq!(
            init(&mut cc, tid).await,
            ResponseError::CoordinatorNotAvailable.code(),
            "{tid}: acknowledged with an ISR below transaction.state.log.min.isr"
        );
    }

    // Back in the ISR, the coordinator serves both again.
    cl.restart(victim);
    wait_isr(&cl, ci, &[1, 2, 3], Duration::from_secs(30)).await;
    for tid in ["app", "other"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let e = init(&mut cc, tid).await;
            if e == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{tid}: InitProducerId gave {e}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
