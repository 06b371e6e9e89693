//! Forward over a byte stream (TCP or TLS): the optional handshake, then messages cut from each
//! read, one Batch per read (a gzip message gets one of its own), and `{"ack": chunk}` replies
//! once its Batch is committed.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use logport_forward::handshake::{encode_pong_failure, REASON_INVALID_PING};
use logport_forward::{Decoder, ErrorKind, Limits, RawMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::partial::{Joined, Joiner};
use super::recent::RecentAcks;
use super::security::{reason_label, Security};
use super::shape::{Peer, Shaper};
use crate::batch::{Ack, Commit};
use crate::event::{now, Event, Protocol};
use crate::source::{
    inflation_gate, off_core, peer_ip_text, try_inflation_gate, AppCache, FrameDeadline,
    ListenerMetrics, Pipeline,
};
use crate::transport::{Connection, StreamHandler};
use crate::warn_limit::WarnLimiter;

/// How much one read asks for.
const READ_SIZE: usize = 64 * 1024;
/// A shaped event's bytes beyond its share of the message times the growth, for the estimate.
const EVENT_OVERHEAD: usize = 512;
/// The bounds of a connection's growth (event bytes per message byte of its gzip messages):
/// twice for plain messages; gzip reaches about 1000:1.
const MIN_GROWTH: usize = 2;
const MAX_GROWTH: usize = 1024;
/// Plain messages of a read this long or longer go through the inflation gate too: tiny
/// entries (`[0,{}]` is 3 bytes) make events a hundred times their bytes.
const HEAVY_READ: usize = 64 << 10;
// While draining (or past `max_connection_age`), a connection is closed between two messages,
// or inside one after `DRAIN_QUIET` of quiet, `DRAIN_MAX` at most (the shared drain rule).
use crate::source::{DRAIN_MAX, DRAIN_QUIET};
/// A client that connects to a listener with a shared key must PING within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ForwardStream {
    pub shaper: Shaper,
    pub limits: Limits,
    /// The largest event (its JSON) accepted: the listener's `max_message_bytes`.
    pub max_event: usize,
    pub skip_invalid_event: bool,
    pub deny_keepalive: bool,
    pub security: Option<Security>,
    pub pipeline: Pipeline,
    pub metrics: ListenerMetrics,
    pub invalid_events: metrics::Counter,
    pub acks: metrics::Counter,
    pub invalid_warning: std::sync::Mutex<WarnLimiter>,
    /// `join_partials`: the bounds of one join (`partial_max_bytes`, `partial_timeout`).
    pub partials: Option<(usize, Duration)>,
    /// `logport_forward_partial_joins_total`, indexed by `Outcome`.
    pub partial_joins: [metrics::Counter; 3],
    /// Chunks committed recently, so that a client's resend is acked, not committed twice.
    pub recent: std::sync::Mutex<RecentAcks>,
    pub duplicates: metrics::Counter,
}

