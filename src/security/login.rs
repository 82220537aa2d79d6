//! The client side of SASL, for a broker that authenticates to another broker or to a
//! controller (`sasl.mechanism.inter.broker.protocol`, `sasl.mechanism.controller.protocol`):
//! the credentials come from the listener's JAAS setting as Kafka's login modules read them
//! (`username`/`password` for PLAIN and SCRAM; `unsecuredLoginStringClaim_sub` for
//! OAUTHBEARER's unsecured tokens), and each exchange is a small state machine the
//! transport drives.

use std::collections::BTreeMap;

use base64::Engine as _;
use ring::rand::SecureRandom;

use super::sasl::{jaas_config, parse_jaas};
use super::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramMechanism};
use crate::config::Source;

type Values = BTreeMap<String, (String, Source)>;

/// The mechanisms a broker can authenticate with.
pub const CLIENT_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// Who a broker is when it connects to a SASL listener.
#[derive(Clone)]
pub struct Login {
    pub mechanism: String,
    credential: Credential,
}

#[derive(Clone)]
enum Credential {
    Password {
        username: String,
        password: String,
    },
    /// An unsecured OAUTHBEARER token for `sub`, valid for `lifetime_s`.
    Unsecured {
        sub: String,
        lifetime_s: i64,
    },
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        let who = match &self.credential {
            Credential::Password { username, .. } => username,
            Credential::Unsecured { sub, .. } => sub,
        };
        write!(f, "Login({} as {who})", self.mechanism)
    }
}

impl Login {
    /// `mechanism`'s credentials on `listener`, from
    /// `listener.name.<l>.<mechanism>.sasl.jaas.config` (or the listener's or the global
    /// `sasl.jaas.config`). `setting` names the mechanism's setting in errors.
    pub fn from_values(
        values: &Values,
        listener: &str,
        mechanism: &str,
        setting: &str,
    ) -> anyhow::Result<Login> {
        if !CLIENT_MECHANISMS.contains(&mechanism) {
            anyhow::bail!(
                "{setting}={mechanism}: Fjord's brokers authenticate with {} (Kafka's default, \
                 GSSAPI, is not spoken)",
                CLIENT_MECHANISMS.join(", ")
            );
        }
        let key = mechanism.to_ascii_lowercase();
        let jaas = jaas_config(values, listener, &key).ok_or_else(|| {
            anyhow::anyhow!(
                "{setting}={mechanism} needs this broker's own credentials in \
                 listener.name.{}.{key}.sasl.jaas.config",
                listener.to_ascii_lowercase()
            )
        })?;
        let options: BTreeMap<String, String> = parse_jaas(&jaas)?.into_iter().collect();
        let credential = if mechanism == "OAUTHBEARER" {
            let sub = options
                .get("unsecuredLoginStringClaim_sub")
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "OAUTHBEARER between brokers uses an unsecured token: the JAAS setting \
                         needs unsecuredLoginStringClaim_sub=\"<principal>\""
                    )
                })?;
            let lifetime_s = match options.get("unsecuredLoginLifetimeSeconds") {
                None => 3600,
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "unsecuredLoginLifetimeSeconds: {v:?} is not a positive number"
                        )
                    })?,
            };
            Credential::Unsecured { sub, lifetime_s }
        } else {
            let (Some(username), Some(password)) =
                (options.get("username"), options.get("password"))
            else {
                anyhow::bail!(
                    "the {mechanism} JAAS setting of listener {listener} needs username=\"...\" and \
                     password=\"...\": the credentials this broker authenticates with"
                );
            };
            Credential::Password {
                username: username.clone(),
                password: password.clone(),
            }
        };
        Ok(Login {
            mechanism: mechanism.to_string(),
            credential,
        })
    }

    /// A new exchange and its first message.
    pub fn start(&self) -> anyhow::Result<(Exchange, Vec<u8>)> {
        match (&self.credential, self.mechanism.as_str()) {
            (Credential::Password { username, password }, "PLAIN") => Ok((
                Exchange::OneShot,
                format!("\0{username}\0{password}").into_bytes(),
            )),
            (Credential::Password { username, password }, m) => {
                let mechanism = ScramMechanism::from_name(m)
                    .ok_or_else(|| anyhow::anyhow!("{m} is not a SCRAM mechanism"))?;
                let mut raw = [0u8; 24];
                ring::rand::SystemRandom::new()
                    .fill(&mut raw)
                    .map_err(|_| anyhow::anyhow!("no randomness for a SCRAM nonce"))?;
                let nonce = base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw);
                let bare = format!("n={},r={nonce}", escape(username));
                let first = format!("n,,{bare}").into_bytes();
                Ok((
                    Exchange::Scram(ScramClient {
                        mechanism,
                        password: password.clone(),
                        nonce,
                        bare,
                        expect: None,
                    }),
                    first,
                ))
            }
            (Credential::Unsecured { sub, lifetime_s }, _) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let head = b64.encode(br#"{"alg":"none"}"#);
                let claims = serde_json::json!({"sub": sub, "iat": now, "exp": now + lifetime_s});
                let token = format!("{head}.{}.", b64.encode(claims.to_string()));
                Ok((
                    Exchange::OneShot,
                    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes(),
                ))
            }
        }
    }
}

