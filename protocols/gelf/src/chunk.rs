//! GELF UDP chunking: the chunk header and a bounded reassembler.
//!
//! A chunk is `1e 0f`, an 8-byte message id, a 0-based sequence number, the
//! sequence count (1 to 128), then a slice of the payload. Any other datagram
//! is a whole payload.
//!
//! Graylog and gelfd2 (Logstash) hold partial messages without bound, which
//! makes a flood of first chunks a memory DoS. The [`Reassembler`] caps both
//! the bytes held and the number of messages in progress, evicting the oldest
//! partial messages to make room, and drops a message still incomplete
//! `timeout` after its first chunk (5 s, Graylog's rule).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

/// The two bytes that open a chunk.
pub const CHUNK_MAGIC: [u8; 2] = [0x1e, 0x0f];
/// Magic, id, sequence number and count.
pub const CHUNK_HEADER_LEN: usize = 12;
/// The most chunks a message may have (GELF spec).
pub const MAX_CHUNKS: u8 = 128;

/// The header of one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkHeader {
    /// The 8 id bytes, big-endian.
    pub id: u64,
    pub seq: u8,
    pub count: u8,
}

/// Whether a datagram is a chunk (by its magic) rather than a whole payload.
pub fn is_chunk(datagram: &[u8]) -> bool {
    datagram.starts_with(&CHUNK_MAGIC)
}

/// Splits a chunk into its header and data. `Ok(None)`: not a chunk, the
/// datagram is a whole payload.
pub fn parse_chunk(datagram: &[u8]) -> Result<Option<(ChunkHeader, &[u8])>, ChunkError> {
    if !is_chunk(datagram) {
        return Ok(None);
    }
    if datagram.len() < CHUNK_HEADER_LEN {
        return Err(ChunkError::Truncated {
            len: datagram.len(),
        });
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&datagram[2..10]);
    let h = ChunkHeader {
        id: u64::from_be_bytes(id),
        seq: datagram[10],
        count: datagram[11],
    };
    if h.count == 0 || h.count > MAX_CHUNKS {
        return Err(ChunkError::InvalidCount {
            id: h.id,
            count: h.count,
        });
    }
    if h.seq >= h.count {
        return Err(ChunkError::InvalidSequence {
            id: h.id,
            seq: h.seq,
            count: h.count,
        });
    }
    Ok(Some((h, &datagram[CHUNK_HEADER_LEN..])))
}

/// Why a chunk was refused. Byte positions in the messages are within the
/// datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// Starts with the chunk magic but is shorter than the 12-byte header.
    Truncated { len: usize },
    /// Sequence count (byte 11) is 0 or above 128.
    InvalidCount { id: u64, count: u8 },
    /// Sequence number (byte 10) is not below the count.
    InvalidSequence { id: u64, seq: u8, count: u8 },
    /// The count differs from the one earlier chunks of this id gave: the
    /// whole message (`dropped_bytes` held) is dropped, as it cannot be trusted.
    CountMismatch {
        id: u64,
        count: u8,
        expected: u8,
        dropped_bytes: usize,
    },
    /// The message would hold more than the reassembler's whole byte cap;
    /// it is dropped (`dropped_bytes` held).
    TooLarge {
        id: u64,
        needed: usize,
        max: usize,
        dropped_bytes: usize,
    },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChunkError::Truncated { len } => write!(
                f,
                "GELF chunk of {len} bytes is shorter than its 12-byte header (magic 1e 0f at byte 0)"
            ),
            ChunkError::InvalidCount { id, count } => write!(
                f,
                "GELF chunk {id:016x}: sequence count {count} at byte 11 is not within 1..=128"
            ),
            ChunkError::InvalidSequence { id, seq, count } => write!(
                f,
                "GELF chunk {id:016x}: sequence number {seq} at byte 10 is not below the count {count}"
            ),
            ChunkError::CountMismatch {
                id,
                count,
                expected,
                dropped_bytes,
            } => write!(
                f,
                "GELF chunk {id:016x}: sequence count {count} at byte 11 differs from {expected} in earlier chunks; message dropped ({dropped_bytes} bytes)"
            ),
            ChunkError::TooLarge {
                id,
                needed,
                max,
                dropped_bytes,
            } => write!(
                f,
                "GELF chunked message {id:016x} needs {needed} bytes, more than the reassembly cap of {max}; message dropped ({dropped_bytes} bytes)"
            ),
        }
    }
}

impl std::error::Error for ChunkError {}

/// Limits of a [`Reassembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblerConfig {
    /// A message still incomplete this long after its first chunk is dropped.
    pub timeout: Duration,
    /// Bytes held across all partial messages: chunk data plus a fixed charge
    /// per message and per sequence slot, so that floods of tiny or empty
    /// chunks are bounded too.
    pub max_bytes: usize,
    /// Partial messages in progress at once.
    pub max_messages: usize,
}

