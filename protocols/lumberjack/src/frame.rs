//! What travels on the wire: versions, frame types, the records the decoder
//! yields, and its errors.

use std::fmt;

use bytes::Bytes;

/// The version byte that starts every frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// `'1'` (0x31): logstash-forwarder, Logstash's lumberjack output.
    V1,
    /// `'2'` (0x32): libbeat (Filebeat, Metricbeat, ...) through go-lumber.
    V2,
}

impl Version {
    pub fn byte(self) -> u8 {
        match self {
            Version::V1 => b'1',
            Version::V2 => b'2',
        }
    }

    pub fn from_byte(b: u8) -> Option<Version> {
        match b {
            b'1' => Some(Version::V1),
            b'2' => Some(Version::V2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.byte() as char)
    }
}

/// The type byte after the version byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// `W`: how many events the client sends before it waits for the ack.
    Window,
    /// `J`: one JSON document.
    Json,
    /// `D`: one event as key/value pairs.
    Data,
    /// `C`: a zlib stream holding further frames.
    Compressed,
    /// `A`: the server's ack.
    Ack,
}

impl FrameType {
    pub fn byte(self) -> u8 {
        match self {
            FrameType::Window => b'W',
            FrameType::Json => b'J',
            FrameType::Data => b'D',
            FrameType::Compressed => b'C',
            FrameType::Ack => b'A',
        }
    }

    pub fn from_byte(b: u8) -> Option<FrameType> {
        match b {
            b'W' => Some(FrameType::Window),
            b'J' => Some(FrameType::Json),
            b'D' => Some(FrameType::Data),
            b'C' => Some(FrameType::Compressed),
            b'A' => Some(FrameType::Ack),
            _ => None,
        }
    }

    /// Bytes from the version byte to the end of the fixed-size part.
    pub(crate) fn header_len(self) -> usize {
        match self {
            FrameType::Json | FrameType::Data => 10,
            FrameType::Window | FrameType::Compressed | FrameType::Ack => 6,
        }
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.byte() as char)
    }
}

/// An event's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A `J` frame: the raw JSON document, not parsed or validated here.
    Json(Bytes),
    /// A `D` frame: key/value byte strings in wire order. Clients mean UTF-8 but
    /// early jls versions miscounted multibyte text, so checking is the caller's call.
    Pairs(Vec<(Bytes, Bytes)>),
}

/// One frame out of the stream (`C` frames are unpacked into their inner frames).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Window {
        version: Version,
        size: u32,
    },
    Event {
        version: Version,
        seq: u32,
        payload: Payload,
    },
    /// Only a client reads these; the decoder accepts them so that a load
    /// generator can use the same decoder on the server's replies.
    Ack {
        version: Version,
        seq: u32,
    },
}

/// Caps on what one frame may make the decoder hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `J` document and `D` frame body (all pairs with their lengths):
    /// the per-event cap.
    pub max_payload: usize,
    /// Largest inflated content of one `C` frame; inflation stops as soon as it
    /// is passed, so no more than this (plus one byte) is ever allocated for it.
    /// Also caps the compressed length of a `C` frame: that body is inflated as
    /// it arrives and never buffered whole, and a compressed window of many
    /// events is routinely larger than one event, so tying it to `max_payload`
    /// would refuse Filebeat's windows whenever the per-event cap is small.
    pub max_inflated: usize,
    /// Most pairs in one `D` frame. Each pair costs 64 bytes of `Vec` entry
    /// whatever its wire size, so this, not `max_payload`, bounds that vector.
    /// logstash-forwarder sends 4 plus the configured fields; jls one per
    /// flattened leaf.
    pub max_pairs: u32,
}

impl Default for Limits {
    /// Filebeat cuts lines at `max_bytes` (10 MiB) by default, so one JSON event can
    /// approach that; a 2048-event window of ordinary events inflates to a few MiB.
    fn default() -> Self {
        Limits {
            max_payload: 16 << 20,
            max_inflated: 64 << 20,
            max_pairs: 1024,
        }
    }
}

