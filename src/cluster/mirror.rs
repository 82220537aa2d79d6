//! Keeps this node's topic registry and partition logs in step with the metadata image:
//! topics the image has are created here under the image's ids, topics it no longer has are
//! deleted (with their committed offsets), partitions are added and topic configs replaced as
//! the image says, the dynamic broker and group configs are the image's, and replication
//! takes the roles the image gives this node (`replication::Replication::on_image`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;

use super::image::Image;
use crate::Broker;
use crate::meta::configs::DynamicConfigs;
use crate::meta::group_configs::GroupOverrides;

/// Brings the local registry in line with `image`. Errors are logged and retried with the
/// next image (or the next start). An image older than one already applied here (from a
/// voter that lags, after a restart) is skipped: the local state never goes back.
pub fn mirror(broker: &Broker, image: &Image) {
    match crate::meta::mirrored_offset(&broker.store) {
        Ok(done) if image.offset < done => {
            tracing::debug!(
                image = image.offset,
                applied = done,
                "skipping a metadata image older than the one applied here"
            );
            return;
        }
        Ok(done) if image.offset > done => {
            if let Err(e) = crate::meta::set_mirrored_offset(&broker.store, image.offset) {
                tracing::error!(error = %e, "cannot record the metadata offset; not applying");
                return;
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot read the metadata offset; not applying");
            return;
        }
    }
    let topics = &broker.topics;
    for t in image.topics.values() {
        let wanted = t.partitions.len() as i32;
        let local = topics.get(&t.name);
        if let Some(l) = &local
            && l.id != t.id
        {
            delete_local(broker, &t.name);
        }
        let local = topics.get(&t.name);
        let result = match local {
            None => topics
                .create_with_id(&t.name, t.id, wanted, t.configs.clone())
                .map(|_| tracing::info!(topic = %t.name, partitions = wanted, "topic created")),
            Some(l) => {
                let mut r = Ok(());
                if (l.partitions.len() as i32) < wanted {
                    r = topics.add_partitions(&t.name, wanted, false);
                }
                if r.is_ok() && l.configs != t.configs {
                    r = topics.set_configs(&t.name, t.configs.clone());
                }
                r
            }
        };
        if let Err(e) = result {
            tracing::error!(topic = %t.name, error = ?e, "cannot apply the topic's metadata locally");
            continue;
        }
    }
    for l in topics.list() {
        if !image.topic_ids.contains_key(&l.name) {
            delete_local(broker, &l.name);
        }
    }
    mirror_dynamic_configs(broker, image);
    broker.security.mirror(&image.security, image.offset);
    // Leaders and followers: epochs, high watermarks, fetchers.
    if let Some(r) = &broker.replication {
        r.on_image(broker, image);
    }
}

/// The dynamic broker and group configs this node uses, as the image holds them.
fn mirror_dynamic_configs(broker: &Broker, image: &Image) {
    let non_empty = |m: &BTreeMap<String, BTreeMap<String, String>>| {
        m.iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let wanted = DynamicConfigs {
        broker: image
            .broker_configs
            .get(&broker.node_id().to_string())
            .cloned()
            .unwrap_or_default(),
        cluster: image.broker_configs.get("").cloned().unwrap_or_default(),
        groups: non_empty(&image.group_configs),
    };
    let current = broker.dynamic.get().clone();
    if current == wanted {
        return;
    }
    let groups: BTreeSet<&String> = current.groups.keys().chain(wanted.groups.keys()).collect();
    for g in groups {
        if current.groups.get(g) != wanted.groups.get(g) {
            let configs = wanted.groups.get(g).cloned().unwrap_or_default();
            broker
                .groups
                .set_overrides(g, GroupOverrides::from_configs(&configs));
        }
    }
    match broker.dynamic.set(wanted) {
        Ok(()) => tracing::info!("dynamic broker and group configs updated"),
        Err(e) => tracing::error!(error = %e, "cannot store the dynamic configs"),
    }
}

fn delete_local(broker: &Broker, name: &str) {
    match broker.delete_topic_here(name) {
        Ok(_) => tracing::info!(topic = name, "topic deleted"),
        Err(e) => tracing::error!(topic = name, error = ?e, "cannot delete the topic locally"),
    }
}

/// Mirrors every new image until `shutdown`.
pub fn spawn(
    broker: Arc<Broker>,
    mut images: watch::Receiver<Arc<Image>>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                r = images.changed() => if r.is_err() { return },
            }
            let img = images.borrow_and_update().clone();
            let b = broker.clone();
            // Opening or removing partitions is disk work.
            let _ = tokio::task::spawn_blocking(move || mirror(&b, &img)).await;
        }
    })
}
