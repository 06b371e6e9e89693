//! The stream decoder: bytes in, [`Chunk`]s out.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use bytes::{Buf, Bytes, BytesMut};
use flate2::read::MultiGzDecoder;
use rmpv::{Value, ValueRef};

use crate::scan::{JsonScan, MsgpackScan, ScanError, ScanErrorKind};

/// Wire encoding of a connection, fixed by its first byte (as in_forward's
/// `read_messages` does): `{` or `[` means JSON for the whole connection,
/// anything else msgpack. Replies (acks) use the same encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    MessagePack,
    Json,
}

/// Which of the four forward shapes a message had (chosen, as in in_forward,
/// by the type of its second element).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `[tag, time, record(, option)]`
    Message,
    /// `[tag, [[time, record], ...](, option)]`
    Forward,
    /// `[tag, str|bin of concatenated [time, record](, option)]`
    PackedForward,
    /// PackedForward with `compressed: "gzip"`.
    CompressedPackedForward,
}

/// Seconds and nanoseconds since the Unix epoch.
///
/// in_forward replaces a time whose seconds are 0 with the receive time
/// (`time.to_i == 0`); this crate has no clock, so it keeps 0 and the caller
/// applies that rule (see [`EventTime::is_zero`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime {
    pub secs: i64,
    pub nanos: u32,
}

impl EventTime {
    pub const fn new(secs: i64, nanos: u32) -> Self {
        EventTime { secs, nanos }
    }

    /// True when in_forward would substitute "now" (seconds == 0, whatever
    /// the nanoseconds).
    pub const fn is_zero(&self) -> bool {
        self.secs == 0
    }
}

/// One event: the record is always a msgpack map ([`Value::Map`]); keys and
/// values are as sent (str or bin, see [`crate::value`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub time: EventTime,
    pub record: Value,
}

/// The option map (last element). Unknown keys are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Ack id, echoed byte for byte in the `{"ack": chunk}` reply (Fluentd's
    /// ends with `\n`). Present when the client waits for an ack — or, with some
    /// clients, always.
    pub chunk: Option<Vec<u8>>,
    /// Event count announced by the client; informational only.
    pub size: Option<u64>,
    /// `"text"` (none) or `"gzip"`; anything else was refused by the decoder.
    pub compressed: Option<String>,
    /// Fluent Bit: 0 for logs, other values for metrics/traces blobs that are
    /// not log events.
    pub fluent_signal: Option<i64>,
}

/// One decoded forward message (a Fluent "chunk").
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Lossy UTF-8 of the tag (str or bin on the wire).
    pub tag: String,
    pub entries: Vec<Entry>,
    pub options: Options,
    pub mode: Mode,
    /// Entries in_forward would drop with its default `skip_invalid_event`:
    /// time nil / not a number / not EventTime, or record not a map. The chunk
    /// is still to be acked, as in_forward does.
    pub skipped: usize,
    pub format: Format,
    /// Stream offset of the message's first byte.
    pub offset: u64,
    /// Bytes the message took on the wire (for budgets and metrics).
    pub wire_len: usize,
    /// What its entries cost, as [`Limits::max_decoded`] counts it.
    pub decoded: usize,
}

impl Chunk {
    /// The ack to send once every entry is committed, if the client asked
    /// for one, in the connection's encoding.
    pub fn ack(&self) -> Option<Vec<u8>> {
        self.options
            .chunk
            .as_deref()
            .map(|c| crate::encode::encode_ack(c, self.format))
    }
}

/// Caps that bound memory whatever a peer sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// One message on the wire. Fluentd's file buffer makes chunks up to
    /// 256 MiB by default (memory buffer: 8 MiB); size this for your clients.
    pub max_message: usize,
    /// Inflated size of one CompressedPackedForward message (in_forward:
    /// `decompression_size_limit`, 256 MiB).
    pub max_decompressed: usize,
    /// Nesting of a record (the message envelope around it is not counted).
    pub max_depth: usize,
    /// What the entries of one message may cost once decoded, each counted as
    /// [`ENTRY_COST`] bytes plus its own bytes (inflated, on the wire for
    /// msgpack): about what a server holds for them, decoded and turned into
    /// events. Without it a message of tiny entries (`[0,{}]` is 3 bytes) costs
    /// a hundred times its size, and a few KiB of gzip inflate to millions of
    /// them.
    pub max_decoded: usize,
}

