//! SASL/OAUTHBEARER's server side (RFC 7628) as Kafka's brokers do it. The client's first
//! message is `n,[a=<authzid>],^Aauth=Bearer <token>^A[<extension>=<value>^A...]^A`; the
//! token is a JWT, checked by one of Kafka's two validators:
//!
//! - unsecured (Kafka's default, when
//!   `listener.name.<l>.oauthbearer.sasl.server.callback.handler.class` is not set): JWS
//!   with `"alg":"none"` and no signature, options `unsecuredValidator*` of the JAAS entry;
//! - signed (`...oauthbearer.OAuthBearerValidatorCallbackHandler`): RS/PS/ES/EdDSA
//!   signatures checked with the keys of a JWKS file (`sasl.oauthbearer.jwks.endpoint.url`,
//!   a `file:` URL; Fjord fetches nothing), read again when it changes, and Kafka's
//!   `sasl.oauthbearer.*` claim settings.
//!
//! A token that fails is answered with RFC 7628's error (`{"status":"invalid_token"}`); the
//! client acknowledges it with `^A` and authentication fails with a message that names the
//! reason but never the token.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT as B64;
use serde_json::{Map, Value};

use super::sasl::{AuthFailed, Mechanism, Step, parse_jaas};
use crate::config::Source;
use crate::config::security::listener_value;

type Values = BTreeMap<String, (String, Source)>;

const UNSECURED_HANDLER: &str = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";
const SIGNED_HANDLERS: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];
/// How often, at most, the JWKS file's modification time is looked at.
const JWKS_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How one listener validates OAUTHBEARER tokens.
#[derive(Debug)]
pub struct OAuthBearerConfig {
    /// Signed tokens' keys; None: unsecured tokens.
    keys: Option<Jwks>,
    claims: Claims,
}

/// The claim checks of either validator.
#[derive(Debug)]
struct Claims {
    principal: String,
    scope: String,
    /// Unsecured: `unsecuredValidatorRequiredScope`.
    required_scope: Vec<String>,
    skew_ms: i64,
    /// Signed only (Kafka's jose4j checks): `iat` required, `aud`/`iss` checked.
    signed: bool,
    audience: Vec<String>,
    issuer: Option<String>,
}

