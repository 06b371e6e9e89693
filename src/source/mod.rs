//! Sources: a protocol decoder plus a transport, turning what shippers send into Batches.
//! One folder per protocol; what every source shares (the way into the pipeline, per-listener
//! metrics, the app-key cache) lives here.

pub mod beats;
pub mod forward;
pub mod gelf;
pub mod syslog;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::admission::{Admission, Budget, Reservation};
use crate::batch::{Ack, Batch, Commit};
use crate::config::{ListenerConfig, ProtocolName};
use crate::event::Event;

/// Validates a listener's `app_fields` for its protocol (config checking).
pub fn check_app_fields(protocol: ProtocolName, fields: &[String]) -> Result<(), String> {
    match protocol {
        ProtocolName::Syslog => syslog::AppKey::compile(fields, "unknown").map(|_| ()),
        ProtocolName::Beats => beats::check_app_fields(fields),
        ProtocolName::Gelf => gelf::check_app_fields(fields),
        ProtocolName::Forward => forward::check_app_fields(fields),
    }
}

/// What a protocol checks of its listener beyond the common keys: transports it speaks, its own
/// `[listener.PROTOCOL]` table. An error names the keys under the listener (e.g.
/// `["forward", "shared_key"]`) and what is wrong.
pub fn check_listener(listener: &ListenerConfig) -> Result<(), (Vec<&'static str>, String)> {
    match listener.protocol {
        ProtocolName::Syslog => Ok(()),
        ProtocolName::Beats => beats::check_listener(listener),
        ProtocolName::Gelf => gelf::check_listener(listener),
        ProtocolName::Forward => forward::check_listener(listener),
    }
}

/// A bound listener and the task that serves it (every `spawn` returns this).
pub type Spawned = (SocketAddr, tokio::task::JoinHandle<()>);

/// What a source's `spawn` gets from the gateway besides its listener config.
pub struct SpawnContext<'a> {
    pub pipeline: &'a Pipeline,
    /// Stop accepting (listeners close).
    pub stop: &'a tokio_util::sync::CancellationToken,
    /// Open connections should finish what they hold and close (drain).
    pub drain: &'a tokio_util::sync::CancellationToken,
    /// Connection tasks go here, so that a drain can wait for them.
    pub connections: &'a tokio_util::task::TaskTracker,
}

/// The way into the pipeline: admission (the in-flight budget, per-app limits and shares), then
/// the sink's queue.
#[derive(Clone)]
pub struct Pipeline {
    pub batches: mpsc::Sender<Batch>,
    pub budget: Budget,
    pub admission: Arc<Admission>,
    /// A stream source may wait (backpressure); a datagram source cannot, so what it would have
    /// to wait for is dropped instead.
    pub can_wait: bool,
}

/// The sink has stopped (the gateway is shutting down or its sink failed): the batch was not
/// taken.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused;

impl Pipeline {
    /// Sends a batch whose bytes the caller has already reserved (waiting for room in the sink's
    /// queue). Stream sources reserve before they build the batch and stop reading while they
    /// wait: that is how backpressure reaches a TCP sender.
    ///
    /// Per-app limits apply here: in throttle mode (stream sources only) this waits while the
    /// app is over its rate or its share; events dropped by limits are gone, and if none are
    /// left the ack resolves at once (those events were deliberately dropped, not failed).
    pub async fn send_reserved(
        &self,
        events: Vec<Event>,
        ack: Ack,
        reservation: Reservation,
    ) -> Result<(), Refused> {
        if self.batches.is_closed() {
            return Err(Refused);
        }
        // A batch that must wait for its app's rate or share gives its global budget back
        // meanwhile (the admission takes it): a throttled app must not hold the budget every
        // other app needs. It takes budget again once admitted.
        let mut held = Some(reservation);
        let admitted = self.admission.admit(events, self.can_wait, &mut held).await;
        if admitted.events.is_empty() {
            ack.resolve(Commit::Committed);
            return Ok(());
        }
        let size = admitted.events.iter().map(Event::size).sum();
        let reservation = match held {
            Some(mut reservation) => {
                if size < reservation.bytes() {
                    self.budget.settle(&mut reservation, size);
                }
                reservation
            }
            None => self.budget.reserve(size).await,
        };
        let mut batch = Batch::new(admitted.events, ack).with_reservation(reservation);
        batch.shares = admitted.shares;
        self.batches.send(batch).await.map_err(|_| Refused)
    }

