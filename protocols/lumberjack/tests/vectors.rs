//! The Lumberjack vectors of `shared/reference/vectors.txt` and
//! `protocols-detail.md` §1.7, whole and one byte at a time, and every error
//! kind with its offset.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{hex, run, run_bytewise, run_whole};
use logport_lumberjack::{
    encode_ack, encode_batch, encode_compressed, encode_data, encode_json, encode_window, Error,
    ErrorKind, FrameType, Limits, Payload, Record, Version,
};

const LJ2_PLAIN: &str = "32 57 00 00 00 02 32 4a 00 00 00 01 00 00 00 3b 7b 22 40 74 69 6d 65 73 74 61 6d 70 22 3a 22 32 30 32 36 2d 31 31 2d 32 33 54 31 30 3a 30 30 3a 30 30 2e 30 30 30 5a 22 2c 22 6d 65 73 73 61 67 65 22 3a 22 68 65 6c 6c 6f 22 7d 32 4a 00 00 00 02 00 00 00 3b 7b 22 40 74 69 6d 65 73 74 61 6d 70 22 3a 22 32 30 32 36 2d 31 31 2d 32 33 54 31 30 3a 30 30 3a 30 31 2e 30 30 30 5a 22 2c 22 6d 65 73 73 61 67 65 22 3a 22 77 6f 72 6c 64 22 7d";
const LJ2_COMPRESSED: &str = "32 57 00 00 00 02 32 43 00 00 00 58 78 9c 33 f2 62 60 60 60 04 62 eb 6a 25 87 92 cc dc d4 e2 92 c4 dc 02 25 2b 25 23 03 23 33 5d 43 43 5d 23 e3 10 43 03 2b 03 10 d2 33 30 30 88 52 d2 51 02 2a 2a 4e 4c 4f 05 2a ca 48 cd c9 c9 57 aa 35 02 19 c2 44 94 21 86 98 86 94 e7 17 e5 a4 28 d5 02 00 eb 57 22 c9";
const LJ2_ACK2: &str = "32 41 00 00 00 02";
const LJ1_WINDOW_DATA: &str = "31 57 00 00 00 01 31 44 00 00 00 01 00 00 00 02 00 00 00 04 6c 69 6e 65 00 00 00 05 68 65 6c 6c 6f 00 00 00 04 68 6f 73 74 00 00 00 05 77 65 62 2d 31";
const LJ1_ACK1: &str = "31 41 00 00 00 01";
// protocols-detail.md §1.7: go-lumber TestReadBatchWindowAtLimit, the same event
// at libbeat's level 3, and logstash-input-beats testInvalidCompression.
const GO_LUMBER_ONE: &str =
    "32 57 00 00 00 01 32 4a 00 00 00 01 00 00 00 0f 7b 22 6d 73 67 22 3a 22 68 65 6c 6c 6f 22 7d";
const GO_LUMBER_ONE_Z3: &str = "32 57 00 00 00 01 32 43 00 00 00 1f 78 5e 33 f2 62 60 60 60 04 62 fe 6a a5 dc e2 74 25 2b a5 8c d4 9c 9c 7c a5 5a 00 34 d8 05 a2";
const LOGSTASH_INVALID_COMPRESSION: &str =
    "32 57 00 00 00 01 32 43 00 00 00 09 78 9c 33 f2 62 60 60 60 04 62 66 17 ff 60 00 07 e0 01 67";

fn limits() -> Limits {
    Limits::default()
}

fn small() -> Limits {
    Limits {
        max_payload: 64,
        max_inflated: 256,
        max_pairs: 8,
    }
}

fn json(version: Version, seq: u32, s: &str) -> Record {
    Record::Event {
        version,
        seq,
        payload: Payload::Json(Bytes::copy_from_slice(s.as_bytes())),
    }
}

fn window(version: Version, size: u32) -> Record {
    Record::Window { version, size }
}

/// Decodes `wire` whole and byte by byte and checks both give `expected`.
fn check(wire: &[u8], expected: &[Record]) {
    let (r, e) = run_whole(limits(), wire);
    assert_eq!(e, None);
    assert_eq!(r, expected);
    let (r, e) = run_bytewise(limits(), wire);
    assert_eq!(e, None);
    assert_eq!(r, expected);
}

