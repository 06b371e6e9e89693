//! Syslog over UDP (RFC 5426): one message per datagram, one Batch per burst of datagrams.

use std::net::SocketAddr;

use bytes::BytesMut;

use super::Shaper;
use crate::admission::Reservation;
use crate::batch::Ack;
use crate::event::{now, Event, Protocol};
use crate::source::{peer_ip_text, AppCache, ListenerMetrics, Pipeline};
use crate::transport::udp::DatagramHandler;
use crate::warn_limit::WarnLimiter;

pub struct SyslogDatagrams {
    shaper: Shaper,
    pipeline: Pipeline,
    metrics: ListenerMetrics,
    dropped_budget: metrics::Counter,
    drop_warning: WarnLimiter,
    events: Vec<Event>,
    /// Budget held by `events`.
    reservation: Option<Reservation>,
    /// Datagrams dropped since the last flush for want of budget.
    dropped: u64,
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
            reservation: None,
            dropped: 0,
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
        let event = Event {
            app: shaped.app,
            protocol: Protocol::Syslog,
            peer,
            received_ns,
            value: self.values.split().freeze(),
        };
        // UDP cannot make the sender wait: a datagram that finds no budget is dropped.
        match self.pipeline.budget.try_reserve(event.size()) {
            Some(r) => {
                match &mut self.reservation {
                    Some(held) => held.merge(r),
                    None => self.reservation = Some(r),
                }
                self.events.push(event);
            }
            None => self.dropped += 1,
        }
    }

    async fn flush(&mut self) {
        self.received = None;
        if self.dropped > 0 {
            let dropped = std::mem::take(&mut self.dropped);
            self.dropped_budget.increment(dropped);
            if let Some(suppressed) = self.drop_warning.allow() {
                tracing::warn!(listener = %self.metrics.name, dropped, earlier_warnings_suppressed = suppressed,
                    "in-flight budget used up: UDP datagrams dropped (see logport_udp_datagrams_dropped_total)");
            }
        }
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        let events = std::mem::take(&mut self.events);
        self.metrics.events.increment(events.len() as u64);
        // A closed pipeline means the gateway is stopping; the datagrams go with it.
        let _ = self
            .pipeline
            .send_reserved(events, Ack::none(), reservation)
            .await;
    }
}
