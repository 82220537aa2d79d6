//! TLS for `SSL` listeners, with rustls and Kafka's settings: the server certificate and
//! key from a PEM file (`ssl.keystore.type=PEM`, key and chain in `ssl.keystore.location`),
//! inline PEM (`ssl.keystore.certificate.chain` + `ssl.keystore.key`) or PKCS12
//! (`ssl.keystore.location` + `ssl.keystore.password`); trusted client CAs likewise from
//! `ssl.truststore.*`; `ssl.client.auth=required|requested|none` for mutual TLS. Each
//! setting may be given for one listener as `listener.name.<listener>.ssl.*`. The files are
//! read again when they change, so a renewed certificate is served without a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use super::principal::{ANONYMOUS, MappingRules, subject_dn};
use crate::config::Source;
use crate::config::security::listener_value;

type Values = BTreeMap<String, (String, Source)>;

/// One SSL listener's TLS state.
pub struct TlsListener {
    listener: String,
    values: Values,
    /// SASL_SSL: client certificates only from the listener's own `ssl.client.auth`.
    sasl: bool,
    acceptor: RwLock<TlsAcceptor>,
    rules: MappingRules,
    /// The files the configuration was read from, with their modification times then.
    files: Mutex<Vec<(PathBuf, Option<SystemTime>)>>,
}

impl TlsListener {
    /// Reads `listener`'s TLS settings; an error names what is wrong (the broker does not
    /// start with a listener it cannot serve).
    pub fn new(values: &Values, listener: &str, sasl: bool) -> anyhow::Result<Arc<TlsListener>> {
        let (config, files) = server_config(values, listener, sasl)?;
        let rules = match listener_value(values, listener, "ssl.principal.mapping.rules") {
            Some(r) => MappingRules::parse(&r)
                .map_err(|e| anyhow::anyhow!("ssl.principal.mapping.rules: {e}"))?,
            None => MappingRules::default(),
        };
        Ok(Arc::new(TlsListener {
            listener: listener.to_string(),
            values: values.clone(),
            sasl,
            acceptor: RwLock::new(TlsAcceptor::from(Arc::new(config))),
            rules,
            files: Mutex::new(files),
        }))
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().unwrap().clone()
    }

    /// Reads the key and certificate files again if any changed since they were read; a
    /// configuration that no longer loads is logged and the previous one kept.
    pub fn reload_if_changed(&self) {
        let mut files = self.files.lock().unwrap();
        if files.iter().all(|(p, t)| mtime(p) == *t) {
            return;
        }
        match server_config(&self.values, &self.listener, self.sasl) {
            Ok((config, read)) => {
                *self.acceptor.write().unwrap() = TlsAcceptor::from(Arc::new(config));
                *files = read;
                tracing::info!(listener = %self.listener, "TLS key store or trust store changed: reloaded");
            }
            Err(e) => {
                // Not again until the files change once more.
                *files = stamped(files.iter().map(|(p, _)| p.clone()).collect());
                tracing::warn!(listener = %self.listener, error = %e, "TLS files changed but do not load; the previous ones stay in use");
            }
        }
    }

    /// The principal of a connection that completed its handshake: `User:` and the mapped
    /// subject of the client's certificate, or `User:ANONYMOUS` without one.
    pub fn principal(&self, conn: &rustls::ServerConnection) -> anyhow::Result<String> {
        match conn.peer_certificates().and_then(|c| c.first()) {
            None => Ok(ANONYMOUS.to_string()),
            Some(cert) => {
                let dn = subject_dn(cert.as_ref())?;
                Ok(format!("User:{}", self.rules.apply(&dn)?))
            }
        }
    }
}

pub(super) fn mtime(p: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The files with their modification times now.
pub(super) fn stamped(files: Vec<PathBuf>) -> Vec<(PathBuf, Option<SystemTime>)> {
    files
        .into_iter()
        .map(|p| {
            let t = mtime(&p);
            (p, t)
        })
        .collect()
}

pub(super) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(super) type Files = Vec<(PathBuf, Option<SystemTime>)>;

/// The rustls configuration of `listener` and the files it was read from (with their
/// modification times taken before they were read, so a change while reading is seen).
fn server_config(
    values: &Values,
    listener: &str,
    sasl: bool,
) -> anyhow::Result<(ServerConfig, Files)> {
    let get = |k: &str| listener_value(values, listener, k);
    let mut files = Vec::new();
    let (certs, key) = key_store(&get, &mut files)?;
    let client_auth = client_auth(values, listener, sasl);
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS protocol versions: {e}"))?;
    let builder = match client_auth.trim().to_ascii_lowercase().as_str() {
        "none" => builder.with_no_client_auth(),
        mode @ ("required" | "requested") => {
            let roots = trust_store(&get, &mut files)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "ssl.client.auth={mode} needs trusted certificates (ssl.truststore.location or ssl.truststore.certificates)"
                )
            })?;
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let v = if mode == "requested" {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| anyhow::anyhow!("client certificate verifier: {e}"))?,
            )
        }
        other => anyhow::bail!("ssl.client.auth: {other:?} is not required, requested or none"),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("the key store's key and certificate do not fit: {e}"))?;
    Ok((config, files))
}

/// `listener`'s `ssl.client.auth` (`none` when not set). KIP-684: on SASL_SSL the clients
/// authenticate with SASL; a certificate is asked for only when the listener itself says so.
pub(super) fn client_auth(values: &Values, listener: &str, sasl: bool) -> String {
    if sasl {
        let scoped = format!(
            "listener.name.{}.ssl.client.auth",
            listener.to_ascii_lowercase()
        );
        values.get(&scoped).map(|(v, _)| v.clone())
    } else {
        listener_value(values, listener, "ssl.client.auth")
    }
    .unwrap_or_else(|| "none".into())
}