impl Default for ReassemblerConfig {
    /// 5 s (Graylog), 64 MiB, 8192 messages.
    fn default() -> Self {
        ReassemblerConfig {
            timeout: Duration::from_secs(5),
            max_bytes: 64 << 20,
            max_messages: 8192,
        }
    }
}

/// A number of dropped partial messages and the bytes they held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub messages: u64,
    pub bytes: u64,
}

impl Dropped {
    fn add(&mut self, bytes: usize) {
        self.messages += 1;
        self.bytes += bytes as u64;
    }
}

/// Cumulative counters since the reassembler was made, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblerStats {
    /// Payloads returned: whole datagrams and reassembled messages.
    pub completed: u64,
    /// Of those, reassembled from chunks.
    pub reassembled: u64,
    /// Chunks stored (duplicates and refused chunks not included).
    pub chunks: u64,
    /// Chunks whose sequence number was already held: ignored.
    pub duplicate_chunks: u64,
    /// Chunks refused with a [`ChunkError`].
    pub invalid_chunks: u64,
    /// Incomplete past the timeout.
    pub expired: Dropped,
    /// Oldest partial messages dropped to keep within `max_bytes` or
    /// `max_messages`.
    pub evicted: Dropped,
    /// Dropped for a count mismatch or for outgrowing the whole cap.
    pub invalid: Dropped,
}

/// What became of one datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A whole payload: the datagram itself, or every chunk joined in sequence
    /// order. Still compressed, if it was: hand it to [`crate::decode_payload`].
    Complete(Bytes),
    /// The chunk is held; its message is not complete yet.
    Incomplete,
    /// A chunk of that id and sequence number is already held; ignored.
    Duplicate,
}

/// A charge per partial message and per sequence slot, on top of chunk data,
/// close to what they really cost (map entries, the age index, the slot array).
const MESSAGE_CHARGE: usize = 128;
const SLOT_CHARGE: usize = std::mem::size_of::<Option<Bytes>>();

fn message_charge(count: u8) -> usize {
    MESSAGE_CHARGE + usize::from(count) * SLOT_CHARGE
}

struct Partial {
    slots: Box<[Option<Bytes>]>,
    received: u8,
    /// Bytes charged for this message (see `message_charge`).
    held: usize,
    /// Its key in the age index.
    age: (Instant, u64),
}

/// Reassembles chunked GELF messages under fixed memory bounds.
///
/// Messages are told apart by `(K, id)`: the gateway passes the sender's
/// address as `K` so that two senders that pick the same id never mix, and a
/// sender cannot inject chunks into another's message. With `K = ()`,
/// [`Reassembler::push`] keys by id only, as Graylog does.
///
/// Each chunk costs a hash lookup and, for the first chunk of a message, an
/// insertion into an age-ordered index; the payload is copied once when it
/// completes. `now` is the caller's clock and should not go backwards.
pub struct Reassembler<K = ()> {
    config: ReassemblerConfig,
    partials: HashMap<(K, u64), Partial>,
    /// (first chunk's arrival, serial) → key: the oldest first.
    ages: BTreeMap<(Instant, u64), (K, u64)>,
    serial: u64,
    held: usize,
    stats: ReassemblerStats,
}

impl Reassembler<()> {
    /// One datagram, message ids not qualified by sender.
    pub fn push(&mut self, datagram: Bytes, now: Instant) -> Result<Outcome, ChunkError> {
        self.push_from((), datagram, now)
    }
}

impl<K: Hash + Eq + Clone> Reassembler<K> {
    pub fn new(config: ReassemblerConfig) -> Self {
        Reassembler {
            config,
            partials: HashMap::new(),
            ages: BTreeMap::new(),
            serial: 0,
            held: 0,
            stats: ReassemblerStats::default(),
        }
    }

    pub fn config(&self) -> &ReassemblerConfig {
        &self.config
    }

    pub fn stats(&self) -> &ReassemblerStats {
        &self.stats
    }

    /// Partial messages in progress.
    pub fn pending_messages(&self) -> usize {
        self.partials.len()
    }

    /// Bytes charged to partial messages; never above `max_bytes`.
    pub fn pending_bytes(&self) -> usize {
        self.held
    }

    /// When the oldest partial message expires: the caller's next timer.
    pub fn next_expiry(&self) -> Option<Instant> {
        let (&(born, _), _) = self.ages.first_key_value()?;
        born.checked_add(self.config.timeout)
    }

    /// Drops the partial messages whose first chunk came `timeout` or more
    /// before `now`. Also done at every push, so calling this only bounds how
    /// long an abandoned message lingers when no datagram comes.
    pub fn expire(&mut self, now: Instant) -> Dropped {
        let mut dropped = Dropped::default();
        while let Some((&(born, _), _)) = self.ages.first_key_value() {
            if now
                .checked_duration_since(born)
                .is_none_or(|age| age < self.config.timeout)
            {
                break;
            }
            let (_, key) = self.ages.pop_first().expect("non-empty");
            let held = self.forget(&key);
            dropped.add(held);
            self.stats.expired.add(held);
        }
        dropped
    }

