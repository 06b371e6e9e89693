//! The single writer of a store directory: recovery at open, block appends, segment rolls,
//! retention, and the syncs that make appended events committed.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use lz4_flex::block::{compress_into_with_table, get_maximum_output_size, CompressTable};

use super::format::{
    encode_record, list_segments, read_header, read_payload, record_len, segment_path, with_path,
    Bad, Header, BLOCK_TARGET, HEADER_LEN, MAX_RECORD,
};
use super::StoreConfig;
use crate::event::Event;

/// What [`Writer::open`] found and repaired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Segments in the directory after recovery (an empty directory gets its first one).
    pub segments: usize,
    pub first_offset: u64,
    /// The offset the next appended event will get.
    pub next_offset: u64,
    /// Bytes cut from the end of the newest segment: a block torn by a crash, never committed.
    pub bytes_dropped: u64,
}

/// Appends events to a store directory. Holds the directory's `LOCK` until dropped.
///
/// [`append`](Writer::append) only encodes into the current block (and writes the blocks it
/// fills); [`flush`](Writer::flush) writes the partial block so readers see it, and
/// [`sync`](Writer::sync) flushes and makes everything appended so far durable: committed.
/// Events still unsynced when the writer is dropped were never committed and may be lost.
pub struct Writer {
    dir: PathBuf,
    _lock: File,
    segment_bytes: u64,
    retention_bytes: u64,
    /// Closed segments, oldest first, as (base offset, bytes).
    closed: VecDeque<(u64, u64)>,
    closed_bytes: u64,
    active: File,
    active_path: PathBuf,
    active_base: u64,
    active_len: u64,
    /// The offset after the last block written to the active segment.
    written: u64,
    /// Encoded records of the block being filled, and how many.
    pending: Vec<u8>,
    pending_count: u32,
    /// Header plus compressed payload of the block being written.
    out: Vec<u8>,
    table: CompressTable,
    /// A segment was created since the directory was last fsynced.
    dir_dirty: bool,
    /// A write or sync failed: the active segment's tail is suspect, so the next write starts
    /// a fresh segment.
    broken: bool,
    block_target: usize,
    max_record: usize,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("dir", &self.dir)
            .field("segments", &self.segments())
            .field("first_offset", &self.first_offset())
            .field("next_offset", &self.next_offset())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Locks `config.dir` (creating it if needed), truncates a torn tail off the newest segment
    /// and positions the writer after the last complete block.
    pub fn open(config: &StoreConfig) -> io::Result<(Writer, Recovery)> {
        if config.segment_bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "store segment_bytes must be greater than zero",
            ));
        }
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir)
            .map_err(|e| with_path(e, "creating store directory", &dir))?;
        let lock = lock_dir(&dir)?;

        let bases = list_segments(&dir)?;
        let mut closed = VecDeque::with_capacity(bases.len());
        let mut closed_bytes = 0;
        let (&active_base, older) = bases.split_last().unwrap_or((&0, &[]));
        for &base in older {
            let path = segment_path(&dir, base);
            let len = std::fs::metadata(&path)
                .map_err(|e| with_path(e, "reading", &path))?
                .len();
            closed.push_back((base, len));
            closed_bytes += len;
        }

        let active_path = segment_path(&dir, active_base);
        let active = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&active_path)
            .map_err(|e| with_path(e, "opening segment", &active_path))?;
        if bases.is_empty() {
            sync_dir(&dir)?;
        }
        let (active_len, written, bytes_dropped) =
            recover_tail(&active, &active_path, active_base)?;

        let mut w = Writer {
            dir,
            _lock: lock,
            segment_bytes: config.segment_bytes,
            retention_bytes: config.retention_bytes,
            closed,
            closed_bytes,
            active,
            active_path,
            active_base,
            active_len,
            written,
            pending: Vec::new(),
            pending_count: 0,
            out: Vec::new(),
            table: CompressTable::large(),
            dir_dirty: false,
            broken: false,
            block_target: BLOCK_TARGET,
            max_record: MAX_RECORD,
        };
        w.enforce_retention();
        w.update_gauges();
        let recovery = Recovery {
            segments: w.segments(),
            first_offset: w.first_offset(),
            next_offset: w.next_offset(),
            bytes_dropped,
        };
        Ok((w, recovery))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The oldest offset still stored.
    pub fn first_offset(&self) -> u64 {
        self.closed.front().map_or(self.active_base, |s| s.0)
    }

    /// The offset the next appended event will get.
    pub fn next_offset(&self) -> u64 {
        self.written + u64::from(self.pending_count)
    }

    /// Bytes of all segments (blocks still being filled are not counted).
    pub fn total_bytes(&self) -> u64 {
        self.closed_bytes + self.active_len
    }

    pub fn segments(&self) -> usize {
        self.closed.len() + 1
    }

    /// Appends `events` and returns their offsets. Full blocks are written (not synced); the
    /// rest waits in the current block for more events, [`flush`](Writer::flush) or
    /// [`sync`](Writer::sync). An event too large to store fails with `InvalidInput` before
    /// anything is appended; any other error drops the unwritten block (its offsets are reused).
    pub fn append(&mut self, events: &[Event]) -> io::Result<Range<u64>> {
        if let Some(len) = events
            .iter()
            .map(record_len)
            .find(|&len| len > self.max_record)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "event of {len} bytes exceeds the store's {} byte limit",
                    self.max_record
                ),
            ));
        }
        let start = self.next_offset();
        for e in events {
            encode_record(&mut self.pending, e);
            self.pending_count += 1;
            if self.pending.len() >= self.block_target {
                self.guard(Writer::write_block)?;
            }
        }
        Ok(start..self.next_offset())
    }

    /// Writes the block being filled, so that readers see it. Does not sync.
    pub fn flush(&mut self) -> io::Result<()> {
        self.guard(Writer::write_block)
    }

    /// Flushes and fdatasyncs the active segment (and the directory, after a segment was
    /// created): everything appended before is then committed.
    pub fn sync(&mut self) -> io::Result<()> {
        self.guard(|w| {
            w.write_block()?;
            if w.dir_dirty {
                sync_dir(&w.dir)?;
                w.dir_dirty = false;
            }
            // A segment unlinked under us (its directory removed) would sync into nothing.
            let meta = w
                .active
                .metadata()
                .map_err(|e| with_path(e, "checking", &w.active_path))?;
            if meta.nlink() == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("store segment {} was deleted", w.active_path.display()),
                ));
            }
            let started = Instant::now();
            w.active
                .sync_data()
                .map_err(|e| with_path(e, "syncing", &w.active_path))?;
            metrics::histogram!("logport_store_fsync_seconds")
                .record(started.elapsed().as_secs_f64());
            w.update_gauges();
            Ok(())
        })
    }

    /// Runs `f`; on error forgets the unwritten block and marks the segment broken.
    fn guard(&mut self, f: impl FnOnce(&mut Writer) -> io::Result<()>) -> io::Result<()> {
        let result = f(self);
        if result.is_err() {
            self.pending.clear();
            self.pending_count = 0;
            self.broken = true;
            // Best effort: cut a partly written block so that it cannot sit mid-segment.
            let _ = self.active.set_len(self.active_len);
        }
        result
    }

    fn write_block(&mut self) -> io::Result<()> {
        if self.broken {
            self.roll(false)?;
        }
        if self.pending_count == 0 {
            return Ok(());
        }
        let max = HEADER_LEN + get_maximum_output_size(self.pending.len());
        if self.out.len() < max {
            self.out.resize(max, 0);
        }
        let (head, body) = self.out.split_at_mut(HEADER_LEN);
        let clen = compress_into_with_table(&self.pending, body, &mut self.table)
            .map_err(|e| io::Error::other(format!("lz4 compression failed: {e}")))?;
        let head: &mut [u8; HEADER_LEN] = head.try_into().expect("header slice");
        Header::seal(
            self.written,
            self.pending_count,
            self.pending.len() as u32,
            &body[..clen],
            head,
        );
        let block_len = (HEADER_LEN + clen) as u64;

        if self.active_len > 0 && self.active_len + block_len > self.segment_bytes {
            self.roll(true)?;
        }
        self.active
            .write_all_at(&self.out[..block_len as usize], self.active_len)
            .map_err(|e| with_path(e, "writing", &self.active_path))?;
        self.active_len += block_len;
        self.written += u64::from(self.pending_count);
        self.pending.clear();
        self.pending_count = 0;
        // One huge event must not pin its buffers forever.
        let keep = 2 * get_maximum_output_size(self.block_target);
        if self.out.capacity() > 2 * keep {
            self.out = Vec::with_capacity(keep);
            self.pending = Vec::with_capacity(self.block_target);
        }
        Ok(())
    }

    /// Starts a new segment at the next block's offset. The old segment is synced first (unless it
    /// is broken) so that every segment but the newest is always complete on disk; recovery then
    /// only has to scan the newest.
    fn roll(&mut self, sync_old: bool) -> io::Result<()> {
        if sync_old {
            self.active
                .sync_data()
                .map_err(|e| with_path(e, "syncing", &self.active_path))?;
        }
        let base = self.written;
        let path = segment_path(&self.dir, base);
        // Truncate: anything already under this name lies beyond the last written block.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| with_path(e, "creating segment", &path))?;
        if base != self.active_base {
            self.closed.push_back((self.active_base, self.active_len));
            self.closed_bytes += self.active_len;
        }
        self.active = file;
        self.active_path = path;
        self.active_base = base;
        self.active_len = 0;
        self.dir_dirty = true;
        self.broken = false;
        self.enforce_retention();
        self.update_gauges();
        Ok(())
    }

    /// Deletes the oldest closed segments while the store exceeds its retention. (A spool will
    /// add a floor here: never delete past the offset it has not replayed yet.)
    fn enforce_retention(&mut self) {
        while self.total_bytes() > self.retention_bytes {
            let Some(&(base, bytes)) = self.closed.front() else {
                break;
            };
            let path = segment_path(&self.dir, base);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(segment = %path.display(), error = %e, "retention could not delete store segment");
                    break;
                }
            }
            self.closed.pop_front();
            self.closed_bytes -= bytes;
            let end = self.first_offset();
            tracing::info!(
                segment = %path.display(),
                bytes,
                offsets = %format_args!("{base}..{end}"),
                retention_bytes = self.retention_bytes,
                "retention deleted store segment"
            );
        }
    }

    fn update_gauges(&self) {
        metrics::gauge!("logport_store_bytes").set(self.total_bytes() as f64);
        metrics::gauge!("logport_store_segments").set(self.segments() as f64);
    }

    #[cfg(test)]
    pub(super) fn set_limits(&mut self, block_target: usize, max_record: usize) {
        self.block_target = block_target;
        self.max_record = max_record;
    }
}