    /// The same pipeline for a datagram listener: nothing waits.
    pub fn for_datagrams(&self) -> Pipeline {
        Pipeline {
            can_wait: false,
            ..self.clone()
        }
    }
}

/// Counters of one listener, looked up once rather than per event.
#[derive(Clone)]
pub struct ListenerMetrics {
    pub name: Arc<str>,
    pub protocol: &'static str,
    pub events: metrics::Counter,
    pub bytes: metrics::Counter,
    /// Messages cut at `max_message_bytes`.
    pub truncated: metrics::Counter,
}

impl ListenerMetrics {
    pub fn new(name: &Arc<str>, protocol: &'static str) -> ListenerMetrics {
        let labels = [
            ("listener", name.to_string()),
            ("protocol", protocol.to_string()),
        ];
        ListenerMetrics {
            name: name.clone(),
            protocol,
            events: metrics::counter!("logport_events_received_total", &labels),
            bytes: metrics::counter!("logport_bytes_received_total", &labels),
            truncated: metrics::counter!("logport_messages_truncated_total", &labels),
        }
    }

    /// A decode error that closed a connection or dropped a datagram.
    pub fn decode_error(&self, reason: &'static str) {
        metrics::counter!("logport_decode_errors_total", "listener" => self.name.to_string(), "protocol" => self.protocol, "reason" => reason).increment(1);
    }
}

/// Hands out the same `Arc<str>` for an app key seen again, so that most events of a connection
/// share one allocation for their app.
#[derive(Default)]
pub struct AppCache {
    recent: Vec<Arc<str>>,
}

impl AppCache {
    const SIZE: usize = 8;

    /// App keys longer than this are cut (at a character boundary): a key becomes a Kafka
    /// key, a map key in the limiters and shares, a metric label; a sender choosing 8 KiB
    /// hostnames must not make each of those 8 KiB.
    pub const MAX_APP: usize = 256;

    pub fn get(&mut self, app: &str) -> Arc<str> {
        let app = if app.len() > Self::MAX_APP {
            let mut end = Self::MAX_APP;
            while !app.is_char_boundary(end) {
                end -= 1;
            }
            &app[..end]
        } else {
            app
        };
        if let Some(pos) = self.recent.iter().position(|a| &**a == app) {
            let hit = self.recent[pos].clone();
            if pos > 0 {
                self.recent.swap(pos, 0);
            }
            return hit;
        }
        let fresh: Arc<str> = Arc::from(app);
        if self.recent.len() == Self::SIZE {
            self.recent.pop();
        }
        self.recent.insert(0, fresh.clone());
        fresh
    }
}

/// While draining, a connection is closed once it has been quiet this long...
pub const DRAIN_QUIET: std::time::Duration = std::time::Duration::from_millis(200);
/// ...or has been drained this long, whichever comes first: a sender that never pauses must not
/// keep a draining gateway alive.
pub const DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// One read of a connection that is draining since `started`; `None` once it is time to close
/// (quiet for [`DRAIN_QUIET`], or draining for [`DRAIN_MAX`]).
pub async fn read_draining<R: tokio::io::AsyncRead + Unpin + ?Sized>(
    stream: &mut R,
    buf: &mut bytes::BytesMut,
    started: std::time::Instant,
) -> Option<std::io::Result<usize>> {
    use tokio::io::AsyncReadExt;
    let left = DRAIN_MAX.checked_sub(started.elapsed())?;
    tokio::time::timeout(left.min(DRAIN_QUIET), stream.read_buf(buf))
        .await
        .ok()
}

