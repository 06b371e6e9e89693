//! The embedded store: an append-only local log of events, the default sink (and the spool
//! while Kafka is down). One [`Writer`] per directory, guarded by a lock; any number of
//! [`Reader`]s, in any process, without locks. [`StoreSink`] commits batches with group commit:
//! an event is committed once written and fdatasynced, and only committed events are shown to
//! readers.
//!
//! # On-disk format (version 1, little-endian)
//!
//! A store directory holds a `LOCK` file (flock'd by the writer, so that two gateways never
//! interleave writes), a `COMMITTED` file (below) and segment files `{first offset:020}.log`. Offsets are dense: the name
//! says where a segment starts, so a reader finds any offset from a directory listing alone;
//! the 20 digits make names sort by offset. A segment is a sequence of blocks whose offsets
//! continue each other; every segment but the newest is complete (the writer syncs a segment
//! before creating the next), so crash recovery only scans the newest.
//!
//! A block is a 32-byte header followed by the lz4 block-compressed records (one compression
//! call per block; blocks are cut at ~1 MiB uncompressed):
//!
//! | bytes | field            | why                                                            |
//! |-------|------------------|----------------------------------------------------------------|
//! | 0..4  | magic `LPSB`     | tells a block from garbage or zeros after a crash              |
//! | 4     | version `1`      | a later format can be told apart and refused                   |
//! | 5..8  | flags, reserved  | zero; room for e.g. another codec without a new version        |
//! | 8..16 | base offset u64  | offset of the first record: seeks skip blocks by header alone  |
//! | 16..20| record count u32 | offsets base..base+count; skipping needs no decompression      |
//! | 20..24| uncompressed u32 | exact output size: decompression is bounded before it starts   |
//! | 24..28| compressed u32   | payload length: where the next block starts                    |
//! | 28..32| CRC32            | over bytes 0..28 and the payload: detects torn or rotten blocks|
//!
//! A record: `received_ns` i64 (commit latency, time filters), protocol code u8
//! ([`Protocol::code`](crate::event::Protocol::code)), peer as family u8 (4 or 6) + 4 or 16 IP
//! bytes + port u16 (the IPv6 flow info and scope id are not kept), then the app and the value,
//! each as a LEB128 length and its bytes (app: UTF-8, value: the JSON exactly as sent to Kafka).
//!
//! `COMMITTED` holds the writer's committed next offset: 8 bytes (u64) and the CRC32 of those 8
//! bytes. The writer rewrites it in place (one pwrite) after every successful sync, and writes it
//! afresh at open with the recovered next offset; it is not synced, being only a hint for live
//! readers, which return nothing at or past it even when later blocks are already in a segment
//! (written, not yet synced: they may still vanish in a power loss, and their offsets be reused).
//! Without a usable `COMMITTED` (a store written before it existed), readers return every
//! complete block.
//!
//! A bad block (short, invalid header, failed CRC, offsets not continuing) with no valid block
//! anywhere after it, at the end of the newest segment, was being written when the writer
//! stopped: recovery cuts it (it was never synced, so never committed) and readers treat it as
//! not written yet. A bad block with a valid block after it, or one in an older segment, is
//! damage: readers report it with file and byte position, and [`Writer::open`] refuses to start
//! rather than cut committed blocks (the operator decides what to keep). After a failed write or
//! sync, the writer cuts the newest segment back to what was last synced before going on, so
//! that a crash cannot leave a gap between segments.

mod format;
mod reader;
mod retain;
mod sink;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

pub use reader::{Reader, StoredEvent};
pub use retain::{Cursor, Retain};
pub use sink::StoreSink;
pub use writer::{Recovery, Writer};

/// Where and how big the store is.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// `store`, or `spool` for the Kafka sink's spool: names its metrics (`logport_{name}_bytes`,
    /// the `sink` label of the commit counters) and log lines.
    pub name: &'static str,
    pub dir: PathBuf,
    /// A segment is closed and a new one started once it would grow past this.
    pub segment_bytes: u64,
    /// After a segment is closed, the oldest segments are deleted while all of them together
    /// exceed this (the segment being written is never deleted).
    pub retention_bytes: u64,
    /// Group commit: the value bytes of batches appended before one fdatasync, at most.
    pub max_commit_bytes: usize,
    /// Set for a spool: retention deletes only replayed segments, and `retention_bytes` becomes
    /// the cap of what is not replayed yet (appends wait beyond it).
    pub retain: Option<Arc<Retain>>,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            name: "store",
            dir: PathBuf::from("./data/store"),
            segment_bytes: 128 << 20,
            retention_bytes: 1 << 30,
            max_commit_bytes: 4 << 20,
            retain: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::sync::Arc;

    use bytes::Bytes;

    use super::{Reader, StoreConfig, StoredEvent};
    use crate::event::{Event, Protocol};

    /// A config for tests: small segments, retention off unless set.
    pub fn config(dir: &Path, segment_bytes: u64) -> StoreConfig {
        StoreConfig {
            dir: dir.to_path_buf(),
            segment_bytes,
            retention_bytes: u64::MAX,
            ..StoreConfig::default()
        }
    }

    /// Event `i`: protocols and address families vary with `i`, and the value holds bytes that
    /// are not UTF-8 (and is empty for every 7th event).
    pub fn event(i: u64) -> Event {
        let protocol = Protocol::ALL[i as usize % Protocol::ALL.len()];
        let peer: SocketAddr = if i.is_multiple_of(2) {
            SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 514 + i as u16))
        } else {
            SocketAddr::from((
                [0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16],
                24224,
            ))
        };
        let value = if i.is_multiple_of(7) {
            Bytes::new()
        } else {
            let mut v = format!("{{\"message\":\"event {i}\"}}").into_bytes();
            v.extend_from_slice(&[0xff, 0x00, 0xc3, (i % 251) as u8]);
            Bytes::from(v)
        };
        Event {
            app: Arc::from(format!("app-{}-ü", i % 3)),
            protocol,
            peer,
            received_ns: 1_700_000_000_000_000_000 + i as i64 * 1_000,
            value,
        }
    }

    pub fn events(range: std::ops::Range<u64>) -> Vec<Event> {
        range.map(event).collect()
    }

    /// Everything readable now from a fresh reader at its oldest event.
    pub fn read_all(dir: &Path) -> Vec<StoredEvent> {
        let mut reader = Reader::open(dir).unwrap();
        let mut out = Vec::new();
        while let Some(e) = reader.next().unwrap() {
            out.push(e);
        }
        out
    }

    /// Byte positions of the blocks of a segment file, plus its length at the end.
    pub fn block_starts(path: &Path) -> Vec<u64> {
        let file = std::fs::File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        let mut starts = vec![0];
        while let Ok(h) = super::format::read_header(&file, *starts.last().unwrap(), len).unwrap() {
            starts.push(starts.last().unwrap() + h.total_len());
        }
        starts
    }

    /// Asserts that `got` is exactly events `range`, with matching offsets.
    pub fn assert_events(got: &[StoredEvent], range: std::ops::Range<u64>) {
        let offsets: Vec<u64> = got.iter().map(|e| e.offset).collect();
        assert_eq!(offsets, range.clone().collect::<Vec<_>>());
        for e in got {
            assert_eq!(e.event, event(e.offset), "event at offset {}", e.offset);
        }
    }
}
