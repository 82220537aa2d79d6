//! DeleteRecords: move a partition's log start offset forward (offset -1 = the high
//! watermark); whole batches before it are dropped and consumers see it as the new earliest.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> anyhow::Result<DeleteRecordsResponse> {
    // Advancing a log start writes the index, flushes sled and deletes segment files: on
    // the blocking pool, not an async worker.
    // DELETE on each topic; the denied ones are answered here.
    let authz = Authz::of(broker, ctx);
    let (req, denied): (DeleteRecordsRequest, Vec<DeleteRecordsTopicResult>) = {
        let mut req = req;
        let (ok, no): (Vec<_>, Vec<_>) = std::mem::take(&mut req.topics)
            .into_iter()
            .partition(|t| authz.topic(AclOperation::Delete, t.name.as_str()));
        req.topics = ok;
        let denied = no
            .into_iter()
            .map(|t| {
                DeleteRecordsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                DeleteRecordsPartitionResult::default()
                                    .with_partition_index(p.partition_index)
                                    .with_low_watermark(-1)
                                    .with_error_code(
                                        kafka_protocol::ResponseError::TopicAuthorizationFailed
                                            .code(),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
        (req, denied)
    };
    let b = broker.arc();
    let mut topics = tokio::task::spawn_blocking(move || delete(&b, &req)).await?;
    topics.extend(denied);
    super::unless_durable(
        super::durable(broker).await,
        topics
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut().map(|p| &mut p.error_code)),
    );
    Ok(DeleteRecordsResponse::default().with_topics(topics))
}

fn delete(broker: &Broker, req: &DeleteRecordsRequest) -> Vec<DeleteRecordsTopicResult> {
    req.topics
        .iter()
        .map(|t| {
            let topic = broker.topics.get(t.name.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    // The coordinators' state lives there: Kafka refuses it too.
                    if t.name.as_str() == crate::group::journal::TOPIC
                        || t.name.as_str() == crate::txn::coordinator::TOPIC
                    {
                        r.error_code = ResponseError::InvalidTopicException.code();
                        return r;
                    }
                    let Some(log) = topic.as_ref().and_then(|x| x.partition(p.partition_index))
                    else {
                        r.error_code = ResponseError::UnknownTopicOrPartition.code();
                        return r;
                    };
                    let hw = log.high_watermark();
                    let target = if p.offset == -1 { hw } else { p.offset };
                    if target < 0 || target > hw {
                        r.error_code = ResponseError::OffsetOutOfRange.code();
                        return r;
                    }
                    match log.advance_log_start(target) {
                        Ok(start) => {
                            r.low_watermark = start;
                            tracing::info!(
                                topic = t.name.as_str(),
                                partition = p.partition_index,
                                log_start = start,
                                "records deleted"
                            );
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "delete records failed");
                            r.error_code = ResponseError::KafkaStorageError.code();
                        }
                    }
                    r
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect()
}
