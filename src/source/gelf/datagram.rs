//! GELF over UDP: whole payloads or chunks (reassembled per sender under fixed memory bounds),
//! plain, zlib or gzip; one Batch per burst of datagrams. UDP can only drop: every drop is
//! counted in `logport_udp_datagrams_dropped_total{reason}`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use logport_gelf::{is_chunk, Outcome, Reassembler, ReassemblerConfig, ReassemblerStats};
use tokio_util::sync::CancellationToken;

use super::stream::payload_reason;
use super::Shaper;
use crate::admission::Reservation;
use crate::batch::Ack;
use crate::config::ListenerConfig;
use crate::event::{now, Event, Protocol};
use crate::source::{peer_ip_text, AppCache, ListenerMetrics, Pipeline};
use crate::transport::udp::DatagramHandler;
use crate::warn_limit::WarnLimiter;

/// The reassembler of a listener, shared by its reader and its expiry timer.
pub struct Chunks {
    reassembler: Reassembler<SocketAddr>,
    /// Its stats when the counters were last brought up to date.
    seen: ReassemblerStats,
    metrics: ChunkMetrics,
}

struct ChunkMetrics {
    expired: metrics::Counter,
    evicted: metrics::Counter,
    pending_messages: metrics::Gauge,
    pending_bytes: metrics::Gauge,
}

impl Chunks {
    pub fn new(listener: &ListenerConfig, name: &str) -> Chunks {
        let o = &listener.gelf;
        let dropped = |reason: &'static str| metrics::counter!("logport_udp_datagrams_dropped_total", "listener" => name.to_string(), "reason" => reason);
        Chunks {
            reassembler: Reassembler::new(ReassemblerConfig {
                timeout: o.chunk_timeout,
                max_bytes: o.max_reassembly_bytes.0 as usize,
                max_messages: o.max_pending_messages,
            }),
            seen: ReassemblerStats::default(),
            metrics: ChunkMetrics {
                expired: dropped("expired"),
                evicted: dropped("evicted"),
                pending_messages: metrics::gauge!("logport_gelf_pending_messages", "listener" => name.to_string()),
                pending_bytes: metrics::gauge!("logport_gelf_pending_bytes", "listener" => name.to_string()),
            },
        }
    }

    /// Brings the counters and gauges up to date with the reassembler.
    fn sync(&mut self) {
        let now = *self.reassembler.stats();
        // Counted per partial message: the reassembler reports messages, not the chunks they
        // held (at least one each).
        self.metrics
            .expired
            .increment(now.expired.messages - self.seen.expired.messages);
        self.metrics
            .evicted
            .increment(now.evicted.messages - self.seen.evicted.messages);
        self.metrics
            .pending_messages
            .set(self.reassembler.pending_messages() as f64);
        self.metrics
            .pending_bytes
            .set(self.reassembler.pending_bytes() as f64);
        self.seen = now;
    }
}

/// Drops partial messages on time even when no datagram comes to do it.
pub async fn expire_chunks(chunks: Arc<Mutex<Chunks>>, stop: CancellationToken) {
    // Also how stale the pending gauges may get.
    const MAX_SLEEP: Duration = Duration::from_secs(1);
    loop {
        let next = chunks
            .lock()
            .expect("not poisoned")
            .reassembler
            .next_expiry();
        let now = std::time::Instant::now();
        let wake = next.map_or(now + MAX_SLEEP, |t| t.clamp(now, now + MAX_SLEEP));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
        let mut c = chunks.lock().expect("not poisoned");
        c.reassembler.expire(std::time::Instant::now());
        c.sync();
    }
}

/// Counters of datagrams dropped for one reason each.
struct Dropped {
    budget: metrics::Counter,
    invalid_chunk: metrics::Counter,
    duplicate_chunk: metrics::Counter,
    too_large: metrics::Counter,
    undecodable: metrics::Counter,
}

pub struct GelfDatagrams {
    shaper: Shaper,
    pipeline: Pipeline,
    metrics: ListenerMetrics,
    chunks: Arc<Mutex<Chunks>>,
    max_message: usize,
    dropped: Dropped,
    drop_warning: WarnLimiter,
    bad_input_warning: WarnLimiter,
    events: Vec<Event>,
    /// Budget held by `events`.
    reservation: Option<Reservation>,
    /// Datagrams dropped since the last flush for want of budget.
    dropped_for_budget: u64,
    values: BytesMut,
    apps: AppCache,
    /// The last sender and its address as text: most bursts come from few senders.
    last_peer: Option<(SocketAddr, String)>,
    received: Option<(i64, u32)>,
}

