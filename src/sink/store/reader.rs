//! Reading a store directory, from any offset, while a writer (in this or another process)
//! appends to it. Takes no lock and never writes. Only committed events are returned: the
//! writer publishes its committed next offset in the `COMMITTED` file after every sync, and a
//! reader stops there even when later blocks are already in the segment file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::format::{
    corrupt, decompress, find_block, list_segments, read_committed, read_header, read_payload,
    segment_path, with_path, Bad, Header, RecordCursor,
};
use crate::event::Event;

/// An event and its offset in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub offset: u64,
    pub event: Event,
}

/// Reads events in offset order. [`next`](Reader::next) returns `Ok(None)` at the current end
/// (the committed end, see the module docs); call it again later to follow a writer.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    /// The committed next offset as last read from `COMMITTED` (`None`: no usable file, so
    /// everything complete in the segments is returned, as before the file existed). Read again
    /// only when the reader reaches it, or per block while there is none.
    committed: Option<u64>,
    /// Segment bases as last listed, oldest first.
    segments: Vec<u64>,
    seg: Option<OpenSegment>,
    /// The offset of the next event to return (after a seek, possibly one not written yet).
    next: u64,
    /// The decoded block: its records, the offset of the next one, the offset after the last.
    records: RecordCursor,
    record_offset: u64,
    block_end: u64,
    /// Where the decoded block starts in its segment, for error messages.
    block_pos: u64,
    payload: Vec<u8>,
}

#[derive(Debug)]
struct OpenSegment {
    base: u64,
    file: File,
    path: PathBuf,
    /// Byte position and offset of the next block to read.
    pos: u64,
    offset: u64,
}