/// The stream is not valid Lumberjack; the connection should be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Stream offset of the version byte of the offending frame, or of the `C`
    /// frame that holds it.
    pub offset: u64,
    /// For a frame inside a `C` frame: its offset in the inflated data.
    pub inner_offset: Option<u64>,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The first byte of a frame is neither `'1'` nor `'2'`.
    UnknownVersion { byte: u8 },
    /// The type byte is none of `W J D C A`.
    UnknownFrameType { version: Version, byte: u8 },
    /// A declared length above [`Limits::max_payload`]; raised from the header,
    /// before any of the body is read. For `D`, `declared` is the body length
    /// walked so far.
    TooLarge {
        frame: FrameType,
        declared: u64,
        max: usize,
    },
    /// A `J` frame of length 0 (Logstash rejects it too).
    EmptyJson,
    /// A `D` frame announcing 0 pairs (Logstash rejects it), or more than
    /// [`Limits::max_pairs`] (or than [`Limits::max_payload`] holds at 8 bytes each).
    InvalidPairCount { count: u32, max: u32 },
    /// A `C` frame inside a `C` frame. No known client nests them, and refusing
    /// keeps inflation to one level (no unbounded recursion).
    NestedCompressed,
    /// The `C` payload is not a valid zlib stream.
    CorruptZlib { message: String },
    /// The `C` frame's declared length ends before its zlib stream does
    /// (Logstash: "Insufficient bytes in compressed content").
    TruncatedCompressed { declared: u32 },
    /// Bytes left in the `C` frame after its zlib stream ended.
    TrailingCompressed { extra: u64 },
    /// The `C` frame inflates to more than [`Limits::max_inflated`].
    InflatedTooLarge { max: usize },
    /// The inflated data of a `C` frame ends inside a frame, `received` bytes
    /// into it.
    TruncatedInner { received: u64 },
    /// The stream ended (see [`crate::Decoder::decode_eof`]) inside a frame.
    Truncated { received: u64 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("lumberjack: ")?;
        match &self.kind {
            ErrorKind::UnknownVersion { byte } => {
                write!(f, "unknown version byte 0x{byte:02x} (expected '1' or '2')")
            }
            ErrorKind::UnknownFrameType { version, byte } => write!(
                f,
                "unknown frame type 0x{byte:02x} after version {version} (expected W, J, D, C or A)"
            ),
            ErrorKind::TooLarge {
                frame,
                declared,
                max,
            } => write!(
                f,
                "{frame} frame of {declared} bytes exceeds the maximum payload {max}"
            ),
            ErrorKind::EmptyJson => f.write_str("'J' frame with an empty JSON document"),
            ErrorKind::InvalidPairCount { count, max } => {
                write!(
                    f,
                    "invalid pair count {count} in 'D' frame (expected 1 to {max})"
                )
            }
            ErrorKind::NestedCompressed => f.write_str("'C' frame nested inside a 'C' frame"),
            ErrorKind::CorruptZlib { message } => {
                write!(f, "corrupt zlib data in 'C' frame: {message}")
            }
            ErrorKind::TruncatedCompressed { declared } => write!(
                f,
                "zlib stream does not end within the 'C' frame's {declared} bytes"
            ),
            ErrorKind::TrailingCompressed { extra } => write!(
                f,
                "{extra} bytes after the end of the zlib stream in 'C' frame"
            ),
            ErrorKind::InflatedTooLarge { max } => write!(
                f,
                "'C' frame inflates to more than the maximum of {max} bytes"
            ),
            ErrorKind::TruncatedInner { received } => write!(
                f,
                "inflated data of 'C' frame ends inside a frame ({received} bytes of it present)"
            ),
            ErrorKind::Truncated { received } => {
                write!(f, "stream ended inside a frame ({received} bytes received)")
            }
        }?;
        match self.inner_offset {
            Some(inner) => write!(
                f,
                " (offset {inner} inside the 'C' frame at stream offset {})",
                self.offset
            ),
            None => write!(f, " (stream offset {})", self.offset),
        }
    }
}

impl std::error::Error for Error {}
