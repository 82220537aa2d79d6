//! ListTransactions with state, producer id, duration (v1) and id pattern (v2) filters.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use super::{now_ms, str_bytes};
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;
use crate::txn::coordinator::TxnState;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListTransactionsRequest,
) -> anyhow::Result<ListTransactionsResponse> {
    let authz = Authz::of(broker, ctx);
    let known: Vec<&str> = TxnState::ALL.iter().map(|s| s.name()).collect();
    let unknown_states: Vec<_> = req
        .state_filters
        .iter()
        .filter(|s| !known.contains(&s.as_str()))
        .cloned()
        .collect();
    let pattern = match (&req.transactional_id_pattern, ctx.api_version >= 2) {
        (Some(p), true) if !p.is_empty() => {
            match regex::Regex::new(&format!("^(?:{})$", p.as_str())) {
                Ok(r) => Some(r),
                Err(_) => {
                    return Ok(ListTransactionsResponse::default().with_error_code(
                        kafka_protocol::ResponseError::InvalidRegularExpression.code(),
                    ));
                }
            }
        }
        _ => None,
    };
    let now = now_ms();
    let states = broker
        .txns
        .all()
        .into_iter()
        .filter_map(|(id, h)| {
            let m = h.lock().unwrap();
            let state = m.state.name();
            if !req.state_filters.is_empty()
                && !req.state_filters.iter().any(|s| s.as_str() == state)
            {
                return None;
            }
            if !req.producer_id_filters.is_empty()
                && !req.producer_id_filters.iter().any(|p| p.0 == m.producer_id)
            {
                return None;
            }
            // Duration filter: only transactions running longer than this many ms.
            if ctx.api_version >= 1
                && req.duration_filter >= 0
                && (m.start_ms < 0 || now - m.start_ms < req.duration_filter)
            {
                return None;
            }
            if pattern.as_ref().is_some_and(|r| !r.is_match(&id)) {
                return None;
            }
            // Only the transactional ids the principal may DESCRIBE.
            if !authz.sees(
                AclOperation::Describe,
                crate::security::acl::ResourceType::TransactionalId,
                &id,
            ) {
                return None;
            }
            Some(
                TransactionState::default()
                    .with_transactional_id(TransactionalId(str_bytes(id)))
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_transaction_state(str_bytes(state)),
            )
        })
        .collect();
    Ok(ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown_states)
        .with_transaction_states(states))
}
