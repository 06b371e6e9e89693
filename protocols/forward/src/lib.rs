//! Sans-I/O Fluentd forward protocol v1 for logport: the four modes (Message,
//! Forward, PackedForward, CompressedPackedForward), EventTime, msgpack and JSON
//! connections, `{"ack": chunk}` replies, the `<security>` handshake, the UDP
//! heartbeat reply, and client encoders for tests and load generation.
//!
//! No sockets, no clock, no randomness: the caller reads bytes into a
//! `BytesMut` and pulls [`Chunk`]s out of a [`Decoder`]; nonces and salts are
//! passed in; a time of 0 seconds is left for the caller to replace with its
//! receive time, as in_forward does ([`EventTime::is_zero`]).
//!
//! Where this crate follows in_forward.rb (fluent/fluentd) and where it is
//! stricter or laxer:
//! - Entries in_forward drops with its default `skip_invalid_event` (time nil or
//!   not an integer/EventTime, record not a map) are dropped and counted in
//!   [`Chunk::skipped`]; the chunk is still acked, as in_forward does.
//! - Float times are accepted (in_forward drops them by default).
//! - A message that is not an array, a tag that is not a string, corrupt or
//!   truncated packed entries, or a broken cap is a [`DecodeError`]: close the
//!   connection. A bare msgpack nil (TCP heartbeat) is skipped.
//!
//! ```
//! use bytes::BytesMut;
//! use logport_forward::{encode_message, value, ClientOptions, Decoder, Limits, Mode, Time};
//! use rmpv::Value;
//!
//! let record = Value::Map(vec![("log".into(), "hello".into())]);
//! let opts = ClientOptions { chunk: Some(b"c1".to_vec()), size: None };
//! let mut wire = Vec::new();
//! encode_message(&mut wire, "docker.web", Time::Int(1_714_564_800), &record, Some(&opts));
//!
//! let mut dec = Decoder::new(Limits::default());
//! let mut buf = BytesMut::new();
//! let mut chunks = Vec::new();
//! for b in wire {
//!     buf.extend_from_slice(&[b]); // one byte per read still works
//!     chunks.extend(dec.decode(&mut buf).unwrap());
//! }
//! let chunk = &chunks[0];
//! assert_eq!((chunk.tag.as_str(), chunk.mode), ("docker.web", Mode::Message));
//! assert_eq!(chunk.entries[0].time.secs, 1_714_564_800);
//! assert_eq!(value::to_json(&chunk.entries[0].record), r#"{"log":"hello"}"#);
//! assert_eq!(chunk.ack().unwrap(), b"\x81\xa3ack\xa2c1");
//! ```

mod decode;
pub mod encode;
pub mod handshake;
mod scan;
pub mod value;

pub use decode::{
    parse, Chunk, DecodeError, Decoder, Entry, ErrorKind, EventTime, Format, Limits, Mode, Options,
    RawMessage, ENTRY_COST,
};
pub use encode::{
    encode_ack, encode_compressed_packed_forward, encode_entries, encode_forward, encode_message,
    encode_message_json, encode_packed_forward, ClientOptions, PackedAs, Time, HEARTBEAT_REPLY,
};
pub use handshake::{Handshake, HandshakeState, Pong, User};
/// The record value type (re-exported so callers need not pin rmpv themselves).
pub use rmpv;
