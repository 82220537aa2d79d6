//! AddOffsetsToTxn: a consumer group's offsets join the transaction (classic transactions;
//! KIP-890 clients go straight to TxnOffsetCommit): the group's `__consumer_offsets`
//! partition becomes one of the transaction's partitions, so that the coordinator's marker
//! reaches the group's coordinator.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: AddOffsetsToTxnRequest,
) -> anyhow::Result<AddOffsetsToTxnResponse> {
    let tid = req.transactional_id.as_str();
    let r = match broker
        .ensure_coordinator_topic(crate::coordinator_topics::Kind::Group)
        .await
    {
        Ok(()) if !Authz::of(broker, ctx).transactional_id(AclOperation::Write, tid) => {
            Err(ResponseError::TransactionalIdAuthorizationFailed)
        }
        Ok(()) if !Authz::of(broker, ctx).group(AclOperation::Read, req.group_id.as_str()) => {
            Err(ResponseError::GroupAuthorizationFailed)
        }
        Ok(()) => broker.txns.check(tid).and_then(|()| {
            broker.txns.add_offsets(
                tid,
                req.producer_id.0,
                req.producer_epoch,
                req.group_id.as_str(),
                broker.groups.journal.partition_of(req.group_id.as_str()),
            )
        }),
        Err(e) => Err(e),
    };
    let r = match r {
        Ok(()) => super::txn_durable(broker, tid).await,
        e => e,
    };
    let code = match r {
        Ok(()) => 0,
        Err(ResponseError::ProducerFenced) if ctx.api_version < 2 => {
            ResponseError::InvalidProducerEpoch.code()
        }
        Err(e) => e.code(),
    };
    Ok(AddOffsetsToTxnResponse::default().with_error_code(code))
}
