//! The beats source: Lumberjack v2 (Filebeat and the other Beats) and v1 (logstash-forwarder,
//! Logstash's lumberjack output) over TCP or TLS, shaped as logstash-input-beats shapes them,
//! each window acked only once all its events are committed.

mod acker;
mod app;
mod doc;
mod options;
mod shape;
mod stream;

use std::sync::Arc;

use logport_lumberjack::Limits;

pub use app::AppKey;
pub use options::{check_listener, BeatsOptions};
pub use shape::Shaper;
pub use stream::BeatsStream;

use crate::config::{ListenerConfig, Transport};
use crate::source::{ListenerMetrics, SpawnContext, Spawned};
use crate::transport::tcp::StreamListener;

/// Most key/value pairs in one v1 `D` frame: logstash-forwarder sends 4 plus its custom
/// fields, jls one per flattened leaf.
const MAX_PAIRS: u32 = 1024;

/// Beats events are free-form documents: any field path can name the app.
pub fn check_app_fields(fields: &[String]) -> Result<(), String> {
    AppKey::compile(fields, "unknown").map(|_| ())
}

pub fn spawn(
    listener: &ListenerConfig,
    name: Arc<str>,
    context: SpawnContext<'_>,
) -> anyhow::Result<Spawned> {
    let tls = match (&listener.tls, listener.transport) {
        (Some(tls), Transport::Tls) => Some(crate::transport::tls::acceptor(tls)?),
        (None, Transport::Tls) => anyhow::bail!("transport `tls` needs a [listener.tls] table"),
        (_, Transport::Udp) => anyhow::bail!("the beats protocol does not run over udp"),
        _ => None,
    };
    let metrics = ListenerMetrics::new(&name, "beats");
    let labels = [("listener", name.to_string())];
    let handler = Arc::new(BeatsStream {
        shaper: Shaper::new(listener)?,
        limits: Limits {
            max_payload: listener.max_message_bytes.0 as usize,
            max_inflated: listener.beats.max_inflated_bytes.0 as usize,
            max_pairs: MAX_PAIRS,
        },
        max_window: listener.beats.max_window_events,
        inactivity: listener.beats.client_inactivity_timeout,
        pipeline: context.pipeline.clone(),
        metrics,
        acks: metrics::counter!("logport_beats_acks_total", &labels),
        keepalives: metrics::counter!("logport_beats_keepalives_total", &labels),
        idle_closed: metrics::counter!("logport_beats_idle_closed_total", &labels),
    });
    let socket = crate::transport::tcp::bind(listener.address)?;
    let address = socket.local_addr()?;
    let run = StreamListener::configured(listener, name, "beats", socket, tls, handler).run(
        context.stop.clone(),
        context.drain.clone(),
        context.connections.clone(),
    );
    Ok((address, tokio::spawn(run)))
}
