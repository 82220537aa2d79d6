//! SASL on `SASL_PLAINTEXT` and `SASL_SSL` listeners, as Kafka does it: the client sends
//! SaslHandshake naming a mechanism of `sasl.enabled.mechanisms`, then the mechanism's
//! messages in SaslAuthenticate requests (v0 handshakes: as raw size-prefixed tokens); any
//! other request before that (but ApiVersions) closes the connection. Mechanisms: PLAIN,
//! with the users of the listener's JAAS setting
//! (`listener.name.<l>.plain.sasl.jaas.config=...PlainLoginModule required user_alice="...";`),
//! and SCRAM-SHA-256/512 with the credentials of the replicated metadata ([`super::scram`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::oauthbearer::{OAuthBearer, OAuthBearerConfig};
use super::scram::{ScramMechanism, ScramServer};
use super::store::SecurityData;
use crate::config::Source;
use crate::config::security::listener_value;

type Values = BTreeMap<String, (String, Source)>;

/// The mechanisms Fjord serves.
pub const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// One SASL listener's mechanisms and users.
#[derive(Debug)]
pub struct SaslListener {
    pub listener: String,
    /// Enabled and served, in the configured order.
    pub mechanisms: Vec<String>,
    plain_users: HashMap<String, String>,
    oauth: Option<OAuthBearerConfig>,
    /// `connections.max.reauth.ms` by mechanism (0: sessions do not expire unless the
    /// credential does).
    reauth_ms: HashMap<String, i64>,
}

/// Why authentication failed: the message the client gets with SASL_AUTHENTICATION_FAILED
/// (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailed(pub String);

/// What a mechanism answers to a client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this to the client and wait for its next message.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `response` (maybe empty).
    Done { response: Vec<u8>, user: String },
}

/// A mechanism's server side for one authentication.
pub trait Mechanism: Send {
    fn step(&mut self, input: &[u8]) -> Result<Step, AuthFailed>;

    /// When the credential just authenticated expires (epoch ms), if it does (an
    /// OAUTHBEARER token's `exp`): the session ends then at the latest (KIP-368).
    fn session_expiry_ms(&self) -> Option<i64> {
        None
    }
}

impl SaslListener {
    pub fn new(values: &Values, listener: &str) -> anyhow::Result<SaslListener> {
        let enabled = listener_value(values, listener, "sasl.enabled.mechanisms")
            .unwrap_or_else(|| "GSSAPI".to_string());
        let mut mechanisms = Vec::new();
        for m in enabled.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            if MECHANISMS.contains(&m) {
                mechanisms.push(m.to_string());
            } else {
                tracing::warn!(
                    listener,
                    mechanism = m,
                    "SASL mechanism not served by Fjord; ignored"
                );
            }
        }
        if mechanisms.is_empty() {
            anyhow::bail!(
                "sasl.enabled.mechanisms ({enabled}) names none Fjord serves: {}",
                MECHANISMS.join(", ")
            );
        }
        let mut plain_users = HashMap::new();
        if mechanisms.iter().any(|m| m == "PLAIN") {
            let jaas = jaas_config(values, listener, "plain").ok_or_else(|| {
                anyhow::anyhow!(
                    "PLAIN needs its users in listener.name.{}.plain.sasl.jaas.config",
                    listener.to_ascii_lowercase()
                )
            })?;
            let options = parse_jaas(&jaas)?;
            for (k, v) in options {
                if let Some(user) = k.strip_prefix("user_") {
                    plain_users.insert(user.to_string(), v);
                }
            }
            if plain_users.is_empty() {
                anyhow::bail!("the PLAIN JAAS setting defines no user_<name>=\"<password>\"");
            }
        }
        let oauth = if mechanisms.iter().any(|m| m == "OAUTHBEARER") {
            Some(OAuthBearerConfig::from_values(values, listener)?)
        } else {
            None
        };
        let mut reauth_ms = HashMap::new();
        for m in &mechanisms {
            let scoped = format!(
                "listener.name.{}.{}.connections.max.reauth.ms",
                listener.to_ascii_lowercase(),
                m.to_ascii_lowercase()
            );
            let v = values
                .get(&scoped)
                .map(|(v, _)| v.clone())
                .or_else(|| listener_value(values, listener, "connections.max.reauth.ms"));
            if let Some(v) = v {
                let ms: i64 = v.trim().parse().map_err(|_| {
                    anyhow::anyhow!("connections.max.reauth.ms: {v} is not a number")
                })?;
                reauth_ms.insert(m.clone(), ms.max(0));
            }
        }
        Ok(SaslListener {
            listener: listener.to_string(),
            mechanisms,
            plain_users,
            oauth,
            reauth_ms,
        })
    }

    /// A new authentication with `mechanism`, if it is enabled here; SCRAM looks users up
    /// in `data`.
    pub fn start(
        &self,
        mechanism: &str,
        data: Arc<SecurityData>,
    ) -> Option<Box<dyn Mechanism + '_>> {
        if !self.mechanisms.iter().any(|m| m == mechanism) {
            return None;
        }
        match mechanism {
            "PLAIN" => Some(Box::new(Plain {
                users: &self.plain_users,
            })),
            "OAUTHBEARER" => self
                .oauth
                .as_ref()
                .map(|c| Box::new(OAuthBearer::new(c)) as Box<dyn Mechanism>),
            m => ScramMechanism::from_name(m)
                .map(|m| Box::new(ScramServer::new(m, data)) as Box<dyn Mechanism>),
        }
    }
}

