//! The incremental decoder.
//!
//! Every byte is looked at a bounded number of times however the stream is cut
//! into reads: a frame's fixed header is parsed once it is whole, a `J` body is
//! waited for by comparing lengths, a `D` body's length fields are walked once
//! as they arrive (the walk position is kept between calls), and a `C` body is
//! inflated as it arrives and taken out of the caller's buffer, so a large
//! compressed window never sits twice in memory and is never re-inflated.

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Decompress, FlushDecompress, Status};

use crate::frame::{Error, ErrorKind, FrameType, Limits, Payload, Record, Version};

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// What [`FrameParser::step`] found.
enum Step {
    NeedMore,
    Record(Record),
    /// A `C` header was consumed; its `len` body bytes follow.
    Compressed {
        len: u32,
        start: u64,
    },
}

#[derive(Clone, Debug)]
enum ParseState {
    /// Between frames: `buf[0]` is a version byte.
    Header,
    /// The header of a `J` frame was consumed; waiting for `len` bytes.
    Json {
        version: Version,
        seq: u32,
        len: usize,
        start: u64,
    },
    /// The header of a `D` frame was consumed. The body's length fields up to
    /// `scan` have been checked; `items_left` keys and values remain to walk.
    Data {
        version: Version,
        seq: u32,
        pairs: u32,
        items_left: u64,
        scan: usize,
        start: u64,
    },
}

/// Cuts non-compressed frames out of a buffer. The outer stream and the
/// inflated content of a `C` frame each have one; errors carry offsets in the
/// parser's own coordinates.
#[derive(Clone, Debug)]
struct FrameParser {
    state: ParseState,
    /// Offset of `buf[0]`.
    offset: u64,
}

impl FrameParser {
    fn new() -> Self {
        FrameParser {
            state: ParseState::Header,
            offset: 0,
        }
    }

    fn consume(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.offset += n as u64;
    }

    /// Start of the frame being read and how many of its bytes are in hand, if
    /// one has begun.
    fn partial(&self, buf: &BytesMut) -> Option<(u64, u64)> {
        match self.state {
            ParseState::Header if buf.is_empty() => None,
            ParseState::Header => Some((self.offset, buf.len() as u64)),
            ParseState::Json { start, .. } | ParseState::Data { start, .. } => {
                Some((start, self.offset - start + buf.len() as u64))
            }
        }
    }

