//! Window and ack bookkeeping, without I/O or clock.
//!
//! The reader side tells the [`WindowTracker`] of every `W` and every event it
//! decodes; the tracker says when a window is complete and which ack it
//! deserves. The commit side tells it which windows are committed; it hands out
//! the acks in window order (libbeat pipelines two windows and awaits their acks
//! strictly in order, so a later window's ack must never overtake an earlier one).
//!
//! # Which seq an ack carries
//!
//! Always the seq of the last event read in the window, never the count:
//! libbeat numbers 1..n in every window (there the two agree), while
//! logstash-forwarder and jls count on across windows and connections.
//!
//! # Keep-alive
//!
//! Read in logstash-input-beats (`src/main/java/org/logstash/beats/ConnectionHandler.java`,
//! `BeatsHandler.java`, `Server.java`, commit a0220a6): `ConnectionHandler.channelRead`
//! sets a per-connection flag on every read, `BeatsHandler.channelRead0` clears it
//! once a batch has been processed and acked, and on each writer-idle event
//! (`IdleStateHandler` with `IDLESTATE_WRITER_IDLE_TIME_SECONDS = 5`) while the flag
//! is set it writes `new Ack(Protocol.VERSION_2, 0)`: **seq 0, always**, never the
//! highest seq committed so far, and version `'2'` hard-coded even on v1
//! connections. go-lumber's v2 server likewise sends `ACK(0)` every 3 s.
//!
//! Seq 0 is also the only safe value: go-lumber's client (`AwaitACK`) reads acks
//! until one reaches the window's count, so any non-zero seq is taken as a
//! partial ack *of the window it is waiting for*. Repeating an earlier window's
//! last seq would tell libbeat that events of the current window are done
//! (lost on a later reconnect), or exceed its count and be a protocol error.
//! Partial acks (seq k of the current window) are legal but only once events
//! 1..k are committed, and the gateway commits windows whole, so nothing inside
//! the current window is ever committed before the whole of it is.
//!
//! Unlike Logstash, [`WindowTracker::keepalive`] offers nothing on v1
//! connections: logstash-forwarder and jls read the first 6 bytes after a
//! window as *the* ack without looking at them.

use std::collections::VecDeque;
use std::fmt;

use bytes::BufMut;

use crate::encode::encode_ack;
use crate::frame::{Record, Version};

/// An ack to write to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ack {
    pub version: Version,
    pub seq: u32,
}

impl Ack {
    pub fn encode(&self, out: &mut impl BufMut) {
        encode_ack(self.version, self.seq, out);
    }
}

/// Names a completed window for [`WindowTracker::commit`]. Windows of one
/// connection get increasing ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId(pub u64);

/// A window whose events have all been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completed {
    pub id: WindowId,
    /// What to write once the window is committed (also returned then by
    /// [`WindowTracker::next_ack`]).
    pub ack: Ack,
    /// Events in the window.
    pub events: u32,
}

/// The client broke the window rules; the connection should be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowError {
    /// An event before any `W` (or after a `W 0`).
    NoWindow { seq: u32 },
    /// A `W` above the tracker's maximum (go-lumber: `ErrWindowTooLarge`).
    TooLarge { size: u32, max: u32 },
    /// A new `W` after `read` of the `size` events of the current window.
    /// Logstash acks the partial batch; go-lumber and Vector refuse, and no real
    /// client does it, so refusing keeps the ack rules simple.
    Incomplete { read: u32, size: u32 },
    /// [`WindowTracker::commit`] of an id that is not awaiting commit.
    UnknownWindow { id: WindowId },
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::NoWindow { seq } => {
                write!(f, "lumberjack: event seq {seq} outside any window")
            }
            WindowError::TooLarge { size, max } => {
                write!(
                    f,
                    "lumberjack: window size {size} exceeds the maximum {max}"
                )
            }
            WindowError::Incomplete { read, size } => write!(
                f,
                "lumberjack: new window announced after {read} of {size} events of the current one"
            ),
            WindowError::UnknownWindow { id } => {
                write!(f, "lumberjack: window {} is not awaiting commit", id.0)
            }
        }
    }
}

impl std::error::Error for WindowError {}

#[derive(Clone, Copy, Debug)]
struct Current {
    version: Version,
    size: u32,
    read: u32,
    /// A `W` was read and its window has not completed yet. False while an
    /// endless v1 window waits for the first event of its next round.
    announced: bool,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    id: WindowId,
    ack: Ack,
    committed: bool,
}

