//! Cluster metadata: topics and their configs, the cluster id, and this broker's identity.

pub mod configs;
pub mod group_configs;
pub mod topics;

use base64::Engine as _;

use crate::log::Store;

/// Loads the cluster id, minting one on first start. Kafka's cluster ids are a random UUID in
/// URL-safe base64 without padding (22 characters); tools display it, some validate its shape.
pub fn cluster_id(store: &Store) -> anyhow::Result<String> {
    let tree = store.meta_tree("cluster")?;
    if let Some(v) = tree.get("cluster.id")? {
        return Ok(String::from_utf8_lossy(&v).into_owned());
    }
    let id = new_cluster_id();
    tree.insert("cluster.id", id.as_bytes())?;
    tree.flush()?;
    Ok(id)
}

/// A fresh cluster id in Kafka's shape.
pub fn new_cluster_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// Whether this data dir has been part of a cluster, and the cluster id it holds (a single
/// node's, or its cluster's).
pub fn cluster_membership(store: &Store) -> anyhow::Result<(bool, Option<String>)> {
    let tree = store.meta_tree("cluster")?;
    let joined = tree.get("cluster.joined")?.is_some();
    let id = tree
        .get("cluster.id")?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    Ok((joined, id))
}

/// The offset of the newest metadata image this node has begun to apply to its local topics
/// (0 before any). The local state must never go back to an older image: a node that
/// restarts and first hears from a voter that lags would otherwise delete topics it created
/// from a newer one.
pub fn mirrored_offset(store: &Store) -> anyhow::Result<u64> {
    let tree = store.meta_tree("cluster")?;
    Ok(tree
        .get("mirrored.offset")?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

/// Records (durably) that the image at `offset` is being applied to the local topics.
pub fn set_mirrored_offset(store: &Store, offset: u64) -> anyhow::Result<()> {
    let tree = store.meta_tree("cluster")?;
    tree.insert("mirrored.offset", &offset.to_be_bytes()[..])?;
    tree.flush()?;
    Ok(())
}

/// Records that this data dir belongs to cluster `id` from now on.
pub fn join_cluster(store: &Store, id: &str) -> anyhow::Result<()> {
    let tree = store.meta_tree("cluster")?;
    tree.insert("cluster.id", id.as_bytes())?;
    tree.insert("cluster.joined", &b"1"[..])?;
    tree.flush()?;
    Ok(())
}
