//! Producer ids. A single node hands them out from its store's persisted id generator. In a
//! cluster every broker takes blocks of ids from the controller (a `ProducerIds` record in
//! the metadata log, as Kafka's AllocateProducerIds does), so that no two brokers ever hand
//! out the same id: an idempotent producer that bootstraps through one broker must not share
//! its id with one that bootstrapped through another, or the partition leaders fence one of
//! them.
//!
//! Callers that hold locks (the transaction coordinator) take ids without waiting
//! ([`ProducerIds::try_next`]); a spare block is fetched in the background before the
//! current one runs out, so they find one at hand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cluster::node::ClusterNode;
use crate::log::Store;

/// Ids per block (Kafka's controller hands out 1000 at a time).
pub const BLOCK_SIZE: i64 = 1000;

/// A broker's blocks: the one it takes ids from and a spare. Pure, so its rules are tested
/// on their own.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Blocks {
    /// `[next, end)` of the current block.
    next: i64,
    end: i64,
    spare: Option<(i64, i64)>,
}

impl Blocks {
    /// The next id, moving to the spare block when the current one is used up.
    pub fn take(&mut self) -> Option<i64> {
        if self.next >= self.end {
            let (first, end) = self.spare.take()?;
            self.next = first;
            self.end = end;
        }
        let id = self.next;
        self.next += 1;
        Some(id)
    }

    /// Whether a new block should be fetched: no spare, and at most half of the current one
    /// left.
    pub fn wants_block(&self) -> bool {
        self.spare.is_none() && (self.end - self.next) * 2 <= BLOCK_SIZE
    }

    pub fn add(&mut self, first: i64, end: i64) {
        if self.next >= self.end {
            self.next = first;
            self.end = end;
        } else {
            self.spare = Some((first, end));
        }
    }
}

pub enum ProducerIds {
    Local(Arc<Store>),
    Cluster(Arc<ClusterIds>),
}

pub struct ClusterIds {
    node: Arc<ClusterNode>,
    blocks: Mutex<Blocks>,
    /// The lowest id this broker may ask for: above every id its data dir handed out on its
    /// own (before producer ids came from the controller).
    floor: i64,
    /// One block request at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl ProducerIds {
    pub fn local(store: Arc<Store>) -> Self {
        ProducerIds::Local(store)
    }

    /// Blocks from the controller; `store`'s own generator gives the floor.
    pub fn cluster(node: Arc<ClusterNode>, store: &Store) -> anyhow::Result<Self> {
        let floor = store.next_id()? as i64 + 1;
        Ok(ProducerIds::Cluster(Arc::new(ClusterIds {
            node,
            blocks: Mutex::new(Blocks::default()),
            floor,
            fetching: tokio::sync::Mutex::new(()),
        })))
    }

    /// An id never handed out before, waiting for a block if needed.
    pub async fn next(&self) -> anyhow::Result<i64> {
        match self {
            ProducerIds::Local(store) => super::next_producer_id(store),
            ProducerIds::Cluster(c) => {
                for _ in 0..3 {
                    if let Some(id) = c.take() {
                        return Ok(id);
                    }
                    c.fetch_block().await?;
                }
                anyhow::bail!("no producer id block at hand")
            }
        }
    }

    /// An id without waiting: `None` when no block is at hand (one is being fetched; the
    /// caller answers with a retriable error).
    pub fn try_next(&self) -> anyhow::Result<Option<i64>> {
        match self {
            ProducerIds::Local(store) => super::next_producer_id(store).map(Some),
            ProducerIds::Cluster(c) => Ok(c.take()),
        }
    }

    /// Makes sure a block is at hand (before work that calls [`Self::try_next`] under locks).
    pub async fn ready(&self) -> anyhow::Result<()> {
        if let ProducerIds::Cluster(c) = self {
            let empty = {
                let b = crate::group::lock(&c.blocks);
                b.next >= b.end && b.spare.is_none()
            };
            if empty {
                c.fetch_block().await?;
            }
        }
        Ok(())
    }
}

impl ClusterIds {
    fn take(self: &Arc<Self>) -> Option<i64> {
        let (id, wants) = {
            let mut b = crate::group::lock(&self.blocks);
            let id = b.take();
            (id, b.wants_block())
        };
        if wants && let Ok(rt) = tokio::runtime::Handle::try_current() {
            let me = self.clone();
            rt.spawn(async move {
                if let Err(e) = me.fetch_block().await {
                    tracing::warn!(error = %e, "cannot fetch a producer id block");
                }
            });
        }
        id
    }

    /// Asks the controller for a block (unless another task just got one).
    async fn fetch_block(&self) -> anyhow::Result<()> {
        let _one = self.fetching.lock().await;
        if !crate::group::lock(&self.blocks).wants_block() {
            return Ok(());
        }
        let (first, end) = self
            .node
            .allocate_producer_ids(self.floor, BLOCK_SIZE, Duration::from_secs(10))
            .await?;
        tracing::debug!(first, end, "producer id block");
        crate::group::lock(&self.blocks).add(first, end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_current_block_then_the_spare() {
        let mut b = Blocks::default();
        assert_eq!(b.take(), None, "no block yet");
        assert!(b.wants_block());
        b.add(5000, 5000 + BLOCK_SIZE);
        assert_eq!(b.take(), Some(5000));
        assert!(!b.wants_block(), "almost a whole block left");
        for _ in 0..BLOCK_SIZE / 2 {
            b.take();
        }
        assert!(b.wants_block(), "half used: time for a spare");
        b.add(9000, 9000 + BLOCK_SIZE);
        assert!(!b.wants_block(), "a spare is at hand");
        let mut last = 0;
        while let Some(id) = b.take() {
            last = id;
            if id >= 9000 {
                break;
            }
        }
        assert_eq!(last, 9000, "the spare follows the current block");
        assert!(!b.wants_block());
        let mut n = 1;
        while b.take().is_some() {
            n += 1;
        }
        assert_eq!(n, BLOCK_SIZE, "every id of the spare, once");
    }
}
