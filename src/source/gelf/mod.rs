//! The gelf source: GELF 1.1 over UDP (whole or chunked, plain, zlib or gzip), TCP and TLS
//! (NUL-framed), shaped as Logstash's gelf input shapes it.

mod app;
mod datagram;
mod options;
mod shape;
mod stream;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use app::AppKey;
pub use datagram::{Chunks, GelfDatagrams};
pub use options::GelfOptions;
pub use shape::Shaper;
pub use stream::GelfStream;

use crate::config::{ListenerConfig, Transport};
use crate::source::{ListenerMetrics, SpawnContext, Spawned};
use crate::transport::tcp::StreamListener;
use crate::warn_limit::WarnLimiter;

pub fn check_app_fields(fields: &[String]) -> Result<(), String> {
    AppKey::compile(fields, "unknown").map(|_| ())
}

pub fn check_listener(listener: &ListenerConfig) -> Result<(), (Vec<&'static str>, String)> {
    options::check_listener(listener)
}

pub fn spawn(
    listener: &ListenerConfig,
    name: Arc<str>,
    context: SpawnContext<'_>,
) -> anyhow::Result<Spawned> {
    let shaper = Shaper::new(listener)?;
    let metrics = ListenerMetrics::new(&name, "gelf");
    let max_message = listener.max_message_bytes.0 as usize;
    match listener.transport {
        Transport::Udp => {
            let socket = crate::transport::udp::bind(
                listener.address,
                listener.receive_buffer_bytes.0 as usize,
            )?;
            let address = socket.local_addr()?;
            crate::transport::udp::warn_if_capped(&name, &socket, listener.receive_buffer_bytes.0);
            let chunks = Arc::new(Mutex::new(Chunks::new(listener, &name)));
            tokio::spawn(datagram::expire_chunks(
                chunks.clone(),
                context.stop.clone(),
            ));
            let handler = GelfDatagrams::new(
                shaper,
                context.pipeline.clone(),
                metrics,
                chunks,
                max_message,
            );
            // UDP has no connections: it stops with the listeners, after reading what is queued.
            let run = crate::transport::udp::run(name, socket, handler, context.stop.clone());
            Ok((address, tokio::spawn(run)))
        }
        Transport::Tcp | Transport::Tls => {
            let tls = match (&listener.tls, listener.transport) {
                (Some(tls), Transport::Tls) => Some(crate::transport::tls::acceptor(tls)?),
                _ => None,
            };
            let socket = crate::transport::tcp::bind(listener.address)?;
            let address = socket.local_addr()?;
            let handler = Arc::new(GelfStream {
                shaper,
                max_message,
                pipeline: context.pipeline.clone(),
                metrics,
                json_warning: Mutex::new(WarnLimiter::new(Duration::from_secs(10))),
            });
            let run = StreamListener::configured(listener, name, "gelf", socket, tls, handler).run(
                context.stop.clone(),
                context.drain.clone(),
                context.connections.clone(),
            );
            Ok((address, tokio::spawn(run)))
        }
    }
}
