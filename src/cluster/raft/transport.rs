//! How the quorum's connections are protected: the controller listener's security protocol
//! (`controller.listener.names`, `listener.security.protocol.map`), as for Kafka's own
//! listeners. `SSL` wraps the connection in TLS with the listener's `ssl.*` settings
//! (mutual TLS with `ssl.client.auth`); on `SASL_*` the first frames are a SASL exchange
//! with `sasl.mechanism.controller.protocol`, served by the listener's mechanisms (the
//! credentials from its JAAS settings). With an authorizer set, a connection on an
//! authenticated listener must come from one of `super.users`, as Kafka's controllers
//! require of brokers. A SASL session ends when `connections.max.reauth.ms` or the token's
//! expiry says (KIP-368): the client opens a new connection before, the server closes one
//! used after.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::network::{Reply, Request, read_frame, write_frame};
use crate::cluster::image::Image;
use crate::config::Source;
use crate::config::security::SecurityProtocol;
use crate::security::connector::{BoxStream, Connector, Refused};
use crate::security::sasl::{SaslListener, Step};
use crate::security::tls::TlsListener;

type Values = std::collections::BTreeMap<String, (String, Source)>;

/// How long a new connection has for its TLS handshake and SASL exchange.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Transport {
    pub listener: String,
    pub protocol: SecurityProtocol,
    /// The client side, towards the other voters.
    connector: Connector,
    /// The server side (voters only).
    tls: Option<Arc<TlsListener>>,
    sasl: Option<SaslListener>,
    /// The principals allowed in (`super.users`) when an authorizer is set and the
    /// listener authenticates; None: whoever completes the handshake.
    allowed: Option<Vec<String>>,
    /// When a refused connection (TLS, SASL) was last warned about: at most one warning
    /// per [`WARN_EVERY`], the rest at debug level.
    warned: Mutex<Option<Instant>>,
}

const WARN_EVERY: Duration = Duration::from_secs(30);

/// A connection ready for requests, and when its SASL session ends (if it does).
pub(super) struct Opened {
    pub stream: BoxStream,
    pub session_end: Option<Instant>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transport({} {:?})", self.listener, self.protocol)
    }
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            listener: String::new(),
            protocol: SecurityProtocol::Plaintext,
            connector: Connector::plaintext(),
            tls: None,
            sasl: None,
            allowed: None,
            warned: Mutex::new(None),
        }
    }
}

impl Transport {
    /// The controller listener `listener`'s security, as a client (every node) and, when
    /// `serve` (a voter), as a server.
    pub fn new(
        values: &Values,
        listener: &str,
        protocol: SecurityProtocol,
        serve: bool,
    ) -> anyhow::Result<Transport> {
        let connector = Connector::new(
            values,
            listener,
            protocol,
            "sasl.mechanism.controller.protocol",
        )?;
        let (tls, sasl) = if serve {
            let tls = if protocol.uses_tls() {
                Some(TlsListener::new(values, listener, protocol.uses_sasl())?)
            } else {
                None
            };
            let sasl = if protocol.uses_sasl() {
                Some(SaslListener::new(values, listener)?)
            } else {
                None
            };
            (tls, sasl)
        } else {
            (None, None)
        };
        let authz = crate::security::store::AuthorizerSettings::from_values(values)?;
        if authz.enabled && sasl.as_ref().is_some_and(|s| s.accepts_unsecured_tokens()) {
            anyhow::bail!(
                "OAUTHBEARER with unsecured tokens on the controller listener lets anyone \
                 claim a super user's name and change the cluster's metadata; configure \
                 signed tokens (a JWKS) or another mechanism there"
            );
        }
        let allowed =
            (authz.enabled && protocol != SecurityProtocol::Plaintext).then_some(authz.super_users);
        Ok(Transport {
            listener: listener.to_string(),
            protocol,
            connector,
            tls,
            sasl,
            allowed,
            warned: Mutex::new(None),
        })
    }