/// How a connection ended, for the log line.
enum End {
    Eof,
    Drained,
    /// `deny_keepalive`: one read's messages per connection.
    OneShot,
    /// Bad input: the decode-error reason label, the text for the log, the stream offset.
    Bad(&'static str, String, u64),
    /// Not the peer's fault (a failed commit, a failed write, the sink gone).
    Error(String),
}

type Pending = (Pin<Box<dyn Future<Output = Commit> + Send>>, Vec<Vec<u8>>);

/// What woke the connection up.
enum Wake {
    Read(std::io::Result<usize>),
    Committed(Commit),
    /// The oldest open join of split lines has waited `partial_timeout`.
    PartialsDue,
    DrainStarted,
    Quiet,
    /// A message begun `frame_timeout` ago is not whole yet.
    FrameOverdue,
}

impl StreamHandler for ForwardStream {
    async fn serve(self: Arc<Self>, mut conn: Connection, drain: CancellationToken) {
        let peer = conn.peer;
        let peer_ip = peer_ip_text(peer);
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        let mut decoder = Decoder::new(self.limits);
        tracing::debug!(listener = %conn.listener, %peer, "forward connection opened");
        if let Some(security) = &self.security {
            // A client that has not authenticated yet holds nothing to commit: drain need not wait.
            let established = tokio::select! {
                ok = self.handshake(&mut conn, &mut decoder, &mut buf, security) => ok,
                _ = drain.cancelled() => false,
            };
            if !established {
                return;
            }
        }
        let mut state = ConnState::default();
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut drain_started: Option<Instant> = None;
        let mut joiner = self.partials.map(|(bytes, wait)| Joiner::new(bytes, wait));
        let mut deadline = FrameDeadline::new(conn.frame_timeout);
        // Bytes that came with the PING may already be the start of a message.
        deadline.update(false, decoder.in_frame(&buf));
        let end = loop {
            buf.reserve(READ_SIZE);
            let wake = {
                let commit = async {
                    match pending.front_mut() {
                        Some((wait, _)) => wait.as_mut().await,
                        None => std::future::pending().await,
                    }
                };
                let partials_due = async {
                    match joiner.as_ref().and_then(Joiner::next_deadline) {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                match drain_started {
                    None => tokio::select! {
                        // Biased: drain first (a sender that never pauses must not hide it),
                        // then acks, and the read before the deadline, so that a message's
                        // last byte wins a tie with it.
                        biased;
                        _ = drain.cancelled() => Wake::DrainStarted,
                        commit = commit => Wake::Committed(commit),
                        _ = partials_due => Wake::PartialsDue,
                        read = conn.stream.read_buf(&mut buf) => Wake::Read(read),
                        _ = deadline.expired() => Wake::FrameOverdue,
                    },
                    // Between messages: what was read is committed and acked below, then the
                    // connection closes and the client sends its next chunk elsewhere.
                    Some(_) if buf.is_empty() => Wake::Quiet,
                    Some(started) => {
                        // A sender that never pauses would otherwise keep a draining gateway alive.
                        let left = DRAIN_MAX.saturating_sub(started.elapsed()).min(DRAIN_QUIET);
                        tokio::select! {
                            commit = commit => Wake::Committed(commit),
                            read = conn.stream.read_buf(&mut buf) => Wake::Read(read),
                            _ = tokio::time::sleep(left) => Wake::Quiet,
                        }
                    }
                }
            };
            let read = match wake {
                Wake::DrainStarted => {
                    drain_started = Some(Instant::now());
                    continue;
                }
                Wake::Quiet => break End::Drained,
                Wake::FrameOverdue => {
                    let reason = deadline.reason(&conn.listener, buf.len());
                    break End::Bad("frame_timeout", reason, decoder.offset());
                }
                Wake::Committed(commit) => {
                    let (_, acks) = pending.pop_front().expect("a pending commit woke us");
                    let written = self.write_acks(&mut conn, commit, &acks).await;
                    deadline.restart();
                    match written {
                        Ok(()) => continue,
                        Err(e) => break End::Error(e),
                    }
                }
                Wake::PartialsDue => {
                    match self
                        .admit(
                            Vec::new(),
                            false,
                            peer,
                            &peer_ip,
                            now(),
                            &mut state,
                            &mut joiner,
                            false,
                        )
                        .await
                    {
                        Ok(next) => pending.extend(next),
                        Err(Admitted::Bad(end, next)) => {
                            pending.extend(next);
                            break end;
                        }
                        Err(Admitted::Refused) => break End::Error("the sink has stopped".into()),
                    }
                    deadline.restart();
                    continue;
                }
                Wake::Read(read) => read,
            };
            let eof = match read {
                Ok(0) => true,
                Ok(n) => {
                    self.metrics.bytes.increment(n as u64);
                    false
                }
                // A TLS peer that closes without close_notify, or a reset: what was read is kept.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => true,
                Err(e) => break End::Error(format!("read failed: {e}")),
            };
            // Cut whole messages first (zero-copy), so that the budget is reserved before any
            // record is decoded, inflated or shaped: what waits for budget is the read buffer.
            let mut raws = Vec::new();
            let mut failure = None;
            loop {
                match decoder.decode_raw(&mut buf) {
                    Ok(Some(raw)) => raws.push(raw),
                    Ok(None) if eof && !buf.is_empty() => {
                        failure = Some(End::Bad(
                            "truncated_frame",
                            format!(
                                "stream ended inside a forward message after {} bytes (stream offset {})",
                                buf.len(),
                                decoder.offset()
                            ),
                            decoder.offset(),
                        ));
                        break;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(End::Bad(error_label(&e.kind), describe(&e), e.offset));
                        break;
                    }
                }
            }
            let had_messages = !raws.is_empty();
            let mut refused = false;
            if had_messages {
                let received = now();
                for (group, gzip) in groups(raws) {
                    match self
                        .admit(
                            group,
                            gzip,
                            peer,
                            &peer_ip,
                            received,
                            &mut state,
                            &mut joiner,
                            false,
                        )
                        .await
                    {
                        Ok(next) => pending.extend(next),
                        // The messages after a bad one are not admitted; those before are.
                        Err(Admitted::Bad(end, next)) => {
                            pending.extend(next);
                            failure = failure.or(Some(end));
                            break;
                        }
                        Err(Admitted::Refused) => {
                            refused = true;
                            break;
                        }
                    }
                }
            }
            if refused {
                break End::Error("the sink has stopped".into());
            }
            // Started after the admission above: a wait for budget is not the sender's.
            deadline.update(had_messages, decoder.in_frame(&buf));
            if let Some(end) = failure {
                break end;
            }
            if eof {
                break End::Eof;
            }
            if had_messages && self.deny_keepalive {
                break End::OneShot;
            }
        };
        // Pieces of split lines held when the connection ends will never be completed here.
        if joiner.as_ref().is_some_and(|j| j.next_deadline().is_some()) {
            match self
                .admit(
                    Vec::new(),
                    false,
                    peer,
                    &peer_ip,
                    now(),
                    &mut state,
                    &mut joiner,
                    true,
                )
                .await
            {
                Ok(next) | Err(Admitted::Bad(_, next)) => pending.extend(next),
                Err(Admitted::Refused) => {}
            }
        }
        // What was accepted is committed whatever ended the connection; its acks still go out
        // (a peer that is gone simply does not read them).
        let end = match end {
            End::Error(e) => End::Error(e),
            end => {
                let mut flushed = Ok(());
                while let Some((wait, acks)) = pending.pop_front() {
                    let commit = wait.await;
                    flushed = self.write_acks(&mut conn, commit, &acks).await;
                    if flushed.is_err() {
                        break;
                    }
                }
                match (flushed, end) {
                    (Err(e), End::Eof) => {
                        tracing::debug!(listener = %conn.listener, %peer, "acks not written after the peer closed: {e}");
                        End::Eof
                    }
                    (Err(e), End::Drained | End::OneShot) => End::Error(e),
                    (_, end) => end,
                }
            }
        };
        let _ = tokio::time::timeout(WRITE_TIMEOUT, conn.stream.shutdown()).await;
        match end {
            End::Eof => {
                tracing::debug!(listener = %conn.listener, %peer, "forward connection closed by peer")
            }
            End::Drained => {
                tracing::debug!(listener = %conn.listener, %peer, "forward connection closed for drain")
            }
            End::OneShot => {
                tracing::debug!(listener = %conn.listener, %peer, "forward connection closed (deny_keepalive)")
            }
            End::Bad(label, reason, offset) => {
                self.metrics.decode_error(label);
                tracing::warn!(
                    listener = %conn.listener, %peer, protocol = "forward", offset,
                    "closing connection: {reason}"
                )
            }
            End::Error(reason) => tracing::warn!(
                listener = %conn.listener, %peer, protocol = "forward", offset = decoder.offset(),
                "closing connection: {reason}"
            ),
        }
    }
}

/// What a connection keeps from one read to the next for shaping and estimating.
struct ConnState {
    values: BytesMut,
    scratch: Vec<u8>,
    apps: AppCache,
    /// Event bytes per message byte of this connection's last gzip message (at least 2): a
    /// CompressedPackedForward chunk grows many times when inflated, so its budget is
    /// estimated on what the connection's earlier ones grew to.
    growth: usize,
}

impl Default for ConnState {
    fn default() -> Self {
        ConnState {
            values: BytesMut::new(),
            scratch: Vec::new(),
            apps: AppCache::default(),
            growth: MIN_GROWTH,
        }
    }
}

/// One Batch being shaped, and what shaping needs.
struct Shaped<'a, 'b> {
    who: Peer<'a>,
    peer: std::net::SocketAddr,
    received: (i64, u32),
    received_ns: i64,
    events: Vec<Event>,
    values: &'b mut BytesMut,
    scratch: &'b mut Vec<u8>,
    apps: &'b mut AppCache,
}

/// Why a read's messages were not all admitted.
enum Admitted {
    /// Bad input at some message: the ones before it (and their acks) still went through.
    Bad(End, Option<Pending>),
    Refused,
}

impl ForwardStream {
    /// Runs the server side of the handshake; false when the connection must close.
    async fn handshake(
        &self,
        conn: &mut Connection,
        decoder: &mut Decoder,
        buf: &mut BytesMut,
        security: &Security,
    ) -> bool {
        let peer = conn.peer;
        let mut handshake = match security.start() {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(listener = %conn.listener, %peer, "cannot start the forward handshake: {e}");
                return false;
            }
        };
        if write(conn, &handshake.helo()).await.is_err() {
            return false;
        }
        let ping = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            loop {
                match decoder.decode_raw(buf) {
                    Ok(Some(raw)) => return Ok(raw),
                    Ok(None) if buf.len() > MAX_PING => {
                        return Err(Some(format!("a PING of more than {MAX_PING} bytes")))
                    }
                    Ok(None) => {}
                    Err(e) => return Err(Some(e.to_string())),
                }
                buf.reserve(1024);
                match conn.stream.read_buf(buf).await {
                    Ok(0) | Err(_) => return Err(None),
                    Ok(n) => self.metrics.bytes.increment(n as u64),
                }
            }
        })
        .await;
        let listener = conn.listener.clone();
        let failure = |reason: &str, label: &'static str, detail: String| {
            metrics::counter!("logport_forward_auth_failures_total", "listener" => listener.to_string(), "reason" => label).increment(1);
            tracing::warn!(
                listener = %listener, %peer, protocol = "forward", offset = decoder.offset(),
                "closing connection: handshake failed: {reason}{detail}"
            );
        };
        let ping: RawMessage = match ping {
            Ok(Ok(raw)) => raw,
            Ok(Err(None)) => {
                tracing::debug!(listener = %conn.listener, %peer, "forward connection closed before its PING");
                return false;
            }
            Ok(Err(Some(e))) => {
                let _ = write(conn, &encode_pong_failure(REASON_INVALID_PING)).await;
                failure(REASON_INVALID_PING, "invalid_ping", format!(" ({e})"));
                return false;
            }
            Err(_) => {
                failure(
                    "no PING",
                    "timeout",
                    format!(" within {HANDSHAKE_TIMEOUT:?}"),
                );
                return false;
            }
        };
        let pong = handshake.on_ping(&ping.bytes);
        let written = write(conn, &pong.reply).await;
        if !pong.ok {
            let who = format!(
                " (client hostname {:?}, username {:?})",
                String::from_utf8_lossy(pong.client_hostname.as_deref().unwrap_or_default()),
                String::from_utf8_lossy(pong.username.as_deref().unwrap_or_default()),
            );
            failure(&pong.reason, reason_label(&pong.reason), who);
            return false;
        }
        written.is_ok()
    }

    /// Decodes and shapes a group of one read's messages (see [`groups`]; `gzip`: it may
    /// inflate) into one Batch and sends it, the budget reserved first. Returns the acks to write once that Batch is committed. With `join_partials`,
    /// split lines whose wait is over (every open one with `flush_all`) go first: they are older.
    #[allow(clippy::too_many_arguments)]
    async fn admit(
        &self,
        raws: Vec<RawMessage>,
        gzip: bool,
        peer: std::net::SocketAddr,
        peer_ip: &str,
        received: (i64, u32),
        state: &mut ConnState,
        joiner: &mut Option<Joiner>,
        flush_all: bool,
    ) -> Result<Option<Pending>, Admitted> {
        let clock = Instant::now();
        let ready = match joiner {
            Some(j) if flush_all => j.take_all(),
            Some(j) => j.expired(clock),
            None => Vec::new(),
        };
        let wire: usize = raws.iter().map(|r| r.bytes.len()).sum();
        // A gzip message is estimated on what this connection's gzip messages grew to, within
        // what one message may cost and a quarter of the budget (a bigger estimate would wait
        // for the whole budget to drain; `cover` below takes the rest).
        let growth = if gzip { state.growth } else { MIN_GROWTH };
        let estimate: usize = raws
            .iter()
            .map(|r| growth.saturating_mul(r.bytes.len()) + EVENT_OVERHEAD)
            .chain(ready.iter().map(|j| 2 * j.bytes + EVENT_OVERHEAD))
            .sum();
        let budget = &self.pipeline.budget;
        let estimate = estimate
            .min(self.limits.max_decoded)
            .min(budget.total() as usize / 4);
        // Waiting here (budget or sink queue full) stops reading: TCP backpressure.
        let mut reservation = budget.reserve(estimate).await;
        // Messages that may decode to far more than their estimate (gzip, or many tiny entries
        // in a large read) are decoded and shaped under the inflation gate, until the budget
        // covers their events: only CPUs - 1 readers, process-wide, hold such uncovered
        // events, however many connections send them. No reader waits for the gate holding
        // budget (a holder may wait for budget), so one that finds it taken lets its
        // reservation go and reserves again once through.
        let gate = match gzip || wire >= HEAVY_READ {
            false => None,
            true => Some(match try_inflation_gate() {
                Some(permit) => permit,
                None => {
                    drop(reservation);
                    let permit = inflation_gate().await;
                    reservation = budget.reserve(estimate).await;
                    permit
                }
            }),
        };
        let ConnState {
            values,
            scratch,
            apps,
            growth,
        } = state;
        let mut out = Shaped {
            who: Peer {
                ip: peer_ip,
                port: peer.port(),
            },
            peer,
            received,
            received_ns: received.0 * 1_000_000_000 + i64::from(received.1),
            events: Vec::new(),
            values,
            scratch,
            apps,
        };
        let mut acks = Vec::new();
        let mut bad = None;
        for joined in ready {
            if let Err(end) = self.push_joined(&mut out, joined, 0) {
                bad = Some(end);
            }
        }
        'messages: for raw in raws.into_iter().filter(|_| bad.is_none()) {
            let chunk = match parse_off_core(&raw.bytes, raw.format, &self.limits) {
                Ok(chunk) => chunk,
                Err(e) => {
                    let e = logport_forward::DecodeError {
                        offset: raw.offset + e.offset,
                        kind: e.kind,
                    };
                    bad = Some(End::Bad(error_label(&e.kind), describe(&e), e.offset));
                    break;
                }
            };
            let ack = chunk.ack();
            // A client that missed an ack resends the chunk under the same id, often on a new
            // connection (Docker's driver does, see README): ack it again, commit it once.
            if let Some(ack) = ack.as_ref().filter(|a| {
                resend_key(peer, a).is_some_and(|k| self.recent.lock().unwrap().contains(&k))
            }) {
                self.duplicates.increment(1);
                acks.push(ack.clone());
                continue;
            }
            if chunk.skipped > 0 {
                if !self.skip_invalid_event {
                    bad = Some(End::Bad(
                        "invalid_event",
                        format!(
                            "{} entries of the message at stream offset {} have no integer/EventTime time or no map record (skip_invalid_event = false)",
                            chunk.skipped, raw.offset
                        ),
                        raw.offset,
                    ));
                    break;
                }
                self.invalid_events.increment(chunk.skipped as u64);
                if let Some(suppressed) = self.invalid_warning.lock().unwrap().allow() {
                    tracing::warn!(listener = %self.metrics.name, %peer, protocol = "forward", offset = raw.offset,
                        skipped = chunk.skipped, earlier_warnings_suppressed = suppressed,
                        "invalid entries dropped: time is not an integer/EventTime or record is not a map (see logport_forward_invalid_events_total)");
                }
            }
            // Fluent Bit sends metrics and traces (not log events) with a non-zero signal.
            let logs = chunk.options.fluent_signal.unwrap_or(0) == 0;
            let first = out.events.len();
            for entry in chunk.entries.iter().filter(|_| logs) {
                let fed = joiner
                    .as_mut()
                    .and_then(|j| j.feed(&chunk.tag, entry.time, &entry.record, clock));
                let pushed = match fed {
                    None => self.push(&mut out, &chunk.tag, entry.time, &entry.record, raw.offset),
                    Some(ready) => ready
                        .into_iter()
                        .try_for_each(|j| self.push_joined(&mut out, j, raw.offset)),
                };
                if let Err(end) = pushed {
                    out.events.truncate(first);
                    bad = Some(end);
                    break 'messages;
                }
            }
            if let Some(ack) = ack {
                acks.push(ack);
            }
        }
        let events = out.events;
        let pending = if events.is_empty() {
            drop(reservation);
            // Nothing to commit (every entry invalid, not logs, or a piece of a line held for
            // joining): in_forward still acks.
            (!acks.is_empty()).then(|| {
                let done: Pin<Box<dyn Future<Output = Commit> + Send>> =
                    Box::pin(async { Commit::Committed });
                (done, acks)
            })
        } else {
            self.metrics.events.increment(events.len() as u64);
            let size: usize = events.iter().map(Event::size).sum();
            if gzip {
                *growth = size.div_ceil(wire).clamp(MIN_GROWTH, MAX_GROWTH);
            }
            // This reader holds no other budget and nothing else unsent, so it may wait for what
            // its estimate missed: events it does not cover would let memory pass the budget.
            let reservation = self.pipeline.budget.cover(reservation, size).await;
            drop(gate);
            let (ack, waiter) = if acks.is_empty() {
                (Ack::none(), None)
            } else {
                let (ack, waiter) = Ack::channel();
                (ack, Some(waiter))
            };
            if self
                .pipeline
                .send_reserved(events, ack, reservation)
                .await
                .is_err()
            {
                return Err(Admitted::Refused);
            }
            waiter.map(|w| {
                let wait: Pin<Box<dyn Future<Output = Commit> + Send>> = Box::pin(w.wait());
                (wait, acks)
            })
        };
        match bad {
            Some(end) => Err(Admitted::Bad(end, pending)),
            None => Ok(pending),
        }
    }

    fn push_joined(
        &self,
        out: &mut Shaped<'_, '_>,
        joined: Joined,
        offset: u64,
    ) -> Result<(), End> {
        self.partial_joins[joined.outcome as usize].increment(1);
        self.push(out, &joined.tag, joined.time, &joined.record, offset)
    }

    /// Shapes one entry into `out`; an event over `max_message_bytes` is bad input.
    fn push(
        &self,
        out: &mut Shaped<'_, '_>,
        tag: &str,
        time: logport_forward::EventTime,
        record: &logport_forward::rmpv::Value,
        offset: u64,
    ) -> Result<(), End> {
        let app = self.shaper.shape(
            tag,
            time,
            record,
            &out.who,
            out.received,
            out.values,
            out.scratch,
            out.apps,
        );
        let value = out.values.split().freeze();
        if value.len() > self.max_event {
            return Err(End::Bad(
                "event_too_large",
                format!(
                    "an event of {} bytes in the message at stream offset {} exceeds max_message_bytes ({})",
                    value.len(),
                    offset,
                    self.max_event
                ),
                offset,
            ));
        }
        out.events.push(Event {
            app,
            protocol: Protocol::Forward,
            peer: out.peer,
            received_ns: out.received_ns,
            value,
        });
        Ok(())
    }

    /// Writes the acks of a committed Batch; a failed commit is never acked (the client resends).
    async fn write_acks(
        &self,
        conn: &mut Connection,
        commit: Commit,
        acks: &[Vec<u8>],
    ) -> Result<(), String> {
        if let Commit::Failed(e) = commit {
            return Err(format!("commit failed, nothing acknowledged: {e}"));
        }
        {
            let mut recent = self.recent.lock().unwrap();
            for key in acks.iter().filter_map(|ack| resend_key(conn.peer, ack)) {
                recent.insert(key);
            }
        }
        let all: Vec<u8> = acks.concat();
        write(conn, &all)
            .await
            .map_err(|e| format!("writing acks failed: {e}"))?;
        self.acks.increment(acks.len() as u64);
        Ok(())
    }
}

