//! Syslog over a byte stream (TCP or TLS): RFC 6587 frames, one Batch per read.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use logport_syslog::{FrameDecoder, FrameErrorKind};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::Shaper;
use crate::batch::Ack;
use crate::event::{now, Event, Protocol};
use crate::source::{
    peer_ip_text, read_draining, read_outcome, AppCache, FrameDeadline, ListenerMetrics, Pipeline,
};
use crate::transport::{Connection, StreamHandler};

/// How much one read asks for. A connection holds at most this plus one unfinished frame.
const READ_SIZE: usize = 64 * 1024;
/// A shaped event's bytes beyond twice its message (fields, `Event` itself), for the estimate.
const EVENT_OVERHEAD: usize = 512;

pub struct SyslogStream {
    pub shaper: Shaper,
    pub max_message: usize,
    pub pipeline: Pipeline,
    pub metrics: ListenerMetrics,
}

/// How a connection ended, for the log line.
enum End {
    Eof,
    Drained,
    Error(String),
}

impl StreamHandler for SyslogStream {
    async fn serve(self: Arc<Self>, mut conn: Connection, drain: CancellationToken) {
        let peer = conn.peer;
        let peer_ip = peer_ip_text(peer);
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        let mut decoder = FrameDecoder::new(self.max_message);
        let mut values = BytesMut::new();
        let mut apps = AppCache::default();
        let mut drain_started: Option<Instant> = None;
        let mut deadline = FrameDeadline::new(conn.frame_timeout);
        tracing::debug!(listener = %conn.listener, %peer, "syslog connection opened");
        let end = loop {
            buf.reserve(READ_SIZE);
            let read = match drain_started {
                None => tokio::select! {
                    // Biased: drain first (a sender that never pauses must not hide it), then the read
                    // before the deadline, so that a frame's last byte wins a tie with it.
                    biased;
                    _ = drain.cancelled() => { drain_started = Some(Instant::now()); continue; }
                    read = conn.stream.read_buf(&mut buf) => read,
                    _ = deadline.expired() => {
                        self.metrics.decode_error("frame_timeout");
                        break End::Error(deadline.reason(&conn.listener, buf.len()));
                    }
                },
                Some(started) => {
                    // A sender that never pauses would otherwise keep a draining gateway alive.
                    match read_draining(&mut conn.stream, &mut buf, started).await {
                        Some(read) => read,
                        None => break End::Drained,
                    }
                }
            };
            let eof = match read_outcome(read, &self.metrics.bytes) {
                Ok(eof) => eof,
                Err(reason) => break End::Error(reason),
            };
            let received = now();
            let received_ns = received.0 * 1_000_000_000 + received.1 as i64;
            // Cut the read into frames first (zero-copy), so that the budget can be reserved for
            // the events before they are built: what waits for budget is only the read buffer.
            let mut frames = Vec::new();
            let mut failure = None;
            loop {
                let next = if eof {
                    decoder.decode_eof(&mut buf)
                } else {
                    decoder.decode(&mut buf)
                };
                match next {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(e) => {
                        self.metrics.decode_error(match e.kind {
                            FrameErrorKind::InvalidOctetCount => "invalid_octet_count",
                            FrameErrorKind::OctetCountTooLarge { .. } => "octet_count_too_large",
                            FrameErrorKind::Truncated { .. } => "truncated_frame",
                        });
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
            // Asked now, started after the send below: a wait for budget is not the sender's.
            let (completed, open) = (!frames.is_empty(), decoder.in_frame());
            if !frames.is_empty() {
                let estimate = frames
                    .iter()
                    .map(|f| 2 * f.bytes.len() + EVENT_OVERHEAD)
                    .sum();
                // Waiting here (budget or sink queue full) stops reading: TCP backpressure.
                let mut reservation = self.pipeline.budget.reserve(estimate).await;
                // One allocation for all the values of this read (they share it as `Bytes`).
                values.reserve(estimate);
                let mut events = Vec::with_capacity(frames.len());
                for frame in frames {
                    let shaped = self.shaper.shape(
                        &frame.bytes,
                        frame.truncated,
                        &peer_ip,
                        received,
                        &mut values,
                        &mut apps,
                    );
                    if frame.truncated {
                        self.metrics.truncated.increment(1);
                    }
                    events.push(Event {
                        app: shaped.app,
                        protocol: Protocol::Syslog,
                        peer,
                        received_ns,
                        value: values.split().freeze(),
                    });
                }
                self.metrics.events.increment(events.len() as u64);
                self.pipeline
                    .budget
                    .settle(&mut reservation, events.iter().map(Event::size).sum());
                if self
                    .pipeline
                    .send_reserved(events, Ack::none(), reservation)
                    .await
                    .is_err()
                {
                    break End::Error("the sink has stopped".into());
                }
            }
            deadline.update(completed, open);
            if let Some(reason) = failure {
                break End::Error(reason);
            }
            if eof {
                break End::Eof;
            }
        };
        match end {
            End::Eof => {
                tracing::debug!(listener = %conn.listener, %peer, "syslog connection closed by peer")
            }
            End::Drained => {
                tracing::debug!(listener = %conn.listener, %peer, "syslog connection closed for drain")
            }
            End::Error(reason) => tracing::warn!(
                listener = %conn.listener, %peer, protocol = "syslog", offset = decoder.offset(),
                "closing connection: {reason}"
            ),
        }
    }
}