    /// Logs a connection the peer refused: a warning now and then, debug otherwise.
    fn refused(&self, e: &io::Error) {
        let mut last = self.warned.lock().unwrap();
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(listener = %self.listener, "metadata quorum: connection refused by the peer: {e}");
        } else {
            tracing::debug!(listener = %self.listener, "metadata quorum: connection refused by the peer: {e}");
        }
    }

    /// A connection to the voter at `addr`, through TLS and SASL when the listener has
    /// them. An error here means nothing was sent.
    pub(super) async fn connect(&self, addr: &str) -> io::Result<Opened> {
        let r = self.open(addr).await;
        if let Err(e) = &r
            && e.kind() == io::ErrorKind::PermissionDenied
        {
            self.refused(e);
        }
        r
    }

    async fn open(&self, addr: &str) -> io::Result<Opened> {
        let mut stream = self
            .connector
            .connect(addr, HANDSHAKE_TIMEOUT)
            .await
            .map_err(|e| {
                let kind = if e.downcast_ref::<Refused>().is_some() {
                    io::ErrorKind::PermissionDenied
                } else {
                    io::ErrorKind::ConnectionRefused
                };
                io::Error::new(kind, format!("{e:#}"))
            })?;
        let Some(login) = &self.connector.login else {
            return Ok(Opened {
                stream,
                session_end: None,
            });
        };
        let refused = |msg: String| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} authentication to {addr}: {msg}", login.mechanism),
            )
        };
        let (mut exchange, mut msg) = login.start().map_err(|e| refused(e.to_string()))?;
        for _ in 0..4 {
            let req = Request::Authenticate {
                mechanism: login.mechanism.clone(),
                bytes: msg,
            };
            write_frame(&mut stream, &req).await?;
            match read_frame(&mut stream, Some(HANDSHAKE_TIMEOUT)).await? {
                Some(Reply::Authenticate(Ok((done, answer, lifetime_ms)))) => {
                    match exchange.next(&answer).map_err(|e| refused(e.to_string()))? {
                        Some(next) if !done => msg = next,
                        None if done => {
                            // Given up at 90% of its lifetime, as Kafka's clients
                            // re-authenticate.
                            let session_end = (lifetime_ms >= 0).then(|| {
                                Instant::now() + Duration::from_millis(lifetime_ms as u64 * 9 / 10)
                            });
                            return Ok(Opened {
                                stream,
                                session_end,
                            });
                        }
                        _ => return Err(refused("the exchange went out of step".into())),
                    }
                }
                Some(Reply::Authenticate(Err(why))) => return Err(refused(why)),
                Some(_) => return Err(refused("unexpected reply".into())),
                None => return Err(refused("the peer closed the connection".into())),
            }
        }
        Err(refused("the exchange did not end".into()))
    }

    /// The server side of a new connection: TLS, SASL and the principal check, within
    /// [`HANDSHAKE_TIMEOUT`]; the stream and when its session ends. Err: the connection is
    /// dropped (the reason logged by the caller).
    pub(super) async fn accept(
        &self,
        tcp: TcpStream,
        image: &watch::Receiver<Arc<Image>>,
    ) -> anyhow::Result<Opened> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.handshake(tcp, image))
            .await
            .map_err(|_| anyhow::anyhow!("no complete handshake in time"))?
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
        image: &watch::Receiver<Arc<Image>>,
    ) -> anyhow::Result<Opened> {
        let (mut stream, mut principal): (BoxStream, String) = match &self.tls {
            None => (
                Box::new(tcp),
                crate::security::principal::ANONYMOUS.to_string(),
            ),
            Some(tls) => {
                tls.reload_if_changed();
                let s = tls.acceptor().accept(tcp).await?;
                let p = tls.principal(s.get_ref().1)?;
                (Box::new(s), p)
            }
        };
        let mut session_end = None;
        if let Some(sasl) = &self.sasl {
            let (p, lifetime_ms) = authenticate(sasl, &mut stream, image).await?;
            principal = p;
            session_end =
                lifetime_ms.map(|ms| Instant::now() + Duration::from_millis(ms.max(0) as u64));
        }
        if let Some(allowed) = &self.allowed
            && !allowed.contains(&principal)
        {
            anyhow::bail!(
                "{principal} is not in super.users: only brokers and controllers may use the \
                 controller listener"
            );
        }
        Ok(Opened {
            stream,
            session_end,
        })
    }
}

