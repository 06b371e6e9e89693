//! Syslog over UDP (RFC 5426): one message per datagram, one Batch per burst of datagrams.

use std::net::SocketAddr;

use bytes::BytesMut;

use super::Shaper;
use crate::batch::Ack;
use crate::event::{now, Event, Protocol};
use crate::source::{peer_ip_text, AppCache, ListenerMetrics, Pipeline, Refused};
use crate::transport::udp::DatagramHandler;
use crate::warn_limit::WarnLimiter;

pub struct SyslogDatagrams {
    shaper: Shaper,
    pipeline: Pipeline,
    metrics: ListenerMetrics,
    dropped_budget: metrics::Counter,
    drop_warning: WarnLimiter,
    events: Vec<Event>,
    values: BytesMut,
    apps: AppCache,
    /// The last sender and its address as text: most bursts come from few senders.
    last_peer: Option<(SocketAddr, String)>,
    received: Option<(i64, u32)>,
}

impl SyslogDatagrams {
    pub fn new(shaper: Shaper, pipeline: Pipeline, metrics: ListenerMetrics) -> SyslogDatagrams {
        let dropped_budget = metrics::counter!("logport_udp_datagrams_dropped_total", "listener" => metrics.name.to_string(), "reason" => "budget");
        SyslogDatagrams {
            shaper,
            pipeline,
            metrics,
            dropped_budget,
            drop_warning: WarnLimiter::new(std::time::Duration::from_secs(10)),
            events: Vec::new(),
            values: BytesMut::new(),
            apps: AppCache::default(),
            last_peer: None,
            received: None,
        }
    }
}

impl DatagramHandler for SyslogDatagrams {
    fn datagram(&mut self, payload: &[u8], peer: SocketAddr) {
        self.metrics.bytes.increment(payload.len() as u64);
        let received = *self.received.get_or_insert_with(now);
        if self.last_peer.as_ref().is_none_or(|(p, _)| *p != peer) {
            self.last_peer = Some((peer, peer_ip_text(peer)));
        }
        let peer_ip = &self.last_peer.as_ref().expect("set above").1;
        let line = logport_syslog::trim_datagram(payload);
        if line.is_empty() {
            return;
        }
        let shaped = self.shaper.shape(
            line,
            false,
            peer_ip,
            received,
            &mut self.values,
            &mut self.apps,
        );
        let received_ns = received.0 * 1_000_000_000 + received.1 as i64;
        self.events.push(Event {
            app: shaped.app,
            protocol: Protocol::Syslog,
            peer,
            received_ns,
            value: self.values.split().freeze(),
        });
    }

    async fn flush(&mut self) {
        self.received = None;
        if self.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.events);
        let count = events.len() as u64;
        self.metrics.events.increment(count);
        match self.pipeline.send_or_drop(events, Ack::none()).await {
            Ok(()) => {}
            Err(Refused::Budget) => {
                self.dropped_budget.increment(count);
                if let Some(suppressed) = self.drop_warning.allow() {
                    tracing::warn!(listener = %self.metrics.name, dropped = count, earlier_warnings_suppressed = suppressed,
                        "in-flight budget used up: UDP datagrams dropped (see logport_udp_datagrams_dropped_total)");
                }
            }
            Err(Refused::Closed) => {}
        }
    }
}
