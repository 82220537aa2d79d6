//! The cluster metadata image: the metadata log applied in order. `apply` is a pure function
//! of (image, record); every node that applies the same committed records holds the same
//! image. It validates before it changes anything, so a refused record leaves the image as
//! it was.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::records::*;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: i32,
    pub incarnation_id: Uuid,
    pub epoch: i64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

/// One partition's replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    /// Bumped on every leadership change.
    pub leader_epoch: i32,
    /// Bumped on every change of this partition.
    pub partition_epoch: i32,
    /// An ongoing reassignment: replicas being added (catching up, not yet in the target's
    /// place) and being removed once they are (both within `replicas`).
    #[serde(default)]
    pub adding: Vec<i32>,
    #[serde(default)]
    pub removing: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub id: Uuid,
    pub name: String,
    pub partitions: BTreeMap<i32, PartitionState>,
    /// Dynamic topic configs (overrides).
    pub configs: BTreeMap<String, String>,
}

/// The whole metadata image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Log index of the last entry applied. Set by whoever applies the log (the Raft state
    /// machine), not by `apply`, so that `apply` depends on the record alone.
    pub offset: u64,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<Uuid, TopicImage>,
    /// Topic name to id.
    pub topic_ids: BTreeMap<String, Uuid>,
    /// Dynamic broker configs by resource name: "" is the cluster-wide default, otherwise a
    /// broker id.
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// The highest broker epoch ever assigned (new registrations go above it).
    pub last_broker_epoch: i64,
    /// Set once, by the first active controller.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// SCRAM credentials and ACLs.
    #[serde(default)]
    pub security: crate::security::store::SecurityData,
}

impl Image {
    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    pub fn partition(&self, topic_id: &Uuid, partition: i32) -> Option<&PartitionState> {
        self.topics.get(topic_id)?.partitions.get(&partition)
    }

    /// Registered and not fenced.
    pub fn is_live(&self, broker: i32) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// Ids of live brokers, ascending.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.id)
            .collect()
    }

    /// (topic id, partition) of every partition `broker` leads.
    pub fn led_by(&self, broker: i32) -> Vec<(Uuid, i32)> {
        self.partitions()
            .filter(|(_, _, p)| p.leader == broker)
            .map(|(t, i, _)| (t.id, i))
            .collect()
    }

    /// Every partition, by topic then partition id.
    pub fn partitions(&self) -> impl Iterator<Item = (&TopicImage, i32, &PartitionState)> {
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter().map(move |(i, p)| (t, *i, p)))
    }
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyError {
    UnknownBroker(i32),
    /// A registration not above the current epoch, or a fence/unfence of another epoch.
    StaleBrokerEpoch {
        broker: i32,
        current: i64,
        got: i64,
    },
    /// A broker cannot be fenced while it still leads a partition: the controller moves the
    /// leaderships first, in the same batch.
    BrokerStillLeads {
        broker: i32,
        topic: String,
        partition: i32,
    },
    TopicExists(String),
    TopicIdExists(Uuid),
    UnknownTopic(Uuid),
    UnknownTopicName(String),
    PartitionExists {
        topic: Uuid,
        partition: i32,
    },
    UnknownPartition {
        topic: Uuid,
        partition: i32,
    },
    InvalidPartition {
        topic: Uuid,
        partition: i32,
        reason: String,
    },
    Invalid(String),
    StaleProducerIds {
        current: i64,
        got: i64,
    },
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ApplyError::*;
        match self {
            UnknownBroker(b) => write!(f, "broker {b} is not registered"),
            StaleBrokerEpoch {
                broker,
                current,
                got,
            } => write!(
                f,
                "broker {broker}: epoch {got} is stale (current {current})"
            ),
            BrokerStillLeads {
                broker,
                topic,
                partition,
            } => write!(f, "broker {broker} still leads {topic}-{partition}"),
            TopicExists(n) => write!(f, "topic {n} already exists"),
            TopicIdExists(id) => write!(f, "topic id {id} already exists"),
            UnknownTopic(id) => write!(f, "no topic with id {id}"),
            UnknownTopicName(n) => write!(f, "no topic named {n}"),
            PartitionExists { topic, partition } => {
                write!(f, "partition {partition} of {topic} already exists")
            }
            UnknownPartition { topic, partition } => {
                write!(f, "no partition {partition} in {topic}")
            }
            InvalidPartition {
                topic,
                partition,
                reason,
            } => write!(f, "partition {partition} of {topic}: {reason}"),
            Invalid(why) => write!(f, "{why}"),
            StaleProducerIds { current, got } => write!(
                f,
                "producer id block ending at {got} is not above the current {current}"
            ),
        }
    }
}

