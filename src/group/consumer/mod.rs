//! The KIP-848 consumer group protocol: ConsumerGroupHeartbeat with server-side assignment.
//!
//! Three epochs drive it. The *group epoch* bumps whenever membership, subscriptions or the
//! subscribed topics' partitions change. The *assignment epoch* is the group epoch that the
//! current target assignment was computed for. Each member's *member epoch* reaches the
//! assignment epoch once it has been reconciled. Reconciliation never hands a partition to a
//! member while another member still owns it: the previous owner is first asked to revoke it,
//! and it is given out once that owner's heartbeat no longer lists it.
//!
//! Leaving: member epoch -1 removes the member; -2 (a static member's temporary leave) keeps
//! it, and its partitions, until it rejoins with the same instance id (taking over epoch and
//! assignment without a new group epoch) or its session expires.
//!
//! Time comes in as the `now` of each call (heartbeat, tick), so the transitions can be
//! driven by a test's clock; only `empty_since_ms` (offsets retention) reads the wall clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::assignor::{self, MemberSubscription, TopicInfo};
use crate::config::GroupSettings;

pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub previous_epoch: i32,
    pub subscribed: Vec<String>,
    pub regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// Partitions the member owns (what it was last told it may own).
    pub assigned: Assignment,
    /// Partitions it has been asked to give up and has not yet confirmed.
    pub revoking: Assignment,
    #[serde(skip)]
    last_sent: Option<Assignment>,
    #[serde(skip, default = "Instant::now")]
    last_heartbeat: Instant,
    #[serde(skip)]
    revoke_deadline: Option<Instant>,
}

/// Parameters of one ConsumerGroupHeartbeat.
pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed: Option<Vec<String>>,
    pub regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Default)]
pub struct HeartbeatResult {
    pub error: Option<(ResponseError, String)>,
    pub member_id: String,
    pub member_epoch: i32,
    pub assignment: Option<Assignment>,
}

fn err(e: ResponseError, msg: impl Into<String>) -> HeartbeatResult {
    HeartbeatResult {
        error: Some((e, msg.into())),
        ..Default::default()
    }
}

#[derive(Serialize, Deserialize)]
pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: IndexMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics' (id, partition count) when the target was computed.
    topics_seen: BTreeMap<String, (Uuid, i32)>,
    pub empty_since_ms: Option<i64>,
    #[serde(skip)]
    pub dirty: bool,
    /// Changes seen while handling one request move the group epoch by one, not by each.
    #[serde(skip)]
    bump_pending: bool,
}

fn union(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = a.clone();
    for (t, ps) in b {
        out.entry(*t).or_default().extend(ps);
    }
    out
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(bs) => ps.difference(bs).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        if let Some(bs) = b.get(t) {
            let both: BTreeSet<i32> = ps.intersection(bs).copied().collect();
            if !both.is_empty() {
                out.insert(*t, both);
            }
        }
    }
    out
}

