//! A dedicated controller (`process.roles=controller`): a voter of the metadata quorum that
//! serves no clients and holds no partitions. It keeps the metadata log under
//! `<log.dirs>/__cluster_metadata` and, while it leads, does the active controller's duties;
//! brokers reach it over the quorum's transport (registration, heartbeats, forwarded
//! proposals, metadata fetches).

use std::path::Path;
use std::sync::Arc;

use super::node::{ClusterNode, write_meta_properties};
use crate::config::Config;

/// The cluster id a previous start wrote in `meta.properties`, if any.
fn local_cluster_id(dir: &Path) -> anyhow::Result<Option<String>> {
    let path = dir.join("meta.properties");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cluster.id="))
        .map(|v| v.trim().to_string())
        .next())
}

/// Starts the controller and waits until the quorum agrees on the cluster id; refuses a data
/// dir written for another cluster.
pub async fn start(config: &Config) -> anyhow::Result<Arc<ClusterNode>> {
    let settings = config.cluster.clone().expect("a cluster node");
    std::fs::create_dir_all(&config.log_dir)?;
    let local = local_cluster_id(&config.log_dir)?;
    let bootstrap = local.clone().unwrap_or_else(crate::meta::new_cluster_id);
    let node = ClusterNode::start(config, settings, bootstrap).await?;
    let cluster_id = node.cluster_id().await;
    if let Some(local) = local
        && local != cluster_id
    {
        node.stop().await;
        anyhow::bail!(
            "data dir {} belongs to cluster {local}, but the metadata quorum's cluster is \
             {cluster_id}; refusing to start",
            config.log_dir.display()
        );
    }
    write_meta_properties(&config.log_dir, &cluster_id, config.node_id)?;
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cluster_id_of_meta_properties() {
        let dir = std::env::temp_dir().join(format!("fjord-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(local_cluster_id(&dir).unwrap(), None);
        write_meta_properties(&dir, "abc", 3).unwrap();
        assert_eq!(local_cluster_id(&dir).unwrap().as_deref(), Some("abc"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