impl std::error::Error for ApplyError {}

/// Applies a batch atomically: all of its records, or (on the first refusal) none.
pub fn apply_batch(image: &mut Image, records: &[MetadataRecord]) -> Result<(), ApplyError> {
    if let [one] = records {
        return apply(image, one);
    }
    let mut next = image.clone();
    for r in records {
        apply(&mut next, r)?;
    }
    *image = next;
    Ok(())
}

/// Applies one record. On error the image is unchanged.
pub fn apply(image: &mut Image, record: &MetadataRecord) -> Result<(), ApplyError> {
    match record {
        MetadataRecord::RegisterBroker(r) => register_broker(image, r),
        MetadataRecord::FenceBroker(r) => fence_broker(image, r),
        MetadataRecord::UnfenceBroker(r) => unfence_broker(image, r),
        MetadataRecord::Topic(r) => add_topic(image, r),
        MetadataRecord::RemoveTopic(r) => remove_topic(image, r),
        MetadataRecord::Partition(r) => add_partition(image, r),
        MetadataRecord::PartitionChange(r) => change_partition(image, r),
        MetadataRecord::Config(r) => set_config(image, r),
        MetadataRecord::ProducerIds(r) => producer_ids(image, r),
        MetadataRecord::ClusterId(r) => set_cluster_id(image, r),
        MetadataRecord::UserScramCredential(_)
        | MetadataRecord::RemoveUserScramCredential(_)
        | MetadataRecord::AccessControlEntry(_)
        | MetadataRecord::RemoveAccessControlEntry(_) => image
            .security
            .apply(record)
            .map(|_| ())
            .map_err(ApplyError::Invalid),
    }
}

fn set_cluster_id(image: &mut Image, r: &ClusterId) -> Result<(), ApplyError> {
    if r.cluster_id.is_empty() {
        return Err(ApplyError::Invalid("empty cluster id".into()));
    }
    match &image.cluster_id {
        Some(id) if *id != r.cluster_id => Err(ApplyError::Invalid(format!(
            "the cluster id is {id} already"
        ))),
        _ => {
            image.cluster_id = Some(r.cluster_id.clone());
            Ok(())
        }
    }
}

fn register_broker(image: &mut Image, r: &RegisterBroker) -> Result<(), ApplyError> {
    if r.broker_id < 0 {
        return Err(ApplyError::Invalid(format!("broker id {}", r.broker_id)));
    }
    if r.broker_epoch < 0 {
        return Err(ApplyError::Invalid(format!(
            "broker epoch {}",
            r.broker_epoch
        )));
    }
    // Broker epochs are unique in the cluster: a registration decided on a stale image
    // (below the newest epoch given) is refused, and the broker registers again.
    if r.broker_epoch <= image.last_broker_epoch {
        return Err(ApplyError::StaleBrokerEpoch {
            broker: r.broker_id,
            current: image.last_broker_epoch,
            got: r.broker_epoch,
        });
    }
    if let Some(old) = image.brokers.get(&r.broker_id) {
        if r.broker_epoch <= old.epoch {
            return Err(ApplyError::StaleBrokerEpoch {
                broker: r.broker_id,
                current: old.epoch,
                got: r.broker_epoch,
            });
        }
        if r.fenced {
            check_leads_nothing(image, r.broker_id)?;
        }
    }
    image.brokers.insert(
        r.broker_id,
        BrokerRegistration {
            id: r.broker_id,
            incarnation_id: r.incarnation_id,
            epoch: r.broker_epoch,
            endpoints: r.endpoints.clone(),
            rack: r.rack.clone(),
            fenced: r.fenced,
            in_controlled_shutdown: r.in_controlled_shutdown,
        },
    );
    image.last_broker_epoch = image.last_broker_epoch.max(r.broker_epoch);
    Ok(())
}

fn check_broker_epoch(image: &Image, id: i32, epoch: i64) -> Result<(), ApplyError> {
    let b = image
        .brokers
        .get(&id)
        .ok_or(ApplyError::UnknownBroker(id))?;
    if b.epoch != epoch {
        return Err(ApplyError::StaleBrokerEpoch {
            broker: id,
            current: b.epoch,
            got: epoch,
        });
    }
    Ok(())
}

fn check_leads_nothing(image: &Image, broker: i32) -> Result<(), ApplyError> {
    match image.partitions().find(|(_, _, p)| p.leader == broker) {
        Some((t, partition, _)) => Err(ApplyError::BrokerStillLeads {
            broker,
            topic: t.name.clone(),
            partition,
        }),
        None => Ok(()),
    }
}

