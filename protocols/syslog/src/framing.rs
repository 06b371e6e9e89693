//! RFC 6587 stream framing (TCP, TLS, Unix stream) and the UDP datagram trim.
//!
//! The framing is detected per connection, from its first frame: `1`–`9` then
//! digits and a space is an octet count (`MSG-LEN SP MSG`), anything else a
//! non-transparent frame ended by LF (or NUL). Once a connection is LF-framed it
//! stays so: a line that happens to start with digits (`2024-05-01 ...`, or a
//! continuation line `3 retries left`) is a line, never misread as a count that
//! would cut every later message at the wrong place. An octet-counted connection
//! still takes an LF-framed frame that starts with a non-digit (relays that mix).

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use memchr::memchr2;

/// How a frame was delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// `MSG-LEN SP MSG` (RFC 6587 §3.4.1, mandatory for RFC 5425 TLS).
    OctetCounting,
    /// MSG ended by LF or NUL (RFC 6587 §3.4.2).
    NonTransparent,
}

/// One message cut from the stream, without its count or terminator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub bytes: Bytes,
    pub framing: Framing,
    /// A non-transparent line longer than `max_frame`: `bytes` holds its first
    /// `max_frame` bytes and the rest of the line was discarded.
    pub truncated: bool,
    /// Stream offset of `bytes[0]` (after any octet count), so that a
    /// [`crate::ParseError`] offset can be turned into a stream offset.
    pub offset: u64,
}