/// Window and ack state of one connection.
#[derive(Clone, Debug)]
pub struct WindowTracker {
    max_window: u32,
    current: Option<Current>,
    pending: VecDeque<Pending>,
    next_id: u64,
    /// Version of the last `W`, for keep-alives.
    version: Option<Version>,
}

impl WindowTracker {
    /// `max_window` bounds the `W` size (go-lumber's default is 10000; libbeat's
    /// `bulk_max_size` defaults to 2048).
    pub fn new(max_window: u32) -> Self {
        WindowTracker {
            max_window,
            current: None,
            pending: VecDeque::new(),
            next_id: 0,
            version: None,
        }
    }

    fn complete(&mut self, version: Version, seq: u32, events: u32) -> Completed {
        let id = WindowId(self.next_id);
        self.next_id += 1;
        let ack = Ack { version, seq };
        self.pending.push_back(Pending {
            id,
            ack,
            committed: false,
        });
        Completed { id, ack, events }
    }

    /// A `W` frame. `W 0` completes at once with ack seq 0 (what Logstash
    /// answers; libbeat never sends one).
    pub fn on_window(
        &mut self,
        version: Version,
        size: u32,
    ) -> Result<Option<Completed>, WindowError> {
        if size > self.max_window {
            return Err(WindowError::TooLarge {
                size,
                max: self.max_window,
            });
        }
        if let Some(c) = self.current {
            if c.read > 0 {
                return Err(WindowError::Incomplete {
                    read: c.read,
                    size: c.size,
                });
            }
        }
        self.version = Some(version);
        if size == 0 {
            self.current = None;
            return Ok(Some(self.complete(version, 0, 0)));
        }
        self.current = Some(Current {
            version,
            size,
            read: 0,
            announced: true,
        });
        Ok(None)
    }

    /// An event frame. When it is the window's last, the window is complete;
    /// the window then starts over with the same size, because some v1 clients
    /// send one `W` per connection and expect an ack every `size` events.
    ///
    /// The event's own version byte is not checked against the window's (jls
    /// with `:json` sends `1J`); the ack uses the window's.
    pub fn on_event(&mut self, seq: u32) -> Result<Option<Completed>, WindowError> {
        let Some(c) = self.current.as_mut() else {
            return Err(WindowError::NoWindow { seq });
        };
        c.read += 1;
        c.announced = true;
        if c.read < c.size {
            return Ok(None);
        }
        c.read = 0;
        c.announced = false;
        let (version, size) = (c.version, c.size);
        Ok(Some(self.complete(version, seq, size)))
    }

    /// [`on_window`](Self::on_window) or [`on_event`](Self::on_event) as the
    /// record says; acks (client side only) are ignored.
    pub fn on_record(&mut self, record: &Record) -> Result<Option<Completed>, WindowError> {
        match *record {
            Record::Window { version, size } => self.on_window(version, size),
            Record::Event { seq, .. } => self.on_event(seq),
            Record::Ack { .. } => Ok(None),
        }
    }

    /// Every event of window `id` is committed. Its ack becomes available from
    /// [`next_ack`](Self::next_ack) once every earlier window's is.
    pub fn commit(&mut self, id: WindowId) -> Result<(), WindowError> {
        match self.pending.iter_mut().find(|p| p.id == id) {
            Some(p) if !p.committed => {
                p.committed = true;
                Ok(())
            }
            _ => Err(WindowError::UnknownWindow { id }),
        }
    }

    /// The next ack to write, in window order: call until `None` after each
    /// [`commit`](Self::commit).
    pub fn next_ack(&mut self) -> Option<Ack> {
        match self.pending.front() {
            Some(p) if p.committed => self.pending.pop_front().map(|p| p.ack),
            _ => None,
        }
    }

    /// Completed windows whose ack has not been handed out yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Events read so far in the current window.
    pub fn read_in_window(&self) -> u32 {
        self.current.map_or(0, |c| c.read)
    }

    /// Whether the client is waiting on the server: a window announced or
    /// partly read, or read and not yet acked.
    pub fn busy(&self) -> bool {
        !self.pending.is_empty() || self.current.is_some_and(|c| c.announced)
    }

    /// The ack to write when the connection's writer has been idle for the
    /// keep-alive interval (logstash-input-beats: 5 s; the clock is the
    /// caller's): `2A 0` while [`busy`](Self::busy) on a v2 connection,
    /// otherwise nothing. See the module documentation for why seq 0 and why
    /// never on v1.
    pub fn keepalive(&self) -> Option<Ack> {
        match self.version {
            Some(Version::V2) if self.busy() => Some(Ack {
                version: Version::V2,
                seq: 0,
            }),
            _ => None,
        }
    }
}
