//! This node's place in the metadata quorum: a voter (a controller, alone or combined with a
//! broker) or an observer (a broker only). The node's duties see one interface either way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::QuorumStatus;
use super::{Heartbeat, Liveness, MetadataObserver, MetadataQuorum, NodeId, ProposeError};
use crate::cluster::image::Image;
use crate::cluster::records::RecordBatch;

pub enum Member {
    Voter(MetadataQuorum),
    Observer(MetadataObserver),
}

impl Member {
    pub fn subscribe(&self) -> watch::Receiver<Arc<Image>> {
        match self {
            Member::Voter(q) => q.subscribe(),
            Member::Observer(o) => o.subscribe(),
        }
    }

    pub fn image(&self) -> Arc<Image> {
        match self {
            Member::Voter(q) => q.image(),
            Member::Observer(o) => o.image(),
        }
    }

    /// Waits until this node has applied the entry at `index`; the image then.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Option<Arc<Image>> {
        let mut rx = self.subscribe();
        let ready = tokio::time::timeout(timeout, rx.wait_for(|img| img.offset >= index)).await;
        match ready {
            Ok(Ok(img)) => Some(img.clone()),
            _ => None,
        }
    }

    pub fn leader(&self) -> Option<NodeId> {
        match self {
            Member::Voter(q) => q.leader(),
            Member::Observer(o) => o.leader(),
        }
    }

    /// True on the active controller only (never on an observer).
    pub fn is_leader(&self) -> bool {
        match self {
            Member::Voter(q) => q.is_leader(),
            Member::Observer(_) => false,
        }
    }

    pub fn status(&self) -> QuorumStatus {
        match self {
            Member::Voter(q) => q.status(),
            Member::Observer(o) => o.status(),
        }
    }

    pub async fn propose(&self, batch: impl Into<RecordBatch>) -> Result<u64, ProposeError> {
        match self {
            Member::Voter(q) => q.propose(batch).await,
            Member::Observer(o) => o.propose(batch.into()).await,
        }
    }

    /// The heartbeats taken while this node is the active controller (voters only).
    pub fn liveness(&self) -> Option<&Liveness> {
        match self {
            Member::Voter(q) => Some(q.liveness()),
            Member::Observer(_) => None,
        }
    }

    pub async fn heartbeat(&self, hb: Heartbeat, timeout: Duration) -> bool {
        match self {
            Member::Voter(q) => q.heartbeat(hb, timeout).await,
            Member::Observer(o) => o.heartbeat(hb, timeout).await,
        }
    }

    pub async fn leader_status(&self, timeout: Duration) -> Option<QuorumStatus> {
        match self {
            Member::Voter(q) => q.leader_status(timeout).await,
            Member::Observer(o) => o.leader_status(timeout).await,
        }
    }

    pub async fn stop(&self) {
        match self {
            Member::Voter(q) => q.stop().await,
            Member::Observer(o) => o.stop(),
        }
    }
}
