//! UDP listeners: a large kernel receive buffer, and datagrams read in batches (everything
//! queued when the socket wakes us) so that one batch, not one datagram, goes down the pipeline.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

pub fn bind(address: SocketAddr, receive_buffer: usize) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // No SO_REUSEADDR: on UDP it would let a second process bind the same port and silently
    // take part of the datagrams, where a clear "address in use" belongs.
    if address.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    // The kernel may grant less than asked (net.core.rmem_max); the listener logs what it got.
    socket.set_recv_buffer_size(receive_buffer)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}

/// What a datagram source does with what a UDP listener reads.
pub trait DatagramHandler: Send + 'static {
    fn datagram(&mut self, payload: &[u8], peer: SocketAddr);
    /// Called after each batch of datagrams read without waiting.
    fn flush(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// The most datagrams, and datagram bytes, handled before a batch is flushed.
const MAX_BATCH: usize = 1024;
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Larger than any UDP payload (65,507 bytes over IPv4).
const MAX_DATAGRAM: usize = 65_536;

pub async fn run<H: DatagramHandler>(
    name: Arc<str>,
    socket: UdpSocket,
    mut handler: H,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            ready = socket.readable() => if let Err(e) = ready {
                tracing::error!(listener = %name, error = %e, "UDP socket failed");
                break;
            },
        }
        read_queued(&name, &socket, &mut buf, &mut handler);
        handler.flush().await;
    }
    // Drain: what the kernel already holds was sent to us; take it before closing.
    read_queued(&name, &socket, &mut buf, &mut handler);
    handler.flush().await;
}

fn read_queued<H: DatagramHandler>(
    name: &str,
    socket: &UdpSocket,
    buf: &mut [u8],
    handler: &mut H,
) {
    let mut bytes = 0;
    for _ in 0..MAX_BATCH {
        if bytes >= MAX_BATCH_BYTES {
            break;
        }
        match socket.try_recv_from(buf) {
            Ok((n, peer)) => {
                bytes += n;
                handler.datagram(&buf[..n], peer);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => {
                // ICMP errors surface here on some systems; they concern one peer, not the socket.
                tracing::debug!(listener = name, error = %e, "UDP receive error");
                break;
            }
        }
    }
}

/// Says so when the kernel granted a smaller receive buffer than configured: bursts (chunked
/// GELF, syslog storms) would then be lost in the kernel, before logport sees them.
pub fn warn_if_capped(name: &str, socket: &tokio::net::UdpSocket, wanted: u64) {
    let got = socket2::SockRef::from(socket)
        .recv_buffer_size()
        .unwrap_or(0) as u64;
    // Linux reports twice the size it granted; less than asked means net.core.rmem_max capped it.
    let got = if cfg!(target_os = "linux") {
        got / 2
    } else {
        got
    };
    if got < wanted {
        tracing::warn!(listener = name, wanted, got, "UDP receive buffer is smaller than configured (raise net.core.rmem_max); bursts may be lost in the kernel");
    }
}
