//! A leader and a follower log side by side: the follower's bytes, offsets, epochs and
//! producer state equal the leader's; truncation of a diverged suffix; the high watermark.

use std::sync::Arc;

use super::super::{AppendError, PartitionLog};
use super::{EpochEnd, UNDEFINED_EPOCH};
use crate::log::batch::tests::make_batch;

fn open(dir: &std::path::Path, db: &sled::Db, name: &str) -> PartitionLog {
    let tree = db.open_tree(name).unwrap();
    PartitionLog::open(tree, 0, dir.join(name), Arc::default()).unwrap()
}

/// Everything `log` holds, as a follower would fetch it.
fn all(log: &PartitionLog) -> bytes::Bytes {
    log.read_planned(log.plan_replica_read(0, 1 << 30).unwrap())
        .unwrap()
        .records
}

#[test]
fn a_follower_holds_the_leaders_bytes_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let leader = open(dir.path(), &db, "leader");
    let follower = open(dir.path(), &db, "follower");
    leader.become_leader(3, false).unwrap();
    follower.become_follower(3).unwrap();
    leader.append(&make_batch(3, 7, 0, 0), None).unwrap();
    leader.append(&make_batch(2, -1, -1, -1), None).unwrap();
    leader.append(&make_batch(4, 7, 0, 3), None).unwrap();
    // Not replicated yet: consumers see nothing, a replica read sees everything.
    assert_eq!(leader.high_watermark(), 0);
    assert_eq!(leader.log_end_offset(), 9);
    assert!(
        leader
            .read(0, 1 << 20, true, false)
            .unwrap()
            .records
            .is_empty()
    );
    let bytes = all(&leader);
    assert_eq!(follower.append_replica(&bytes, 3).unwrap(), 9);
    assert_eq!(all(&follower), bytes);
    // A repeated fetch appends nothing twice.
    assert_eq!(follower.append_replica(&bytes, 3).unwrap(), 9);
    assert_eq!(
        follower.end_offset_for_epoch(3),
        EpochEnd {
            epoch: 3,
            end_offset: 9
        }
    );
    // The follower's producer state came with the batches: the next sequence is 7.
    assert_eq!(follower.producers(), leader.producers());
    assert_eq!(leader.advance_high_watermark(9), 9);
    assert_eq!(leader.advance_high_watermark(5), 9, "never back");
    follower.set_follower_high_watermark(9, 3);
    assert_eq!(follower.high_watermark(), 9);
    assert_eq!(leader.read(0, 1 << 20, true, false).unwrap().records, bytes);
    // Reopened, the follower has the same log and epochs.
    drop(follower);
    let follower = open(dir.path(), &db, "follower");
    assert_eq!(all(&follower), bytes);
    assert_eq!(follower.latest_epoch(), Some(3));
}

#[test]
fn a_diverged_suffix_is_truncated_and_state_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let old = open(dir.path(), &db, "old");
    let new = open(dir.path(), &db, "new");
    // Epoch 1: both hold offsets 0..5.
    old.become_leader(1, false).unwrap();
    new.become_follower(1).unwrap();
    old.append(&make_batch(5, 7, 0, 0), None).unwrap();
    new.append_replica(&all(&old), 1).unwrap();
    // The old leader takes 5..8 (producer 7, sequences 5..7) and one more producer's
    // transaction that nobody else saw, then loses its leadership.
    old.append(&make_batch(3, 7, 0, 5), None).unwrap();
    old.append(&make_batch(2, 8, 0, 0), None).unwrap();
    assert_eq!(old.log_end_offset(), 10);
    // The new leader, epoch 2, writes its own 5..7.
    new.become_leader(2, true).unwrap();
    new.append(&make_batch(2, -1, -1, -1), None).unwrap();
    // The old leader asks where its epoch 1 ended on the new leader: at 5.
    let answer = new.end_offset_for_epoch(old.latest_epoch().unwrap());
    assert_eq!(
        answer,
        EpochEnd {
            epoch: 1,
            end_offset: 5
        }
    );
    let (to, settled) = old.truncation_offset(answer);
    assert_eq!((to, settled), (5, true));
    old.become_follower(2).unwrap();
    assert!(
        old.truncate_following(to, 1).is_err(),
        "not following in epoch 1"
    );
    old.truncate_following(to, 2).unwrap();
    assert_eq!(old.log_end_offset(), 5);
    // Producer 7's sequence is back to 5, producer 8 is forgotten.
    assert_eq!(old.producers().len(), 1);
    let from_new = new
        .read_planned(new.plan_replica_read(5, 1 << 20).unwrap())
        .unwrap()
        .records;
    assert!(
        matches!(
            old.append_replica(&from_new, 1),
            Err(AppendError::NotLeader)
        ),
        "a response of an older epoch's leader is refused"
    );
    old.append_replica(&from_new, 2).unwrap();
    assert_eq!(all(&old), all(&new));
    assert_eq!(
        old.end_offset_for_epoch(1),
        EpochEnd {
            epoch: 1,
            end_offset: 5
        }
    );
    assert_eq!(
        old.end_offset_for_epoch(2),
        EpochEnd {
            epoch: 2,
            end_offset: 7
        }
    );
    // As a leader again, producer 7 continues at sequence 5 (its 5..7 was lost with the
    // truncation and is retried).
    old.become_leader(3, true).unwrap();
    old.append(&make_batch(3, 7, 0, 5), None).unwrap();
    assert!(matches!(
        old.append(&make_batch(1, 7, 0, 9), None),
        Err(AppendError::OutOfOrderSequence {
            expected: 8,
            got: 9
        })
    ));
    // Reopened: the same log, epochs and state.
    let before = all(&old);
    drop(old);
    let old = open(dir.path(), &db, "old");
    assert_eq!(all(&old), before);
    assert_eq!(
        old.end_offset_for_epoch(2),
        EpochEnd {
            epoch: 2,
            end_offset: 7
        }
    );
    assert_eq!(old.latest_epoch(), Some(3));
    assert_eq!(
        old.end_offset_for_epoch(UNDEFINED_EPOCH),
        EpochEnd::UNDEFINED
    );
}

