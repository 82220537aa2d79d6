//! OffsetForLeaderEpoch: consumers use it after a leader change to detect log truncation.
//! Each partition has had one leader epoch so far, starting at its log start, so the end
//! offset of the current epoch is the log end offset, and an older epoch ends where the
//! current one began (the log start).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::fetch::check_epoch;
use crate::Broker;
use crate::connection::RequestContext;

pub async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> anyhow::Result<OffsetForLeaderEpochResponse> {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = broker.topics.get(t.topic.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let log = topic.as_ref().and_then(|t| t.partition(p.partition));
                    let Some(log) = log else {
                        r.error_code = ResponseError::UnknownTopicOrPartition.code();
                        return r;
                    };
                    if let Some(t) = &topic
                        && broker.check_leader(t, p.partition).is_err()
                    {
                        r.error_code = ResponseError::NotLeaderOrFollower.code();
                        return r;
                    }
                    let ours = log.leader_epoch();
                    if let Err(e) = check_epoch(p.current_leader_epoch, ours) {
                        r.error_code = e.code();
                        return r;
                    }
                    if p.leader_epoch == ours {
                        r.leader_epoch = ours;
                        r.end_offset = log.high_watermark();
                    } else if p.leader_epoch < ours {
                        // Kafka answers with the largest epoch <= the requested one; none
                        // exists before ours, so the answer is "undefined" (-1, -1).
                    } else {
                        // A requested epoch newer than ours: also undefined.
                    }
                    r
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    Ok(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
