//! The store as a sink: a dedicated thread that commits batches with group commit.

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use metrics::{Counter, Histogram};
use tokio::sync::{mpsc, oneshot};

use super::{Recovery, StoreConfig, Writer};
use crate::batch::{Batch, Commit, Sink, SinkFuture};

/// At most this many batches share one fdatasync.
const MAX_GROUP_BATCHES: usize = 1024;

/// Commits batches to the embedded store. Each group of batches already queued is appended and
/// fdatasynced once; only then are their acks resolved `Committed` and their reservations freed.
#[derive(Debug)]
pub struct StoreSink {
    name: &'static str,
    writer: Writer,
    recovery: Recovery,
    max_commit_bytes: usize,
    #[cfg(test)]
    before_sync: Option<tests::Hook>,
}

impl StoreSink {
    /// Opens (and recovers) the store now, so that a bad directory or a second gateway on the
    /// same directory fails at startup rather than in `run`.
    pub fn open(config: StoreConfig) -> anyhow::Result<StoreSink> {
        let (writer, recovery) = Writer::open(&config)
            .with_context(|| format!("opening the store at {}", config.dir.display()))?;
        tracing::info!(
            store = config.name,
            dir = %config.dir.display(),
            segments = recovery.segments,
            first_offset = recovery.first_offset,
            next_offset = recovery.next_offset,
            bytes_dropped = recovery.bytes_dropped,
            "store opened"
        );
        Ok(StoreSink {
            name: config.name,
            writer,
            recovery,
            max_commit_bytes: config.max_commit_bytes.max(1),
            #[cfg(test)]
            before_sync: None,
        })
    }

    /// What opening the store found.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }
}

impl Sink for StoreSink {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(self: Box<Self>, batches: mpsc::Receiver<Batch>) -> SinkFuture {
        Box::pin(async move {
            let (done_tx, done_rx) = oneshot::channel();
            std::thread::Builder::new()
                .name("logport-store".into())
                .spawn(move || {
                    let StoreSink {
                        name,
                        writer,
                        max_commit_bytes,
                        #[cfg(test)]
                        before_sync,
                        ..
                    } = *self;
                    let committer = Committer::new(name, writer, max_commit_bytes);
                    #[cfg(test)]
                    let committer = Committer {
                        before_sync,
                        ..committer
                    };
                    committer.serve(batches);
                    let _ = done_tx.send(());
                })
                .context("starting the store writer thread")?;
            done_rx.await.context("the store writer thread panicked")
        })
    }
}

struct Committer {
    writer: Writer,
    max_commit_bytes: usize,
    group: Vec<Batch>,
    events_committed: Counter,
    bytes_committed: Counter,
    commit_latency: Histogram,
    append_errors: Counter,
    sync_errors: Counter,
    #[cfg(test)]
    before_sync: Option<tests::Hook>,
}

impl Committer {
    fn new(name: &'static str, writer: Writer, max_commit_bytes: usize) -> Committer {
        Committer {
            writer,
            max_commit_bytes,
            group: Vec::new(),
            events_committed: metrics::counter!("logport_events_committed_total", "sink" => name),
            bytes_committed: metrics::counter!("logport_bytes_committed_total", "sink" => name),
            commit_latency: metrics::histogram!("logport_commit_latency_seconds", "sink" => name),
            append_errors: metrics::counter!("logport_store_errors_total", "store" => name, "op" => "append"),
            sync_errors: metrics::counter!("logport_store_errors_total", "store" => name, "op" => "sync"),
            #[cfg(test)]
            before_sync: None,
        }
    }