fn lock_dir(dir: &Path) -> io::Result<File> {
    let path = dir.join("LOCK");
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| with_path(e, "opening", &path))?;
    let locked = lock.try_lock();
    match locked {
        Ok(()) => Ok(lock),
        Err(TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "store directory {} is locked by another writer (its LOCK file is held): \
                 only one logport process may write to a store directory",
                dir.display()
            ),
        )),
        Err(TryLockError::Error(e)) => Err(with_path(e, "locking", &path)),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| with_path(e, "syncing directory", dir))
}

/// Scans the newest segment block by block (CRC included) and cuts whatever follows the last
/// complete block that continues the offsets. Returns (valid length, next offset, bytes cut).
fn recover_tail(file: &File, path: &Path, base: u64) -> io::Result<(u64, u64, u64)> {
    let file_len = file
        .metadata()
        .map_err(|e| with_path(e, "reading", path))?
        .len();
    let (mut pos, mut offset) = (0u64, base);
    let mut payload = Vec::new();
    let bad = loop {
        let h = match read_header(file, pos, file_len) {
            Ok(Ok(h)) => h,
            Ok(Err(bad)) => break bad,
            Err(e) => return Err(with_path(e, "reading", path)),
        };
        let checked = match read_payload(file, pos, &h, &mut payload) {
            Ok(crc) => crc.and_then(|()| h.check_base(offset)),
            Err(e) => return Err(with_path(e, "reading", path)),
        };
        if let Err(bad) = checked {
            break bad;
        }
        pos += h.total_len();
        offset = h.end_offset();
    };
    let dropped = file_len - pos;
    if bad != Bad::Eof {
        tracing::warn!(
            segment = %path.display(),
            at_byte = pos,
            bytes_dropped = dropped,
            reason = %bad,
            next_offset = offset,
            "store recovery truncated a torn tail (events never committed)"
        );
        metrics::counter!("logport_store_recovered_bytes_dropped_total").increment(dropped);
        file.set_len(pos)
            .map_err(|e| with_path(e, "truncating", path))?;
        file.sync_all().map_err(|e| with_path(e, "syncing", path))?;
    }
    Ok((pos, offset, dropped))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::super::format::{list_segments, segment_path};
    use super::super::testutil::{assert_events, block_starts, config, event, events, read_all};
    use super::super::Reader;
    use super::*;
    use crate::event::Protocol;

    fn open(cfg: &StoreConfig) -> (Writer, Recovery) {
        Writer::open(cfg).unwrap()
    }

    #[test]
    fn round_trip_every_protocol_family_and_binary_values() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, rec) = open(&config(dir.path(), 1 << 20));
        assert_eq!(
            rec,
            Recovery {
                segments: 1,
                first_offset: 0,
                next_offset: 0,
                bytes_dropped: 0
            }
        );
        let every_byte: Bytes = (0..=255u8).cycle().take(3000).collect::<Vec<_>>().into();
        let big: Bytes = (0..(1usize << 20) + 10_000)
            .map(|i| (i * 7 % 256) as u8)
            .collect::<Vec<_>>()
            .into();
        let mut want = Vec::new();
        for protocol in Protocol::ALL {
            for peer in [
                "192.0.2.1:0",
                "[::]:65535",
                "[2001:db8:ffff::abcd]:514",
                "255.255.255.255:65535",
            ] {
                for value in [
                    Bytes::new(),
                    Bytes::from_static(b"{\"message\":\"hi\"}"),
                    every_byte.clone(),
                ] {
                    want.push(Event {
                        app: Arc::from(if want.len() % 5 == 0 {
                            ""
                        } else {
                            "payments/api ✓"
                        }),
                        protocol,
                        peer: peer.parse().unwrap(),
                        received_ns: if want.len() % 2 == 0 {
                            -(want.len() as i64)
                        } else {
                            i64::MAX - 1
                        },
                        value,
                    });
                }
            }
        }
        want.insert(
            10,
            Event {
                value: big,
                ..event(1)
            },
        );
        assert_eq!(
            w.append(&want[..20]).unwrap(),
            0..20,
            "a batch larger than a block"
        );
        assert_eq!(w.append(&want[20..]).unwrap(), 20..want.len() as u64);
        w.sync().unwrap();
        assert!(
            block_starts(&segment_path(dir.path(), 0)).len() > 2,
            "the big event splits blocks"
        );
        let got = read_all(dir.path());
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.offset, i as u64);
            assert_eq!(&g.event, w, "event {i}");
        }
    }

    #[test]
    fn offsets_are_dense_across_blocks_and_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = open(&config(dir.path(), 700));
        w.set_limits(250, MAX_RECORD);
        let mut next = 0;
        for (i, n) in [1u64, 5, 17, 3, 40, 1, 60, 2].into_iter().enumerate() {
            let range = w.append(&events(next..next + n)).unwrap();
            assert_eq!(range, next..next + n);
            next += n;
            if i % 3 == 0 {
                w.flush().unwrap();
            }
        }
        w.sync().unwrap();
        assert_eq!(w.next_offset(), next);

        let bases = list_segments(dir.path()).unwrap();
        assert!(bases.len() > 3, "tiny segments roll: {bases:?}");
        let mut expected = 0;
        for &base in &bases {
            assert_eq!(base, expected, "a segment is named by its first offset");
            let path = segment_path(dir.path(), base);
            let file = File::open(&path).unwrap();
            let len = file.metadata().unwrap().len();
            let starts = block_starts(&path);
            assert_eq!(
                *starts.last().unwrap(),
                len,
                "{path:?} holds only whole blocks"
            );
            for &pos in &starts[..starts.len() - 1] {
                let h = read_header(&file, pos, len).unwrap().unwrap();
                assert_eq!(h.base, expected, "blocks are contiguous");
                expected = h.end_offset();
            }
            assert!(
                starts.len() == 2 || len <= 700,
                "only a single block may exceed segment_bytes"
            );
        }
        assert_eq!(expected, next);
        assert_events(&read_all(dir.path()), 0..next);
    }

    #[test]
    fn reopening_continues_the_offsets_and_forgets_unsynced_appends() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 1 << 20);
        let (mut w, _) = open(&cfg);
        w.append(&events(0..10)).unwrap();
        w.sync().unwrap();
        w.append(&events(10..13)).unwrap(); // still in the unwritten block
        drop(w);

        let (mut w, rec) = open(&cfg);
        assert_eq!(
            rec,
            Recovery {
                segments: 1,
                first_offset: 0,
                next_offset: 10,
                bytes_dropped: 0
            }
        );
        assert_eq!(w.append(&events(10..15)).unwrap(), 10..15);
        w.sync().unwrap();
        drop(w);
        assert_events(&read_all(dir.path()), 0..15);
    }

    /// Three blocks in one segment; returns the segment's bytes and where its blocks start.
    fn three_blocks(dir: &Path) -> (PathBuf, Vec<u8>, Vec<u64>) {
        let (mut w, _) = open(&config(dir, 1 << 20));
        for range in [0..4, 4..9, 9..15] {
            w.append(&events(range)).unwrap();
            w.flush().unwrap();
        }
        w.sync().unwrap();
        let path = segment_path(dir, 0);
        let starts = block_starts(&path);
        assert_eq!(starts.len(), 4);
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes, starts)
    }

    /// Reopens after the segment was damaged: the first two blocks (offsets 0..9) stay, the
    /// rest is cut, and appending continues at offset 9.
    fn assert_recovers_to_two_blocks(dir: &Path, path: &Path, second_end: u64, what: &str) {
        let torn_len = std::fs::metadata(path).unwrap().len();
        let (mut w, rec) = open(&config(dir, 1 << 20));
        assert_eq!(rec.bytes_dropped, torn_len - second_end, "{what}");
        assert_eq!(rec.next_offset, 9, "{what}");
        assert_eq!(std::fs::metadata(path).unwrap().len(), second_end, "{what}");
        assert_eq!(w.append(&events(9..10)).unwrap(), 9..10, "{what}");
        w.sync().unwrap();
        drop(w);
        assert_events(&read_all(dir), 0..10);
    }

    #[test]
    fn recovery_cuts_a_tail_torn_at_every_byte_of_the_last_block() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes, starts) = three_blocks(dir.path());
        for cut in starts[2]..starts[3] {
            std::fs::write(&path, &bytes[..cut as usize]).unwrap();
            // Before recovery, readers see the torn block as not written yet.
            assert_events(&read_all(dir.path()), 0..9);
            assert_recovers_to_two_blocks(dir.path(), &path, starts[2], &format!("cut at {cut}"));
        }
    }

    #[test]
    fn recovery_cuts_garbage_a_stale_block_or_a_bad_crc_after_the_last_good_block() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes, starts) = three_blocks(dir.path());
        let second_end = starts[2] as usize;
        let mut garbage = bytes[..second_end].to_vec();
        let mut x: u32 = 0x9e37_79b9;
        garbage.extend((0..5000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        let mut zeros = bytes[..second_end].to_vec();
        zeros.resize(second_end + 4096, 0);
        // A complete, valid block whose offsets do not continue: the first block again.
        let mut stale = bytes[..second_end].to_vec();
        stale.extend_from_slice(&bytes[..starts[1] as usize]);
        let mut flipped = bytes.clone();
        flipped[second_end + HEADER_LEN + 3] ^= 0x01;
        for (what, damaged) in [
            ("garbage", garbage),
            ("zeros", zeros),
            ("stale block", stale),
            ("flipped byte", flipped),
        ] {
            std::fs::write(&path, &damaged).unwrap();
            assert_events(&read_all(dir.path()), 0..9);
            assert_recovers_to_two_blocks(dir.path(), &path, starts[2], what);
        }
    }

    #[test]
    fn a_flipped_byte_mid_segment_is_an_error_naming_the_file_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes, starts) = three_blocks(dir.path());
        bytes[starts[1] as usize + HEADER_LEN + 2] ^= 0x80;
        std::fs::write(&path, &bytes).unwrap();
        let mut r = Reader::open(dir.path()).unwrap();
        for offset in 0..4 {
            assert_eq!(r.next().unwrap().unwrap().offset, offset);
        }
        let err = r.next().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("at byte {}", starts[1])), "{msg}");
        assert!(msg.contains("CRC"), "{msg}");
    }

    #[test]
    fn a_bad_last_block_of_an_older_segment_is_an_error_not_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = open(&config(dir.path(), 1));
        for range in [0..3, 3..6, 6..9] {
            w.append(&events(range)).unwrap();
            w.flush().unwrap();
        }
        w.sync().unwrap();
        assert_eq!(list_segments(dir.path()).unwrap(), [0, 3, 6]);
        let path = segment_path(dir.path(), 3);
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let mut r = Reader::open(dir.path()).unwrap();
        r.seek(3);
        let msg = r.next().unwrap_err().to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("at byte 0"),
            "{msg}"
        );

        // Truncated to nothing: the offsets 3..6 are missing between two segments.
        std::fs::write(&path, b"").unwrap();
        let mut r = Reader::open(dir.path()).unwrap();
        r.seek(3);
        let msg = r.next().unwrap_err().to_string();
        assert!(
            msg.contains("ends at offset 3 but the next one starts at 6"),
            "{msg}"
        );
    }

    #[test]
    fn retention_deletes_the_oldest_segments_and_readers_move_on() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            retention_bytes: 1500,
            ..config(dir.path(), 400)
        };
        let (mut w, _) = open(&cfg);
        w.append(&events(0..10)).unwrap();
        w.sync().unwrap();
        let mut follower = Reader::open(dir.path()).unwrap();
        assert_eq!(follower.next().unwrap().unwrap().offset, 0);

        for start in (10..400).step_by(10) {
            w.append(&events(start..start + 10)).unwrap();
            w.flush().unwrap();
        }
        w.sync().unwrap();
        let bases = list_segments(dir.path()).unwrap();
        assert!(bases[0] > 10, "the oldest segments are gone: {bases:?}");
        assert_eq!(w.first_offset(), bases[0]);
        assert_eq!(w.segments(), bases.len());
        let on_disk: u64 = bases
            .iter()
            .map(|&b| {
                std::fs::metadata(segment_path(dir.path(), b))
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(on_disk, w.total_bytes());
        let active = std::fs::metadata(segment_path(dir.path(), *bases.last().unwrap()))
            .unwrap()
            .len();
        assert!(
            on_disk - active <= 1500,
            "closed segments fit the retention: {on_disk}"
        );

        // The follower finishes the segment it had open, then jumps to the oldest remaining one.
        let mut got = Vec::new();
        while let Some(e) = follower.next().unwrap() {
            got.push(e);
        }
        assert_events(&got[..9], 1..10);
        assert_eq!(got[9].offset, bases[0]);
        assert_events(&got[9..], bases[0]..400);

        // A reader sent to a deleted offset starts at the oldest remaining one.
        let mut r = Reader::open(dir.path()).unwrap();
        r.seek(5);
        assert_eq!(r.next().unwrap().unwrap().offset, bases[0]);
        assert_eq!(r.first_offset().unwrap(), bases[0]);
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(&dir.path().join("store"), 1 << 20);
        let (w, _) = open(&cfg);
        let err = Writer::open(&cfg).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let msg = err.to_string();
        assert!(
            msg.contains(&cfg.dir.display().to_string()) && msg.contains("locked"),
            "{msg}"
        );
        drop(w);
        Writer::open(&cfg).expect("the lock is released with the writer");
    }

    #[test]
    fn an_oversized_event_is_refused_before_anything_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = open(&config(dir.path(), 1 << 20));
        w.set_limits(BLOCK_TARGET, 200);
        w.append(&events(0..2)).unwrap();
        let big = Event {
            value: Bytes::from(vec![b'x'; 300]),
            ..event(2)
        };
        let err = w.append(&[event(2), big]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(w.append(&events(2..4)).unwrap(), 2..4);
        w.sync().unwrap();
        assert_events(&read_all(dir.path()), 0..4);
    }

    #[test]
    fn after_a_failed_sync_the_writer_starts_a_fresh_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = open(&config(dir.path(), 1 << 20));
        w.append(&events(0..5)).unwrap();
        w.sync().unwrap();
        std::fs::remove_file(segment_path(dir.path(), 0)).unwrap();
        w.append(&events(5..8)).unwrap();
        let msg = w.sync().unwrap_err().to_string();
        assert!(msg.contains("00000000000000000000.log"), "{msg}");
        assert_eq!(w.next_offset(), 8, "the written block keeps its offsets");
        assert_eq!(w.append(&events(8..10)).unwrap(), 8..10);
        w.sync().unwrap();
        assert_eq!(list_segments(dir.path()).unwrap(), [8]);
        assert_events(&read_all(dir.path()), 8..10);
    }
}