impl OAuthBearerConfig {
    /// Reads `listener`'s OAUTHBEARER settings; an error says what is wrong.
    pub fn from_values(values: &Values, listener: &str) -> anyhow::Result<OAuthBearerConfig> {
        let get = |k: &str| setting(values, listener, k).map(|v| v.trim().to_string());
        let signed = match get("sasl.server.callback.handler.class").as_deref() {
            None | Some(UNSECURED_HANDLER) => false,
            Some(h) if SIGNED_HANDLERS.contains(&h) => true,
            Some(h) => anyhow::bail!(
                "OAUTHBEARER: sasl.server.callback.handler.class {h} is not one Fjord has; use \
                 {} (signed JWTs) or {UNSECURED_HANDLER}",
                SIGNED_HANDLERS[0]
            ),
        };
        if signed {
            let url = get("sasl.oauthbearer.jwks.endpoint.url").ok_or_else(|| {
                anyhow::anyhow!("OAUTHBEARER with signed tokens needs sasl.oauthbearer.jwks.endpoint.url (a file: URL)")
            })?;
            let keys = Jwks::open(jwks_path(&url)?)?;
            let skew = "sasl.oauthbearer.clock.skew.seconds";
            let claims = Claims {
                principal: get("sasl.oauthbearer.sub.claim.name").unwrap_or("sub".into()),
                scope: get("sasl.oauthbearer.scope.claim.name").unwrap_or("scope".into()),
                required_scope: Vec::new(),
                skew_ms: non_negative(get(skew), skew, 30)? * 1000,
                signed,
                audience: list(get("sasl.oauthbearer.expected.audience"), &[',']),
                issuer: get("sasl.oauthbearer.expected.issuer"),
            };
            let keys = Some(keys);
            return Ok(OAuthBearerConfig { keys, claims });
        }
        // The JAAS entry: listener.name.<l>.oauthbearer.sasl.jaas.config, then
        // listener.name.<l>.sasl.jaas.config, then sasl.jaas.config.
        let options = match setting(values, listener, "sasl.jaas.config") {
            Some(j) => parse_jaas(&j).context("OAUTHBEARER JAAS setting")?,
            None => Vec::new(),
        };
        let option = |k: &str| {
            let v = options.iter().rev().find(|(key, _)| key == k);
            v.map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let skew = "unsecuredValidatorAllowableClockSkewMs";
        tracing::warn!(
            listener,
            "OAUTHBEARER accepts unsecured tokens (alg none, no signature): for tests only"
        );
        Ok(OAuthBearerConfig {
            keys: None,
            claims: Claims {
                principal: option("unsecuredValidatorPrincipalClaimName").unwrap_or("sub".into()),
                scope: option("unsecuredValidatorScopeClaimName").unwrap_or("scope".into()),
                required_scope: list(option("unsecuredValidatorRequiredScope"), &[' ', ',']),
                skew_ms: non_negative(option(skew), skew, 0)?,
                signed,
                audience: Vec::new(),
                issuer: None,
            },
        })
    }

    /// Whether tokens are taken without a signature (Kafka's default validator).
    pub fn is_unsecured(&self) -> bool {
        self.keys.is_none()
    }

    /// Checks a token at `now_ms` (epoch milliseconds).
    fn validate(&self, token: &str, now_ms: i64) -> Result<(String, i64), Rejected> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return no("the token is not a JWS (header.payload.signature)");
        };
        if header.is_empty() || payload.is_empty() {
            return no("the token has an empty header or payload");
        }
        let head = decode_json(header, "header")?;
        let alg = head.get("alg").and_then(Value::as_str).unwrap_or("");
        match &self.keys {
            Some(keys) => keys.verify(&head, header, payload, signature)?,
            None if alg != "none" => return no("an unsecured token must have alg none"),
            None if !signature.is_empty() => {
                return no("an unsecured token must have no signature");
            }
            None => {}
        }
        self.claims.check(&decode_json(payload, "payload")?, now_ms)
    }
}

fn non_negative(v: Option<String>, name: &str, default: i64) -> anyhow::Result<i64> {
    match v.map(|s| s.parse::<i32>()) {
        None => Ok(default),
        Some(Ok(n)) if n >= 0 => Ok(i64::from(n)),
        _ => anyhow::bail!("{name} must be a non-negative integer"),
    }
}

/// A setting for OAUTHBEARER on `listener`: `listener.name.<l>.oauthbearer.<key>`, then
/// `listener.name.<l>.<key>`, then `<key>` (as Kafka: the listener's values, then the
/// mechanism's prefix).
fn setting(values: &Values, listener: &str, key: &str) -> Option<String> {
    let l = listener.to_ascii_lowercase();
    let scoped = values.get(&format!("listener.name.{l}.oauthbearer.{key}"));
    let scoped = scoped
        .map(|(v, _)| v.clone())
        .filter(|v| !v.trim().is_empty());
    scoped.or_else(|| listener_value(values, listener, key))
}

fn list(s: Option<String>, separators: &[char]) -> Vec<String> {
    s.unwrap_or_default()
        .split(separators)
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// A `file:` URL's path (`file:/p`, `file:///p`, `file://localhost/p`); other schemes are
/// refused: Fjord does not fetch keys.
fn jwks_path(url: &str) -> anyhow::Result<PathBuf> {
    let key = "sasl.oauthbearer.jwks.endpoint.url";
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if matches!(scheme.as_deref(), Some("http" | "https")) {
        anyhow::bail!(
            "{key} ({url}): Fjord does not fetch keys over HTTP(S); save the JWKS to a file, \
             give it as file:/path/to/jwks.json and keep it current (it is read again when it changes)"
        );
    }
    let Some(rest) = url.get(5..).filter(|_| scheme.as_deref() == Some("file")) else {
        anyhow::bail!("{key} ({url}) must be a file: URL");
    };
    let path = match rest.strip_prefix("//") {
        Some(r) => {
            let (host, path) = r.split_at(r.find('/').unwrap_or(r.len()));
            if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                anyhow::bail!("{key} ({url}) names another host; give a local file");
            }
            path
        }
        None => rest,
    };
    if path.is_empty() {
        anyhow::bail!("{key} ({url}) names no file");
    }
    Ok(PathBuf::from(path))
}

