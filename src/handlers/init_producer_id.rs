//! InitProducerId for idempotent producers: a fresh, never-reused producer id with epoch 0.
//! (Kafka also allocates a new id for a non-transactional producer that asks to bump its
//! epoch.) Transactional ids need the transaction coordinator, which is not built yet.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::Broker;
use crate::connection::RequestContext;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> anyhow::Result<InitProducerIdResponse> {
    let mut resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(tid) = &req.transactional_id {
        tracing::warn!(peer = %ctx.peer, transactional_id = tid.as_str(), "transactional producer refused: no transaction coordinator yet");
        resp.error_code = ResponseError::CoordinatorNotAvailable.code();
        return Ok(resp);
    }
    match crate::txn::next_producer_id(&broker.store) {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate producer id");
            resp.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    Ok(resp)
}