/// What one entry costs beside its bytes in [`Limits::max_decoded`]: its
/// decoded time and record, and the event a server makes of it.
pub const ENTRY_COST: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 << 20,
            max_decompressed: 256 << 20,
            max_depth: 64,
            max_decoded: 1 << 30,
        }
    }
}

/// Envelope levels above a record: message array, Forward entries array, entry
/// array, and a Fluent Bit `[time, metadata]` time array.
const ENVELOPE_DEPTH: usize = 4;

/// The stream is not forward protocol (or breaks a cap); close the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Stream offset of the offending byte when known, else of the first byte
    /// of the offending message.
    pub offset: u64,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A message must be an array (a bare msgpack nil, the TCP heartbeat, is skipped).
    NotAnArray { found: u8 },
    /// Byte 0xc1, never used in msgpack.
    InvalidMarker(u8),
    /// A header announced, or the buffered bytes reached, more than `max_message`.
    TooLarge { max: usize },
    /// Nesting deeper than the record depth cap.
    TooDeep { max: usize },
    /// rmpv refused a message the extent scan accepted (not expected).
    InvalidMsgpack(String),
    /// serde_json refused a complete JSON message.
    InvalidJson(String),
    /// The message array must have 2 to 4 elements (3 or 4 for Message mode).
    BadArity(usize),
    /// The tag is not a str/bin.
    BadTag,
    /// `compressed` is neither `text` nor `gzip` (e.g. Fluentd 1.19 `zstd`).
    UnsupportedCompression(String),
    /// Corrupt gzip data in a CompressedPackedForward message.
    Gzip(String),
    /// Entries inflate to more than `max_decompressed` bytes.
    DecompressedTooLarge { max: usize },
    /// Entries cost more than `max_decoded` (`entries` counted when it was passed).
    DecodedTooLarge { max: usize, entries: usize },
    /// PackedForward entries are not a sequence of whole msgpack values;
    /// `at` is the offset inside the (inflated) entries.
    BadPackedEntries { at: usize, reason: String },
    /// The stream ended inside a message (`buffered` bytes of it).
    Truncated { buffered: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match &self.kind {
            ErrorKind::NotAnArray { found } => write!(
                f,
                "forward message is not an array: first byte 0x{found:02x} (stream offset {at})"
            ),
            ErrorKind::InvalidMarker(m) => {
                write!(f, "invalid msgpack marker 0x{m:02x} (stream offset {at})")
            }
            ErrorKind::TooLarge { max } => write!(
                f,
                "forward message exceeds the maximum message size of {max} bytes (stream offset {at})"
            ),
            ErrorKind::TooDeep { max } => write!(
                f,
                "record nested deeper than {max} levels (stream offset {at})"
            ),
            ErrorKind::InvalidMsgpack(e) => {
                write!(f, "invalid msgpack forward message: {e} (message at stream offset {at})")
            }
            ErrorKind::InvalidJson(e) => {
                write!(f, "invalid JSON forward message: {e} (message at stream offset {at})")
            }
            ErrorKind::BadArity(n) => write!(
                f,
                "forward message array has {n} elements, expected [tag, time, record(, option)] or [tag, entries(, option)] (stream offset {at})"
            ),
            ErrorKind::BadTag => write!(
                f,
                "forward message tag is not a string (message at stream offset {at})"
            ),
            ErrorKind::UnsupportedCompression(c) => write!(
                f,
                "unsupported entries compression {c:?}, expected \"text\" or \"gzip\" (message at stream offset {at})"
            ),
            ErrorKind::Gzip(e) => write!(
                f,
                "corrupt gzip entries: {e} (message at stream offset {at})"
            ),
            ErrorKind::DecompressedTooLarge { max } => write!(
                f,
                "compressed entries inflate to more than {max} bytes (message at stream offset {at})"
            ),
            ErrorKind::DecodedTooLarge { max, entries } => write!(
                f,
                "forward message's entries cost more than {max} bytes once decoded ({entries} entries, each counted as {ENTRY_COST} bytes plus its own) (message at stream offset {at})"
            ),
            ErrorKind::BadPackedEntries { at: inner, reason } => write!(
                f,
                "packed entries are not concatenated msgpack values: {reason} at entries byte {inner} (message at stream offset {at})"
            ),
            ErrorKind::Truncated { buffered } => write!(
                f,
                "stream ended inside a forward message after {buffered} bytes (stream offset {at})"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A complete message, not yet interpreted (the handshake PING, or for
/// callers that defer decoding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    pub bytes: Bytes,
    pub format: Format,
    pub offset: u64,
}

/// Incremental forward decoder over a `BytesMut` the caller reads into.
///
/// Between calls it keeps how far the pending message has been scanned, so
/// feeding a message one byte at a time costs linear time. While it returns
/// `Ok(None)` the pending message is at most `max_message` bytes: a header
/// announcing more, or more bytes buffered, is an error at once.
#[derive(Clone, Debug)]
pub struct Decoder {
    limits: Limits,
    format: Option<Format>,
    /// Stream offset of `buf[0]`.
    offset: u64,
    msgpack: MsgpackScan,
    json: JsonScan,
    failed: Option<DecodeError>,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            format: None,
            offset: 0,
            msgpack: MsgpackScan::default(),
            json: JsonScan::default(),
            failed: None,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The connection's encoding, once its first byte has arrived.
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// Bytes of the stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// After `decode_raw` has returned `Ok(None)` on `buf`: whether a message has begun and
    /// not ended. Whitespace between JSON messages does not count. A server uses it to give a
    /// message a deadline, so that a sender writing a byte now and then cannot hold a
    /// connection open.
    pub fn in_frame(&self, buf: &[u8]) -> bool {
        match self.format {
            Some(Format::Json) => buf.iter().any(|b| !b.is_ascii_whitespace()),
            _ => !buf.is_empty(),
        }
    }

    fn fail(&mut self, offset: u64, kind: ErrorKind) -> DecodeError {
        let e = DecodeError { offset, kind };
        self.failed = Some(e.clone());
        e
    }

    fn scan_error(&mut self, e: ScanError) -> DecodeError {
        let offset = self.offset + e.at as u64;
        let kind = match e.kind {
            ScanErrorKind::InvalidMarker(m) => ErrorKind::InvalidMarker(m),
            ScanErrorKind::TooLarge => ErrorKind::TooLarge {
                max: self.limits.max_message,
            },
            ScanErrorKind::TooDeep => ErrorKind::TooDeep {
                max: self.limits.max_depth,
            },
            ScanErrorKind::NotJsonArray(b) => ErrorKind::NotAnArray { found: b },
        };
        self.fail(offset, kind)
    }

    /// Next complete message, consuming its bytes, without interpreting it.
    /// `Ok(None)`: need more bytes. After an error the decoder is spent and
    /// returns that error again.
    pub fn decode_raw(&mut self, buf: &mut BytesMut) -> Result<Option<RawMessage>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let format = match self.format {
            Some(f) => f,
            None => match buf.first() {
                None => return Ok(None),
                Some(b'{' | b'[') => *self.format.insert(Format::Json),
                Some(_) => *self.format.insert(Format::MessagePack),
            },
        };
        let max_depth = self.limits.max_depth + ENVELOPE_DEPTH;
        let len = match format {
            Format::MessagePack => loop {
                match buf.first() {
                    None => return Ok(None),
                    // A bare nil is fluentd's TCP heartbeat: nothing to answer.
                    Some(0xc0) => {
                        buf.advance(1);
                        self.offset += 1;
                    }
                    Some(&b) if !matches!(b, 0x90..=0x9f | 0xdc | 0xdd) => {
                        return Err(self.fail(self.offset, ErrorKind::NotAnArray { found: b }))
                    }
                    Some(_) => break self.msgpack.scan(buf, self.limits.max_message, max_depth),
                }
            },
            Format::Json => {
                let ws = buf
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(buf.len());
                if ws > 0 {
                    // Only ever between messages: a pending message starts with `[` or `{`.
                    buf.advance(ws);
                    self.offset += ws as u64;
                }
                self.json.scan(buf, self.limits.max_message, max_depth)
            }
        };
        let len = match len {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.scan_error(e)),
        };
        self.msgpack.reset();
        self.json.reset();
        let offset = self.offset;
        self.offset += len as u64;
        Ok(Some(RawMessage {
            bytes: buf.split_to(len).freeze(),
            format,
            offset,
        }))
    }

    /// Next chunk, consuming its bytes from `buf`. `Ok(None)`: need more bytes.
    /// After an error the decoder is spent and returns that error again.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, DecodeError> {
        let Some(raw) = self.decode_raw(buf)? else {
            return Ok(None);
        };
        match parse_complete(&raw.bytes, raw.format, &self.limits) {
            Ok(mut chunk) => {
                chunk.offset = raw.offset;
                Ok(Some(chunk))
            }
            Err(e) => Err(self.fail(raw.offset + e.offset, e.kind)),
        }
    }

    /// Like [`decode`](Self::decode) once the peer has closed: bytes left that
    /// do not make a whole message are an error.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, DecodeError> {
        match self.decode(buf)? {
            Some(c) => Ok(Some(c)),
            None if buf.is_empty() => Ok(None),
            None if self.format == Some(Format::Json)
                && buf.iter().all(|b| b.is_ascii_whitespace()) =>
            {
                Ok(None)
            }
            None => Err(self.fail(
                self.offset,
                ErrorKind::Truncated {
                    buffered: buf.len(),
                },
            )),
        }
    }
}