/// Why a token was refused: RFC 7628's status for the client, the reason for the failure
/// message (never the token).
#[derive(Debug)]
struct Rejected {
    /// `insufficient_scope` with the scope needed, else `invalid_token`.
    scope: Option<String>,
    reason: String,
}

fn no<T>(reason: impl Into<String>) -> Result<T, Rejected> {
    let reason = reason.into();
    Err(Rejected {
        scope: None,
        reason,
    })
}

impl Rejected {
    /// The error the server sends (RFC 7628 section 3.2.2), as Kafka writes it.
    fn json(&self) -> String {
        match &self.scope {
            None => r#"{"status":"invalid_token"}"#.to_string(),
            Some(s) => format!(
                r#"{{"status":"insufficient_scope", "scope":{}}}"#,
                Value::String(s.clone())
            ),
        }
    }
}

fn decode_json(part: &str, what: &str) -> Result<Map<String, Value>, Rejected> {
    match B64.decode(part).map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(Value::Object(m))) => Ok(m),
        Err(_) => no(format!("the token's {what} is not base64url")),
        _ => no(format!("the token's {what} is not a JSON object")),
    }
}

impl Claims {
    fn check(&self, claims: &Map<String, Value>, now_ms: i64) -> Result<(String, i64), Rejected> {
        let name = &self.principal;
        let principal = match claims.get(name).and_then(Value::as_str) {
            Some(p) if !p.trim().is_empty() => p,
            _ => {
                return no(format!(
                    "the token has no {name} claim with a principal name"
                ));
            }
        };
        let time = |name: &str| match claims.get(name).map(|v| v.as_f64()) {
            None => Ok(None),
            // Saturating: absurd times fail the comparisons below.
            Some(Some(t)) if t.is_finite() => Ok(Some((t * 1000.0).round() as i64)),
            Some(_) => no(format!("the token's {name} is not a number")),
        };
        let (skew, signed) = (self.skew_ms, self.signed);
        let Some(exp) = time("exp")? else {
            return no("the token has no exp claim");
        };
        let iat = time("iat")?;
        let late = |t: i64| t > now_ms.saturating_add(skew);
        if now_ms.saturating_sub(skew) >= exp {
            return no("the token has expired");
        } else if signed && iat.is_none() {
            return no("the token has no iat claim");
        } else if iat.is_some_and(late) {
            return no("the token is issued in the future");
        } else if iat.is_some_and(|t| exp <= t) {
            return no("the token expires before it was issued");
        } else if time("nbf")?.is_some_and(late) {
            return no("the token is not valid yet (nbf)");
        }
        if let Some(issuer) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return no("the token's iss is not sasl.oauthbearer.expected.issuer");
        }
        let aud = strings(claims.get("aud"));
        // As Kafka (jose4j): a token for some audience is refused when none is expected.
        if signed && self.audience.is_empty() && !aud.is_empty() {
            return no(
                "the token has an aud claim but sasl.oauthbearer.expected.audience is not set",
            );
        } else if !self.audience.is_empty() && !aud.iter().any(|a| self.audience.contains(a)) {
            return no("the token's aud is not one of sasl.oauthbearer.expected.audience");
        }
        let scopes = strings(claims.get(&self.scope));
        if let Some(missing) = self.required_scope.iter().find(|s| !scopes.contains(s)) {
            return Err(Rejected {
                scope: Some(self.required_scope.join(" ")),
                reason: format!("the token's scope lacks the required {missing}"),
            });
        }
        // Kafka trims the principal of a signed token only.
        let principal = if signed { principal.trim() } else { principal };
        Ok((principal.to_string(), exp))
    }
}

/// A claim holding a space-separated string or an array of strings.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// The signature algorithms Fjord checks (ES512 is missing: ring has no P-521).
const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

#[derive(Debug)]
enum KeyMaterial {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

#[derive(Debug)]
struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    key: KeyMaterial,
}

