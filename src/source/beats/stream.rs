//! The read side of a beats connection (TCP or TLS): frames → windows → Batches.
//!
//! Events are built as they are read, under budget reserved before they are built (as the syslog
//! stream does), and held until their window is complete; then the window goes to the sink as
//! one Batch, Logstash's unit. A window too large for that (a sub-batch cap, or a budget that
//! has run out while its events are held) goes in several Batches, and its ack still waits for
//! every one of them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use logport_lumberjack::{
    Completed, Decoder, ErrorKind, FrameType, Limits, Payload, Record, WindowError, WindowTracker,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::acker::{Acker, ReadWindow};
use super::Shaper;
use crate::admission::Reservation;
use crate::batch::{Ack, AckWaiter};
use crate::event::{now, Event, Protocol};
use crate::source::{off_core, peer_ip_text, AppCache, FrameDeadline, ListenerMetrics, Pipeline};
use crate::transport::{ByteStream, Connection, StreamHandler};

/// How much one read asks for.
const READ_SIZE: usize = 64 * 1024;
/// Compressed bytes from which inflating them is worth moving off the async worker.
const LONG_INFLATE_BYTES: usize = 8 * 1024;
/// A shaped event's bytes beyond twice its payload (the parsed tree while shaping, `Event`).
const EVENT_OVERHEAD: usize = 512;
/// Held events of one window beyond this go to the sink as a batch of their own, so that one
/// huge window neither needs the whole budget at once nor builds an unbounded batch.
const SUB_BATCH_MAX: usize = 8 << 20;
/// Read windows waiting for their acks. libbeat pipelines 2; beyond this the reader waits.
const WINDOWS_QUEUED: usize = 32;

pub struct BeatsStream {
    pub shaper: Shaper,
    pub limits: Limits,
    pub max_window: u32,
    pub inactivity: Duration,
    pub pipeline: Pipeline,
    pub metrics: ListenerMetrics,
    pub acks: metrics::Counter,
    pub keepalives: metrics::Counter,
    pub idle_closed: metrics::Counter,
}

/// How a connection ended, for the log line.
enum End {
    Eof,
    Drained,
    Idle,
    /// The acker closed it (commit failed, client gone); it said why.
    Closing,
    Stopped,
    Invalid {
        reason: &'static str,
        offset: u64,
        message: String,
    },
}

/// The window being read: its events built so far and the budget they hold.
#[derive(Default)]
struct Open {
    events: Vec<Event>,
    reservation: Option<Reservation>,
    /// Parts of the window already sent to the sink.
    batches: Vec<AckWaiter>,
}

struct Reader<'a> {
    stream: &'a BeatsStream,
    listener: Arc<str>,
    peer: SocketAddr,
    peer_ip: String,
    tracker: Arc<Mutex<WindowTracker>>,
    windows: mpsc::Sender<ReadWindow>,
    closing: CancellationToken,
    sub_batch_max: usize,
    apps: AppCache,
    values: BytesMut,
    /// Frames read but not yet built into events, and the budget they are estimated to need.
    frames: Vec<Payload>,
    estimate: usize,
    open: Open,
}

impl StreamHandler for BeatsStream {
    async fn serve(self: Arc<Self>, conn: Connection, drain: CancellationToken) {
        let peer = conn.peer;
        let listener = conn.listener.clone();
        let frame_timeout = conn.frame_timeout;
        let (mut rd, wr) = tokio::io::split(conn.stream);
        let tracker = Arc::new(Mutex::new(WindowTracker::new(self.max_window)));
        let closing = CancellationToken::new();
        let (windows, queued) = mpsc::channel(WINDOWS_QUEUED);
        let acker = tokio::spawn(
            Acker {
                tracker: tracker.clone(),
                closing: closing.clone(),
                listener: listener.clone(),
                peer,
                write_timeout: self.inactivity,
                acks: self.acks.clone(),
                keepalives: self.keepalives.clone(),
            }
            .run(wr, queued),
        );
        let total = self.pipeline.budget.total() as usize;
        let mut reader = Reader {
            stream: &self,
            listener: listener.clone(),
            peer,
            peer_ip: peer_ip_text(peer),
            tracker,
            windows,
            closing,
            sub_batch_max: SUB_BATCH_MAX.min(total / 4).max(1),
            apps: AppCache::default(),
            values: BytesMut::new(),
            frames: Vec::new(),
            estimate: 0,
            open: Open::default(),
        };
        tracing::debug!(listener = %listener, %peer, "beats connection opened");
        let mut decoder = Decoder::new(self.limits);
        let deadline = FrameDeadline::new(frame_timeout);
        let end = reader.run(&mut rd, &mut decoder, drain, deadline).await;
        // Completed windows are committed and acked even when the connection ends on bad input;
        // only the incomplete window is dropped (the client sends it again, as to Logstash).
        drop(reader);
        let wr = acker.await;
        if let Ok(wr) = wr {
            let mut stream = rd.unsplit(wr);
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
        }
        match end {
            End::Eof => {
                tracing::debug!(listener = %listener, %peer, "beats connection closed by peer")
            }
            End::Drained => {
                tracing::debug!(listener = %listener, %peer, "beats connection closed for drain")
            }
            End::Closing => tracing::debug!(listener = %listener, %peer, "beats connection closed"),
            End::Stopped => {
                tracing::warn!(listener = %listener, %peer, protocol = "beats", "closing connection: the sink has stopped")
            }
            End::Idle => {
                self.idle_closed.increment(1);
                tracing::info!(listener = %listener, %peer, protocol = "beats", timeout = ?self.inactivity,
                    "closing an idle client (client_inactivity_timeout)")
            }
            End::Invalid {
                reason,
                offset,
                message,
            } => {
                self.metrics.decode_error(reason);
                tracing::warn!(listener = %listener, %peer, protocol = "beats", offset, reason, "closing connection: {message}")
            }
        }
    }
}

