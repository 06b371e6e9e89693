//! A GELF payload (one UDP datagram, a reassembled chunked message, or a TCP
//! frame) to a [`Message`]: detect the compression by its magic bytes, inflate
//! under a caller-given cap, parse the JSON object.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use flate2::bufread::{MultiGzDecoder, ZlibDecoder};

use crate::message::Message;

/// How a payload is encoded on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON as is (always the case on TCP).
    Plain,
    /// RFC 1950 zlib stream.
    Zlib,
    /// RFC 1952 gzip: Docker's default. Several members back to back are read as
    /// one payload, as Go's `gzip.Reader` and Java's `GZIPInputStream` (Graylog) do.
    Gzip,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Plain => "plain",
            Encoding::Zlib => "zlib",
            Encoding::Gzip => "gzip",
        })
    }
}

/// The encoding announced by the first bytes. zlib is recognised by the RFC 1950
/// header check (`78` and `(b0 * 256 + b1) % 31 == 0`), not only by `78 9c` as
/// gelfd2 (Logstash) does: Docker at its default level 1 sends `78 01`.
/// Anything else is taken for plain JSON, and the parser says whether it is.
pub fn detect(payload: &[u8]) -> Encoding {
    match payload {
        [0x1f, 0x8b, ..] => Encoding::Gzip,
        [0x78, b1, ..] if (0x78u16 * 256 + u16::from(*b1)).is_multiple_of(31) => Encoding::Zlib,
        _ => Encoding::Plain,
    }
}

/// Why a payload is not a GELF message. Offsets are into the (decompressed) payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Nothing but whitespace or NUL bytes.
    Empty,
    /// The first significant byte is neither `{` nor a zlib/gzip magic.
    NotAnObject { offset: usize, byte: u8 },
    /// The payload grows past `max` bytes once decompressed (or, plain, is
    /// longer than `max`). Inflating stopped there.
    TooLarge { encoding: Encoding, max: usize },
    /// The zlib or gzip stream is corrupt or cut short, after `produced`
    /// decompressed bytes.
    Decompress {
        encoding: Encoding,
        produced: usize,
        reason: String,
    },
    /// Starts like an object but is not valid JSON (or not UTF-8).
    Json {
        line: usize,
        column: usize,
        reason: String,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::Empty => f.write_str("empty GELF payload"),
            PayloadError::NotAnObject { offset, byte } => write!(
                f,
                "GELF payload is not a JSON object, zlib or gzip: byte 0x{byte:02x} at offset {offset} (expected '{{', 78 or 1f 8b)"
            ),
            PayloadError::TooLarge { encoding, max } => write!(
                f,
                "GELF payload ({encoding}) exceeds the maximum of {max} decompressed bytes"
            ),
            PayloadError::Decompress {
                encoding,
                produced,
                reason,
            } => write!(
                f,
                "invalid {encoding} data in GELF payload after {produced} decompressed bytes: {reason}"
            ),
            PayloadError::Json {
                line,
                column,
                reason,
            } => write!(
                f,
                "invalid JSON in GELF payload at line {line} column {column}: {reason}"
            ),
        }
    }
}

impl std::error::Error for PayloadError {}

/// The payload's JSON bytes: borrowed when plain, inflated otherwise. At most
/// `max` bytes are ever produced or allocated for the output.
pub fn decompress(payload: &[u8], max: usize) -> Result<Cow<'_, [u8]>, PayloadError> {
    match detect(payload) {
        Encoding::Plain if payload.len() > max => Err(PayloadError::TooLarge {
            encoding: Encoding::Plain,
            max,
        }),
        Encoding::Plain => Ok(Cow::Borrowed(payload)),
        Encoding::Zlib => inflate(
            ZlibDecoder::new(payload),
            Encoding::Zlib,
            payload.len(),
            max,
        ),
        Encoding::Gzip => inflate(
            MultiGzDecoder::new(payload),
            Encoding::Gzip,
            payload.len(),
            max,
        ),
    }
}

/// Reads `r` to its end into a buffer that never holds more than `max` bytes:
/// it grows by doubling (amortised copies) clamped at `max`, and once full a
/// single probe byte tells a payload of exactly `max` bytes from a bomb.
fn inflate<R: Read>(
    mut r: R,
    encoding: Encoding,
    compressed: usize,
    max: usize,
) -> Result<Cow<'static, [u8]>, PayloadError> {
    // Text GELF compresses about 4:1 at level 1; start near the expected size.
    // `Read` wants initialised memory, so `out` is zero-filled once per growth
    // and `len` says how much of it is data.
    let mut out = vec![0u8; compressed.saturating_mul(4).max(256).min(max)];
    let mut len = 0;
    loop {
        if len == out.len() {
            if len >= max {
                let mut probe = [0u8; 1];
                return match r.read(&mut probe) {
                    Ok(0) => Ok(Cow::Owned(out)),
                    Ok(_) => Err(PayloadError::TooLarge { encoding, max }),
                    Err(e) => Err(decompress_error(encoding, len, &e)),
                };
            }
            let grow = len.max(256).min(max - len);
            out.reserve_exact(grow);
            out.resize(len + grow, 0);
        }
        match r.read(&mut out[len..]) {
            Ok(0) => {
                out.truncate(len);
                return Ok(Cow::Owned(out));
            }
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(decompress_error(encoding, len, &e)),
        }
    }
}

fn decompress_error(encoding: Encoding, produced: usize, e: &std::io::Error) -> PayloadError {
    PayloadError::Decompress {
        encoding,
        produced,
        reason: e.to_string(),
    }
}

/// Decompresses (capped at `max_decompressed` bytes) and parses one payload.
pub fn decode_payload(payload: &[u8], max_decompressed: usize) -> Result<Message, PayloadError> {
    let json = decompress(payload, max_decompressed)?;
    Message::from_json(&json)
}