impl SaslListener {
    /// Whether OAUTHBEARER is served with unsecured (unsigned) tokens: anyone can then be
    /// anyone.
    pub fn accepts_unsecured_tokens(&self) -> bool {
        self.oauth.as_ref().is_some_and(|o| o.is_unsecured())
    }

    /// How long a session authenticated with `mechanism` at `now_ms` lasts, in ms, as Kafka
    /// computes it (KIP-368): the sooner of `connections.max.reauth.ms` and the credential's
    /// expiry; None when neither applies (the session does not expire).
    pub fn session_lifetime_ms(
        &self,
        mechanism: &str,
        expiry_ms: Option<i64>,
        now_ms: i64,
    ) -> Option<i64> {
        session_lifetime_ms(
            self.reauth_ms.get(mechanism).copied().unwrap_or(0),
            expiry_ms,
            now_ms,
        )
    }
}

/// Kafka's `SaslServerAuthenticator` rule: with a credential expiry and/or a positive
/// maximum, the smaller of the two (never negative); otherwise None (no expiry).
pub fn session_lifetime_ms(max_reauth_ms: i64, expiry_ms: Option<i64>, now_ms: i64) -> Option<i64> {
    match (expiry_ms, max_reauth_ms > 0) {
        (None, false) => None,
        (None, true) => Some(max_reauth_ms),
        (Some(e), false) => Some((e - now_ms).max(0)),
        (Some(e), true) => Some((e - now_ms).min(max_reauth_ms).max(0)),
    }
}

/// `listener.name.<l>.<mechanism>.sasl.jaas.config`, then `listener.name.<l>.sasl.jaas.config`,
/// then `sasl.jaas.config`.
pub(super) fn jaas_config(values: &Values, listener: &str, mechanism: &str) -> Option<String> {
    let l = listener.to_ascii_lowercase();
    [
        format!("listener.name.{l}.{mechanism}.sasl.jaas.config"),
        format!("listener.name.{l}.sasl.jaas.config"),
        "sasl.jaas.config".to_string(),
    ]
    .iter()
    .find_map(|k| values.get(k).map(|(v, _)| v.clone()))
}

