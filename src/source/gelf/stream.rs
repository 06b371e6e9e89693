//! GELF over a byte stream (TCP or TLS): NUL-framed JSON, one Batch per read.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use logport_gelf::{FrameDecoder, PayloadError};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Shaper;
use crate::batch::{Ack, AckWaiter, Commit};
use crate::event::{now, Event, Protocol};
use crate::source::{
    peer_ip_text, read_draining, read_outcome, AppCache, FrameDeadline, ListenerMetrics, Pipeline,
};
use crate::transport::{Connection, StreamHandler};
use crate::warn_limit::WarnLimiter;

/// How much one read asks for. A connection holds at most this plus one unfinished frame.
const READ_SIZE: usize = 64 * 1024;
/// A shaped event's bytes beyond twice its payload (fields, `Event` itself), for the estimate.
const EVENT_OVERHEAD: usize = 512;

pub struct GelfStream {
    pub shaper: Shaper,
    pub max_message: usize,
    pub pipeline: Pipeline,
    pub metrics: ListenerMetrics,
    /// Payloads kept as `_jsonparsefailure` events are logged at a bounded rate.
    pub json_warning: Mutex<WarnLimiter>,
}

/// How a connection ended, for the log line.
enum End {
    Eof,
    Drained,
    Error(String),
}

/// The `logport_decode_errors_total` reason of a payload that cannot become an event.
pub fn payload_reason(e: &PayloadError) -> &'static str {
    match e {
        PayloadError::Empty => "empty",
        PayloadError::TooLarge { .. } => "decompressed_too_large",
        PayloadError::Decompress { .. } => "invalid_compression",
        PayloadError::NotAnObject { .. } | PayloadError::Json { .. } => "not_json",
    }
}

/// Waits for the commits of a connection's batches in order; the first failure cancels
/// `failed` so that the reader stops and closes the connection (GELF has no acks to
/// withhold, but a sender on a connection whose events cannot be committed must not carry on
/// as if they were).
async fn watch_commits(
    mut waiters: mpsc::UnboundedReceiver<AckWaiter>,
    failed: CancellationToken,
) -> Option<String> {
    while let Some(waiter) = waiters.recv().await {
        if let Commit::Failed(reason) = waiter.wait().await {
            failed.cancel();
            return Some(reason);
        }
    }
    None
}

impl StreamHandler for GelfStream {
    async fn serve(self: Arc<Self>, mut conn: Connection, drain: CancellationToken) {
        let peer = conn.peer;
        let peer_ip = peer_ip_text(peer);
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        let mut decoder = FrameDecoder::new(self.max_message);
        let mut values = BytesMut::new();
        let mut apps = AppCache::default();
        let mut drain_started: Option<Instant> = None;
        let failed = CancellationToken::new();
        let (waiters, pending) = mpsc::unbounded_channel();
        let watcher = tokio::spawn(watch_commits(pending, failed.clone()));
        let mut deadline = FrameDeadline::new(conn.frame_timeout);
        tracing::debug!(listener = %conn.listener, %peer, "gelf connection opened");
        let end = loop {
            buf.reserve(READ_SIZE);
            let read = match drain_started {
                None => tokio::select! {
                    // Biased: drain first (a sender that never pauses must not hide it), then the read
                    // before the deadline, so that a frame's last byte wins a tie with it.
                    biased;
                    _ = drain.cancelled() => { drain_started = Some(Instant::now()); continue; }
                    _ = failed.cancelled() => break End::Error("a batch of this connection could not be committed".into()),
                    read = conn.stream.read_buf(&mut buf) => read,
                    _ = deadline.expired() => {
                        self.metrics.decode_error("frame_timeout");
                        break End::Error(deadline.reason(&conn.listener, buf.len()));
                    }
                },
                Some(started) => {
                    if failed.is_cancelled() {
                        break End::Error(
                            "a batch of this connection could not be committed".into(),
                        );
                    }
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
                        self.metrics.decode_error("frame_too_long");
                        failure = Some((e.offset(), e.to_string()));
                        break;
                    }
                }
            }
            // Asked now, started after the send below: a wait for budget is not the sender's.
            let (completed, open) = (!frames.is_empty(), decoder.in_frame(&buf));
            if !frames.is_empty() {
                let estimate = frames
                    .iter()
                    .map(|f| 2 * f.bytes.len() + EVENT_OVERHEAD)
                    .sum();
                // Waiting here (budget or sink queue full) stops reading: TCP backpressure.
                let mut reservation = self.pipeline.budget.reserve(estimate).await;
                values.reserve(estimate);
                let mut events = Vec::with_capacity(frames.len());
                for frame in frames {
                    match self.shaper.shape(
                        &frame.bytes,
                        &peer_ip,
                        received,
                        &mut values,
                        &mut apps,
                    ) {
                        Ok(shaped) => {
                            if shaped.json_failed {
                                self.metrics.decode_error("not_json");
                                let allowed =
                                    self.json_warning.lock().expect("not poisoned").allow();
                                if let Some(suppressed) = allowed {
                                    tracing::warn!(listener = %conn.listener, %peer, protocol = "gelf", offset = frame.offset,
                                        earlier_warnings_suppressed = suppressed,
                                        "GELF message is not a JSON object: kept as text, tagged _jsonparsefailure");
                                }
                            }
                            events.push(Event {
                                app: shaped.app,
                                protocol: Protocol::Gelf,
                                peer,
                                received_ns,
                                value: values.split().freeze(),
                            });
                        }
                        Err(e) => {
                            // The messages before it are sent; the connection closes after them.
                            self.metrics.decode_error(payload_reason(&e));
                            failure = Some((frame.offset, e.to_string()));
                            break;
                        }
                    }
                }
                if !events.is_empty() {
                    self.metrics.events.increment(events.len() as u64);
                    self.pipeline
                        .budget
                        .settle(&mut reservation, events.iter().map(Event::size).sum());
                    let (ack, waiter) = Ack::channel();
                    if self
                        .pipeline
                        .send_reserved(events, ack, reservation)
                        .await
                        .is_err()
                    {
                        break End::Error("the sink has stopped".into());
                    }
                    let _ = waiters.send(waiter);
                }
            }
            deadline.update(completed, open);
            if let Some((offset, reason)) = failure {
                break End::Error(format!("{reason} (at stream offset {offset})"));
            }
            if eof {
                break End::Eof;
            }
        };
        // Closing waits for the commits of what was read, so that a drain ends with it
        // committed and a failed commit is told apart from a clean close.
        drop(waiters);
        let commit_failure = watcher.await.ok().flatten();
        let listener = &conn.listener;
        let offset = decoder.offset();
        match (end, commit_failure) {
            (_, Some(reason)) => tracing::warn!(
                %listener, %peer, protocol = "gelf", offset,
                "closing connection: a batch could not be committed: {reason}"
            ),
            (End::Eof, None) => {
                tracing::debug!(%listener, %peer, "gelf connection closed by peer")
            }
            (End::Drained, None) => {
                tracing::debug!(%listener, %peer, "gelf connection closed for drain")
            }
            (End::Error(reason), None) => tracing::warn!(
                %listener, %peer, protocol = "gelf", offset,
                "closing connection: {reason}"
            ),
        }
    }
}