fn fence_broker(image: &mut Image, r: &FenceBroker) -> Result<(), ApplyError> {
    check_broker_epoch(image, r.id, r.epoch)?;
    check_leads_nothing(image, r.id)?;
    image.brokers.get_mut(&r.id).expect("checked").fenced = true;
    Ok(())
}

fn unfence_broker(image: &mut Image, r: &UnfenceBroker) -> Result<(), ApplyError> {
    check_broker_epoch(image, r.id, r.epoch)?;
    let b = image.brokers.get_mut(&r.id).expect("checked");
    b.fenced = false;
    b.in_controlled_shutdown = false;
    Ok(())
}

fn add_topic(image: &mut Image, r: &TopicRecord) -> Result<(), ApplyError> {
    if r.name.is_empty() || r.name.len() > 249 {
        return Err(ApplyError::Invalid(format!("topic name {:?}", r.name)));
    }
    if r.topic_id.is_nil() {
        return Err(ApplyError::Invalid(format!(
            "topic {} has the nil id",
            r.name
        )));
    }
    if image.topic_ids.contains_key(&r.name) {
        return Err(ApplyError::TopicExists(r.name.clone()));
    }
    if image.topics.contains_key(&r.topic_id) {
        return Err(ApplyError::TopicIdExists(r.topic_id));
    }
    image.topic_ids.insert(r.name.clone(), r.topic_id);
    image.topics.insert(
        r.topic_id,
        TopicImage {
            id: r.topic_id,
            name: r.name.clone(),
            partitions: BTreeMap::new(),
            configs: BTreeMap::new(),
        },
    );
    Ok(())
}

fn remove_topic(image: &mut Image, r: &RemoveTopic) -> Result<(), ApplyError> {
    let topic = image
        .topics
        .remove(&r.topic_id)
        .ok_or(ApplyError::UnknownTopic(r.topic_id))?;
    image.topic_ids.remove(&topic.name);
    Ok(())
}

/// Checks a partition's replicas, ISR and leader against each other and the brokers.
fn check_partition_state(
    image: &Image,
    topic: Uuid,
    partition: i32,
    p: &PartitionState,
) -> Result<(), ApplyError> {
    let bad = |reason: String| ApplyError::InvalidPartition {
        topic,
        partition,
        reason,
    };
    if p.replicas.is_empty() {
        return Err(bad("no replicas".into()));
    }
    let replicas: BTreeSet<i32> = p.replicas.iter().copied().collect();
    if replicas.len() != p.replicas.len() {
        return Err(bad(format!("duplicate replicas {:?}", p.replicas)));
    }
    if let Some(b) = p.replicas.iter().find(|b| !image.brokers.contains_key(b)) {
        return Err(bad(format!("replica {b} is not a registered broker")));
    }
    if p.isr.is_empty() {
        return Err(bad("empty ISR".into()));
    }
    let isr: BTreeSet<i32> = p.isr.iter().copied().collect();
    if isr.len() != p.isr.len() {
        return Err(bad(format!("duplicate ISR members {:?}", p.isr)));
    }
    if !isr.is_subset(&replicas) {
        return Err(bad(format!(
            "ISR {:?} is not within replicas {:?}",
            p.isr, p.replicas
        )));
    }
    if p.leader != NO_LEADER {
        if !isr.contains(&p.leader) {
            return Err(bad(format!(
                "leader {} is not in ISR {:?}",
                p.leader, p.isr
            )));
        }
        if !image.is_live(p.leader) {
            return Err(bad(format!("leader {} is fenced", p.leader)));
        }
    }
    if p.adding
        .iter()
        .chain(&p.removing)
        .any(|b| !replicas.contains(b))
        || p.adding.iter().any(|b| p.removing.contains(b))
    {
        return Err(bad(format!(
            "adding {:?} and removing {:?} must be distinct replicas of {:?}",
            p.adding, p.removing, p.replicas
        )));
    }
    if p.leader_epoch < 0 || p.partition_epoch < 0 {
        return Err(bad("negative epoch".into()));
    }
    Ok(())
}

fn add_partition(image: &mut Image, r: &PartitionRecord) -> Result<(), ApplyError> {
    let topic = image
        .topics
        .get(&r.topic_id)
        .ok_or(ApplyError::UnknownTopic(r.topic_id))?;
    if r.partition_id < 0 {
        return Err(ApplyError::Invalid(format!(
            "partition id {}",
            r.partition_id
        )));
    }
    if topic.partitions.contains_key(&r.partition_id) {
        return Err(ApplyError::PartitionExists {
            topic: r.topic_id,
            partition: r.partition_id,
        });
    }
    let state = PartitionState {
        replicas: r.replicas.clone(),
        isr: r.isr.clone(),
        leader: r.leader,
        leader_epoch: r.leader_epoch,
        partition_epoch: r.partition_epoch,
        adding: Vec::new(),
        removing: Vec::new(),
    };
    check_partition_state(image, r.topic_id, r.partition_id, &state)?;
    image
        .topics
        .get_mut(&r.topic_id)
        .expect("checked")
        .partitions
        .insert(r.partition_id, state);
    Ok(())
}

