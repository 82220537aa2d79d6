//! The security metadata: SCRAM credentials (and ACLs), kept like Kafka keeps them, in the
//! replicated metadata. On a cluster node they are part of the metadata image (changed
//! through the controller, mirrored here); on a single node they are persisted in the
//! store's `meta/security` tree. Either way a change is a list of metadata records, applied
//! by the same pure function.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use super::acl::{AclBinding, Authorizer};
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
    /// The ACLs (CreateAcls, DeleteAcls).
    #[serde(default)]
    pub acls: BTreeSet<AclBinding>,
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
            MetadataRecord::AccessControlEntry(b) => {
                super::acl::validate_binding(b).map_err(|e| e.to_string())?;
                self.acls.insert(b.clone());
                Ok(true)
            }
            // Removing an ACL that is gone already (two DeleteAcls racing) changes nothing.
            MetadataRecord::RemoveAccessControlEntry(b) => {
                self.acls.remove(b);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Whether requests are authorized, and how (`authorizer.class.name`, `super.users`,
/// `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default)]
pub struct AuthorizerSettings {
    pub enabled: bool,
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

/// Kafka's KRaft authorizer class; the only one Fjord accepts.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

impl AuthorizerSettings {
    pub fn from_values(
        values: &BTreeMap<String, (String, crate::config::Source)>,
    ) -> anyhow::Result<AuthorizerSettings> {
        let get = |k: &str| values.get(k).map(|(v, _)| v.trim().to_string());
        let class = get("authorizer.class.name").unwrap_or_default();
        let enabled = match class.as_str() {
            "" => false,
            STANDARD_AUTHORIZER => true,
            other => anyhow::bail!(
                "authorizer.class.name={other}: Fjord's authorizer is Kafka's {STANDARD_AUTHORIZER}"
            ),
        };
        Ok(AuthorizerSettings {
            enabled,
            super_users: super::acl::parse_super_users(&get("super.users").unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("super.users: {e}"))?,
            allow_everyone_if_no_acl_found: super::acl::parse_allow_everyone_if_no_acl_found(
                &get("allow.everyone.if.no.acl.found").unwrap_or_default(),
            ),
        })
    }

    fn build(&self, data: &SecurityData) -> Option<Arc<Authorizer>> {
        self.enabled.then(|| {
            let mut a = Authorizer::new(
                self.super_users.clone(),
                self.allow_everyone_if_no_acl_found,
            );
            for b in &data.acls {
                a.add(b.clone());
            }
            Arc::new(a)
        })
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
    current: RwLock<Current>,
    settings: AuthorizerSettings,
}

struct Current {
    data: Arc<SecurityData>,
    /// The metadata offset mirrored last (cluster nodes).
    offset: u64,
    /// Built from `data` when it changes; None without an authorizer.
    authorizer: Option<Arc<Authorizer>>,
}

impl Current {
    fn new(data: SecurityData, settings: &AuthorizerSettings) -> Current {
        let authorizer = settings.build(&data);
        Current {
            data: Arc::new(data),
            offset: 0,
            authorizer,
        }
    }
}

const KEY: &str = "data";

impl SecurityStore {
    /// A single node's, from its store.
    pub fn load(tree: sled::Tree, settings: AuthorizerSettings) -> anyhow::Result<SecurityStore> {
        let data = match tree.get(KEY)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => SecurityData::default(),
        };
        Ok(SecurityStore {
            tree: Some(tree),
            current: RwLock::new(Current::new(data, &settings)),
            settings,
        })
    }

    /// A cluster node's, filled by [`SecurityStore::mirror`]. Until the first image is
    /// mirrored, only super users are authorized (Kafka answers AUTHORIZER_NOT_READY):
    /// with `allow.everyone.if.no.acl.found`, ACLs not loaded yet must not mean "none".
    pub fn mirrored(settings: AuthorizerSettings) -> SecurityStore {
        let mut current = Current::new(SecurityData::default(), &settings);
        if settings.enabled {
            current.authorizer = Some(Arc::new(Authorizer::new(
                settings.super_users.clone(),
                false,
            )));
        }
        SecurityStore {
            tree: None,
            current: RwLock::new(current),
            settings,
        }
    }

    pub fn get(&self) -> Arc<SecurityData> {
        self.current.read().unwrap().data.clone()
    }

    /// The ACL authorizer, if `authorizer.class.name` is set.
    pub fn authorizer(&self) -> Option<Arc<Authorizer>> {
        self.current.read().unwrap().authorizer.clone()
    }

    pub fn authorizer_enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Takes the image's security data (at metadata offset `offset`).
    pub fn mirror(&self, data: &SecurityData, offset: u64) {
        let mut cur = self.current.write().unwrap();
        if *cur.data != *data || cur.offset == 0 {
            cur.data = Arc::new(data.clone());
            cur.authorizer = self.settings.build(data);
            tracing::info!(
                acls = data.acls.len(),
                users = data.scram.len(),
                "security metadata (credentials, ACLs) updated"
            );
        }
        cur.offset = cur.offset.max(offset);
    }

    fn applied_offset(&self) -> u64 {
        self.current.read().unwrap().offset
    }

    /// Applies records on a single node: all or none, persisted before they take effect.
    fn apply_local(&self, records: &[MetadataRecord]) -> Result<(), (ResponseError, String)> {
        let tree = self.tree.as_ref().expect("a single node");
        let mut cur = self.current.write().unwrap();
        let mut next = (*cur.data).clone();
        for r in records {
            next.apply(r)
                .map_err(|m| (ResponseError::InvalidRequest, m))?;
        }
        let bytes = serde_json::to_vec(&next)
            .map_err(|e| (ResponseError::UnknownServerError, e.to_string()))?;
        tree.insert(KEY, bytes)
            .and_then(|_| tree.flush())
            .map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))?;
        cur.authorizer = self.settings.build(&next);
        cur.data = Arc::new(next);
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
    while broker.security.applied_offset() < img.offset {
        if tokio::time::Instant::now() >= deadline {
            return Err((
                ResponseError::RequestTimedOut,
                "committed, but not yet in effect on this broker".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
