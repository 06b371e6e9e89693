//! The forward source: Fluentd's forward protocol v1 (Fluentd and Fluent Bit `out_forward`,
//! Docker's fluentd driver, the fluent-logger libraries) over TCP or TLS, with in_forward's
//! handshake, acks after commit, and its UDP heartbeat on the same port; events shaped as
//! Logstash's tcp input with the fluent codec shapes them.

mod app;
mod heartbeat;
mod options;
mod partial;
mod recent;
mod security;
mod shape;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use logport_forward::Limits;

pub use app::AppKey;
pub use options::{ForwardOptions, ForwardUser};

use crate::config::{ListenerConfig, Transport};
use crate::source::{ListenerMetrics, SpawnContext, Spawned};
use crate::transport::tcp::StreamListener;

pub fn check_app_fields(fields: &[String]) -> Result<(), String> {
    AppKey::compile(fields, "unknown").map(|_| ())
}

pub fn check_listener(listener: &ListenerConfig) -> Result<(), (Vec<&'static str>, String)> {
    options::check(listener)
}

/// Heartbeats are a few bytes; a small receive buffer is plenty.
const HEARTBEAT_RECEIVE_BUFFER: usize = 256 << 10;

/// Chunk ids remembered per listener to recognise resends (~100 bytes each).
const RECENT_ACKS: usize = 100_000;

pub fn spawn(
    listener: &ListenerConfig,
    name: Arc<str>,
    context: SpawnContext<'_>,
) -> anyhow::Result<Spawned> {
    let options = &listener.forward;
    let shaper = shape::Shaper::new(listener).map_err(|e| anyhow::anyhow!(e))?;
    let tls = match (&listener.tls, listener.transport) {
        (Some(tls), Transport::Tls) => Some(crate::transport::tls::acceptor(tls)?),
        _ => None,
    };
    let (socket, udp) = bind_pair(listener.address)?;
    let address = socket.local_addr()?;
    let handler = Arc::new(stream::ForwardStream {
        shaper,
        limits: Limits {
            max_message: options.chunk_size_limit.0 as usize,
            max_decompressed: options.max_decompressed(),
            max_decoded: options.max_decoded(),
            ..Limits::default()
        },
        max_event: listener.max_message_bytes.0 as usize,
        skip_invalid_event: options.skip_invalid_event,
        deny_keepalive: options.deny_keepalive,
        security: security::Security::from_options(options),
        pipeline: context.pipeline.clone(),
        metrics: ListenerMetrics::new(&name, "forward"),
        invalid_events: metrics::counter!("logport_forward_invalid_events_total", "listener" => name.to_string()),
        acks: metrics::counter!("logport_forward_acks_total", "listener" => name.to_string()),
        invalid_warning: std::sync::Mutex::new(crate::warn_limit::WarnLimiter::new(
            Duration::from_secs(10),
        )),
        partials: options.join_partials.then_some((
            options.partial_max_bytes.0 as usize,
            options.partial_timeout,
        )),
        partial_joins: partial::Outcome::ALL.map(|outcome| {
            metrics::counter!("logport_forward_partial_joins_total", "listener" => name.to_string(), "outcome" => outcome.label())
        }),
        recent: std::sync::Mutex::new(recent::RecentAcks::new(
            RECENT_ACKS,
            Duration::from_secs(600),
        )),
        duplicates: metrics::counter!("logport_forward_duplicate_chunks_total", "listener" => name.to_string()),
    });
    let tcp = StreamListener::configured(listener, name.clone(), "forward", socket, tls, handler)
        .run(
            context.stop.clone(),
            context.drain.clone(),
            context.connections.clone(),
        );
    let heartbeats = heartbeat::respond(name, udp, context.stop.clone());
    Ok((
        address,
        tokio::spawn(async move {
            tokio::join!(tcp, heartbeats);
        }),
    ))
}

/// The TCP listener and the heartbeat's UDP socket on the same port, as in_forward binds them.
/// With port 0 the kernel picks a TCP port whose UDP twin may be taken: pick again.
fn bind_pair(
    address: SocketAddr,
) -> anyhow::Result<(tokio::net::TcpListener, tokio::net::UdpSocket)> {
    let mut tries = 0;
    loop {
        let tcp = crate::transport::tcp::bind(address)?;
        let bound = tcp.local_addr()?;
        match crate::transport::udp::bind(bound, HEARTBEAT_RECEIVE_BUFFER) {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) if address.port() == 0 && tries < 16 => {
                tries += 1;
                tracing::debug!(%bound, error = %e, "heartbeat port taken; picking another port");
            }
            Err(e) => {
                return Err(e).with_context(|| format!("UDP heartbeat socket on {bound}"));
            }
        }
    }
}

#[cfg(test)]
mod tests;