    /// One datagram from sender `from`.
    pub fn push_from(
        &mut self,
        from: K,
        datagram: Bytes,
        now: Instant,
    ) -> Result<Outcome, ChunkError> {
        self.expire(now);
        let (h, data) = match parse_chunk(&datagram) {
            Ok(Some(c)) => c,
            Ok(None) => {
                self.stats.completed += 1;
                return Ok(Outcome::Complete(datagram));
            }
            Err(e) => {
                self.stats.invalid_chunks += 1;
                return Err(e);
            }
        };
        if h.count == 1 {
            self.stats.chunks += 1;
            self.stats.completed += 1;
            self.stats.reassembled += 1;
            return Ok(Outcome::Complete(datagram.slice(CHUNK_HEADER_LEN..)));
        }
        let key = (from, h.id);
        let (already, expected) = match self.partials.get(&key) {
            Some(p) => (p.held, Some(p.slots.len())),
            None => (0, None),
        };
        if let Some(expected) = expected {
            if expected != usize::from(h.count) {
                let dropped_bytes = self.drop_invalid(&key);
                self.stats.invalid_chunks += 1;
                return Err(ChunkError::CountMismatch {
                    id: h.id,
                    count: h.count,
                    expected: expected as u8,
                    dropped_bytes,
                });
            }
            if self.partials[&key].slots[usize::from(h.seq)].is_some() {
                self.stats.duplicate_chunks += 1;
                return Ok(Outcome::Duplicate);
            }
        }
        let need = data.len()
            + if expected.is_none() {
                message_charge(h.count)
            } else {
                0
            };
        if already + need > self.config.max_bytes {
            let dropped_bytes = if expected.is_some() {
                self.drop_invalid(&key)
            } else {
                0
            };
            self.stats.invalid_chunks += 1;
            return Err(ChunkError::TooLarge {
                id: h.id,
                needed: already + need,
                max: self.config.max_bytes,
                dropped_bytes,
            });
        }
        // Make room by dropping the oldest other messages; this one fits alone.
        while self.held + need > self.config.max_bytes
            || (expected.is_none() && self.partials.len() >= self.config.max_messages.max(1))
        {
            let Some(victim) = self.ages.iter().find(|&(_, k)| *k != key).map(|(a, _)| *a) else {
                break;
            };
            let victim = self.ages.remove(&victim).expect("present");
            let held = self.forget(&victim);
            self.stats.evicted.add(held);
        }
        // Copied out of the datagram so that the bytes charged are the bytes
        // held: a slice would pin the caller's whole receive buffer.
        let chunk = Bytes::copy_from_slice(data);
        self.held += need;
        self.stats.chunks += 1;
        let p = match self.partials.get_mut(&key) {
            Some(p) => p,
            None => {
                let age = (now, self.serial);
                self.serial += 1;
                self.ages.insert(age, key.clone());
                self.partials.entry(key.clone()).or_insert(Partial {
                    slots: vec![None; usize::from(h.count)].into_boxed_slice(),
                    received: 0,
                    held: 0,
                    age,
                })
            }
        };
        p.slots[usize::from(h.seq)] = Some(chunk);
        p.received += 1;
        p.held += need;
        if usize::from(p.received) < p.slots.len() {
            return Ok(Outcome::Incomplete);
        }
        let p = self.partials.remove(&key).expect("present");
        self.ages.remove(&p.age);
        self.held -= p.held;
        let total = p.slots.iter().flatten().map(Bytes::len).sum();
        let mut out = BytesMut::with_capacity(total);
        for c in p.slots.iter().flatten() {
            out.extend_from_slice(c);
        }
        self.stats.completed += 1;
        self.stats.reassembled += 1;
        Ok(Outcome::Complete(out.freeze()))
    }

    /// Removes a partial message (already out of the age index); its held bytes.
    fn forget(&mut self, key: &(K, u64)) -> usize {
        match self.partials.remove(key) {
            Some(p) => {
                self.held -= p.held;
                p.held
            }
            None => 0,
        }
    }

    fn drop_invalid(&mut self, key: &(K, u64)) -> usize {
        let Some(p) = self.partials.get(key) else {
            return 0;
        };
        self.ages.remove(&p.age);
        let held = self.forget(key);
        self.stats.invalid.add(held);
        held
    }
}

impl<K: Hash + Eq + Clone> Default for Reassembler<K> {
    fn default() -> Self {
        Reassembler::new(ReassemblerConfig::default())
    }
}

impl<K> fmt::Debug for Reassembler<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reassembler")
            .field("config", &self.config)
            .field("pending_messages", &self.partials.len())
            .field("pending_bytes", &self.held)
            .field("stats", &self.stats)
            .finish()
    }
}
