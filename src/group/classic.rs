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
    /// Member ids handed out by MEMBER_ID_REQUIRED, awaiting the second join (KIP-394).
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

    /// Handles a JoinGroup. `now` drives deadlines; `settings` bounds timeouts.
    pub fn join(
        &mut self,
        req: JoinRequest,
        settings: &GroupSettings,
        now: Instant,
    ) -> Reply<JoinResult> {
        let session = req.session_timeout_ms as i64;
        if session < settings.min_session_timeout_ms || session > settings.max_session_timeout_ms {
            return Reply::Now(JoinResult::error(
                ResponseError::InvalidSessionTimeout,
                &req.member_id,
            ));
        }
        if self.state == ClassicState::Dead {
            return Reply::Now(JoinResult::error(
                ResponseError::CoordinatorNotAvailable,
                &req.member_id,
            ));
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return Reply::Now(JoinResult::error(
                ResponseError::InconsistentGroupProtocol,
                &req.member_id,
            ));
        }
        if req.member_id.is_empty() {
            self.join_unknown_member(req, settings, now)
        } else {
            self.join_known_member(req, settings, now)
        }
    }

    fn join_unknown_member(
        &mut self,
        req: JoinRequest,
        settings: &GroupSettings,
        now: Instant,
    ) -> Reply<JoinResult> {
        let member_id = new_member_id(&req.client_id);
        if let Some(instance) = req.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(&old_id, &member_id, req, settings, now);
            }
        } else if req.require_known_member_id {
            // KIP-394: hand out an id first so a client that retries a timed-out join does
            // not leave ghost members behind.
            self.pending.insert(member_id.clone(), now);
            return Reply::Now(JoinResult::error(
                ResponseError::MemberIdRequired,
                &member_id,
            ));
        }
        if self.members.len() >= settings.max_size {
            return Reply::Now(JoinResult::error(ResponseError::GroupMaxSizeReached, ""));
        }
        self.add_member_and_rebalance(member_id, req, settings, now)
    }

    fn join_known_member(
        &mut self,
        req: JoinRequest,
        settings: &GroupSettings,
        now: Instant,
    ) -> Reply<JoinResult> {
        let member_id = req.member_id.clone();
        if self.pending.remove(&member_id).is_some() {
            if self.members.len() >= settings.max_size {
                return Reply::Now(JoinResult::error(
                    ResponseError::GroupMaxSizeReached,
                    &member_id,
                ));
            }
            return self.add_member_and_rebalance(member_id, req, settings, now);
        }
        if let Some(e) = self.check_member(&member_id, req.instance_id.as_deref()) {
            return Reply::Now(JoinResult::error(e, &member_id));
        }
        let changed = {
            let m = &self.members[&member_id];
            m.protocols != req.protocols
        };
        match self.state {
            ClassicState::PreparingRebalance => {
                let (tx, rx) = oneshot::channel();
                self.update_member(&member_id, &req, now, Some(tx));
                self.try_complete_join(now, settings, false);
                Reply::Wait(rx)
            }
            ClassicState::CompletingRebalance | ClassicState::Stable
                if !changed
                    && (self.state == ClassicState::CompletingRebalance
                        || self.leader.as_deref() != Some(&member_id)) =>
            {
                // The member lost our join response, or a follower rejoins unchanged: tell it
                // the current generation again without disturbing the others.
                self.members.get_mut(&member_id).unwrap().last_heartbeat = now;
                Reply::Now(self.join_result_for(&member_id, false))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                self.update_member(&member_id, &req, now, Some(tx));
                self.prepare_rebalance(now, settings, "member rejoined with changes");
                self.try_complete_join(now, settings, false);
                Reply::Wait(rx)
            }
        }
    }

    fn update_member(
        &mut self,
        id: &str,
        req: &JoinRequest,
        now: Instant,
        tx: Option<oneshot::Sender<JoinResult>>,
    ) {
        let m = self.members.get_mut(id).expect("member exists");
        m.protocols = req.protocols.clone();
        m.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
        m.rebalance_timeout =
            Duration::from_millis(req.rebalance_timeout_ms.max(req.session_timeout_ms) as u64);
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.last_heartbeat = now;
        if let Some(old) = m.join_tx.take() {
            let _ = old.send(JoinResult::error(ResponseError::UnknownMemberId, id));
        }
        m.join_tx = tx;
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        settings: &GroupSettings,
        now: Instant,
    ) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(i) = &req.instance_id {
            self.static_members.insert(i.clone(), member_id.clone());
        }
        self.members.insert(
            member_id.clone(),
            Member {
                id: member_id.clone(),
                instance_id: req.instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout: Duration::from_millis(req.session_timeout_ms as u64),
                rebalance_timeout: Duration::from_millis(
                    req.rebalance_timeout_ms.max(req.session_timeout_ms) as u64,
                ),
                protocol_type: req.protocol_type.clone(),
                protocols: req.protocols.clone(),
                assignment: Bytes::new(),
                join_tx: Some(tx),
                sync_tx: None,
                last_heartbeat: now,
            },
        );
        self.empty_since_ms = None;
        self.prepare_rebalance(now, settings, "member joined");
        // Each new member during the initial delay extends it, up to the rebalance timeout.
        if let (Some(until), Some(deadline)) = (self.initial_delay_until, self.rebalance_deadline) {
            let extended = now + Duration::from_millis(settings.initial_rebalance_delay_ms as u64);
            if extended > until {
                self.initial_delay_until = Some(extended.min(deadline));
            }
        }
        self.try_complete_join(now, settings, false);
        Reply::Wait(rx)
    }

    /// A static member came back with a new member id (KIP-345). If nothing changed, it
    /// takes over its old identity and assignment without a rebalance.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: &str,
        req: JoinRequest,
        settings: &GroupSettings,
        now: Instant,
    ) -> Reply<JoinResult> {
        let Some(mut m) = self.members.shift_remove(old_id) else {
            self.static_members
                .remove(req.instance_id.as_deref().unwrap_or_default());
            return self.add_member_and_rebalance(new_id.to_string(), req, settings, now);
        };
        // The previous incarnation is fenced: its pending requests fail.
        if let Some(tx) = m.join_tx.take() {
            let _ = tx.send(JoinResult::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(tx) = m.sync_tx.take() {
            let _ = tx.send(SyncResult::error(ResponseError::FencedInstanceId));
        }
        let unchanged = m.protocols == req.protocols;
        m.id = new_id.to_string();
        m.last_heartbeat = now;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        self.members.insert(new_id.to_string(), m);
        self.static_members.insert(
            req.instance_id.clone().unwrap_or_default(),
            new_id.to_string(),
        );
        let was_leader = self.leader.as_deref() == Some(old_id);
        if was_leader {
            self.leader = Some(new_id.to_string());
        }
        self.dirty = true;
        match self.state {
            ClassicState::Stable if unchanged => {
                // Same subscription: hand back the current generation; the member's SyncGroup
                // returns its old assignment. A rejoining leader must not reassign (v9+).
                let skip = was_leader && req.supports_skip_assignment;
                if was_leader && !req.supports_skip_assignment {
                    // Older clients would run the assignor on an empty member list: rebalance.
                    let (tx, rx) = oneshot::channel();
                    self.update_member(new_id, &req, now, Some(tx));
                    self.prepare_rebalance(now, settings, "static leader rejoined");
                    self.try_complete_join(now, settings, false);
                    return Reply::Wait(rx);
                }
                Reply::Now(self.join_result_for(new_id, skip))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                self.update_member(new_id, &req, now, Some(tx));
                self.prepare_rebalance(now, settings, "static member rejoined");
                self.try_complete_join(now, settings, false);
                Reply::Wait(rx)
            }
        }
    }

    fn join_result_for(&self, member_id: &str, leader_view: bool) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        JoinResult {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            skip_assignment: leader_view && is_leader,
            members: if is_leader {
                self.members
                    .values()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
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

    pub fn prepare_rebalance(&mut self, now: Instant, settings: &GroupSettings, reason: &str) {
        if self.state == ClassicState::PreparingRebalance {
            return;
        }
        if self.state == ClassicState::CompletingRebalance {
            // Members waiting for the old generation's assignment must rejoin.
            for m in self.members.values_mut() {
                if let Some(tx) = m.sync_tx.take() {
                    let _ = tx.send(SyncResult::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let from_empty = self.state == ClassicState::Empty;
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::from_secs(60));
        self.state = ClassicState::PreparingRebalance;
        self.rebalance_deadline = Some(now + timeout);
        self.sync_deadline = None;
        self.initial_delay_until = if from_empty && settings.initial_rebalance_delay_ms > 0 {
            Some(
                (now + Duration::from_millis(settings.initial_rebalance_delay_ms as u64))
                    .min(now + timeout),
            )
        } else {
            None
        };
        tracing::debug!(group = %self.id, reason, "preparing rebalance");
    }

    /// Completes the join phase when every member has rejoined (and no KIP-394 member is
    /// still on its way), or unconditionally when `force` (rebalance timeout).
    fn try_complete_join(&mut self, now: Instant, settings: &GroupSettings, force: bool) {
        if self.state != ClassicState::PreparingRebalance {
            return;
        }
        if !force {
            if self.initial_delay_until.is_some_and(|t| now < t) {
                return;
            }
            let all_joined = self.members.values().all(Member::awaiting_join);
            if !all_joined || !self.pending.is_empty() {
                return;
            }
        }
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.pending.clear();
        self.initial_delay_until = None;
        self.rebalance_deadline = None;
        self.generation += 1;
        self.dirty = true;
        if self.members.is_empty() {
            self.state = ClassicState::Empty;
            self.protocol_name = None;
            self.leader = None;
            self.empty_since_ms = Some(crate::handlers::now_ms());
            return;
        }
        self.protocol_name = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = ClassicState::CompletingRebalance;
        let rebalance = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.sync_deadline = Some(now + rebalance);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result_for(&id, false);
            let m = self.members.get_mut(&id).unwrap();
            m.last_heartbeat = now;
            if let Some(tx) = m.join_tx.take() {
                let _ = tx.send(result);
            }
        }
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), protocol = ?self.protocol_name, "rebalance: join complete");
        let _ = settings;
    }

    /// The protocol every member supports with the most first-choice votes (Kafka's rule).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes: IndexMap<&String, usize> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                *votes.get_mut(n).unwrap() += 1;
            }
        }
        let max = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|(_, v)| *v == max)
            .map(|(n, _)| n.clone())
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
                let m = self.members.get_mut(member_id).unwrap();
                m.last_heartbeat = now;
                Reply::Now(self.sync_result(member_id))
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                {
                    let m = self.members.get_mut(member_id).unwrap();
                    m.last_heartbeat = now;
                    m.sync_tx = Some(tx);
                }
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
                        if let Some(tx) = self.members.get_mut(&id).unwrap().sync_tx.take() {
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
            assignment: self.members[member_id].assignment.clone(),
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
        self.members.get_mut(member_id).unwrap().last_heartbeat = now;
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
        self.pending
            .retain(|_, since| now.duration_since(*since) < Duration::from_secs(300));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GroupSettings {
        crate::config::Config::default().group.clone()
    }

    fn req(member: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            member_id: member.to_string(),
            instance_id: instance.map(str::to_string),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: true,
            supports_skip_assignment: true,
        }
    }

    fn now_result<T>(r: Reply<T>) -> T {
        match r {
            Reply::Now(t) => t,
            Reply::Wait(mut rx) => rx.try_recv().expect("completed"),
        }
    }

    #[test]
    fn two_step_join_sync_heartbeat_leave() {
        let mut s = settings();
        s.initial_rebalance_delay_ms = 0;
        let t = Instant::now();
        let mut g = ClassicGroup::new("g");
        let first = now_result(g.join(req("", None), &s, t));
        assert_eq!(first.error, ResponseError::MemberIdRequired.code());
        let joined = now_result(g.join(req(&first.member_id, None), &s, t));
        assert_eq!((joined.error, joined.generation), (0, 1));
        assert_eq!(joined.leader, first.member_id);
        assert_eq!(joined.members.len(), 1);
        let id = joined.member_id.clone();
        let synced = now_result(g.sync(
            SyncRequest {
                member_id: &id,
                instance_id: None,
                generation: 1,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![(id.clone(), Bytes::from_static(b"a"))],
            },
            t,
        ));
        assert_eq!(synced.assignment, Bytes::from_static(b"a"));
        assert_eq!(g.state, ClassicState::Stable);
        assert_eq!(g.heartbeat(&id, None, 1, t), Ok(()));
        assert_eq!(
            g.heartbeat(&id, None, 0, t),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            g.heartbeat("x", None, 1, t),
            Err(ResponseError::UnknownMemberId)
        );
        // A second member triggers a rebalance; the first learns via heartbeat.
        let m2 = now_result(g.join(req("", None), &s, t)).member_id;
        let mut rx2 = match g.join(req(&m2, None), &s, t) {
            Reply::Wait(rx) => rx,
            Reply::Now(_) => panic!("must wait for the others"),
        };
        assert_eq!(
            g.heartbeat(&id, None, 1, t),
            Err(ResponseError::RebalanceInProgress)
        );
        let r1 = now_result(g.join(req(&id, None), &s, t));
        let r2 = rx2.try_recv().unwrap();
        assert_eq!((r1.generation, r2.generation), (2, 2));
        assert_eq!(
            r1.members.len() + r2.members.len(),
            2,
            "only the leader sees members"
        );
        // Session expiry removes a silent member.
        let later = t + Duration::from_secs(11);
        g.sync(
            SyncRequest {
                member_id: &id,
                instance_id: None,
                generation: 2,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![],
            },
            t,
        );
        g.tick(later, &s);
        assert!(g.members.is_empty());
        assert_eq!(g.state, ClassicState::Empty);
    }

    #[test]
    fn static_member_rejoins_without_rebalance() {
        let mut s = settings();
        s.initial_rebalance_delay_ms = 0;
        let t = Instant::now();
        let mut g = ClassicGroup::new("g");
        let a = now_result(g.join(req("", Some("a")), &s, t));
        let id = a.member_id.clone();
        now_result(g.sync(
            SyncRequest {
                member_id: &id,
                instance_id: Some("a"),
                generation: 1,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![(id.clone(), Bytes::from_static(b"p0"))],
            },
            t,
        ));
        let again = now_result(g.join(req("", Some("a")), &s, t));
        assert_eq!(again.generation, 1, "no new generation");
        assert!(again.skip_assignment);
        assert_ne!(again.member_id, id);
        assert_eq!(
            g.heartbeat(&id, Some("a"), 1, t),
            Err(ResponseError::FencedInstanceId)
        );
        let synced = now_result(g.sync(
            SyncRequest {
                member_id: &again.member_id,
                instance_id: Some("a"),
                generation: 1,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![],
            },
            t,
        ));
        assert_eq!(synced.assignment, Bytes::from_static(b"p0"));
    }
}
