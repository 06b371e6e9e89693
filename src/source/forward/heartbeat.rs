//! in_forward's UDP heartbeat: out_forward (`heartbeat_type udp`) sends a datagram to the
//! forward port and takes the one-byte answer as a sign of life.

use std::sync::Arc;

use logport_forward::encode::HEARTBEAT_MAX_DATAGRAM;
use logport_forward::HEARTBEAT_REPLY;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

pub async fn respond(name: Arc<str>, socket: UdpSocket, stop: CancellationToken) {
    let answered =
        metrics::counter!("logport_forward_heartbeats_total", "listener" => name.to_string());
    // What a datagram holds does not matter; a larger one is truncated by the kernel.
    let mut buf = [0u8; HEARTBEAT_MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => break,
            received = socket.recv_from(&mut buf) => received,
        };
        match received {
            Ok((_, peer)) => {
                // Never wait on a full send buffer: a missed reply is a missed heartbeat, which
                // the client already tolerates.
                match socket.try_send_to(HEARTBEAT_REPLY, peer) {
                    Ok(_) => answered.increment(1),
                    Err(e) => {
                        tracing::debug!(listener = %name, %peer, error = %e, "heartbeat reply not sent")
                    }
                }
            }
            // ICMP errors for an earlier reply surface here; they concern one peer.
            Err(e) => tracing::debug!(listener = %name, error = %e, "heartbeat receive error"),
        }
    }
}
