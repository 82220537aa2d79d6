//! EndTxn: commit or abort. COMMIT/ABORT markers go to every partition of the transaction
//! and staged offsets are committed (or dropped). v5 (KIP-890) bumps the producer epoch on
//! every completion and returns the new one.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: EndTxnRequest,
) -> anyhow::Result<EndTxnResponse> {
    let v = ctx.api_version;
    let txns = broker.txns.clone();
    let tid = req.transactional_id.to_string();
    let (pid, epoch, commit) = (req.producer_id.0, req.producer_epoch, req.committed);
    let allowed = Authz::of(broker, ctx).transactional_id(AclOperation::Write, &tid);
    let denied = Err(ResponseError::TransactionalIdAuthorizationFailed);
    let result = match broker
        .txns
        .check(&tid)
        .and(if allowed { Ok(()) } else { denied })
    {
        Ok(()) => {
            tokio::task::spawn_blocking(move || txns.end_txn(&tid, pid, epoch, commit, v >= 5))
                .await?
        }
        Err(e) => Err(e),
    };
    let result = match result {
        Ok(r) => super::txn_durable(broker, req.transactional_id.as_str())
            .await
            .map(|()| r),
        e => e,
    };
    let mut resp = EndTxnResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match result {
        Ok((pid, epoch)) => {
            if v >= 5 {
                resp.producer_id = ProducerId(pid);
                resp.producer_epoch = epoch;
            }
        }
        Err(ResponseError::ProducerFenced) if v < 2 => {
            resp.error_code = ResponseError::InvalidProducerEpoch.code()
        }
        Err(e) => resp.error_code = e.code(),
    }
    Ok(resp)
}
