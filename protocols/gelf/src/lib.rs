//! Sans-I/O GELF 1.1 for logport: payload decoding (plain, zlib, gzip, with a
//! decompression cap), UDP chunk reassembly under fixed memory bounds, TCP NUL
//! framing, and client-side encoders for tests and load generation.
//!
//! No sockets, no clock, no configuration: the caller hands each UDP datagram
//! with its own `Instant` to a [`Reassembler`], or reads a TCP stream into a
//! `BytesMut` and pulls [`Frame`]s out of a [`FrameDecoder`]; every complete
//! payload then goes to [`decode_payload`]. See [`message`] for what decoding
//! accepts (it is as lenient as Logstash's gelf input).
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use logport_gelf::{chunk, decode_payload, Outcome, Reassembler};
//!
//! let json = br#"{"version":"1.1","host":"web-1","short_message":"hello","level":6,"_tag":"3f2a"}"#;
//! let mut r = Reassembler::default();
//! let now = Instant::now();
//! // The second half arrives first.
//! assert_eq!(r.push(chunk(7, 1, 2, &json[40..]), now).unwrap(), Outcome::Incomplete);
//! let Outcome::Complete(payload) = r.push(chunk(7, 0, 2, &json[..40]), now).unwrap() else {
//!     panic!("two of two chunks")
//! };
//! let msg = decode_payload(&payload, 1 << 20).unwrap();
//! assert_eq!(msg.short_message.as_deref(), Some("hello"));
//! assert_eq!(msg.level, Some(6));
//! assert_eq!(msg.additional["_tag"], "3f2a");
//! ```

pub mod chunk;
pub mod encode;
pub mod framing;
pub mod message;
pub mod payload;

pub use chunk::{
    is_chunk, parse_chunk, ChunkError, ChunkHeader, Dropped, Outcome, Reassembler,
    ReassemblerConfig, ReassemblerStats, CHUNK_HEADER_LEN, CHUNK_MAGIC, MAX_CHUNKS,
};
pub use encode::{
    chunk, compress, encode_chunks, encode_datagrams, frame_tcp, EncodeError, GO_GELF_CHUNK_SIZE,
};
pub use framing::{Frame, FrameDecoder, FrameError};
pub use message::Message;
pub use payload::{decode_payload, decompress, detect, Encoding, PayloadError};
