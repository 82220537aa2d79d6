//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka serves them: the broker
//! keeps, per user and mechanism, only the salt, the iteration count and the two derived
//! keys (`StoredKey`, `ServerKey`), never the password or the salted password. Credentials
//! are set with AlterUserScramCredentials (the client sends the salted password, from which
//! the keys are derived here) and live in the replicated metadata ([`super::store`]).

use std::sync::Arc;

use base64::Engine as _;
use ring::{digest, hmac, rand::SecureRandom};
use serde::{Deserialize, Serialize};

use super::sasl::{AuthFailed, Mechanism, Step};
use super::store::SecurityData;

/// Kafka's `ScramMechanism`: the ids AlterUserScramCredentials and DescribeUserScramCredentials
/// carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

/// Kafka's bounds on a credential's iteration count (both mechanisms).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

impl ScramMechanism {
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(Self::Sha256),
            2 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn code(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-256" => Some(Self::Sha256),
            "SCRAM-SHA-512" => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac_alg(self) -> hmac::Algorithm {
        match self {
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest_alg(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha512 => &digest::SHA512,
        }
    }

    pub(super) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_alg(), key), data)
            .as_ref()
            .to_vec()
    }

    pub(super) fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_alg(), data).as_ref().to_vec()
    }

    /// The output length of the mechanism's hash: a salted password must have it.
    pub fn key_len(self) -> usize {
        self.digest_alg().output_len()
    }

    /// `Hi(password, salt, i)` of RFC 5802 (PBKDF2 with the mechanism's HMAC).
    pub fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let alg = match self {
            Self::Sha256 => ring::pbkdf2::PBKDF2_HMAC_SHA256,
            Self::Sha512 => ring::pbkdf2::PBKDF2_HMAC_SHA512,
        };
        let mut out = vec![0u8; self.key_len()];
        ring::pbkdf2::derive(
            alg,
            std::num::NonZeroU32::new(iterations.max(1)).expect("nonzero"),
            salt,
            password.as_bytes(),
            &mut out,
        );
        out
    }
}

/// What the broker keeps of one user's password for one mechanism (Kafka's
/// `UserScramCredentialRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl ScramCredential {
    /// The credential for a salted password, as the controller derives it from an
    /// AlterUserScramCredentials upsertion.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }
}

