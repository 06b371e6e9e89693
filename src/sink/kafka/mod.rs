//! The Kafka sink. A batch is committed when librdkafka's delivery reports say every event is in
//! Kafka (idempotent producer, `acks=all`), or, while Kafka cannot take events, when it is
//! fsynced in the spool, a second embedded store under `data_dir/spool`.
//!
//! Two modes:
//! - **direct**: batches are produced to Kafka; each is acked once all its deliveries are in.
//! - **spooling**: entered when a batch is not delivered within `spool_after` (or at startup when
//!   no broker answers, or when the spool still holds events from before a restart). That batch
//!   and every later one go to the spool and are acked once fsynced; the replayer sends the spool
//!   to Kafka in order as soon as Kafka takes events again. When the spool is replayed up to the
//!   last spooled event and Kafka answers, the sink goes back to direct — so spooled events reach
//!   Kafka before any event that came after them. When the spool is full, appends wait:
//!   backpressure reaches the shippers.

mod producer;
mod replay;
mod topic;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use std::collections::VecDeque;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use producer::Producer;
pub use topic::Topics;

use self::producer::{send_events, Envelope, Outcome, Tracker};
use crate::admin::{SinkState, SinkStatus};
use crate::batch::{Ack, Batch, Commit, Sink, SinkFuture};
use crate::config::{Config, KafkaSettings};
use crate::event::now_ns;
use crate::sink::store::{Cursor, Retain, StoreConfig, StoreSink};

/// Config check: the topic template compiles.
pub fn check_topic_template(template: &str) -> Result<(), String> {
    Topics::new(template).map(|_| ())
}