/// Decodes one complete message (as cut by [`Decoder::decode_raw`]). Error
/// offsets are relative to `bytes[0]`; `Chunk::offset` is 0.
pub fn parse(bytes: &[u8], format: Format, limits: &Limits) -> Result<Chunk, DecodeError> {
    let err = |kind| DecodeError { offset: 0, kind };
    // Callers other than the Decoder may pass anything: check shape, extent and
    // caps before rmpv allocates.
    let max_depth = limits.max_depth + ENVELOPE_DEPTH;
    let scanned = match (format, bytes.first()) {
        (_, None) => return Err(err(ErrorKind::Truncated { buffered: 0 })),
        (Format::MessagePack, Some(&b)) if !matches!(b, 0x90..=0x9f | 0xdc | 0xdd) => {
            return Err(err(ErrorKind::NotAnArray { found: b }))
        }
        (Format::MessagePack, _) => {
            MsgpackScan::default().scan(bytes, limits.max_message, max_depth)
        }
        (Format::Json, _) => JsonScan::default().scan(bytes, limits.max_message, max_depth),
    };
    match scanned {
        Ok(Some(_)) => parse_complete(bytes, format, limits),
        Ok(None) => Err(err(ErrorKind::Truncated {
            buffered: bytes.len(),
        })),
        Err(e) => Err(scan_err(e, limits)),
    }
}

