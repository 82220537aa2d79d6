//! DescribeUserScramCredentials: which SCRAM mechanisms (and iteration counts) each user has
//! a credential for, never the credential itself. No user list (or an empty one) describes
//! every user with a credential; a named user without one, or named twice, gets Kafka's
//! error for that user.

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::str_bytes;
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;
use crate::security::store::SecurityData;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeUserScramCredentialsRequest,
) -> anyhow::Result<DescribeUserScramCredentialsResponse> {
    if !Authz::of(broker, ctx).cluster(AclOperation::Describe) {
        return Ok(DescribeUserScramCredentialsResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code()));
    }
    let data = broker.security.get();
    let results = match req.users.as_deref() {
        None | Some([]) => data
            .scram
            .keys()
            .map(|user| described(&data, user))
            .collect(),
        Some(users) => {
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for u in users {
                *seen.entry(u.name.as_str()).or_default() += 1;
            }
            let mut out = Vec::new();
            for u in users {
                let name = u.name.as_str();
                match seen.get_mut(name) {
                    // Reported once, with the error.
                    Some(0) => continue,
                    Some(n) if *n > 1 => {
                        *n = 0;
                        out.push(failed(
                            name,
                            ResponseError::DuplicateResource,
                            "Cannot describe SCRAM credentials for the same user twice in a single request",
                        ));
                    }
                    _ if !data.scram.contains_key(name) => out.push(failed(
                        name,
                        ResponseError::ResourceNotFound,
                        "Attempt to describe a user credential that does not exist",
                    )),
                    _ => out.push(described(&data, name)),
                }
            }
            out
        }
    };
    Ok(DescribeUserScramCredentialsResponse::default()
        .with_error_message(None)
        .with_results(results))
}

fn described(data: &SecurityData, user: &str) -> DescribeUserScramCredentialsResult {
    let infos = data
        .scram
        .get(user)
        .into_iter()
        .flatten()
        .map(|(m, c)| {
            CredentialInfo::default()
                .with_mechanism(m.code())
                .with_iterations(c.iterations)
        })
        .collect();
    DescribeUserScramCredentialsResult::default()
        .with_user(str_bytes(user))
        .with_error_message(None)
        .with_credential_infos(infos)
}

fn failed(user: &str, e: ResponseError, msg: &str) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(str_bytes(user))
        .with_error_code(e.code())
        .with_error_message(Some(str_bytes(msg)))
}