/// An exchange in progress.
pub enum Exchange {
    /// One message, then the server's verdict (PLAIN, OAUTHBEARER).
    OneShot,
    Scram(ScramClient),
}

impl Exchange {
    /// SCRAM: the client nonce (the fuzz target builds answers that carry it).
    pub fn nonce(&self) -> Option<&str> {
        match self {
            Exchange::OneShot => None,
            Exchange::Scram(c) => Some(&c.nonce),
        }
    }

    /// The next message after the server's `answer` (which came with no error), or None
    /// when the exchange is complete and, for SCRAM, the server proved it knows the
    /// credential.
    pub fn next(&mut self, answer: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Exchange::OneShot => Ok(None),
            Exchange::Scram(c) => c.next(answer),
        }
    }
}

/// RFC 5802's client: client-first sent; then client-final for server-first, and the
/// server's signature checked in server-final.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    nonce: String,
    bare: String,
    /// The server signature server-final must carry, once client-final is sent.
    expect: Option<String>,
}

impl ScramClient {
    fn next(&mut self, answer: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let text = std::str::from_utf8(answer)
            .map_err(|_| anyhow::anyhow!("SCRAM: the server's message is not text"))?;
        if let Some(expect) = &self.expect {
            if let Some(why) = text.strip_prefix("e=") {
                anyhow::bail!("SCRAM: the server refused: {why}");
            }
            if text != expect {
                anyhow::bail!("SCRAM: the server did not prove it knows the credential");
            }
            return Ok(None);
        }
        let attrs: BTreeMap<&str, &str> =
            text.split(',').filter_map(|a| a.split_once('=')).collect();
        if attrs.contains_key("m") {
            anyhow::bail!("SCRAM: the server requires an extension this client does not know");
        }
        let b64 = &base64::engine::general_purpose::STANDARD;
        let (Some(nonce), Some(salt), Some(iterations)) =
            (attrs.get("r"), attrs.get("s"), attrs.get("i"))
        else {
            anyhow::bail!("SCRAM: malformed server-first-message");
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            anyhow::bail!("SCRAM: the server's nonce does not extend ours");
        }
        let salt = b64
            .decode(salt)
            .map_err(|_| anyhow::anyhow!("SCRAM: the salt is not base64"))?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            // Bounded above too: the derivation runs inline, and a hostile server must not
            // make it run for ever (Kafka's credentials stay within these bounds).
            .filter(|i| (MIN_ITERATIONS as u32..=MAX_ITERATIONS as u32).contains(i))
            .ok_or_else(|| anyhow::anyhow!("SCRAM: iteration count {iterations} refused"))?;
        let m = self.mechanism;
        let salted = m.salted_password(&self.password, &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c={},r={nonce}", b64.encode("n,,"));
        let auth = format!("{},{text},{without_proof}", self.bare);
        let signature = m.hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.expect = Some(format!(
            "v={}",
            b64.encode(m.hmac(&server_key, auth.as_bytes()))
        ));
        Ok(Some(
            format!("{without_proof},p={}", b64.encode(proof)).into_bytes(),
        ))
    }
}

/// RFC 5802 saslname: ',' and '=' escaped.
fn escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::security::sasl::{Mechanism, SaslListener, Step};
    use crate::security::scram::{ScramCredential, ScramServer};
    use crate::security::store::{SecurityData, credential_record};

    use crate::config::test_values as vals;

    /// Runs `login` against `server` to the end: the user it authenticated as.
    fn run(login: &Login, server: &mut dyn Mechanism) -> anyhow::Result<String> {
        let (mut ex, mut msg) = login.start()?;
        for _ in 0..4 {
            match server.step(&msg).map_err(|e| anyhow::anyhow!(e.0))? {
                Step::Continue(answer) => {
                    msg = ex
                        .next(&answer)?
                        .ok_or_else(|| anyhow::anyhow!("ended early"))?
                }
                Step::Done { response, user } => {
                    anyhow::ensure!(ex.next(&response)?.is_none(), "client wants more");
                    return Ok(user);
                }
            }
        }
        anyhow::bail!("no end")
    }

