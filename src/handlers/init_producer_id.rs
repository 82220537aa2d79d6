//! InitProducerId. Without a transactional id: a fresh, never-reused producer id with epoch 0
//! for an idempotent producer. With one: the transaction coordinator fences any previous
//! instance (epoch bump) and aborts the transaction it left open.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> anyhow::Result<InitProducerIdResponse> {
    let mut resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let result = match &req.transactional_id {
        Some(tid) if !tid.is_empty() => {
            let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
            if (pid == -1) != (epoch == -1) {
                Err(ResponseError::InvalidRequest)
            } else if !Authz::of(broker, ctx).transactional_id(AclOperation::Write, tid) {
                Err(ResponseError::TransactionalIdAuthorizationFailed)
            } else if let Err(e) = broker.txns.check(tid) {
                Err(e)
            } else {
                // The coordinator takes ids under its locks, without waiting: have a block.
                if let Err(e) = broker.pids.ready().await {
                    tracing::warn!(error = %e, "no producer id block");
                }
                let txns = broker.txns.clone();
                let tid = tid.to_string();
                let timeout = req.transaction_timeout_ms;
                // Aborting an open transaction writes markers: keep it off the async threads.
                tokio::task::spawn_blocking(move || {
                    txns.init_producer_id(&tid, timeout, pid, epoch)
                })
                .await?
            }
        }
        Some(_) => Err(ResponseError::InvalidRequest),
        // An idempotent producer: IDEMPOTENT_WRITE on the cluster or WRITE on a topic.
        None if !Authz::of(broker, ctx).idempotent_write() => {
            Err(ResponseError::ClusterAuthorizationFailed)
        }
        None => broker.pids.next().await.map(|id| (id, 0)).map_err(|e| {
            tracing::error!(error = %e, "cannot allocate producer id");
            // In a cluster the block comes from the controller: retriable, as Kafka's
            // broker answers while it waits for one.
            if broker.cluster.is_some() {
                ResponseError::CoordinatorLoadInProgress
            } else {
                ResponseError::KafkaStorageError
            }
        }),
    };
    let result = match (result, &req.transactional_id) {
        (Ok(r), Some(tid)) if !tid.is_empty() => {
            super::txn_durable(broker, tid.as_str()).await.map(|()| r)
        }
        (Ok(r), _) => super::durable(broker).await.map(|()| r),
        (e, _) => e,
    };
    match result {
        Ok((pid, epoch)) => {
            resp.producer_id = ProducerId(pid);
            resp.producer_epoch = epoch;
        }
        Err(e) => {
            // Clients before v4 do not know PRODUCER_FENCED.
            let e = if e == ResponseError::ProducerFenced && ctx.api_version < 4 {
                ResponseError::InvalidProducerEpoch
            } else {
                e
            };
            resp.error_code = e.code();
        }
    }
    Ok(resp)
}
