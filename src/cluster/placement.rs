//! Replica placement and leader election: pure functions the active controller uses to
//! decide, before it writes the decision to the metadata log as records.

use std::fmt;

use super::image::{Image, PartitionState};
use super::records::NO_LEADER;

/// Why a placement was refused, with the Kafka error it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementError {
    /// More replicas asked for than live (unfenced) brokers: INVALID_REPLICATION_FACTOR.
    InvalidReplicationFactor { requested: i32, live: usize },
    /// A partition count below 1: INVALID_PARTITIONS.
    InvalidPartitions(i32),
    /// An explicit assignment that cannot be honoured: INVALID_REPLICA_ASSIGNMENT.
    InvalidReplicaAssignment(String),
}

impl PlacementError {
    /// The Kafka error code of this refusal.
    pub fn error_code(&self) -> i16 {
        match self {
            PlacementError::InvalidPartitions(_) => 37,
            PlacementError::InvalidReplicationFactor { .. } => 38,
            PlacementError::InvalidReplicaAssignment(_) => 39,
        }
    }
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementError::InvalidReplicationFactor { requested, live } => write!(
                f,
                "Unable to replicate the partition {requested} time(s): The target replication \
                 factor of {requested} cannot be reached because only {live} broker(s) are \
                 registered."
            ),
            PlacementError::InvalidPartitions(n) => {
                write!(
                    f,
                    "Number of partitions was set to an invalid non-positive value ({n})."
                )
            }
            PlacementError::InvalidReplicaAssignment(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for PlacementError {}

/// Places `partitions` partitions of `replication_factor` replicas each on `live` brokers.
///
/// Round robin with a rotating start, the scheme of Kafka's rack-unaware placement: partition
/// `k` (counted from `start`, which the controller advances across topics, for example by
/// the number of partitions that exist) is led by broker `k mod n`; its followers follow at
/// a distance that shifts by one every `n` partitions, so that followers spread as evenly
/// as leaders do. Deterministic, so the same inputs give the same answer on every node.
pub fn place(
    live: &[i32],
    partitions: i32,
    replication_factor: i32,
    start: usize,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if partitions < 1 {
        return Err(PlacementError::InvalidPartitions(partitions));
    }
    let mut brokers = live.to_vec();
    brokers.sort_unstable();
    brokers.dedup();
    let n = brokers.len();
    if replication_factor < 1 || replication_factor as usize > n {
        return Err(PlacementError::InvalidReplicationFactor {
            requested: replication_factor,
            live: n,
        });
    }
    let rf = replication_factor as usize;
    let mut out = Vec::with_capacity(partitions as usize);
    for p in 0..partitions as usize {
        let k = start + p;
        let first = k % n;
        let shift = k / n;
        let mut replicas = Vec::with_capacity(rf);
        replicas.push(brokers[first]);
        for j in 0..rf - 1 {
            // n >= 2 here, since rf >= 2.
            let offset = 1 + (shift + j) % (n - 1);
            replicas.push(brokers[(first + offset) % n]);
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Checks an explicit assignment (CreateTopics or CreatePartitions with assignments) against
/// the registered brokers, as Kafka's controller does: every partition has the same number of
/// distinct replicas, all registered, at least one of them live.
pub fn validate_assignment(image: &Image, assignment: &[Vec<i32>]) -> Result<(), PlacementError> {
    let bad = |s: String| Err(PlacementError::InvalidReplicaAssignment(s));
    let Some(first) = assignment.first() else {
        return bad("The manual partition assignment is empty.".into());
    };
    for (p, replicas) in assignment.iter().enumerate() {
        if replicas.is_empty() {
            return bad(format!(
                "The manual partition assignment includes an empty replica list for partition {p}."
            ));
        }
        if replicas.len() != first.len() {
            return bad(format!(
                "The manual partition assignment includes a partition with {} replica(s), but \
                 this is not consistent with previous partitions, which have {} replica(s).",
                replicas.len(),
                first.len()
            ));
        }
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != replicas.len() {
            return bad(format!(
                "The manual partition assignment includes the broker {:?} more than once.",
                replicas
            ));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return bad(format!(
                "The manual partition assignment includes broker {b}, but no such broker is \
                 registered."
            ));
        }
        if !replicas.iter().any(|b| image.is_live(*b)) {
            return bad(format!(
                "All brokers specified in the manual partition assignment for partition {p} \
                 are fenced or in controlled shutdown."
            ));
        }
    }
    Ok(())
}

/// The leader of a partition whose ISR is `isr`: the first replica, in preferred order, that
/// is in the ISR and live; `NO_LEADER` if there is none (the partition is offline).
pub fn elect_leader(replicas: &[i32], isr: &[i32], is_live: impl Fn(i32) -> bool) -> i32 {
    replicas
        .iter()
        .copied()
        .find(|b| isr.contains(b) && is_live(*b))
        .unwrap_or(NO_LEADER)
}

/// The new (ISR, leader) of partition `p` once `broker` is fenced, or None if `p` does not
/// change. The broker leaves the ISR unless it is the last member: Kafka keeps the last one,
/// so that the partition comes back with it rather than with a replica that may lack data.
pub fn on_fence(
    p: &PartitionState,
    broker: i32,
    is_live: impl Fn(i32) -> bool,
) -> Option<(Vec<i32>, i32)> {
    if p.leader != broker && !p.isr.contains(&broker) {
        return None;
    }
    let mut isr: Vec<i32> = p.isr.iter().copied().filter(|b| *b != broker).collect();
    if isr.is_empty() {
        isr = p.isr.clone();
    }
    let leader = if p.leader == broker || p.leader == NO_LEADER {
        elect_leader(&p.replicas, &isr, |b| b != broker && is_live(b))
    } else {
        p.leader
    };
    if isr == p.isr && leader == p.leader {
        return None;
    }
    Some((isr, leader))
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