impl Reader {
    /// Opens the store at `dir`, positioned at its oldest event.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Reader> {
        let dir = dir.as_ref().to_path_buf();
        if !std::fs::metadata(&dir)
            .map_err(|e| with_path(e, "opening store", &dir))?
            .is_dir()
        {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("store {} is not a directory", dir.display()),
            ));
        }
        let segments = list_segments(&dir)?;
        let next = segments.first().copied().unwrap_or(0);
        Ok(Reader {
            dir,
            committed: None,
            segments,
            seg: None,
            next,
            records: RecordCursor::empty(),
            record_offset: 0,
            block_end: 0,
            block_pos: 0,
            payload: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The offset the next call to [`next`](Reader::next) will look for.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The oldest offset still stored (retention deletes from the front).
    pub fn first_offset(&mut self) -> io::Result<u64> {
        self.segments = list_segments(&self.dir)?;
        Ok(self.segments.first().copied().unwrap_or(0))
    }

    /// The next offset not yet readable: the committed next offset the writer published, or
    /// the offset after the last complete block if that is lower (or if no writer published
    /// one). Walks the block headers of the newest segment, reading only the last block's
    /// payload.
    pub fn end_offset(&mut self) -> io::Result<u64> {
        let data_end = self.data_end()?;
        self.committed = read_committed(&self.dir)?;
        Ok(self.committed.map_or(data_end, |c| c.min(data_end)))
    }

    /// The offset after the last complete block of the newest segment.
    fn data_end(&mut self) -> io::Result<u64> {
        loop {
            self.segments = list_segments(&self.dir)?;
            let Some(&base) = self.segments.last() else {
                return Ok(0);
            };
            let path = segment_path(&self.dir, base);
            match File::open(&path) {
                Ok(file) => {
                    return end_of_segment(&file, base, &mut self.payload)
                        .map_err(|e| with_path(e, "reading", &path))
                }
                // Deleted since the listing: list again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(with_path(e, "opening", &path)),
            }
        }
    }

    /// Positions the reader at `offset`: before the oldest stored event means the oldest; past the
    /// end means waiting for that offset. The work happens lazily in `next`, which finds the
    /// segment by its name and skips whole blocks by their headers.
    pub fn seek(&mut self, offset: u64) {
        self.next = offset;
        self.seg = None;
        self.records = RecordCursor::empty();
        self.record_offset = 0;
        self.block_end = 0;
    }

    /// Positions the reader at the last `n` events (like `tail`); returns the offset sought.
    pub fn seek_last(&mut self, n: u64) -> io::Result<u64> {
        let end = self.end_offset()?;
        let first = self.segments.first().copied().unwrap_or(0);
        let offset = end.saturating_sub(n).max(first);
        self.seek(offset);
        Ok(offset)
    }

    /// The next event, or `Ok(None)` at the current end of the store. A block still being
    /// written (or torn by a crash) at the end of the newest segment is not an error; damage
    /// anywhere else is, naming the segment file and byte position. If retention deletes
    /// segments the reader has not reached, it moves on to the oldest remaining one.
    // Not Iterator: `Ok(None)` means "nothing yet", and a follower calls again later.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Option<StoredEvent>> {
        loop {
            while self.record_offset < self.block_end {
                let offset = self.record_offset;
                if offset >= self.next
                    && self.committed.is_some_and(|c| offset >= c)
                    && !self.is_committed(offset)?
                {
                    return Ok(None);
                }
                self.record_offset += 1;
                if offset < self.next {
                    self.records
                        .skip()
                        .map_err(|why| self.bad_record(offset, why))?;
                    continue;
                }
                let event = self
                    .records
                    .next_event()
                    .map_err(|why| self.bad_record(offset, why))?;
                self.next = offset + 1;
                return Ok(Some(StoredEvent { offset, event }));
            }
            if !self.records.at_end() {
                return Err(self.bad_record(self.block_end, "bytes after the block's last record"));
            }
            if !self.is_committed(self.next)? || !self.load_block()? {
                return Ok(None);
            }
        }
    }

    /// Whether `offset` is below the committed next offset, reading `COMMITTED` again unless the
    /// value already known says so. True when there is no usable `COMMITTED` file.
    fn is_committed(&mut self, offset: u64) -> io::Result<bool> {
        if self.committed.is_some_and(|c| offset < c) {
            return Ok(true);
        }
        self.committed = read_committed(&self.dir)?;
        Ok(self.committed.is_none_or(|c| offset < c))
    }

    fn bad_record(&self, offset: u64, why: &str) -> io::Error {
        let path = self
            .seg
            .as_ref()
            .map_or(self.dir.as_path(), |s| s.path.as_path());
        corrupt(
            path,
            self.block_pos,
            format_args!("record at offset {offset}: {why}"),
        )
    }

    /// Loads the next block holding offsets at or after `self.next`; false at the current end.
    fn load_block(&mut self) -> io::Result<bool> {
        let mut rechecked = false;
        loop {
            if self.seg.is_none() && !self.open_segment()? {
                return Ok(false);
            }
            let seg = self.seg.as_mut().expect("segment open");
            let file_len = seg
                .file
                .metadata()
                .map_err(|e| with_path(e, "reading", &seg.path))?
                .len();
            let read = read_header(&seg.file, seg.pos, file_len)
                .map_err(|e| with_path(e, "reading", &seg.path))?;
            let bad = match read {
                Err(bad) => bad,
                Ok(h) => {
                    let block_end = seg.pos + h.total_len();
                    let checked = match h.check_base(seg.offset) {
                        // Entirely before the offset sought: skip it by its header alone.
                        Ok(()) if h.end_offset() <= self.next => Ok(None),
                        Ok(()) => read_payload(&seg.file, seg.pos, &h, &mut self.payload)
                            .map_err(|e| with_path(e, "reading", &seg.path))?
                            .map(|()| Some(h)),
                        Err(bad) => Err(bad),
                    };
                    match checked {
                        Ok(None) => {
                            seg.pos = block_end;
                            seg.offset = h.end_offset();
                            rechecked = false;
                            continue;
                        }
                        Ok(Some(h)) => {
                            self.start_block(&h)?;
                            return Ok(true);
                        }
                        Err(bad) => bad,
                    }
                }
            };

            // No valid block here: the end of this segment, for now or for good.
            let (base, pos) = (seg.base, seg.pos);
            self.segments = list_segments(&self.dir)?;
            let seg = self.seg.as_ref().expect("segment open");
            match self.segments.iter().copied().find(|&b| b > base) {
                None if bad == Bad::Eof => return Ok(false),
                // The newest segment: a bad block with no valid block after it is being written
                // (or was torn by a crash) and is not readable yet; with one after it, damage.
                None => {
                    return match find_block(&seg.file, pos + 1, file_len, &mut self.payload)
                        .map_err(|e| with_path(e, "reading", &seg.path))?
                    {
                        None => Ok(false),
                        Some((at, h)) => Err(corrupt(
                            &seg.path,
                            pos,
                            format_args!(
                                "{bad}, followed by a valid block at byte {at} (offsets {}..{})",
                                h.base,
                                h.end_offset()
                            ),
                        )),
                    };
                }
                // A newer segment exists, so this one was complete before it was created:
                // read once more in case its last block landed after the read above.
                Some(_) if !rechecked => rechecked = true,
                Some(newer) if bad == Bad::Eof => {
                    let deleted = !self.segments.contains(&base);
                    if newer < seg.offset || (newer > seg.offset && !deleted) {
                        let why = format!(
                            "segment ends at offset {} but the next one starts at {newer}",
                            seg.offset
                        );
                        return Err(corrupt(&seg.path, pos, why));
                    }
                    // Retention may have deleted segments between: continue with what is left.
                    self.next = self.next.max(newer);
                    self.seg = None;
                    rechecked = false;
                }
                Some(_) => return Err(corrupt(&seg.path, pos, bad)),
            }
        }
    }

    /// Decodes the block whose checked payload is in `self.payload`.
    fn start_block(&mut self, h: &Header) -> io::Result<()> {
        let seg = self.seg.as_mut().expect("segment open");
        let block = decompress(h, &self.payload).map_err(|why| corrupt(&seg.path, seg.pos, why))?;
        self.records = RecordCursor::new(block.into());
        self.record_offset = h.base;
        self.block_end = h.end_offset();
        self.block_pos = seg.pos;
        seg.pos += h.total_len();
        seg.offset = h.end_offset();
        Ok(())
    }

    /// Opens the segment holding `self.next`, or the oldest one when `self.next` was deleted.
    fn open_segment(&mut self) -> io::Result<bool> {
        loop {
            self.segments = list_segments(&self.dir)?;
            let Some(&oldest) = self.segments.first() else {
                return Ok(false);
            };
            let base = match self.segments.iter().rev().find(|&&b| b <= self.next) {
                Some(&base) => base,
                None => {
                    self.next = oldest;
                    oldest
                }
            };
            let path = segment_path(&self.dir, base);
            match File::open(&path) {
                Ok(file) => {
                    self.seg = Some(OpenSegment {
                        base,
                        file,
                        path,
                        pos: 0,
                        offset: base,
                    });
                    return Ok(true);
                }
                // Deleted by retention since the listing: list again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(with_path(e, "opening", &path)),
            }
        }
    }
}