fn parse_complete(bytes: &[u8], format: Format, limits: &Limits) -> Result<Chunk, DecodeError> {
    let err = |kind| DecodeError { offset: 0, kind };
    let json;
    let mut entries = None;
    let items = match format {
        Format::MessagePack => envelope(bytes, &mut entries)
            .map_err(|e| err(ErrorKind::InvalidMsgpack(e.to_string())))?,
        Format::Json => {
            json = serde_json::from_slice::<Value>(bytes)
                .map_err(|e| err(ErrorKind::InvalidJson(e.to_string())))?;
            match json.as_ref() {
                ValueRef::Array(items) => items,
                _ => return Err(err(ErrorKind::NotAnArray { found: b'{' })),
            }
        }
    };
    let mut chunk = interpret(&items, entries, format, limits)?;
    chunk.wire_len = bytes.len();
    Ok(chunk)
}

/// The message's elements, borrowing from `bytes`. PackedForward entries are
/// sliced out here rather than by rmpv, which would copy (and UTF-8 check) what
/// is usually most of the message. So are Forward-mode entries (an array,
/// left in `entries` with a nil in its place): decoded one by one, each is
/// counted against `max_decoded` before the next, where rmpv would first
/// build the whole array's tree.
fn envelope<'a>(
    bytes: &'a [u8],
    entries: &mut Option<&'a [u8]>,
) -> Result<Vec<ValueRef<'a>>, rmpv::decode::Error> {
    let mut rd = bytes;
    let n = rmp::decode::read_array_len(&mut rd)? as usize;
    let mut items = Vec::with_capacity(n.min(4));
    for i in 0..n {
        if i == 1 && matches!(rd.first(), Some(0x90..=0x9f | 0xdc | 0xdd)) {
            // In bounds: the message was scanned whole (the depth cap was checked there).
            if let Ok(Some(len)) = MsgpackScan::default().scan(rd, rd.len(), usize::MAX) {
                let (array, rest) = rd.split_at(len);
                *entries = Some(array);
                items.push(ValueRef::Nil);
                rd = rest;
                continue;
            }
        }
        let blob = match rd.first() {
            Some(0xa0..=0xbf | 0xd9..=0xdb) if i == 1 => Some(rmp::decode::read_str_len(&mut rd)?),
            Some(0xc4..=0xc6) if i == 1 => Some(rmp::decode::read_bin_len(&mut rd)?),
            _ => None,
        };
        match blob {
            // In bounds: the scan checked every length against the message.
            Some(len) => {
                let (entries, rest) = rd.split_at(len as usize);
                items.push(ValueRef::Binary(entries));
                rd = rest;
            }
            None => items.push(rmpv::decode::read_value_ref(&mut rd)?),
        }
    }
    Ok(items)
}