/// Whether the listener's settings name a key store (a file, or inline PEM).
pub(super) fn has_key_store(get: &dyn Fn(&str) -> Option<String>) -> bool {
    get("ssl.keystore.location").is_some() || get("ssl.keystore.certificate.chain").is_some()
}

type Certs = Vec<CertificateDer<'static>>;

/// How a store file is written: the type setting, else its content (PEM text, Java's JKS,
/// or PKCS12, the default of today's keytool).
fn store_kind(kind: Option<String>, data: &[u8]) -> anyhow::Result<&'static str> {
    match kind.map(|k| k.trim().to_ascii_uppercase()).as_deref() {
        Some("PEM") => Ok("PEM"),
        Some("PKCS12") => Ok("PKCS12"),
        _ if data.starts_with(&[0xfe, 0xed, 0xfe, 0xed]) => anyhow::bail!(
            "JKS stores are not read: convert with `keytool -importkeystore -deststoretype PKCS12` or use PEM"
        ),
        Some("JKS") | None if data.trim_ascii_start().starts_with(b"-----BEGIN") => Ok("PEM"),
        Some("JKS") | None => Ok("PKCS12"),
        Some(other) => anyhow::bail!("store type {other} is not PEM or PKCS12"),
    }
}

fn read(path: &str, what: &str, files: &mut Files) -> anyhow::Result<Vec<u8>> {
    let p = PathBuf::from(path.trim());
    let stamp = mtime(&p);
    let data = std::fs::read(&p).map_err(|e| anyhow::anyhow!("{what} {}: {e}", p.display()))?;
    files.push((p, stamp));
    Ok(data)
}

fn pem_certs(pem: &[u8], what: &str) -> anyhow::Result<Certs> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Certs, _>>()
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if certs.is_empty() {
        anyhow::bail!("{what}: no certificate");
    }
    Ok(certs)
}

fn pem_key(pem: &[u8], what: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    if pem.windows(21).any(|w| w == b"ENCRYPTED PRIVATE KEY") {
        anyhow::bail!("{what}: encrypted PEM keys are not read; give the key unencrypted");
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| anyhow::anyhow!("{what}: no private key ({e})"))
}

pub(super) fn key_store(
    get: &dyn Fn(&str) -> Option<String>,
    files: &mut Files,
) -> anyhow::Result<(Certs, PrivateKeyDer<'static>)> {
    if let (Some(chain), Some(key)) = (
        get("ssl.keystore.certificate.chain"),
        get("ssl.keystore.key"),
    ) {
        return Ok((
            pem_certs(chain.as_bytes(), "ssl.keystore.certificate.chain")?,
            pem_key(key.as_bytes(), "ssl.keystore.key")?,
        ));
    }
    let location = get("ssl.keystore.location").ok_or_else(|| {
        anyhow::anyhow!(
            "an SSL listener needs ssl.keystore.location (or ssl.keystore.certificate.chain and ssl.keystore.key)"
        )
    })?;
    let data = read(&location, "ssl.keystore.location", files)?;
    match store_kind(get("ssl.keystore.type"), &data)? {
        "PEM" => Ok((
            pem_certs(&data, "ssl.keystore.location")?,
            pem_key(&data, "ssl.keystore.location")?,
        )),
        _ => {
            let password = get("ssl.keystore.password").unwrap_or_default();
            let store = p12_keystore::KeyStore::from_pkcs12(
                &data,
                &password,
                p12_keystore::Pkcs12ImportPolicy::Strict,
            )
            .map_err(|e| anyhow::anyhow!("ssl.keystore.location (PKCS12): {e}"))?;
            let (_, chain) = store.private_key_chain().ok_or_else(|| {
                anyhow::anyhow!(
                    "ssl.keystore.location (PKCS12): no private key with its certificate"
                )
            })?;
            let certs: Certs = chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
            Ok((certs, key))
        }
    }
}

pub(super) fn trust_store(
    get: &dyn Fn(&str) -> Option<String>,
    files: &mut Files,
) -> anyhow::Result<Option<rustls::RootCertStore>> {
    let certs = if let Some(pem) = get("ssl.truststore.certificates") {
        pem_certs(pem.as_bytes(), "ssl.truststore.certificates")?
    } else if let Some(location) = get("ssl.truststore.location") {
        let data = read(&location, "ssl.truststore.location", files)?;
        match store_kind(get("ssl.truststore.type"), &data)? {
            "PEM" => pem_certs(&data, "ssl.truststore.location")?,
            _ => {
                let password = get("ssl.truststore.password").unwrap_or_default();
                let store = p12_keystore::KeyStore::from_pkcs12(
                    &data,
                    &password,
                    p12_keystore::Pkcs12ImportPolicy::Raw,
                )
                .map_err(|e| anyhow::anyhow!("ssl.truststore.location (PKCS12): {e}"))?;
                store
                    .entries()
                    .filter_map(|(_, e)| match e {
                        p12_keystore::KeyStoreEntry::Certificate(c) => {
                            Some(CertificateDer::from(c.as_der().to_vec()))
                        }
                        _ => None,
                    })
                    .collect()
            }
        }
    } else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        anyhow::bail!("the trust store holds no usable certificate");
    }
    Ok(Some(roots))
}
