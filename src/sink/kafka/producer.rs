//! The librdkafka producer: how logport configures it, and delivery reports turned into one
//! outcome per batch (or replay chunk).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use tokio::sync::oneshot;

use super::topic::Topics;
use crate::config::{Config, KafkaKey};
use crate::event::Event;
use crate::warn_limit::WarnLimiter;

pub type Producer = ThreadedProducer<Delivery>;

/// The producer's configuration: logport's defaults (idempotent, `acks=all`, deliveries that
/// give up after `spool_after` so that the spool takes over), then the user's properties.
pub fn client_config(config: &Config) -> ClientConfig {
    let k = &config.kafka;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", k.brokers.join(","))
        .set("client.id", "logport")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", &k.compression)
        .set("linger.ms", "5")
        .set("message.timeout.ms", k.spool_after.as_millis().to_string())
        // librdkafka's copy of what is in flight is bounded like ours.
        .set(
            "queue.buffering.max.kbytes",
            (config.in_flight_bytes.0 / 1024)
                .clamp(1024, 2_097_151)
                .to_string(),
        )
        .set("queue.buffering.max.messages", "1000000");
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    c
}

/// A new producer. After an outage the sink and the replayer each start a fresh one: a broker
/// that lost its state no longer knows the old producer id, and librdkafka's idempotent producer
/// would retry against it forever ("unknown producer id") instead of asking for a new one.
pub fn create(client: &ClientConfig) -> Result<Producer, KafkaError> {
    client.create_with_context(Delivery::default())
}

/// Receives librdkafka's callbacks: delivery reports, logs, errors.
#[derive(Default)]
pub struct Delivery {
    /// librdkafka reported a fatal error: this producer can deliver nothing more.
    pub fatal: AtomicBool,
    errors: Mutex<Option<WarnLimiter>>,
}

impl ClientContext for Delivery {
    fn error(&self, error: KafkaError, reason: &str) {
        if let KafkaError::Global(RDKafkaErrorCode::Fatal) = error {
            self.fatal.store(true, Ordering::SeqCst);
            tracing::error!(%error, reason, "Kafka producer failed fatally");
            return;
        }
        // While brokers are down librdkafka reports every reconnect attempt; one line every
        // 30 s says as much.
        let mut limiter = self.errors.lock().expect("not poisoned");
        if let Some(suppressed) = limiter
            .get_or_insert_with(|| WarnLimiter::new(Duration::from_secs(30)))
            .allow()
        {
            tracing::warn!(%error, reason, earlier_errors_suppressed = suppressed, "Kafka client error");
        }
    }
}

impl ProducerContext for Delivery {
    type DeliveryOpaque = Arc<Tracker>;

    fn delivery(&self, result: &DeliveryResult<'_>, tracker: Arc<Tracker>) {
        match result {
            Ok(_) => tracker.finish_one(None),
            Err((error, _)) => tracker.finish_one(Some(error)),
        }
    }
}

/// How a batch's deliveries ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every event is in Kafka, except `rejected` ones Kafka refuses for good (too large,
    /// corrupt): retrying those could never succeed.
    Delivered { rejected: usize },
    /// At least one event was not delivered (timed out, broker errors): the batch must go to
    /// the spool.
    Failed(String),
}

/// Counts the delivery reports of one batch and resolves once all are in.
pub struct Tracker {
    remaining: AtomicUsize,
    rejected: AtomicUsize,
    failure: Mutex<Option<String>>,
    done: Mutex<Option<oneshot::Sender<Outcome>>>,
    pub started: Instant,
}

impl Tracker {
    pub fn new(events: usize) -> (Arc<Tracker>, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        let tracker = Tracker {
            remaining: AtomicUsize::new(events),
            rejected: AtomicUsize::new(0),
            failure: Mutex::new(None),
            done: Mutex::new(Some(tx)),
            started: Instant::now(),
        };
        if events == 0 {
            tracker.resolve();
        }
        (Arc::new(tracker), rx)
    }

