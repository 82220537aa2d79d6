//! The transaction state machine with an in-memory backend and a hand-set clock.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::txn::backend::{MarkerSeen, MemBackend};

const T0: i64 = 1_000_000;
const DAY: i64 = 86_400_000;

struct Fixture {
    c: TxnCoordinator,
    b: Arc<MemBackend>,
}

impl Fixture {
    fn new() -> Self {
        Self::over(MemBackend::default())
    }

    fn over(b: MemBackend) -> Self {
        b.now.store(T0, Ordering::SeqCst);
        let b = Arc::new(b);
        Fixture {
            c: TxnCoordinator::with_backend(Box::new(b.clone()), 900_000, 7 * DAY).unwrap(),
            b,
        }
    }

    fn b(&self) -> &MemBackend {
        &self.b
    }

    fn advance(&self, ms: i64) {
        self.b().now.fetch_add(ms, Ordering::SeqCst);
    }

    fn meta(&self, id: &str) -> TxnMeta {
        self.c.get(id).unwrap().lock().unwrap().clone()
    }

    fn markers(&self) -> Vec<MarkerSeen> {
        std::mem::take(&mut *self.b().markers.lock().unwrap())
    }

    fn add(&self, id: &str, pid: i64, epoch: i16) -> Result<(), ResponseError> {
        self.c
            .add_partitions(id, pid, epoch, &[("t".into(), 0), ("t".into(), 1)], false)
    }

    /// Sets the id's epoch directly, as if that many transactions had run.
    fn set_epoch(&self, id: &str, epoch: i16) {
        self.c.get(id).unwrap().lock().unwrap().producer_epoch = epoch;
    }
}

#[test]
fn init_then_commit_with_kip890_bumps_the_epoch_each_time() {
    let f = Fixture::new();
    let (pid, e0) = f.c.init_producer_id("a", 60_000, -1, -1).unwrap();
    assert_eq!(e0, 0);
    f.add("a", pid, 0).unwrap();
    assert_eq!(f.meta("a").state, TxnState::Ongoing);
    assert_eq!(f.c.end_txn("a", pid, 0, true, true), Ok((pid, 1)));
    assert_eq!(
        f.markers(),
        vec![("t".into(), 0, pid, 1, true), ("t".into(), 1, pid, 1, true)]
    );
    assert_eq!(f.meta("a").state, TxnState::CompleteCommit);
    // A retry of that EndTxn (response lost) answers the same, writes nothing.
    assert_eq!(f.c.end_txn("a", pid, 0, true, true), Ok((pid, 1)));
    assert!(f.markers().is_empty());
    // The old epoch cannot start anything new.
    assert_eq!(f.add("a", pid, 0), Err(ResponseError::ProducerFenced));
}

#[test]
fn classic_end_txn_keeps_the_epoch() {
    let f = Fixture::new();
    let (pid, e) = f.c.init_producer_id("a", 60_000, -1, -1).unwrap();
    f.add("a", pid, e).unwrap();
    assert_eq!(f.c.end_txn("a", pid, e, false, false), Ok((pid, e)));
    assert!(f.markers().iter().all(|m| m.3 == e && !m.4));
    assert_eq!(f.c.end_txn("a", pid, e, false, false), Ok((pid, e)));
    assert_eq!(
        f.c.end_txn("a", pid, e, true, false),
        Err(ResponseError::InvalidTxnState)
    );
}

#[test]
fn exhausted_epochs_move_the_producer_to_a_new_id() {
    let f = Fixture::new();
    let (pid, _) = f.c.init_producer_id("a", 60_000, -1, -1).unwrap();
    // 32,765 transactions later (an hour of a Streams app committing every 100 ms)...
    f.set_epoch("a", EXHAUSTED - 1);
    f.add("a", pid, EXHAUSTED - 1).unwrap();
    assert_eq!(
        f.c.end_txn("a", pid, EXHAUSTED - 1, true, true),
        Ok((pid, EXHAUSTED))
    );
    f.markers();
    // The last usable epoch: its EndTxn writes markers with i16::MAX (fencing it for good)
    // and hands out a new producer id with epoch 0.
    f.add("a", pid, EXHAUSTED).unwrap();
    let (new_pid, e) = f.c.end_txn("a", pid, EXHAUSTED, true, true).unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(e, 0);
    assert!(
        f.markers()
            .iter()
            .all(|m| m.2 == pid && m.3 == i16::MAX && m.4)
    );
    let m = f.meta("a");
    assert_eq!((m.producer_id, m.producer_epoch), (new_pid, 0));
    assert_eq!(m.state, TxnState::CompleteCommit);
    // The retry names the old id and epoch and gets the new ones.
    assert_eq!(
        f.c.end_txn("a", pid, EXHAUSTED, true, true),
        Ok((new_pid, 0))
    );
    // The old id is gone; the new one works.
    assert_eq!(
        f.add("a", pid, EXHAUSTED),
        Err(ResponseError::InvalidProducerIdMapping)
    );
    f.add("a", new_pid, 0).unwrap();
    assert_eq!(f.c.end_txn("a", new_pid, 0, false, true), Ok((new_pid, 1)));
}

#[test]
fn exhausted_epochs_rotate_on_init_and_on_an_empty_abort() {
    let f = Fixture::new();
    let (pid, _) = f.c.init_producer_id("a", 60_000, -1, -1).unwrap();
    f.set_epoch("a", EXHAUSTED);
    let (p2, e2) = f.c.init_producer_id("a", 60_000, pid, EXHAUSTED).unwrap();
    assert_ne!(p2, pid);
    assert_eq!(e2, 0);
    f.set_epoch("a", EXHAUSTED);
    let (p3, e3) = f.c.end_txn("a", p2, EXHAUSTED, false, true).unwrap();
    assert_ne!(p3, p2);
    assert_eq!(e3, 0);
    assert!(f.markers().is_empty());
}

