//! Leader elections beyond fencing, as pure decisions of the active controller: the
//! preferred replica back in the lead (ElectLeaders PREFERRED, `auto.leader.rebalance.enable`)
//! and an unclean election of an out-of-sync replica for an offline partition (ElectLeaders
//! UNCLEAN, `unclean.leader.election.enable`).

use uuid::Uuid;

use super::image::{Image, PartitionState};
use super::records::*;

/// Why a partition's election was not made (Kafka's error codes in the comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionError {
    /// 3 UNKNOWN_TOPIC_OR_PARTITION.
    UnknownPartition,
    /// 84 ELECTION_NOT_NEEDED: the preferred replica leads already, or the partition has a
    /// leader (unclean).
    NotNeeded,
    /// 80 PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica is fenced or out of sync.
    PreferredNotAvailable,
    /// 83 ELIGIBLE_LEADERS_NOT_AVAILABLE: no live replica to elect.
    EligibleNotAvailable,
}

impl ElectionError {
    pub fn code(self) -> i16 {
        match self {
            ElectionError::UnknownPartition => 3,
            ElectionError::NotNeeded => 84,
            ElectionError::PreferredNotAvailable => 80,
            ElectionError::EligibleNotAvailable => 83,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ElectionError::UnknownPartition => "The partition does not exist.",
            ElectionError::NotNeeded => "Leader election not needed for topic partition.",
            ElectionError::PreferredNotAvailable => "The preferred leader was not available.",
            ElectionError::EligibleNotAvailable => {
                "Eligible topic partition leaders are not available."
            }
        }
    }
}

fn change(
    topic_id: Uuid,
    partition: i32,
    p: &PartitionState,
    isr: Option<Vec<i32>>,
    leader: i32,
) -> MetadataRecord {
    MetadataRecord::PartitionChange(PartitionChange {
        partition_id: partition,
        topic_id,
        isr,
        leader: Some(leader),
        replicas: None,
        expected_partition_epoch: Some(p.partition_epoch),
        adding_replicas: None,
        removing_replicas: None,
    })
}

/// The preferred replica (the first of the assignment) takes the lead, if it is live and in
/// the ISR and does not lead already.
pub fn elect_preferred(
    image: &Image,
    topic_id: Uuid,
    partition: i32,
) -> Result<MetadataRecord, ElectionError> {
    let p = image
        .partition(&topic_id, partition)
        .ok_or(ElectionError::UnknownPartition)?;
    let preferred = *p.replicas.first().ok_or(ElectionError::UnknownPartition)?;
    if p.leader == preferred {
        return Err(ElectionError::NotNeeded);
    }
    if !image.is_live(preferred) || !p.isr.contains(&preferred) {
        return Err(ElectionError::PreferredNotAvailable);
    }
    Ok(change(topic_id, partition, p, None, preferred))
}

/// An offline partition (no live ISR member) gets the first live replica as its leader and
/// sole ISR member: records only it had may be lost, which is what unclean means.
pub fn elect_unclean(
    image: &Image,
    topic_id: Uuid,
    partition: i32,
) -> Result<MetadataRecord, ElectionError> {
    let p = image
        .partition(&topic_id, partition)
        .ok_or(ElectionError::UnknownPartition)?;
    if p.leader != NO_LEADER {
        return Err(ElectionError::NotNeeded);
    }
    // A live ISR member (one that came back) is a clean choice.
    if let Some(b) = p
        .replicas
        .iter()
        .copied()
        .find(|b| p.isr.contains(b) && image.is_live(*b))
    {
        return Ok(change(topic_id, partition, p, None, b));
    }
    let b = p
        .replicas
        .iter()
        .copied()
        .find(|b| image.is_live(*b))
        .ok_or(ElectionError::EligibleNotAvailable)?;
    Ok(change(topic_id, partition, p, Some(vec![b]), b))
}