impl Reader<'_> {
    async fn run(
        &mut self,
        rd: &mut ReadHalf<Box<dyn ByteStream>>,
        decoder: &mut Decoder,
        drain: CancellationToken,
        mut deadline: FrameDeadline,
    ) -> End {
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        let mut drain_started: Option<Instant> = None;
        loop {
            buf.reserve(READ_SIZE);
            let read = match drain_started {
                None => tokio::select! {
                    // Biased: drain first (a sender that never pauses must not hide it), then the read
                    // before the deadline, so that a frame's last byte wins a tie with it.
                    biased;
                    _ = drain.cancelled() => { drain_started = Some(Instant::now()); continue; }
                    _ = self.closing.cancelled() => return End::Closing,
                    read = tokio::time::timeout(self.stream.inactivity, rd.read_buf(&mut buf)) => match read {
                        Ok(read) => read,
                        // Idle only if the client is not waiting on us (a commit in progress).
                        Err(_) if self.tracker.lock().expect("tracker lock").pending() == 0 => return End::Idle,
                        Err(_) => continue,
                    },
                    _ = deadline.expired() => return End::Invalid {
                        reason: "frame_timeout",
                        offset: decoder.offset(),
                        message: deadline.reason(&self.listener, buf.len()),
                    },
                },
                Some(started) => {
                    // Between windows: the acker acks what was read, then the connection closes
                    // and the client sends its next window elsewhere. Closing inside one would
                    // make it send again what was already committed.
                    if self.tracker.lock().expect("tracker lock").read_in_window() == 0 {
                        return End::Drained;
                    }
                    // Inside a window: read on, unless the client is stalled (quiet or too long).
                    match crate::source::read_draining(rd, &mut buf, started).await {
                        Some(read) => read,
                        None => return End::Drained,
                    }
                }
            };
            let eof = match read {
                Ok(0) => true,
                Ok(n) => {
                    self.stream.metrics.bytes.increment(n as u64);
                    false
                }
                // A TLS peer that closes without close_notify, or a reset: what was read is kept.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => true,
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "beats: read failed");
                    return End::Eof;
                }
            };
            match self.decode(&mut buf, decoder, eof).await {
                // Started after the records were built: a wait for budget is not the sender's.
                Ok(completed) => deadline.update(completed, decoder.in_frame(&buf)),
                Err(end) => return end,
            }
            if eof {
                return End::Eof;
            }
        }
    }

    /// Takes every whole frame out of `buf`, building events as windows complete and at the end.
    async fn decode(
        &mut self,
        buf: &mut BytesMut,
        decoder: &mut Decoder,
        eof: bool,
    ) -> Result<bool, End> {
        let mut completed = false;
        loop {
            // One read can hold a `C` frame of hundreds of thousands of tiny frames (up to
            // max_inflated_bytes of them): yield now and then so the other connections on
            // this worker are not held up behind it.
            tokio::task::consume_budget().await;
            // A `C` frame inflates in this call: off the async worker if the read holds much of
            // it (a 64 KiB read of a bomb inflates to max_inflated_bytes).
            let heavy = buf.len() >= LONG_INFLATE_BYTES && decoder.inflates_next(buf);
            let next = if eof {
                off_core(heavy, || decoder.decode_eof(buf))
            } else {
                off_core(heavy, || decoder.decode(buf))
            };
            let record = match next {
                Ok(Some(record)) => {
                    completed = true;
                    record
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(End::Invalid {
                        reason: decode_reason(&e.kind),
                        offset: e.offset,
                        message: e.to_string(),
                    })
                }
            };
            let invalid = |e: WindowError| End::Invalid {
                reason: window_reason(&e),
                offset: decoder.offset(),
                message: e.to_string(),
            };
            match record {
                Record::Window { version, size } => {
                    let done = self
                        .tracker
                        .lock()
                        .expect("tracker lock")
                        .on_window(version, size)
                        .map_err(invalid)?;
                    if let Some(done) = done {
                        self.finish_window(done).await?;
                    }
                }
                Record::Event { seq, payload, .. } => {
                    let done = self
                        .tracker
                        .lock()
                        .expect("tracker lock")
                        .on_event(seq)
                        .map_err(invalid)?;
                    self.estimate += 2 * payload_len(&payload) + EVENT_OVERHEAD;
                    self.frames.push(payload);
                    if done.is_some() || self.estimate >= self.sub_batch_max {
                        self.build(decoder.offset()).await?;
                    }
                    if let Some(done) = done {
                        self.finish_window(done).await?;
                    }
                }
                Record::Ack { .. } => {
                    return Err(End::Invalid {
                        reason: "unexpected_ack",
                        offset: decoder.offset(),
                        message: "lumberjack: an 'A' frame from the client (only servers ack)"
                            .into(),
                    })
                }
            }
        }
        // What this read brought of a window still open is built now, under its budget.
        self.build(decoder.offset()).await?;
        Ok(completed)
    }

    /// Builds the frames read so far into events of the open window, reserving their budget
    /// first: waiting here stops reading, which is the backpressure a TCP sender feels.
    async fn build(&mut self, offset: u64) -> Result<(), End> {
        if self.frames.is_empty() {
            return Ok(());
        }
        let pipeline = &self.stream.pipeline;
        let estimate = std::mem::take(&mut self.estimate);
        let mut reservation = match pipeline.budget.try_reserve(estimate) {
            Some(r) => r,
            None => {
                // Held events must not wait for budget that only their own commit would free.
                self.send_open().await?;
                tokio::select! {
                    r = pipeline.budget.reserve(estimate) => r,
                    _ = self.closing.cancelled() => return Err(End::Closing),
                }
            }
        };
        let received = now();
        let received_ns = received.0 * 1_000_000_000 + received.1 as i64;
        self.values.reserve(estimate);
        let mut built = Vec::with_capacity(self.frames.len());
        for payload in self.frames.drain(..) {
            let app = self
                .stream
                .shaper
                .shape(
                    &payload,
                    &self.peer_ip,
                    received,
                    &mut self.values,
                    &mut self.apps,
                )
                .map_err(|e| End::Invalid {
                    reason: "invalid_json",
                    offset,
                    message: e.to_string(),
                })?;
            built.push(Event {
                app,
                protocol: Protocol::Beats,
                peer: self.peer,
                received_ns,
                value: self.values.split().freeze(),
            });
        }
        self.stream.metrics.events.increment(built.len() as u64);
        pipeline
            .budget
            .settle(&mut reservation, built.iter().map(Event::size).sum());
        self.open.events.append(&mut built);
        match &mut self.open.reservation {
            Some(held) => held.merge(reservation),
            None => self.open.reservation = Some(reservation),
        }
        if self.open.reservation.as_ref().map_or(0, Reservation::bytes) >= self.sub_batch_max {
            self.send_open().await?;
        }
        Ok(())
    }

    /// Sends the open window's built events to the sink as one batch.
    async fn send_open(&mut self) -> Result<(), End> {
        if self.open.events.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.open.events);
        let reservation = self
            .open
            .reservation
            .take()
            .expect("built events hold a reservation");
        let (ack, waiter) = Ack::channel();
        self.stream
            .pipeline
            .send_reserved(events, ack, reservation)
            .await
            .map_err(|_| End::Stopped)?;
        self.open.batches.push(waiter);
        Ok(())
    }

    /// Every event of a window is read and built: send it, and have the acker ack it once
    /// committed.
    async fn finish_window(&mut self, done: Completed) -> Result<(), End> {
        self.send_open().await?;
        let window = ReadWindow {
            id: done.id,
            batches: std::mem::take(&mut self.open.batches),
        };
        self.windows.send(window).await.map_err(|_| End::Closing)
    }
}

