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
    corrupt, encode_committed, encode_record, find_block, list_segments, read_header, read_payload,
    record_len, segment_path, with_path, Bad, Header, BLOCK_TARGET, COMMITTED_FILE, HEADER_LEN,
    MAX_RECORD,
};
use super::{Retain, StoreConfig};
use crate::event::Event;
use std::sync::Arc;

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
/// fills); [`flush`](Writer::flush) writes the partial block to the segment file, and
/// [`sync`](Writer::sync) flushes and makes everything appended so far durable: committed. Only
/// then do readers see it: after each sync the writer publishes the committed next offset in the
/// `COMMITTED` file. Events still unsynced when the writer is dropped were never committed and
/// may be lost. After a failed write or sync the active segment is cut back to its last synced
/// length and the offsets rewound, so that no unsynced block can later go missing between
/// committed ones.
pub struct Writer {
    dir: PathBuf,
    _lock: File,
    segment_bytes: u64,
    retention_bytes: u64,
    /// A spool's replay cursor: segments are deleted once replayed, never before.
    retain: Option<Arc<Retain>>,
    size_gauge: metrics::Gauge,
    segments_gauge: metrics::Gauge,
    /// Closed segments, oldest first, as (base offset, bytes).
    closed: VecDeque<(u64, u64)>,
    closed_bytes: u64,
    active: File,
    active_path: PathBuf,
    active_base: u64,
    active_len: u64,
    /// The offset after the last block written to the active segment.
    written: u64,
    /// Length and next offset of the active segment as of its last successful sync (or its
    /// creation, or recovery): what a failed write or sync cuts it back to.
    synced_len: u64,
    synced_offset: u64,
    /// `COMMITTED`, where `synced_offset` is published for readers after each sync, and the value
    /// last written to it.
    committed: File,
    published: u64,
    publish_failed: bool,
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
    /// A write or sync failed and the active segment is not yet cut back to `synced_len`:
    /// nothing is written or synced (every sync fails) until that cut succeeds.
    needs_cut: bool,
    block_target: usize,
    max_record: usize,
    /// Test-only fault injection: the names of operations ("write", "sync", "cut") that fail
    /// the next time they run, in order.
    #[cfg(test)]
    faults: VecDeque<&'static str>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("dir", &self.dir)
            .field("segments", &self.segments())
            .field("first_offset", &self.first_offset())
            .field("next_offset", &self.next_offset())
            .field("broken", &self.broken)
            .field("needs_cut", &self.needs_cut)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Locks `config.dir` (creating it if needed), truncates a torn tail off the newest segment,
    /// syncs it, positions the writer after the last complete block and publishes that offset in
    /// `COMMITTED`. Damage in the middle of the newest segment (a bad block with a valid one
    /// after it) is not truncated: opening fails, naming the file and position, and the
    /// directory is left unchanged.
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
        let (active_len, written, bytes_dropped) =
            recover_tail(&active, &active_path, &dir, active_base)?;
        // What a previous writer left unsynced (it crashed before its sync) is committed from
        // now on: readers are about to be shown it, and its offsets must not be reused.
        active
            .sync_data()
            .map_err(|e| with_path(e, "syncing", &active_path))?;
        sync_dir(&dir)?;
        let committed = publish_at_open(&dir, written)?;

