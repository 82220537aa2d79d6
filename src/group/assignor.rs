//! Server-side assignors for KIP-848 consumer groups: `uniform` (balanced and sticky) and
//! `range` (per-topic contiguous ranges, co-partitioning friendly).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::consumer::Assignment;

pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
}

pub struct MemberSubscription {
    pub id: String,
    pub topics: BTreeSet<Uuid>,
    /// The member's previous target, kept where possible so partitions do not move needlessly.
    pub previous: Assignment,
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// Balanced and sticky: every member ends within one partition of every other member that
/// can take the same partitions; partitions stay with their previous member when that keeps
/// the balance.
pub fn uniform(
    members: &[MemberSubscription],
    topics: &BTreeMap<Uuid, TopicInfo>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.clone(), Assignment::new()))
        .collect();
    if members.is_empty() {
        return out;
    }
    // Every partition someone subscribes to, with its eligible members.
    let mut partitions: Vec<(Uuid, i32, Vec<usize>)> = Vec::new();
    for (tid, info) in topics {
        let eligible: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].topics.contains(tid))
            .collect();
        if eligible.is_empty() {
            continue;
        }
        for p in 0..info.partitions {
            partitions.push((*tid, p, eligible.clone()));
        }
    }
    // The fair share when everyone can take everything; with mixed subscriptions it is an
    // upper bound that the least-loaded rule below refines.
    let quota = partitions.len().div_ceil(members.len());
    let mut loads = vec![0usize; members.len()];
    let mut unassigned = Vec::new();
    for (tid, p, eligible) in &partitions {
        let prev = eligible
            .iter()
            .copied()
            .find(|&i| members[i].previous.get(tid).is_some_and(|s| s.contains(p)));
        match prev {
            Some(i) if loads[i] < quota => {
                out.get_mut(&members[i].id)
                    .unwrap()
                    .entry(*tid)
                    .or_default()
                    .insert(*p);
                loads[i] += 1;
            }
            _ => unassigned.push((*tid, *p, eligible)),
        }
    }
    for (tid, p, eligible) in unassigned {
        let i = *eligible.iter().min_by_key(|&&i| (loads[i], i)).unwrap();
        out.get_mut(&members[i].id)
            .unwrap()
            .entry(tid)
            .or_default()
            .insert(p);
        loads[i] += 1;
    }
    // With mixed subscriptions the sticky pass can leave a member two above another that could
    // take its partitions: move partitions until no such pair remains.
    loop {
        let mut moved = false;
        for tid in topics.keys() {
            let eligible: Vec<usize> = (0..members.len())
                .filter(|&i| members[i].topics.contains(tid))
                .collect();
            let Some(&hi) = eligible.iter().max_by_key(|&&i| loads[i]) else {
                continue;
            };
            let Some(&lo) = eligible.iter().min_by_key(|&&i| loads[i]) else {
                continue;
            };
            if loads[hi] > loads[lo] + 1 {
                let from = out.get_mut(&members[hi].id).unwrap();
                if let Some(set) = from.get_mut(tid)
                    && let Some(p) = set.iter().next_back().copied()
                {
                    set.remove(&p);
                    if set.is_empty() {
                        from.remove(tid);
                    }
                    out.get_mut(&members[lo].id)
                        .unwrap()
                        .entry(*tid)
                        .or_default()
                        .insert(p);
                    loads[hi] -= 1;
                    loads[lo] += 1;
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    debug_assert_eq!(out.values().map(count).sum::<usize>(), partitions.len());
    out
}

/// Per topic, the subscribed members sorted by id take contiguous ranges; the first
/// `partitions % members` get one extra.
pub fn range(
    members: &[MemberSubscription],
    topics: &BTreeMap<Uuid, TopicInfo>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.clone(), Assignment::new()))
        .collect();
    for (tid, info) in topics {
        let mut subs: Vec<&MemberSubscription> =
            members.iter().filter(|m| m.topics.contains(tid)).collect();
        if subs.is_empty() {
            continue;
        }
        subs.sort_by(|a, b| a.id.cmp(&b.id));
        let n = subs.len() as i32;
        let (per, extra) = (info.partitions / n, info.partitions % n);
        let mut next = 0;
        for (i, m) in subs.iter().enumerate() {
            let take = per + if (i as i32) < extra { 1 } else { 0 };
            if take > 0 {
                out.get_mut(&m.id)
                    .unwrap()
                    .entry(*tid)
                    .or_default()
                    .extend(next..next + take);
            }
            next += take;
        }
        let _ = &info.name;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, topics: &[Uuid]) -> MemberSubscription {
        MemberSubscription {
            id: id.into(),
            topics: topics.iter().copied().collect(),
            previous: Assignment::new(),
        }
    }

    #[test]
    fn uniform_balances_and_sticks() {
        let t = Uuid::new_v4();
        let topics: BTreeMap<Uuid, TopicInfo> = [(
            t,
            TopicInfo {
                name: "t".into(),
                partitions: 7,
            },
        )]
        .into();
        let members = vec![sub("a", &[t]), sub("b", &[t]), sub("c", &[t])];
        let first = uniform(&members, &topics);
        let sizes: Vec<usize> = first.values().map(count).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 7);
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        // Drop c: a and b keep what they had.
        let members = vec![
            MemberSubscription {
                previous: first["a"].clone(),
                ..sub("a", &[t])
            },
            MemberSubscription {
                previous: first["b"].clone(),
                ..sub("b", &[t])
            },
        ];
        let second = uniform(&members, &topics);
        assert!(first["a"][&t].is_subset(&second["a"][&t]));
        assert!(first["b"][&t].is_subset(&second["b"][&t]));
        assert_eq!(count(&second["a"]) + count(&second["b"]), 7);
    }

    #[test]
    fn range_is_contiguous() {
        let t = Uuid::new_v4();
        let topics: BTreeMap<Uuid, TopicInfo> = [(
            t,
            TopicInfo {
                name: "t".into(),
                partitions: 5,
            },
        )]
        .into();
        let r = range(&[sub("b", &[t]), sub("a", &[t])], &topics);
        assert_eq!(r["a"][&t], [0, 1, 2].into());
        assert_eq!(r["b"][&t], [3, 4].into());
    }
}