impl GelfDatagrams {
    pub fn new(
        shaper: Shaper,
        pipeline: Pipeline,
        metrics: ListenerMetrics,
        chunks: Arc<Mutex<Chunks>>,
        max_message: usize,
    ) -> GelfDatagrams {
        let dropped = |reason: &'static str| metrics::counter!("logport_udp_datagrams_dropped_total", "listener" => metrics.name.to_string(), "reason" => reason);
        let dropped = Dropped {
            budget: dropped("budget"),
            invalid_chunk: dropped("invalid_chunk"),
            duplicate_chunk: dropped("duplicate_chunk"),
            too_large: dropped("too_large"),
            undecodable: dropped("undecodable"),
        };
        GelfDatagrams {
            shaper,
            pipeline,
            metrics,
            chunks,
            max_message,
            dropped,
            drop_warning: WarnLimiter::new(Duration::from_secs(10)),
            bad_input_warning: WarnLimiter::new(Duration::from_secs(10)),
            events: Vec::new(),
            reservation: None,
            dropped_for_budget: 0,
            values: BytesMut::new(),
            apps: AppCache::default(),
            last_peer: None,
            received: None,
        }
    }

    fn warn_bad_input(&mut self, peer: SocketAddr, reason: &str) {
        if let Some(suppressed) = self.bad_input_warning.allow() {
            tracing::warn!(listener = %self.metrics.name, %peer, protocol = "gelf", offset = 0,
                earlier_warnings_suppressed = suppressed, "GELF datagram dropped: {reason}");
        }
    }

    /// One whole payload: a datagram, or the chunks of a message joined.
    fn payload(&mut self, payload: &[u8], peer: SocketAddr) {
        if payload.len() > self.max_message {
            self.dropped.too_large.increment(1);
            self.metrics.decode_error("too_large");
            let reason = format!(
                "GELF message of {} bytes exceeds max_message_bytes ({})",
                payload.len(),
                self.max_message
            );
            self.warn_bad_input(peer, &reason);
            return;
        }
        let received = *self.received.get_or_insert_with(now);
        if self.last_peer.as_ref().is_none_or(|(p, _)| *p != peer) {
            self.last_peer = Some((peer, peer_ip_text(peer)));
        }
        let peer_ip = &self.last_peer.as_ref().expect("set above").1;
        let shaped =
            match self
                .shaper
                .shape(payload, peer_ip, received, &mut self.values, &mut self.apps)
            {
                Ok(shaped) => shaped,
                Err(e) => {
                    self.dropped.undecodable.increment(1);
                    self.metrics.decode_error(payload_reason(&e));
                    self.warn_bad_input(peer, &e.to_string());
                    return;
                }
            };
        if shaped.json_failed {
            self.metrics.decode_error("not_json");
            self.warn_bad_input(
                peer,
                "not a JSON object: kept as text, tagged _jsonparsefailure (not dropped)",
            );
        }
        let received_ns = received.0 * 1_000_000_000 + received.1 as i64;
        let event = Event {
            app: shaped.app,
            protocol: Protocol::Gelf,
            peer,
            received_ns,
            value: self.values.split().freeze(),
        };
        // UDP cannot make the sender wait: a message that finds no budget is dropped.
        match self.pipeline.budget.try_reserve(event.size()) {
            Some(r) => {
                match &mut self.reservation {
                    Some(held) => held.merge(r),
                    None => self.reservation = Some(r),
                }
                self.events.push(event);
            }
            None => self.dropped_for_budget += 1,
        }
    }
}

impl DatagramHandler for GelfDatagrams {
    fn datagram(&mut self, payload: &[u8], peer: SocketAddr) {
        self.metrics.bytes.increment(payload.len() as u64);
        if !is_chunk(payload) {
            self.payload(payload, peer);
            return;
        }
        let outcome = {
            let mut chunks = self.chunks.lock().expect("not poisoned");
            let outcome = chunks.reassembler.push_from(
                peer,
                Bytes::copy_from_slice(payload),
                std::time::Instant::now(),
            );
            chunks.sync();
            outcome
        };
        match outcome {
            Ok(Outcome::Complete(message)) => self.payload(&message, peer),
            Ok(Outcome::Incomplete) => {}
            Ok(Outcome::Duplicate) => self.dropped.duplicate_chunk.increment(1),
            Err(e) => {
                self.dropped.invalid_chunk.increment(1);
                self.metrics.decode_error("invalid_chunk");
                self.warn_bad_input(peer, &e.to_string());
            }
        }
    }

    async fn flush(&mut self) {
        self.received = None;
        if self.dropped_for_budget > 0 {
            let dropped = std::mem::take(&mut self.dropped_for_budget);
            self.dropped.budget.increment(dropped);
            if let Some(suppressed) = self.drop_warning.allow() {
                tracing::warn!(listener = %self.metrics.name, dropped, earlier_warnings_suppressed = suppressed,
                    "in-flight budget used up: GELF messages dropped (see logport_udp_datagrams_dropped_total)");
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
