//! The active controller's decisions as pure functions: from the current image and a request
//! to the batch of records that carries the decision. The batch is proposed to the quorum and
//! applied atomically by every node (`image::apply_batch`).

use uuid::Uuid;

use super::image::Image;
use super::placement::{self, PlacementError};
use super::records::*;

/// The records of a broker registration and the epoch it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub broker_epoch: i64,
    /// Empty when the request is a retry of the current registration.
    pub records: Vec<MetadataRecord>,
}

/// A broker registers (at start, or again after the controller lost it). A retry from the
/// same incarnation keeps its epoch and writes nothing; a new incarnation gets an epoch above
/// every epoch given so far, starts fenced, and loses the leaderships and ISR places its
/// previous incarnation held.
pub fn register_broker(
    image: &Image,
    broker_id: i32,
    incarnation_id: Uuid,
    endpoints: Vec<Endpoint>,
    rack: Option<String>,
) -> Registration {
    if let Some(b) = image.brokers.get(&broker_id)
        && b.incarnation_id == incarnation_id
    {
        return Registration {
            broker_epoch: b.epoch,
            records: Vec::new(),
        };
    }
    let broker_epoch = image.last_broker_epoch + 1;
    let mut records = if image.brokers.contains_key(&broker_id) {
        leave_partitions(image, broker_id)
    } else {
        Vec::new()
    };
    records.push(MetadataRecord::RegisterBroker(RegisterBroker {
        broker_id,
        incarnation_id,
        broker_epoch,
        endpoints,
        rack,
        fenced: true,
        in_controlled_shutdown: false,
    }));
    Registration {
        broker_epoch,
        records,
    }
}

/// The partition changes that take `broker` out of every leadership and ISR (see
/// `placement::on_fence`).
fn leave_partitions(image: &Image, broker: i32) -> Vec<MetadataRecord> {
    image
        .partitions()
        .filter_map(|(t, id, p)| {
            let (isr, leader) = placement::on_fence(p, broker, |b| image.is_live(b))?;
            Some(MetadataRecord::PartitionChange(PartitionChange {
                partition_id: id,
                topic_id: t.id,
                isr: (isr != p.isr).then_some(isr),
                leader: (leader != p.leader).then_some(leader),
                replicas: None,
                expected_partition_epoch: None,
                adding_replicas: None,
                removing_replicas: None,
            }))
        })
        .collect()
}

/// Fences `broker` (missed heartbeats, controlled shutdown, closed session): its leaderships
/// move to the first live ISR member, or the partition goes offline, and it leaves the ISRs.
/// None if the broker is unknown or already fenced.
pub fn fence_broker(image: &Image, broker: i32) -> Option<Vec<MetadataRecord>> {
    let b = image.brokers.get(&broker)?;
    if b.fenced {
        return None;
    }
    let mut records = leave_partitions(image, broker);
    records.push(MetadataRecord::FenceBroker(FenceBroker {
        id: broker,
        epoch: b.epoch,
    }));
    Some(records)
}

/// Unfences `broker` (its heartbeat shows it caught up) and gives it the leadership of the
/// offline partitions whose ISR it is in. None if unknown or not fenced.
pub fn unfence_broker(image: &Image, broker: i32) -> Option<Vec<MetadataRecord>> {
    let b = image.brokers.get(&broker)?;
    if !b.fenced {
        return None;
    }
    let mut records = vec![MetadataRecord::UnfenceBroker(UnfenceBroker {
        id: broker,
        epoch: b.epoch,
    })];
    for (t, id, p) in image.partitions() {
        if p.leader != NO_LEADER || !p.isr.contains(&broker) {
            continue;
        }
        let leader =
            placement::elect_leader(&p.replicas, &p.isr, |x| x == broker || image.is_live(x));
        records.push(MetadataRecord::PartitionChange(PartitionChange {
            partition_id: id,
            topic_id: t.id,
            isr: None,
            leader: Some(leader),
            replicas: None,
            expected_partition_epoch: None,
            adding_replicas: None,
            removing_replicas: None,
        }));
    }
    Some(records)
}

