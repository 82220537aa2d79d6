//! AlterUserScramCredentials: sets (upsertions) and removes (deletions) users' SCRAM
//! credentials, with Kafka's checks: a user named twice in one request, an empty name, an
//! unknown mechanism, an iteration count outside 4096..=16384 and the deletion of a
//! credential that does not exist are refused for that user (a user may change several
//! mechanisms at once; the same mechanism twice is refused). The client sends the salted
//! password; the broker keeps only the keys derived from it. Each user's change is one
//! atomic metadata change (through the controller on a cluster node).

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};

use super::str_bytes;
use crate::Broker;
use crate::cluster::records::MetadataRecord;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;
use crate::security::scram::{ScramCredential, ScramMechanism, check_upsertion};
use crate::security::store::{self, SecurityData, credential_record, remove_credential_record};

type Refusal = (ResponseError, String);

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: AlterUserScramCredentialsRequest,
) -> anyhow::Result<AlterUserScramCredentialsResponse> {
    // Each user's changes, in the order users first appear; a (user, mechanism) pair named
    // twice refuses the user's whole change.
    let mut order: Vec<String> = Vec::new();
    let mut changes: BTreeMap<String, Vec<Result<MetadataRecord, Refusal>>> = BTreeMap::new();
    let mut pairs: HashSet<(String, i8)> = HashSet::new();
    let mut twice: HashSet<String> = HashSet::new();
    let data = broker.security.get();
    for d in &req.deletions {
        let user = d.name.to_string();
        if !pairs.insert((user.clone(), d.mechanism)) {
            twice.insert(user.clone());
        }
        let change = deletion(&data, &user, d.mechanism);
        changes.entry(user.clone()).or_default().push(change);
        order.push(user);
    }
    for u in &req.upsertions {
        let user = u.name.to_string();
        if !pairs.insert((user.clone(), u.mechanism)) {
            twice.insert(user.clone());
        }
        let change = check_upsertion(u.mechanism, u.iterations, &u.salted_password)
            .map_err(|(e, m)| (e, m.to_string()))
            .map(|m| {
                let c = ScramCredential::from_salted_password(
                    m,
                    &u.salt,
                    &u.salted_password,
                    u.iterations,
                );
                credential_record(&user, m, c)
            });
        changes.entry(user.clone()).or_default().push(change);
        order.push(user);
    }
    let mut results = Vec::new();
    let mut done = HashSet::new();
    let allowed = Authz::of(broker, ctx).cluster(AclOperation::Alter);
    for user in order {
        if !done.insert(user.clone()) {
            continue;
        }
        let user_changes = changes.remove(&user).unwrap_or_default();
        let outcome = if !allowed {
            Err((
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.".to_string(),
            ))
        } else if user.is_empty() {
            Err((
                ResponseError::UnacceptableCredential,
                "Username must not be empty".to_string(),
            ))
        } else if twice.contains(&user) {
            Err((
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request".to_string(),
            ))
        } else {
            match user_changes.into_iter().collect::<Result<Vec<_>, _>>() {
                Ok(records) => store::commit(broker, records).await,
                Err(e) => Err(e),
            }
        };
        let mut r = AlterUserScramCredentialsResult::default()
            .with_user(str_bytes(user.as_str()))
            .with_error_message(None);
        match outcome {
            Ok(()) => tracing::info!(user = %user, "SCRAM credentials changed"),
            Err((e, m)) => {
                r.error_code = e.code();
                r.error_message = Some(str_bytes(m));
            }
        }
        results.push(r);
    }
    Ok(AlterUserScramCredentialsResponse::default().with_results(results))
}

fn deletion(data: &SecurityData, user: &str, mechanism: i8) -> Result<MetadataRecord, Refusal> {
    let m = ScramMechanism::from_code(mechanism).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".to_string(),
    ))?;
    if data.scram_credential(user, m).is_none() {
        return Err((
            ResponseError::ResourceNotFound,
            "Attempt to delete a user credential that does not exist".to_string(),
        ));
    }
    Ok(remove_credential_record(user, m))
}
