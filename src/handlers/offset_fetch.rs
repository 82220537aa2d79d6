//! OffsetFetch: committed offsets for one group (v0-7) or many (v8+), for the named
//! partitions or, with a null topic list, everything the group committed. Partitions with no
//! commit answer offset -1.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use super::{str_bytes, topic_name};
use crate::Broker;
use crate::connection::RequestContext;
use crate::group::Group;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authz::Authz;

/// (topic, [(partition, offset, leader epoch, metadata)]) for one group.
type GroupOffsets = Vec<(String, Vec<(i32, i64, i32, String)>)>;

fn fetch_group(
    broker: &Broker,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<GroupOffsets, ResponseError> {
    let offsets = &broker.groups.offsets;
    match wanted {
        Some(list) => list
            .into_iter()
            .map(|(topic, parts)| {
                let rows = parts
                    .into_iter()
                    .map(|p| match offsets.get(group, &topic, p) {
                        Ok(Some(c)) => Ok((p, c.offset, c.leader_epoch, c.metadata)),
                        Ok(None) => Ok((p, -1, -1, String::new())),
                        Err(_) => Err(ResponseError::KafkaStorageError),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((topic, rows))
            })
            .collect(),
        None => {
            let all = offsets
                .all(group)
                .map_err(|_| ResponseError::KafkaStorageError)?;
            let mut out: GroupOffsets = Vec::new();
            for (t, p, c) in all {
                match out.last_mut() {
                    Some((name, rows)) if *name == t => {
                        rows.push((p, c.offset, c.leader_epoch, c.metadata))
                    }
                    _ => out.push((t, vec![(p, c.offset, c.leader_epoch, c.metadata)])),
                }
            }
            Ok(out)
        }
    }
}

/// KIP-848 members name themselves and their epoch; a stale one must not read offsets.
fn check_member(
    broker: &Broker,
    group: &str,
    member_id: Option<&str>,
    epoch: i32,
) -> Result<(), ResponseError> {
    let Some(member_id) = member_id else {
        return Ok(());
    };
    if epoch < 0 && member_id.is_empty() {
        return Ok(());
    }
    match broker.groups.get(group) {
        Some(h) => match &*crate::group::lock(&h) {
            Group::Consumer(g) => g.validate_member_epoch(member_id, epoch),
            Group::Classic(_) => Ok(()),
        },
        None => Err(ResponseError::UnknownMemberId),
    }
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: OffsetFetchRequest,
) -> anyhow::Result<OffsetFetchResponse> {
    let v = ctx.api_version;
    // Topics the principal may not DESCRIBE: left out of an all-topics answer, refused by
    // name otherwise (TOPIC_AUTHORIZATION_FAILED), as in Kafka.
    let authz = Authz::of(broker, ctx);
    if v >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let id = g.group_id.as_str();
                let wanted = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let result = Authz::of(broker, ctx)
                    .group_check(AclOperation::Describe, id)
                    .and_then(|()| broker.groups.check(id))
                    .and_then(|()| check_member(broker, id, g.member_id.as_deref(), g.member_epoch))
                    .and_then(|_| fetch_group(broker, id, wanted));
                let mut r = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match result {
                    Ok(rows) => {
                        let all = g.topics.is_none();
                        r.topics = rows
                            .into_iter()
                            .filter(|(t, _)| {
                                !all || authz.sees(AclOperation::Describe, ResourceType::Topic, t)
                            })
                            .map(|(t, parts)| {
                                let denied = !authz.topic(AclOperation::Describe, &t);
                                OffsetFetchResponseTopics::default()
                                    .with_name(topic_name(&t))
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|(p, o, e, m)| {
                                                if denied {
                                                    return OffsetFetchResponsePartitions::default(
                                                    )
                                                    .with_partition_index(p)
                                                    .with_committed_offset(-1)
                                                    .with_error_code(
                                                        ResponseError::TopicAuthorizationFailed
                                                            .code(),
                                                    );
                                                }
                                                let x = OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_committed_offset(o)
                                                    .with_committed_leader_epoch(e)
                                                    .with_metadata(Some(str_bytes(m)));
                                                // A transaction holds a newer offset for this
                                                // partition: require_stable callers must wait.
                                                if req.require_stable
                                                    && broker.groups.has_pending_offset(id, &t, p)
                                                {
                                                    x.with_error_code(
                                                        ResponseError::UnstableOffsetCommit.code(),
                                                    )
                                                } else {
                                                    x
                                                }
                                            })
                                            .collect(),
                                    )
                            })
                            .collect();
                    }
                    Err(e) => r.error_code = e.code(),
                }
                r
            })
            .collect();
        return Ok(OffsetFetchResponse::default().with_groups(groups));
    }
    let id = req.group_id.as_str();
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let mut resp = OffsetFetchResponse::default();
    match Authz::of(broker, ctx)
        .group_check(AclOperation::Describe, id)
        .and_then(|()| broker.groups.check(id))
        .and_then(|()| fetch_group(broker, id, wanted))
    {
        Ok(rows) => {
            let authz = Authz::of(broker, ctx);
            let all = req.topics.is_none();
            resp.topics = rows
                .into_iter()
                .filter(|(t, _)| !all || authz.sees(AclOperation::Describe, ResourceType::Topic, t))
                .map(|(t, parts)| {
                    let denied = !authz.topic(AclOperation::Describe, &t);
                    OffsetFetchResponseTopic::default()
                        .with_name(topic_name(&t))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, o, e, m)| {
                                    if denied {
                                        return OffsetFetchResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(-1)
                                            .with_error_code(
                                                ResponseError::TopicAuthorizationFailed.code(),
                                            );
                                    }
                                    let mut x = OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                        .with_metadata(Some(str_bytes(m)));
                                    if v >= 5 {
                                        x.committed_leader_epoch = e;
                                    }
                                    x
                                })
                                .collect(),
                        )
                })
                .collect();
        }
        Err(e) => {
            if v >= 2 {
                resp.error_code = e.code();
            }
        }
    }
    Ok(resp)
}