    fn step(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Step, (u64, ErrorKind)> {
        match self.state {
            ParseState::Header => self.header(buf, limits),
            ParseState::Json {
                version,
                seq,
                len,
                start: _,
            } => {
                if buf.len() < len {
                    return Ok(Step::NeedMore);
                }
                let json = buf.split_to(len).freeze();
                self.offset += len as u64;
                self.state = ParseState::Header;
                Ok(Step::Record(Record::Event {
                    version,
                    seq,
                    payload: Payload::Json(json),
                }))
            }
            ParseState::Data {
                version,
                seq,
                pairs,
                mut items_left,
                mut scan,
                start,
            } => {
                while items_left > 0 {
                    let Some(len) = buf.get(scan..scan + 4).map(be32) else {
                        self.state = ParseState::Data {
                            version,
                            seq,
                            pairs,
                            items_left,
                            scan,
                            start,
                        };
                        return Ok(Step::NeedMore);
                    };
                    let end = scan as u64 + 4 + u64::from(len);
                    if end > limits.max_payload as u64 {
                        return Err((
                            start,
                            ErrorKind::TooLarge {
                                frame: FrameType::Data,
                                declared: end,
                                max: limits.max_payload,
                            },
                        ));
                    }
                    // Fits in usize: bounded by max_payload.
                    scan = end as usize;
                    items_left -= 1;
                }
                if buf.len() < scan {
                    self.state = ParseState::Data {
                        version,
                        seq,
                        pairs,
                        items_left,
                        scan,
                        start,
                    };
                    return Ok(Step::NeedMore);
                }
                let body = buf.split_to(scan).freeze();
                self.offset += scan as u64;
                self.state = ParseState::Header;
                Ok(Step::Record(Record::Event {
                    version,
                    seq,
                    payload: Payload::Pairs(split_pairs(&body, pairs)),
                }))
            }
        }
    }

    fn header(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Step, (u64, ErrorKind)> {
        let start = self.offset;
        let Some(&v) = buf.first() else {
            return Ok(Step::NeedMore);
        };
        let version =
            Version::from_byte(v).ok_or((start, ErrorKind::UnknownVersion { byte: v }))?;
        let Some(&t) = buf.get(1) else {
            return Ok(Step::NeedMore);
        };
        let frame = FrameType::from_byte(t)
            .ok_or((start, ErrorKind::UnknownFrameType { version, byte: t }))?;
        if buf.len() < frame.header_len() {
            return Ok(Step::NeedMore);
        }
        let a = be32(&buf[2..6]);
        let too_large = |declared: u32| {
            (
                start,
                ErrorKind::TooLarge {
                    frame,
                    declared: u64::from(declared),
                    max: limits.max_payload,
                },
            )
        };
        let step = match frame {
            FrameType::Window => Step::Record(Record::Window { version, size: a }),
            FrameType::Ack => Step::Record(Record::Ack { version, seq: a }),
            FrameType::Compressed => {
                if u64::from(a) > limits.max_inflated as u64 {
                    return Err((
                        start,
                        ErrorKind::TooLarge {
                            frame,
                            declared: u64::from(a),
                            max: limits.max_inflated,
                        },
                    ));
                }
                Step::Compressed { len: a, start }
            }
            FrameType::Json => {
                let len = be32(&buf[6..10]);
                if len == 0 {
                    return Err((start, ErrorKind::EmptyJson));
                }
                if u64::from(len) > limits.max_payload as u64 {
                    return Err(too_large(len));
                }
                self.state = ParseState::Json {
                    version,
                    seq: a,
                    len: len as usize,
                    start,
                };
                Step::NeedMore
            }
            FrameType::Data => {
                let pairs = be32(&buf[6..10]);
                let max = limits
                    .max_pairs
                    .min(u32::try_from(limits.max_payload / 8).unwrap_or(u32::MAX));
                if pairs == 0 || pairs > max {
                    return Err((start, ErrorKind::InvalidPairCount { count: pairs, max }));
                }
                self.state = ParseState::Data {
                    version,
                    seq: a,
                    pairs,
                    items_left: 2 * u64::from(pairs),
                    scan: 0,
                    start,
                };
                Step::NeedMore
            }
        };
        self.consume(buf, frame.header_len());
        match step {
            // The header alone is not a record: go on with the body.
            Step::NeedMore => self.step(buf, limits),
            step => Ok(step),
        }
    }
}

/// `body` was walked by the parser, so every length in it is in bounds.
fn split_pairs(body: &Bytes, pairs: u32) -> Vec<(Bytes, Bytes)> {
    let mut out = Vec::with_capacity(pairs as usize);
    let mut pos = 0;
    let mut item = || {
        let len = be32(&body[pos..pos + 4]) as usize;
        let b = body.slice(pos + 4..pos + 4 + len);
        pos += 4 + len;
        b
    };
    for _ in 0..pairs {
        let key = item();
        let value = item();
        out.push((key, value));
    }
    out
}

/// A `C` body being inflated as it arrives.
#[derive(Debug)]
struct Inflate {
    z: Decompress,
    start: u64,
    declared: u32,
    /// Compressed bytes of the frame not yet received.
    remaining: usize,
    /// Inflated bytes are `out[..filled]`; `out` never grows past
    /// `max_inflated + 1` bytes, the one extra byte telling "over the cap".
    out: Vec<u8>,
    filled: usize,
}

impl Inflate {
    /// Feeds `input`; returns how much of it was used and whether the zlib
    /// stream ended.
    fn feed(&mut self, input: &[u8], max: usize) -> Result<(usize, bool), ErrorKind> {
        let cap = max.saturating_add(1);
        let mut used = 0;
        loop {
            if self.filled == self.out.len() {
                if self.out.len() >= cap {
                    return Err(ErrorKind::InflatedTooLarge { max });
                }
                // Start near a typical JSON ratio, then double: amortised
                // linear copying, and nothing allocated before data arrives.
                let first = (self.declared as usize)
                    .saturating_mul(4)
                    .clamp(4096, 256 << 10);
                let len = (self.out.len() * 2).max(first).min(cap);
                // Exact: amortised growth could double past the cap.
                self.out.reserve_exact(len - self.out.len());
                self.out.resize(len, 0);
            }
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(
                    &input[used..],
                    &mut self.out[self.filled..],
                    FlushDecompress::None,
                )
                .map_err(|e| ErrorKind::CorruptZlib {
                    message: e.to_string(),
                })?;
            let consumed = (self.z.total_in() - in0) as usize;
            let produced = (self.z.total_out() - out0) as usize;
            used += consumed;
            self.filled += produced;
            if self.filled > max {
                return Err(ErrorKind::InflatedTooLarge { max });
            }
            if status == Status::StreamEnd {
                return Ok((used, true));
            }
            if consumed == 0 && produced == 0 && self.filled < self.out.len() {
                return Ok((used, false));
            }
        }
    }
}

/// Frames of an inflated `C` body, handed out one per call.
#[derive(Debug)]
struct Inner {
    parser: FrameParser,
    data: BytesMut,
    start: u64,
}

#[derive(Debug)]
enum State {
    Frames,
    Inflating(Box<Inflate>),
    Inner(Box<Inner>),
    /// An error ended the stream; it is returned again on every call.
    Failed(Error),
}

/// Incremental Lumberjack v1/v2 decoder over a `BytesMut` the caller reads into.
///
/// `C` frames are inflated here and their inner frames come out one by one as
/// ordinary records (`C` inside `C` is refused: [`ErrorKind::NestedCompressed`]).
/// A `C` frame may hold any whole number of frames of any type, fewer than
/// its window (old jls sent one event per `C`), as Logstash accepts.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    outer: FrameParser,
    state: State,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            outer: FrameParser::new(),
            state: State::Frames,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes of the stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.outer.offset
    }

