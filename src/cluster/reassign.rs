//! Partition reassignment (AlterPartitionReassignments, `kafka-reassign-partitions`) as pure
//! decisions of the active controller, Kafka's way: the partition's replicas become the
//! target plus the replicas being removed; the ones being added follow the leader and
//! catch up; once every added replica is in the ISR the reassignment completes (replicas =
//! target, the removed ones leave the ISR and, if it was one of them, the leadership moves).
//! A replica that is no longer one deletes its copy (`replication::Replication::on_image`).

use std::collections::BTreeSet;

use uuid::Uuid;

use super::image::{Image, PartitionState};
use super::placement::elect_leader;
use super::records::*;

/// Why a reassignment was refused (Kafka's error codes in the comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassignError {
    /// 3 UNKNOWN_TOPIC_OR_PARTITION.
    UnknownPartition,
    /// 39 INVALID_REPLICA_ASSIGNMENT.
    Invalid(String),
    /// 85 NO_REASSIGNMENT_IN_PROGRESS: a cancel with nothing to cancel.
    NoneInProgress,
}

impl ReassignError {
    pub fn code(&self) -> i16 {
        match self {
            ReassignError::UnknownPartition => 3,
            ReassignError::Invalid(_) => 39,
            ReassignError::NoneInProgress => 85,
        }
    }

    pub fn message(&self) -> String {
        match self {
            ReassignError::UnknownPartition => "The partition does not exist.".into(),
            ReassignError::Invalid(m) => m.clone(),
            ReassignError::NoneInProgress => "No reassignment in progress.".into(),
        }
    }
}

fn change(topic_id: Uuid, partition: i32, p: &PartitionState) -> PartitionChange {
    PartitionChange {
        partition_id: partition,
        topic_id,
        isr: None,
        leader: None,
        replicas: None,
        expected_partition_epoch: Some(p.partition_epoch),
        adding_replicas: None,
        removing_replicas: None,
    }
}

/// The replicas before the ongoing reassignment, if any, began.
fn original(p: &PartitionState) -> Vec<i32> {
    p.replicas
        .iter()
        .copied()
        .filter(|b| !p.adding.contains(b))
        .collect()
}

/// Starts (or replaces) a reassignment of one partition to `target`, or cancels the ongoing
/// one (`target` None). `allow_rf_change` false refuses a target of another size (v1).
pub fn reassign(
    image: &Image,
    topic_id: Uuid,
    partition: i32,
    target: Option<Vec<i32>>,
    allow_rf_change: bool,
) -> Result<MetadataRecord, ReassignError> {
    let p = image
        .partition(&topic_id, partition)
        .ok_or(ReassignError::UnknownPartition)?;
    let orig = original(p);
    let mut c = change(topic_id, partition, p);
    let Some(target) = target else {
        if p.adding.is_empty() && p.removing.is_empty() {
            return Err(ReassignError::NoneInProgress);
        }
        // Back to the original replicas; the ISR keeps only those.
        let isr: Vec<i32> = p.isr.iter().copied().filter(|b| orig.contains(b)).collect();
        if isr.is_empty() {
            return Err(ReassignError::Invalid(
                "no replica of the original assignment is in sync".into(),
            ));
        }
        let leader = if orig.contains(&p.leader) {
            p.leader
        } else {
            elect_leader(&orig, &isr, |b| image.is_live(b))
        };
        c.replicas = Some(orig);
        c.isr = Some(isr);
        c.leader = (leader != p.leader).then_some(leader);
        c.adding_replicas = Some(vec![]);
        c.removing_replicas = Some(vec![]);
        return Ok(MetadataRecord::PartitionChange(c));
    };
    if target.is_empty() {
        return Err(ReassignError::Invalid("The replica list is empty.".into()));
    }
    if target.iter().collect::<BTreeSet<_>>().len() != target.len() {
        return Err(ReassignError::Invalid(format!(
            "The proposed assignment contains duplicate replicas: {target:?}."
        )));
    }
    if let Some(b) = target.iter().find(|b| !image.brokers.contains_key(b)) {
        return Err(ReassignError::Invalid(format!(
            "The proposed assignment contains an unknown broker {b}."
        )));
    }
    if !allow_rf_change && target.len() != orig.len() {
        return Err(ReassignError::Invalid(format!(
            "The replication factor is changed from {} to {}, and that is not allowed.",
            orig.len(),
            target.len()
        )));
    }
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|b| !orig.contains(b))
        .collect();
    let removing: Vec<i32> = orig
        .iter()
        .copied()
        .filter(|b| !target.contains(b))
        .collect();
    let mut replicas = target.clone();
    replicas.extend(removing.iter().copied());
    // Replicas added by an earlier, replaced reassignment and not in this target leave the
    // ISR (they were never part of the original assignment).
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|b| replicas.contains(b))
        .collect();
    c.replicas = Some(replicas);
    if isr != p.isr {
        c.isr = Some(isr);
    }
    c.adding_replicas = Some(adding);
    c.removing_replicas = Some(removing);
    Ok(MetadataRecord::PartitionChange(c))
}