impl Jwk {
    /// Whether the key is for `alg` (its type, and its own `alg` if it has one).
    fn fits(&self, alg: &str) -> bool {
        let kind = match &self.key {
            KeyMaterial::Rsa { .. } => alg.starts_with("RS") || alg.starts_with("PS"),
            KeyMaterial::P256(_) => alg == "ES256",
            KeyMaterial::P384(_) => alg == "ES384",
            KeyMaterial::Ed25519(_) => alg == "EdDSA",
        };
        kind && self.alg.as_deref().is_none_or(|a| a == alg)
    }

    fn verify(&self, alg: &str, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature as s;
        let rsa = |p: &'static s::RsaParameters| match &self.key {
            KeyMaterial::Rsa { n, e } => s::RsaPublicKeyComponents { n, e }
                .verify(p, message, signature)
                .is_ok(),
            _ => false,
        };
        let other = |a: &'static dyn s::VerificationAlgorithm, k: &[u8]| {
            s::UnparsedPublicKey::new(a, k)
                .verify(message, signature)
                .is_ok()
        };
        match (alg, &self.key) {
            ("RS256", _) => rsa(&s::RSA_PKCS1_2048_8192_SHA256),
            ("RS384", _) => rsa(&s::RSA_PKCS1_2048_8192_SHA384),
            ("RS512", _) => rsa(&s::RSA_PKCS1_2048_8192_SHA512),
            ("PS256", _) => rsa(&s::RSA_PSS_2048_8192_SHA256),
            ("PS384", _) => rsa(&s::RSA_PSS_2048_8192_SHA384),
            ("PS512", _) => rsa(&s::RSA_PSS_2048_8192_SHA512),
            ("ES256", KeyMaterial::P256(k)) => other(&s::ECDSA_P256_SHA256_FIXED, k),
            ("ES384", KeyMaterial::P384(k)) => other(&s::ECDSA_P384_SHA384_FIXED, k),
            ("EdDSA", KeyMaterial::Ed25519(k)) => other(&s::ED25519, k),
            _ => false,
        }
    }
}

/// The JWKS file's signature keys, read again when its modification time changes.
#[derive(Debug)]
struct Jwks {
    path: PathBuf,
    check_every: Duration,
    state: Mutex<JwksState>,
}

#[derive(Debug)]
struct JwksState {
    keys: Arc<Vec<Jwk>>,
    mtime: Option<SystemTime>,
    checked: Instant,
    /// The modification time of a file that failed to load (warned about once).
    failed: Option<Option<SystemTime>>,
}

impl Jwks {
    fn open(path: PathBuf) -> anyhow::Result<Jwks> {
        let (mtime, keys) = load_jwks(&path)?;
        Ok(Jwks {
            path,
            check_every: JWKS_CHECK_EVERY,
            state: Mutex::new(JwksState {
                keys: Arc::new(keys),
                mtime,
                checked: Instant::now(),
                failed: None,
            }),
        })
    }