/// `auto.leader.rebalance.enable`, Kafka's way: for each broker whose share of the
/// partitions it is preferred for but does not lead is above `percentage`, every such
/// partition it can lead again.
pub fn rebalance(image: &Image, percentage: u64) -> Vec<MetadataRecord> {
    let mut preferred: std::collections::BTreeMap<i32, (u64, u64)> = Default::default();
    for (_, _, p) in image.partitions() {
        if let Some(&b) = p.replicas.first() {
            let e = preferred.entry(b).or_default();
            e.0 += 1;
            if p.leader != b {
                e.1 += 1;
            }
        }
    }
    let imbalanced: Vec<i32> = preferred
        .into_iter()
        .filter(|(_, (total, off))| *off * 100 > *total * percentage)
        .map(|(b, _)| b)
        .collect();
    image
        .partitions()
        .filter(|(_, _, p)| p.replicas.first().is_some_and(|b| imbalanced.contains(b)))
        .filter_map(|(t, id, _)| elect_preferred(image, t.id, id).ok())
        .collect()
}

/// `unclean.leader.election.enable`: the offline partitions of topics that allow it
/// (`unclean(topic)`) that a live replica can lead.
pub fn unclean_recoveries(image: &Image, unclean: impl Fn(&str) -> bool) -> Vec<MetadataRecord> {
    image
        .partitions()
        .filter(|(t, _, p)| p.leader == NO_LEADER && unclean(&t.name))
        .filter_map(|(t, id, _)| elect_unclean(image, t.id, id).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::{BrokerRegistration, TopicImage, apply_batch};
    use std::collections::BTreeMap;

    fn image(leader: i32, isr: Vec<i32>, fenced: &[i32]) -> (Image, Uuid) {
        let mut img = Image::default();
        for id in 1..=3 {
            img.brokers.insert(
                id,
                BrokerRegistration {
                    id,
                    incarnation_id: Uuid::from_u128(id as u128),
                    epoch: id as i64,
                    endpoints: vec![],
                    rack: None,
                    fenced: fenced.contains(&id),
                    in_controlled_shutdown: false,
                },
            );
        }
        let tid = Uuid::from_u128(9);
        let mut partitions = BTreeMap::new();
        partitions.insert(
            0,
            PartitionState {
                replicas: vec![1, 2, 3],
                isr,
                leader,
                leader_epoch: 4,
                partition_epoch: 7,
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
    fn the_preferred_replica_leads_again_when_it_can() {
        let (mut img, t) = image(2, vec![1, 2, 3], &[]);
        let r = elect_preferred(&img, t, 0).unwrap();
        apply_batch(&mut img, &[r]).unwrap();
        let p = img.partition(&t, 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 5, 8));
        assert_eq!(elect_preferred(&img, t, 0), Err(ElectionError::NotNeeded));
        assert!(rebalance(&img, 10).is_empty());
        let (img, t) = image(2, vec![2, 3], &[]);
        assert_eq!(
            elect_preferred(&img, t, 0),
            Err(ElectionError::PreferredNotAvailable)
        );
        let (img, t) = image(2, vec![1, 2, 3], &[1]);
        assert_eq!(
            elect_preferred(&img, t, 0),
            Err(ElectionError::PreferredNotAvailable)
        );
        assert_eq!(
            elect_preferred(&img, t, 5),
            Err(ElectionError::UnknownPartition)
        );
        let (img, _) = image(3, vec![1, 2, 3], &[]);
        assert_eq!(rebalance(&img, 10).len(), 1);
        // One of one partitions off its preferred leader is 100 %: not below any threshold.
        assert!(rebalance(&img, 100).is_empty());
    }

    #[test]
    fn an_unclean_election_takes_a_live_replica_out_of_sync() {
        // Offline: the last ISR member (1) is fenced; 3 is live but out of sync.
        let (mut img, t) = image(NO_LEADER, vec![1], &[1, 2]);
        assert!(unclean_recoveries(&img, |_| false).is_empty());
        let recs = unclean_recoveries(&img, |n| n == "t");
        assert_eq!(recs.len(), 1);
        apply_batch(&mut img, &recs).unwrap();
        let p = img.partition(&t, 0).unwrap();
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (3, vec![3], 5));
        assert_eq!(elect_unclean(&img, t, 0), Err(ElectionError::NotNeeded));
        let (img, t) = image(NO_LEADER, vec![1], &[1, 2, 3]);
        assert_eq!(
            elect_unclean(&img, t, 0),
            Err(ElectionError::EligibleNotAvailable)
        );
    }
}