/// Config check: librdkafka accepts every passed-through property. Returns the property at
/// fault and librdkafka's complaint.
pub fn check_properties(config: &Config) -> Result<(), (String, String)> {
    use rdkafka::producer::BaseProducer;
    for (key, value) in &config.kafka.properties {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", "localhost:9092").set(key, value);
        if let Err(e) = c.create::<BaseProducer>() {
            return Err((
                key.clone(),
                format!("librdkafka refuses `{key} = \"{value}\"`: {e}"),
            ));
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Direct,
    Spooling,
}

pub struct KafkaSink {
    initial_mode: Mode,
    settings: KafkaSettings,
    client: rdkafka::ClientConfig,
    producer: Producer,
    spool: StoreSink,
    spool_dir: std::path::PathBuf,
    /// The spool's next offset when it was opened: offsets of events spooled since follow it.
    spool_start: u64,
    retain: Arc<Retain>,
    status: SinkStatus,
}

impl KafkaSink {
    /// Creates the producer and opens the spool (its lock and recovery errors surface here).
    pub fn open(config: &Config, status: SinkStatus) -> anyhow::Result<KafkaSink> {
        let client = producer::client_config(config);
        let producer = producer::create(&client)
            .with_context(|| format!("Kafka producer for {}", config.kafka.brokers.join(",")))?;
        let spool_dir = config.data_dir.join("spool");
        std::fs::create_dir_all(&spool_dir)
            .with_context(|| format!("creating the spool directory {}", spool_dir.display()))?;
        let cursor = Cursor::load(&spool_dir)
            .with_context(|| format!("the spool's replay cursor in {}", spool_dir.display()))?;
        let retain = Arc::new(Retain::new(cursor));
        let spool = StoreSink::open(StoreConfig {
            name: "spool",
            dir: spool_dir.clone(),
            segment_bytes: config.spool.segment_bytes.0,
            retention_bytes: config.spool.max_bytes.0,
            retain: Some(retain.clone()),
            ..StoreConfig::default()
        })?;
        let spool_start = spool.recovery().next_offset;

        // Decided before the gateway says it is ready, so that `/ready` and the log tell the
        // truth from the first event on.
        let brokers = config.kafka.brokers.join(",");
        let pending = spool_start.saturating_sub(retain.cursor());
        let initial_mode = if pending > 0 {
            tracing::info!(pending, spool = %spool_dir.display(), "the spool holds events not yet in Kafka: replaying them before sending new ones directly");
            Mode::Spooling
        } else if !producer::broker_answers_now(&producer, Duration::from_secs(3)) {
            tracing::warn!(brokers = %brokers, spool = %spool_dir.display(),
                "Kafka is unreachable at startup: events are spooled from the first one and replayed when it answers");
            Mode::Spooling
        } else {
            tracing::info!(brokers = %brokers, topic = %config.kafka.topic, "Kafka answers: sending directly");
            Mode::Direct
        };
        status.set(if initial_mode == Mode::Direct {
            SinkState::Committing
        } else {
            SinkState::Spooling
        });
        Ok(KafkaSink {
            initial_mode,
            settings: config.kafka.clone(),
            client,
            producer,
            spool,
            spool_dir,
            spool_start,
            retain,
            status,
        })
    }

    async fn serve(self, mut batches: mpsc::Receiver<Batch>) -> anyhow::Result<()> {
        let KafkaSink {
            initial_mode,
            settings,
            client,
            mut producer,
            spool,
            spool_dir,
            spool_start,
            retain,
            status,
        } = self;
        let envelope_of = |settings: &KafkaSettings| Envelope {
            topics: Topics::new(&settings.topic).expect("checked with the config"),
            key: settings.key,
            headers: settings.headers,
        };
        let mut envelope = envelope_of(&settings);

        let (spool_tx, spool_rx) = mpsc::channel(1024);
        let spool_task = tokio::spawn(Box::new(spool).run(spool_rx));
        let spooled = Spooled {
            tx: spool_tx,
            committed: Arc::new(AtomicU64::new(0)),
            outstanding: Arc::new(AtomicUsize::new(0)),
        };

        let wanted = Arc::new(AtomicBool::new(false));
        let (caught_up_tx, mut caught_up) = watch::channel(None);
        let stop_replay = CancellationToken::new();
        let replayer = replay::Replayer {
            dir: spool_dir.clone(),
            client: client.clone(),
            envelope: envelope_of(&settings),
            retain: retain.clone(),
            wanted: wanted.clone(),
            caught_up: caught_up_tx,
        };
        let replay_task = tokio::spawn(replayer.run(stop_replay.clone()));

        let mut mode = initial_mode;
        let set_mode = |mode: Mode| {
            let spooling = mode == Mode::Spooling;
            wanted.store(spooling, Ordering::SeqCst);
            metrics::gauge!("logport_kafka_spooling").set(if spooling { 1.0 } else { 0.0 });
            status.set(if !spooling {
                SinkState::Committing
            } else if retain.is_full() {
                SinkState::SpoolFull
            } else {
                SinkState::Spooling
            });
        };
        set_mode(mode);

        let committed = metrics::counter!("logport_events_committed_total", "sink" => "kafka");
        let committed_bytes = metrics::counter!("logport_bytes_committed_total", "sink" => "kafka");
        let latency = metrics::histogram!("logport_commit_latency_seconds", "sink" => "kafka");
        let delivery = metrics::histogram!("logport_kafka_delivery_seconds");
        // Batches handed to the producer, oldest first. They are decided in this order, so that
        // when Kafka goes away the failed ones reach the spool in the order they came.
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut tick = tokio::time::interval(Duration::from_millis(500));

        // A delivered batch is acked; a failed one is returned, to go to the spool.
        let finish = |batch: Batch,
                      outcome: Outcome,
                      took: Duration,
                      mode: &mut Mode|
         -> Option<Batch> {
            match outcome {
                Outcome::Delivered { rejected } => {
                    if rejected > 0 {
                        tracing::error!(rejected, "Kafka refused events for good (too large or invalid); they are not retried");
                        metrics::counter!("logport_kafka_rejected_total")
                            .increment(rejected as u64);
                    }
                    delivery.record(took.as_secs_f64());
                    committed.increment(batch.events.len() as u64);
                    committed_bytes.increment(batch.value_bytes() as u64);
                    if let Some(oldest) = batch.events.iter().map(|e| e.received_ns).min() {
                        latency.record((now_ns() - oldest).max(0) as f64 / 1e9);
                    }
                    batch.ack.resolve(Commit::Committed);
                    None
                }
                Outcome::Failed(error) => {
                    if *mode == Mode::Direct {
                        tracing::warn!(%error, spool = %spool_dir.display(), "Kafka did not take a batch in time: spooling it, and what follows, until Kafka is back");
                        *mode = Mode::Spooling;
                    }
                    Some(batch)
                }
            }
        };

        loop {
            tokio::select! {
                biased;
                outcome = oldest_outcome(&mut in_flight), if !in_flight.is_empty() => {
                    let InFlight { batch, started, .. } = in_flight.pop_front().expect("not empty");
                    if let Some(batch) = finish(batch, outcome, started.elapsed(), &mut mode) {
                        set_mode(mode);
                        spooled.send(batch).await;
                    }
                }
                Ok(()) = caught_up.changed(), if mode == Mode::Spooling => {
                    let at = *caught_up.borrow_and_update();
                    // Direct again only once nothing older can still land in Kafka behind newer
                    // events: the spool replayed to its end, nothing on its way into it, and no
                    // delivery of the old producer still pending (it may yet fail and be spooled).
                    let replayed = at == Some(spool_start + spooled.committed.load(Ordering::SeqCst));
                    if replayed && spooled.outstanding.load(Ordering::SeqCst) == 0 && in_flight.is_empty() {
                        match producer::create(&client) {
                            Ok(fresh) => {
                                tracing::info!("Kafka takes events again and the spool is replayed: sending directly");
                                producer = fresh;
                                mode = Mode::Direct;
                                set_mode(mode);
                            }
                            Err(e) => tracing::error!(error = %e, "cannot create a new Kafka producer; still spooling"),
                        }
                    }
                }
                _ = tick.tick() => set_mode(mode),
                // While spooling, new batches wait until every batch still in flight is decided:
                // one that fails must reach the spool before them.
                batch = batches.recv(), if mode == Mode::Direct || in_flight.is_empty() => {
                    let Some(batch) = batch else { break };
                    match mode {
                        Mode::Spooling => spooled.send(batch).await,
                        Mode::Direct => {
                            let (tracker, outcome) = Tracker::new(batch.events.len());
                            send_events(&producer, &mut envelope, &batch.events, &tracker).await;
                            in_flight.push_back(InFlight { batch, outcome, started: tracker.started });
                        }
                    }
                }
            }
        }

        // Drain: wait for what is in flight (spooling what fails), then let the spool commit
        // the rest. Spooled events not yet replayed stay on disk for the next start.
        while !in_flight.is_empty() {
            let outcome = oldest_outcome(&mut in_flight).await;
            let InFlight { batch, started, .. } = in_flight.pop_front().expect("not empty");
            if let Some(batch) = finish(batch, outcome, started.elapsed(), &mut mode) {
                spooled.send(batch).await;
            }
        }
        stop_replay.cancel();
        let _ = replay_task.await;
        drop(spooled);
        let spool_result = spool_task.await.context("spool task")?;
        let flush_producer = producer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer as _;
            flush_producer.flush(Duration::from_secs(5))
        })
        .await;
        spool_result
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn run(self: Box<Self>, batches: mpsc::Receiver<Batch>) -> SinkFuture {
        Box::pin(self.serve(batches))
    }
}

/// A batch whose events are with the producer, and the outcome of their deliveries.
struct InFlight {
    batch: Batch,
    outcome: tokio::sync::oneshot::Receiver<Outcome>,
    started: std::time::Instant,
}

/// The outcome of the oldest batch in flight (waits for it).
async fn oldest_outcome(in_flight: &mut VecDeque<InFlight>) -> Outcome {
    match in_flight.front_mut() {
        Some(oldest) => (&mut oldest.outcome).await.unwrap_or_else(|_| {
            Outcome::Failed("the producer dropped the delivery reports".into())
        }),
        None => std::future::pending().await,
    }
}

/// The way into the spool, and what the sink needs to know of it: how many events it committed,
/// and how many forwarded batches are not decided yet.
struct Spooled {
    tx: mpsc::Sender<Batch>,
    committed: Arc<AtomicU64>,
    outstanding: Arc<AtomicUsize>,
}

impl Spooled {
    /// Forwards a batch to the spool; its ack resolves when the spool has committed it.
    async fn send(&self, mut batch: Batch) {
        let (ack, waiter) = Ack::channel();
        let shipper_ack = std::mem::replace(&mut batch.ack, ack);
        let events = batch.events.len() as u64;
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        let (committed, outstanding) = (self.committed.clone(), self.outstanding.clone());
        tokio::spawn(async move {
            let result = waiter.wait().await;
            if result == Commit::Committed {
                committed.fetch_add(events, Ordering::SeqCst);
            }
            outstanding.fetch_sub(1, Ordering::SeqCst);
            shipper_ack.resolve(result);
        });
        if self.tx.send(batch).await.is_err() {
            tracing::error!(
                "the spool has stopped; a batch could not be spooled and is not acknowledged"
            );
        }
    }
}