/// Why an upsertion is refused (Kafka's `ScramControlManager` checks), as (error, message).
pub fn check_upsertion(
    mechanism: i8,
    iterations: i32,
    salted_password: &[u8],
) -> Result<ScramMechanism, (kafka_protocol::ResponseError, &'static str)> {
    use kafka_protocol::ResponseError as E;
    let m = ScramMechanism::from_code(mechanism)
        .ok_or((E::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"))?;
    if iterations < MIN_ITERATIONS {
        return Err((E::UnacceptableCredential, "Too few iterations"));
    }
    if iterations > MAX_ITERATIONS {
        return Err((E::UnacceptableCredential, "Too many iterations"));
    }
    if salted_password.is_empty() {
        return Err((E::UnacceptableCredential, "Empty salted password"));
    }
    Ok(m)
}

/// The server side of one SCRAM exchange. Credentials are looked up in the snapshot of the
/// security data taken when the exchange started.
pub struct ScramServer {
    mechanism: ScramMechanism,
    data: Arc<SecurityData>,
    state: State,
}

enum State {
    /// Waiting for client-first-message.
    First,
    /// Sent server-first-message; waiting for client-final-message.
    Final {
        user: String,
        credential: ScramCredential,
        nonce: String,
        /// client-first-message-bare "," server-first-message
        auth_prefix: String,
        gs2_header: String,
    },
    Finished,
}

fn failed(msg: &str) -> AuthFailed {
    AuthFailed(format!("Authentication failed: {msg}"))
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism, data: Arc<SecurityData>) -> ScramServer {
        ScramServer {
            mechanism,
            data,
            state: State::First,
        }
    }

    fn first(&mut self, input: &[u8]) -> Result<Step, AuthFailed> {
        let bad = || failed("invalid SCRAM client-first-message");
        let text = std::str::from_utf8(input).map_err(|_| bad())?;
        // gs2-header: "n," or "y," (no channel binding; "p=" needs one we do not offer),
        // then an optional "a=authzid", then ",".
        let (cb, rest) = text.split_once(',').ok_or_else(bad)?;
        if cb != "n" && cb != "y" {
            return Err(failed("channel binding is not supported"));
        }
        let (authzid, bare) = rest.split_once(',').ok_or_else(bad)?;
        let authzid = match authzid {
            "" => None,
            a => Some(unescape(a.strip_prefix("a=").ok_or_else(bad)?).ok_or_else(bad)?),
        };
        let gs2_header = text[..text.len() - bare.len()].to_string();
        let mut attrs = bare.split(',');
        let user = attrs
            .next()
            .and_then(|a| a.strip_prefix("n="))
            .and_then(unescape)
            .filter(|u| !u.is_empty())
            .ok_or_else(bad)?;
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or_else(bad)?;
        for ext in attrs {
            // Extensions: Kafka's only one is tokenauth (delegation tokens), not served here.
            let (k, _) = ext.split_once('=').ok_or_else(bad)?;
            if k == "tokenauth" {
                return Err(failed("delegation token authentication is not supported"));
            }
        }
        if let Some(a) = &authzid
            && *a != user
        {
            return Err(failed(
                "Client requested an authorization id that is different from username",
            ));
        }
        let credential = self
            .data
            .scram_credential(&user, self.mechanism)
            .cloned()
            .ok_or_else(|| failed("Invalid user credentials"))?;
        let mut server_nonce = [0u8; 24];
        ring::rand::SystemRandom::new()
            .fill(&mut server_nonce)
            .map_err(|_| failed("no randomness"))?;
        let nonce = format!(
            "{client_nonce}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(server_nonce)
        );
        let server_first = format!(
            "r={nonce},s={},i={}",
            base64::engine::general_purpose::STANDARD.encode(&credential.salt),
            credential.iterations
        );
        self.state = State::Final {
            user,
            credential,
            nonce,
            auth_prefix: format!("{bare},{server_first}"),
            gs2_header,
        };
        Ok(Step::Continue(server_first.into_bytes()))
    }

    fn last(&mut self, input: &[u8]) -> Result<Step, AuthFailed> {
        let State::Final {
            user,
            credential,
            nonce,
            auth_prefix,
            gs2_header,
        } = std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(failed("unexpected SCRAM message"));
        };
        let bad = || failed("invalid SCRAM client-final-message");
        let text = std::str::from_utf8(input).map_err(|_| bad())?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(bad)?;
        let mut attrs = without_proof.split(',');
        let b64 = &base64::engine::general_purpose::STANDARD;
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .and_then(|c| b64.decode(c).ok())
            .ok_or_else(bad)?;
        if binding != gs2_header.as_bytes() {
            return Err(failed("Invalid channel binding"));
        }
        let got_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(bad)?;
        // As Kafka checks it: the nonce must end with the one the server sent (some
        // librdkafka versions send the client nonce again in front of it).
        if !got_nonce.ends_with(&nonce) {
            return Err(failed("Invalid nonce"));
        }
        let proof = b64.decode(proof).map_err(|_| bad())?;
        let m = self.mechanism;
        let auth_message = format!("{auth_prefix},{without_proof}");
        let signature = m.hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(failed("Invalid client credentials"));
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let computed = m.hash(&client_key);
        let same = computed.iter().zip(&credential.stored_key).fold(
            computed.len() ^ credential.stored_key.len(),
            |acc, (a, b)| acc | usize::from(a ^ b),
        ) == 0;
        if !same {
            return Err(failed("Invalid client credentials"));
        }
        let verifier = m.hmac(&credential.server_key, auth_message.as_bytes());
        Ok(Step::Done {
            response: format!("v={}", b64.encode(verifier)).into_bytes(),
            user,
        })
    }
}

impl Mechanism for ScramServer {
    fn step(&mut self, input: &[u8]) -> Result<Step, AuthFailed> {
        match self.state {
            State::First => self.first(input),
            State::Final { .. } => self.last(input),
            State::Finished => Err(failed("unexpected SCRAM message")),
        }
    }
}

/// RFC 5802 saslname: `=2C` is ',' and `=3D` is '='; any other '=' is invalid.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