/// What a read means for a stream source: `Ok(true)` at the end of the stream, `Ok(false)` when
/// bytes came (counted in `bytes`), `Err` with the reason to close otherwise. A TLS peer that
/// closes without close_notify is an end like any other: what was read is kept.
pub fn read_outcome(
    read: std::io::Result<usize>,
    bytes: &metrics::Counter,
) -> Result<bool, String> {
    match read {
        Ok(0) => Ok(true),
        Ok(n) => {
            bytes.increment(n as u64);
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(true),
        Err(e) => Err(format!("read failed: {e}")),
    }
}

/// The `frame_timeout` of one connection: a frame must arrive whole within it of its first
/// byte. Sources ask their decoder after each read whether a frame is open (`in_frame`) and
/// race their read against [`FrameDeadline::expired`].
pub struct FrameDeadline {
    timeout: std::time::Duration,
    /// When the open frame's first byte came (as near as a read tells); `None` between frames.
    since: Option<tokio::time::Instant>,
}

impl FrameDeadline {
    /// A zero `timeout` sets no deadline.
    pub fn new(timeout: std::time::Duration) -> FrameDeadline {
        FrameDeadline {
            timeout,
            since: None,
        }
    }

    /// After a read is decoded: `completed` when a frame ended in it, `open` when a frame is
    /// still open. A frame that began in this read after one that ended starts its clock now.
    pub fn update(&mut self, completed: bool, open: bool) {
        if !open {
            self.since = None;
        } else if completed || self.since.is_none() {
            self.since = Some(tokio::time::Instant::now());
        }
    }

    /// Restarts the open frame's clock after the gateway itself spent time not reading (a wait
    /// for budget or the sink, an ack write): that time is not the sender's.
    pub fn restart(&mut self) {
        if self.since.is_some() {
            self.since = Some(tokio::time::Instant::now());
        }
    }

    /// Resolves once the open frame is overdue; never while no frame is open.
    pub async fn expired(&self) {
        match self.since {
            Some(since) if !self.timeout.is_zero() => {
                tokio::time::sleep_until(since + self.timeout).await
            }
            _ => std::future::pending().await,
        }
    }

    /// Counts the timeout and says why the connection closes, for the warning.
    pub fn reason(&self, listener: &str, held: usize) -> String {
        metrics::counter!("logport_frame_timeouts_total", "listener" => listener.to_owned())
            .increment(1);
        format!(
            "a frame was not whole {:?} after its first byte ({held} bytes of it held): slow or stalled sender (see frame_timeout)",
            self.timeout
        )
    }
}

/// The peer's IP as text, made once per connection (every event of it carries the same).
pub fn peer_ip_text(peer: SocketAddr) -> String {
    match peer.ip() {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        ip => ip.to_string(),
    }
}

/// Runs `work` off the async worker when `heavy` (a decompression that may take many
/// milliseconds): the worker's other tasks, i.e. other connections, move to another thread
/// meanwhile instead of waiting behind a decompression bomb. On a current-thread runtime (an
/// embedder's choice) there is no other thread, so it runs in place.
pub fn off_core<R>(heavy: bool, work: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if heavy && multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Readers that may hold decoded data the in-flight budget does not cover yet, at once,
/// process-wide: one fewer than the CPUs (at least one). A gzip message is known only once
/// inflated and decoded, up to its caps; without this gate every connection could hold that
/// much at the same time, and memory would grow with the number of connections sending such
/// messages rather than stay within the budget plus this many caps. The work is CPU-bound:
/// more would not go faster, and a CPU stays free for every other connection.
static INFLATING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::sync::Semaphore::new(cpus.saturating_sub(1).max(1))
});

/// Waits for a place under the inflation gate (see [`INFLATING`]); holding the permit, the
/// caller may inflate, then must get its events covered by the budget before dropping it. It
/// must not hold budget while it waits here (a holder may wait for budget).
pub async fn inflation_gate() -> tokio::sync::SemaphorePermit<'static> {
    INFLATING
        .acquire()
        .await
        .expect("the inflation gate is never closed")
}

/// A place under the inflation gate if one is free now (no waiting: the caller may hold budget).
pub fn try_inflation_gate() -> Option<tokio::sync::SemaphorePermit<'static>> {
    INFLATING.try_acquire().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_keys_are_shared_and_capped() {
        let mut apps = AppCache::default();
        let a = apps.get("billing");
        assert!(Arc::ptr_eq(&a, &apps.get("billing")));
        let long = "é".repeat(1000);
        let cut = apps.get(&long);
        assert!(cut.len() <= AppCache::MAX_APP && cut.len() >= AppCache::MAX_APP - 1);
        assert!(long.starts_with(&*cut));
    }
}
