//! The classic group protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup).
//!
//! States follow Kafka's: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and
//! back to PreparingRebalance whenever membership or subscriptions change. A JoinGroup waits
//! (on a oneshot channel, outside any lock) until every known member has rejoined or the
//! rebalance timeout expires; SyncGroup waits for the leader's assignment. Timeouts (session,
//! rebalance, initial delay) are driven by the coordinator's ticker calling [`ClassicGroup::tick`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::config::GroupSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl ClassicState {
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub skip_assignment: bool,
    /// (member id, instance id, metadata): only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(e: ResponseError, member_id: &str) -> Self {
        JoinResult {
            error: e.code(),
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(e: ResponseError) -> Self {
        SyncResult {
            error: e.code(),
            ..Default::default()
        }
    }
}

pub enum Reply<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join_tx: Option<oneshot::Sender<JoinResult>>,
    sync_tx: Option<oneshot::Sender<SyncResult>>,
    last_heartbeat: Instant,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn awaiting_join(&self) -> bool {
        self.join_tx.is_some()
    }
}

/// Parameters of one JoinGroup request.
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: unknown members must first obtain a member id (KIP-394).
    pub require_known_member_id: bool,
    /// JoinGroup v9+ understands `skip_assignment` for a rejoining static leader.
    pub supports_skip_assignment: bool,
}

/// Parameters of one SyncGroup request.
pub struct SyncRequest<'a> {
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub generation: i32,
    pub protocol_type: Option<&'a str>,
    pub protocol_name: Option<&'a str>,
    /// (member id, assignment): only the leader sends these.
    pub assignments: Vec<(String, Bytes)>,
}

pub struct ClassicGroup {
    pub id: String,
    pub state: ClassicState,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: IndexMap<String, Member>,
    /// Member ids handed out by MEMBER_ID_REQUIRED, awaiting the second join (KIP-394),
    /// each with the moment it expires: as in Kafka, a pending member that does not come
    /// back within the session timeout of its first JoinGroup is forgotten.
    pending: HashMap<String, Instant>,
    /// group.instance.id -> member id (KIP-345 static membership).
    pub static_members: HashMap<String, String>,
    rebalance_deadline: Option<Instant>,
    /// The initial-delay window of a rebalance started from Empty (group.initial.rebalance.delay.ms).
    initial_delay_until: Option<Instant>,
    sync_deadline: Option<Instant>,
    /// When the group last became Empty (ms since epoch), for offsets retention.
    pub empty_since_ms: Option<i64>,
    /// Set whenever state worth persisting changed; the coordinator clears it after saving.
    pub dirty: bool,
}

fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{}", uuid::Uuid::new_v4())
}