impl ConsumerGroup {
    pub fn new(id: &str, default_assignor: &str) -> Self {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            assignor: default_assignor.to_string(),
            members: IndexMap::new(),
            target: BTreeMap::new(),
            topics_seen: BTreeMap::new(),
            empty_since_ms: Some(crate::handlers::now_ms()),
            dirty: false,
            bump_pending: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Kafka's state names for consumer groups.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.member_epoch != self.assignment_epoch
                || !m.revoking.is_empty()
                || self.target.get(&m.id) != Some(&m.assigned)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    fn bump(&mut self) {
        self.bump_pending = true;
    }

    fn apply_bump(&mut self) {
        if std::mem::take(&mut self.bump_pending) {
            self.group_epoch += 1;
            self.dirty = true;
        }
    }

    pub fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        topics: &dyn Fn(&str) -> Option<(Uuid, i32)>,
        all_topics: &dyn Fn() -> Vec<String>,
        settings: &GroupSettings,
        now: Instant,
    ) -> HeartbeatResult {
        if let Some(a) = &req.server_assignor
            && !settings.consumer_assignors.iter().any(|x| x == a)
        {
            return err(
                ResponseError::UnsupportedAssignor,
                format!("Assignor {a} is not supported"),
            );
        }
        if let Some(r) = &req.regex
            && let Err(e) = regex::Regex::new(r)
        {
            return err(
                ResponseError::InvalidRegularExpression,
                format!("Invalid regular expression {r}: {e}"),
            );
        }
        let id = match req.member_epoch {
            -1 | -2 => {
                return self.leave(
                    &req.member_id,
                    req.instance_id.as_deref(),
                    req.member_epoch,
                    now,
                );
            }
            0 => {
                if req.subscribed.is_none() && req.regex.is_none() {
                    return err(
                        ResponseError::InvalidRequest,
                        "SubscribedTopicNames or SubscribedTopicRegex must be set when joining",
                    );
                }
                self.join(&req, now)
            }
            epoch => {
                let Some(m) = self.members.get(&req.member_id) else {
                    return err(
                        ResponseError::UnknownMemberId,
                        format!(
                            "Member {} is not a member of group {}",
                            req.member_id, self.id
                        ),
                    );
                };
                if let Some(i) = &req.instance_id
                    && m.instance_id.as_deref() != Some(i.as_str())
                {
                    return err(
                        ResponseError::FencedInstanceId,
                        "instance id does not match the member",
                    );
                }
                // A member may repeat its previous epoch if it lost our response, as long as
                // it does not claim partitions it no longer has.
                let lost_response = epoch == m.previous_epoch
                    && req
                        .owned
                        .as_ref()
                        .is_none_or(|o| minus(o, &union(&m.assigned, &m.revoking)).is_empty());
                if epoch != m.member_epoch && !lost_response {
                    return err(
                        ResponseError::FencedMemberEpoch,
                        format!(
                            "member epoch {epoch} does not match the current epoch {}",
                            m.member_epoch
                        ),
                    );
                }
                req.member_id.clone()
            }
        };
        // Subscription and metadata changes move the group to a new epoch.
        {
            let Some(m) = self.members.get_mut(&id) else {
                return err(ResponseError::UnknownMemberId, "unknown member");
            };
            m.last_heartbeat = now;
            if req.rebalance_timeout_ms > 0 {
                m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            }
            let mut changed = false;
            if let Some(s) = &req.subscribed {
                let mut s = s.clone();
                s.sort();
                s.dedup();
                if s != m.subscribed {
                    m.subscribed = s;
                    changed = true;
                }
            }
            if req.regex.is_some() && req.regex != m.regex {
                m.regex = req.regex.clone();
                changed = true;
            }
            if req.server_assignor.is_some() && req.server_assignor != m.server_assignor {
                m.server_assignor = req.server_assignor.clone();
                changed = true;
            }
            if changed {
                self.bump();
            }
        }
        let seen = self.resolve_topics(topics, all_topics);
        if seen != self.topics_seen {
            self.topics_seen = seen;
            self.bump();
        }
        self.apply_bump();
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(settings);
        }
        self.reconcile(&id, req.owned.as_ref(), now);
        let Some(m) = self.members.get_mut(&id) else {
            return err(ResponseError::UnknownMemberId, "unknown member");
        };
        // A joining member always gets its assignment; later only changes are sent.
        let send = req.member_epoch == 0 || m.last_sent.as_ref() != Some(&m.assigned);
        let assignment = send.then(|| m.assigned.clone());
        if send {
            m.last_sent = Some(m.assigned.clone());
        }
        HeartbeatResult {
            error: None,
            member_id: id,
            member_epoch: m.member_epoch,
            assignment,
        }
    }

    /// Adds (or re-adds) a member and returns its id.
    fn join(&mut self, req: &HeartbeatRequest, now: Instant) -> String {
        // v0 clients let the coordinator name them; v1+ clients send their own UUID.
        let id = if req.member_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            req.member_id.clone()
        };
        let mut member = ConsumerMember {
            id: id.clone(),
            instance_id: req.instance_id.clone(),
            rack_id: req.rack_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            member_epoch: 0,
            previous_epoch: -1,
            subscribed: Vec::new(),
            regex: None,
            server_assignor: None,
            rebalance_timeout_ms: req.rebalance_timeout_ms.max(0),
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            last_sent: None,
            last_heartbeat: now,
            revoke_deadline: None,
        };
        // A static member coming back (after a crash, or a leave with epoch -2) takes over
        // its predecessor's partitions and epoch. Membership did not change, so neither does
        // the group epoch; a changed subscription bumps it in the heartbeat as usual.
        let mut replaced = false;
        if let Some(i) = &req.instance_id
            && let Some(old_id) = self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(i))
                .map(|m| m.id.clone())
            && let Some(old) = self.members.shift_remove(&old_id)
        {
            member.member_epoch = old.member_epoch;
            member.previous_epoch = old.previous_epoch;
            member.assigned = old.assigned;
            member.subscribed = old.subscribed;
            member.regex = old.regex;
            member.revoking = old.revoking;
            member.revoke_deadline = old.revoke_deadline;
            if let Some(t) = self.target.remove(&old_id) {
                self.target.insert(id.clone(), t);
            }
            replaced = true;
            self.dirty = true;
        }
        // A member rejoining with epoch 0 (after being fenced) starts from nothing; insert()
        // replaces its old entry.
        self.members.insert(id.clone(), member);
        self.empty_since_ms = None;
        if !replaced {
            self.bump();
        }
        id
    }

    fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        epoch: i32,
        now: Instant,
    ) -> HeartbeatResult {
        let id = match (self.members.contains_key(member_id), instance_id) {
            (true, _) => member_id.to_string(),
            (false, Some(i)) => match self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(i))
            {
                Some(m) => m.id.clone(),
                None => return err(ResponseError::UnknownMemberId, "unknown member"),
            },
            (false, None) => return err(ResponseError::UnknownMemberId, "unknown member"),
        };
        // A static member leaving with epoch -2 is only away: it keeps its partitions (nobody
        // else gets them) until it rejoins with the same instance id or its session expires.
        let away = match self.members.get_mut(&id) {
            Some(m) if epoch == -2 && m.instance_id.is_some() => {
                // Its session runs from the leave.
                m.last_heartbeat = now;
                true
            }
            _ => false,
        };
        if away {
            tracing::info!(group = %self.id, member = %id, "static member left temporarily");
        } else {
            self.remove(&id);
            tracing::info!(group = %self.id, member = %id, "member left the group");
        }
        HeartbeatResult {
            error: None,
            member_id: member_id.to_string(),
            member_epoch: epoch,
            assignment: None,
        }
    }

    fn remove(&mut self, id: &str) {
        if self.members.shift_remove(id).is_some() {
            self.target.remove(id);
            self.bump();
            self.apply_bump();
            if self.members.is_empty() {
                self.empty_since_ms = Some(crate::handlers::now_ms());
            }
        }
    }

    fn resolve_topics(
        &self,
        topics: &dyn Fn(&str) -> Option<(Uuid, i32)>,
        all_topics: &dyn Fn() -> Vec<String>,
    ) -> BTreeMap<String, (Uuid, i32)> {
        let mut names: BTreeSet<String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect();
        let regexes: Vec<regex::Regex> = self
            .members
            .values()
            .filter_map(|m| m.regex.as_ref())
            .filter_map(|r| regex::Regex::new(&format!("^(?:{r})$")).ok())
            .collect();
        if !regexes.is_empty() {
            for t in all_topics() {
                if regexes.iter().any(|r| r.is_match(&t)) {
                    names.insert(t);
                }
            }
        }
        names
            .into_iter()
            .filter_map(|n| topics(&n).map(|info| (n, info)))
            .collect()
    }

    fn member_topics(&self, m: &ConsumerMember) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = m
            .subscribed
            .iter()
            .filter(|t| self.topics_seen.contains_key(*t))
            .cloned()
            .collect();
        if let Some(r) = m
            .regex
            .as_ref()
            .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok())
        {
            out.extend(self.topics_seen.keys().filter(|t| r.is_match(t)).cloned());
        }
        out
    }

    fn compute_target(&mut self, settings: &GroupSettings) {
        // The assignor named by the members (all must agree in practice), else the default.
        let name = self
            .members
            .values()
            .find_map(|m| m.server_assignor.clone())
            .unwrap_or_else(|| {
                settings
                    .consumer_assignors
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "uniform".into())
            });
        let topics: BTreeMap<Uuid, TopicInfo> = self
            .topics_seen
            .iter()
            .map(|(n, (id, p))| {
                (
                    *id,
                    TopicInfo {
                        name: n.clone(),
                        partitions: *p,
                    },
                )
            })
            .collect();
        let members: Vec<MemberSubscription> = self
            .members
            .values()
            .map(|m| MemberSubscription {
                id: m.id.clone(),
                topics: self
                    .member_topics(m)
                    .iter()
                    .map(|n| self.topics_seen[n].0)
                    .collect(),
                previous: self.target.get(&m.id).cloned().unwrap_or_default(),
            })
            .collect();
        self.target = match name.as_str() {
            "range" => assignor::range(&members, &topics),
            _ => assignor::uniform(&members, &topics),
        };
        self.assignor = name;
        self.assignment_epoch = self.group_epoch;
        self.dirty = true;
        tracing::debug!(group = %self.id, epoch = self.group_epoch, members = self.members.len(), "computed target assignment");
    }

    /// Moves one member towards its target: revoke first, then assign what is free.
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        // Partitions held (or still being released) by the other members.
        let mut taken = Assignment::new();
        for (oid, m) in &self.members {
            if oid != id {
                taken = union(&taken, &union(&m.assigned, &m.revoking));
            }
        }
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        if !m.revoking.is_empty() {
            match owned {
                // The member confirms by no longer listing the revoked partitions.
                Some(o) if intersect(o, &m.revoking).is_empty() => {
                    m.revoking.clear();
                    m.revoke_deadline = None;
                    self.dirty = true;
                }
                _ => return,
            }
        }
        let revoke = minus(&m.assigned, &target);
        if !revoke.is_empty() {
            m.assigned = minus(&m.assigned, &revoke);
            m.revoking = revoke;
            m.revoke_deadline =
                Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(1) as u64));
            self.dirty = true;
            return;
        }
        let free = minus(&minus(&target, &m.assigned), &taken);
        if !free.is_empty() {
            m.assigned = union(&m.assigned, &free);
            self.dirty = true;
        }
        if m.member_epoch != assignment_epoch {
            m.previous_epoch = m.member_epoch;
            m.member_epoch = assignment_epoch;
            self.dirty = true;
        }
    }

    /// Session expiry and revocation timeouts.
    pub fn tick(&mut self, now: Instant, settings: &GroupSettings) {
        let session = Duration::from_millis(settings.consumer_session_timeout_ms as u64);
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now.duration_since(m.last_heartbeat) > session
                    || m.revoke_deadline.is_some_and(|d| now >= d)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "member expired (session or revocation timeout)");
            self.remove(&id);
        }
    }

    /// OffsetCommit / OffsetFetch from a member: its epoch must be current.
    pub fn validate_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        let Some(m) = self.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if epoch > m.member_epoch {
            Err(ResponseError::FencedMemberEpoch)
        } else if epoch < m.member_epoch {
            Err(ResponseError::StaleMemberEpoch)
        } else {
            Ok(())
        }
    }

    /// Topic names the group subscribes to (for OffsetDelete).
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| self.member_topics(m))
            .collect()
    }

    pub fn member(&self, id: &str) -> Option<&ConsumerMember> {
        self.members.get(id)
    }

    pub fn restored(mut self, now: Instant) -> Self {
        for m in self.members.values_mut() {
            m.last_heartbeat = now;
        }
        self
    }
}

#[cfg(test)]
mod tests;
