//! TCP (and TLS-over-TCP) listeners: bind, accept under a connection limit, hand off.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::proxy::{Policy, ProxyInfo};
use super::tls::TlsAcceptor;
use super::{Connection, StreamHandler};

/// Binds with SO_REUSEADDR (restarts do not wait for TIME_WAIT) and a deep backlog (shippers
/// reconnect in bursts after a restart or a balancer change).
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

pub struct StreamListener<H> {
    pub name: Arc<str>,
    pub protocol: &'static str,
    pub listener: TcpListener,
    pub tls: Option<TlsAcceptor>,
    /// PROXY protocol, read before the TLS handshake; `None` when the listener takes none.
    pub proxy: Option<Arc<Policy>>,
    pub max_connections: usize,
    /// `max_connection_age`: zero for never.
    pub max_age: Duration,
    /// `frame_timeout`, handed to each connection: zero for none.
    pub frame_timeout: Duration,
    /// `[listener.tls] handshake_timeout`.
    pub handshake_timeout: Duration,
    pub handler: Arc<H>,
}

impl<H> StreamListener<H> {
    /// A listener with `config`'s common keys (connection limit, age, PROXY protocol): every
    /// stream source builds its listener the same way.
    pub fn configured(
        config: &crate::config::ListenerConfig,
        name: Arc<str>,
        protocol: &'static str,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        handler: Arc<H>,
    ) -> StreamListener<H> {
        StreamListener {
            proxy: Policy::for_listener(config, &name),
            name,
            protocol,
            listener,
            tls,
            max_connections: config.max_connections,
            max_age: config.max_connection_age,
            frame_timeout: config.frame_timeout,
            handshake_timeout: config
                .tls
                .as_ref()
                .map_or(Duration::from_secs(10), |tls| tls.handshake_timeout),
            handler,
        }
    }
}

impl<H: StreamHandler> StreamListener<H> {
    /// Accepts until `stop` fires; connection tasks go on `tasks`, and see `drain` when the
    /// gateway shuts down, so they can finish what they hold.
    pub async fn run(self, stop: CancellationToken, drain: CancellationToken, tasks: TaskTracker) {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let labels = [
            ("listener", self.name.to_string()),
            ("protocol", self.protocol.to_string()),
        ];
        let open = metrics::gauge!("logport_connections_open", &labels);
        let accepted = metrics::counter!("logport_connections_accepted_total", &labels);
        let aged = metrics::counter!("logport_connections_aged_total", &labels);
        let rejected = metrics::counter!("logport_connections_rejected_total", "listener" => self.name.to_string(), "reason" => "limit");
        let tls_failed = match self.tls {
            Some(_) => {
                metrics::counter!("logport_tls_handshake_failures_total", "listener" => self.name.to_string())
            }
            None => metrics::Counter::noop(),
        };
        let mut limit_warning = crate::warn_limit::WarnLimiter::new(Duration::from_secs(10));
        loop {
            let accept = tokio::select! {
                _ = stop.cancelled() => break,
                accept = self.listener.accept() => accept,
            };
            let (socket, peer) = match accept {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %self.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                rejected.increment(1);
                if let Some(suppressed) = limit_warning.allow() {
                    tracing::warn!(listener = %self.name, %peer, limit = self.max_connections, earlier_warnings_suppressed = suppressed,
                        "connection limit reached: new connection closed (see logport_connections_rejected_total)");
                }
                drop(socket);
                continue;
            };
            accepted.increment(1);
            let _ = socket.set_nodelay(true);
            let (handler, tls, proxy, name, open, tls_failed, aged) = (
                self.handler.clone(),
                self.tls.clone(),
                self.proxy.clone(),
                self.name.clone(),
                open.clone(),
                tls_failed.clone(),
                aged.clone(),
            );
            // The connection's own drain: the gateway's, or its age. Sources close on it between
            // batches, after their acks, whichever fired.
            let close = drain.child_token();
            let max_age = jittered(self.max_age);
            let (frame_timeout, handshake_timeout) = (self.frame_timeout, self.handshake_timeout);
            tasks.spawn(async move {
                let _slot = slot;
                open.increment(1.0);
                let serve = async {
                    let mut socket = socket;
                    if let Some((peer, proxied)) = proxied(proxy, &mut socket, peer, &close).await
                    {
                        let tls = tls.map(|tls| (tls, handshake_timeout));
                        if let Some(stream) = handshake(socket, peer, tls, &name, &tls_failed).await
                        {
                            let conn = Connection {
                                stream,
                                peer,
                                listener: name.clone(),
                                proxied,
                                frame_timeout,
                            };
                            handler.serve(conn, close.clone()).await;
                        }
                    }
                };
                match max_age {
                    None => serve.await,
                    Some(age) => {
                        let expire = async {
                            tokio::time::sleep(age).await;
                            aged.increment(1);
                            tracing::debug!(listener = %name, %peer, ?age, "max_connection_age reached: closing after the batch in flight");
                            close.cancel();
                            std::future::pending::<()>().await
                        };
                        tokio::select! {
                            _ = serve => {}
                            _ = expire => {}
                        }
                    }
                }
                open.decrement(1.0);
            });
        }
    }
}

/// `max_connection_age` plus up to 10% (`None`: never), so that connections opened together, as
/// after a restart, do not all come back at the same moment.
fn jittered(age: Duration) -> Option<Duration> {
    use std::hash::{BuildHasher, Hasher};
    if age.is_zero() {
        return None;
    }
    // A fresh RandomState is randomly keyed: a good enough source of jitter without a crate.
    let random = std::hash::RandomState::new().build_hasher().finish();
    let tenth = age.as_millis() as u64 / 10;
    Some(age + Duration::from_millis(random % (tenth + 1)))
}

/// The peer the connection speaks for: the client a PROXY header names, or the socket's peer.
/// `None`: close the connection (a bad header, or a drain before the header came).
async fn proxied(
    proxy: Option<Arc<Policy>>,
    socket: &mut TcpStream,
    peer: SocketAddr,
    drain: &CancellationToken,
) -> Option<(SocketAddr, Option<ProxyInfo>)> {
    let Some(proxy) = proxy else {
        return Some((peer, None));
    };
    tokio::select! {
        accepted = proxy.accept(socket, peer) => accepted,
        // Nothing of this connection has been read yet: there is nothing to finish.
        _ = drain.cancelled() => None,
    }
}

async fn handshake(
    socket: TcpStream,
    peer: SocketAddr,
    tls: Option<(TlsAcceptor, Duration)>,
    listener: &str,
    failed: &metrics::Counter,
) -> Option<Box<dyn super::ByteStream>> {
    let Some((tls, timeout)) = tls else {
        return Some(Box::new(socket));
    };
    match tokio::time::timeout(timeout, tls.accept(socket)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(e)) => {
            failed.increment(1);
            tracing::warn!(listener, %peer, error = %e, "TLS handshake failed; connection closed");
            None
        }
        Err(_) => {
            failed.increment(1);
            tracing::warn!(listener, %peer, ?timeout, "TLS handshake did not complete within handshake_timeout; connection closed");
            None
        }
    }
}
