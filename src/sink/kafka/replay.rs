//! Replays the spool into Kafka, in order, once Kafka takes events again.
//!
//! The replayer reads the spool from its cursor in chunks, produces each chunk and waits for its
//! delivery reports; only then does it advance (and persist) the cursor, which lets the spool
//! free the replayed segments. A crash between delivery and the cursor's save re-sends a chunk:
//! duplicates, never loss. When it has nothing left to replay it checks that Kafka answers and
//! says so, which is how the sink knows it may send directly again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::producer::{broker_answers, create, send_events, Envelope, Outcome, Producer, Tracker};
use crate::event::Event;
use crate::sink::store::{Cursor, Reader, Retain};
use crate::warn_limit::WarnLimiter;

/// One replay chunk at most: this many events or value bytes.
const CHUNK_EVENTS: usize = 10_000;
const CHUNK_BYTES: usize = 4 << 20;
/// How often an idle replayer looks for new spool data or, when asked, probes Kafka.
const IDLE: Duration = Duration::from_millis(200);

pub struct Replayer {
    pub dir: PathBuf,
    /// The replayer's own producers are made from this: a fresh one after every failed chunk.
    pub client: rdkafka::ClientConfig,
    pub envelope: Envelope,
    pub retain: Arc<Retain>,
    /// Set by the sink while it spools: it wants to hear when the spool is replayed.
    pub wanted: Arc<AtomicBool>,
    /// The spool offset up to which everything is in Kafka, sent when caught up and Kafka
    /// answers.
    pub caught_up: watch::Sender<Option<u64>>,
}

impl Replayer {
    pub async fn run(mut self, stop: CancellationToken) {
        let mut producer: Option<Producer> = None;
        let mut reader = match Reader::open(&self.dir) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read the spool: nothing will be replayed");
                return;
            }
        };
        let mut cursor = self.retain.cursor();
        let mut backoff = Duration::from_secs(1);
        let mut failures = WarnLimiter::new(Duration::from_secs(30));
        let lag = metrics::gauge!("logport_spool_replay_lag_events");
        let replayed = metrics::counter!("logport_spool_replayed_total");
        while !stop.is_cancelled() {
            let (back, read) = tokio::task::spawn_blocking(move || {
                let chunk = read_chunk(&mut reader, cursor);
                (reader, chunk)
            })
            .await
            .expect("spool reader task");
            reader = back;
            let (events, next, end) = match read {
                Ok(chunk) => chunk,
                Err(e) => {
                    if let Some(suppressed) = failures.allow() {
                        tracing::error!(dir = %self.dir.display(), error = %e, earlier = suppressed, "cannot read the spool; retrying");
                    }
                    sleep_or_stop(&stop, backoff).await;
                    continue;
                }
            };
            lag.set(end.saturating_sub(cursor) as f64);
            if producer.is_none() {
                match create(&self.client) {
                    Ok(p) => producer = Some(p),
                    Err(e) => {
                        if let Some(suppressed) = failures.allow() {
                            tracing::error!(error = %e, earlier = suppressed, "cannot create a Kafka producer to replay the spool; retrying");
                        }
                        sleep_or_stop(&stop, backoff).await;
                        continue;
                    }
                }
            }
            let p = producer.as_ref().expect("created above");
            if events.is_empty() {
                if self.wanted.load(Ordering::SeqCst)
                    && broker_answers(p, Duration::from_secs(2)).await
                {
                    self.caught_up.send_replace(Some(cursor));
                }
                sleep_or_stop(&stop, IDLE).await;
                continue;
            }
            let (tracker, outcome) = Tracker::new(events.len());
            send_events(p, &mut self.envelope, &events, &tracker).await;
            match outcome.await {
                Ok(Outcome::Delivered { rejected }) => {
                    if rejected > 0 {
                        tracing::error!(rejected, "Kafka refused spooled events for good (too large or invalid); they are skipped");
                        metrics::counter!("logport_kafka_rejected_total")
                            .increment(rejected as u64);
                    }
                    replayed.increment(events.len() as u64);
                    cursor = next;
                    if let Err(e) = Cursor::save(&self.dir, cursor) {
                        tracing::warn!(dir = %self.dir.display(), error = %e, "cannot save the spool's replay cursor; a restart will replay some events again");
                    }
                    self.retain.advance(cursor);
                    backoff = Duration::from_secs(1);
                    tracing::debug!(cursor, "replayed a spool chunk");
                }
                Ok(Outcome::Failed(error)) => {
                    // The next try starts with a producer that asks the broker for a new id.
                    producer = None;
                    if let Some(suppressed) = failures.allow() {
                        tracing::warn!(%error, retry_in = ?backoff, earlier_failures_suppressed = suppressed, "Kafka still does not take the spooled events");
                    }
                    sleep_or_stop(&stop, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(_) => return,
            }
        }
    }
}

/// Events from `cursor` on (at most one chunk), the offset after them, and the spool's end.
fn read_chunk(reader: &mut Reader, cursor: u64) -> std::io::Result<(Vec<Event>, u64, u64)> {
    let from = cursor.max(reader.first_offset()?);
    if reader.position() != from {
        reader.seek(from);
    }
    let mut events = Vec::new();
    let mut bytes = 0;
    let mut next = from;
    while events.len() < CHUNK_EVENTS && bytes < CHUNK_BYTES {
        match reader.next()? {
            Some(stored) => {
                next = stored.offset + 1;
                bytes += stored.event.value.len();
                events.push(stored.event);
            }
            None => break,
        }
    }
    let end = reader.end_offset()?;
    Ok((events, next, end))
}

async fn sleep_or_stop(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}