    /// The current keys, after reading the file again if it changed (a file that does not
    /// load keeps the keys in use).
    fn keys(&self) -> Arc<Vec<Jwk>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.checked.elapsed() < self.check_every {
            return st.keys.clone();
        }
        st.checked = Instant::now();
        let (path, now) = (self.path.display(), mtime(&self.path));
        if now == st.mtime {
            return st.keys.clone();
        }
        match load_jwks(&self.path) {
            Ok((mtime, keys)) => {
                tracing::info!(%path, keys = keys.len(), "OAUTHBEARER JWKS file changed: reloaded");
                (st.keys, st.mtime, st.failed) = (Arc::new(keys), mtime, None);
            }
            Err(e) => {
                if st.failed != Some(now) {
                    let error = format!("{e:#}");
                    tracing::warn!(%path, error, "OAUTHBEARER JWKS file changed but does not load; keeping the keys in use");
                    st.failed = Some(now);
                }
            }
        }
        st.keys.clone()
    }

    /// Checks a signed token's signature with the key its header names.
    fn verify(
        &self,
        head: &Map<String, Value>,
        header: &str,
        payload: &str,
        signature: &str,
    ) -> Result<(), Rejected> {
        let alg = head.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg.is_empty() || alg.eq_ignore_ascii_case("none") {
            return no("unsecured tokens (alg none) are refused");
        } else if !ALGORITHMS.contains(&alg) {
            return no("the token's signature algorithm is not supported");
        } else if head.contains_key("crit") {
            return no("the token has critical header parameters");
        }
        let keys = self.keys();
        let kid = head.get("kid").and_then(Value::as_str);
        let mut fitting = keys
            .iter()
            .filter(|k| k.fits(alg) && (kid.is_none() || k.kid.as_deref() == kid));
        let key = match (fitting.next(), fitting.next(), kid) {
            (Some(k), _, Some(_)) | (Some(k), None, None) => k,
            (Some(_), Some(_), None) => return no("the token names no key (kid) and several fit"),
            (None, _, _) => return no("no key of the JWKS fits the token's kid and alg"),
        };
        let Ok(signature) = B64.decode(signature) else {
            return no("the token's signature is not base64url");
        };
        if !key.verify(alg, format!("{header}.{payload}").as_bytes(), &signature) {
            return no("the token's signature does not verify");
        }
        Ok(())
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The file's modification time (taken before reading: a change while reading is seen next
/// time) and usable keys.
fn load_jwks(path: &Path) -> anyhow::Result<(Option<SystemTime>, Vec<Jwk>)> {
    let (mtime, p) = (mtime(path), path.display());
    let text = std::fs::read(path).with_context(|| format!("reading {p}"))?;
    let v: Value = serde_json::from_slice(&text).with_context(|| format!("{p} is not JSON"))?;
    let Some(keys) = v.get("keys").and_then(Value::as_array) else {
        anyhow::bail!("{p} has no \"keys\" array");
    };
    let keys: Vec<Jwk> = keys.iter().filter_map(parse_jwk).collect();
    if keys.is_empty() {
        anyhow::bail!("{p} has no signature key Fjord can use (RSA, EC P-256/P-384, Ed25519)");
    }
    Ok((mtime, keys))
}

/// One JWK, if it is a public signature key of a kind Fjord checks.
fn parse_jwk(k: &Value) -> Option<Jwk> {
    let s = |name: &str| k.get(name).and_then(Value::as_str);
    let b = |name: &str| s(name).and_then(|v| B64.decode(v).ok());
    if s("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let point = |len: usize| {
        let (x, y) = (b("x")?, b("y")?);
        (x.len() == len && y.len() == len).then(|| [&[4u8][..], &x, &y].concat())
    };
    let unsigned = |v: Vec<u8>| v.into_iter().skip_while(|b| *b == 0).collect::<Vec<_>>();
    let key = match (s("kty")?, s("crv")) {
        ("RSA", _) => KeyMaterial::Rsa {
            n: unsigned(b("n")?),
            e: unsigned(b("e")?),
        },
        ("EC", Some("P-256")) => KeyMaterial::P256(point(32)?),
        ("EC", Some("P-384")) => KeyMaterial::P384(point(48)?),
        ("OKP", Some("Ed25519")) => KeyMaterial::Ed25519(b("x")?),
        _ => return None,
    };
    let (kid, alg) = (s("kid").map(String::from), s("alg").map(String::from));
    Some(Jwk { kid, alg, key })
}

/// The client's first message.
#[derive(Debug)]
struct ClientFirst {
    authzid: Option<String>,
    token: String,
    extensions: BTreeMap<String, String>,
}

/// Parses `n,[a=<saslname>],^A<key>=<value>^A...^A` as Kafka does (RFC 7628 section 3.1);
/// errors never quote the message.
fn parse_client_first(input: &[u8]) -> Result<ClientFirst, &'static str> {
    let text = std::str::from_utf8(input).map_err(|_| "not UTF-8")?;
    let rest = text.strip_prefix("n,").ok_or("no GS2 header n,")?;
    let (authz, rest) = rest.split_once(',').ok_or("no GS2 header n,")?;
    let authzid = match authz.strip_prefix("a=") {
        _ if authz.is_empty() => None,
        Some(a) => Some(saslname(a).ok_or("bad authorization id")?),
        None => return Err("bad authorization id"),
    };
    let pairs = rest
        .strip_prefix('\x01')
        .and_then(|r| r.strip_suffix("\x01\x01"));
    let (mut token, mut extensions) = (None, BTreeMap::new());
    for pair in pairs
        .ok_or("not key=value pairs between ^A separators")?
        .split('\x01')
    {
        let (k, v) = pair.split_once('=').ok_or("a pair is not key=value")?;
        let value_ok = |b: u8| (0x21..=0x7e).contains(&b) || b" \t\r\n".contains(&b);
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err("a key is not letters");
        } else if v.is_empty() || !v.bytes().all(value_ok) {
            return Err("a value is empty or has characters RFC 7628 does not allow");
        } else if k == "auth" {
            token = Some(v);
        } else {
            extensions.insert(k.to_string(), v.to_string());
        }
    }
    let auth = token.ok_or("no auth=Bearer <token>")?;
    let (scheme, token) = auth.split_once(' ').ok_or("auth is not Bearer <token>")?;
    let token = token.trim_start_matches(' ');
    let token_ok = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("auth's scheme is not Bearer");
    } else if token.is_empty() || !token.bytes().all(token_ok) {
        return Err("the token has characters a JWT does not have");
    }
    let token = token.to_string();
    Ok(ClientFirst {
        authzid,
        token,
        extensions,
    })
}

