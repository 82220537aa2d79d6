//! The join phase of a classic rebalance: JoinGroup handling (KIP-394 member ids, KIP-345
//! static members), the move to PreparingRebalance, and completing the join with a new
//! generation, a leader and the selected protocol.

use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::{
    ClassicGroup, ClassicState, JoinRequest, JoinResult, Member, Reply, SyncResult, new_member_id,
};
use crate::config::GroupSettings;

impl ClassicGroup {
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
            let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
            self.pending.insert(member_id.clone(), now + session);
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
        let changed = self
            .members
            .get(&member_id)
            .is_none_or(|m| m.protocols != req.protocols);
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
                if let Some(m) = self.members.get_mut(&member_id) {
                    m.last_heartbeat = now;
                }
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
        let Some(m) = self.members.get_mut(id) else {
            if let Some(tx) = tx {
                let _ = tx.send(JoinResult::error(ResponseError::UnknownMemberId, id));
            }
            return;
        };
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
        // The client's subscription metadata embeds its generation and owned partitions, so it
        // rarely matches byte for byte. As in Kafka, what matters is whether the group would
        // still select the same protocol with the new metadata.
        m.protocols = req.protocols.clone();
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
        let unchanged = self.select_protocol() == self.protocol_name;
        self.dirty = true;
        match self.state {
            ClassicState::Stable if unchanged => {
                // Same protocol: no rebalance, whichever JoinGroup version (Kafka's
                // updateStaticMemberThenRebalanceOrCompleteJoin). The member gets the current
                // generation and its SyncGroup returns its stored assignment; the others keep
                // theirs. A leader on v9+ is told it is the leader but must skip the
                // assignment; before v9 it is told the old leader id, which is not its own,
                // so it acts as a follower and runs no assignor.
                self.update_member(new_id, &req, now, None);
                let mut r = self.join_result_for(new_id, req.supports_skip_assignment);
                if was_leader && !req.supports_skip_assignment {
                    r.leader = old_id.to_string();
                    r.members.clear();
                }
                tracing::info!(group = %self.id, member = %new_id, "static member rejoined without changes: no rebalance");
                Reply::Now(r)
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
    pub(super) fn try_complete_join(
        &mut self,
        now: Instant,
        settings: &GroupSettings,
        force: bool,
    ) {
        if self.state != ClassicState::PreparingRebalance {
            return;
        }
        if !force {
            match self.initial_delay_until {
                Some(t) if now < t => return,
                // A new group's first join completes once the initial delay is over, whoever
                // is still pending (Kafka's InitialDelayedJoin).
                Some(_) => {}
                None => {
                    let all_joined = self.members.values().all(Member::awaiting_join);
                    if !all_joined || !self.pending.is_empty() {
                        return;
                    }
                }
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
        // Pending members stay pending (Kafka keeps them until they join, leave or their
        // session times out): one that joins later starts the next rebalance.
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
            let Some(m) = self.members.get_mut(&id) else {
                continue;
            };
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
                *votes.entry(n).or_default() += 1;
            }
        }
        let max = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|(_, v)| *v == max)
            .map(|(n, _)| n.clone())
    }
}
