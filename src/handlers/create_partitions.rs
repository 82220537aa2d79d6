//! CreatePartitions: grow a topic's partition count (never shrink), honouring validate_only.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{str_bytes, topic_error};
use crate::Broker;
use crate::connection::RequestContext;
use crate::meta::topics::TopicError;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> anyhow::Result<CreatePartitionsResponse> {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        if !Authz::of(broker, ctx).topic(AclOperation::Alter, t.name.as_str()) {
            r.error_code = kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
            r.error_message = Some(super::str_bytes("Authorization failed."));
            results.push(r);
            continue;
        }
        let res = match &t.assignments {
            _ if broker.cluster.is_some() => {
                let assignment = t.assignments.as_ref().map(|a| {
                    a.iter()
                        .map(|x| x.broker_ids.iter().map(|b| b.0).collect())
                        .collect()
                });
                broker
                    .create_partitions_in_cluster(
                        t.name.as_str(),
                        t.count,
                        assignment,
                        req.validate_only,
                    )
                    .await
            }
            Some(a)
                if a.iter()
                    .any(|x| x.broker_ids.iter().any(|b| b.0 != broker.node_id())) =>
            {
                Err(TopicError::InvalidReplicationFactor(format!(
                    "Assignments may only name broker {}",
                    broker.node_id()
                )))
            }
            // Opening the new partitions is blocking work: on the blocking pool.
            _ => {
                let (topics, name) = (broker.topics.clone(), t.name.as_str().to_string());
                let (count, validate_only) = (t.count, req.validate_only);
                tokio::task::spawn_blocking(move || {
                    topics.add_partitions(&name, count, validate_only)
                })
                .await
                .unwrap_or_else(|e| Err(TopicError::Storage(e.to_string())))
            }
        };
        if let Err(e) = res {
            let (code, msg) = topic_error(&e);
            r.error_code = code;
            r.error_message = msg.or_else(|| Some(str_bytes("")));
            if e == TopicError::UnknownTopic {
                r.error_message = Some(str_bytes(format!(
                    "The topic '{}' does not exist.",
                    t.name.as_str()
                )));
            }
        } else if !req.validate_only {
            tracing::info!(topic = t.name.as_str(), count = t.count, "added partitions");
        }
        results.push(r);
    }
    if !req.validate_only {
        super::unless_durable(
            super::durable(broker).await,
            results.iter_mut().map(|r| &mut r.error_code),
        );
    }
    Ok(CreatePartitionsResponse::default().with_results(results))
}
