//! The security metadata: SCRAM credentials (and ACLs), kept like Kafka keeps them, in the
//! replicated metadata. On a cluster node they are part of the metadata image (changed
//! through the controller, mirrored here); on a single node they are persisted in the
//! store's `meta/security` tree. Either way a change is a list of metadata records, applied
//! by the same pure function.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use super::scram::{ScramCredential, ScramMechanism};
use crate::Broker;
use crate::cluster::node::ChangeError;
use crate::cluster::records::{MetadataRecord, RemoveUserScramCredential, UserScramCredential};

/// Credentials and ACLs; part of the cluster's metadata image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityData {
    /// SCRAM credentials by user, then mechanism.
    #[serde(default)]
    pub scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
}

impl SecurityData {
    pub fn scram_credential(&self, user: &str, m: ScramMechanism) -> Option<&ScramCredential> {
        self.scram.get(user)?.get(&m)
    }

    /// Applies a security record; Ok(false) for records that are not about security.
    /// Refuses (and leaves the data unchanged) what cannot apply.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<bool, String> {
        match record {
            MetadataRecord::UserScramCredential(r) => {
                let m = ScramMechanism::from_code(r.mechanism)
                    .ok_or_else(|| format!("unknown SCRAM mechanism {}", r.mechanism))?;
                if r.name.is_empty() {
                    return Err("empty SCRAM user name".into());
                }
                self.scram.entry(r.name.clone()).or_default().insert(
                    m,
                    ScramCredential {
                        salt: r.salt.clone(),
                        stored_key: r.stored_key.clone(),
                        server_key: r.server_key.clone(),
                        iterations: r.iterations,
                    },
                );
                Ok(true)
            }
            MetadataRecord::RemoveUserScramCredential(r) => {
                let m = ScramMechanism::from_code(r.mechanism)
                    .ok_or_else(|| format!("unknown SCRAM mechanism {}", r.mechanism))?;
                let user = self
                    .scram
                    .get_mut(&r.name)
                    .filter(|c| c.contains_key(&m))
                    .ok_or_else(|| format!("no {} credential for user {}", m.name(), r.name))?;
                user.remove(&m);
                if user.is_empty() {
                    self.scram.remove(&r.name);
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// The record that sets `user`'s credential for `m`.
pub fn credential_record(user: &str, m: ScramMechanism, c: ScramCredential) -> MetadataRecord {
    MetadataRecord::UserScramCredential(UserScramCredential {
        name: user.to_string(),
        mechanism: m.code(),
        salt: c.salt,
        stored_key: c.stored_key,
        server_key: c.server_key,
        iterations: c.iterations,
    })
}

/// The record that removes `user`'s credential for `m`.
pub fn remove_credential_record(user: &str, m: ScramMechanism) -> MetadataRecord {
    MetadataRecord::RemoveUserScramCredential(RemoveUserScramCredential {
        name: user.to_string(),
        mechanism: m.code(),
    })
}

/// This node's view of the security data.
pub struct SecurityStore {
    /// Where a single node persists it; None on a cluster node (the image holds it).
    tree: Option<sled::Tree>,
    current: RwLock<(Arc<SecurityData>, u64)>,
}

const KEY: &str = "data";

impl SecurityStore {
    /// A single node's, from its store.
    pub fn load(tree: sled::Tree) -> anyhow::Result<SecurityStore> {
        let data = match tree.get(KEY)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => SecurityData::default(),
        };
        Ok(SecurityStore {
            tree: Some(tree),
            current: RwLock::new((Arc::new(data), 0)),
        })
    }

    /// A cluster node's, filled by [`SecurityStore::mirror`].
    pub fn mirrored() -> SecurityStore {
        SecurityStore {
            tree: None,
            current: RwLock::new((Arc::default(), 0)),
        }
    }

    pub fn get(&self) -> Arc<SecurityData> {
        self.current.read().unwrap().0.clone()
    }

    /// Takes the image's security data (at metadata offset `offset`).
    pub fn mirror(&self, data: &SecurityData, offset: u64) {
        let mut cur = self.current.write().unwrap();
        if *cur.0 != *data {
            cur.0 = Arc::new(data.clone());
            tracing::info!("security metadata (credentials, ACLs) updated");
        }
        cur.1 = cur.1.max(offset);
    }

    fn applied_offset(&self) -> u64 {
        self.current.read().unwrap().1
    }

    /// Applies records on a single node: all or none, persisted before they take effect.
    fn apply_local(&self, records: &[MetadataRecord]) -> Result<(), (ResponseError, String)> {
        let tree = self.tree.as_ref().expect("a single node");
        let mut cur = self.current.write().unwrap();
        let mut next = (*cur.0).clone();
        for r in records {
            next.apply(r)
                .map_err(|m| (ResponseError::InvalidRequest, m))?;
        }
        let bytes = serde_json::to_vec(&next)
            .map_err(|e| (ResponseError::UnknownServerError, e.to_string()))?;
        tree.insert(KEY, bytes)
            .and_then(|_| tree.flush())
            .map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))?;
        cur.0 = Arc::new(next);
        Ok(())
    }
}

/// Makes a security change: through the controller on a cluster node (answered once this
/// node's copy shows it), locally on a single node. The records apply together or not at all.
pub async fn commit(
    broker: &Broker,
    records: Vec<MetadataRecord>,
) -> Result<(), (ResponseError, String)> {
    let Some(node) = &broker.cluster else {
        return broker.security.apply_local(&records);
    };
    let img = node.commit(records).await.map_err(|e| match e {
        ChangeError::Refused(e) => (ResponseError::InvalidRequest, e.to_string()),
        ChangeError::Unavailable(m) => (ResponseError::RequestTimedOut, m),
    })?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while broker.security.applied_offset() < img.offset && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
