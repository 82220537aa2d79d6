//! Accepts connections on every listener and runs one task per connection. Shutdown: stop
//! accepting, let each connection finish the requests it has read, flush the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::security::sasl::SaslListener;
use crate::security::tls::TlsListener;
use crate::{Broker, Config, connection};

/// Open connections, in total and per client address.
struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    open: std::sync::Mutex<(usize, std::collections::HashMap<std::net::IpAddr, usize>)>,
}

/// One admitted connection; gives its slot back when dropped.
struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: std::net::IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap();
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    fn new(max_total: usize, max_per_ip: usize) -> Self {
        ConnectionLimits {
            max_total,
            max_per_ip,
            open: std::sync::Mutex::new((0, Default::default())),
        }
    }

    fn admit(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap();
        let per_ip = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= self.max_total || per_ip >= self.max_per_ip {
            return None;
        }
        open.0 += 1;
        *open.1.entry(ip).or_default() += 1;
        Some(Slot {
            limits: self.clone(),
            ip,
        })
    }
}

pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<(String, TcpListener)>,
    /// The TLS state of each SSL and SASL_SSL listener, by name.
    tls: HashMap<String, Arc<TlsListener>>,
    /// The mechanisms and users of each SASL listener, by name.
    sasl: HashMap<String, Arc<SaslListener>>,
}

/// How long a client has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Lets the owner (main, or a test) stop a running server and wait for it.
pub struct ServerHandle {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    pub addrs: Vec<std::net::SocketAddr>,
    pub broker: Arc<Broker>,
}