    /// One event's report: delivered (None) or not.
    pub fn finish_one(&self, error: Option<&KafkaError>) {
        if let Some(error) = error {
            let code = error.rdkafka_error_code();
            metrics::counter!("logport_kafka_delivery_errors_total", "kind" => code.map(|c| format!("{c:?}")).unwrap_or_else(|| "other".into()))
                .increment(1);
            if code.is_some_and(is_permanent) {
                self.rejected.fetch_add(1, Ordering::Relaxed);
            } else {
                self.failure
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert_with(|| error.to_string());
            }
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.resolve();
        }
    }

    fn resolve(&self) {
        let outcome = match self.failure.lock().expect("not poisoned").take() {
            Some(error) => Outcome::Failed(error),
            None => Outcome::Delivered {
                rejected: self.rejected.load(Ordering::Relaxed),
            },
        };
        if let Some(tx) = self.done.lock().expect("not poisoned").take() {
            let _ = tx.send(outcome);
        }
    }
}

/// Errors about the message itself, which no retry can cure.
fn is_permanent(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
    )
}

/// What each message carries beside its value.
pub struct Envelope {
    pub topics: Topics,
    pub key: KafkaKey,
    pub headers: bool,
}

/// Hands `events` to librdkafka, each reporting to `tracker`. While librdkafka's queue is full
/// this waits (backpressure); an event librdkafka refuses outright counts as a failed delivery.
pub async fn send_events(
    producer: &Producer,
    envelope: &mut Envelope,
    events: &[Event],
    tracker: &Arc<Tracker>,
) {
    for event in events {
        let topic = envelope.topics.topic(&event.app, event.protocol);
        let peer = event.peer.to_string();
        loop {
            let mut record =
                BaseRecord::with_opaque_to(&topic, tracker.clone()).payload(&event.value[..]);
            if envelope.key == KafkaKey::App {
                record = record.key(event.app.as_bytes());
            }
            if envelope.headers {
                record = record.headers(
                    OwnedHeaders::new_with_capacity(3)
                        .insert(Header {
                            key: "protocol",
                            value: Some(event.protocol.as_str()),
                        })
                        .insert(Header {
                            key: "peer",
                            value: Some(peer.as_str()),
                        })
                        .insert(Header {
                            key: "app",
                            value: Some(&*event.app),
                        }),
                );
            }
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => {
                    tracker.finish_one(Some(&error));
                    break;
                }
            }
        }
    }
}

/// Does a broker answer a metadata request within `timeout`? (A blocking call, run aside.)
pub async fn broker_answers(producer: &Producer, timeout: Duration) -> bool {
    let producer = producer.clone();
    tokio::task::spawn_blocking(move || broker_answers_now(&producer, timeout))
        .await
        .unwrap_or(false)
}

/// The same, blocking the calling thread (at startup, before anything is served).
pub fn broker_answers_now(producer: &Producer, timeout: Duration) -> bool {
    use rdkafka::producer::Producer as _;
    producer.client().fetch_metadata(None, timeout).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tracker_resolves_once_every_report_is_in() {
        let (t, rx) = Tracker::new(3);
        t.finish_one(None);
        t.finish_one(Some(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge,
        )));
        assert!(
            t.done.lock().unwrap().is_some(),
            "still waiting for one report"
        );
        t.finish_one(None);
        assert_eq!(rx.await.unwrap(), Outcome::Delivered { rejected: 1 });

        let (t, rx) = Tracker::new(2);
        t.finish_one(Some(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageTimedOut,
        )));
        t.finish_one(None);
        assert!(matches!(rx.await.unwrap(), Outcome::Failed(e) if e.contains("timed out")));

        let (_t, rx) = Tracker::new(0);
        assert_eq!(rx.await.unwrap(), Outcome::Delivered { rejected: 0 });
    }

    #[test]
    fn user_properties_override_the_defaults() {
        let mut config = Config::default();
        config.kafka.brokers = vec!["a:9092".into(), "b:9092".into()];
        config
            .kafka
            .properties
            .insert("linger.ms".into(), "50".into());
        config
            .kafka
            .properties
            .insert("client.id".into(), "edge-7".into());
        let c = client_config(&config);
        assert_eq!(c.get("bootstrap.servers"), Some("a:9092,b:9092"));
        assert_eq!(c.get("linger.ms"), Some("50"));
        assert_eq!(c.get("client.id"), Some("edge-7"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("message.timeout.ms"), Some("10000"));
    }
}
