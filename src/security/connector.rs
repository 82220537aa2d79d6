//! How this node connects to another one's listener, as its own clients would: TCP, then
//! TLS when the listener's protocol has it (the peer's certificate checked against the
//! listener's `ssl.truststore.*`, its host name too unless
//! `ssl.endpoint.identification.algorithm` is empty, and this node's own `ssl.keystore.*`
//! offered for mutual TLS), then, on SASL listeners, the [`Login`] the caller runs in the
//! listener's own protocol. The TLS files are read again when they change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::login::Login;
use super::tls::{
    Files, client_auth, has_key_store, key_store, mtime, provider, stamped, trust_store,
};
use crate::config::Source;
use crate::config::security::{SecurityProtocol, listener_value};

type Values = BTreeMap<String, (String, Source)>;

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// A connection, plaintext or TLS.
pub type BoxStream = Box<dyn Stream>;

/// A connection the peer's security turned down, or that failed its checks: the TLS
/// handshake or the SASL exchange. A configuration problem to log loudly, unlike a peer
/// that is unreachable.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The client side of one listener's security protocol.
pub struct Connector {
    pub listener: String,
    pub protocol: SecurityProtocol,
    tls: Option<ClientTls>,
    /// On SASL listeners: who this node authenticates as.
    pub login: Option<Login>,
    /// On SSL listeners that ask for client certificates: this node offers its own.
    certificate: bool,
}

struct ClientTls {
    values: Values,
    listener: String,
    /// The configuration and the files it was read from, with their times then.
    state: Mutex<(Arc<ClientConfig>, Files)>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Connector({} {:?} {:?})",
            self.listener, self.protocol, self.login
        )
    }
}

impl Connector {
    /// Plain TCP (PLAINTEXT listeners, and tests).
    pub fn plaintext() -> Connector {
        Connector {
            listener: String::new(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            login: None,
            certificate: false,
        }
    }

    /// Whether the peer learns who this node is (a SASL login, or a client certificate the
    /// listener asks for); otherwise this node is `User:ANONYMOUS` there.
    pub fn authenticates(&self) -> bool {
        self.login.is_some() || self.certificate
    }

    /// The client side of `listener`, which speaks `protocol`; on SASL, with the mechanism
    /// `mechanism_setting` names (Kafka's default there, GSSAPI, is refused with the reason).
    pub fn new(
        values: &Values,
        listener: &str,
        protocol: SecurityProtocol,
        mechanism_setting: &str,
    ) -> anyhow::Result<Connector> {
        let tls = if protocol.uses_tls() {
            let (config, files) = client_config(values, listener)
                .with_context(|| format!("TLS to other nodes' listener {listener}"))?;
            Some(ClientTls {
                values: values.clone(),
                listener: listener.to_string(),
                state: Mutex::new((Arc::new(config), files)),
            })
        } else {
            None
        };
        let login = if protocol.uses_sasl() {
            let mechanism = values
                .get(mechanism_setting)
                .map(|(v, _)| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "GSSAPI".to_string());
            Some(Login::from_values(
                values,
                listener,
                &mechanism,
                mechanism_setting,
            )?)
        } else {
            None
        };
        let get = |k: &str| listener_value(values, listener, k);
        let certificate = protocol == SecurityProtocol::Ssl
            && has_key_store(&get)
            && matches!(
                client_auth(values, listener, false)
                    .trim()
                    .to_ascii_lowercase()
                    .as_str(),
                "required" | "requested"
            );
        Ok(Connector {
            listener: listener.to_string(),
            protocol,
            tls,
            login,
            certificate,
        })
    }

    /// Opens a connection to `addr` (`host:port`) and completes the TLS handshake, all
    /// within `timeout`.
    pub async fn connect(&self, addr: &str, timeout: Duration) -> anyhow::Result<BoxStream> {
        let open = async {
            let tcp = TcpStream::connect(addr)
                .await
                .with_context(|| format!("connecting to {addr}"))?;
            tcp.set_nodelay(true)?;
            let Some(tls) = &self.tls else {
                return anyhow::Ok(Box::new(tcp) as BoxStream);
            };
            let host = addr
                .rsplit_once(':')
                .map_or(addr, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| anyhow::anyhow!("{host} is not a host name for TLS: {e}"))?;
            let stream = TlsConnector::from(tls.config())
                .connect(name, tcp)
                .await
                .map_err(|e| Refused(format!("TLS handshake with {addr}: {e}")))?;
            Ok(Box::new(stream) as BoxStream)
        };
        tokio::time::timeout(timeout, open)
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
    }
}

impl ClientTls {
    /// The configuration, read again first if a file it came from changed (a configuration
    /// that no longer loads is logged and the previous one kept).
    fn config(&self) -> Arc<ClientConfig> {
        let mut state = self.state.lock().unwrap();
        if state.1.iter().any(|(p, t)| mtime(p) != *t) {
            match client_config(&self.values, &self.listener) {
                Ok((config, files)) => {
                    *state = (Arc::new(config), files);
                    tracing::info!(listener = %self.listener, "TLS files changed: the client side reloaded them");
                }
                Err(e) => {
                    state.1 = stamped(state.1.iter().map(|(p, _)| p.clone()).collect());
                    tracing::warn!(listener = %self.listener, error = %e, "TLS files changed but do not load; the previous ones stay in use");
                }
            }
        }
        state.0.clone()
    }
}

/// `listener`'s TLS, client side: its trust store verifies the peers, its key store (if it
/// has one) is this node's client certificate.
fn client_config(values: &Values, listener: &str) -> anyhow::Result<(ClientConfig, Files)> {
    let get = |k: &str| listener_value(values, listener, k);
    let mut files = Vec::new();
    let roots = trust_store(&get, &mut files)?.ok_or_else(|| {
        anyhow::anyhow!(
            "connecting to other nodes over TLS needs the certificates to trust: \
             ssl.truststore.location or ssl.truststore.certificates"
        )
    })?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| anyhow::anyhow!("server certificate verifier: {e}"))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS protocol versions: {e}"))?;
    let builder = if check_host_name(values, listener) {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostName(verifier)))
    };
    let config = if has_key_store(&get) {
        let (certs, key) = key_store(&get, &mut files)?;
        builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| anyhow::anyhow!("the key store's key and certificate do not fit: {e}"))?
    } else {
        builder.with_no_client_auth()
    };
    Ok((config, files))
}

/// Kafka's `ssl.endpoint.identification.algorithm`: `https` (the default) checks the host
/// name; an empty value turns the check off (the chain is still verified).
fn check_host_name(values: &Values, listener: &str) -> bool {
    let scoped = format!(
        "listener.name.{}.ssl.endpoint.identification.algorithm",
        listener.to_ascii_lowercase()
    );
    values
        .get(&scoped)
        .or_else(|| values.get("ssl.endpoint.identification.algorithm"))
        .is_none_or(|(v, _)| !v.trim().is_empty())
}

/// WebPKI verification without the host name check.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