/// The stream is not framed syslog; the connection should be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// Stream offset of the first byte of the offending frame.
    pub offset: u64,
    pub kind: FrameErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameErrorKind {
    /// A byte other than a digit before the SP that ends MSG-LEN, or a count too
    /// long to be a length at all (more than 19 digits).
    InvalidOctetCount,
    /// MSG-LEN above the decoder's `max_frame`; raised as soon as the SP after the
    /// count arrives, before any of the body is read.
    OctetCountTooLarge { declared: u64, max: usize },
    /// The stream ended inside an octet-counted frame (`received` bytes of MSG).
    Truncated { declared: usize, received: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FrameErrorKind::InvalidOctetCount => write!(
                f,
                "invalid octet count: expected 1 to {MAX_COUNT_DIGITS} digits then a space (stream offset {})",
                self.offset
            ),
            FrameErrorKind::OctetCountTooLarge { declared, max } => write!(
                f,
                "octet count {declared} exceeds the maximum frame size {max} (stream offset {})",
                self.offset
            ),
            FrameErrorKind::Truncated { declared, received } => write!(
                f,
                "stream ended inside an octet-counted frame: {received} of {declared} bytes received (stream offset {})",
                self.offset
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// u64 holds any 19-digit number; a longer count is garbage, whatever `max_frame` is.
const MAX_COUNT_DIGITS: usize = 19;

#[derive(Clone, Debug)]
enum State {
    /// Between frames.
    Idle,
    /// A frame starting with a digit is at `buf[0]`; its MSG-LEN (at most 19
    /// digits, so little to hold) is consumed once its SP has arrived.
    Count { start: u64 },
    /// MSG-LEN and its SP consumed; waiting for `len` bytes.
    Body { len: usize, start: u64 },
    /// A non-transparent frame starts at `buf[0]`; `buf[..scanned]` holds no terminator.
    Line { scanned: usize },
    /// Discarding the rest of a line that was cut at `max_frame`.
    Skipping,
    /// A framing error ended the stream; it is returned again on every call.
    Failed(FrameError),
}

/// Incremental RFC 6587 decoder over a `BytesMut` the caller reads into.
///
/// Once `decode` has returned `Ok(None)`, the caller's buffer holds at most
/// `max(max_frame, 20)` bytes whatever the peer sends (a count is at most 19 digits;
/// the discarded tail of an over-long line is consumed as it arrives), so with
/// reads of at most R bytes the buffer never exceeds that plus R.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    max_frame: usize,
    state: State,
    /// Stream offset of `buf[0]`.
    offset: u64,
    /// The connection's framing, fixed by its first frame.
    mode: Option<Framing>,
}

impl FrameDecoder {
    /// `max_frame` bounds one message (RFC 5425 receivers take at least 2048 and
    /// should take 8192; 64 KiB covers any UDP-sized sender).
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            max_frame,
            state: State::Idle,
            offset: 0,
            mode: None,
        }
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes of the stream consumed so far (for error messages).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// After `decode` has returned `Ok(None)`: whether a frame has begun and not ended (bytes
    /// of it held in the caller's buffer, or the tail of an over-long line still being
    /// discarded). Empty lines between frames do not count. A server uses it to give a frame
    /// a deadline, so that a sender writing a byte now and then cannot hold a connection open.
    pub fn in_frame(&self) -> bool {
        !matches!(self.state, State::Idle | State::Failed(_))
    }

    fn consume(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.offset += n as u64;
    }

    fn split(&mut self, buf: &mut BytesMut, n: usize) -> (Bytes, u64) {
        let at = self.offset;
        self.offset += n as u64;
        (buf.split_to(n).freeze(), at)
    }

    fn fail(&mut self, offset: u64, kind: FrameErrorKind) -> FrameError {
        let e = FrameError { offset, kind };
        self.state = State::Failed(e.clone());
        e
    }

    /// Next frame, consuming its bytes from `buf`. `Ok(None)`: need more bytes.
    /// After an error the decoder is spent and returns that error again.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            match self.state {
                State::Failed(ref e) => return Err(e.clone()),
                State::Idle => {
                    // Empty lines between frames are skipped; on an LF-framed
                    // connection leading spaces belong to the line (indented text).
                    let lf = self.mode == Some(Framing::NonTransparent);
                    let stray = buf
                        .iter()
                        .position(|&b| !(matches!(b, b'\n' | b'\r' | b'\0') || (b == b' ' && !lf)))
                        .unwrap_or(buf.len());
                    self.consume(buf, stray);
                    match buf.first() {
                        None => return Ok(None),
                        Some(b'1'..=b'9') if !lf => {
                            self.state = State::Count { start: self.offset }
                        }
                        Some(_) => self.state = State::Line { scanned: 0 },
                    }
                }
                State::Count { start } => {
                    let mut value: u64 = 0;
                    let mut end = None;
                    for (i, &b) in buf.iter().enumerate() {
                        match b {
                            b'0'..=b'9' if i < MAX_COUNT_DIGITS => {
                                value = value * 10 + u64::from(b - b'0');
                            }
                            b' ' => {
                                end = Some(i);
                                break;
                            }
                            // The first frame decides: digits not followed by a space
                            // make this an LF-framed connection, not a broken count.
                            _ if self.mode.is_none() => {
                                self.state = State::Line { scanned: 0 };
                                break;
                            }
                            _ => return Err(self.fail(start, FrameErrorKind::InvalidOctetCount)),
                        }
                    }
                    if matches!(self.state, State::Line { .. }) {
                        continue;
                    }
                    let Some(end) = end else { return Ok(None) };
                    self.consume(buf, end + 1);
                    self.mode = Some(Framing::OctetCounting);
                    match usize::try_from(value) {
                        Ok(len) if len <= self.max_frame => self.state = State::Body { len, start },
                        _ => {
                            return Err(self.fail(
                                start,
                                FrameErrorKind::OctetCountTooLarge {
                                    declared: value,
                                    max: self.max_frame,
                                },
                            ))
                        }
                    }
                }
                State::Body { len, .. } => {
                    if buf.len() < len {
                        return Ok(None);
                    }
                    let (mut bytes, offset) = self.split(buf, len);
                    // srslog (Docker) counts the `\n` it appends to every message.
                    if bytes.last() == Some(&b'\n') {
                        bytes.truncate(bytes.len() - 1);
                    }
                    self.state = State::Idle;
                    return Ok(Some(Frame {
                        bytes,
                        framing: Framing::OctetCounting,
                        truncated: false,
                        offset,
                    }));
                }
                State::Line { scanned } => {
                    // A line of exactly max_frame bytes is whole if its terminator is
                    // the next byte, so look one byte past the limit.
                    let limit = buf.len().min(self.max_frame.saturating_add(1));
                    let window = buf.get(scanned..limit).unwrap_or_default();
                    match memchr2(b'\n', b'\0', window) {
                        Some(k) => {
                            let end = scanned + k;
                            let (mut bytes, offset) = self.split(buf, end);
                            self.consume(buf, 1);
                            if bytes.last() == Some(&b'\r') {
                                bytes.truncate(bytes.len() - 1);
                            }
                            self.state = State::Idle;
                            self.mode.get_or_insert(Framing::NonTransparent);
                            return Ok(Some(Frame {
                                bytes,
                                framing: Framing::NonTransparent,
                                truncated: false,
                                offset,
                            }));
                        }
                        None if limit > self.max_frame => {
                            let (bytes, offset) = self.split(buf, self.max_frame);
                            self.state = State::Skipping;
                            self.mode.get_or_insert(Framing::NonTransparent);
                            return Ok(Some(Frame {
                                bytes,
                                framing: Framing::NonTransparent,
                                truncated: true,
                                offset,
                            }));
                        }
                        None => {
                            self.state = State::Line { scanned: limit };
                            return Ok(None);
                        }
                    }
                }
                State::Skipping => match memchr2(b'\n', b'\0', buf) {
                    Some(k) => {
                        self.consume(buf, k + 1);
                        self.state = State::Idle;
                    }
                    None => {
                        let n = buf.len();
                        self.consume(buf, n);
                        return Ok(None);
                    }
                },
            }
        }
    }

    /// At end of stream: an unterminated LF-framed message still becomes a frame; a
    /// partial octet-counted frame is [`FrameErrorKind::Truncated`].
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        match self.state {
            State::Idle | State::Failed(_) => Ok(None),
            // Digits and no space at the very end: a short LF line on a fresh
            // connection, a cut-off count on an octet-counted one.
            State::Count { .. } if self.mode.is_none() => {
                self.state = State::Line { scanned: 0 };
                self.decode_eof(buf)
            }
            State::Count { start } => {
                let digits = buf
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .take(MAX_COUNT_DIGITS);
                let declared = digits.fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
                Err(self.fail(
                    start,
                    FrameErrorKind::Truncated {
                        declared: usize::try_from(declared).unwrap_or(usize::MAX),
                        received: 0,
                    },
                ))
            }
            State::Body { len, start } => Err(self.fail(
                start,
                FrameErrorKind::Truncated {
                    declared: len,
                    received: buf.len(),
                },
            )),
            State::Line { .. } => {
                let n = buf.len();
                let (mut bytes, offset) = self.split(buf, n);
                if bytes.last() == Some(&b'\r') {
                    bytes.truncate(bytes.len() - 1);
                }
                self.state = State::Idle;
                Ok(Some(Frame {
                    bytes,
                    framing: Framing::NonTransparent,
                    truncated: false,
                    offset,
                }))
            }
            State::Skipping => {
                let n = buf.len();
                self.consume(buf, n);
                self.state = State::Idle;
                Ok(None)
            }
        }
    }
}