fn plain_window_records() -> Vec<Record> {
    vec![
        window(Version::V2, 2),
        json(
            Version::V2,
            1,
            r#"{"@timestamp":"2026-11-23T10:00:00.000Z","message":"hello"}"#,
        ),
        json(
            Version::V2,
            2,
            r#"{"@timestamp":"2026-11-23T10:00:01.000Z","message":"world"}"#,
        ),
    ]
}

#[test]
fn lj2_plain_window() {
    check(&hex(LJ2_PLAIN), &plain_window_records());
}

#[test]
fn lj2_compressed_window_holds_the_plain_window() {
    check(&hex(LJ2_COMPRESSED), &plain_window_records());
}

#[test]
fn acks_decode_and_encode() {
    check(
        &hex(LJ2_ACK2),
        &[Record::Ack {
            version: Version::V2,
            seq: 2,
        }],
    );
    check(
        &hex(LJ1_ACK1),
        &[Record::Ack {
            version: Version::V1,
            seq: 1,
        }],
    );
    let mut out = BytesMut::new();
    encode_ack(Version::V2, 2, &mut out);
    encode_ack(Version::V1, 1, &mut out);
    assert_eq!(&out[..6], &hex(LJ2_ACK2)[..]);
    assert_eq!(&out[6..], &hex(LJ1_ACK1)[..]);
}

#[test]
fn lj1_window_and_data() {
    let expected = [
        window(Version::V1, 1),
        Record::Event {
            version: Version::V1,
            seq: 1,
            payload: Payload::Pairs(vec![
                (Bytes::from_static(b"line"), Bytes::from_static(b"hello")),
                (Bytes::from_static(b"host"), Bytes::from_static(b"web-1")),
            ]),
        },
    ];
    check(&hex(LJ1_WINDOW_DATA), &expected);
    // And the encoder writes the same bytes.
    let mut out = BytesMut::new();
    encode_window(Version::V1, 1, &mut out);
    encode_data(
        Version::V1,
        1,
        &[("line", "hello"), ("host", "web-1")],
        &mut out,
    );
    assert_eq!(&out[..], &hex(LJ1_WINDOW_DATA)[..]);
}