/// The options of a JAAS login module entry: `Class required key="value" key2=value2;`.
pub fn parse_jaas(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let s = s.trim().trim_end_matches(';').trim();
    let (_class, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
    let rest = rest.trim_start();
    let (flag, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !matches!(flag, "required" | "requisite" | "sufficient" | "optional") {
        anyhow::bail!("JAAS setting: expected `<LoginModule> required key=\"value\" ...;`");
    }
    let mut rest = rest.trim();
    let mut out = Vec::new();
    while !rest.is_empty() {
        // The error names the option's position only: the text may be a password.
        let (key, r) = rest.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("JAAS setting: option {} is not key=value", out.len() + 1)
        })?;
        let key = key.trim().to_string();
        let r = r.trim_start();
        let (value, r) = if let Some(q) = r.strip_prefix('"') {
            let mut v = String::new();
            let mut end = None;
            let mut chars = q.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end =
                end.ok_or_else(|| anyhow::anyhow!("JAAS setting: unclosed quote for {key}"))?;
            (v, &q[end..])
        } else {
            let end = r.find(char::is_whitespace).unwrap_or(r.len());
            (r[..end].to_string(), &r[end..])
        };
        out.push((key, value));
        rest = r.trim_start();
    }
    Ok(out)
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`, checked against the configured users.
struct Plain<'a> {
    users: &'a HashMap<String, String>,
}

impl Mechanism for Plain<'_> {
    fn step(&mut self, input: &[u8]) -> Result<Step, AuthFailed> {
        let bad = || AuthFailed("Authentication failed: invalid SASL/PLAIN message".into());
        let text = std::str::from_utf8(input).map_err(|_| bad())?;
        let mut parts = text.split('\0');
        let (Some(authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if user.is_empty() || password.is_empty() {
            return Err(bad());
        }
        if !authzid.is_empty() && authzid != user {
            return Err(AuthFailed(
                "Authentication failed: Client requested an authorization id that is different from username".into(),
            ));
        }
        // The same work for an unknown user as for a wrong password, and a comparison of
        // digests whose time does not depend on where they differ.
        let expected = self.users.get(user);
        let matches = same_secret(
            expected.map_or(b"\0unknown user".as_slice(), |e| e.as_bytes()),
            password.as_bytes(),
        );
        if expected.is_some() && matches {
            Ok(Step::Done {
                response: Vec::new(),
                user: user.to_string(),
            })
        } else {
            Err(AuthFailed(
                "Authentication failed: Invalid username or password".into(),
            ))
        }
    }
}

/// Compares SHA-256 digests of two secrets in constant time.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (
        ring::digest::digest(&ring::digest::SHA256, a),
        ring::digest::digest(&ring::digest::SHA256, b),
    );
    da.as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_values as vals;

    #[test]
    fn jaas_entries_parse_as_kafka_writes_them() {
        let o = parse_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a\"b" user_admin="admin-secret" user_alice=alice-secret;"#,
        )
        .unwrap();
        assert_eq!(
            o,
            vec![
                ("username".into(), "admin".into()),
                ("password".into(), "a\"b".into()),
                ("user_admin".into(), "admin-secret".into()),
                ("user_alice".into(), "alice-secret".into()),
            ]
        );
        assert!(parse_jaas("Module optional").unwrap().is_empty());
        assert_eq!(
            parse_jaas("Module \t required  a=b ;").unwrap(),
            vec![("a".into(), "b".into())]
        );
        let e = parse_jaas("Module required a=b secret-password").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(parse_jaas("Module sometimes a=b;").is_err());
        assert!(parse_jaas(r#"Module required a="open;"#).is_err());
    }

    #[test]
    fn plain_checks_users_of_the_listener() {
        let v = vals(&[
            ("sasl.enabled.mechanisms", "GSSAPI,PLAIN"),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#,
            ),
        ]);
        let l = SaslListener::new(&v, "SASL_PLAINTEXT").unwrap();
        assert_eq!(l.mechanisms, vec!["PLAIN"]);
        assert!(l.start("SCRAM-SHA-256", Default::default()).is_none());
        let mut m = l.start("PLAIN", Default::default()).unwrap();
        assert_eq!(
            m.step(b"\0alice\0alice-secret"),
            Ok(Step::Done {
                response: vec![],
                user: "alice".into()
            })
        );
        assert!(
            l.start("PLAIN", Default::default())
                .unwrap()
                .step(b"alice\0alice\0alice-secret")
                .is_ok()
        );
        for bad in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0alice-secret",
            b"bob\0alice\0alice-secret",
            b"\0alice",
            b"\0alice\0alice-secret\0x",
            b"\xff\0a\0b",
        ] {
            assert!(
                l.start("PLAIN", Default::default())
                    .unwrap()
                    .step(bad)
                    .is_err(),
                "{bad:?}"
            );
        }
        // No users, or no served mechanism: the listener does not start.
        assert!(SaslListener::new(&vals(&[("sasl.enabled.mechanisms", "PLAIN")]), "S").is_err());
        assert!(SaslListener::new(&vals(&[]), "S").is_err());
    }

    #[test]
    fn session_lifetime_is_the_sooner_of_max_reauth_and_expiry() {
        assert_eq!(session_lifetime_ms(0, None, 1000), None);
        assert_eq!(session_lifetime_ms(5000, None, 1000), Some(5000));
        assert_eq!(session_lifetime_ms(0, Some(4000), 1000), Some(3000));
        assert_eq!(session_lifetime_ms(2000, Some(4000), 1000), Some(2000));
        assert_eq!(session_lifetime_ms(9000, Some(4000), 1000), Some(3000));
        // An expired credential: no session time left.
        assert_eq!(session_lifetime_ms(9000, Some(500), 1000), Some(0));
        let v = vals(&[
            ("sasl.enabled.mechanisms", "SCRAM-SHA-256,OAUTHBEARER"),
            ("connections.max.reauth.ms", "60000"),
            (
                "listener.name.s.oauthbearer.connections.max.reauth.ms",
                "1000",
            ),
        ]);
        let l = SaslListener::new(&v, "S").unwrap();
        assert_eq!(l.session_lifetime_ms("SCRAM-SHA-256", None, 0), Some(60000));
        assert_eq!(
            l.session_lifetime_ms("OAUTHBEARER", Some(50_000), 0),
            Some(1000)
        );
    }
}
