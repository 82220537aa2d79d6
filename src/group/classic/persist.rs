//! The persisted form of a classic group: only a Stable group's membership is kept, so a
//! restarted broker can let members carry on without a rebalance.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ClassicGroup, ClassicState, Member};

#[derive(Serialize, Deserialize)]
pub struct MemberRecord {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    protocol_type: String,
    protocols: Vec<(String, Vec<u8>)>,
    assignment: Vec<u8>,
}

/// The persisted form of a classic group.
#[derive(Serialize, Deserialize)]
pub struct ClassicRecord {
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation: i32,
    leader: Option<String>,
    empty_since_ms: Option<i64>,
    members: Vec<MemberRecord>,
}

impl ClassicGroup {
    pub fn to_record(&self) -> ClassicRecord {
        ClassicRecord {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            generation: self.generation,
            leader: self.leader.clone(),
            empty_since_ms: self.empty_since_ms,
            // Only a Stable group's membership is worth restoring: anything mid-rebalance
            // restarts as a fresh rebalance when the members rejoin.
            members: if self.state == ClassicState::Stable {
                self.members
                    .values()
                    .map(|m| MemberRecord {
                        id: m.id.clone(),
                        instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        session_timeout_ms: m.session_timeout.as_millis() as u64,
                        rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u64,
                        protocol_type: m.protocol_type.clone(),
                        protocols: m
                            .protocols
                            .iter()
                            .map(|(n, b)| (n.clone(), b.to_vec()))
                            .collect(),
                        assignment: m.assignment.to_vec(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    pub fn from_record(id: &str, r: ClassicRecord, now: Instant) -> Self {
        let mut g = ClassicGroup::new(id);
        g.protocol_type = r.protocol_type;
        g.generation = r.generation;
        g.empty_since_ms = r.empty_since_ms;
        if !r.members.is_empty() {
            g.protocol_name = r.protocol_name;
            g.leader = r.leader;
            g.state = ClassicState::Stable;
            g.empty_since_ms = None;
            for m in r.members {
                if let Some(i) = &m.instance_id {
                    g.static_members.insert(i.clone(), m.id.clone());
                }
                g.members.insert(
                    m.id.clone(),
                    Member {
                        id: m.id,
                        instance_id: m.instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        session_timeout: Duration::from_millis(m.session_timeout_ms),
                        rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms),
                        protocol_type: m.protocol_type,
                        protocols: m
                            .protocols
                            .into_iter()
                            .map(|(n, b)| (n, Bytes::from(b)))
                            .collect(),
                        assignment: Bytes::from(m.assignment),
                        join_tx: None,
                        sync_tx: None,
                        // Restored members get a full session to find the restarted broker.
                        last_heartbeat: now,
                    },
                );
            }
        }
        g
    }
}