/// One UDP datagram is one message (RFC 5426); srslog still appends `\n` and some
/// senders a NUL, so trailing LF, CR and NUL bytes are dropped.
pub fn trim_datagram(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|&c| !matches!(c, b'\n' | b'\r' | b'\0'))
        .map_or(0, |k| k + 1);
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a frame is open after feeding `chunks` one by one, asked after each.
    fn in_frame_after(max: usize, chunks: &[&[u8]]) -> Vec<bool> {
        let mut dec = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        chunks
            .iter()
            .map(|c| {
                buf.extend_from_slice(c);
                while dec.decode(&mut buf).unwrap().is_some() {}
                dec.in_frame()
            })
            .collect()
    }

    #[test]
    fn in_frame_is_true_exactly_between_a_frames_first_and_last_byte() {
        // LF framing: open after a partial line, closed after its LF and after empty lines.
        assert_eq!(
            in_frame_after(64, &[b"<14>a", b"bc\n", b"\n\r\n", b"<1"]),
            [true, false, false, true]
        );
        // Octet counting: the count, then the body, then closed; a trailing LF is no frame.
        assert_eq!(
            in_frame_after(64, &[b"1", b"0 ", b"<14>12345", b"6", b"\n"]),
            [true, true, true, false, false]
        );
        // The discarded tail of an over-long line is still part of a frame.
        assert_eq!(
            in_frame_after(4, &[b"abcdefg", b"hij", b"k\n"]),
            [true, true, false]
        );
    }

    /// Feeds `chunks` one after another, decoding after each, then EOF.
    fn run(max: usize, chunks: &[&[u8]]) -> (Vec<Frame>, Option<FrameError>) {
        let mut dec = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        loop {
            match dec.decode_eof(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, None),
                Err(e) => return (frames, Some(e)),
            }
        }
    }

    fn bodies(frames: &[Frame]) -> Vec<&[u8]> {
        frames.iter().map(|f| &f.bytes[..]).collect()
    }

    #[test]
    fn srslog_rfc5425_length_framer() {
        // srslog framer_test.go: RFC5425MessageLengthFramer("input message").
        let (f, e) = run(1024, &[b"13 input message"]);
        assert_eq!(e, None);
        assert_eq!(bodies(&f), [&b"input message"[..]]);
        assert_eq!(
            (f[0].framing, f[0].offset, f[0].truncated),
            (Framing::OctetCounting, 3, false)
        );
    }

    #[test]
    fn vector_octet_multiple_frames() {
        // A digit-led chunk inside a counted frame is payload.
        let (f, e) = run(1024, &[b"28 abcdefghijklm", b"3 nopqrstuvwxyz"]);
        assert_eq!(e, None);
        assert_eq!(bodies(&f), [&b"abcdefghijklm3 nopqrstuvwxyz"[..]]);
    }

    #[test]
    fn vector_non_octet_multiple_frames() {
        let (f, e) = run(
            1024,
            &[
                b"<57>Mar 25 21:47:46 gleichner6005 quaerat[2444]: There were ",
                b"8 penguins in the shop.\n",
            ],
        );
        assert_eq!(e, None);
        assert_eq!(
            bodies(&f),
            [&b"<57>Mar 25 21:47:46 gleichner6005 quaerat[2444]: There were 8 penguins in the shop."[..]]
        );
        assert_eq!(f[0].framing, Framing::NonTransparent);
    }

    #[test]
    fn docker_rfc5424_over_tls_counts_its_lf() {
        let wire = b"88 <30>1 2024-05-01T12:00:00+02:00 dockerhost 3f2a1b4c5d6e 1234 3f2a1b4c5d6e - hello world\n";
        assert_eq!(wire.len(), 3 + 88);
        let (f, e) = run(1024, &[wire]);
        assert_eq!(e, None);
        assert_eq!(
            bodies(&f),
            [&b"<30>1 2024-05-01T12:00:00+02:00 dockerhost 3f2a1b4c5d6e 1234 3f2a1b4c5d6e - hello world"[..]]
        );
    }

    #[test]
    fn logstash_partially_received_line() {
        let (f, e) = run(1024, &[b"<133>Mar 11 08:44:43 localhost ", b"message 1\n"]);
        assert_eq!(e, None);
        assert_eq!(
            bodies(&f),
            [&b"<133>Mar 11 08:44:43 localhost message 1"[..]]
        );
    }

    #[test]
    fn octet_counted_msg_may_hold_lf_and_only_one_trailing_lf_goes() {
        let (f, e) = run(1024, &[b"12 line1\nline2\n6 a\nb\n\n\n<1>x\n"]);
        assert_eq!(e, None);
        assert_eq!(bodies(&f), [&b"line1\nline2"[..], b"a\nb\n\n", b"<1>x"]);
    }

    #[test]
    fn terminators_and_stray_bytes() {
        let (f, e) = run(1024, &[b"\r\n \0<1>a\r\n<2>b\0<3>c\n\n\n<4>d\r\r\n"]);
        assert_eq!(e, None);
        assert_eq!(bodies(&f), [&b"<1>a"[..], b"<2>b", b"<3>c", b"<4>d\r"]);
        assert_eq!(
            f.iter().map(|f| f.offset).collect::<Vec<_>>(),
            [4, 10, 15, 22]
        );
    }

    #[test]
    fn one_byte_at_a_time() {
        let stream: &[u8] = b"13 input message<1>line one\r\n5 <2>b\n\n<3>tail";
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let (f, e) = run(64, &chunks);
        assert_eq!(e, None);
        assert_eq!(
            bodies(&f),
            [&b"input message"[..], b"<1>line one", b"<2>b", b"<3>tail"]
        );
        assert_eq!(
            f.iter().map(|f| f.framing).collect::<Vec<_>>(),
            [
                Framing::OctetCounting,
                Framing::NonTransparent,
                Framing::OctetCounting,
                Framing::NonTransparent
            ]
        );
        assert_eq!(
            f.iter().map(|f| f.offset).collect::<Vec<_>>(),
            [3, 16, 31, 37]
        );
    }

    #[test]
    fn scan_position_survives_calls() {
        let mut dec = FrameDecoder::new(100);
        let mut buf = BytesMut::from(&b"<1>abc"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(matches!(dec.state, State::Line { scanned: 6 }));
        buf.extend_from_slice(b"def");
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(matches!(dec.state, State::Line { scanned: 9 }));
        buf.extend_from_slice(b"\n");
        let f = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&f.bytes[..], b"<1>abcdef");
        assert!(buf.is_empty());
        assert_eq!(dec.offset(), 10);
    }

    #[test]
    fn frames_share_the_read_buffer() {
        let mut dec = FrameDecoder::new(100);
        let mut buf = BytesMut::from(&b"<1>abc\n<2>def\n"[..]);
        let base = buf.as_ptr();
        let f = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.bytes.as_ptr(), base);
        let g = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(g.bytes.as_ptr(), base.wrapping_add(7));
    }

    #[test]
    fn oversized_octet_count_fails_before_the_body() {
        let mut dec = FrameDecoder::new(65536);
        let mut buf = BytesMut::from(&b"5 <1>ok99999999 "[..]);
        assert!(dec.decode(&mut buf).unwrap().is_some());
        let e = dec.decode(&mut buf).unwrap_err();
        assert_eq!(
            e,
            FrameError {
                offset: 7,
                kind: FrameErrorKind::OctetCountTooLarge {
                    declared: 99_999_999,
                    max: 65536
                }
            }
        );
        assert_eq!(
            e.to_string(),
            "octet count 99999999 exceeds the maximum frame size 65536 (stream offset 7)"
        );
        // The decoder is spent.
        buf.extend_from_slice(b"<1>more\n");
        assert_eq!(dec.decode(&mut buf), Err(e));
        // Exactly max_frame is fine.
        let (f, e) = run(5, &[b"5 abcde6 abcdef"]);
        assert_eq!(bodies(&f), [&b"abcde"[..]]);
        assert_eq!(
            e.map(|e| e.kind),
            Some(FrameErrorKind::OctetCountTooLarge {
                declared: 6,
                max: 5
            })
        );
    }

    #[test]
    fn garbage_counts() {
        // On an octet-counted connection, a bad count closes it.
        for (stream, offset) in [
            (&b"3 <1>12a some text"[..], 5),
            (b"3 <1>1\n", 5),
            (b"3 <1>12345678901234567890 x", 5),
            (b"3 <1>2024-05-01 text\n", 5),
        ] {
            let (f, e) = run(1024, &[stream]);
            assert_eq!(bodies(&f), [&b"<1>"[..]]);
            let e = e.expect("error");
            assert_eq!(
                e,
                FrameError {
                    offset,
                    kind: FrameErrorKind::InvalidOctetCount
                }
            );
            assert!(
                e.to_string().contains(&format!("stream offset {offset}")),
                "{e}"
            );
        }
    }

    #[test]
    fn digits_on_an_lf_connection_are_text() {
        // The first frame fixes LF framing; later digit-led lines are lines, never counts.
        let (f, e) = run(
            1024,
            &[b"<13>x boom\n3 retries left\n2024-05-01 12:00 ERROR\n  indented\n<13>y\n"],
        );
        assert_eq!(e, None);
        assert_eq!(
            bodies(&f),
            [
                &b"<13>x boom"[..],
                b"3 retries left",
                b"2024-05-01 12:00 ERROR",
                b"  indented",
                b"<13>y"
            ]
        );
        // A first line that starts with digits but is no count makes the connection LF-framed.
        for first in [
            &b"12a some text\n"[..],
            b"1\n",
            b"12345678901234567890 x\n",
            b"2024-05-01 text\n",
        ] {
            let mut stream = first.to_vec();
            stream.extend_from_slice(b"5 abc\n");
            let (f, e) = run(1024, &[&stream]);
            assert_eq!(e, None, "{:?}", String::from_utf8_lossy(first));
            assert_eq!(bodies(&f)[1], b"5 abc");
        }
        // Fed byte by byte, the same decision.
        let (f, e) = run(
            1024,
            &b"12a x\n3 y\n"
                .iter()
                .map(std::slice::from_ref)
                .collect::<Vec<_>>(),
        );
        assert_eq!((bodies(&f), e), (vec![&b"12a x"[..], b"3 y"], None));
    }

    #[test]
    fn huge_counts() {
        // Nineteen digits is still a number (and then too large).
        let (_, e) = run(1024, &[b"9999999999999999999 x"]);
        assert_eq!(
            e.map(|e| e.kind),
            Some(FrameErrorKind::OctetCountTooLarge {
                declared: 9_999_999_999_999_999_999,
                max: 1024
            })
        );
    }

    #[test]
    fn oversized_line_is_truncated_then_next_line_intact() {
        let (f, e) = run(8, &[b"<1>abcdefghijkl", b"mnop", b"qrst\n<2>ok\n"]);
        assert_eq!(e, None);
        assert_eq!(bodies(&f), [&b"<1>abcde"[..], b"<2>ok"]);
        assert!(f[0].truncated && !f[1].truncated);
        assert_eq!(f[1].offset, 24);
        // A line of exactly max_frame bytes is whole, even when its LF comes later.
        let (f, _) = run(8, &[b"<1>abcde", b"\n<1>abcdef\n"]);
        assert_eq!(bodies(&f), [&b"<1>abcde"[..], b"<1>abcde"]);
        assert_eq!((f[0].truncated, f[1].truncated), (false, true));
    }

    #[test]
    fn endless_line_keeps_memory_bounded() {
        let mut dec = FrameDecoder::new(16);
        let mut buf = BytesMut::new();
        let mut frames = 0;
        for _ in 0..1000 {
            buf.extend_from_slice(b"<1>xxxxxxxxxxxxxxxxxxxxxxx");
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                assert!(f.truncated);
                frames += 1;
            }
            assert!(buf.len() <= 16, "{}", buf.len());
        }
        assert_eq!(frames, 1);
        buf.extend_from_slice(b"\n<2>y\n");
        assert_eq!(&dec.decode(&mut buf).unwrap().unwrap().bytes[..], b"<2>y");
    }

    #[test]
    fn eof_rules() {
        // Unterminated line: still a frame (CR stripped).
        let (f, e) = run(64, &[b"<1>a\n<2>tail\r"]);
        assert_eq!((bodies(&f), e), (vec![&b"<1>a"[..], b"<2>tail"], None));
        // Partial counted frame.
        let (f, e) = run(64, &[b"4 <1>a10 abc"]);
        assert_eq!(bodies(&f), [&b"<1>a"[..]]);
        let e = e.unwrap();
        assert_eq!(
            e,
            FrameError {
                offset: 6,
                kind: FrameErrorKind::Truncated {
                    declared: 10,
                    received: 3
                }
            }
        );
        assert_eq!(
            e.to_string(),
            "stream ended inside an octet-counted frame: 3 of 10 bytes received (stream offset 6)"
        );
        // Partial count on an octet-counted connection; on a fresh one it is a short line.
        assert_eq!(bodies(&run(64, &[b"12"]).0), [&b"12"[..]]);
        let (_, e) = run(64, &[b"3 <1>12"]);
        assert_eq!(
            e.map(|e| e.kind),
            Some(FrameErrorKind::Truncated {
                declared: 12,
                received: 0
            })
        );
        // Only separators, or the tail of a truncated line: nothing.
        assert_eq!(run(64, &[b"\r\n\0 "]), (vec![], None));
        let (f, e) = run(4, &[b"<1>abcdef"]);
        assert_eq!((f.len(), e), (1, None));
    }

    #[test]
    fn datagram_trim() {
        assert_eq!(trim_datagram(b"<1>a\n"), b"<1>a");
        assert_eq!(trim_datagram(b"<1>a\r\n\0\0"), b"<1>a");
        assert_eq!(trim_datagram(b"<1>a\nb\n"), b"<1>a\nb");
        assert_eq!(trim_datagram(b"\n\n"), b"");
        assert_eq!(trim_datagram(b""), b"");
        assert_eq!(trim_datagram(b" <1>a "), b" <1>a ");
    }
}
