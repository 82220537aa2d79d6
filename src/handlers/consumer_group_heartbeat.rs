//! ConsumerGroupHeartbeat (KIP-848): join, stay, reconcile and leave in one request, with the
//! assignment computed by the broker.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::group::consumer::{self, HeartbeatRequest};
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> anyhow::Result<ConsumerGroupHeartbeatResponse> {
    let group_id = req.group_id.as_str();
    // The broker's settings with this group's configs (consumer.heartbeat.interval.ms, ...).
    let settings = broker.groups.settings_for(group_id);
    let mut resp = ConsumerGroupHeartbeatResponse::default()
        .with_heartbeat_interval_ms(settings.consumer_heartbeat_interval_ms)
        .with_member_epoch(-1);
    // An error answer carries no epoch or interval (zeros), as Kafka's does.
    let fail = |mut r: ConsumerGroupHeartbeatResponse, e: ResponseError, msg: String| {
        r.error_code = e.code();
        r.error_message = Some(str_bytes(msg));
        r.member_epoch = 0;
        r.heartbeat_interval_ms = 0;
        r
    };
    if group_id.is_empty() {
        return Ok(fail(
            resp,
            ResponseError::InvalidGroupId,
            "group id must not be empty".into(),
        ));
    }
    let authz = Authz::of(broker, ctx);
    if let Err(e) = authz
        .group_check(AclOperation::Read, group_id)
        .and_then(|()| broker.groups.check(group_id))
    {
        return Ok(fail(
            resp,
            e,
            format!("This broker does not coordinate group {group_id} now."),
        ));
    }
    // As Kafka: every subscribed topic must be describable, or the whole heartbeat is
    // refused (TOPIC_AUTHORIZATION_FAILED, no message) before the group is touched.
    if let Some(names) = &req.subscribed_topic_names
        && !names
            .iter()
            .all(|t| authz.topic(AclOperation::Describe, t.as_str()))
    {
        let mut r = fail(resp, ResponseError::TopicAuthorizationFailed, String::new());
        r.error_message = None;
        return Ok(r);
    }
    if ctx.api_version >= 1 && req.member_id.is_empty() {
        return Ok(fail(
            resp,
            ResponseError::InvalidRequest,
            "MemberId can't be empty.".into(),
        ));
    }
    let hb = HeartbeatRequest {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed: req
            .subscribed_topic_names
            .as_ref()
            .map(|v| v.iter().map(|t| t.to_string()).collect()),
        regex: req.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|s| s.to_string()),
        owned: req.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
                .collect::<consumer::Assignment>()
        }),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let topics = &broker.topics;
    let lookup = |name: &str| topics.get(name).map(|t| (t.id, t.partitions.len() as i32));
    // A regex subscription matches only the topics the member may describe (Kafka drops
    // the others silently).
    let all = || {
        topics
            .list()
            .iter()
            .filter(|t| authz.sees(AclOperation::Describe, ResourceType::Topic, &t.name))
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    let default_assignor = broker.groups.default_assignor();
    // Converting an empty classic group and acting on it happen under one lock, so a
    // concurrent JoinGroup cannot convert it back in between.
    let (result, wrote) = broker
        .groups
        .with_group(group_id, true, |g| {
            let r = match g.consumer_for_heartbeat(group_id, &default_assignor) {
                Ok(c) => c.heartbeat(hb, &lookup, &all, &settings, std::time::Instant::now()),
                Err(e) => consumer::HeartbeatResult {
                    error: Some((e, format!("Group {group_id} is not a consumer group."))),
                    ..Default::default()
                },
            };
            (r, broker.groups.persist(group_id, g))
        })
        .unwrap_or_else(|| (Default::default(), Ok(false)));
    // Acknowledged means persisted: a member told it joined (or got partitions) must still
    // be known after a crash.
    let stored = match wrote {
        Ok(wrote) => crate::group::durable(broker, group_id, wrote).await,
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        return Ok(fail(
            resp,
            e,
            format!("The state of group {group_id} could not be stored."),
        ));
    }
    if let Some((e, msg)) = result.error {
        return Ok(fail(resp, e, msg));
    }
    resp.member_id = Some(str_bytes(result.member_id));
    resp.member_epoch = result.member_epoch;
    if result.member_epoch < 0 {
        // A member that left has nothing more to heartbeat (Kafka answers 0).
        resp.heartbeat_interval_ms = 0;
    }
    resp.assignment = result.assignment.map(|a| {
        Assignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(id, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(ps.into_iter().collect())
                })
                .collect(),
        )
    });
    Ok(resp)
}
