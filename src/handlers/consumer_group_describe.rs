//! ConsumerGroupDescribe (KIP-848 groups): epochs, assignor, and each member's current and
//! target assignment.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

use super::{str_bytes, topic_name};
use crate::Broker;
use crate::connection::RequestContext;
use crate::group::Group;
use crate::group::consumer::Assignment as Owned;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authz::Authz;

/// Member type (v1): 1 = a member speaking the consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;

fn assignment(broker: &Broker, a: &Owned) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                let name = broker
                    .topics
                    .get_by_id(*id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(topic_name(&name))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> anyhow::Result<ConsumerGroupDescribeResponse> {
    let groups = req
        .group_ids
        .iter()
        .map(|gid| {
            let mut d = DescribedGroup::default().with_group_id(gid.clone());
            if req.include_authorized_operations {
                d.authorized_operations = Authz::of(broker, ctx)
                    .operations(crate::security::acl::ResourceType::Group, gid.as_str());
            }
            let not_found = |mut d: DescribedGroup, msg: String| {
                d.error_code = ResponseError::GroupIdNotFound.code();
                d.error_message = Some(str_bytes(msg));
                d.group_state = str_bytes("");
                d
            };
            if let Err(e) = Authz::of(broker, ctx)
                .group_check(AclOperation::Describe, gid.as_str())
                .and_then(|()| broker.groups.check(gid.as_str()))
            {
                d.error_code = e.code();
                return d;
            }
            let Some(h) = broker.groups.get(gid.as_str()) else {
                return not_found(d, format!("Group {} not found.", gid.as_str()));
            };
            let g = crate::group::lock(&h);
            let Group::Consumer(c) = &*g else {
                return not_found(
                    d,
                    format!("Group {} is not a consumer group.", gid.as_str()),
                );
            };
            d.group_state = str_bytes(c.state_name());
            d.group_epoch = c.group_epoch;
            d.assignment_epoch = c.assignment_epoch;
            d.assignor_name = str_bytes(c.assignor.clone());
            d.members = c
                .members
                .values()
                .map(|m| {
                    let mut x = Member::default()
                        .with_member_id(str_bytes(m.id.clone()))
                        .with_instance_id(m.instance_id.clone().map(str_bytes))
                        .with_rack_id(m.rack_id.clone().map(str_bytes))
                        .with_member_epoch(m.member_epoch)
                        .with_client_id(str_bytes(m.client_id.clone()))
                        .with_client_host(str_bytes(m.client_host.clone()))
                        .with_subscribed_topic_names(
                            m.subscribed.iter().map(|t| topic_name(t)).collect(),
                        )
                        .with_subscribed_topic_regex(Some(str_bytes(
                            m.regex.clone().unwrap_or_default(),
                        )))
                        .with_assignment(assignment(broker, &m.assigned))
                        .with_target_assignment(assignment(
                            broker,
                            c.target.get(&m.id).unwrap_or(&Owned::new()),
                        ));
                    if ctx.api_version >= 1 {
                        x.member_type = MEMBER_TYPE_CONSUMER;
                    }
                    x
                })
                .collect();
            // As Kafka: a group whose members are assigned (or are to be assigned) a topic
            // the principal may not describe is not shown, only refused.
            let authz = Authz::of(broker, ctx);
            let hidden = d
                .members
                .iter()
                .flat_map(|m| {
                    m.assignment
                        .topic_partitions
                        .iter()
                        .chain(&m.target_assignment.topic_partitions)
                })
                .any(|tp| !authz.sees(AclOperation::Describe, ResourceType::Topic, tp.topic_name.as_str()));
            if hidden {
                return DescribedGroup::default()
                    .with_group_id(gid.clone())
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes(
                        "The group has described topic(s) that the client is not authorized to describe."
                            .to_string(),
                    )));
            }
            d
        })
        .collect();
    Ok(ConsumerGroupDescribeResponse::default().with_groups(groups))
}