impl ServerHandle {
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

impl Server {
    /// Opens the store and binds every listener. A listener on `localhost` binds both loopback
    /// families; one of them failing (no IPv6 on the host) is a warning, not an error.
    pub async fn bind(mut config: Config) -> anyhow::Result<Server> {
        // An SSL listener's key store is read before anything binds: a broker that cannot
        // serve one of its listeners does not start.
        let mut tls = HashMap::new();
        let mut sasl = HashMap::new();
        for (name, p) in &config.listener_protocols {
            if p.uses_tls() {
                let t = TlsListener::new(&config.values, name, p.uses_sasl())
                    .map_err(|e| anyhow::anyhow!("listener {name} ({}): {e}", p.name()))?;
                tls.insert(name.clone(), t);
            }
            if p.uses_sasl() {
                let l = SaslListener::new(&config.values, name)
                    .map_err(|e| anyhow::anyhow!("listener {name} ({}): {e}", p.name()))?;
                sasl.insert(name.clone(), Arc::new(l));
            }
        }
        let mut listeners = Vec::new();
        for l in config.listeners.iter_mut() {
            let addrs = l.bind_addrs();
            if addrs.is_empty() {
                anyhow::bail!("listener {l}: cannot resolve host");
            }
            let mut bound = 0;
            let mut port = l.port;
            for mut addr in addrs.clone() {
                // With port 0, bind every family of this listener to the port the first got.
                if l.port == 0 {
                    addr.set_port(port);
                }
                match TcpListener::bind(addr).await {
                    Ok(s) => {
                        if port == 0 {
                            port = s.local_addr()?.port();
                        }
                        listeners.push((l.name.clone(), s));
                        bound += 1;
                    }
                    Err(e) if addrs.len() > 1 => {
                        tracing::warn!(listener = %l, %addr, error = %e, "could not bind one address of listener")
                    }
                    Err(e) => anyhow::bail!("listener {l}: cannot bind {addr}: {e}"),
                }
            }
            if bound == 0 {
                anyhow::bail!("listener {l}: could not bind any address");
            }
            l.port = port;
        }
        // A listener on port 0 (tests) must advertise the port it actually got.
        for a in config.advertised_listeners.iter_mut() {
            if a.port == 0
                && let Some(l) = config.listeners.iter().find(|l| l.name == a.name)
            {
                a.port = l.port;
            }
        }
        let broker = if config.cluster.is_some() {
            Broker::open_in_cluster(config).await?
        } else {
            Broker::open(config)?
        };
        Ok(Server {
            broker,
            listeners,
            tls,
            sasl,
        })
    }

    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(_, l)| l.local_addr().ok())
            .collect()
    }

    /// Starts accepting in the background.
    pub fn start(self) -> ServerHandle {
        let (tx, rx) = watch::channel(false);
        let addrs = self.local_addrs();
        let broker = self.broker.clone();
        let task = tokio::spawn(self.run(rx));
        ServerHandle {
            shutdown: tx,
            task,
            addrs,
            broker,
        }
    }

    async fn run(self, shutdown: watch::Receiver<bool>) {
        for (name, l) in &self.listeners {
            tracing::info!(listener = %name, addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening");
        }
        let limits = Arc::new(ConnectionLimits::new(
            self.broker.config.max_connections,
            self.broker.config.max_connections_per_ip,
        ));
        let quota: connection::RequestQuota = (self.broker.config.queued_max_request_bytes > 0)
            .then(|| {
                Arc::new(tokio::sync::Semaphore::new(
                    self.broker.config.queued_max_request_bytes as usize,
                ))
            });
        let timers = self.broker.groups.spawn_timers(shutdown.clone());
        let ownership = self.broker.spawn_coordinator_sync(shutdown.clone());
        let cleaner = crate::cleaner::spawn(self.broker.clone(), shutdown.clone());
        let txn_timer = self.broker.txns.spawn_timer(shutdown.clone());
        let reload = (!self.tls.is_empty()).then(|| {
            let tls: Vec<Arc<TlsListener>> = self.tls.values().cloned().collect();
            let mut sd = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(TLS_RELOAD_CHECK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = sd.changed() => break,
                        _ = tick.tick() => {
                            let tls = tls.clone();
                            let _ = tokio::task::spawn_blocking(move || {
                                tls.iter().for_each(|t| t.reload_if_changed())
                            })
                            .await;
                        }
                    }
                }
            })
        });
        let mirror = self.broker.cluster.as_ref().map(|node| {
            crate::cluster::mirror::spawn(self.broker.clone(), node.subscribe(), shutdown.clone())
        });
        let mut conns = JoinSet::new();
        let mut accepts = JoinSet::new();
        let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel(64);
        for (name, l) in self.listeners {
            let tx = conn_tx.clone();
            let mut sd = shutdown.clone();
            accepts.spawn(async move {
                loop {
                    tokio::select! {
                        _ = sd.changed() => break,
                        r = l.accept() => match r {
                            Ok((s, peer)) => { if tx.send((s, peer, name.clone())).await.is_err() { break; } }
                            Err(e) => {
                                // Out of file descriptors and the like: back off instead of spinning.
                                tracing::warn!(error = %e, "accept failed");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                }
            });
        }
        drop(conn_tx);
        let mut sd = shutdown.clone();
        loop {
            tokio::select! {
                _ = sd.changed() => break,
                c = conn_rx.recv() => match c {
                    Some((stream, peer, listener)) => {
                        let _ = stream.set_nodelay(true);
                        tracing::debug!(%peer, %listener, "connection accepted");
                        // max.connections and max.connections.per.ip: refuse at accept time.
                        let Some(slot) = limits.admit(peer.ip()) else {
                            tracing::warn!(%peer, "connection refused: connection limit reached");
                            drop(stream);
                            continue;
                        };
                        let broker = self.broker.clone();
                        let sd = shutdown.clone();
                        let quota = quota.clone();
                        let tls = self.tls.get(&listener).cloned();
                        let sasl = self.sasl.get(&listener).cloned();
                        conns.spawn(async move {
                            match tls {
                                None => connection::serve_stream(broker, stream, peer, listener, sasl, sd, quota).await,
                                Some(tls) => serve_tls(broker, tls, stream, peer, listener, sasl, sd, quota).await,
                            }
                            drop(slot);
                        });
                    }
                    None => break,
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        // A cluster node first hands its leaderships over (controlled shutdown), so that
        // clients move to other brokers before this one stops answering.
        if let Some(node) = &self.broker.cluster {
            node.controlled_shutdown().await;
        }
        tracing::info!(
            connections = conns.len(),
            "shutting down: finishing in-flight requests"
        );
        accepts.shutdown().await;
        let drain = async { while conns.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            tracing::warn!("connections still busy after 10s; closing them");
            conns.shutdown().await;
        }
        if let Some(r) = reload {
            let _ = r.await;
        }
        let _ = timers.await;
        let _ = ownership.await;
        let _ = cleaner.await;
        let _ = txn_timer.await;
        if let Some(m) = mirror {
            let _ = m.await;
        }
        // Every partition's index checkpoint, so the next start has nothing to re-index.
        crate::cleaner::tend_partitions(&self.broker, true);
        match self.broker.store.flush().await {
            Ok(()) => tracing::info!("store flushed"),
            Err(e) => tracing::error!(error = %e, "final flush failed"),
        }
        if let Some(node) = &self.broker.cluster {
            node.stop().await;
        }
    }
}

/// How often the TLS key and trust store files are checked for changes.
const TLS_RELOAD_CHECK: Duration = Duration::from_secs(5);

/// A connection to an SSL listener: the TLS handshake (bounded), the client's principal,
/// then the Kafka protocol over the encrypted stream. A failed handshake (a plaintext
/// client, an untrusted certificate, garbage) closes the connection with a log line.
#[allow(clippy::too_many_arguments)]
async fn serve_tls(
    broker: Arc<Broker>,
    tls: Arc<TlsListener>,
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    listener: String,
    sasl: Option<Arc<SaslListener>>,
    shutdown: watch::Receiver<bool>,
    quota: connection::RequestQuota,
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(%peer, %listener, error = %e, "TLS handshake failed; closing connection");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, %listener, "TLS handshake not completed in time; closing connection");
            return;
        }
    };
    let principal = match tls.principal(stream.get_ref().1) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(%peer, %listener, error = %e, "no principal for the client certificate; closing connection");
            return;
        }
    };
    tracing::debug!(%peer, %listener, %principal, "TLS connection established");
    let (rd, wr) = tokio::io::split(stream);
    connection::serve_split(
        broker,
        rd,
        wr,
        peer,
        listener,
        Arc::from(principal),
        sasl,
        shutdown,
        quota,
    )
    .await;
}
