//! Batch, Ack and the Sink trait: the one seam every source and sink meets.
//!
//! A source builds a [`Batch`] from what one read (or one protocol window) produced and sends it
//! down a channel to the sink. The sink commits it and resolves its [`Ack`]; the source turns the
//! resolution into the protocol's own reply, or into nothing for protocols without acks. Data
//! moves one way: nothing flows back but the ack.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use crate::admission::Reservation;
use crate::event::Event;

/// How a batch ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Every event of the batch is committed (fsynced, or delivered to Kafka).
    Committed,
    /// The sink gave up on the batch; nothing may be acknowledged to the shipper.
    Failed(String),
}

/// The sink's half of an acknowledgement. Resolving it (or dropping it, which counts as
/// failure) wakes the source waiting on the matching [`AckWaiter`].
#[derive(Debug, Default)]
pub struct Ack(Option<oneshot::Sender<Commit>>);

/// The source's half: resolves once the sink has committed or failed the batch.
#[derive(Debug)]
pub struct AckWaiter(oneshot::Receiver<Commit>);

impl Ack {
    /// An ack nobody waits for (protocols without acknowledgements).
    pub fn none() -> Ack {
        Ack(None)
    }

    pub fn channel() -> (Ack, AckWaiter) {
        let (tx, rx) = oneshot::channel();
        (Ack(Some(tx)), AckWaiter(rx))
    }

    pub fn resolve(mut self, result: Commit) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(result);
        }
    }
}

impl AckWaiter {
    pub async fn wait(self) -> Commit {
        self.0
            .await
            .unwrap_or_else(|_| Commit::Failed("sink dropped the batch".into()))
    }
}

/// The unit that moves from a source to a sink.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Event>,
    pub ack: Ack,
    /// In-flight budget held by this batch; released when the batch is dropped after commit.
    pub reservation: Option<Reservation>,
    /// The shares of their apps' in-flight allowance its events hold, released with it.
    pub shares: Vec<tokio::sync::OwnedSemaphorePermit>,
}

impl Batch {
    pub fn new(events: Vec<Event>, ack: Ack) -> Batch {
        Batch {
            events,
            ack,
            reservation: None,
            shares: Vec::new(),
        }
    }

    pub fn with_reservation(mut self, reservation: Reservation) -> Batch {
        self.reservation = Some(reservation);
        self
    }

    /// Bytes of event values in the batch.
    pub fn value_bytes(&self) -> usize {
        self.events.iter().map(|e| e.value.len()).sum()
    }
}

pub type SinkFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'static>>;

/// A place events are committed to. `run` consumes batches until the channel closes (every
/// source has stopped), commits what it received, resolves every ack, and returns.
pub trait Sink: Send + 'static {
    fn name(&self) -> &'static str;
    fn run(self: Box<Self>, batches: mpsc::Receiver<Batch>) -> SinkFuture;
}
