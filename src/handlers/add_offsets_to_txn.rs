//! AddOffsetsToTxn: a consumer group's offsets join the transaction (classic transactions;
//! KIP-890 clients go straight to TxnOffsetCommit).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::Broker;
use crate::connection::RequestContext;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: AddOffsetsToTxnRequest,
) -> anyhow::Result<AddOffsetsToTxnResponse> {
    let r = broker.txns.add_offsets(
        req.transactional_id.as_str(),
        req.producer_id.0,
        req.producer_epoch,
        req.group_id.as_str(),
    );
    let r = match r {
        Ok(()) => super::durable(broker).await,
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