/// A client that stops reading must not hold its connection task (and so a drain) forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// A PING is a few hundred bytes; an unauthenticated client may not buffer more than this.
const MAX_PING: usize = 4096;

async fn write(conn: &mut Connection, bytes: &[u8]) -> std::io::Result<()> {
    let write = async {
        conn.stream.write_all(bytes).await?;
        conn.stream.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client does not read its acks",
            ))
        })
}

/// What identifies a chunk already committed: its ack (the client's chunk id) from this client
/// address. Ids are client-chosen: long ones are not remembered (bounded memory), and another
/// client reusing an id is not mistaken for a resend.
fn resend_key(peer: std::net::SocketAddr, ack: &[u8]) -> Option<Vec<u8>> {
    (ack.len() <= 128).then(|| {
        let mut key = peer.ip().to_string().into_bytes();
        key.push(0);
        key.extend_from_slice(ack);
        key
    })
}

/// A protocol error for the log line, with the key to change where a cap refused it.
fn describe(e: &logport_forward::DecodeError) -> String {
    match e.kind {
        ErrorKind::DecodedTooLarge { .. } => {
            format!("{e} (see [listener.forward] max_decoded_bytes)")
        }
        ErrorKind::TooLarge { .. } | ErrorKind::DecompressedTooLarge { .. } => {
            format!("{e} (see [listener.forward] chunk_size_limit)")
        }
        _ => e.to_string(),
    }
}