#[test]
fn failed_markers_keep_the_transaction_prepared_and_are_retried() {
    let f = Fixture::new();
    let (pid, _) = f.c.init_producer_id("a", 60_000, -1, -1).unwrap();
    f.add("a", pid, 0).unwrap();
    f.b().fail_markers.store(true, Ordering::SeqCst);
    // The outcome is persisted, so EndTxn succeeds; the markers are still owed.
    assert_eq!(f.c.end_txn("a", pid, 0, true, true), Ok((pid, 1)));
    assert_eq!(f.meta("a").state, TxnState::PrepareCommit);
    assert_eq!(
        f.add("a", pid, 1),
        Err(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(
        f.c.init_producer_id("a", 60_000, -1, -1),
        Err(ResponseError::ConcurrentTransactions)
    );
    f.c.expire();
    assert_eq!(f.meta("a").state, TxnState::PrepareCommit);
    f.b().fail_markers.store(false, Ordering::SeqCst);
    f.c.expire();
    assert_eq!(f.meta("a").state, TxnState::CompleteCommit);
    assert_eq!(f.markers().len(), 2);
    f.add("a", pid, 1).unwrap();
}

#[test]
fn a_restart_in_prepare_commit_finishes_the_transaction() {
    let f = Fixture::new();
    let (pid, _) = f.c.init_producer_id("a", 60_000, -1, -1).unwrap();
    f.add("a", pid, 0).unwrap();
    f.c.stage_offsets(
        "a",
        pid,
        0,
        vec![PendingOffset {
            group: "g".into(),
            topic: "in".into(),
            partition: 0,
            offset: 42,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    )
    .unwrap();
    f.b().fail_markers.store(true, Ordering::SeqCst);
    f.c.end_txn("a", pid, 0, true, true).unwrap();
    // "Restart": a new coordinator over what was persisted.
    let stored = f.b().stored.lock().unwrap().clone();
    let b = MemBackend::default();
    *b.stored.lock().unwrap() = stored;
    let g = Fixture::over(b);
    assert_eq!(g.meta("a").state, TxnState::CompleteCommit);
    assert_eq!(g.markers().len(), 2);
    assert_eq!(
        *g.b().offsets.lock().unwrap(),
        vec![("g".to_string(), "in".to_string(), 0, 42)]
    );
}

#[test]
fn a_timed_out_transaction_is_aborted_and_the_producer_fenced() {
    let f = Fixture::new();
    let (pid, e) = f.c.init_producer_id("a", 10_000, -1, -1).unwrap();
    f.add("a", pid, e).unwrap();
    f.advance(5_000);
    f.c.expire();
    assert_eq!(f.meta("a").state, TxnState::Ongoing);
    f.advance(6_000);
    f.c.expire();
    let m = f.meta("a");
    assert_eq!(
        (m.state, m.producer_epoch),
        (TxnState::CompleteAbort, e + 1)
    );
    assert!(f.markers().iter().all(|m| m.3 == e + 1 && !m.4));
    // The fenced instance's late produce is refused.
    assert_eq!(
        f.c.check_produce("a", pid, e, "t", 0, true),
        Err(ResponseError::InvalidProducerEpoch)
    );
}

#[test]
fn a_new_instance_fences_the_old_one_and_aborts_its_transaction() {
    let f = Fixture::new();
    let (pid, e) = f.c.init_producer_id("a", 60_000, -1, -1).unwrap();
    f.add("a", pid, e).unwrap();
    let (pid2, e2) = f.c.init_producer_id("a", 60_000, -1, -1).unwrap();
    assert_eq!((pid2, e2), (pid, e + 2));
    assert!(f.markers().iter().all(|m| m.3 == e + 1 && !m.4));
    assert_eq!(
        f.c.end_txn("a", pid, e, true, false),
        Err(ResponseError::ProducerFenced)
    );
}

#[test]
fn a_failed_persist_changes_nothing() {
    let f = Fixture::new();
    let (pid, e) = f.c.init_producer_id("a", 60_000, -1, -1).unwrap();
    f.b().fail_persist.store(true, Ordering::SeqCst);
    assert_eq!(
        f.add("a", pid, e),
        Err(ResponseError::CoordinatorNotAvailable)
    );
    assert_eq!(f.meta("a").state, TxnState::Empty);
    assert!(f.meta("a").partitions.is_empty());
    f.b().fail_persist.store(false, Ordering::SeqCst);
    f.add("a", pid, e).unwrap();
}

#[test]
fn idle_transactional_ids_expire() {
    let f = Fixture::new();
    let (pid, e) = f.c.init_producer_id("idle", 60_000, -1, -1).unwrap();
    f.c.init_producer_id("busy", 60_000, -1, -1).unwrap();
    f.advance(6 * DAY);
    let (bp, be) = (f.meta("busy").producer_id, f.meta("busy").producer_epoch);
    f.c.add_partitions("busy", bp, be, &[("t".into(), 0)], false)
        .unwrap();
    f.advance(2 * DAY);
    f.c.expire();
    assert!(f.c.get("idle").is_none());
    assert!(!f.b().stored.lock().unwrap().contains_key("idle"));
    // An open transaction never expires this way (its timeout aborts it first).
    assert!(f.c.get("busy").is_some());
    assert_eq!(
        f.add("idle", pid, e),
        Err(ResponseError::InvalidProducerIdMapping)
    );
}