/// The reassignments that can complete now: every added replica is in the ISR (and the
/// ISR keeps a member outside the removed ones that can lead).
pub fn completions(image: &Image) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for (t, id, p) in image.partitions() {
        if p.adding.is_empty() && p.removing.is_empty() {
            continue;
        }
        if !p.adding.iter().all(|b| p.isr.contains(b)) {
            continue;
        }
        let target: Vec<i32> = p
            .replicas
            .iter()
            .copied()
            .filter(|b| !p.removing.contains(b))
            .collect();
        let isr: Vec<i32> = p
            .isr
            .iter()
            .copied()
            .filter(|b| target.contains(b))
            .collect();
        let leader = if target.contains(&p.leader) {
            p.leader
        } else {
            elect_leader(&target, &isr, |b| image.is_live(b))
        };
        if isr.is_empty() || leader == NO_LEADER {
            continue;
        }
        let mut c = change(t.id, id, p);
        c.replicas = Some(target);
        c.isr = (isr != p.isr).then_some(isr);
        c.leader = (leader != p.leader).then_some(leader);
        c.adding_replicas = Some(vec![]);
        c.removing_replicas = Some(vec![]);
        out.push(MetadataRecord::PartitionChange(c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::{BrokerRegistration, TopicImage, apply_batch};
    use std::collections::BTreeMap;

    fn image() -> (Image, Uuid) {
        let mut img = Image::default();
        for id in 1..=4 {
            img.brokers.insert(
                id,
                BrokerRegistration {
                    id,
                    incarnation_id: Uuid::from_u128(id as u128),
                    epoch: id as i64,
                    endpoints: vec![],
                    rack: None,
                    fenced: false,
                    in_controlled_shutdown: false,
                },
            );
        }
        let tid = Uuid::from_u128(5);
        let mut partitions = BTreeMap::new();
        partitions.insert(
            0,
            PartitionState {
                replicas: vec![1, 2],
                isr: vec![1, 2],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                adding: vec![],
                removing: vec![],
            },
        );
        img.topics.insert(
            tid,
            TopicImage {
                id: tid,
                name: "t".into(),
                partitions,
                configs: BTreeMap::new(),
            },
        );
        img.topic_ids.insert("t".into(), tid);
        (img, tid)
    }

    #[test]
    fn a_reassignment_adds_catches_up_and_completes() {
        let (mut img, t) = image();
        // [1, 2] -> [3, 2]: 3 is added, 1 removed; 1 leads until it completes.
        let r = reassign(&img, t, 0, Some(vec![3, 2]), false).unwrap();
        apply_batch(&mut img, &[r]).unwrap();
        let p = img.partition(&t, 0).unwrap().clone();
        assert_eq!(
            (p.replicas.clone(), p.adding.clone(), p.removing.clone()),
            (vec![3, 2, 1], vec![3], vec![1])
        );
        assert!(completions(&img).is_empty(), "3 is not in sync yet");
        // 3 caught up: the leader adds it to the ISR.
        let isr = MetadataRecord::PartitionChange(PartitionChange {
            isr: Some(vec![1, 2, 3]),
            ..change(t, 0, &p)
        });
        apply_batch(&mut img, &[isr]).unwrap();
        let done = completions(&img);
        assert_eq!(done.len(), 1);
        apply_batch(&mut img, &done).unwrap();
        let p = img.partition(&t, 0).unwrap();
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![3, 2], vec![2, 3])
        );
        assert!(p.adding.is_empty() && p.removing.is_empty());
        assert_eq!(p.leader, 3, "the first in sync of the target leads");
        assert_eq!(
            reassign(&img, t, 0, None, false),
            Err(ReassignError::NoneInProgress)
        );
    }

    #[test]
    fn refusals_and_cancel() {
        let (mut img, t) = image();
        assert!(matches!(
            reassign(&img, t, 0, Some(vec![3, 3]), false),
            Err(ReassignError::Invalid(_))
        ));
        assert!(matches!(
            reassign(&img, t, 0, Some(vec![9, 2]), false),
            Err(ReassignError::Invalid(_))
        ));
        assert!(matches!(
            reassign(&img, t, 0, Some(vec![1, 2, 3]), false),
            Err(ReassignError::Invalid(_))
        ));
        assert_eq!(
            reassign(&img, t, 7, Some(vec![1]), false),
            Err(ReassignError::UnknownPartition)
        );
        let r = reassign(&img, t, 0, Some(vec![1, 2, 3]), true).unwrap();
        apply_batch(&mut img, &[r]).unwrap();
        let r = reassign(&img, t, 0, None, false).unwrap();
        apply_batch(&mut img, &[r]).unwrap();
        let p = img.partition(&t, 0).unwrap();
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader),
            (vec![1, 2], vec![1, 2], 1)
        );
        assert!(p.adding.is_empty());
    }
}