/// Runs the client's SASL exchange: its principal and its session's lifetime (ms, if it
/// ends), or why it failed (also sent to it).
async fn authenticate(
    sasl: &SaslListener,
    stream: &mut BoxStream,
    image: &watch::Receiver<Arc<Image>>,
) -> anyhow::Result<(String, Option<i64>)> {
    let data = Arc::new(image.borrow().security.clone());
    let mut mechanism = None;
    for _ in 0..4 {
        let Some(Request::Authenticate {
            mechanism: name,
            bytes,
        }) = read_frame(stream, Some(HANDSHAKE_TIMEOUT)).await?
        else {
            anyhow::bail!("a request before authentication");
        };
        if mechanism.is_none() {
            mechanism = sasl.start(&name, data.clone());
            if mechanism.is_none() {
                let why = format!(
                    "{name} is not enabled on listener {} (it has {})",
                    sasl.listener,
                    sasl.mechanisms.join(", ")
                );
                write_frame(stream, &Reply::Authenticate(Err(why.clone()))).await?;
                anyhow::bail!(why);
            }
        }
        let m = mechanism.as_mut().expect("started above");
        match m.step(&bytes) {
            Ok(Step::Continue(answer)) => {
                write_frame(stream, &Reply::Authenticate(Ok((false, answer, -1)))).await?
            }
            Ok(Step::Done { response, user }) => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let lifetime = sasl.session_lifetime_ms(&name, m.session_expiry_ms(), now_ms);
                let reply = Reply::Authenticate(Ok((true, response, lifetime.unwrap_or(-1))));
                write_frame(stream, &reply).await?;
                return Ok((format!("User:{user}"), lifetime));
            }
            Err(e) => {
                write_frame(stream, &Reply::Authenticate(Err(e.0.clone()))).await?;
                anyhow::bail!("{name} authentication failed: {}", e.0);
            }
        }
    }
    anyhow::bail!("the SASL exchange did not end")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    use crate::config::test_values as values;

    /// One connection from a client with `client` settings to a server with `server`
    /// settings: the client's outcome (when its session ends) and the server's.
    async fn attempt(
        server: &Values,
        client: &Values,
    ) -> (io::Result<Option<Instant>>, anyhow::Result<()>) {
        let p = SecurityProtocol::SaslPlaintext;
        let server = Transport::new(server, "CONTROLLER", p, true).unwrap();
        let client = Transport::new(client, "CONTROLLER", p, false).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (_tx, image) = watch::channel(Arc::new(Image::default()));
        let served = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            server.accept(tcp, &image).await.map(|_| ())
        });
        let connected = client.connect(&addr).await.map(|o| o.session_end);
        (connected, served.await.unwrap())
    }

    #[tokio::test]
    async fn sasl_on_the_quorum_admits_super_users_only() {
        let jaas = |user: &str, pw: &str| {
            format!(
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"{user}\" password=\"{pw}\" user_controller=\"secret\" user_eve=\"eve\";"
            )
        };
        let base = |user: &str, pw: &str| {
            values(&[
                ("sasl.enabled.mechanisms", "PLAIN"),
                ("sasl.mechanism.controller.protocol", "PLAIN"),
                (
                    "authorizer.class.name",
                    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                ),
                ("super.users", "User:controller"),
                (
                    "listener.name.controller.plain.sasl.jaas.config",
                    &jaas(user, pw),
                ),
            ])
        };
        let mut server = base("controller", "secret");
        let (c, s) = attempt(&server, &base("controller", "secret")).await;
        assert!(s.is_ok(), "{s:?}");
        assert_eq!(
            c.unwrap(),
            None,
            "no session lifetime: the session does not end"
        );
        // KIP-368: the client learns the session's lifetime and gives it up at 90%.
        server.insert(
            "listener.name.controller.connections.max.reauth.ms".into(),
            ("10000".into(), Source::File),
        );
        let before = Instant::now();
        let (c, _) = attempt(&server, &base("controller", "secret")).await;
        let end = c.unwrap().expect("a session that ends");
        assert!(end > before + Duration::from_secs(8) && end < before + Duration::from_secs(10));
        // A wrong password: refused, and the client is told.
        let (c, s) = attempt(&server, &base("controller", "wrong")).await;
        assert_eq!(c.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert!(s.is_err());
        // Authenticated, but not a super user: the server drops the connection.
        let (_, s) = attempt(&server, &base("eve", "eve")).await;
        let e = s.unwrap_err().to_string();
        assert!(e.contains("User:eve is not in super.users"), "{e}");
        // Kafka's default mechanism is not spoken: the node does not start.
        let mut gssapi = base("controller", "secret");
        gssapi.remove("sasl.mechanism.controller.protocol");
        let e = Transport::new(
            &gssapi,
            "CONTROLLER",
            SecurityProtocol::SaslPlaintext,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("GSSAPI"), "{e}");
        // Unsecured tokens on the quorum with an authorizer: anyone could be a super user.
        let mut oauth = base("controller", "secret");
        oauth.insert(
            "sasl.enabled.mechanisms".into(),
            ("PLAIN,OAUTHBEARER".into(), Source::File),
        );
        let e = Transport::new(&oauth, "CONTROLLER", SecurityProtocol::SaslPlaintext, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsecured tokens"), "{e}");
    }
}