impl ClassicGroup {
    pub fn new(id: &str) -> Self {
        ClassicGroup {
            id: id.to_string(),
            state: ClassicState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            sync_deadline: None,
            empty_since_ms: Some(crate::handlers::now_ms()),
            dirty: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        // At least one protocol every current member also supports.
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// Returns an error if `member_id` is not (or no longer) a member.
    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Option<ResponseError> {
        if let Some(i) = instance_id {
            match self.static_members.get(i) {
                Some(id) if id != member_id => return Some(ResponseError::FencedInstanceId),
                None if self.members.contains_key(member_id) => {
                    return Some(ResponseError::FencedInstanceId);
                }
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        None
    }

    /// OffsetCommit from a member of this group (generation > -1 or a member id).
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if let Some(e) = self.check_member(member_id, instance_id) {
            return Err(e);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if self.state == ClassicState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.shift_remove(id) {
            if let Some(i) = &m.instance_id
                && self.static_members.get(i).map(String::as_str) == Some(id)
            {
                self.static_members.remove(i);
            }
            if let Some(tx) = m.join_tx.take() {
                let _ = tx.send(JoinResult::error(ResponseError::UnknownMemberId, id));
            }
            if let Some(tx) = m.sync_tx.take() {
                let _ = tx.send(SyncResult::error(ResponseError::UnknownMemberId));
            }
            self.dirty = true;
        }
    }

    /// A member is gone (left or expired): rebalance the rest.
    fn member_departed(&mut self, id: &str, now: Instant, settings: &GroupSettings, reason: &str) {
        self.remove_member(id);
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.become_empty();
                } else {
                    self.prepare_rebalance(now, settings, reason);
                }
            }
            ClassicState::PreparingRebalance => self.try_complete_join(now, settings, false),
            _ => {}
        }
        if self.members.is_empty() && self.state != ClassicState::PreparingRebalance {
            self.become_empty();
        }
    }

    fn become_empty(&mut self) {
        if self.state != ClassicState::Empty {
            self.state = ClassicState::Empty;
            self.generation += 1;
            self.leader = None;
            self.protocol_name = None;
            self.empty_since_ms = Some(crate::handlers::now_ms());
            self.dirty = true;
        }
    }

    pub fn sync(&mut self, req: SyncRequest<'_>, now: Instant) -> Reply<SyncResult> {
        let SyncRequest {
            member_id,
            instance_id,
            generation,
            protocol_type,
            protocol_name,
            assignments,
        } = req;
        if self.state == ClassicState::Dead {
            return Reply::Now(SyncResult::error(ResponseError::CoordinatorNotAvailable));
        }
        if let Some(e) = self.check_member(member_id, instance_id) {
            return Reply::Now(SyncResult::error(e));
        }
        if generation != self.generation {
            return Reply::Now(SyncResult::error(ResponseError::IllegalGeneration));
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return Reply::Now(SyncResult::error(ResponseError::InconsistentGroupProtocol));
        }
        match self.state {
            ClassicState::PreparingRebalance => {
                Reply::Now(SyncResult::error(ResponseError::RebalanceInProgress))
            }
            ClassicState::Stable => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.last_heartbeat = now;
                }
                Reply::Now(self.sync_result(member_id))
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let Some(m) = self.members.get_mut(member_id) else {
                    return Reply::Now(SyncResult::error(ResponseError::UnknownMemberId));
                };
                m.last_heartbeat = now;
                m.sync_tx = Some(tx);
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = ClassicState::Stable;
                    self.sync_deadline = None;
                    self.dirty = true;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let r = self.sync_result(&id);
                        if let Some(tx) = self.members.get_mut(&id).and_then(|m| m.sync_tx.take()) {
                            let _ = tx.send(r);
                        }
                    }
                    tracing::info!(group = %self.id, generation = self.generation, "rebalance: stable");
                }
                Reply::Wait(rx)
            }
            ClassicState::Empty | ClassicState::Dead => {
                Reply::Now(SyncResult::error(ResponseError::UnknownMemberId))
            }
        }
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        if self.state == ClassicState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(e) = self.check_member(member_id, instance_id) {
            return Err(e);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        match self.state {
            ClassicState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup for one member, by member id or (static members) by instance id.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        settings: &GroupSettings,
    ) -> Result<String, ResponseError> {
        let id = match instance_id {
            Some(i) => match self.static_members.get(i) {
                Some(id) if member_id.is_empty() || id == member_id => id.clone(),
                Some(_) => return Err(ResponseError::FencedInstanceId),
                None => return Err(ResponseError::UnknownMemberId),
            },
            None => {
                if self.pending.remove(member_id).is_some() {
                    // The join may have been waiting only for this member.
                    self.try_complete_join(now, settings, false);
                    return Ok(member_id.to_string());
                }
                if !self.members.contains_key(member_id) {
                    return Err(ResponseError::UnknownMemberId);
                }
                member_id.to_string()
            }
        };
        self.member_departed(&id, now, settings, "member left");
        tracing::info!(group = %self.id, member = %id, "member left the group");
        Ok(id)
    }

    /// Session expiry, rebalance and sync deadlines. Called periodically.
    pub fn tick(&mut self, now: Instant, settings: &GroupSettings) {
        // Pending members (KIP-394) that never came back: the join no longer waits for them
        // (the PreparingRebalance arm below completes it if everyone else is in).
        let group = &self.id;
        self.pending.retain(|id, expires| {
            let keep = now < *expires;
            if !keep {
                tracing::info!(group = %group, member = %id, "pending member removed after its session timeout");
            }
            keep
        });
        // Members not parked in a JoinGroup must heartbeat within their session timeout.
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                !m.awaiting_join() && now.duration_since(m.last_heartbeat) > m.session_timeout
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.member_departed(&id, now, settings, "session expired");
        }
        match self.state {
            ClassicState::PreparingRebalance => {
                let force = self.rebalance_deadline.is_some_and(|d| now >= d);
                self.try_complete_join(now, settings, force);
            }
            ClassicState::CompletingRebalance if self.sync_deadline.is_some_and(|d| now >= d) => {
                // The leader never sent the assignment: start over without the members that
                // did not sync.
                let missing: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.sync_tx.is_none())
                    .map(|m| m.id.clone())
                    .collect();
                for id in missing {
                    self.remove_member(&id);
                }
                if self.members.is_empty() {
                    self.become_empty();
                } else {
                    self.prepare_rebalance(now, settings, "sync timed out");
                }
            }
            _ => {}
        }
    }

    /// Topics the members subscribe to, when they speak the consumer protocol.
    pub fn subscribed_topics(&self) -> Option<std::collections::HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.clone()?;
        let mut topics = std::collections::HashSet::new();
        for m in self.members.values() {
            let mut meta = m.metadata_for(&protocol);
            if meta.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([meta[0], meta[1]]);
            bytes::Buf::advance(&mut meta, 2);
            use kafka_protocol::protocol::Decodable;
            if let Ok(sub) = kafka_protocol::messages::ConsumerProtocolSubscription::decode(
                &mut meta,
                version.clamp(0, 3),
            ) {
                topics.extend(sub.topics.iter().map(|t| t.to_string()));
            }
        }
        Some(topics)
    }
}

mod join;
mod persist;
pub use persist::{ClassicRecord, MemberRecord};

#[cfg(test)]
mod tests;