    #[test]
    fn plain_scram_and_unsecured_tokens_pass_fjords_own_server() {
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="b=,s3cret" user_broker="b=,s3cret";"#;
        let scram = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="br,oker" password="pw";"#;
        let oauth = r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";"#;
        let v = vals(&[
            ("listener.name.internal.plain.sasl.jaas.config", jaas),
            (
                "listener.name.internal.scram-sha-512.sasl.jaas.config",
                scram,
            ),
            ("listener.name.internal.oauthbearer.sasl.jaas.config", oauth),
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512,OAUTHBEARER"),
        ]);
        let server = SaslListener::new(&v, "INTERNAL").unwrap();
        let data = Arc::new(SecurityData::default());
        let plain = Login::from_values(&v, "INTERNAL", "PLAIN", "s").unwrap();
        assert_eq!(
            run(&plain, &mut *server.start("PLAIN", data.clone()).unwrap()).unwrap(),
            "broker"
        );
        assert!(!format!("{plain:?}").contains("s3cret"));

        let m = ScramMechanism::Sha512;
        let salt = b"0123456789abcdef".to_vec();
        let mut d = SecurityData::default();
        d.apply(&credential_record(
            "br,oker",
            m,
            ScramCredential::from_salted_password(
                m,
                &salt,
                &m.salted_password("pw", &salt, 4096),
                4096,
            ),
        ))
        .unwrap();
        let d = Arc::new(d);
        let login = Login::from_values(&v, "INTERNAL", "SCRAM-SHA-512", "s").unwrap();
        assert_eq!(
            run(&login, &mut ScramServer::new(m, d.clone())).unwrap(),
            "br,oker"
        );
        // A wrong password is refused by the server; a server that does not know the
        // credential cannot fake its proof.
        let wrong = Login {
            mechanism: "SCRAM-SHA-512".into(),
            credential: Credential::Password {
                username: "br,oker".into(),
                password: "no".into(),
            },
        };
        assert!(run(&wrong, &mut ScramServer::new(m, d.clone())).is_err());
        let (mut ex, _) = login.start().unwrap();
        let Exchange::Scram(c) = &ex else { panic!() };
        let server_first = format!(
            "r={}xyz,s={},i=4096",
            c.nonce,
            base64::engine::general_purpose::STANDARD.encode(&salt)
        );
        assert!(ex.next(server_first.as_bytes()).unwrap().is_some());
        assert!(ex.next(b"v=Zm9yZ2Vk").is_err());
        // Too few iterations, or a nonce that is not ours, are refused.
        let (mut ex, _) = login.start().unwrap();
        assert!(ex.next(b"r=other,s=c2FsdA==,i=4096").is_err());
        let (mut ex, _) = login.start().unwrap();
        let Exchange::Scram(c) = &ex else { panic!() };
        let weak = format!("r={}x,s=c2FsdA==,i=1", c.nonce);
        assert!(ex.next(weak.as_bytes()).is_err());
        let (mut ex, _) = login.start().unwrap();
        let Exchange::Scram(c) = &ex else { panic!() };
        let endless = format!("r={}x,s=c2FsdA==,i=4294967295", c.nonce);
        assert!(ex.next(endless.as_bytes()).is_err());
        let (mut ex, _) = login.start().unwrap();
        let Exchange::Scram(c) = &ex else { panic!() };
        let extension = format!("m=ext,r={}x,s=c2FsdA==,i=4096", c.nonce);
        assert!(ex.next(extension.as_bytes()).is_err());

        let oauth = Login::from_values(&v, "INTERNAL", "OAUTHBEARER", "s").unwrap();
        assert_eq!(
            run(&oauth, &mut *server.start("OAUTHBEARER", data).unwrap()).unwrap(),
            "broker"
        );
    }

    #[test]
    fn settings_that_cannot_log_in_are_refused_with_the_reason() {
        let v = vals(&[(
            "listener.name.internal.plain.sasl.jaas.config",
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_a="x";"#,
        )]);
        let e = Login::from_values(
            &v,
            "INTERNAL",
            "PLAIN",
            "sasl.mechanism.inter.broker.protocol",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("username"), "{e}");
        let e = Login::from_values(
            &v,
            "INTERNAL",
            "GSSAPI",
            "sasl.mechanism.inter.broker.protocol",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("GSSAPI"), "{e}");
        let e = Login::from_values(&v, "OTHER", "SCRAM-SHA-256", "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("listener.name.other.scram-sha-256.sasl.jaas.config"),
            "{e}"
        );
    }
}
