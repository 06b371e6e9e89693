//! GELF over TCP: uncompressed JSON, each message ended by one NUL byte.
//!
//! go-gelf (Docker), graypy and pygelf all send `JSON 00`, nothing else, and
//! Logstash splits on NUL only. NUL alone delimits here too; whitespace
//! around the JSON (a `\n` before the NUL from a hand-rolled sender) is trimmed,
//! and empty frames (`00 00`, a lone `\n 00`) are skipped.
//!
//! A frame longer than `max_frame` is reported once with
//! [`FrameError::TooLong`] and its bytes are discarded as they arrive, up to
//! the next NUL; then decoding goes on. JSON cannot hold a raw NUL (it must be
//! escaped as `\u0000`), so the stream is back in step after it and the other
//! messages of the connection survive; memory stays bounded by `max_frame`
//! whatever the peer sends. A caller that prefers to close the connection
//! just stops on the error.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use memchr::memchr;

/// One message cut from the stream, without its NUL or surrounding whitespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub bytes: Bytes,
    /// Stream offset of `bytes[0]`.
    pub offset: u64,
}

/// A frame that cannot be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// No NUL within `max` bytes of the frame starting at stream `offset`;
    /// the rest of it is being skipped.
    TooLong { offset: u64, max: usize },
}

impl FrameError {
    /// Stream offset of the first byte of the offending frame.
    pub fn offset(&self) -> u64 {
        match *self {
            FrameError::TooLong { offset, .. } => offset,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::TooLong { offset, max } => write!(
                f,
                "GELF TCP frame at stream offset {offset} has no NUL terminator within the maximum frame size of {max} bytes; skipping to the next NUL"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Incremental NUL-frame decoder over a `BytesMut` the caller reads into.
///
/// Once `decode` has returned `Ok(None)`, the buffer holds at most
/// `max_frame` bytes, so with reads of at most R bytes it never exceeds
/// `max_frame + R`.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    max_frame: usize,
    /// Stream offset of `buf[0]`.
    offset: u64,
    /// `buf[..scanned]` holds no NUL.
    scanned: usize,
    /// Discarding the rest of an over-long frame.
    skipping: bool,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl FrameDecoder {
    /// `max_frame` bounds one message, terminator excluded.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            max_frame,
            offset: 0,
            scanned: 0,
            skipping: false,
        }
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes of the stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// After `decode` has returned `Ok(None)` on `buf`: whether a frame has begun and not
    /// ended (bytes of it in `buf`, or the tail of an over-long frame still being discarded).
    /// Whitespace between frames is consumed by `decode`, so it never counts. A server uses it
    /// to give a frame a deadline, so that a sender writing a byte now and then cannot hold a
    /// connection open.
    pub fn in_frame(&self, buf: &[u8]) -> bool {
        self.skipping || !buf.is_empty()
    }

    /// Takes `n` bytes off `buf` as a frame, trimmed; `None` if only whitespace.
    fn take(&mut self, buf: &mut BytesMut, n: usize, terminator: usize) -> Option<Frame> {
        let raw = buf.split_to(n);
        buf.advance(terminator);
        let at = self.offset;
        self.offset += (n + terminator) as u64;
        self.scanned = 0;
        let start = raw.iter().position(|&b| !is_space(b))?;
        let end = raw.iter().rposition(|&b| !is_space(b)).map_or(0, |k| k + 1);
        let bytes = raw.freeze().slice(start..end);
        Some(Frame {
            bytes,
            offset: at + start as u64,
        })
    }

    /// Next frame, consuming its bytes from `buf`. `Ok(None)`: need more bytes.
    /// An error is not final: call again to go on past the over-long frame.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            if self.skipping {
                match memchr(0, buf) {
                    Some(k) => {
                        buf.advance(k + 1);
                        self.offset += (k + 1) as u64;
                        self.skipping = false;
                    }
                    None => {
                        self.offset += buf.len() as u64;
                        buf.clear();
                        return Ok(None);
                    }
                }
            }
            // Whitespace before a frame is dropped as it comes (a frame is trimmed anyway):
            // held, it would be a frame that never starts, with no deadline and no limit
            // but max_frame.
            if self.scanned == 0 {
                let ws = buf.iter().take_while(|&&b| is_space(b)).count();
                buf.advance(ws);
                self.offset += ws as u64;
                if buf.is_empty() {
                    return Ok(None);
                }
            }
            // A frame of exactly max_frame bytes is whole if its NUL is the next
            // byte, so look one byte past the limit.
            let limit = buf.len().min(self.max_frame.saturating_add(1));
            let window = buf.get(self.scanned..limit).unwrap_or_default();
            match memchr(0, window) {
                Some(k) => {
                    let end = self.scanned + k;
                    match self.take(buf, end, 1) {
                        Some(frame) => return Ok(Some(frame)),
                        None => continue,
                    }
                }
                None if limit > self.max_frame => {
                    // `buf[..limit]` holds no NUL; whatever follows is
                    // searched by the skipping state.
                    let offset = self.offset;
                    buf.advance(limit);
                    self.offset += limit as u64;
                    self.scanned = 0;
                    self.skipping = true;
                    return Err(FrameError::TooLong {
                        offset,
                        max: self.max_frame,
                    });
                }
                None => {
                    self.scanned = limit;
                    return Ok(None);
                }
            }
        }
    }

    /// At end of stream: unterminated trailing data still becomes a frame, as
    /// Logstash's `gets("\0")` returns it (senders such as `nc` omit the NUL).
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if self.skipping {
            self.skipping = false;
            return Ok(None);
        }
        let n = buf.len();
        Ok(self.take(buf, n, 0))
    }
}