fn scan_err(e: ScanError, limits: &Limits) -> DecodeError {
    let kind = match e.kind {
        ScanErrorKind::InvalidMarker(m) => ErrorKind::InvalidMarker(m),
        ScanErrorKind::TooLarge => ErrorKind::TooLarge {
            max: limits.max_message,
        },
        ScanErrorKind::TooDeep => ErrorKind::TooDeep {
            max: limits.max_depth,
        },
        ScanErrorKind::NotJsonArray(b) => ErrorKind::NotAnArray { found: b },
    };
    DecodeError {
        offset: e.at as u64,
        kind,
    }
}

fn interpret(
    items: &[ValueRef<'_>],
    forward_entries: Option<&[u8]>,
    format: Format,
    limits: &Limits,
) -> Result<Chunk, DecodeError> {
    let err = |kind| DecodeError { offset: 0, kind };
    if !(2..=4).contains(&items.len()) {
        return Err(err(ErrorKind::BadArity(items.len())));
    }
    let tag = match ref_bytes(&items[0]) {
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => return Err(err(ErrorKind::BadTag)),
    };
    let mut chunk = Chunk {
        tag,
        entries: Vec::new(),
        options: Options::default(),
        mode: Mode::Message,
        skipped: 0,
        format,
        offset: 0,
        wire_len: 0,
        decoded: 0,
    };
    if let Some(array) = forward_entries {
        chunk.mode = Mode::Forward;
        chunk.options = options(items.get(2));
        let mut body = array;
        let n = rmp::decode::read_array_len(&mut body)
            .map_err(|e| err(ErrorKind::InvalidMsgpack(e.to_string())))?;
        chunk
            .entries
            .reserve((n as usize).min(limits.max_decoded / ENTRY_COST));
        unpack_entries(&mut chunk, body, limits)?;
        return Ok(chunk);
    }
    match &items[1] {
        ValueRef::Array(entries) => {
            // JSON (msgpack arrays were sliced out by `envelope`).
            chunk.mode = Mode::Forward;
            chunk.options = options(items.get(2));
            chunk
                .entries
                .reserve(entries.len().min(limits.max_decoded / ENTRY_COST));
            for e in entries {
                push_entry(&mut chunk, e, 0, limits).map_err(err)?;
            }
        }
        second @ (ValueRef::String(_) | ValueRef::Binary(_)) => {
            chunk.options = options(items.get(2));
            let packed = ref_bytes(second).unwrap_or_default();
            match chunk.options.compressed.as_deref() {
                None | Some("text") => {
                    chunk.mode = Mode::PackedForward;
                    unpack_entries(&mut chunk, &packed, limits)?;
                }
                Some("gzip") => {
                    chunk.mode = Mode::CompressedPackedForward;
                    let inflated = gunzip(&packed, limits.max_decompressed).map_err(err)?;
                    unpack_entries(&mut chunk, &inflated, limits)?;
                }
                Some(other) => return Err(err(ErrorKind::UnsupportedCompression(other.into()))),
            }
        }
        time => {
            let Some(record) = items.get(2) else {
                return Err(err(ErrorKind::BadArity(2)));
            };
            chunk.options = options(items.get(3));
            // One entry, within max_message: counted, never refused.
            chunk.decoded = ENTRY_COST;
            match (event_time(time), record) {
                (Some(time), ValueRef::Map(_)) => chunk.entries.push(Entry {
                    time,
                    record: record.to_owned(),
                }),
                _ => chunk.skipped += 1,
            }
        }
    }
    Ok(chunk)
}

/// The bytes of a str or bin, borrowed unless the str is not UTF-8 (rmpv's
/// `Utf8StringRef` lends only valid text).
fn ref_bytes<'a>(v: &ValueRef<'a>) -> Option<Cow<'a, [u8]>> {
    match *v {
        ValueRef::Binary(b) => Some(Cow::Borrowed(b)),
        ValueRef::String(s) => Some(match s.into_str() {
            Some(t) => Cow::Borrowed(t.as_bytes()),
            None => Cow::Owned(s.into_bytes()),
        }),
        _ => None,
    }
}

