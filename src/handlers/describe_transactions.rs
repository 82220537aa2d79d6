//! DescribeTransactions: the coordinator's view of each transactional id.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};

use super::{str_bytes, topic_name};
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeTransactionsRequest,
) -> anyhow::Result<DescribeTransactionsResponse> {
    // A transaction's lock may be held by a completion sending markers to other brokers:
    // read the states on the blocking pool.
    let b = broker.arc();
    let authz = Authz::of(broker, ctx);
    let states = tokio::task::spawn_blocking(move || describe(&b, &authz, &req)).await?;
    Ok(DescribeTransactionsResponse::default().with_transaction_states(states))
}

fn describe(
    broker: &Broker,
    authz: &Authz,
    req: &DescribeTransactionsRequest,
) -> Vec<TransactionState> {
    req.transactional_ids
        .iter()
        .map(|id| {
            // An unknown id answers zeros, as Kafka does.
            let mut s = TransactionState::default().with_transactional_id(id.clone());
            if !authz.transactional_id(AclOperation::Describe, id.as_str()) {
                s.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
                return s;
            }
            if let Err(e) = broker.txns.check(id.as_str()) {
                s.error_code = e.code();
                return s;
            }
            let Some(h) = broker.txns.get(id.as_str()) else {
                s.error_code = ResponseError::TransactionalIdNotFound.code();
                return s;
            };
            let m = h.lock().unwrap();
            s.transaction_state = str_bytes(m.state.name());
            s.transaction_timeout_ms = m.timeout_ms;
            s.transaction_start_time_ms = m.start_ms;
            s.producer_id = ProducerId(m.producer_id);
            s.producer_epoch = m.producer_epoch;
            let mut topics: Vec<TopicData> = Vec::new();
            // As Kafka: the partitions of topics the principal may not describe are left out.
            for (t, p) in &m.partitions {
                if !authz.sees(AclOperation::Describe, ResourceType::Topic, t) {
                    continue;
                }
                match topics.iter_mut().find(|x| x.topic.as_str() == t) {
                    Some(x) => x.partitions.push(*p),
                    None => topics.push(
                        TopicData::default()
                            .with_topic(topic_name(t))
                            .with_partitions(vec![*p]),
                    ),
                }
            }
            s.topics = topics;
            s
        })
        .collect()
}