fn payload_len(payload: &Payload) -> usize {
    match payload {
        Payload::Json(json) => json.len(),
        Payload::Pairs(pairs) => pairs.iter().map(|(k, v)| 8 + k.len() + v.len()).sum(),
    }
}

fn decode_reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::UnknownVersion { .. } => "unknown_version",
        ErrorKind::UnknownFrameType { .. } => "unknown_frame_type",
        ErrorKind::TooLarge {
            frame: FrameType::Compressed,
            ..
        } => "compressed_too_large",
        ErrorKind::TooLarge { .. } => "message_too_large",
        ErrorKind::EmptyJson => "empty_json",
        ErrorKind::InvalidPairCount { .. } => "invalid_pair_count",
        ErrorKind::NestedCompressed => "nested_compressed",
        ErrorKind::CorruptZlib { .. } => "corrupt_zlib",
        ErrorKind::TruncatedCompressed { .. } | ErrorKind::TruncatedInner { .. } => {
            "truncated_compressed"
        }
        ErrorKind::TrailingCompressed { .. } => "trailing_compressed",
        ErrorKind::InflatedTooLarge { .. } => "inflated_too_large",
        ErrorKind::Truncated { .. } => "truncated_frame",
    }
}

fn window_reason(e: &WindowError) -> &'static str {
    match e {
        WindowError::NoWindow { .. } => "event_outside_window",
        WindowError::TooLarge { .. } => "window_too_large",
        WindowError::Incomplete { .. } => "window_incomplete",
        WindowError::UnknownWindow { .. } => "unknown_window",
    }
}