        let mut w = Writer {
            dir,
            _lock: lock,
            segment_bytes: config.segment_bytes,
            retention_bytes: config.retention_bytes,
            retain: config.retain.clone(),
            size_gauge: metrics::gauge!(format!("logport_{}_bytes", config.name)),
            segments_gauge: metrics::gauge!(format!("logport_{}_segments", config.name)),
            closed,
            closed_bytes,
            active,
            active_path,
            active_base,
            active_len,
            written,
            synced_len: active_len,
            synced_offset: written,
            committed,
            published: written,
            publish_failed: false,
            pending: Vec::new(),
            pending_count: 0,
            out: Vec::new(),
            table: CompressTable::large(),
            dir_dirty: false,
            broken: false,
            needs_cut: false,
            block_target: BLOCK_TARGET,
            max_record: MAX_RECORD,
            #[cfg(test)]
            faults: VecDeque::new(),
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
    /// anything is appended; any other error drops everything appended since the last sync
    /// (see [`sync`](Writer::sync)).
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

    /// Writes the block being filled to the segment file. Does not sync, so readers do not see
    /// it yet (except in a store whose `COMMITTED` file is missing).
    pub fn flush(&mut self) -> io::Result<()> {
        self.guard(Writer::write_block)
    }

    /// Flushes and fdatasyncs the active segment (and the directory, after a segment was
    /// created): everything appended before is then committed, and published to readers.
    ///
    /// If this (or an append) fails, everything appended since the last successful sync is
    /// dropped: the active segment is cut back to its synced length and the next appended event
    /// gets the first unsynced offset again (those events were never committed), then the
    /// writer continues in a fresh segment. If even the cut fails, every later sync fails too
    /// (retrying the cut first) rather than commit events after a hole.
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
            w.fault("sync")
                .and_then(|()| w.active.sync_data())
                .map_err(|e| with_path(e, "syncing", &w.active_path))?;
            metrics::histogram!("logport_store_fsync_seconds")
                .record(started.elapsed().as_secs_f64());
            w.synced_len = w.active_len;
            w.synced_offset = w.written;
            w.update_gauges();
            Ok(())
        })?;
        self.publish();
        Ok(())
    }

    /// Runs `f` (after the cut a previous failure still owes). On error drops everything
    /// unsynced: the block being filled, the blocks written since the last sync (cut off the
    /// segment) and their offsets; and marks the segment broken so that the next write rolls.
    fn guard(&mut self, f: impl FnOnce(&mut Writer) -> io::Result<()>) -> io::Result<()> {
        let result = self.cut_back().and_then(|()| f(self));
        if result.is_err() {
            self.pending.clear();
            self.pending_count = 0;
            if !self.needs_cut {
                self.broken = true;
                self.needs_cut = true;
                self.written = self.synced_offset;
                if let Err(e) = self.cut_back() {
                    tracing::error!(error = %e, "store cannot drop unsynced blocks; nothing more will be committed until it can");
                }
            }
        }
        result
    }

    /// Cuts the active segment back to its synced length, if a failure left it longer.
    fn cut_back(&mut self) -> io::Result<()> {
        if !self.needs_cut {
            return Ok(());
        }
        let len = self.synced_len;
        self.fault("cut")
            .and_then(|()| self.active.set_len(len))
            .and_then(|()| self.active.sync_all())
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot cut store segment {} back to its last synced length ({len} bytes) \
                         after a failed write or sync: {e}; refusing to commit anything after \
                         blocks that may be lost",
                        self.active_path.display()
                    ),
                )
            })?;
        self.active_len = len;
        self.needs_cut = false;
        self.update_gauges();
        Ok(())
    }

    /// Publishes the committed next offset in `COMMITTED` for readers. Only a hint (readers cap
    /// what they return at it), so it is not synced and a failure does not fail the commit.
    fn publish(&mut self) {
        if self.published == self.synced_offset && !self.publish_failed {
            return;
        }
        let bytes = encode_committed(self.synced_offset);
        // Deleted under us (say, with the whole directory): create it again.
        let result = match self.committed.metadata() {
            Ok(meta) if meta.nlink() > 0 => self.committed.write_all_at(&bytes, 0),
            _ => publish_at_open(&self.dir, self.synced_offset).map(|file| self.committed = file),
        };
        match result {
            Ok(()) => {
                self.published = self.synced_offset;
                self.publish_failed = false;
            }
            Err(e) if !self.publish_failed => {
                self.publish_failed = true;
                tracing::warn!(dir = %self.dir.display(), error = %e, "store cannot update its COMMITTED file; readers may lag behind");
            }
            Err(_) => {}
        }
    }

    /// Fails if the test armed a fault for `op`.
    #[cfg(test)]
    fn fault(&mut self, op: &'static str) -> io::Result<()> {
        if self.faults.front() == Some(&op) {
            self.faults.pop_front();
            return Err(io::Error::other(format!("injected {op} failure")));
        }
        Ok(())
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn fault(&mut self, _op: &'static str) -> io::Result<()> {
        Ok(())
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
        self.fault("write")
            .and_then(|()| {
                self.active
                    .write_all_at(&self.out[..block_len as usize], self.active_len)
            })
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
    /// is broken: then it was cut back to its synced length) so that every segment but the newest
    /// is always complete on disk; recovery then only has to scan the newest.
    fn roll(&mut self, sync_old: bool) -> io::Result<()> {
        if sync_old {
            self.fault("sync")
                .and_then(|()| self.active.sync_data())
                .map_err(|e| with_path(e, "syncing", &self.active_path))?;
            self.synced_len = self.active_len;
            self.synced_offset = self.written;
        }
        debug_assert!(!self.needs_cut && self.written == self.synced_offset);
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
        self.synced_len = 0;
        self.synced_offset = base;
        self.dir_dirty = true;
        self.broken = false;
        self.enforce_retention();
        self.update_gauges();
        Ok(())
    }

    /// Deletes the oldest closed segments while the store exceeds its retention; in a spool,
    /// every replayed segment and no other.
    fn enforce_retention(&mut self) {
        while let Some(&(base, bytes)) = self.closed.front() {
            let end = self.closed.get(1).map_or(self.active_base, |s| s.0);
            let expendable = match &self.retain {
                Some(retain) => end <= retain.cursor(),
                None => self.total_bytes() > self.retention_bytes,
            };
            if !expendable {
                break;
            }
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
            if self.retain.is_some() {
                tracing::debug!(segment = %path.display(), bytes, offsets = %format_args!("{base}..{end}"), "deleted a replayed spool segment");
            } else {
                tracing::info!(
                    segment = %path.display(),
                    bytes,
                    offsets = %format_args!("{base}..{end}"),
                    retention_bytes = self.retention_bytes,
                    "retention deleted store segment"
                );
            }
        }
        self.update_gauges();
    }

    /// For a spool: the bytes that may still be appended before the cap (a plain store: no limit).
    pub fn room(&self) -> u64 {
        match self.retain {
            Some(_) => self.retention_bytes.saturating_sub(self.total_bytes()),
            None => u64::MAX,
        }
    }

    /// The spool this writer fills, if it is one.
    pub fn retain(&self) -> Option<&Arc<Retain>> {
        self.retain.as_ref()
    }

    /// For a spool: deletes what is replayed and says whether what is left is below the cap
    /// (`retention_bytes`), i.e. whether more may be appended now. A plain store always has room.
    pub fn make_room(&mut self) -> bool {
        let Some(retain) = self.retain.clone() else {
            return true;
        };
        self.enforce_retention();
        // Everything is replayed but the active segment alone fills the cap: start a new one so
        // that the old one can go.
        let settled =
            !self.needs_cut && self.pending_count == 0 && self.written == self.synced_offset;
        if self.total_bytes() >= self.retention_bytes
            && settled
            && self.active_len > 0
            && retain.cursor() >= self.written
        {
            if let Err(e) = self.roll(true) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not start a new spool segment");
            }
        }
        let room = self.total_bytes() < self.retention_bytes;
        retain.set_full(!room);
        room
    }

    fn update_gauges(&self) {
        self.size_gauge.set(self.total_bytes() as f64);
        self.segments_gauge.set(self.segments() as f64);
    }

    #[cfg(test)]
    pub(super) fn set_limits(&mut self, block_target: usize, max_record: usize) {
        self.block_target = block_target;
        self.max_record = max_record;
    }

    /// Makes the next runs of these operations ("write", "sync", "cut") fail, in order.
    #[cfg(test)]
    pub(super) fn inject_faults(&mut self, ops: &[&'static str]) {
        self.faults.extend(ops);
    }
}

/// Writes `COMMITTED` afresh (a new file renamed over the old one, so that readers never see it
/// empty) and returns it open for in-place updates.
fn publish_at_open(dir: &Path, offset: u64) -> io::Result<File> {
    let tmp = dir.join(format!("{COMMITTED_FILE}.tmp"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|file| {
            file.write_all_at(&encode_committed(offset), 0)
                .map(|()| file)
        })
        .map_err(|e| with_path(e, "writing", &tmp))?;
    let path = dir.join(COMMITTED_FILE);
    std::fs::rename(&tmp, &path).map_err(|e| with_path(e, "renaming to", &path))?;
    Ok(file)
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

/// Scans the newest segment block by block (CRC included) and cuts a torn tail: whatever follows
/// the last complete block that continues the offsets, provided no valid block lies anywhere
/// after it (what a crash leaves). A valid block after the bad position means damage in the
/// middle of the segment, and cutting would delete committed events: that fails, changing
/// nothing. Returns (valid length, next offset, bytes cut).
fn recover_tail(file: &File, path: &Path, dir: &Path, base: u64) -> io::Result<(u64, u64, u64)> {
    let file_len = file
        .metadata()
        .map_err(|e| with_path(e, "reading", path))?
        .len();
    let mut payload = Vec::new();
    let (pos, offset, bad) = valid_prefix(file, 0, base, file_len, &mut payload)
        .map_err(|e| with_path(e, "reading", path))?;
    if bad == Bad::Eof {
        return Ok((pos, offset, 0));
    }
    let after = find_block(file, pos + 1, file_len, &mut payload)
        .map_err(|e| with_path(e, "reading", path))?;
    if let Some((at, h)) = after {
        // The offsets held by the valid blocks that follow (as far as they continue each other).
        let (_, end, _) = valid_prefix(file, at, h.base, file_len, &mut payload)
            .map_err(|e| with_path(e, "reading", path))?;
        let lost = if h.base > offset {
            format!("; offsets {offset}..{} lie in the damaged bytes", h.base)
        } else {
            String::new()
        };
        let what = format!(
            "{bad}, but valid blocks with offsets {}..{end} follow it (from byte {at}{lost}), so \
             this is damage, not a torn tail, and cutting it off would delete committed events. \
             The store was left unchanged. Keep a copy of the file for inspection, then either \
             truncate it to {pos} bytes (keeping offsets {base}..{offset}) or move it out of {} \
             (new events then reuse its offsets), and start again",
            h.base,
            dir.display()
        );
        return Err(corrupt(path, pos, what));
    }
    let dropped = file_len - pos;
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
    Ok((pos, offset, dropped))
}

/// Walks valid blocks (CRC included) from byte `pos`, the first expected to hold `offset`, while
/// each continues the offsets of the one before. Returns where and at which offset the walk
/// stopped, and why.
fn valid_prefix(
    file: &File,
    mut pos: u64,
    mut offset: u64,
    file_len: u64,
    payload: &mut Vec<u8>,
) -> io::Result<(u64, u64, Bad)> {
    loop {
        let h = match read_header(file, pos, file_len)? {
            Ok(h) => h,
            Err(bad) => return Ok((pos, offset, bad)),
        };
        if let Err(bad) = read_payload(file, pos, &h, payload)?.and_then(|()| h.check_base(offset))
        {
            return Ok((pos, offset, bad));
        }
        pos += h.total_len();
        offset = h.end_offset();
    }
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
    fn recovery_refuses_to_cut_damage_followed_by_valid_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes, starts) = three_blocks(dir.path());
        let cfg = config(dir.path(), 1 << 20);
        let second = starts[1] as usize;
        let mut flipped = bytes.clone();
        flipped[second + HEADER_LEN + 2] ^= 0x80;
        let mut zeroed = bytes.clone();
        zeroed[second..starts[2] as usize].fill(0);
        for (what, damaged) in [("flipped byte", flipped), ("zeroed block", zeroed)] {
            std::fs::write(&path, &damaged).unwrap();
            let err = Writer::open(&cfg).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{what}");
            let msg = err.to_string();
            for part in [
                path.display().to_string(),
                format!("at byte {second}"),
                "offsets 9..15".to_string(),
                format!("truncate it to {second} bytes"),
            ] {
                assert!(msg.contains(&part), "{what}: {part:?} not in {msg}");
            }
            assert!(
                std::fs::read(&path).unwrap() == damaged,
                "{what}: file changed"
            );
            assert_eq!(list_segments(dir.path()).unwrap(), [0], "{what}");

            // Readers agree: an error at the same place, not a silent end of the store.
            let mut r = Reader::open(dir.path()).unwrap();
            for offset in 0..4 {
                assert_eq!(r.next().unwrap().unwrap().offset, offset, "{what}");
            }
            let msg = r.next().unwrap_err().to_string();
            assert!(msg.contains(&format!("at byte {second}")), "{what}: {msg}");
        }

        // Doing what the message says gets the store going again.
        std::fs::write(&path, &bytes[..second]).unwrap();
        let (_, rec) = open(&cfg);
        assert_eq!((rec.next_offset, rec.bytes_dropped), (4, 0));
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
    fn after_a_failed_sync_the_writer_rewinds_and_starts_a_fresh_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = open(&config(dir.path(), 1 << 20));
        w.append(&events(0..5)).unwrap();
        w.sync().unwrap();
        std::fs::remove_file(segment_path(dir.path(), 0)).unwrap();
        w.append(&events(5..8)).unwrap();
        let msg = w.sync().unwrap_err().to_string();
        assert!(msg.contains("00000000000000000000.log"), "{msg}");
        assert_eq!(
            w.next_offset(),
            5,
            "the unsynced events failed: their offsets are reused"
        );
        assert_eq!(w.append(&events(5..7)).unwrap(), 5..7);
        w.sync().unwrap();
        assert_eq!(list_segments(dir.path()).unwrap(), [5]);
        assert_events(&read_all(dir.path()), 5..7);
    }

    fn len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn a_failed_sync_or_write_leaves_no_gap_between_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = open(&config(dir.path(), 1 << 20));
        w.append(&events(0..5)).unwrap();
        w.sync().unwrap();
        let seg0 = segment_path(dir.path(), 0);
        let synced = len(&seg0);

        // A failed sync: the block written before it is cut off and its offsets are reused.
        w.append(&events(5..8)).unwrap();
        w.flush().unwrap();
        assert!(len(&seg0) > synced);
        w.inject_faults(&["sync"]);
        let msg = w.sync().unwrap_err().to_string();
        assert!(
            msg.contains("injected sync failure") && msg.contains(&seg0.display().to_string()),
            "{msg}"
        );
        assert_eq!(len(&seg0), synced, "the unsynced block is cut off");
        assert_eq!(w.next_offset(), 5);
        assert_eq!(w.append(&events(5..8)).unwrap(), 5..8);
        w.sync().unwrap();
        assert_eq!(list_segments(dir.path()).unwrap(), [0, 5]);
        let seg5 = segment_path(dir.path(), 5);
        let synced5 = len(&seg5);

        // A failed append, after blocks of the same group were written: all of them go.
        w.set_limits(200, MAX_RECORD);
        w.append(&events(8..20)).unwrap();
        assert!(len(&seg5) > synced5, "full blocks were written");
        w.inject_faults(&["write"]);
        let msg = w.append(&events(20..30)).unwrap_err().to_string();
        assert!(msg.contains("injected write failure"), "{msg}");
        assert_eq!(len(&seg5), synced5);
        assert_eq!(w.next_offset(), 8);
        assert_eq!(w.append(&events(8..30)).unwrap(), 8..30);
        w.sync().unwrap();
        assert_eq!(list_segments(dir.path()).unwrap(), [0, 5, 8]);

        // An OS crash loses what was never synced; here that is nothing, so no segment ends
        // short of where the next one starts.
        for (path, synced) in [(&seg0, synced), (&seg5, synced5)] {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(synced)
                .unwrap();
        }
        assert_events(&read_all(dir.path()), 0..30);
        drop(w);
        assert_eq!(open(&config(dir.path(), 1 << 20)).1.next_offset, 30);
    }

    #[test]
    fn while_the_unsynced_tail_cannot_be_cut_every_sync_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = open(&config(dir.path(), 1 << 20));
        w.append(&events(0..5)).unwrap();
        w.sync().unwrap();
        let seg0 = segment_path(dir.path(), 0);
        let synced = len(&seg0);
        w.append(&events(5..8)).unwrap();
        w.flush().unwrap();
        w.inject_faults(&["sync", "cut", "cut"]);
        let msg = w.sync().unwrap_err().to_string();
        assert!(msg.contains("injected sync failure"), "{msg}");
        assert!(len(&seg0) > synced, "the cut failed");

        // Committing now would put events after a block that an OS crash may lose.
        assert_eq!(w.append(&events(5..7)).unwrap(), 5..7);
        let msg = w.sync().unwrap_err().to_string();
        assert!(
            msg.contains("cannot cut store segment")
                && msg.contains(&seg0.display().to_string())
                && msg.contains("injected cut failure"),
            "{msg}"
        );
        assert_events(&read_all(dir.path()), 0..5);

        // Once the cut succeeds, commits resume, gap-free.
        assert_eq!(w.append(&events(5..7)).unwrap(), 5..7);
        w.sync().unwrap();
        assert_eq!(len(&seg0), synced);
        assert_eq!(list_segments(dir.path()).unwrap(), [0, 5]);
        assert_events(&read_all(dir.path()), 0..7);
    }
}