/// `[time, record]` (more elements are ignored, as Ruby's destructuring does),
/// `len` bytes long, counted against `max_decoded` (skipped ones too: they
/// cost the decoding).
fn push_entry(
    chunk: &mut Chunk,
    entry: &ValueRef<'_>,
    len: usize,
    limits: &Limits,
) -> Result<(), ErrorKind> {
    chunk.decoded = chunk.decoded.saturating_add(ENTRY_COST + len);
    if chunk.decoded > limits.max_decoded {
        return Err(ErrorKind::DecodedTooLarge {
            max: limits.max_decoded,
            entries: chunk.entries.len() + chunk.skipped + 1,
        });
    }
    if let ValueRef::Array(pair) = entry {
        if let [time, record @ ValueRef::Map(_), ..] = pair.as_slice() {
            if let Some(time) = event_time(time) {
                chunk.entries.push(Entry {
                    time,
                    record: record.to_owned(),
                });
                return Ok(());
            }
        }
    }
    chunk.skipped += 1;
    Ok(())
}

fn unpack_entries(chunk: &mut Chunk, mut data: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    let total = data.len();
    // Packed entries are `[time, record]` (+ optional `[time, meta]` time): 3
    // envelope levels above the record.
    let max_depth = limits.max_depth + 3;
    if let Some(n) = chunk.options.size {
        let most = (total / 2).min(limits.max_decoded / ENTRY_COST);
        chunk.entries.reserve((n as usize).min(most));
    }
    while !data.is_empty() {
        let at = total - data.len();
        let bad = |reason: String| DecodeError {
            offset: 0,
            kind: ErrorKind::BadPackedEntries { at, reason },
        };
        // The scan bounds what rmpv will allocate and reports a precise reason.
        let len = match MsgpackScan::default().scan(data, data.len(), max_depth) {
            Ok(Some(len)) => len,
            Ok(None)
            | Err(ScanError {
                kind: ScanErrorKind::TooLarge,
                ..
            }) => return Err(bad("truncated value".into())),
            Err(ScanError {
                kind: ScanErrorKind::TooDeep,
                ..
            }) => {
                return Err(DecodeError {
                    offset: 0,
                    kind: ErrorKind::TooDeep {
                        max: limits.max_depth,
                    },
                })
            }
            Err(e) => return Err(bad(format!("{:?}", e.kind))),
        };
        let mut one = &data[..len];
        let v = rmpv::decode::read_value_ref(&mut one).map_err(|e| bad(e.to_string()))?;
        push_entry(chunk, &v, len, limits).map_err(|kind| DecodeError { offset: 0, kind })?;
        data = &data[len..];
    }
    Ok(())
}