fn change_partition(image: &mut Image, r: &PartitionChange) -> Result<(), ApplyError> {
    let old = image
        .partition(&r.topic_id, r.partition_id)
        .ok_or(ApplyError::UnknownPartition {
            topic: r.topic_id,
            partition: r.partition_id,
        })?;
    if let Some(e) = r.expected_partition_epoch
        && e != old.partition_epoch
    {
        return Err(ApplyError::InvalidPartition {
            topic: r.topic_id,
            partition: r.partition_id,
            reason: format!(
                "stale partition epoch {e} (current {})",
                old.partition_epoch
            ),
        });
    }
    // A fenced broker never joins an ISR (Kafka's controller refuses it too).
    if let Some(isr) = &r.isr
        && let Some(b) = isr
            .iter()
            .find(|b| !old.isr.contains(b) && !image.is_live(**b))
    {
        return Err(ApplyError::InvalidPartition {
            topic: r.topic_id,
            partition: r.partition_id,
            reason: format!("broker {b} is fenced and cannot join the ISR"),
        });
    }
    let mut new = old.clone();
    if let Some(replicas) = &r.replicas {
        new.replicas = replicas.clone();
    }
    if let Some(isr) = &r.isr {
        new.isr = isr.clone();
    }
    if let Some(leader) = r.leader {
        new.leader = leader;
    }
    if let Some(a) = &r.adding_replicas {
        new.adding = a.clone();
    }
    if let Some(x) = &r.removing_replicas {
        new.removing = x.clone();
    }
    // Kafka's rule: any change bumps the partition epoch, a new leader (or none) also the
    // leader epoch.
    new.partition_epoch += 1;
    if new.leader != old.leader {
        new.leader_epoch += 1;
    }
    check_partition_state(image, r.topic_id, r.partition_id, &new)?;
    image
        .topics
        .get_mut(&r.topic_id)
        .expect("checked")
        .partitions
        .insert(r.partition_id, new);
    Ok(())
}

fn set_config(image: &mut Image, r: &ConfigRecord) -> Result<(), ApplyError> {
    if r.name.is_empty() {
        return Err(ApplyError::Invalid("empty config name".into()));
    }
    let configs = match r.resource_type {
        ConfigResource::Topic => {
            let id = *image
                .topic_ids
                .get(&r.resource_name)
                .ok_or_else(|| ApplyError::UnknownTopicName(r.resource_name.clone()))?;
            &mut image.topics.get_mut(&id).expect("indexed").configs
        }
        ConfigResource::Broker => {
            if !r.resource_name.is_empty() && r.resource_name.parse::<u32>().is_err() {
                return Err(ApplyError::Invalid(format!(
                    "broker config resource {:?} is not a broker id",
                    r.resource_name
                )));
            }
            image
                .broker_configs
                .entry(r.resource_name.clone())
                .or_default()
        }
        ConfigResource::Group => {
            if r.resource_name.is_empty() {
                return Err(ApplyError::Invalid("empty group id".into()));
            }
            image
                .group_configs
                .entry(r.resource_name.clone())
                .or_default()
        }
    };
    match &r.value {
        Some(v) => {
            configs.insert(r.name.clone(), v.clone());
        }
        None => {
            configs.remove(&r.name);
        }
    }
    // Drop empty resources so that set-then-delete leaves the image as it was.
    if r.value.is_none() {
        match r.resource_type {
            ConfigResource::Broker => {
                image.broker_configs.retain(|_, c| !c.is_empty());
            }
            ConfigResource::Group => {
                image.group_configs.retain(|_, c| !c.is_empty());
            }
            ConfigResource::Topic => {}
        }
    }
    Ok(())
}

fn producer_ids(image: &mut Image, r: &ProducerIds) -> Result<(), ApplyError> {
    check_broker_epoch(image, r.broker_id, r.broker_epoch)?;
    let first = r.first_producer_id.unwrap_or(image.next_producer_id);
    // A block overlapping an earlier one, or empty, would hand an id out twice.
    if first < image.next_producer_id || r.next_producer_id <= first {
        return Err(ApplyError::StaleProducerIds {
            current: image.next_producer_id,
            got: r.next_producer_id,
        });
    }
    image.next_producer_id = r.next_producer_id;
    Ok(())
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