/// The `logport_decode_errors_total` reason of a protocol error.
fn error_label(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotAnArray { .. } => "not_an_array",
        ErrorKind::InvalidMarker(_) | ErrorKind::InvalidMsgpack(_) => "invalid_msgpack",
        ErrorKind::TooLarge { .. } => "chunk_too_large",
        ErrorKind::TooDeep { .. } => "too_deep",
        ErrorKind::InvalidJson(_) => "invalid_json",
        ErrorKind::BadArity(_) | ErrorKind::BadTag => "bad_message",
        ErrorKind::UnsupportedCompression(_) => "unsupported_compression",
        ErrorKind::Gzip(_) => "invalid_gzip",
        ErrorKind::DecompressedTooLarge { .. } => "decompressed_too_large",
        ErrorKind::DecodedTooLarge { .. } => "decoded_too_large",
        ErrorKind::BadPackedEntries { .. } => "bad_packed_entries",
        ErrorKind::Truncated { .. } => "truncated_frame",
    }
}

/// Whether a message may be CompressedPackedForward (its option `compressed: "gzip"`): a
/// message without those bytes cannot be. One pass of memchr's memmem, far cheaper than the
/// decoding; a record that merely mentions gzip only sends its message through the gate.
fn may_inflate(raw: &RawMessage) -> bool {
    memchr::memmem::find(&raw.bytes, b"gzip").is_some()
}

