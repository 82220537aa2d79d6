//! A leader's view of its followers, as pure state transitions: each follower's log end
//! offset and when it was last caught up (Kafka's `lastCaughtUpTimeMs`), the high watermark
//! they allow, and the ISR change they call for. The replication layer feeds it the
//! followers' fetches and the clock; the controller applies what it proposes.

use std::collections::BTreeMap;

/// What the leader knows of one follower since it became leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset (its last fetch offset); -1 before its first fetch.
    pub leo: i64,
    /// The last time the follower had everything the leader had.
    pub last_caught_up_ms: i64,
    /// The leader's log end and the time at the follower's previous fetch.
    last_fetch_leader_leo: i64,
    last_fetch_ms: i64,
}

/// One partition this broker leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    pub me: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// The log end offset when this leadership began: a follower joins the ISR only once it
    /// has everything up to here (Kafka's rule, so it holds the whole previous epoch).
    pub epoch_start: i64,
    followers: BTreeMap<i32, FollowerState>,
    /// An ISR change proposed to the controller and not yet seen in the metadata, with when.
    pub pending: Option<(Vec<i32>, i64)>,
}

impl LeaderState {
    /// A new leadership: every follower gets a full `replica.lag.time.max.ms` from `now`.
    pub fn new(
        me: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leo: i64,
        now_ms: i64,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != me)
            .map(|r| {
                (
                    *r,
                    FollowerState {
                        leo: -1,
                        last_caught_up_ms: now_ms,
                        last_fetch_leader_leo: -1,
                        last_fetch_ms: now_ms,
                    },
                )
            })
            .collect();
        LeaderState {
            me,
            leader_epoch,
            partition_epoch,
            replicas,
            isr,
            epoch_start: leo,
            followers,
            pending: None,
        }
    }

    /// The partition record changed within this leadership (ISR or replicas).
    pub fn update(&mut self, partition_epoch: i32, replicas: Vec<i32>, isr: Vec<i32>, now_ms: i64) {
        if partition_epoch != self.partition_epoch {
            self.pending = None;
        }
        for r in &replicas {
            if *r != self.me && !self.followers.contains_key(r) {
                self.followers.insert(
                    *r,
                    FollowerState {
                        leo: -1,
                        last_caught_up_ms: now_ms,
                        last_fetch_leader_leo: -1,
                        last_fetch_ms: now_ms,
                    },
                );
            }
        }
        self.followers.retain(|r, _| replicas.contains(r));
        self.partition_epoch = partition_epoch;
        self.replicas = replicas;
        self.isr = isr;
    }

    /// The "maximal ISR" (Kafka's): the ISR plus the replicas a pending change adds. The
    /// high watermark is computed over it, so that a replica the controller may record as
    /// in sync any moment holds everything below the high watermark.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut m = self.isr.clone();
        if let Some((wanted, _)) = &self.pending {
            m.extend(wanted.iter().filter(|r| !self.isr.contains(r)));
        }
        m
    }

    /// Alone in the maximal ISR: the high watermark is the leader's own log end.
    pub fn alone(&self) -> bool {
        self.maximal_isr().iter().all(|r| *r == self.me)
    }

    pub fn follower(&self, id: i32) -> Option<&FollowerState> {
        self.followers.get(&id)
    }

    /// A follower fetched from `fetch_offset` (so it holds everything below) while the
    /// leader's log ended at `leader_leo`. False if it is not a replica of the partition.
    pub fn on_fetch(
        &mut self,
        follower: i32,
        fetch_offset: i64,
        leader_leo: i64,
        now_ms: i64,
    ) -> bool {
        let Some(f) = self.followers.get_mut(&follower) else {
            return false;
        };
        f.leo = fetch_offset;
        if fetch_offset >= leader_leo {
            f.last_caught_up_ms = now_ms;
        } else if fetch_offset >= f.last_fetch_leader_leo && f.last_fetch_leader_leo >= 0 {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.last_fetch_leader_leo = leader_leo;
        f.last_fetch_ms = now_ms;
        true
    }

    /// The lowest log end offset over the maximal ISR (the leader's own is `leader_leo`); -1
    /// while a member has not fetched yet.
    pub fn high_watermark(&self, leader_leo: i64) -> i64 {
        self.maximal_isr()
            .iter()
            .map(|r| {
                if *r == self.me {
                    leader_leo
                } else {
                    self.followers.get(r).map_or(-1, |f| f.leo)
                }
            })
            .min()
            .unwrap_or(leader_leo)
    }

    /// The ISR the leader should ask for now, if it differs: members that have not caught up
    /// for `lag_max_ms` leave; live replicas that hold everything up to the high watermark
    /// (and the start of this epoch) join. Nothing while a proposal is pending (for up to
    /// `retry_ms`, after which it is proposed again).
    pub fn isr_change(
        &self,
        now_ms: i64,
        lag_max_ms: i64,
        high_watermark: i64,
        retry_ms: i64,
        live: impl Fn(i32) -> bool,
    ) -> Option<Vec<i32>> {
        if let Some((_, at)) = &self.pending
            && now_ms - at < retry_ms
        {
            return None;
        }
        let wanted: Vec<i32> = self
            .replicas
            .iter()
            .copied()
            .filter(|r| {
                if *r == self.me {
                    return true;
                }
                let Some(f) = self.followers.get(r) else {
                    return false;
                };
                if self.isr.contains(r) {
                    now_ms - f.last_caught_up_ms <= lag_max_ms
                } else {
                    live(*r) && f.leo >= high_watermark && f.leo >= self.epoch_start
                }
            })
            .collect();
        let mut a = wanted.clone();
        let mut b = self.isr.clone();
        a.sort_unstable();
        b.sort_unstable();
        (a != b).then_some(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader() -> LeaderState {
        LeaderState::new(1, 5, 9, vec![1, 2, 3], vec![1, 2, 3], 100, 0)
    }

    #[test]
    fn the_high_watermark_is_the_slowest_isr_member() {
        let mut l = leader();
        assert_eq!(l.high_watermark(120), -1, "no follower fetched yet");
        assert!(l.on_fetch(2, 110, 120, 10));
        assert!(l.on_fetch(3, 120, 120, 10));
        assert!(!l.on_fetch(4, 120, 120, 10), "not a replica");
        assert_eq!(l.high_watermark(120), 110);
        // Follower 2 leaves the ISR: the others decide.
        l.update(10, vec![1, 2, 3], vec![1, 3], 20);
        assert_eq!(l.high_watermark(120), 120);
        l.update(11, vec![1, 2, 3], vec![1], 20);
        assert!(l.alone());
    }

    #[test]
    fn a_lagging_follower_leaves_and_a_caught_up_one_joins() {
        let mut l = leader();
        let live = |_| true;
        // Both followers keep up until t=1000; then 3 stops fetching.
        l.on_fetch(2, 100, 100, 1000);
        l.on_fetch(3, 100, 100, 1000);
        assert_eq!(l.isr_change(1000, 30_000, 100, 2000, live), None);
        l.on_fetch(2, 150, 150, 31_500);
        assert_eq!(
            l.isr_change(31_500, 30_000, 150, 2000, live),
            Some(vec![1, 2])
        );
        // A follower that fetches but stays behind the leader's end also leaves.
        let mut m = leader();
        m.on_fetch(2, 100, 200, 1000);
        m.on_fetch(3, 200, 200, 1000);
        m.on_fetch(2, 150, 300, 20_000);
        m.on_fetch(3, 300, 300, 20_000);
        // 2 fetched from 150 >= the leader's end at its previous fetch (no: 150 < 200), so
        // its last catch-up is still t=0.
        assert_eq!(
            m.isr_change(31_000, 30_000, 150, 2000, live),
            Some(vec![1, 3])
        );
        // Back in: once it holds the high watermark and the epoch start, and is live.
        l.update(10, vec![1, 2, 3], vec![1, 2], 31_600);
        assert_eq!(l.isr_change(31_600, 30_000, 150, 2000, live), None);
        l.on_fetch(3, 150, 160, 32_000);
        assert_eq!(
            l.isr_change(32_000, 30_000, 150, 2000, |b| b != 3),
            None,
            "fenced"
        );
        assert_eq!(
            l.isr_change(32_000, 30_000, 150, 2000, live),
            Some(vec![1, 2, 3])
        );
        // Proposed: not again until the retry time, or until the metadata shows it.
        l.pending = Some((vec![1, 2, 3], 32_000));
        assert_eq!(l.isr_change(33_000, 30_000, 150, 2000, live), None);
        assert!(l.isr_change(34_500, 30_000, 150, 2000, live).is_some());
        l.update(11, vec![1, 2, 3], vec![1, 2, 3], 34_600);
        assert_eq!(l.pending, None);
    }

    #[test]
    fn a_replica_being_added_counts_for_the_high_watermark() {
        let mut l = LeaderState::new(1, 0, 0, vec![1, 2], vec![1], 100, 0);
        assert!(l.alone());
        l.on_fetch(2, 100, 100, 10);
        let isr = l.isr_change(10, 30_000, 100, 2000, |_| true).unwrap();
        assert_eq!(isr, vec![1, 2]);
        l.pending = Some((isr, 10));
        // Until the controller records it, the leader's appends wait for 2 as well.
        assert!(!l.alone());
        assert_eq!(l.high_watermark(150), 100);
        l.on_fetch(2, 150, 150, 20);
        assert_eq!(l.high_watermark(150), 150);
    }
}
