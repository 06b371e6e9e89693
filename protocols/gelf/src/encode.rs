//! Client-side encoders, for tests and the load generator: compression, UDP
//! chunking as go-gelf does it, TCP framing. ([`crate::Message::to_json`]
//! makes the JSON.)

use std::fmt;
use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

use crate::chunk::{CHUNK_HEADER_LEN, CHUNK_MAGIC, MAX_CHUNKS};
use crate::payload::Encoding;

/// go-gelf's datagram size (header included): 1408 data bytes per chunk.
pub const GO_GELF_CHUNK_SIZE: usize = 1420;

/// `payload` compressed as `encoding` at `level` (0–9; go-gelf and Docker use 1).
pub fn compress(payload: &[u8], encoding: Encoding, level: u32) -> Vec<u8> {
    let level = Compression::new(level.min(9));
    let out = Vec::with_capacity(payload.len() / 2 + 64);
    // Writing to a Vec cannot fail.
    match encoding {
        Encoding::Plain => payload.to_vec(),
        Encoding::Zlib => {
            let mut e = ZlibEncoder::new(out, level);
            e.write_all(payload).expect("write to Vec");
            e.finish().expect("write to Vec")
        }
        Encoding::Gzip => {
            let mut e = GzEncoder::new(out, level);
            e.write_all(payload).expect("write to Vec");
            e.finish().expect("write to Vec")
        }
    }
}

/// A payload that cannot be chunked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The datagram size leaves no room for data after the 12-byte header.
    ChunkSizeTooSmall { size: usize },
    /// More than 128 chunks would be needed.
    TooManyChunks { len: usize, needed: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::ChunkSizeTooSmall { size } => write!(
                f,
                "GELF chunk size {size} must exceed the {CHUNK_HEADER_LEN}-byte chunk header"
            ),
            EncodeError::TooManyChunks { len, needed } => write!(
                f,
                "GELF payload of {len} bytes needs {needed} chunks, more than {MAX_CHUNKS}"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Splits `payload` into chunks of at most `chunk_size` bytes each (header
/// included) under message `id`, always chunked (an empty payload gives one
/// empty chunk). The count is the ceiling, never the empty trailing chunk
/// go-gelf's `len/1408 + 1` gives on an exact multiple.
pub fn encode_chunks(
    payload: &[u8],
    id: u64,
    chunk_size: usize,
) -> Result<Vec<Bytes>, EncodeError> {
    if chunk_size <= CHUNK_HEADER_LEN {
        return Err(EncodeError::ChunkSizeTooSmall { size: chunk_size });
    }
    let data = chunk_size - CHUNK_HEADER_LEN;
    let needed = payload.len().div_ceil(data).max(1);
    if needed > usize::from(MAX_CHUNKS) {
        return Err(EncodeError::TooManyChunks {
            len: payload.len(),
            needed,
        });
    }
    let mut out = Vec::with_capacity(needed);
    let mut slices = payload.chunks(data);
    for seq in 0..needed {
        let piece = slices.next().unwrap_or_default();
        out.push(chunk(id, seq as u8, needed as u8, piece));
    }
    Ok(out)
}

/// The datagrams a go-gelf sender would send: the payload alone when it fits
/// in `chunk_size`, else its chunks.
pub fn encode_datagrams(
    payload: &[u8],
    id: u64,
    chunk_size: usize,
) -> Result<Vec<Bytes>, EncodeError> {
    if payload.len() <= chunk_size {
        return Ok(vec![Bytes::copy_from_slice(payload)]);
    }
    encode_chunks(payload, id, chunk_size)
}

/// One chunk datagram, with any header values (tests use it to forge bad ones).
pub fn chunk(id: u64, seq: u8, count: u8, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(CHUNK_HEADER_LEN + data.len());
    b.put_slice(&CHUNK_MAGIC);
    b.put_u64(id);
    b.put_u8(seq);
    b.put_u8(count);
    b.put_slice(data);
    b.freeze()
}

/// Appends `json` and its NUL terminator to `out` (a TCP frame).
pub fn frame_tcp(json: &[u8], out: &mut BytesMut) {
    out.reserve(json.len() + 1);
    out.put_slice(json);
    out.put_u8(0);
}