/// Inflates every gzip member, never holding more than `max` bytes.
fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, ErrorKind> {
    let mut out = Vec::new();
    if data.is_empty() {
        return Ok(out);
    }
    let mut dec = MultiGzDecoder::new(data);
    let mut block = [0u8; 32 * 1024];
    loop {
        let n = match dec.read(&mut block) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ErrorKind::Gzip(e.to_string())),
        };
        if out.len() + n > max {
            return Err(ErrorKind::DecompressedTooLarge { max });
        }
        if out.capacity() < out.len() + n {
            // Grow geometrically, but never reserve past the cap.
            let want = (out.capacity() * 2)
                .max(out.len() + n)
                .max(64 * 1024)
                .min(max);
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&block[..n]);
    }
}

fn options(v: Option<&ValueRef<'_>>) -> Options {
    let mut o = Options::default();
    // in_forward indexes whatever is there; a non-map option simply has no keys.
    let Some(ValueRef::Map(pairs)) = v else {
        return o;
    };
    for (k, v) in pairs {
        let Some(k) = ref_bytes(k) else { continue };
        match &*k {
            b"chunk" => o.chunk = ref_bytes(v).map(Cow::into_owned),
            b"size" => o.size = v.as_u64(),
            b"compressed" => {
                o.compressed = ref_bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
            }
            b"fluent_signal" => o.fluent_signal = integer(v).and_then(|i| i.as_i64()),
            _ => {}
        }
    }
    o
}

fn integer(v: &ValueRef<'_>) -> Option<rmpv::Integer> {
    match v {
        ValueRef::Integer(i) => Some(*i),
        _ => None,
    }
}

/// Integer (any width), EventTime (ext 0, 8 bytes), a float (lenient: in_forward
/// drops those by default), or Fluent Bit's `[time, metadata]`. Anything else
/// (nil included) makes the entry invalid.
fn event_time(v: &ValueRef<'_>) -> Option<EventTime> {
    time_scalar(match v {
        ValueRef::Array(a) => a.first()?,
        v => v,
    })
}

fn time_scalar(v: &ValueRef<'_>) -> Option<EventTime> {
    match *v {
        ValueRef::Integer(i) => Some(EventTime::new(i.as_i64()?, 0)),
        ValueRef::Ext(0, d) if d.len() == 8 => {
            let secs = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            let nanos = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
            // Out-of-range nanoseconds carry into seconds rather than being dropped.
            Some(EventTime::new(
                i64::from(secs) + i64::from(nanos / 1_000_000_000),
                nanos % 1_000_000_000,
            ))
        }
        ValueRef::F32(f) => float_time(f64::from(f)),
        ValueRef::F64(f) => float_time(f),
        _ => None,
    }
}

fn float_time(f: f64) -> Option<EventTime> {
    if !f.is_finite() || f.abs() > 1e15 {
        return None;
    }
    let secs = f.floor();
    let nanos = ((f - secs) * 1e9).round();
    // Rounding can reach a full second.
    if nanos >= 1e9 {
        return Some(EventTime::new(secs as i64 + 1, 0));
    }
    Some(EventTime::new(secs as i64, nanos as u32))
}