/// The new partition records for replica lists: the ISR is the live replicas, the leader
/// the first of them.
fn new_partitions(
    image: &Image,
    topic_id: Uuid,
    first_id: i32,
    assignment: Vec<Vec<i32>>,
) -> Vec<MetadataRecord> {
    assignment
        .into_iter()
        .enumerate()
        .map(|(i, replicas)| {
            let isr: Vec<i32> = replicas
                .iter()
                .copied()
                .filter(|b| image.is_live(*b))
                .collect();
            let leader = placement::elect_leader(&replicas, &isr, |b| image.is_live(b));
            MetadataRecord::Partition(PartitionRecord {
                partition_id: first_id + i as i32,
                topic_id,
                replicas,
                isr,
                leader,
                leader_epoch: 0,
                partition_epoch: 0,
            })
        })
        .collect()
}

/// Where new replicas are placed: either the explicit assignment, validated, or round robin
/// from a start that advances with every partition in the cluster.
fn assignment_for(
    image: &Image,
    partitions: i32,
    replication_factor: i32,
    explicit: Option<Vec<Vec<i32>>>,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    match explicit {
        Some(a) => {
            placement::validate_assignment(image, &a)?;
            Ok(a)
        }
        None => {
            let start = image.partitions().count();
            placement::place(&image.live_brokers(), partitions, replication_factor, start)
        }
    }
}

/// CreateTopics: the topic, its configs and its partitions. The caller checks the name
/// (legal, not taken) and the configs; `assignment`, when given, sets the partitions.
pub fn create_topic(
    image: &Image,
    name: &str,
    topic_id: Uuid,
    partitions: i32,
    replication_factor: i32,
    assignment: Option<Vec<Vec<i32>>>,
    configs: &[(String, String)],
) -> Result<Vec<MetadataRecord>, PlacementError> {
    let assignment = assignment_for(image, partitions, replication_factor, assignment)?;
    let mut records = vec![MetadataRecord::Topic(TopicRecord {
        name: name.to_string(),
        topic_id,
    })];
    records.extend(configs.iter().map(|(k, v)| {
        MetadataRecord::Config(ConfigRecord {
            resource_type: ConfigResource::Topic,
            resource_name: name.to_string(),
            name: k.clone(),
            value: Some(v.clone()),
        })
    }));
    records.extend(new_partitions(image, topic_id, 0, assignment));
    Ok(records)
}

/// CreatePartitions: grows `topic_id` to `total` partitions, with the replication factor of
/// its first partition unless an assignment for the new ones is given.
pub fn create_partitions(
    image: &Image,
    topic_id: Uuid,
    total: i32,
    assignment: Option<Vec<Vec<i32>>>,
) -> Result<Vec<MetadataRecord>, PlacementError> {
    let Some(topic) = image.topics.get(&topic_id) else {
        return Err(PlacementError::InvalidPartitions(total));
    };
    let existing = topic.partitions.len() as i32;
    if total <= existing {
        return Err(PlacementError::InvalidPartitions(total));
    }
    let rf = topic
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.replicas.len() as i32);
    if let Some(a) = &assignment
        && a.len() as i32 != total - existing
    {
        return Err(PlacementError::InvalidReplicaAssignment(format!(
            "Increasing the number of partitions by {} but {} assignments provided.",
            total - existing,
            a.len()
        )));
    }
    let assignment = assignment_for(image, total - existing, rf, assignment)?;
    Ok(new_partitions(image, topic_id, existing, assignment))
}

/// DeleteTopics: None if there is no such topic.
pub fn delete_topic(image: &Image, name: &str) -> Option<Vec<MetadataRecord>> {
    let topic_id = *image.topic_ids.get(name)?;
    Some(vec![MetadataRecord::RemoveTopic(RemoveTopic { topic_id })])
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