/// A read's messages in the groups they are admitted in (one batch each), each with whether it
/// may inflate: every message that may alone, each run of the others together.
fn groups(raws: Vec<RawMessage>) -> Vec<(Vec<RawMessage>, bool)> {
    let mut out: Vec<(Vec<RawMessage>, bool)> = Vec::new();
    for raw in raws {
        let gzip = may_inflate(&raw);
        match out.last_mut() {
            Some((group, false)) if !gzip => group.push(raw),
            _ => out.push((vec![raw], gzip)),
        }
    }
    out
}

/// Messages at least this long may inflate to tens of MiB (gzip reaches about 1000:1).
const LONG_PARSE_BYTES: usize = 8 << 10;

/// [`logport_forward::parse`], off the async worker for long messages (see [`off_core`]).
fn parse_off_core(
    bytes: &[u8],
    format: logport_forward::Format,
    limits: &logport_forward::Limits,
) -> Result<logport_forward::Chunk, logport_forward::DecodeError> {
    off_core(bytes.len() >= LONG_PARSE_BYTES, || {
        logport_forward::parse(bytes, format, limits)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_order_and_put_each_message_that_may_inflate_alone() {
        let read = ["a", "b", "gzip1", "gzip2", "c", "d", "gzip3"].map(|m| RawMessage {
            bytes: bytes::Bytes::from(m),
            format: logport_forward::Format::MessagePack,
            offset: 0,
        });
        let got: Vec<(Vec<String>, bool)> = groups(read.to_vec())
            .into_iter()
            .map(|(group, gzip)| {
                let texts = group
                    .iter()
                    .map(|r| String::from_utf8_lossy(&r.bytes).into());
                (texts.collect(), gzip)
            })
            .collect();
        let group = |ms: &[&str], gzip| (ms.iter().map(|m| m.to_string()).collect(), gzip);
        let want = vec![
            group(&["a", "b"], false),
            group(&["gzip1"], true),
            group(&["gzip2"], true),
            group(&["c", "d"], false),
            group(&["gzip3"], true),
        ];
        assert_eq!(got, want);
    }
}
