//! Sans-I/O syslog for logport: RFC 6587 stream framing, RFC 5424 and RFC 3164
//! parsing (with the variants Docker, rsyslog and network gear really send), and
//! client-side encoders for tests and load generation.
//!
//! No sockets, no clock, no configuration: the caller reads bytes into a
//! `BytesMut`, pulls [`Frame`]s out of a [`FrameDecoder`], and hands each frame to
//! [`parse`]. Anything year- or zone-dependent ([`Timestamp::Bsd`]) is left for the
//! caller to resolve with its own clock ([`infer_year`], [`Timestamp::to_unix`]).
//!
//! ```
//! use bytes::BytesMut;
//! use logport_syslog::{parse, FrameDecoder};
//!
//! let mut buf = BytesMut::from(&b"<30>Nov 25 03:35:24 14223bda5336[5388]: hello 1\n"[..]);
//! let mut dec = FrameDecoder::new(64 * 1024);
//! let frame = dec.decode(&mut buf).unwrap().unwrap();
//! let msg = parse(&frame.bytes).unwrap();
//! assert_eq!(msg.app_name.as_deref(), Some("14223bda5336"));
//! assert_eq!(msg.proc_id.as_deref(), Some("5388"));
//! assert_eq!(msg.msg, "hello 1");
//! ```

pub mod encode;
pub mod framing;
mod message;
mod pri;
mod rfc3164;
mod rfc5424;
pub mod timestamp;

pub use encode::{
    frame_lf, frame_octet_counted, write_rfc3339, write_timestamp, Rfc3164Message, Rfc5424Message,
    StampField,
};
pub use framing::{trim_datagram, Frame, FrameDecoder, FrameError, FrameErrorKind, Framing};
pub use message::{parse, text, Format, Message, ParseError, SdElement};
pub use pri::Pri;
pub use timestamp::{infer_year, Timestamp};