/// RFC 5801's saslname: `=2C` for `,` and `=3D` for `=`.
fn saslname(s: &str) -> Option<String> {
    let mut parts = s.split('=');
    let mut out = parts.next()?.to_string();
    for p in parts {
        out.push(match p.get(..2)? {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        out.push_str(&p[2..]);
    }
    (!out.is_empty() && !out.contains('\0')).then_some(out)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One OAUTHBEARER authentication (server side).
#[derive(Debug)]
pub struct OAuthBearer<'a> {
    config: &'a OAuthBearerConfig,
    state: State,
    expiry_ms: Option<i64>,
    extensions: BTreeMap<String, String>,
}

#[derive(Debug)]
enum State {
    Start,
    /// The error was sent; the next message fails with this.
    Failed(String),
    Over,
}

impl<'a> OAuthBearer<'a> {
    pub fn new(config: &'a OAuthBearerConfig) -> OAuthBearer<'a> {
        OAuthBearer {
            config,
            state: State::Start,
            expiry_ms: None,
            extensions: BTreeMap::new(),
        }
    }

    /// After success: the token's `exp` in epoch milliseconds (when the session must be
    /// re-authenticated, KIP-368).
    pub fn session_expiry_ms(&self) -> Option<i64> {
        self.expiry_ms
    }

    /// After success: the SASL extensions the client sent (`auth` aside).
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.extensions
    }

    fn first(&mut self, input: &[u8], now_ms: i64) -> Result<Step, AuthFailed> {
        let msg = parse_client_first(input).map_err(|e| {
            AuthFailed(format!(
                "Authentication failed: invalid OAUTHBEARER client first message ({e})"
            ))
        })?;
        let (principal, expiry_ms) = match self.config.validate(&msg.token, now_ms) {
            Ok(t) => t,
            Err(r) => {
                let json = r.json();
                self.state = State::Failed(format!("Authentication failed: {json} ({})", r.reason));
                return Ok(Step::Continue(json.into_bytes()));
            }
        };
        if msg.authzid.is_some_and(|a| a != principal) {
            return Err(AuthFailed(
                "Authentication failed: Client requested an authorization id that is different from the token's principal name".into(),
            ));
        }
        self.expiry_ms = Some(expiry_ms);
        self.extensions = msg.extensions;
        Ok(Step::Done {
            response: Vec::new(),
            user: principal,
        })
    }
}

impl Mechanism for OAuthBearer<'_> {
    fn session_expiry_ms(&self) -> Option<i64> {
        OAuthBearer::session_expiry_ms(self)
    }

    fn step(&mut self, input: &[u8]) -> Result<Step, AuthFailed> {
        match std::mem::replace(&mut self.state, State::Over) {
            State::Start => self.first(input, now_ms()),
            // The client's acknowledgement (^A) of the error, or anything else.
            State::Failed(message) => Err(AuthFailed(message)),
            State::Over => Err(AuthFailed(
                "Authentication failed: the OAUTHBEARER exchange is over".into(),
            )),
        }
    }
}

#[cfg(test)]
#[path = "oauthbearer_tests.rs"]
mod tests;
