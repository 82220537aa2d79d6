//! DescribeProducers: the idempotent/transactional producers a partition has seen, with
//! their epoch, last sequence and open transaction.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> anyhow::Result<DescribeProducersResponse> {
    let authz = Authz::of(broker, ctx);
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let allowed = authz.topic(AclOperation::Read, t.name.as_str());
            let topic = broker.topics.get(t.name.as_str());
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    let mut r = PartitionResponse::default().with_partition_index(*p);
                    if !allowed {
                        r.error_code = ResponseError::TopicAuthorizationFailed.code();
                        return r;
                    }
                    let Some(log) = topic.as_ref().and_then(|x| x.partition(*p)) else {
                        r.error_code = ResponseError::UnknownTopicOrPartition.code();
                        return r;
                    };
                    let open = log.open_transactions();
                    r.active_producers = log
                        .producers()
                        .into_iter()
                        .map(|(pid, epoch, last_seq, last_ts)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(pid))
                                .with_producer_epoch(epoch as i32)
                                .with_last_sequence(last_seq)
                                .with_last_timestamp(last_ts)
                                .with_coordinator_epoch(0)
                                .with_current_txn_start_offset(
                                    open.iter()
                                        .find(|(x, _)| *x == pid)
                                        .map(|(_, o)| *o)
                                        .unwrap_or(-1),
                                )
                        })
                        .collect();
                    r
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Ok(DescribeProducersResponse::default().with_topics(topics))
}