    /// Commits groups until every sender is gone and the channel is drained.
    fn serve(mut self, mut batches: mpsc::Receiver<Batch>) {
        while let Some(first) = batches.blocking_recv() {
            let mut bytes = first.value_bytes();
            self.group.push(first);
            // A spool near its cap takes no more than its room in one group (values are counted
            // before compression, so this errs on the safe side).
            let limit =
                (self.writer.room().min(usize::MAX as u64) as usize).min(self.max_commit_bytes);
            while self.group.len() < MAX_GROUP_BATCHES && bytes < limit {
                match batches.try_recv() {
                    Ok(batch) => {
                        bytes += batch.value_bytes();
                        self.group.push(batch);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group();
        }
    }

    /// Appends the group, syncs once, and resolves every ack. Batches are dropped (their
    /// reservations released) only after their outcome is decided.
    fn commit_group(&mut self) {
        self.wait_for_room();
        let mut failure: Option<(&'static str, io::Error)> = None;
        let mut i = 0;
        while i < self.group.len() {
            match self.writer.append(&self.group[i].events) {
                Ok(_) => i += 1,
                // Nothing was appended: only this batch fails.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    self.append_errors.increment(1);
                    tracing::error!(dir = %self.writer.dir().display(), error = %e, "store rejected a batch");
                    finish(self.group.remove(i), Commit::Failed(format!("store: {e}")));
                }
                Err(e) => {
                    self.append_errors.increment(1);
                    failure = Some(("append", e));
                    break;
                }
            }
        }
        #[cfg(test)]
        if let (None, Some(hook)) = (&failure, &mut self.before_sync) {
            (hook.0)(&mut self.writer);
        }
        if failure.is_none() {
            if let Err(e) = self.writer.sync() {
                self.sync_errors.increment(1);
                failure = Some(("sync", e));
            }
        }

        if let Some((op, e)) = failure {
            tracing::error!(
                dir = %self.writer.dir().display(),
                op,
                error = %e,
                batches = self.group.len(),
                "store commit failed; failing the batches"
            );
            let msg = format!("store {op} failed: {e}");
            for batch in self.group.drain(..) {
                finish(batch, Commit::Failed(msg.clone()));
            }
            return;
        }

        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        for batch in self.group.drain(..) {
            if let Some(oldest) = batch.events.iter().map(|e| e.received_ns).min() {
                let latency_ns = now_ns.saturating_sub(oldest).max(0);
                self.commit_latency.record(latency_ns as f64 / 1e9);
            }
            self.events_committed.increment(batch.events.len() as u64);
            self.bytes_committed.increment(batch.value_bytes() as u64);
            finish(batch, Commit::Committed);
        }
    }
}

impl Committer {
    /// A spool at its cap waits for the replayer to free room before appending more; meanwhile
    /// the batches keep their budget, so backpressure reaches the shippers.
    fn wait_for_room(&mut self) {
        let Some(retain) = self.writer.retain().cloned() else {
            return;
        };
        let mut since: Option<std::time::Instant> = None;
        loop {
            let seen = retain.cursor();
            if self.writer.make_room() {
                if let Some(since) = since {
                    tracing::info!(dir = %self.writer.dir().display(), waited = ?since.elapsed(), "the spool has room again");
                }
                return;
            }
            if since.is_none() {
                tracing::warn!(dir = %self.writer.dir().display(), "the spool is full: waiting for Kafka to take the spooled events (backpressure)");
                since = Some(std::time::Instant::now());
            }
            retain.wait_past(seen, std::time::Duration::from_secs(1));
        }
    }
}

/// Releases the batch (its events and reservation) and then resolves its ack, so that a source
/// woken by the ack already finds the budget freed.
fn finish(mut batch: Batch, commit: Commit) {
    let ack = std::mem::take(&mut batch.ack);
    drop(batch);
    ack.resolve(commit);
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use super::super::format::{read_header, segment_path};
    use super::super::testutil::{assert_events, block_starts, config, event, events, read_all};
    use super::*;
    use crate::admission::Budget;
    use crate::batch::{Ack, AckWaiter};
    use crate::event::Event;

    fn batch(budget: &Budget, range: std::ops::Range<u64>) -> (Batch, AckWaiter) {
        let (ack, waiter) = Ack::channel();
        let events = events(range);
        let reservation = budget
            .try_reserve(events.iter().map(|e| e.size()).sum())
            .unwrap();
        (
            Batch::new(events, ack).with_reservation(reservation),
            waiter,
        )
    }

    fn start(
        sink: StoreSink,
    ) -> (
        mpsc::Sender<Batch>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let (tx, rx) = mpsc::channel(64);
        assert_eq!(sink.name(), "store");
        (tx, tokio::spawn(Box::new(sink).run(rx)))
    }

    fn open(dir: &Path, segment_bytes: u64) -> StoreSink {
        StoreSink::open(config(dir, segment_bytes)).unwrap()
    }

    /// Runs on the committer thread after a group is appended, just before its sync.
    pub(super) struct Hook(pub Box<dyn FnMut(&mut Writer) + Send>);

    impl std::fmt::Debug for Hook {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Hook")
        }
    }

    /// The offset after the last complete block in the (single) segment file.
    fn end_in_file(dir: &Path) -> u64 {
        let path = segment_path(dir, 0);
        let file = std::fs::File::open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        let starts = block_starts(&path);
        match starts.len() {
            1 => 0,
            n => read_header(&file, starts[n - 2], len)
                .unwrap()
                .unwrap()
                .end_offset(),
        }
    }

    #[tokio::test]
    async fn acks_resolve_committed_once_the_events_are_durable_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget::new(1 << 20);
        let mut sink = open(dir.path(), 1 << 20);
        // Just before each sync: (offset after the events written to the file, events a fresh
        // reader sees).
        let before_sync = Arc::new(Mutex::new(Vec::new()));
        let (seen, store) = (before_sync.clone(), dir.path().to_path_buf());
        sink.before_sync = Some(Hook(Box::new(move |w: &mut Writer| {
            w.flush().unwrap();
            let visible = read_all(&store).len() as u64;
            seen.lock().unwrap().push((end_in_file(&store), visible));
        })));
        let (tx, run) = start(sink);
        for start in [0, 3, 10] {
            let end = start + if start == 3 { 7 } else { 3 };
            let (b, waiter) = batch(&budget, start..end);
            tx.send(b).await.unwrap();
            assert_eq!(waiter.wait().await, Commit::Committed);
            // Appended and written but not yet synced, the batch was invisible to readers ...
            assert_eq!(before_sync.lock().unwrap().pop(), Some((end, start)));
            // ... and a fresh reader (as another process would) sees it when its ack arrives.
            assert_events(&read_all(dir.path()), 0..end);
            assert_eq!(
                budget.in_flight(),
                0,
                "the reservation is released with the batch"
            );
        }
        drop(tx);
        run.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn queued_batches_share_one_block_and_one_sync() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget::new(1 << 20);
        let (tx, rx) = mpsc::channel(64);
        let mut waiters = Vec::new();
        for start in (0..50).step_by(5) {
            let (b, waiter) = batch(&budget, start..start + 5);
            tx.send(b).await.unwrap();
            waiters.push(waiter);
        }
        // The channel closes with everything queued: all of it is still committed.
        drop(tx);
        Box::new(open(dir.path(), 1 << 20)).run(rx).await.unwrap();
        for waiter in waiters {
            assert_eq!(waiter.wait().await, Commit::Committed);
        }
        assert_eq!(budget.in_flight(), 0);
        assert_eq!(
            block_starts(&segment_path(dir.path(), 0)).len(),
            2,
            "one block: one group"
        );
        assert_events(&read_all(dir.path()), 0..50);
    }

    #[tokio::test]
    async fn the_commit_cap_splits_groups() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget::new(1 << 20);
        let (tx, rx) = mpsc::channel(64);
        let mut waiters = Vec::new();
        for start in (0..50).step_by(5) {
            let (b, waiter) = batch(&budget, start..start + 5);
            tx.send(b).await.unwrap();
            waiters.push(waiter);
        }
        drop(tx);
        let sink = StoreSink::open(StoreConfig {
            max_commit_bytes: 1,
            ..config(dir.path(), 1 << 20)
        });
        Box::new(sink.unwrap()).run(rx).await.unwrap();
        for waiter in waiters {
            assert_eq!(waiter.wait().await, Commit::Committed);
        }
        assert_eq!(
            block_starts(&segment_path(dir.path(), 0)).len(),
            11,
            "one group per batch"
        );
    }