#[test]
fn a_single_node_log_keeps_its_high_watermark_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let log = open(dir.path(), &db, "solo");
    let mut hw = log.watch_high_watermark();
    log.append(&make_batch(2, -1, -1, -1), None).unwrap();
    assert_eq!(log.high_watermark(), 2);
    assert_eq!(*hw.borrow_and_update(), 2);
    assert_eq!(
        log.end_offset_for_epoch(0),
        EpochEnd {
            epoch: 0,
            end_offset: 2
        }
    );
}

/// What the fetcher does with OffsetForLeaderEpoch answers, until settled (bounded).
fn reconcile(follower: &PartitionLog, leader: &PartitionLog, epoch: i32) -> usize {
    for round in 1..=5 {
        let Some(latest) = follower.latest_epoch() else {
            return round;
        };
        let (to, settled) = follower.truncation_offset(leader.end_offset_for_epoch(latest));
        if to < follower.log_end_offset() || !settled {
            follower.truncate_following(to, epoch).unwrap();
        }
        if settled {
            return round;
        }
    }
    panic!("the follower never settled");
}

#[test]
fn a_follower_whose_epochs_started_at_its_log_end_settles() {
    // An internal topic's idle partition: both replicas empty, leadership moved back and
    // forth. The follower led epochs 0 and 2, the leader led 1 and leads 3. Asked about
    // epoch 2, the leader answers epoch 1 ending at 0, an epoch the follower never saw;
    // the follower's epochs starting at 0 must go, or it asks the same again forever.
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let leader = open(dir.path(), &db, "leader");
    let follower = open(dir.path(), &db, "follower");
    follower.become_leader(0, true).unwrap();
    leader.become_follower(0).unwrap();
    leader.become_leader(1, true).unwrap();
    follower.become_follower(1).unwrap();
    follower.become_leader(2, true).unwrap();
    leader.become_follower(2).unwrap();
    leader.become_leader(3, false).unwrap();
    follower.become_follower(3).unwrap();
    assert_eq!(follower.latest_epoch(), Some(2));
    assert!(reconcile(&follower, &leader, 3) <= 2);
    assert_eq!(follower.latest_epoch(), None);
    // The forgotten epochs stay forgotten across a restart.
    drop(follower);
    let follower = open(dir.path(), &db, "follower");
    assert_eq!(follower.latest_epoch(), None);
    follower.become_follower(3).unwrap();
    // Replication goes on from there.
    leader.append(&make_batch(2, -1, -1, -1), None).unwrap();
    follower.append_replica(&all(&leader), 3).unwrap();
    assert_eq!(all(&follower), all(&leader));
    assert_eq!(follower.latest_epoch(), Some(3));
}

#[test]
fn a_follower_with_batches_in_an_epoch_the_leader_lacks_settles() {
    // The follower wrote 0..3 in epoch 1 and leads epoch 4 with nothing in it; the leader
    // has 0..2 in epoch 1 and leads 5 (via 3, which the follower never saw).
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let leader = open(dir.path(), &db, "leader");
    let follower = open(dir.path(), &db, "follower");
    leader.become_leader(1, true).unwrap();
    leader.append(&make_batch(2, -1, -1, -1), None).unwrap();
    follower.become_follower(1).unwrap();
    follower.append_replica(&all(&leader), 1).unwrap();
    follower.become_leader(2, true).unwrap();
    follower.append(&make_batch(1, -1, -1, -1), None).unwrap();
    leader.become_follower(2).unwrap();
    leader.become_leader(3, true).unwrap();
    follower.become_leader(4, true).unwrap();
    leader.become_leader(5, false).unwrap();
    follower.become_follower(5).unwrap();
    reconcile(&follower, &leader, 5);
    assert_eq!(follower.log_end_offset(), 2, "epoch 2's batch is gone");
    assert_eq!(follower.latest_epoch(), Some(1));
    follower.append_replica(&all(&leader), 5).unwrap();
    assert_eq!(all(&follower), all(&leader));
}
