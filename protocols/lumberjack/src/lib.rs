//! Sans-I/O Lumberjack v1 and v2 (Beats) for logport: an incremental frame
//! decoder that unpacks `C` frames itself, window and ack bookkeeping, the
//! server's ack encoder, and client-side encoders for tests and load generation.
//!
//! No sockets, no clock, no configuration: the caller reads bytes into a
//! `BytesMut`, pulls [`Record`]s out of a [`Decoder`], feeds them to a
//! [`WindowTracker`], and once a completed window is committed writes the
//! [`Ack`] the tracker hands back. Wire layouts: elastic/go-lumber and
//! logstash-plugins/logstash-input-beats; every integer is big-endian.
//!
//! ```
//! use bytes::BytesMut;
//! use logport_lumberjack::{encode_batch, Decoder, Limits, Payload, Record, Version, WindowTracker};
//!
//! // What Filebeat sends for a window of two events at compression level 3.
//! let events = [
//!     Payload::Json(r#"{"message":"hello"}"#.into()),
//!     Payload::Json(r#"{"message":"world"}"#.into()),
//! ];
//! let mut buf = BytesMut::new();
//! encode_batch(Version::V2, 1, &events, Some(3), &mut buf);
//!
//! let mut dec = Decoder::new(Limits::default());
//! let mut window = WindowTracker::new(10_000);
//! let mut done = None;
//! while let Some(record) = dec.decode(&mut buf).unwrap() {
//!     if let Record::Event { payload, .. } = &record {
//!         assert!(matches!(payload, Payload::Json(_)));
//!     }
//!     done = done.or(window.on_record(&record).unwrap());
//! }
//! let done = done.expect("window complete");
//! assert_eq!(done.events, 2);
//!
//! // ... the events are committed ...
//! window.commit(done.id).unwrap();
//! let ack = window.next_ack().unwrap();
//! let mut out = BytesMut::new();
//! ack.encode(&mut out);
//! assert_eq!(&out[..], b"2A\x00\x00\x00\x02");
//! ```

pub mod decode;
pub mod encode;
mod frame;
pub mod window;

pub use decode::Decoder;
pub use encode::{
    encode_ack, encode_batch, encode_compressed, encode_data, encode_event, encode_json,
    encode_record, encode_window,
};
pub use frame::{Error, ErrorKind, FrameType, Limits, Payload, Record, Version};
pub use window::{Ack, Completed, WindowError, WindowId, WindowTracker};