#[test]
fn go_lumber_window_plain_and_level_3() {
    let expected = [
        window(Version::V2, 1),
        json(Version::V2, 1, r#"{"msg":"hello"}"#),
    ];
    check(&hex(GO_LUMBER_ONE), &expected);
    check(&hex(GO_LUMBER_ONE_Z3), &expected);
    let mut out = BytesMut::new();
    encode_window(Version::V2, 1, &mut out);
    encode_json(Version::V2, 1, br#"{"msg":"hello"}"#, &mut out);
    assert_eq!(&out[..], &hex(GO_LUMBER_ONE)[..]);
}

#[test]
fn logstash_forwarder_data_frame_and_jls_1j() {
    // protocols-detail.md §1.7 vector 4, inside a level-3 `1C` as the forwarder sends it.
    let mut d = Vec::new();
    encode_data(
        Version::V1,
        7,
        &[
            ("file", "/var/log/a.log"),
            ("host", "h1"),
            ("offset", "0"),
            ("line", "hi"),
        ],
        &mut d,
    );
    let mut expected_d = hex("31 44 00 00 00 07 00 00 00 04 00 00 00 04");
    expected_d.extend_from_slice(b"file\x00\x00\x00\x0e/var/log/a.log\x00\x00\x00\x04host\x00\x00\x00\x02h1\x00\x00\x00\x06offset\x00\x00\x00\x010\x00\x00\x00\x04line\x00\x00\x00\x02hi");
    assert_eq!(d, expected_d);
    // jls with :json sends `1J`; D under version 2 is accepted too.
    encode_json(Version::V1, 8, b"{\"line\":\"x\"}", &mut d);
    encode_data(Version::V2, 9, &[("k", "")], &mut d);
    let mut wire = BytesMut::new();
    encode_window(Version::V1, 3, &mut wire);
    encode_compressed(Version::V1, &d, 3, &mut wire);
    let (r, e) = run_bytewise(limits(), &wire);
    assert_eq!(e, None);
    assert_eq!(r.len(), 4);
    assert!(
        matches!(&r[1], Record::Event { version: Version::V1, seq: 7, payload: Payload::Pairs(p) } if p.len() == 4 && &p[3].1[..] == b"hi")
    );
    assert_eq!(r[2], json(Version::V1, 8, "{\"line\":\"x\"}"));
    assert!(
        matches!(&r[3], Record::Event { version: Version::V2, seq: 9, payload: Payload::Pairs(p) } if p[0].1.is_empty())
    );
}

#[test]
fn c_frames_may_hold_part_of_a_window_and_any_frame_type() {
    // Old jls: one `C` per event; and a `W` inside a `C`.
    let mut wire = BytesMut::new();
    encode_window(Version::V1, 2, &mut wire);
    for seq in [41, 42] {
        let mut f = Vec::new();
        encode_json(Version::V1, seq, b"{}", &mut f);
        encode_compressed(Version::V1, &f, 1, &mut wire);
    }
    let mut f = Vec::new();
    encode_window(Version::V2, 1, &mut f);
    encode_json(Version::V2, 1, b"{}", &mut f);
    encode_compressed(Version::V2, &f, 9, &mut wire);
    let (r, e) = run_bytewise(limits(), &wire);
    assert_eq!(e, None);
    assert_eq!(
        r,
        [
            window(Version::V1, 2),
            json(Version::V1, 41, "{}"),
            json(Version::V1, 42, "{}"),
            window(Version::V2, 1),
            json(Version::V2, 1, "{}"),
        ]
    );
}

#[test]
fn payloads_share_the_read_buffer() {
    let wire = hex(LJ2_PLAIN);
    let mut buf = BytesMut::from(&wire[..]);
    let base = buf.as_ptr();
    let mut dec = logport_lumberjack::Decoder::new(limits());
    dec.decode(&mut buf).unwrap();
    let Some(Record::Event {
        payload: Payload::Json(j),
        ..
    }) = dec.decode(&mut buf).unwrap()
    else {
        panic!("event expected")
    };
    assert_eq!(j.as_ptr(), base.wrapping_add(16));
    assert_eq!(dec.offset(), 75);
}

// ---- errors ----

fn err(wire: &[u8], limits: Limits) -> (Vec<Record>, Error) {
    let (r, e) = run_whole(limits, wire);
    let e = e.expect("an error");
    // Byte by byte: the same records and the same error.
    let (r1, e1) = run_bytewise(limits, wire);
    assert_eq!((&r1, e1.as_ref()), (&r, Some(&e)));
    (r, e)
}

fn window_then(rest: &[u8]) -> Vec<u8> {
    let mut v = b"2W\x00\x00\x00\x01".to_vec();
    v.extend_from_slice(rest);
    v
}

#[test]
fn unknown_version() {
    let (r, e) = err(&window_then(b"3J\x00\x00\x00\x01"), limits());
    assert_eq!(r.len(), 1);
    assert_eq!(
        e,
        Error {
            offset: 6,
            inner_offset: None,
            kind: ErrorKind::UnknownVersion { byte: b'3' }
        }
    );
    assert_eq!(
        e.to_string(),
        "lumberjack: unknown version byte 0x33 (expected '1' or '2') (stream offset 6)"
    );
    // Garbage right away (an HTTP client on the Beats port).
    let (_, e) = err(b"GET / HTTP/1.1\r\n", limits());
    assert_eq!(
        (e.offset, e.kind),
        (0, ErrorKind::UnknownVersion { byte: b'G' })
    );
}

#[test]
fn unknown_frame_type() {
    let (_, e) = err(&window_then(b"2Z\x00\x00"), limits());
    assert_eq!(
        (e.offset, e.kind.clone()),
        (
            6,
            ErrorKind::UnknownFrameType {
                version: Version::V2,
                byte: b'Z'
            }
        )
    );
    assert_eq!(
        e.to_string(),
        "lumberjack: unknown frame type 0x5a after version '2' (expected W, J, D, C or A) (stream offset 6)"
    );
}

#[test]
fn oversize_frames_fail_from_the_header() {
    // J: 65 bytes declared, 64 allowed; no body needed to fail.
    let (_, e) = err(&window_then(b"2J\x00\x00\x00\x01\x00\x00\x00\x41"), small());
    assert_eq!(
        (e.offset, e.kind.clone()),
        (
            6,
            ErrorKind::TooLarge {
                frame: FrameType::Json,
                declared: 65,
                max: 64
            }
        )
    );
    assert_eq!(
        e.to_string(),
        "lumberjack: 'J' frame of 65 bytes exceeds the maximum payload 64 (stream offset 6)"
    );
    // Exactly the maximum is fine.
    let mut ok = Vec::new();
    encode_json(Version::V2, 1, &[b'x'; 64], &mut ok);
    assert_eq!(run_whole(small(), &ok).1, None);
    // C length: capped by max_inflated, not by the per-event max_payload.
    let (_, e) = err(b"2C\xff\xff\xff\xff", small());
    assert_eq!(
        (e.offset, e.kind),
        (
            0,
            ErrorKind::TooLarge {
                frame: FrameType::Compressed,
                declared: 0xffff_ffff,
                max: 256
            }
        )
    );
    // A compressed window larger than one event's cap passes when its events fit.
    let events: Vec<Payload> = (0..4)
        .map(|i| Payload::Json(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "ab".repeat(i)).into()))
        .collect();
    let mut window = Vec::new();
    encode_batch(Version::V2, 1, &events, Some(0), &mut window);
    assert!(
        window.len() > 64 + 6,
        "the C frame must be over max_payload"
    );
    let wide = Limits {
        max_inflated: 4096,
        ..small()
    };
    assert_eq!(run_whole(wide, &window).1, None);
    // D: one value too long, then pairs adding up past the maximum.
    let mut d = Vec::new();
    encode_data(Version::V1, 1, &[("k", "v".repeat(60))], &mut d);
    let (_, e) = err(&d, small());
    assert_eq!(
        e.kind,
        ErrorKind::TooLarge {
            frame: FrameType::Data,
            declared: 4 + 1 + 4 + 60,
            max: 64
        }
    );
    let mut d = Vec::new();
    encode_data(
        Version::V1,
        1,
        &[("k", "v".repeat(25)), ("k", "v".repeat(25))],
        &mut d,
    );
    let (_, e) = err(&d, small());
    assert!(
        matches!(
            e.kind,
            ErrorKind::TooLarge {
                frame: FrameType::Data,
                declared: 68,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn empty_json_and_invalid_pair_count() {
    let (_, e) = err(
        &window_then(b"2J\x00\x00\x00\x01\x00\x00\x00\x00"),
        limits(),
    );
    assert_eq!((e.offset, e.kind), (6, ErrorKind::EmptyJson));
    let (_, e) = err(
        &window_then(b"1D\x00\x00\x00\x01\x00\x00\x00\x00"),
        limits(),
    );
    assert_eq!(
        (e.offset, e.kind.clone()),
        (
            6,
            ErrorKind::InvalidPairCount {
                count: 0,
                max: 1024
            }
        )
    );
    assert_eq!(
        e.to_string(),
        "lumberjack: invalid pair count 0 in 'D' frame (expected 1 to 1024) (stream offset 6)"
    );
    // Above max_pairs, and above what max_payload can hold (64 / 8 = 8 here).
    let (_, e) = err(b"1D\x00\x00\x00\x01\x00\x00\x04\x01", limits());
    assert_eq!(
        e.kind,
        ErrorKind::InvalidPairCount {
            count: 1025,
            max: 1024
        }
    );
    let tight = Limits {
        max_pairs: 100,
        ..small()
    };
    let (_, e) = err(b"1D\x00\x00\x00\x01\x00\x00\x00\x09", tight);
    assert_eq!(e.kind, ErrorKind::InvalidPairCount { count: 9, max: 8 });
}

fn compressed(inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_compressed(Version::V2, inner, 6, &mut out);
    out
}

#[test]
fn errors_inside_c_carry_both_offsets() {
    let mut inner = Vec::new();
    encode_json(Version::V2, 1, b"{}", &mut inner); // 12 bytes
    inner.extend_from_slice(b"2Q\x00\x00\x00\x00");
    let (r, e) = err(&window_then(&compressed(&inner)), limits());
    assert_eq!(r, [window(Version::V2, 1), json(Version::V2, 1, "{}")]);
    assert_eq!(
        e,
        Error {
            offset: 6,
            inner_offset: Some(12),
            kind: ErrorKind::UnknownFrameType {
                version: Version::V2,
                byte: b'Q'
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "lumberjack: unknown frame type 0x51 after version '2' (expected W, J, D, C or A) (offset 12 inside the 'C' frame at stream offset 6)"
    );
}

#[test]
fn nested_c_is_refused() {
    let mut inner = Vec::new();
    encode_json(Version::V2, 1, b"{}", &mut inner);
    inner.extend_from_slice(&compressed(b"2W\x00\x00\x00\x00"));
    let (r, e) = err(&window_then(&compressed(&inner)), limits());
    assert_eq!(r.len(), 2);
    assert_eq!(
        (e.offset, e.inner_offset, e.kind.clone()),
        (6, Some(12), ErrorKind::NestedCompressed)
    );
    assert!(e.to_string().contains("nested"), "{e}");
}

#[test]
fn corrupt_zlib() {
    let mut c = b"2C\x00\x00\x00\x06".to_vec();
    c.extend_from_slice(b"\x78\x9c\xff\xff\xff\xff");
    let (_, e) = err(&window_then(&c), limits());
    assert_eq!(e.offset, 6);
    assert!(matches!(e.kind, ErrorKind::CorruptZlib { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("lumberjack: corrupt zlib data in 'C' frame"),
        "{e}"
    );
    // Raw deflate (no zlib header) and gzip are not zlib.
    let mut c = b"2C\x00\x00\x00\x04".to_vec();
    c.extend_from_slice(b"\x1f\x8b\x08\x00");
    let (_, e) = err(&c, limits());
    assert!(matches!(e.kind, ErrorKind::CorruptZlib { .. }), "{e}");
    // A flipped byte breaks the Adler-32 check.
    let mut c = compressed(b"2W\x00\x00\x00\x07");
    let n = c.len();
    c[n - 1] ^= 1;
    let (_, e) = err(&c, limits());
    assert!(matches!(e.kind, ErrorKind::CorruptZlib { .. }), "{e}");
}

#[test]
fn logstash_invalid_compression_is_an_error_not_a_wait() {
    let wire = hex(LOGSTASH_INVALID_COMPRESSION);
    let (r, e) = err(&wire, limits());
    assert_eq!(r, [window(Version::V2, 1)]);
    assert_eq!(
        e,
        Error {
            offset: 6,
            inner_offset: None,
            kind: ErrorKind::TruncatedCompressed { declared: 9 }
        }
    );
    assert_eq!(
        e.to_string(),
        "lumberjack: zlib stream does not end within the 'C' frame's 9 bytes (stream offset 6)"
    );
    // With its real length the same stream holds `2J seq=1 "DOS"`.
    let mut fixed = wire.clone();
    fixed[11] = 19;
    let (r, e) = run_whole(limits(), &fixed);
    assert_eq!(e, None);
    assert_eq!(r[1], json(Version::V2, 1, "DOS"));
}

#[test]
fn trailing_bytes_after_the_zlib_stream() {
    let mut c = compressed(b"2W\x00\x00\x00\x07");
    let len = u32::from_be_bytes([c[2], c[3], c[4], c[5]]) + 3;
    c[2..6].copy_from_slice(&len.to_be_bytes());
    c.extend_from_slice(b"xyz");
    let (_, e) = err(&c, limits());
    assert_eq!(
        (e.offset, e.kind),
        (0, ErrorKind::TrailingCompressed { extra: 3 })
    );
}

#[test]
fn inflated_cap() {
    let mut inner = Vec::new();
    for seq in 1..=10 {
        encode_json(Version::V2, seq, &[b'a'; 40], &mut inner); // 50 bytes each
    }
    let wire = window_then(&compressed(&inner));
    let cap = |max_inflated| Limits {
        max_inflated,
        ..Limits::default()
    };
    let (r, e) = err(&wire, cap(499));
    assert_eq!(
        r.len(),
        1,
        "no inner record before the whole C frame is checked"
    );
    assert_eq!(
        (e.offset, e.kind.clone()),
        (6, ErrorKind::InflatedTooLarge { max: 499 })
    );
    assert_eq!(
        e.to_string(),
        "lumberjack: 'C' frame inflates to more than the maximum of 499 bytes (stream offset 6)"
    );
    let (r, e) = run_whole(cap(500), &wire);
    assert_eq!((r.len(), e), (11, None));
}

#[test]
fn truncated_inner_frame() {
    let mut inner = Vec::new();
    encode_window(Version::V2, 2, &mut inner);
    encode_json(Version::V2, 1, b"{\"a\":1}", &mut inner);
    let n = inner.len();
    // Header only, header cut, body cut.
    for (cut, received) in [(n - 7, 10), (n - 12, 5), (n - 3, 14)] {
        let (r, e) = err(&compressed(&inner[..cut]), limits());
        assert_eq!(r, [window(Version::V2, 2)]);
        assert_eq!(
            (e.offset, e.inner_offset, e.kind.clone()),
            (0, Some(6), ErrorKind::TruncatedInner { received })
        );
    }
    // A D frame cut inside its pairs.
    let mut d = Vec::new();
    encode_data(Version::V1, 1, &[("a", "b"), ("c", "d")], &mut d);
    let (_, e) = err(&compressed(&d[..d.len() - 6]), limits());
    assert_eq!(
        (e.inner_offset, e.kind),
        (
            Some(0),
            ErrorKind::TruncatedInner {
                received: d.len() as u64 - 6
            }
        )
    );
}

#[test]
fn stream_ending_inside_a_frame() {
    let mut wire = hex(LJ2_PLAIN);
    wire.truncate(wire.len() - 5);
    let (r, e) = err(&wire, limits());
    assert_eq!(r.len(), 2);
    assert_eq!(
        (e.offset, e.kind.clone()),
        (75, ErrorKind::Truncated { received: 10 + 54 })
    );
    assert_eq!(
        e.to_string(),
        "lumberjack: stream ended inside a frame (64 bytes received) (stream offset 75)"
    );
    // Inside a C body, and inside a header.
    let mut wire = hex(LJ2_COMPRESSED);
    wire.truncate(50);
    let (_, e) = err(&wire, limits());
    assert_eq!(
        (e.offset, e.kind),
        (6, ErrorKind::Truncated { received: 44 })
    );
    let (_, e) = err(b"2W\x00", limits());
    assert_eq!(
        (e.offset, e.kind),
        (0, ErrorKind::Truncated { received: 3 })
    );
    // Clean end: nothing.
    assert_eq!(run_whole(limits(), b""), (vec![], None));
}

#[test]
fn decoder_is_spent_after_an_error() {
    let mut dec = logport_lumberjack::Decoder::new(limits());
    let mut buf = BytesMut::from(&b"2X"[..]);
    let e = dec.decode(&mut buf).unwrap_err();
    buf.put_slice(&hex(LJ2_ACK2));
    assert_eq!(dec.decode(&mut buf), Err(e.clone()));
    assert_eq!(dec.decode_eof(&mut buf), Err(e));
}

#[test]
fn chunks_of_every_size_agree() {
    let mut wire = hex(LJ2_COMPRESSED);
    wire.extend(hex(LJ1_WINDOW_DATA));
    wire.extend(hex(LJ2_PLAIN));
    let (expected, e) = run_whole(limits(), &wire);
    assert_eq!((expected.len(), e), (8, None));
    for size in 1..wire.len() {
        let chunks: Vec<&[u8]> = wire.chunks(size).collect();
        assert_eq!(
            run(limits(), &chunks),
            (expected.clone(), None),
            "chunk size {size}"
        );
    }
}