/// The offset after the last complete block of a segment.
fn end_of_segment(file: &File, base: u64, payload: &mut Vec<u8>) -> io::Result<u64> {
    let file_len = file.metadata()?.len();
    let (mut pos, mut offset) = (0, base);
    let mut last = None;
    while let Ok(h) = read_header(file, pos, file_len)? {
        if h.check_base(offset).is_err() {
            break;
        }
        last = Some((pos, h));
        pos += h.total_len();
        offset = h.end_offset();
    }
    // Only the last block can be a torn write that is complete in length; check its CRC.
    if let Some((pos, h)) = last {
        if read_payload(file, pos, &h, payload)?.is_err() {
            return Ok(h.base);
        }
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::super::format::{encode_committed, list_segments};
    use super::super::testutil::{assert_events, block_starts, config, events};
    use super::super::Writer;
    use super::*;

    fn drain(r: &mut Reader) -> Vec<StoredEvent> {
        let mut out = Vec::new();
        while let Some(e) = r.next().unwrap() {
            out.push(e);
        }
        out
    }

    #[test]
    fn a_reader_follows_a_writer_across_blocks_and_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Writer::open(&config(dir.path(), 2000)).unwrap();
        let mut r = Reader::open(dir.path()).unwrap();
        assert_eq!(r.next().unwrap(), None, "an empty store");

        w.append(&events(0..5)).unwrap();
        assert_eq!(r.next().unwrap(), None, "not written yet");
        w.flush().unwrap();
        assert_eq!(r.next().unwrap(), None, "written, not synced yet");
        w.sync().unwrap();
        assert_events(&drain(&mut r), 0..5);
        assert_eq!(r.next().unwrap(), None, "the end, again");

        let mut next = 5;
        while list_segments(dir.path()).unwrap().len() < 3 {
            w.append(&events(next..next + 20)).unwrap();
            w.flush().unwrap();
            next += 20;
        }
        w.sync().unwrap();
        assert_events(&drain(&mut r), 5..next);
        assert_eq!(r.position(), next);
        assert_eq!(r.end_offset().unwrap(), next);
    }

    #[test]
    fn readers_stop_at_the_committed_offset_unless_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 1 << 20);
        let committed = dir.path().join("COMMITTED");
        let (mut w, _) = Writer::open(&cfg).unwrap();
        w.append(&events(0..5)).unwrap();
        w.sync().unwrap();
        w.append(&events(5..9)).unwrap();
        w.flush().unwrap();
        let path = segment_path(dir.path(), 0);
        assert_eq!(block_starts(&path).len(), 3, "both blocks are in the file");

        let mut r = Reader::open(dir.path()).unwrap();
        assert_events(&drain(&mut r), 0..5);
        assert_eq!(r.end_offset().unwrap(), 5);
        assert_eq!(r.seek_last(2).unwrap(), 3);
        assert_events(&drain(&mut r), 3..5);
        r.seek(7);
        assert_eq!(r.next().unwrap(), None);
        w.sync().unwrap();
        assert_events(&drain(&mut r), 7..9);
        assert_eq!(r.end_offset().unwrap(), 9);

        // No usable COMMITTED (a store from before it existed, or one garbled by a crash):
        // everything complete in the segments, as before.
        w.append(&events(9..12)).unwrap();
        w.flush().unwrap();
        std::fs::remove_file(&committed).unwrap();
        assert_events(&drain(&mut Reader::open(dir.path()).unwrap()), 0..12);
        std::fs::write(&committed, [0u8; 12]).unwrap();
        let mut r = Reader::open(dir.path()).unwrap();
        assert_eq!(r.end_offset().unwrap(), 12);
        assert_events(&drain(&mut r), 0..12);

        // The writer's next sync publishes again; reopening publishes the recovered offset.
        w.sync().unwrap();
        assert_eq!(read_committed(dir.path()).unwrap(), Some(12));
        w.append(&events(12..15)).unwrap();
        w.flush().unwrap();
        drop(w);
        std::fs::write(&committed, encode_committed(3)).unwrap();
        assert_events(&drain(&mut Reader::open(dir.path()).unwrap()), 0..3);
        let (_w, rec) = Writer::open(&cfg).unwrap();
        assert_eq!(rec.next_offset, 15);
        assert_eq!(read_committed(dir.path()).unwrap(), Some(15));
        assert_events(&drain(&mut Reader::open(dir.path()).unwrap()), 0..15);
    }

    #[test]
    fn seek_last_n_and_seek_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Writer::open(&config(dir.path(), 1500)).unwrap();
        for start in (0..200).step_by(10) {
            w.append(&events(start..start + 10)).unwrap();
            w.flush().unwrap();
        }
        w.sync().unwrap();
        assert!(list_segments(dir.path()).unwrap().len() > 3);
        let mut r = Reader::open(dir.path()).unwrap();
        assert_eq!(
            (r.first_offset().unwrap(), r.end_offset().unwrap()),
            (0, 200)
        );

        assert_eq!(r.seek_last(10).unwrap(), 190);
        assert_events(&drain(&mut r), 190..200);
        assert_eq!(r.seek_last(0).unwrap(), 200);
        assert_eq!(r.next().unwrap(), None);
        assert_eq!(r.seek_last(1000).unwrap(), 0);
        assert_events(&drain(&mut r), 0..200);

        for target in [0, 1, 9, 10, 11, 77, 150, 199] {
            r.seek(target);
            assert_events(&drain(&mut r), target..200);
        }

        // Past the end: waits for that offset.
        r.seek(205);
        assert_eq!(r.next().unwrap(), None);
        w.append(&events(200..210)).unwrap();
        w.sync().unwrap();
        assert_events(&drain(&mut r), 205..210);
    }

    #[test]
    fn seeking_skips_whole_blocks_by_their_headers() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Writer::open(&config(dir.path(), 1 << 20)).unwrap();
        for start in (0..30).step_by(10) {
            w.append(&events(start..start + 10)).unwrap();
            w.flush().unwrap();
        }
        w.sync().unwrap();
        // Damage the first block's payload: a seek past it must not even read it.
        let path = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 0x04;
        std::fs::write(&path, &bytes).unwrap();
        let mut r = Reader::open(dir.path()).unwrap();
        assert_eq!(r.seek_last(15).unwrap(), 15);
        assert_events(&drain(&mut r), 15..30);
        r.seek(9);
        assert!(r.next().is_err(), "offset 9 is in the damaged block");
    }

    #[test]
    fn end_offset_ignores_a_torn_last_block() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Writer::open(&config(dir.path(), 1 << 20)).unwrap();
        w.append(&events(0..4)).unwrap();
        w.flush().unwrap();
        w.append(&events(4..8)).unwrap();
        w.sync().unwrap();
        let path = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let mut r = Reader::open(dir.path()).unwrap();
        assert_eq!(r.end_offset().unwrap(), 4);
        assert_eq!(r.seek_last(2).unwrap(), 2);
        assert_events(&drain(&mut r), 2..4);
        bytes.truncate(last - 5);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(r.end_offset().unwrap(), 4);
    }

    #[test]
    fn opening_a_missing_store_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Reader::open(&missing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains(&missing.display().to_string()));
    }
}
