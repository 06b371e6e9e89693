//! What a store used as the Kafka spool needs beyond a plain store: the replay cursor (how far
//! its events are in Kafka), kept on disk across restarts, and the rule that retention never
//! deletes an event not yet replayed, so that a full spool turns into backpressure instead of
//! loss.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::format::with_path;

const CURSOR_FILE: &str = "REPLAYED";

/// The spool's replay cursor on disk: the offset up to which (exclusive) every event is in
/// Kafka. 8 bytes (u64 LE) and their CRC32. A cursor lost in a crash only makes the replayer
/// send some events again (at-least-once), so it is written without fsync.
pub struct Cursor;

impl Cursor {
    /// The saved cursor, or 0 when none was saved yet. A damaged file is an error: guessing
    /// could skip events.
    pub fn load(dir: &Path) -> io::Result<u64> {
        let path = dir.join(CURSOR_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(with_path(e, "reading", &path)),
        };
        let valid = bytes.len() == 12 && crc32fast::hash(&bytes[..8]).to_le_bytes() == bytes[8..12];
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is damaged ({} bytes, checksum mismatch); delete it to replay the whole spool again",
                    path.display(),
                    bytes.len()
                ),
            ));
        }
        Ok(u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")))
    }

    /// Saves `offset` (write a temporary file, then rename: a reader never sees half a cursor).
    pub fn save(dir: &Path, offset: u64) -> io::Result<()> {
        let mut bytes = offset.to_le_bytes().to_vec();
        bytes.extend_from_slice(&crc32fast::hash(&offset.to_le_bytes()).to_le_bytes());
        let tmp = dir.join(format!("{CURSOR_FILE}.tmp"));
        std::fs::write(&tmp, &bytes).map_err(|e| with_path(e, "writing", &tmp))?;
        let path = dir.join(CURSOR_FILE);
        std::fs::rename(&tmp, &path).map_err(|e| with_path(e, "renaming to", &path))
    }
}

/// Shared by a spool's writer and its replayer. The replayer advances the cursor; the writer
/// deletes only segments entirely below it, and when the events not yet replayed fill the
/// spool's cap, it waits here for the replayer before appending more.
#[derive(Debug, Default)]
pub struct Retain {
    cursor: AtomicU64,
    full: AtomicBool,
    lock: Mutex<()>,
    advanced: Condvar,
}

impl Retain {
    pub fn new(cursor: u64) -> Retain {
        Retain {
            cursor: AtomicU64::new(cursor),
            ..Retain::default()
        }
    }

    /// Every event before this offset is in Kafka.
    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::SeqCst)
    }

    /// The replayer has delivered everything before `offset`: wakes a writer waiting for room.
    pub fn advance(&self, offset: u64) {
        self.cursor.fetch_max(offset, Ordering::SeqCst);
        let _guard = self.lock.lock().expect("not poisoned");
        self.advanced.notify_all();
    }

    /// The spool is at its cap: appends wait.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }

    pub(super) fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    /// Waits until the cursor moves past `seen`, or `timeout`.
    pub(super) fn wait_past(&self, seen: u64, timeout: Duration) {
        let guard = self.lock.lock().expect("not poisoned");
        let _ = self
            .advanced
            .wait_timeout_while(guard, timeout, |_| self.cursor() <= seen)
            .expect("not poisoned");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_survives_a_restart_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Cursor::load(dir.path()).unwrap(), 0);
        Cursor::save(dir.path(), 12345).unwrap();
        Cursor::save(dir.path(), 67890).unwrap();
        assert_eq!(Cursor::load(dir.path()).unwrap(), 67890);
        let path = dir.path().join(CURSOR_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Cursor::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("REPLAYED") && err.contains("damaged"), "{err}");
    }

    #[test]
    fn a_waiting_writer_wakes_when_the_cursor_advances() {
        let retain = std::sync::Arc::new(Retain::new(10));
        let r = retain.clone();
        let started = std::time::Instant::now();
        let waiter = std::thread::spawn(move || r.wait_past(10, Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(50));
        retain.advance(5);
        assert_eq!(retain.cursor(), 10, "the cursor never moves back");
        retain.advance(11);
        waiter.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