    #[tokio::test]
    async fn acks_fail_while_the_store_directory_is_gone_and_recover_after() {
        for segment_bytes in [1 << 20, 1] {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("store");
            let budget = Budget::new(1 << 20);
            let (tx, run) = start(open(&dir, segment_bytes));
            let (b, waiter) = batch(&budget, 0..3);
            tx.send(b).await.unwrap();
            assert_eq!(waiter.wait().await, Commit::Committed);

            std::fs::remove_dir_all(&dir).unwrap();
            for range in [3..5, 5..6] {
                let (b, waiter) = batch(&budget, range);
                tx.send(b).await.unwrap();
                match waiter.wait().await {
                    Commit::Failed(msg) => {
                        assert!(msg.contains(&dir.display().to_string()), "{msg}")
                    }
                    Commit::Committed => panic!("committed into a removed directory"),
                }
                assert_eq!(budget.in_flight(), 0);
            }

            // The sink kept serving: once the directory is back, commits succeed again.
            std::fs::create_dir(&dir).unwrap();
            let (b, waiter) = batch(&budget, 6..9);
            tx.send(b).await.unwrap();
            assert_eq!(waiter.wait().await, Commit::Committed);
            assert_eq!(
                read_all(&dir)
                    .into_iter()
                    .map(|e| e.event)
                    .collect::<Vec<_>>(),
                events(6..9),
                "segment_bytes {segment_bytes}"
            );
            drop(tx);
            run.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn an_oversized_event_fails_only_its_own_batch() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget::new(1 << 20);
        let mut sink = open(dir.path(), 1 << 20);
        sink.writer
            .set_limits(super::super::format::BLOCK_TARGET, 500);
        let (tx, rx) = mpsc::channel(64);
        let (a, wa) = batch(&budget, 0..3);
        let (ack, wb) = Ack::channel();
        let big = Event {
            value: vec![b'x'; 600].into(),
            ..event(3)
        };
        let (c, wc) = batch(&budget, 3..6);
        for b in [a, Batch::new(vec![big], ack), c] {
            tx.send(b).await.unwrap();
        }
        drop(tx);
        Box::new(sink).run(rx).await.unwrap();
        assert_eq!(wa.wait().await, Commit::Committed);
        assert!(matches!(wb.wait().await, Commit::Failed(m) if m.contains("exceeds")));
        assert_eq!(wc.wait().await, Commit::Committed);
        assert_events(&read_all(dir.path()), 0..6);
    }

    #[test]
    fn a_second_sink_on_the_same_directory_fails_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path(), 1 << 20);
        let err = StoreSink::open(config(dir.path(), 1 << 20)).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&dir.path().display().to_string()) && msg.contains("locked"),
            "{msg}"
        );
    }
}