    /// After `decode` has returned `Ok(None)` on `buf`: whether a frame has begun and not
    /// ended (part of it in `buf`, or a `C` frame still being inflated). A server uses it to
    /// give a frame a deadline, so that a sender writing a byte now and then cannot hold a
    /// connection open. (A window between frames is not a frame.)
    pub fn in_frame(&self, buf: &BytesMut) -> bool {
        match &self.state {
            State::Frames => self.outer.partial(buf).is_some(),
            State::Inflating(_) => true,
            State::Inner(_) | State::Failed(_) => false,
        }
    }

    /// Whether the next `decode` on `buf` inflates: a `C` frame is being inflated, or `buf`
    /// begins one. A server may then run that call off its async worker (inflating up to
    /// `max_inflated` takes milliseconds); the inner frames that follow are cheap.
    pub fn inflates_next(&self, buf: &BytesMut) -> bool {
        let c_frame_begins = || {
            matches!(self.outer.state, ParseState::Header)
                && buf.len() >= FrameType::Compressed.header_len()
                && FrameType::from_byte(buf[1]) == Some(FrameType::Compressed)
        };
        match &self.state {
            State::Inflating(_) => !buf.is_empty(),
            State::Frames => c_frame_begins(),
            // Once its last inner frame is out, the same call goes on to the outer frames.
            State::Inner(inner) => inner.data.is_empty() && c_frame_begins(),
            State::Failed(_) => false,
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.state = State::Failed(e.clone());
        e
    }

    /// Next record, consuming its bytes from `buf`. `Ok(None)`: need more bytes.
    /// After an error the decoder is spent and returns that error again.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Record>, Error> {
        loop {
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::Frames => match self.outer.step(buf, &self.limits) {
                    Ok(Step::NeedMore) => return Ok(None),
                    Ok(Step::Record(r)) => return Ok(Some(r)),
                    Ok(Step::Compressed { len, start }) => {
                        self.state = State::Inflating(Box::new(Inflate {
                            z: Decompress::new(true),
                            start,
                            declared: len,
                            remaining: len as usize,
                            out: Vec::new(),
                            filled: 0,
                        }));
                    }
                    Err((offset, kind)) => {
                        return Err(self.fail(Error {
                            offset,
                            inner_offset: None,
                            kind,
                        }))
                    }
                },
                State::Inflating(inf) => {
                    let take = inf.remaining.min(buf.len());
                    if take == 0 && inf.remaining > 0 {
                        return Ok(None);
                    }
                    let (start, declared) = (inf.start, inf.declared);
                    let fed = inf.feed(&buf[..take], self.limits.max_inflated);
                    let (used, ended) = match fed {
                        Ok(r) => r,
                        Err(kind) => {
                            return Err(self.fail(Error {
                                offset: start,
                                inner_offset: None,
                                kind,
                            }))
                        }
                    };
                    inf.remaining -= used;
                    let left = inf.remaining;
                    self.outer.consume(buf, used);
                    let kind = match (ended, left) {
                        (true, 0) => None,
                        (true, extra) => Some(ErrorKind::TrailingCompressed {
                            extra: extra as u64,
                        }),
                        (false, 0) => Some(ErrorKind::TruncatedCompressed { declared }),
                        (false, _) => return Ok(None),
                    };
                    if let Some(kind) = kind {
                        return Err(self.fail(Error {
                            offset: start,
                            inner_offset: None,
                            kind,
                        }));
                    }
                    let State::Inflating(inf) = std::mem::replace(&mut self.state, State::Frames)
                    else {
                        unreachable!("state checked above")
                    };
                    let mut out = inf.out;
                    out.truncate(inf.filled);
                    self.state = State::Inner(Box::new(Inner {
                        parser: FrameParser::new(),
                        data: BytesMut::from(Bytes::from(out)),
                        start,
                    }));
                }
                State::Inner(inner) => {
                    let start = inner.start;
                    let err = |inner_offset: u64, kind| Error {
                        offset: start,
                        inner_offset: Some(inner_offset),
                        kind,
                    };
                    match inner.parser.step(&mut inner.data, &self.limits) {
                        Ok(Step::Record(r)) => return Ok(Some(r)),
                        Ok(Step::NeedMore) => match inner.parser.partial(&inner.data) {
                            None => self.state = State::Frames,
                            Some((at, received)) => {
                                let e = err(at, ErrorKind::TruncatedInner { received });
                                return Err(self.fail(e));
                            }
                        },
                        Ok(Step::Compressed { start: at, .. }) => {
                            let e = err(at, ErrorKind::NestedCompressed);
                            return Err(self.fail(e));
                        }
                        Err((at, kind)) => {
                            let e = err(at, kind);
                            return Err(self.fail(e));
                        }
                    }
                }
            }
        }
    }

    /// At end of stream: the remaining records, then [`ErrorKind::Truncated`] if
    /// the stream stopped inside a frame.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Record>, Error> {
        if let Some(r) = self.decode(buf)? {
            return Ok(Some(r));
        }
        let partial = match &self.state {
            State::Frames => self.outer.partial(buf),
            State::Inflating(inf) => Some((inf.start, self.outer.offset - inf.start)),
            State::Inner(_) | State::Failed(_) => None,
        };
        match partial {
            None => Ok(None),
            Some((offset, received)) => Err(self.fail(Error {
                offset,
                inner_offset: None,
                kind: ErrorKind::Truncated { received },
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{encode_compressed, encode_data, encode_json};

    #[test]
    fn in_frame_is_true_exactly_inside_a_frame_plain_or_compressed() {
        let mut plain = Vec::new();
        encode_json(Version::V2, 1, br#"{"a":1}"#, &mut plain);
        let mut inner = Vec::new();
        encode_json(Version::V2, 2, br#"{"b":2}"#, &mut inner);
        let mut compressed = Vec::new();
        encode_compressed(Version::V2, &inner, 6, &mut compressed);
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        assert!(!dec.in_frame(&buf));
        for wire in [&plain, &compressed] {
            for (i, &b) in wire.iter().enumerate() {
                buf.extend_from_slice(&[b]);
                while dec.decode(&mut buf).unwrap().is_some() {}
                let last = i + 1 == wire.len();
                assert_eq!(dec.in_frame(&buf), !last, "byte {i} of {}", wire.len());
            }
        }
    }

    #[test]
    fn inflates_next_is_true_exactly_before_a_call_that_inflates() {
        let mut plain = Vec::new();
        encode_json(Version::V2, 1, br#"{"a":1}"#, &mut plain);
        let mut inner = Vec::new();
        encode_json(Version::V2, 2, br#"{"b":2}"#, &mut inner);
        encode_json(Version::V2, 3, br#"{"c":3}"#, &mut inner);
        let mut compressed = Vec::new();
        encode_compressed(Version::V2, &inner, 6, &mut compressed);
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&plain[..]);
        buf.extend_from_slice(&compressed[..8]);
        assert!(!dec.inflates_next(&buf), "a J frame first");
        assert!(dec.decode(&mut buf).unwrap().is_some());
        assert!(dec.inflates_next(&buf), "a C frame begins");
        assert!(dec.decode(&mut buf).unwrap().is_none());
        assert!(
            !dec.inflates_next(&buf),
            "inflating, nothing new to inflate"
        );
        buf.extend_from_slice(&compressed[8..]);
        assert!(dec.inflates_next(&buf));
        assert!(dec.decode(&mut buf).unwrap().is_some());
        assert!(
            !dec.inflates_next(&buf),
            "the inner frames are inflated already"
        );
        // A second `C` frame right behind the first: the call that hands out the first one's
        // last inner frame stops there; the next one goes on into the second and inflates it.
        buf.extend_from_slice(&compressed);
        assert!(
            !dec.inflates_next(&buf),
            "one inner frame still to hand out"
        );
        assert!(dec.decode(&mut buf).unwrap().is_some());
        assert!(
            dec.inflates_next(&buf),
            "the next call inflates the second C frame"
        );
        assert!(dec.decode(&mut buf).unwrap().is_some());
        assert!(dec.decode(&mut buf).unwrap().is_some());
        assert!(dec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn compressed_body_is_inflated_and_dropped_as_it_arrives() {
        let mut frames = Vec::new();
        for seq in 0..2000u32 {
            let doc = format!(
                "{{\"n\":{seq},\"pad\":\"{}\"}}",
                seq.wrapping_mul(2_654_435_761)
            );
            encode_json(Version::V2, seq, doc.as_bytes(), &mut frames);
        }
        let mut wire = Vec::new();
        encode_compressed(Version::V2, &frames, 1, &mut wire);
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut events = 0;
        for chunk in wire.chunks(100) {
            buf.extend_from_slice(chunk);
            while let Some(r) = dec.decode(&mut buf).unwrap() {
                assert!(matches!(r, Record::Event { .. }));
                events += 1;
            }
            // Never more than the 6-byte header left waiting.
            assert!(buf.len() <= 6, "{}", buf.len());
        }
        assert_eq!(events, 2000);
        assert_eq!(dec.offset(), wire.len() as u64);
    }

    #[test]
    fn data_walk_resumes_where_it_stopped() {
        let mut wire = Vec::new();
        encode_data(Version::V1, 3, &[("a", "bc"), ("de", "f")], &mut wire);
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&wire[..10 + 4 + 1 + 4]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        // Key "a" walked, value length read: the walk stands past "bc".
        assert!(matches!(
            dec.outer.state,
            ParseState::Data {
                items_left: 2,
                scan: 11,
                ..
            }
        ));
        buf.extend_from_slice(&wire[19..]);
        let r = dec.decode(&mut buf).unwrap().unwrap();
        let Record::Event {
            payload: Payload::Pairs(p),
            seq: 3,
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(p[1], (Bytes::from_static(b"de"), Bytes::from_static(b"f")));
    }
}
