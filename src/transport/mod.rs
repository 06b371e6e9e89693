//! Transports: accepting bytes from the network (TCP, TLS, UDP) and handing them to a source.
//! Nothing here knows a protocol; sources know nothing of sockets but the stream they are given.

pub mod proxy;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

/// A connected byte stream: plain TCP or TLS over TCP.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ByteStream for T {}

/// One accepted connection, ready for a source to read.
pub struct Connection {
    pub stream: Box<dyn ByteStream>,
    /// The client: from the PROXY header when a balancer sent one, else the socket's peer.
    pub peer: SocketAddr,
    /// What a PROXY header said besides the client's address (the balancer's own address, SNI,
    /// TLS client details); `None` without a header.
    pub proxied: Option<proxy::ProxyInfo>,
    /// The listener's name, for logs and metric labels.
    pub listener: Arc<str>,
    /// The listener's `frame_timeout` (zero: none), which the source enforces per frame.
    pub frame_timeout: std::time::Duration,
}

/// What a stream source does with each connection. `serve` returns when the connection is done
/// (closed by the peer, by an error, or by drain).
pub trait StreamHandler: Send + Sync + 'static {
    fn serve(
        self: Arc<Self>,
        conn: Connection,
        drain: tokio_util::sync::CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send;
}
