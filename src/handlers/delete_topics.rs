//! DeleteTopics by name (all versions) and by topic id (v6+).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use uuid::Uuid;

use super::{topic_error, topic_name};
use crate::Broker;
use crate::connection::RequestContext;
use crate::meta::topics::TopicError;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> anyhow::Result<DeleteTopicsResponse> {
    // v0-5 send names; v6 sends (name | id) pairs.
    let targets: Vec<(Option<String>, Uuid)> = if ctx.api_version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.as_str().to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.as_str().to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default()
            .with_name(None)
            .with_error_message(None);
        let resolved = match (&name, id.is_nil()) {
            (Some(n), _) => Ok(n.clone()),
            (None, false) => broker
                .topics
                .get_by_id(id)
                .map(|t| t.name.clone())
                .ok_or(ResponseError::UnknownTopicId),
            (None, true) => Err(ResponseError::InvalidRequest),
        };
        let authz = Authz::of(broker, ctx);
        let resolved = resolved.and_then(|n| {
            if authz.topic(AclOperation::Delete, &n) {
                Ok(n)
            } else {
                r.name = Some(topic_name(&n));
                Err(ResponseError::TopicAuthorizationFailed)
            }
        });
        match resolved {
            Ok(n) => {
                r.name = Some(topic_name(&n));
                let deleted = if broker.cluster.is_some() {
                    // Through the controller; every node's mirror removes the data and the
                    // committed offsets.
                    broker.delete_topic_in_cluster(&n).await
                } else {
                    delete_local(broker, &n).await
                };
                match deleted {
                    Ok(id) => {
                        r.topic_id = id;
                        tracing::info!(topic = %n, "deleted topic");
                    }
                    Err(e) => {
                        let (code, msg) = topic_error(&e);
                        r.error_code = code;
                        if ctx.api_version >= 5 {
                            r.error_message =
                                msg.or_else(|| Some(topic_name(&default_message(code)).0));
                        }
                    }
                }
            }
            Err(e) => {
                r.topic_id = id;
                r.error_code = e.code();
                if ctx.api_version >= 5 {
                    r.error_message = Some(topic_name(&default_message(e.code())).0);
                }
            }
        }
        if ctx.api_version < 6 {
            r.topic_id = Uuid::nil();
        }
        responses.push(r);
    }
    super::unless_durable(
        super::durable(broker).await,
        responses.iter_mut().map(|r| &mut r.error_code),
    );
    Ok(DeleteTopicsResponse::default().with_responses(responses))
}

/// Deletes a single node's topic and its committed offsets; the topic's id.
async fn delete_local(broker: &Broker, name: &str) -> Result<Uuid, TopicError> {
    let (b, owned) = (broker.arc(), name.to_string());
    tokio::task::spawn_blocking(move || b.delete_topic_here(&owned))
        .await
        .unwrap_or_else(|e| Err(TopicError::Storage(e.to_string())))
}

/// Kafka's default message for an error code (what it sends when the exception has none).
fn default_message(code: i16) -> String {
    match code {
        3 => "This server does not host this topic-partition.".into(),
        100 => "This server does not host this topic ID.".into(),
        _ => format!("error {code}"),
    }
}
