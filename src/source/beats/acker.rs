//! The write side of a beats connection: acks in window order once a window is committed, and
//! keep-alives while the client waits.
//!
//! It runs apart from the reader on purpose: the reader blocks on the in-flight budget and the
//! sink's queue exactly when keep-alives matter, and keep-alives that share the blocked path
//! do not go out (logstash-input-beats#310: clients time out, re-send, duplicates).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use logport_lumberjack::{Ack, WindowId, WindowTracker};
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::batch::{AckWaiter, Commit};
use crate::transport::ByteStream;

/// logstash-input-beats writes a keep-alive after this long without writing while a batch is in
/// progress (`IDLESTATE_WRITER_IDLE_TIME_SECONDS`); libbeat's read timeout is 30 s.
pub const KEEPALIVE_AFTER: Duration = Duration::from_secs(5);

/// A window whose events have all been read and sent to the sink (in one batch, or in several
/// when it was too large for one).
pub struct ReadWindow {
    pub id: WindowId,
    pub batches: Vec<AckWaiter>,
}

pub struct Acker {
    pub tracker: Arc<Mutex<WindowTracker>>,
    /// Cancelled here when the connection must close: a failed commit or a dead client.
    pub closing: CancellationToken,
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    /// A write that cannot finish in this long means the client stopped reading.
    pub write_timeout: Duration,
    pub acks: metrics::Counter,
    pub keepalives: metrics::Counter,
}

impl Acker {
    /// Runs until the reader has handed over its last window and every ack is written, or
    /// until the connection must close. Gives the write half back for an orderly close.
    pub async fn run(
        self,
        mut wr: WriteHalf<Box<dyn ByteStream>>,
        mut windows: mpsc::Receiver<ReadWindow>,
    ) -> WriteHalf<Box<dyn ByteStream>> {
        let mut keepalive_at = Instant::now() + KEEPALIVE_AFTER;
        loop {
            let window = tokio::select! {
                window = windows.recv() => match window {
                    Some(window) => window,
                    None => break,
                },
                _ = sleep_until(keepalive_at) => {
                    if !self.keepalive(&mut wr, &mut keepalive_at).await {
                        break;
                    }
                    continue;
                }
            };
            for batch in window.batches {
                let commit = batch.wait();
                tokio::pin!(commit);
                let result = loop {
                    tokio::select! {
                        result = &mut commit => break result,
                        _ = sleep_until(keepalive_at) => {
                            if !self.keepalive(&mut wr, &mut keepalive_at).await {
                                return wr;
                            }
                        }
                    }
                };
                if let Commit::Failed(reason) = result {
                    // Never ack what is not committed; the client re-sends the window elsewhere.
                    tracing::warn!(listener = %self.listener, peer = %self.peer, protocol = "beats", %reason,
                        "commit failed: closing the connection without acknowledging the window");
                    self.closing.cancel();
                    return wr;
                }
            }
            let acks: Vec<Ack> = {
                let mut tracker = self.tracker.lock().expect("tracker lock");
                tracker
                    .commit(window.id)
                    .expect("windows are handed over once, in order");
                std::iter::from_fn(|| tracker.next_ack()).collect()
            };
            let mut out = BytesMut::with_capacity(6 * acks.len());
            for ack in &acks {
                ack.encode(&mut out);
            }
            if !self.write(&mut wr, &out).await {
                return wr;
            }
            self.acks.increment(acks.len() as u64);
            keepalive_at = Instant::now() + KEEPALIVE_AFTER;
        }
        wr
    }

    /// Writes a keep-alive if the client is waiting on us; false if the connection is dead.
    async fn keepalive(
        &self,
        wr: &mut WriteHalf<Box<dyn ByteStream>>,
        keepalive_at: &mut Instant,
    ) -> bool {
        *keepalive_at = Instant::now() + KEEPALIVE_AFTER;
        let ack = self.tracker.lock().expect("tracker lock").keepalive();
        let Some(ack) = ack else {
            return true;
        };
        let mut out = BytesMut::with_capacity(6);
        ack.encode(&mut out);
        let ok = self.write(wr, &out).await;
        if ok {
            self.keepalives.increment(1);
        }
        ok
    }

    async fn write(&self, wr: &mut WriteHalf<Box<dyn ByteStream>>, bytes: &[u8]) -> bool {
        let written = tokio::time::timeout(self.write_timeout, async {
            wr.write_all(bytes).await?;
            wr.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(listener = %self.listener, peer = %self.peer, error = %e, "beats: cannot write to the client");
                self.closing.cancel();
                false
            }
            Err(_) => {
                tracing::warn!(listener = %self.listener, peer = %self.peer, protocol = "beats", timeout = ?self.write_timeout,
                    "the client does not read its acks: closing the connection");
                self.closing.cancel();
                false
            }
        }
    }
}
